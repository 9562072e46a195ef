#include "lib/quant/grid.h"

#include <algorithm>
#include <cfloat>

#include "lib/core/error.h"

namespace llmopt::quant {

int64_t QuantGrid::n_groups(int64_t cols) const {
  int64_t g = group_cols(cols);
  return g > 0 ? (cols + g - 1) / g : 0;
}

void QuantGrid::validate(int64_t cols) const {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8) fail("quantization bits {} not supported (2, 3, 4, 8)", bits);
  if (group_size == 0 || group_size < -1) fail("group size {} not supported (a positive number, or -1 for per channel)", group_size);
  if (cols <= 0) fail("cannot quantize a matrix with {} columns", cols);
}

void find_params(const float* w, int64_t rows, int64_t k, int64_t ld, const QuantGrid& grid, float* scale,
                 int32_t* zero) {
  const float maxq = float(grid.maxq());
  for (int64_t r = 0; r < rows; r++) {
    const float* x = w + r * ld;
    float lo = 0.0f, hi = 0.0f;  // min ≤ 0 ≤ max: zero is always representable
    for (int64_t c = 0; c < k; c++) lo = std::min(lo, x[c]), hi = std::max(hi, x[c]);
    float s;
    int32_t z;
    if (grid.sym) {
      s = std::max(-lo, hi) / (maxq / 2.0f);  // max|w| / ((2^b − 1) / 2)
      z = (grid.maxq() + 1) / 2;              // 2^(b−1)
    } else {
      s = (hi - lo) / maxq;
      z = 0;
      if (s != 0.0f) z = int32_t(std::nearbyint(-lo / s));
    }
    if (s == 0.0f) s = FLT_EPSILON;  // all-zero group: any scale dequantizes to 0
    scale[r] = s;
    zero[r] = std::clamp(z, 0, grid.maxq());
  }
}

std::vector<float> QuantizedMatrix::dequantize() const {
  const int64_t ng = n_groups();
  std::vector<float> out(size_t(rows * cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      int64_t g = g_idx[c];
      out[r * cols + c] = dequantize_code(codes[r * cols + c], scales[r * ng + g], zeros[r * ng + g]);
    }
  return out;
}

bool QuantizedMatrix::trivial_g_idx() const {
  const int64_t G = grid.group_cols(cols);
  for (int64_t c = 0; c < cols; c++)
    if (g_idx[c] != c / G) return false;
  return true;
}

}  // namespace llmopt::quant
