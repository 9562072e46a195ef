#pragma once
// The layer-wise Hessian of the OBS/OBQ family (GPTQ, SparseGPT): for ‖WX − ŴX‖² the Hessian w.r.t. a
// row of W is H = 2 X Xᵀ (here normalised by the number of samples), and every method needs the upper
// Cholesky factor of (H + λI)⁻¹.
//
// Precision: H is accumulated in fp32, as the references do (AutoGPTQ, llm-compressor GPTQ_PRECISION);
// the dampening and the factorization are done in double (one Cholesky of the order-reversed H and a
// triangular inverse, equal to the reference's cholesky → cholesky_inverse → cholesky(upper)) and the
// factor is returned in fp32 (the GPTQ/SparseGPT sweeps run in fp32 like the references).
#include <cstdint>
#include <vector>

#include <Eigen/Core>

namespace llmopt::quant {

// Running mean H = 2/n Σ x xᵀ over calibration samples, updated exactly as the GPTQ reference's
// add_batch: H *= n/(n+m); x *= sqrt(2/(n+m)); H += x xᵀ. Only the scale of H depends on how samples
// are counted (the references count sequences, not tokens); GPTQ's result does not.
class Hessian {
 public:
  explicit Hessian(int64_t cols);

  // x: [tokens, cols] row-major activations (the linear's inputs); they count as `samples` samples
  // (−1: one per token row).
  void add_batch(const float* x, int64_t tokens, int64_t samples = -1);

  int64_t cols() const { return cols_; }
  int64_t n_samples() const { return n_; }
  Eigen::MatrixXf matrix() const;  // the full symmetric H [cols, cols]

 private:
  int64_t cols_ = 0, n_ = 0;
  Eigen::MatrixXf lower_;  // only the lower triangle is kept up to date (rank-k updates)
};

// Dead inputs (a column never activated, H_ii == 0): set H_ii = 1 and zero W[:, i] (W [rows, cols]
// row-major, may be null). Returns the dead column indices.
std::vector<int64_t> fix_dead_columns(Eigen::MatrixXf& H, float* W, int64_t rows);

// U, upper triangular, with Uᵀ U = (H + λI)⁻¹ and λ = damp · mean(diag H) (GPTQ's percdamp, 0.01).
// Row i of U holds what GPTQ/SparseGPT need when column i is eliminated: U_ii is the sqrt of [H⁻¹]_ii
// after eliminating columns < i, and U_i,j>i/U_ii the OBS update of the remaining columns.
// Error when H + λI is not positive definite (raise damp).
Eigen::MatrixXf inverse_cholesky_upper(const Eigen::MatrixXf& H, double damp);

}  // namespace llmopt::quant
