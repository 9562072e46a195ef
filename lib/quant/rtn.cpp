#include "lib/quant/rtn.h"

#include <algorithm>
#include <vector>

namespace llmopt::quant {

QuantizedMatrix rtn_quantize(const float* W, int64_t rows, int64_t cols, const QuantGrid& grid) {
  grid.validate(cols);
  const int64_t G = grid.group_cols(cols), ng = grid.n_groups(cols);
  QuantizedMatrix q;
  q.rows = rows, q.cols = cols, q.grid = grid;
  q.codes.resize(size_t(rows * cols));
  q.scales.resize(size_t(rows * ng));
  q.zeros.resize(size_t(rows * ng));
  q.g_idx.resize(size_t(cols));
  for (int64_t c = 0; c < cols; c++) q.g_idx[c] = int32_t(c / G);

  std::vector<float> s(static_cast<size_t>(rows));
  std::vector<int32_t> z(static_cast<size_t>(rows));
  for (int64_t g = 0; g < ng; g++) {
    const int64_t c0 = g * G, k = std::min(G, cols - c0);  // the last group may be ragged
    find_params(W + c0, rows, k, cols, grid, s.data(), z.data());
    for (int64_t r = 0; r < rows; r++) {
      q.scales[r * ng + g] = s[r], q.zeros[r * ng + g] = z[r];
      for (int64_t c = c0; c < c0 + k; c++)
        q.codes[r * cols + c] = uint8_t(quantize_code(W[r * cols + c], s[r], z[r], grid.maxq()));
    }
  }
  return q;
}

}  // namespace llmopt::quant
