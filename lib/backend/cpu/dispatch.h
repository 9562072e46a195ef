#pragma once
// The CPU matmul kernels, compiled once per instruction set (CMakeLists.txt: LLMOPT_CPU_KERNEL_SRCS) into
// namespaces llmopt::backend::{base, avx2, avx512}. The public entry points (matmul_dense and dense_row in
// kernels.h, matmul_quant and dequant_rows in qmatmul.h) check their arguments and call the variant picked once at
// run time: the best this CPU supports, or the one named by the environment variable LLMOPT_CPU
// (base | avx2 | avx512). The variants take already-checked arguments.
#include <cstdint>
#include <string_view>
#include <vector>

#include "lib/backend/cpu/qmatmul.h"
#include "lib/backend/cpu/kernels.h"

namespace llmopt::backend {

#define LLMOPT_CPU_DECLARE_VARIANT(ns)                                                            \
  namespace ns {                                                                                  \
  void matmul_dense(const DenseMatrix& w, const float* bias, const float* x, int64_t n, float* y); \
  void dense_row(const DenseMatrix& w, int64_t r, float* out);                                    \
  void matmul_quant(const QuantMatrix& w, const float* bias, const float* x, int64_t n, float* y); \
  void dequant_rows(const QuantMatrix& w, int64_t r0, int64_t nr, float* out);                    \
  }
LLMOPT_CPU_DECLARE_VARIANT(base)
#if LLMOPT_CPU_X86_VARIANTS
LLMOPT_CPU_DECLARE_VARIANT(avx2)    // -mavx2 -mfma -mf16c
LLMOPT_CPU_DECLARE_VARIANT(avx512)  // + AVX-512 F/BW/VL/DQ
#endif
#undef LLMOPT_CPU_DECLARE_VARIANT

enum class CpuVariant { base, avx2, avx512 };

std::string_view cpu_variant_name(CpuVariant v);
// Variants built into this binary that this CPU (and OS) can run, best last.
std::vector<CpuVariant> cpu_variants_supported();
// The variant the entry points use: LLMOPT_CPU if set (Error if unknown or unsupported), else the best.
CpuVariant cpu_variant();

}  // namespace llmopt::backend
