#include "lib/quant/gptq.h"

#include <algorithm>
#include <numeric>

#include "lib/core/error.h"
#include "lib/core/threads.h"
#include "lib/quant/hessian.h"

namespace llmopt::quant {

namespace {

using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kTile = 16;  // rows per task; fixed so results do not depend on the thread count

// Scale/zero of every group, [rows, n_groups] (per channel and static groups: known before the sweep).
struct Params {
  std::vector<float> scale;
  std::vector<int32_t> zero;
};

}  // namespace

GptqResult gptq_quantize(const float* W_in, int64_t rows, int64_t cols, const Eigen::MatrixXf& H_in,
                         const GptqOptions& opt) {
  const QuantGrid& grid = opt.grid;
  grid.validate(cols);
  if (H_in.rows() != cols || H_in.cols() != cols)
    fail("GPTQ: Hessian is {}x{}, expected {}x{} for a weight with {} columns", H_in.rows(), H_in.cols(), cols, cols, cols);
  if (opt.block_size <= 0) fail("GPTQ: block size {} must be positive", opt.block_size);
  const int64_t G = grid.group_cols(cols), ng = grid.n_groups(cols), B = opt.block_size;
  const bool per_channel = grid.group_size < 0;
  const int maxq = grid.maxq();

  MatrixRM W = Eigen::Map<const MatrixRM>(W_in, rows, cols);
  Eigen::MatrixXf H = H_in;
  fix_dead_columns(H, W.data(), rows);  // H_ii = 1, W[:, i] = 0 for inputs never seen

  // Static params (per channel, or static_groups): from the original W, original column groups.
  Params fixed;
  if (per_channel || opt.static_groups) {
    fixed.scale.resize(size_t(rows * ng));
    fixed.zero.resize(size_t(rows * ng));
    std::vector<float> s(static_cast<size_t>(rows));
    std::vector<int32_t> z(static_cast<size_t>(rows));
    for (int64_t g = 0; g < ng; g++) {
      const int64_t c0 = g * G, k = std::min(G, cols - c0);
      find_params(W.data() + c0, rows, k, cols, grid, s.data(), z.data());
      for (int64_t r = 0; r < rows; r++) fixed.scale[r * ng + g] = s[r], fixed.zero[r * ng + g] = z[r];
    }
  }

  // act-order: perm[j] = original column swept j-th (decreasing diag H; stable for ties).
  std::vector<int64_t> perm(static_cast<size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return H(a, a) > H(b, b); });
    MatrixRM Wp(rows, cols);
    Eigen::MatrixXf Hp(cols, cols);
    for (int64_t j = 0; j < cols; j++) Wp.col(j) = W.col(perm[j]);
    for (int64_t j = 0; j < cols; j++)
      for (int64_t i = 0; i < cols; i++) Hp(i, j) = H(perm[i], perm[j]);
    W.swap(Wp);
    H.swap(Hp);
  }

  // group of the j-th swept column: dynamic groups follow the sweep order, static ones the original
  std::vector<int32_t> group_of(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; j++) group_of[j] = int32_t((opt.static_groups || per_channel ? perm[j] : j) / G);

  if (!opt.pinned_zero.empty() && opt.pinned_zero.size() != size_t(rows * cols))
    fail("GPTQ: pinned-zero mask has {} entries for a [{}, {}] weight", opt.pinned_zero.size(), rows, cols);
  const MatrixRM U = inverse_cholesky_upper(H, opt.damp);  // Uᵀ U = (H + λI)⁻¹, row-major: rows are read

  GptqResult res;
  QuantizedMatrix& q = res.q;
  q.rows = rows, q.cols = cols, q.grid = grid;
  q.codes.resize(size_t(rows * cols));
  q.scales.resize(size_t(rows * ng));
  q.zeros.resize(size_t(rows * ng));
  q.g_idx.resize(size_t(cols));
  for (int64_t j = 0; j < cols; j++) q.g_idx[perm[j]] = group_of[j];
  if (!fixed.scale.empty()) q.scales = fixed.scale, q.zeros = fixed.zero;
  res.loss.assign(size_t(rows), 0.0f);

  // Every row of W is quantized independently (H is shared), so tiles of rows run in parallel.
  const int64_t n_tiles = (rows + kTile - 1) / kTile;
  parallel_for(n_tiles, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t r0 = t * kTile, nr = std::min(kTile, rows - r0);
      auto Wt = W.middleRows(r0, nr);  // this tile's rows, updated in place
      std::vector<float> s(static_cast<size_t>(nr));
      std::vector<int32_t> z(static_cast<size_t>(nr));
      std::vector<double> loss(size_t(nr), 0.0);
      for (int64_t i1 = 0; i1 < cols; i1 += B) {
        const int64_t i2 = std::min(i1 + B, cols), count = i2 - i1;
        MatrixRM W1 = Wt.middleCols(i1, count);
        MatrixRM Err1(nr, count);
        for (int64_t i = 0; i < count; i++) {
          const int64_t j = i1 + i;  // swept position
          const int32_t g = group_of[j];
          if (!per_channel && !opt.static_groups && j % G == 0) {
            // a new group starts: its params from W as updated up to this block (the reference's choice)
            const int64_t k = std::min(G, cols - j);
            find_params(Wt.data() + j, nr, k, cols, grid, s.data(), z.data());
            for (int64_t r = 0; r < nr; r++) q.scales[(r0 + r) * ng + g] = s[r], q.zeros[(r0 + r) * ng + g] = z[r];
          }
          const float d = U(j, j);
          for (int64_t r = 0; r < nr; r++) {
            const float sc = q.scales[(r0 + r) * ng + g];
            const int32_t zp = q.zeros[(r0 + r) * ng + g];
            const float w = W1(r, i);
            const bool pinned = !opt.pinned_zero.empty() && opt.pinned_zero[size_t((r0 + r) * cols + perm[j])];
            const int code = pinned ? zp : quantize_code(w, sc, zp, maxq);  // the zero code dequantizes to 0
            const float wq = dequantize_code(code, sc, zp);
            q.codes[(r0 + r) * cols + perm[j]] = uint8_t(code);
            const float err = (w - wq) / d;  // OBS: error scaled by the inverse Hessian's pivot
            loss[r] += double(err) * double(err) / 2.0;
            Err1(r, i) = err;
            W1.row(r).segment(i, count - i) -= err * U.row(j).segment(j, count - i);  // update the rest of the block
          }
        }
        // lazy batch update: push the block's errors into every later column at once
        if (i2 < cols) Wt.rightCols(cols - i2).noalias() -= Err1 * U.block(i1, i2, count, cols - i2);
      }
      for (int64_t r = 0; r < nr; r++) res.loss[r0 + r] = float(loss[r]);
    }
  });
  return res;
}

double gptq_objective(const float* W, const float* Q, int64_t rows, int64_t cols, const Eigen::MatrixXf& H) {
  using MatrixRMd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  MatrixRMd D = (Eigen::Map<const MatrixRM>(W, rows, cols) - Eigen::Map<const MatrixRM>(Q, rows, cols)).cast<double>();
  return (D * H.cast<double>()).cwiseProduct(D).sum();  // tr(D H Dᵀ)
}

}  // namespace llmopt::quant
