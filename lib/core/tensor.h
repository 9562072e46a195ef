#pragma once
// A tensor view: dtype, up to four dimensions with element strides, the device its bytes live on, and a
// pointer. Views never own memory: weights view the mmap'd checkpoint (or a backend buffer they were
// placed in), activations view the workspace arena, KV storage views its backend allocation.
// Row-major by convention: dim 0 = rows; a 2-D view's stride[0] is its row stride (≥ cols).
#include <array>
#include <cstdint>

#include "lib/core/dtype.h"

namespace llmopt {

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  int ndim = 0;
  std::array<int64_t, 4> shape{};
  std::array<int64_t, 4> stride{};  // in elements

  // A contiguous 2-D view [rows, cols] (row stride = cols unless given).
  static Tensor matrix(void* data, DType t, int64_t rows, int64_t cols, int64_t row_stride = 0,
                       Device dev = Device::CPU) {
    Tensor x;
    x.data = data, x.dtype = t, x.device = dev, x.ndim = 2;
    x.shape = {rows, cols, 1, 1};
    x.stride = {row_stride > 0 ? row_stride : cols, 1, 0, 0};
    return x;
  }
  static Tensor vector(void* data, DType t, int64_t n, Device dev = Device::CPU) {
    Tensor x = matrix(data, t, 1, n, n, dev);
    x.ndim = 1, x.shape = {n, 1, 1, 1}, x.stride = {1, 0, 0, 0};
    return x;
  }
  static Tensor f32(const float* p, int64_t rows, int64_t cols, int64_t row_stride = 0) {
    return matrix(const_cast<float*>(p), DType::F32, rows, cols, row_stride);
  }

  bool empty() const { return data == nullptr; }
  int64_t rows() const { return ndim >= 1 ? shape[0] : 0; }
  int64_t cols() const { return ndim >= 2 ? shape[1] : ndim == 1 ? 1 : 0; }
  int64_t row_stride() const { return stride[0]; }
  int64_t numel() const {
    int64_t n = ndim > 0 ? 1 : 0;
    for (int i = 0; i < ndim; ++i) n *= shape[size_t(i)];
    return n;
  }
  size_t element_size() const { return dtype_size(dtype); }
  bool contiguous_rows() const { return ndim <= 1 || stride[0] == shape[1]; }

  template <typename T> T* ptr() const { return static_cast<T*>(data); }
  float* f32() const { return static_cast<float*>(data); }
  template <typename T> T* row(int64_t r) const { return static_cast<T*>(data) + r * stride[0]; }

  // Rows [r0, r0 + n) of a 2-D view.
  Tensor rows_slice(int64_t r0, int64_t n) const {
    Tensor x = *this;
    x.data = static_cast<std::byte*>(data) + size_t(r0 * stride[0]) * element_size();
    x.shape[0] = n;
    return x;
  }
  // Columns [c0, c0 + n) of a 2-D view (a strided view).
  Tensor cols_slice(int64_t c0, int64_t n) const {
    Tensor x = *this;
    x.data = static_cast<std::byte*>(data) + size_t(c0 * stride[1]) * element_size();
    x.shape[1] = n;
    return x;
  }
};

}  // namespace llmopt
