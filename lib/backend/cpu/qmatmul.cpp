// Quantized matmul on the canonical form of qmatmul.h. Threads split W's rows into tiles; a tile's codes are
// dequantized into a per-thread fp32 buffer (tile rows × cols) and multiplied against all n inputs by Eigen,
// so the weight is read once per call and never expanded whole. W8A8 quantizes the inputs per token and
// runs int8·uint8 → int32 dot products over the same tiles of codes.
// Compiled once per instruction set (variant.h); the checked entry points are in dispatch.cpp.
#include "lib/backend/cpu/variant.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>

#include "lib/backend/cpu/dispatch.h"
#include "lib/core/threads.h"

namespace llmopt::backend::LLMOPT_CPU_NS {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Row r's codes, one byte each, in stored column order (bits checked by the dispatcher).
void unpack_row(const QuantMatrix& w, int64_t r, uint8_t* q) {
  const uint8_t* b = w.codes + r * w.row_bytes();
  const int64_t C = w.cols;
  switch (w.storage_bits()) {
    case 8: std::copy_n(b, C, q); return;
    case 4:
      for (int64_t j = 0; j + 1 < C; j += 2) q[j] = b[j / 2] & 15, q[j + 1] = b[j / 2] >> 4;
      if (C % 2) q[C - 1] = b[C / 2] & 15;
      return;
    case 2:
      for (int64_t j = 0; j < C; ++j) q[j] = (b[j / 4] >> ((j % 4) * 2)) & 3;
      return;
  }
}

// Row r dequantized in stored column order.
void dequant_row_stored(const QuantMatrix& w, int64_t r, uint8_t* q, float* out) {
  unpack_row(w, r, q);
  for (int64_t g = 0; g < w.n_groups; ++g) {
    const float s = w.scales[r * w.n_groups + g];
    const int z = w.zeros[r * w.n_groups + g];
    for (int64_t j = w.groups[g]; j < w.groups[g + 1]; ++j) out[j] = s * float(int(q[j]) - z);
    if (w.mins) {
      const float m = w.mins[r * w.n_groups + g];
      for (int64_t j = w.groups[g]; j < w.groups[g + 1]; ++j) out[j] = out[j] + m;
    }
  }
}

// Per-token symmetric int8: s = max|x| / 127, q = round_half_even(x / s) in double.
void quantize_tokens(const float* x, int64_t n, int64_t C, int8_t* xq, double* sx) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * C;
    float m = 0;
    for (int64_t j = 0; j < C; ++j) m = std::max(m, std::fabs(xi[j]));
    const double s = double(m) / 127.0;
    sx[i] = s;
    for (int64_t j = 0; j < C; ++j)
      xq[i * C + j] = s > 0 ? int8_t(std::clamp(std::nearbyint(double(xi[j]) / s), -128.0, 127.0)) : int8_t(0);
  }
}

void matmul_w8a8(const QuantMatrix& w, const float* bias, const float* x, int64_t n, float* y) {
  const int64_t R = w.rows, C = w.cols, G = w.n_groups;
  std::unique_ptr<int8_t[]> xq(new int8_t[size_t(n * C)]);
  std::unique_ptr<double[]> sx(new double[size_t(n)]);
  quantize_tokens(x, n, C, xq.get(), sx.get());
  std::unique_ptr<int32_t[]> gsum(new int32_t[size_t(n * G)]());  // Σ x_q per group: the zero point's share
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t j = w.groups[g]; j < w.groups[g + 1]; ++j) gsum[i * G + g] += xq[i * C + j];
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    std::unique_ptr<uint8_t[]> q(new uint8_t[size_t(C)]);
    for (int64_t r = r0; r < r1; ++r) {
      unpack_row(w, r, q.get());
      for (int64_t i = 0; i < n; ++i) {
        const int8_t* xi = xq.get() + i * C;
        double acc = 0;
        for (int64_t g = 0; g < G; ++g) {
          int32_t d = 0;
          for (int64_t j = w.groups[g]; j < w.groups[g + 1]; ++j) d += int32_t(q[j]) * int32_t(xi[j]);
          d -= int32_t(w.zeros[r * G + g]) * gsum[i * G + g];
          acc += double(d) * double(w.scales[r * G + g]);
        }
        y[i * R + r] = float(acc * sx[i]) + (bias ? bias[r] : 0.0f);
      }
    }
  }, 8);
}

}  // namespace

