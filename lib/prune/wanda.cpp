#include "lib/prune/wanda.h"

#include <cmath>

#include "lib/core/error.h"

namespace llmopt::prune {

std::vector<uint8_t> wanda_prune(float* W, int64_t rows, int64_t cols, const float* x_sq_norm,
                                 const SparsityPattern& pattern, Scope scope) {
  std::vector<float> norm(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; c++) {
    if (!(x_sq_norm[c] >= 0.0f)) fail("Wanda: activation statistic of input {} is {} (must be >= 0)", c, x_sq_norm[c]);
    norm[c] = std::sqrt(x_sq_norm[c]);  // ‖X_j‖₂
  }
  std::vector<float> score(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) score[r * cols + c] = std::fabs(W[r * cols + c]) * norm[c];
  auto mask = select_mask(score.data(), rows, cols, pattern, scope);
  apply_mask(W, mask.data(), rows * cols);
  return mask;
}

}  // namespace llmopt::prune
