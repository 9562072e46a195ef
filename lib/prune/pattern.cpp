#include "lib/prune/pattern.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "lib/core/error.h"
#include "lib/core/threads.h"

namespace llmopt::prune {

std::string SparsityPattern::str() const {
  return nm() ? fmt::format("{}:{}", n, m) : fmt::format("{:g}%", sparsity * 100.0);
}

void SparsityPattern::validate(int64_t cols) const {
  if (nm()) {
    if (n < 0 || n > m) fail("invalid N:M sparsity {}: need 0 <= N <= M", str());
    if (cols % m != 0) fail("N:M sparsity {} needs the input size to be a multiple of {}, got {}", str(), m, cols);
  } else if (!(sparsity >= 0.0 && sparsity < 1.0)) {
    fail("invalid sparsity {}: must be in [0, 1)", sparsity);
  }
}

namespace {

// Prune the k lowest of score[idx[0..len)] (ties: lower index first) by setting mask[idx[i]] = 1.
void prune_lowest(const float* score, int64_t* idx, int64_t len, int64_t k, uint8_t* mask) {
  if (k <= 0) return;
  auto lower = [&](int64_t a, int64_t b) { return score[a] < score[b] || (score[a] == score[b] && a < b); };
  if (k < len) std::nth_element(idx, idx + k - 1, idx + len, lower);  // a strict total order: a unique set
  for (int64_t i = 0; i < std::min(k, len); i++) mask[idx[i]] = 1;
}

}  // namespace

std::vector<uint8_t> select_mask(const float* score, int64_t rows, int64_t cols, const SparsityPattern& p,
                                 Scope scope) {
  p.validate(cols);
  const int64_t total = rows * cols;
  for (int64_t i = 0; i < total; i++)
    if (std::isnan(score[i])) fail("cannot prune: score of weight [{}, {}] is NaN", i / cols, i % cols);
  std::vector<uint8_t> mask(static_cast<size_t>(total), 0);
  if (p.nm() || scope == Scope::row) {
    parallel_for(rows, [&](int64_t r0, int64_t r1) {
      std::vector<int64_t> idx(static_cast<size_t>(cols));
      for (int64_t r = r0; r < r1; r++) {
        const int64_t len = p.nm() ? p.m : cols, k = p.nm() ? p.m - p.n : int64_t(double(cols) * p.sparsity);
        for (int64_t c0 = 0; c0 < cols; c0 += len) {
          std::iota(idx.begin(), idx.begin() + len, r * cols + c0);
          prune_lowest(score, idx.data(), len, k, mask.data());
        }
      }
    }, 16);
  } else {
    std::vector<int64_t> idx(static_cast<size_t>(total));
    std::iota(idx.begin(), idx.end(), 0);
    prune_lowest(score, idx.data(), total, int64_t(double(total) * p.sparsity), mask.data());
  }
  return mask;
}

int64_t apply_mask(float* W, const uint8_t* mask, int64_t n) {
  int64_t pruned = 0;
  for (int64_t i = 0; i < n; i++)
    if (mask[i]) W[i] = 0.0f, pruned++;
  return pruned;
}

bool is_nm_sparse(const float* W, int64_t rows, int64_t cols, int n, int m) {
  if (m <= 0 || cols % m != 0) return false;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c0 = 0; c0 < cols; c0 += m) {
      int nz = 0;
      for (int64_t c = c0; c < c0 + m; c++) nz += W[r * cols + c] != 0.0f;
      if (nz > n) return false;
    }
  return true;
}

}  // namespace llmopt::prune