void dequant_rows(const QuantMatrix& w, int64_t r0, int64_t nr, float* out) {
  const int64_t C = w.cols;
  std::unique_ptr<uint8_t[]> q(new uint8_t[size_t(C)]);
  std::unique_ptr<float[]> row(new float[size_t(C)]);
  for (int64_t r = 0; r < nr; ++r) {
    dequant_row_stored(w, r0 + r, q.get(), row.get());
    float* o = out + r * C;
    if (w.perm)
      for (int64_t j = 0; j < C; ++j) o[w.perm[j]] = row[j];
    else
      std::copy_n(row.get(), C, o);
  }
}

void matmul_quant(const QuantMatrix& w, const float* bias, const float* x, int64_t n, float* y) {
  const int64_t R = w.rows, C = w.cols;
  if (n <= 0 || R <= 0) return;
  std::unique_ptr<float[]> xp;  // act-order: the inputs gathered into stored column order
  if (w.perm) {
    xp.reset(new float[size_t(n * C)]);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < C; ++j) xp[i * C + j] = x[i * C + w.perm[j]];
    x = xp.get();
  }
  if (w.int8_activations) return matmul_w8a8(w, bias, x, n, y);

  if (n <= 8) {  // decode: each row dequantized into a per-thread buffer and dotted with the n inputs
    parallel_for(R, [&](int64_t r0, int64_t r1) {
      thread_local Scratch<float> row_buf;
      thread_local Scratch<uint8_t> q_buf;
      float* row = row_buf.get(size_t(C));
      uint8_t* q = q_buf.get(size_t(C));
      Eigen::Map<const Eigen::VectorXf> wr(row, C);
      for (int64_t r = r0; r < r1; ++r) {
        dequant_row_stored(w, r, q, row);
        for (int64_t i = 0; i < n; ++i)
          y[i * R + r] = wr.dot(Eigen::Map<const Eigen::VectorXf>(x + i * C, C)) + (bias ? bias[r] : 0.0f);
      }
    }, 16);
    return;
  }
  // Row tile: small for decode (more tiles to share among threads), larger for prefill (amortises Eigen's
  // packing of x), and at most ~256 KiB of fp32 per thread.
  const int64_t rb = std::clamp<int64_t>(64 * 4096 / std::max<int64_t>(C, 4096), 1, 64);
  const int64_t nblocks = (R + rb - 1) / rb;
  Eigen::Map<const RowMat> X(x, n, C);
  parallel_for(nblocks, [&](int64_t b0, int64_t b1) {
    thread_local Scratch<float> tile_buf;
    thread_local Scratch<uint8_t> q_buf;
    float* buf = tile_buf.get(size_t(rb * C));
    uint8_t* q = q_buf.get(size_t(C));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * rb, nr = std::min(rb, R - r0);
      for (int64_t r = 0; r < nr; ++r) dequant_row_stored(w, r0 + r, q, buf + r * C);
      Eigen::Map<const RowMat> W(buf, nr, C);
      Eigen::Map<RowMat, 0, Eigen::OuterStride<>> Y(y + r0, n, nr, Eigen::OuterStride<>(R));
      Y.noalias() = X * W.transpose();
      if (bias)
        for (int64_t i = 0; i < n; ++i)
          for (int64_t r = 0; r < nr; ++r) y[i * R + r0 + r] += bias[r0 + r];
    }
  });
}

}  // namespace llmopt::backend::LLMOPT_CPU_NS
