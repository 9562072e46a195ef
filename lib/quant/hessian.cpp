#include "lib/quant/hessian.h"

#include <Eigen/Cholesky>
#include <cmath>

#include "lib/core/error.h"

namespace llmopt::quant {

Hessian::Hessian(int64_t cols) : cols_(cols), lower_(Eigen::MatrixXf::Zero(cols, cols)) {}

void Hessian::add_batch(const float* x, int64_t tokens, int64_t samples) {
  if (tokens <= 0) return;
  const int64_t m = samples < 0 ? tokens : samples;
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RowMajor> X(x, tokens, cols_);
  lower_ *= float(double(n_) / double(n_ + m));  // H *= n/(n+m)
  n_ += m;
  // H += (sqrt(2/n) X)ᵀ (sqrt(2/n) X), as one symmetric rank-k update of the lower triangle
  const float a = float(std::sqrt(2.0 / double(n_)));
  RowMajor Xs = a * X;
  lower_.selfadjointView<Eigen::Lower>().rankUpdate(Xs.transpose());
}

Eigen::MatrixXf Hessian::matrix() const {
  Eigen::MatrixXf H = lower_.selfadjointView<Eigen::Lower>();
  return H;
}

std::vector<int64_t> fix_dead_columns(Eigen::MatrixXf& H, float* W, int64_t rows) {
  std::vector<int64_t> dead;
  const int64_t cols = H.rows();
  for (int64_t i = 0; i < cols; i++) {
    if (H(i, i) != 0.0f) continue;
    dead.push_back(i);
    H(i, i) = 1.0f;
    if (W)
      for (int64_t r = 0; r < rows; r++) W[r * cols + i] = 0.0f;
  }
  return dead;
}

Eigen::MatrixXf inverse_cholesky_upper(const Eigen::MatrixXf& H, double damp) {
  const int64_t n = H.rows();
  Eigen::MatrixXd Hd = H.cast<double>();
  const double lambda = damp * Hd.diagonal().mean();
  Hd.diagonal().array() += lambda;
  // The reference computes cholesky(cholesky_inverse(cholesky(H)), upper=True). One factorization
  // gives the same U: with P the order reversal and P H P = L Lᵀ, H⁻¹ = (P L⁻¹ P)ᵀ (P L⁻¹ P) and
  // P L⁻¹ P is upper triangular with a positive diagonal, i.e. the (unique) upper factor of H⁻¹.
  Eigen::MatrixXd R = Hd.reverse();  // P H P
  Eigen::LLT<Eigen::MatrixXd> llt(R);
  if (llt.info() != Eigen::Success)
    fail("GPTQ: Hessian [{}x{}] is not positive definite after dampening {} (try a larger damp)", n, n, damp);
  Eigen::MatrixXd Linv = Eigen::MatrixXd::Identity(n, n);
  llt.matrixL().solveInPlace(Linv);  // L⁻¹
  Eigen::MatrixXf U = Linv.reverse().cast<float>();  // P L⁻¹ P
  return U;
}

}  // namespace llmopt::quant
