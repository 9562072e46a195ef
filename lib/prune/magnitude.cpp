#include "lib/prune/magnitude.h"

#include <cmath>

namespace llmopt::prune {

std::vector<uint8_t> magnitude_prune(float* W, int64_t rows, int64_t cols, const SparsityPattern& pattern,
                                     Scope scope) {
  std::vector<float> score(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < score.size(); i++) score[i] = std::fabs(W[i]);
  auto mask = select_mask(score.data(), rows, cols, pattern, scope);
  apply_mask(W, mask.data(), rows * cols);
  return mask;
}

}  // namespace llmopt::prune
