// Dense matmul y = x·Wᵀ (+b) with W in its stored dtype. Threads split W's rows into blocks; each
// block is widened to fp32 once (bf16/f16) and multiplied against all n input rows by Eigen, so
// a decode step reads every weight once for the whole batch.
// Compiled once per instruction set (variant.h); the checked entry points are in dispatch.cpp.
#include "lib/backend/cpu/variant.h"

#include <Eigen/Core>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>

#include "lib/backend/cpu/dispatch.h"
#include "lib/core/threads.h"

namespace llmopt::backend::LLMOPT_CPU_NS {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Widens `count` elements of w starting at element `offset` into dst (dtype checked by the dispatcher).
void widen(const DenseMatrix& w, int64_t offset, int64_t count, float* dst) {
  switch (w.dtype) {
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(w.data) + offset;
      uint32_t* d = reinterpret_cast<uint32_t*>(dst);
      for (int64_t i = 0; i < count; ++i) d[i] = uint32_t(s[i]) << 16;  // bf16 is the top half of fp32
      break;
    }
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(w.data) + offset;
      int64_t i = 0;
#if defined(__AVX512F__)
      for (; i + 16 <= count; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
#endif
      for (; i < count; ++i) dst[i] = f16_to_f32(s[i]);
      break;
    }
    default: std::copy_n(static_cast<const float*>(w.data) + offset, count, dst); break;  // F32
  }
}

#if defined(__AVX512F__)
// Decode kernel (n ≤ 8 input rows): each weight row is widened 16 elements at a time in registers and
// multiplied into N running sums, so W is read once from memory with no fp32 copy.
template <DType DT> inline __m512 load16(const void* base, int64_t i, __mmask16 m) {
  if constexpr (DT == DType::F32) return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + i);
  const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
  if constexpr (DT == DType::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  else return _mm512_cvtph_ps(h);
}

template <DType DT, int N>
void rows_small_n(const DenseMatrix& w, const float* bias, const float* x, float* y, int64_t r0, int64_t r1) {
  // RB weight rows at once: independent FMA chains hide latency and each x load serves RB rows
  constexpr int RB = N <= 2 ? 4 : N <= 4 ? 2 : 1;
  const int64_t C = w.cols, R = w.rows;
  const size_t esz = DT == DType::F32 ? 4 : 2;
  const std::byte* base = static_cast<const std::byte*>(w.data);
  for (int64_t r = r0; r < r1; r += RB) {
    const int nr = int(std::min<int64_t>(RB, r1 - r));
    const void* row[RB];
    for (int j = 0; j < RB; ++j) row[j] = base + size_t((r + std::min(j, nr - 1)) * C) * esz;
    __m512 acc[RB][N];
    for (int j = 0; j < RB; ++j)
      for (int i = 0; i < N; ++i) acc[j][i] = _mm512_setzero_ps();
    for (int64_t c = 0; c < C; c += 16) {
      const __mmask16 m = C - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (C - c)) - 1);
      __m512 wv[RB];
      for (int j = 0; j < RB; ++j) wv[j] = load16<DT>(row[j], c, m);
      for (int i = 0; i < N; ++i) {
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + i * C + c);
        for (int j = 0; j < RB; ++j) acc[j][i] = _mm512_fmadd_ps(wv[j], xv, acc[j][i]);
      }
    }
    for (int j = 0; j < nr; ++j)
      for (int i = 0; i < N; ++i) y[i * R + r + j] = _mm512_reduce_add_ps(acc[j][i]) + (bias ? bias[r + j] : 0.0f);
  }
}

template <DType DT>
void small_n(const DenseMatrix& w, const float* bias, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  switch (n) {
    case 1: return rows_small_n<DT, 1>(w, bias, x, y, r0, r1);
    case 2: return rows_small_n<DT, 2>(w, bias, x, y, r0, r1);
    case 3: return rows_small_n<DT, 3>(w, bias, x, y, r0, r1);
    case 4: return rows_small_n<DT, 4>(w, bias, x, y, r0, r1);
    case 5: return rows_small_n<DT, 5>(w, bias, x, y, r0, r1);
    case 6: return rows_small_n<DT, 6>(w, bias, x, y, r0, r1);
    case 7: return rows_small_n<DT, 7>(w, bias, x, y, r0, r1);
    default: return rows_small_n<DT, 8>(w, bias, x, y, r0, r1);
  }
}
#endif

}  // namespace

void dense_row(const DenseMatrix& w, int64_t r, float* out) { widen(w, r * w.cols, w.cols, out); }

void matmul_dense(const DenseMatrix& w, const float* bias, const float* x, int64_t n, float* y) {
  const int64_t R = w.rows, C = w.cols;
  if (n <= 0 || R <= 0) return;
#if defined(__AVX512F__)
  if (n <= 8) {
    parallel_for(R, [&](int64_t r0, int64_t r1) {
      switch (w.dtype) {
        case DType::BF16: small_n<DType::BF16>(w, bias, x, n, y, r0, r1); break;
        case DType::F16: small_n<DType::F16>(w, bias, x, n, y, r0, r1); break;
        default: small_n<DType::F32>(w, bias, x, n, y, r0, r1); break;
      }
    }, std::max<int64_t>(16, grain_for(double(n * C))));
    return;
  }
#endif
  // Row block: small for decode (many blocks to share among threads), larger for prefill (amortises
  // Eigen's packing of x across more output columns).
  const int64_t rb = n <= 8 ? 16 : 128;
  const int64_t nblocks = (R + rb - 1) / rb;
  Eigen::Map<const RowMat> X(x, n, C);
  parallel_for(nblocks, [&](int64_t b0, int64_t b1) {
    thread_local Scratch<float> buf;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * rb, nr = std::min(rb, R - r0);
      const float* wp;
      if (w.dtype == DType::F32) {
        wp = static_cast<const float*>(w.data) + r0 * C;
      } else {
        float* b = buf.get(size_t(nr * C));
        widen(w, r0 * C, nr * C, b);
        wp = b;
      }
      Eigen::Map<const RowMat> W(wp, nr, C);
      Eigen::Map<RowMat, 0, Eigen::OuterStride<>> Y(y + r0, n, nr, Eigen::OuterStride<>(R));
      Y.noalias() = X * W.transpose();
      if (bias)
        for (int64_t i = 0; i < n; ++i)
          for (int64_t r = 0; r < nr; ++r) y[i * R + r0 + r] += bias[r0 + r];
    }
  }, grain_for(double(rb * C * n)));
}

}  // namespace llmopt::backend::LLMOPT_CPU_NS
