// The CPU backend: host memory, and the op set on the kernels of lib/backend/cpu (Eigen, the thread pool,
// AVX-512 decode kernels).
#include <cmath>
#include <cstring>
#include <new>

#include "lib/backend/cpu/kernels.h"
#include "lib/backend/cpu/qmatmul.h"
#include "lib/core/error.h"
#include "lib/core/threads.h"

namespace llmopt::backend {
namespace {

void expect_f32_rows(const Tensor& t, const char* op, const char* what) {
  if (t.dtype != DType::F32) fail("{}: {} must be F32, got {}", op, what, dtype_name(t.dtype));
  if (t.device != Device::CPU) fail("{}: {} is on {}, not the CPU", op, what, device_name(t.device));
}

void expect_dense(const Tensor& t, const char* op, const char* what) {
  expect_f32_rows(t, op, what);
  if (!t.contiguous_rows()) fail("{}: {} must have contiguous rows", op, what);
}

class Cpu final : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  std::string name() const override { return "cpu"; }

  void* alloc(size_t bytes) override { return ::operator new(bytes, std::align_val_t(64)); }
  void free(void* p) override { ::operator delete(p, std::align_val_t(64)); }
  void upload(void* dst, const void* host, size_t n) override { std::memcpy(dst, host, n); }
  void download(void* host, const void* src, size_t n) override { std::memcpy(host, src, n); }
  void copy(void* dst, const void* src, size_t n) override { std::memmove(dst, src, n); }
  void reserve_attention(int64_t max_seq_len, int64_t max_width) override {
    reserve_attention_scratch(max_seq_len, max_width);
  }

  void matmul(const Tensor& w, const Tensor* bias, const Tensor& x, const Tensor& y) override {
    expect_dense(x, "matmul", "x");
    expect_dense(y, "matmul", "y");
    if (x.cols() != w.cols() || y.cols() != w.rows() || y.rows() != x.rows())
      fail("matmul: [{}, {}] · [{}, {}]ᵀ into [{}, {}]", x.rows(), x.cols(), w.rows(), w.cols(), y.rows(), y.cols());
    matmul_dense({w.dtype, w.data, w.rows(), w.cols()}, bias ? bias->f32() : nullptr, x.f32(), x.rows(), y.f32());
  }

  void matmul_quant(const QuantMatrix& w, const Tensor* bias, const Tensor& x, const Tensor& y) override {
    expect_dense(x, "matmul_quant", "x");
    expect_dense(y, "matmul_quant", "y");
    if (x.cols() != w.cols || y.cols() != w.rows) fail("matmul_quant: shapes do not match the weight");
    backend::matmul_quant(w, bias ? bias->f32() : nullptr, x.f32(), x.rows(), y.f32());
  }

  void rmsnorm(const Tensor& x, const Tensor& w, float eps, const Tensor& y) override {
    expect_dense(x, "rmsnorm", "x");
    expect_dense(y, "rmsnorm", "y");
    backend::rmsnorm(x.f32(), w.f32(), x.rows(), x.cols(), eps, y.f32());
  }

  void rope(const Tensor& x, int64_t heads, int64_t head_stride, int64_t rot_offset, int64_t rot_dim,
            const Tensor& positions, const Tensor& inv_freq) override {
    expect_f32_rows(x, "rope", "x");
    backend::rope(x.f32(), x.rows(), heads, head_stride, rot_offset, rot_dim, x.row_stride(),
                  positions.ptr<int64_t>(), inv_freq.f32());
  }

  void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) override {
    expect_dense(out, "swiglu", "out");
    if (gate.row_stride() != up.row_stride()) fail("swiglu: gate and up rows differ in stride");
    backend::swiglu(gate.f32(), up.f32(), out.rows(), out.cols(), gate.row_stride(), out.f32());
  }

  void add(const Tensor& x, const Tensor& y) override {
    expect_dense(x, "add", "x");
    expect_dense(y, "add", "y");
    float* a = x.f32();
    const float* b = y.f32();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) a[i] += b[i];
  }

  void get_rows(const Tensor& table, const Tensor& ids, const Tensor& out) override {
    expect_f32_rows(out, "get_rows", "out");
    const int32_t* id = ids.ptr<int32_t>();
    const DenseMatrix m{table.dtype, table.data, table.rows(), table.cols()};
    const bool dense = table.contiguous_rows();
    for (int64_t i = 0; i < ids.numel(); ++i) {
      if (id[i] < 0 || id[i] >= table.rows()) fail("get_rows: row {} outside [0, {})", id[i], table.rows());
      if (dense) dense_row(m, id[i], out.row<float>(i));
      else std::memcpy(out.row<float>(i), table.row<float>(id[i]), size_t(table.cols()) * 4);
    }
  }

  void set_rows(const Tensor& src, const Tensor& slots, const Tensor& dst) override {
    expect_f32_rows(src, "set_rows", "src");
    expect_f32_rows(dst, "set_rows", "dst");
    const int64_t* sl = slots.ptr<int64_t>();
    for (int64_t i = 0; i < src.rows(); ++i) {
      if (sl[i] < 0 || sl[i] >= dst.rows()) fail("set_rows: slot {} outside [0, {})", sl[i], dst.rows());
      std::memcpy(dst.row<float>(sl[i]), src.row<float>(i), size_t(src.cols()) * 4);
    }
  }

  void attention(const AttentionBatch& batch, const Tensor& q, const KVLayer& kv, const AttnDims& dims,
                 const Tensor& out, const Tensor* lse) override {
    backend::attention(batch, q, kv, dims, out, lse);
  }

  void attention_merge(const Tensor& o_a, const Tensor& lse_a, const Tensor& o_b, const Tensor& lse_b,
                       int64_t heads, int64_t v_dim) override {
    parallel_for(o_a.rows(), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t h = 0; h < heads; ++h) {
          float& la = lse_a.row<float>(r)[h];
          const float lb = lse_b.row<float>(r)[h], m = std::max(la, lb);
          if (m == -INFINITY) continue;  // neither part saw a key
          const float wa = std::exp(la - m), wb = std::exp(lb - m), inv = 1.0f / (wa + wb);
          float* a = o_a.row<float>(r) + h * v_dim;
          const float* b = o_b.row<float>(r) + h * v_dim;
          for (int64_t j = 0; j < v_dim; ++j) a[j] = (wa * a[j] + wb * b[j]) * inv;
          la = m + std::log(wa + wb);
        }
    });
  }
};

}  // namespace

Backend& cpu() {
  static Cpu b;
  return b;
}

namespace {
Backend* g_current = nullptr;
}

Backend& current() { return g_current ? *g_current : cpu(); }
void select(std::string_view name) { g_current = &get(name); }

Backend& get(std::string_view name) {
  if (name == "cpu") return cpu();
  if (name == "cuda")
    fail("--device cuda: this build has no CUDA backend yet (the op set runs on: {})", available());
  fail("--device must be one of: {}; got '{}'", available(), name);
}

std::string available() { return "cpu"; }

}  // namespace llmopt::backend
