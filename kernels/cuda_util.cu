#include "kernels/cuda_util.h"

#include <cuda_runtime.h>

#include <utility>

#include "lib/core/error.h"

namespace llmopt {

void cuda_check(int err, const char* expr, const char* file, int line) {
  if (err == cudaSuccess) return;
  auto e = static_cast<cudaError_t>(err);
  fail("CUDA error in {} at {}:{}: {}: {}", expr, file, line, cudaGetErrorName(e), cudaGetErrorString(e));
}

bool cuda_device_available() {
  static const bool available = [] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);  // cudaErrorNoDevice / cudaErrorInsufficientDriver without a GPU
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear it so later calls do not see a stale error
      return false;
    }
    return n > 0;
  }();
  return available;
}

void cuda_synchronize() { LLMOPT_CUDA_CHECK(cudaDeviceSynchronize()); }

CudaBuffer::CudaBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  cudaError_t e = cudaMalloc(&ptr_, bytes);
  if (e != cudaSuccess) {
    ptr_ = nullptr, bytes_ = 0;
    cudaGetLastError();
    fail("cannot allocate {} bytes of CUDA device memory: {}", bytes, cudaGetErrorString(e));
  }
}

CudaBuffer::~CudaBuffer() {
  if (ptr_) cudaFree(ptr_);  // no throw from a destructor; a failing free has nothing to recover
}

CudaBuffer& CudaBuffer::operator=(CudaBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void CudaBuffer::upload(const void* host, size_t bytes) {
  if (bytes > bytes_) fail("CUDA upload of {} bytes into a {}-byte buffer", bytes, bytes_);
  if (bytes) LLMOPT_CUDA_CHECK(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice));
}

void CudaBuffer::download(void* host, size_t bytes) const {
  if (bytes > bytes_) fail("CUDA download of {} bytes from a {}-byte buffer", bytes, bytes_);
  if (bytes) LLMOPT_CUDA_CHECK(cudaMemcpy(host, ptr_, bytes, cudaMemcpyDeviceToHost));
}

}  // namespace llmopt
