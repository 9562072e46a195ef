#pragma once
// The integer quantization grid shared by every weight quantizer (RTN, GPTQ, later AWQ), and the
// QuantizedMatrix they all return.
//
// Convention (one for the whole library; the formats convert on write):
//   codes are UNSIGNED, q ∈ [0, maxq] with maxq = 2^bits − 1, and w ≈ scale · (q − zero).
//   asym: min ← min(min(w), 0), max ← max(max(w), 0)   (0 must be representable)
//         scale = (max − min) / maxq,  zero = round(−min / scale) ∈ [0, maxq]
//   sym:  scale = max|w| / (maxq / 2),  zero = 2^(bits−1)  (AutoGPTQ's "(maxq+1)/2")
//   q = clamp(round(w / scale) + zero, 0, maxq), round = half-to-even (torch.round)
//   A group whose range is 0 (all zeros) gets scale = FLT_EPSILON (compressed-tensors' choice).
// This is AutoGPTQ's Quantizer.find_params/quantize (GPTQ checkpoint layout: qweight unsigned, zeros
// unsigned) and, shifted by 2^(bits−1), compressed-tensors' calculate_qparams/_quantize, which keeps
// codes signed in [−2^(bits−1), 2^(bits−1)−1] with zero_point = code_zero − 2^(bits−1) (0 for sym).
// The two references agree everywhere except two degenerate cases where we follow compressed-tensors:
// an all-zero group (AutoGPTQ uses min=−1, max=1) and, for sym, a group with no negative weight
// (AutoGPTQ then uses scale = max/maxq instead of max/(maxq/2)).
//
// Groups: group_size G > 0 splits the input columns into n_groups = ceil(cols / G) groups of G
// consecutive columns; when G does not divide cols (stories260K: 172 = 5·32 + 12) the LAST group is a
// ragged group of cols % G columns with its own scale/zero. G = −1 means one group per output row
// (per-channel). g_idx[c] names the group of input column c (c / G, unless GPTQ act-order regrouped).
#include <cstdint>
#include <vector>

namespace llmopt::quant {

struct QuantGrid {
  int bits = 4;          // 2, 3, 4 or 8
  int group_size = 128;  // columns per group; −1 = per output channel
  bool sym = false;

  int maxq() const { return (1 << bits) - 1; }
  int64_t group_cols(int64_t cols) const { return group_size > 0 ? group_size : cols; }  // G
  int64_t n_groups(int64_t cols) const;  // ceil(cols / G)
  void validate(int64_t cols) const;     // Error on unsupported bits / group size
};

// Per-row scale and zero of one group: w is [rows, k] with row stride `ld` (k columns of a row-major
// matrix); writes scale[rows], zero[rows].
void find_params(const float* w, int64_t rows, int64_t k, int64_t ld, const QuantGrid& grid, float* scale,
                 int32_t* zero);

// q = clamp(round(w / scale) + zero, 0, maxq)
inline int quantize_code(float w, float scale, int32_t zero, int maxq);
// scale · (q − zero)
inline float dequantize_code(int q, float scale, int32_t zero) { return scale * float(q - zero); }

struct QuantizedMatrix {
  int64_t rows = 0, cols = 0;  // the linear's [out, in]
  QuantGrid grid;
  std::vector<uint8_t> codes;   // [rows, cols] row-major, original column order, in [0, maxq]
  std::vector<float> scales;    // [rows, n_groups] (fp32 here; stored fp16 by the formats)
  std::vector<int32_t> zeros;   // [rows, n_groups] in [0, maxq]; sym: 2^(bits−1)
  std::vector<int32_t> g_idx;   // [cols] group of each input column

  int64_t n_groups() const { return grid.n_groups(cols); }
  // W'[r, c] = scales[r, g] · (codes[r, c] − zeros[r, g]), g = g_idx[c]; [rows, cols] row-major.
  std::vector<float> dequantize() const;
  // Identity grouping (g_idx[c] == c / G)? True unless GPTQ act-order with dynamic groups.
  bool trivial_g_idx() const;
};

}  // namespace llmopt::quant

// ---- inline -------------------------------------------------------------------------------------
#include <cmath>

namespace llmopt::quant {
inline int quantize_code(float w, float scale, int32_t zero, int maxq) {
  float q = std::nearbyint(w / scale) + float(zero);  // nearbyint: round half to even, like torch.round
  return int(std::fmin(std::fmax(q, 0.0f), float(maxq)));
}
}  // namespace llmopt::quant
