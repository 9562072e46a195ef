// Run-time choice of the CPU kernel variant (kernels.h) and the public matmul entry points, which check
// their arguments here, once, so the per-variant kernels stay free of error handling.
#include <cstdlib>
#include <string>

#include "lib/backend/cpu/dispatch.h"
#include "lib/core/error.h"
#include "lib/core/log.h"

namespace llmopt::backend {
namespace {

bool cpu_supports(CpuVariant v) {
  switch (v) {
    case CpuVariant::base: return true;
#if LLMOPT_CPU_X86_VARIANTS
    case CpuVariant::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case CpuVariant::avx512:
      return cpu_supports(CpuVariant::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
#endif
    default: return false;
  }
}

CpuVariant choose() {
  const std::vector<CpuVariant> ok = cpu_variants_supported();
  const char* env = std::getenv("LLMOPT_CPU");
  if (!env || !*env) return ok.back();
  for (CpuVariant v : {CpuVariant::base, CpuVariant::avx2, CpuVariant::avx512}) {
    if (cpu_variant_name(v) != env) continue;
    for (CpuVariant s : ok)
      if (s == v) return v;
    fail("LLMOPT_CPU={}: this CPU or build does not support that kernel variant", env);
  }
  fail("LLMOPT_CPU={}: unknown kernel variant (base, avx2, avx512)", env);
}

void check_dense(const DenseMatrix& w) {
  if (w.dtype != DType::F32 && w.dtype != DType::BF16 && w.dtype != DType::F16)
    fail("matmul: unsupported weight dtype {}", dtype_name(w.dtype));
}

void check_quant(const QuantMatrix& w) {
  if (!is_supported_quant_bits(w.bits) && w.bits != 5 && w.bits != 6)
    fail("quantized matmul: {} bits is not supported (2, 3, 4, 5, 6, 8)", w.bits);
  if (w.int8_activations && (w.bits != 8 || w.mins))
    fail("quantized matmul: int8 activations need 8-bit weights without minimums, got {} bits", w.bits);
  if (!w.codes || !w.groups || !w.scales || !w.zeros || w.n_groups <= 0 || w.groups[0] != 0 ||
      w.groups[w.n_groups] != w.cols)
    fail("quantized matmul: malformed {}x{} quantized weight", w.rows, w.cols);
}

}  // namespace

std::string_view cpu_variant_name(CpuVariant v) {
  switch (v) {
    case CpuVariant::avx2: return "avx2";
    case CpuVariant::avx512: return "avx512";
    default: return "base";
  }
}

std::vector<CpuVariant> cpu_variants_supported() {
  std::vector<CpuVariant> out;
  for (CpuVariant v : {CpuVariant::base, CpuVariant::avx2, CpuVariant::avx512})
    if (cpu_supports(v)) out.push_back(v);
  return out;
}

CpuVariant cpu_variant() {
  static const CpuVariant v = [] {
    CpuVariant c = choose();
    log::debug("cpu kernels: {}", cpu_variant_name(c));
    return c;
  }();
  return v;
}

// One switch per entry point: base, and on x86 the AVX2 and AVX-512 builds of the same source.
#if LLMOPT_CPU_X86_VARIANTS
#define LLMOPT_CPU_CALL(fn, ...)                                          \
  switch (cpu_variant()) {                                                \
    case CpuVariant::avx512: return avx512::fn(__VA_ARGS__);              \
    case CpuVariant::avx2: return avx2::fn(__VA_ARGS__);                  \
    default: return base::fn(__VA_ARGS__);                                \
  }
#else
#define LLMOPT_CPU_CALL(fn, ...) return base::fn(__VA_ARGS__);
#endif

void matmul_dense(const DenseMatrix& w, const float* bias, const float* x, int64_t n, float* y) {
  check_dense(w);
  LLMOPT_CPU_CALL(matmul_dense, w, bias, x, n, y)
}

void dense_row(const DenseMatrix& w, int64_t r, float* out) {
  check_dense(w);
  LLMOPT_CPU_CALL(dense_row, w, r, out)
}

void matmul_quant(const QuantMatrix& w, const float* bias, const float* x, int64_t n, float* y) {
  check_quant(w);
  LLMOPT_CPU_CALL(matmul_quant, w, bias, x, n, y)
}

void dequant_rows(const QuantMatrix& w, int64_t r0, int64_t nr, float* out) {
  check_quant(w);
  LLMOPT_CPU_CALL(dequant_rows, w, r0, nr, out)
}

}  // namespace llmopt::backend
