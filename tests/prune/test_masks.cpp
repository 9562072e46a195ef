// Magnitude and Wanda against llm-compressor (scripts/golden/prune_golden.py): Wanda's sparsify_weight
// (50%, 70%, 2:4 and 3:4, W [48,128] and ragged [48,172], one dead input channel), the magnitude mask
// creator (one threshold per matrix) and a numpy per-row magnitude mask. Masks must agree on ≥ 99% of
// entries (they are exact here), the output is W with the mask zeroed, and the sparsity is exact.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "golden.h"
#include "lib/core/error.h"
#include "lib/prune/magnitude.h"
#include "lib/prune/pattern.h"
#include "lib/prune/wanda.h"

using namespace llmopt::prune;

namespace {

SparsityPattern pattern_of(const nlohmann::json& c) {
  SparsityPattern p;
  p.sparsity = c["sparsity"];
  p.n = c["n"], p.m = c["m"];
  return p;
}

// Exact sparsity: floor(cols·p) per row (unstructured per row) or exactly m − n zeros per m inputs.
void check_exact(const std::vector<uint8_t>& mask, int64_t rows, int64_t cols, const SparsityPattern& p) {
  for (int64_t r = 0; r < rows; r++) {
    if (p.nm()) {
      for (int64_t c0 = 0; c0 < cols; c0 += p.m) {
        int pruned = 0;
        for (int64_t c = c0; c < c0 + p.m; c++) pruned += mask[r * cols + c];
        REQUIRE(pruned == p.m - p.n);
      }
    } else {
      int64_t pruned = 0;
      for (int64_t c = 0; c < cols; c++) pruned += mask[r * cols + c];
      REQUIRE(pruned == int64_t(double(cols) * p.sparsity));
    }
  }
}

}  // namespace

TEST_CASE("Wanda and magnitude match llm-compressor") {
  auto idx = golden::index();
  auto in = golden::inputs();
  int n = 0;
  for (auto& c : idx["cases"]) {
    if (c["method"] == "sparsegpt") continue;
    const std::string name = c["name"];
    CAPTURE(name);
    const int64_t rows = in.rows, cols = c["cols"];
    const SparsityPattern p = pattern_of(c);
    const Scope scope = c["scope"] == "matrix" ? Scope::matrix : Scope::row;
    auto W0 = golden::left_cols(in.W, rows, in.cols, cols);
    auto ref = golden::load_mask(c["mask"], size_t(rows * cols));

    auto W = W0;
    std::vector<uint8_t> mask;
    if (c["method"] == "wanda") {
      mask = wanda_prune(W.data(), rows, cols, in.x_sq.data(), p, scope);
      // llm-compressor's statistic (Σx² / samples) is a positive multiple: the same mask
      auto W2 = W0;
      CHECK(wanda_prune(W2.data(), rows, cols, in.S.data(), p, scope) == mask);
    } else {
      mask = magnitude_prune(W.data(), rows, cols, p, scope);
    }
    const double agree = golden::agreement(mask, ref);
    MESSAGE(name << ": mask agrees " << agree * 100 << "%");
    CHECK(agree >= 0.99);
    CHECK(mask == ref);  // exact on this data (no ties)
    for (size_t i = 0; i < W.size(); i++) REQUIRE(W[i] == (mask[i] ? 0.0f : W0[i]));
    if (scope == Scope::row) check_exact(mask, rows, cols, p);
    else CHECK(std::count(mask.begin(), mask.end(), 1) == int64_t(double(rows * cols) * p.sparsity));
    if (p.nm()) CHECK(is_nm_sparse(W.data(), rows, cols, p.n, p.m));
    n++;
  }
  CHECK(n == 8);
}

TEST_CASE("Wanda prunes the dead input first and depends on activations, magnitude does not") {
  auto in = golden::inputs();
  auto idx = golden::index();
  const int64_t dead = idx["dead_column"], rows = in.rows, cols = in.cols;
  auto Wm = in.W, Ww = in.W;
  auto mm = magnitude_prune(Wm.data(), rows, cols, {0.5});
  auto mw = wanda_prune(Ww.data(), rows, cols, in.x_sq.data(), {0.5});
  for (int64_t r = 0; r < rows; r++) CHECK(mw[r * cols + dead] == 1);
  CHECK(golden::agreement(mm, mw) < 0.9);  // the activation norms (exp(0.7·N(0,1)) scales) move the mask
  // magnitude N:M keeps the n largest |w| of each group
  auto W = in.W;
  auto m = magnitude_prune(W.data(), rows, cols, {0.0, 2, 4});
  for (int64_t i = 0; i < rows * cols; i += 4) {
    float kept_min = INFINITY, pruned_max = 0;
    for (int64_t k = i; k < i + 4; k++) {
      const float a = std::fabs(in.W[k]);
      if (m[k]) pruned_max = std::max(pruned_max, a);
      else kept_min = std::min(kept_min, a);
    }
    REQUIRE(kept_min >= pruned_max);
  }
  CHECK(is_nm_sparse(W.data(), rows, cols, 2, 4));
  CHECK(!is_nm_sparse(in.W.data(), rows, cols, 2, 4));
}

TEST_CASE("bad patterns are rejected") {
  std::vector<float> W(6 * 10, 1.0f), x(10, 1.0f);
  CHECK_THROWS_AS(magnitude_prune(W.data(), 6, 10, {0.0, 2, 4}), llmopt::Error);  // 10 % 4 != 0
  CHECK_THROWS_AS(magnitude_prune(W.data(), 6, 10, {1.0}), llmopt::Error);
  CHECK_THROWS_AS(magnitude_prune(W.data(), 6, 10, {-0.1}), llmopt::Error);
  CHECK_THROWS_AS(magnitude_prune(W.data(), 6, 10, {0.0, 3, 2}), llmopt::Error);
  x[3] = -1.0f;
  CHECK_THROWS_AS(wanda_prune(W.data(), 6, 10, x.data(), {0.5}), llmopt::Error);
  W[7] = NAN;
  x[3] = 1.0f;
  CHECK_THROWS_AS(wanda_prune(W.data(), 6, 10, x.data(), {0.5}), llmopt::Error);
  CHECK(SparsityPattern{0.0, 2, 4}.str() == "2:4");
  CHECK(SparsityPattern{0.5}.str() == "50%");
}
