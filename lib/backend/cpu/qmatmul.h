#pragma once
// Matmul for quantized linears, one kernel for every quantized format (GPTQ, AWQ, compressed-tensors
// pack-quantized and int-quantized, GGUF blocks): each format's loader (lib/model/linear_quant.h) converts its packing
// into the one canonical form below, so the formats differ only in their loaders.
//
// Canonical form of a quantized weight W [rows = out, cols = in]:
//   codes   [rows, row_bytes]  unsigned codes q in [0, 2^bits) of row r, in *stored column order*, packed
//                              8 / sbits per byte, low bits first, with sbits = 4 for 3-bit codes, 8 for 5-
//                              and 6-bit codes (one per byte) and = bits otherwise (so a code never straddles a
//                              byte); row_bytes = ceil(cols·sbits/8)
//   groups  [n_groups + 1]     group g covers stored columns [groups[g], groups[g+1])
//   scales  [rows, n_groups]   fp32
//   zeros   [rows, n_groups]   unsigned zero point in code units (2^(bits-1) for symmetric)
//   mins    [rows, n_groups]   fp32 offset added after scaling, or null (= 0): GGUF's Q4_1/Q5_1/K-quant minimums
//   perm    [cols] or null     act-order: stored column j is input column perm[j] (null: identity)
//   W[r][perm[j]] = (q[r][j] − zeros[r][g]) · scales[r][g] (+ mins[r][g]),  g the group holding stored column j
//   (the scale product and the min are separate fp32 operations, so GGUF blocks decode bit for bit as ggml's).
// Weight-only (W4A16 etc.): rows are dequantized a tile at a time into a small per-thread fp32 buffer and
// multiplied against all n inputs; the full matrix is never dequantized.
// W8A8 (int8_activations, bits 8): each input row is quantized at run time, symmetric per token,
// s_x = max|x| / 127, x_q = round_half_even(x / s_x) (computed in double, as vLLM's dynamic int8 quant),
// then per group  acc = Σ q·x_q − zero·Σ x_q  in int32 and  y = Σ_g acc_g · scale[r][g] · s_x.
#include <cstdint>

namespace llmopt::backend {

struct QuantMatrix {
  int bits = 4;
  int64_t rows = 0, cols = 0, n_groups = 0;
  const uint8_t* codes = nullptr;
  const int64_t* groups = nullptr;
  const float* scales = nullptr;
  const uint8_t* zeros = nullptr;
  const float* mins = nullptr;
  const int32_t* perm = nullptr;
  bool int8_activations = false;

  static int storage_bits(int bits) { return bits == 3 ? 4 : bits == 5 || bits == 6 ? 8 : bits; }
  int storage_bits() const { return storage_bits(bits); }
  int64_t row_bytes() const { return (cols * storage_bits() + 7) / 8; }
  // Code of stored column j in row r.
  uint8_t code(int64_t r, int64_t j) const {
    const int sb = storage_bits(), per = 8 / sb;
    return uint8_t((codes[r * row_bytes() + j / per] >> ((j % per) * sb)) & ((1 << sb) - 1));
  }
};

// Sets code j of a row (the row's bytes must start zeroed).
inline void put_code(uint8_t* row, int sbits, int64_t j, uint8_t q) {
  const int per = 8 / sbits;
  row[j / per] |= uint8_t(q << ((j % per) * sbits));
}

// y[n, rows] = x[n, cols] · Wᵀ (+ bias[rows] when non-null).
void matmul_quant(const QuantMatrix& w, const float* bias, const float* x, int64_t n, float* y);

// Rows [r0, r0 + nr) of W dequantized to fp32, in input column order: out [nr, cols].
void dequant_rows(const QuantMatrix& w, int64_t r0, int64_t nr, float* out);

}  // namespace llmopt::backend
