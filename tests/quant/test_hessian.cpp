// H accumulation against AutoGPTQ's add_batch on the same activations (testdata/quant/H.f32), dead
// columns, and the dampened inverse Cholesky factor shared by GPTQ and SparseGPT.
#include <doctest/doctest.h>

#include <Eigen/Dense>

#include "golden.h"
#include "lib/core/error.h"
#include "lib/quant/hessian.h"

using namespace llmopt::quant;

TEST_CASE("running-mean H matches the GPTQ reference's add_batch") {
  auto idx = golden::index();
  const int64_t cols = idx["cols"], tokens = idx["tokens"];
  auto X = golden::load_f16(idx["files"]["X"], size_t(tokens * cols));
  auto Href = golden::load<float>(idx["files"]["H"], size_t(cols * cols));
  Hessian h(cols);
  for (int b = 0; b < 4; b++) h.add_batch(X.data() + b * 64 * cols, 64, /*samples=*/2);  // 2 sequences of 32
  CHECK(h.n_samples() == idx["sequences"].get<int64_t>());
  Eigen::MatrixXf H = h.matrix();
  Eigen::Map<const Eigen::MatrixXf> R(Href.data(), cols, cols);  // symmetric: layout does not matter
  const float scale = R.cwiseAbs().maxCoeff();
  CHECK((H - R).cwiseAbs().maxCoeff() <= 2e-6f * scale);
  CHECK((H - H.transpose()).cwiseAbs().maxCoeff() == 0.0f);

  // one batch of all 256 tokens as 8 samples: the same mean
  Hessian h1(cols);
  h1.add_batch(X.data(), tokens, 8);
  CHECK((h1.matrix() - R).cwiseAbs().maxCoeff() <= 2e-6f * scale);
}

TEST_CASE("dampened inverse Cholesky factor") {
  auto idx = golden::index();
  const int64_t cols = idx["cols"];
  auto Hv = golden::load<float>(idx["files"]["H"], size_t(cols * cols));
  Eigen::MatrixXf H = Eigen::Map<const Eigen::MatrixXf>(Hv.data(), cols, cols);
  const double damp = 0.01;
  Eigen::MatrixXf U = inverse_cholesky_upper(H, damp);
  CHECK(U.triangularView<Eigen::StrictlyLower>().toDenseMatrix().cwiseAbs().maxCoeff() == 0.0f);
  Eigen::MatrixXd Hd = H.cast<double>();
  Hd.diagonal().array() += damp * Hd.diagonal().mean();
  Eigen::MatrixXd I = U.cast<double>().transpose() * U.cast<double>() * Hd;  // Uᵀ U = (H + λI)⁻¹
  CHECK((I - Eigen::MatrixXd::Identity(cols, cols)).cwiseAbs().maxCoeff() < 1e-4);
  for (int64_t i = 0; i < cols; i++) CHECK(U(i, i) > 0.0f);

  Eigen::MatrixXf bad = -Eigen::MatrixXf::Identity(4, 4);
  CHECK_THROWS_AS(inverse_cholesky_upper(bad, 0.01), llmopt::Error);
}

TEST_CASE("dead columns") {
  Eigen::MatrixXf H = Eigen::MatrixXf::Identity(3, 3) * 2.0f;
  H(1, 1) = 0.0f;
  std::vector<float> W = {1, 2, 3, 4, 5, 6};  // [2, 3]
  auto dead = fix_dead_columns(H, W.data(), 2);
  CHECK(dead == std::vector<int64_t>{1});
  CHECK(H(1, 1) == 1.0f);
  CHECK(W == std::vector<float>{1, 0, 3, 4, 0, 6});
}
