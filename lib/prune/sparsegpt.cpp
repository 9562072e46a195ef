#include "lib/prune/sparsegpt.h"

#include <algorithm>
#include <cmath>

#include "lib/core/error.h"
#include "lib/core/threads.h"
#include "lib/quant/hessian.h"

namespace llmopt::prune {

namespace {
using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kTile = 16;  // rows per task; fixed so results do not depend on the thread count
}  // namespace

SparseGptResult sparsegpt_prune(float* W_io, int64_t rows, int64_t cols, const Eigen::MatrixXf& H_in,
                                const SparseGptOptions& opt) {
  const SparsityPattern& p = opt.pattern;
  p.validate(cols);
  if (H_in.rows() != cols || H_in.cols() != cols)
    fail("SparseGPT: Hessian is {}x{}, expected {}x{} for a weight with {} columns", H_in.rows(), H_in.cols(), cols,
         cols, cols);
  const int64_t B = opt.block_size;
  if (B <= 0) fail("SparseGPT: block size {} must be positive", B);
  if (p.nm() && B % p.m != 0) fail("SparseGPT: block size {} must be a multiple of M for {} sparsity", B, p.str());
  for (int64_t i = 0; i < rows * cols; i++)
    if (!std::isfinite(W_io[i])) fail("SparseGPT: weight [{}, {}] is not finite", i / cols, i % cols);
  const bool joint = opt.quant.has_value();
  const quant::QuantGrid grid = joint ? *opt.quant : quant::QuantGrid{};
  if (joint) grid.validate(cols);
  const int64_t G = grid.group_cols(cols), ng = grid.n_groups(cols);
  const bool per_channel = grid.group_size < 0;
  const int maxq = grid.maxq();

  Eigen::Map<MatrixRM> W(W_io, rows, cols);
  Eigen::MatrixXf H = H_in;
  quant::fix_dead_columns(H, W_io, rows);  // H_ii = 1, W[:, i] = 0 for inputs never seen
  const MatrixRM U = quant::inverse_cholesky_upper(H, opt.damp);  // Uᵀ U = (H + λI)⁻¹

  SparseGptResult res;
  res.mask.assign(size_t(rows * cols), 0);
  res.loss.assign(size_t(rows), 0.0f);
  std::vector<double> loss(size_t(rows), 0.0);
  quant::QuantizedMatrix* q = nullptr;
  if (joint) {
    q = &res.q.emplace();
    q->rows = rows, q->cols = cols, q->grid = grid;
    q->codes.resize(size_t(rows * cols));
    q->scales.resize(size_t(rows * ng));
    q->zeros.resize(size_t(rows * ng));
    q->g_idx.resize(size_t(cols));
    for (int64_t c = 0; c < cols; c++) q->g_idx[c] = int32_t(c / G);
    if (per_channel) quant::find_params(W.data(), rows, cols, cols, grid, q->scales.data(), q->zeros.data());
  }

  const int64_t n_tiles = (rows + kTile - 1) / kTile;
  for (int64_t i1 = 0; i1 < cols; i1 += B) {
    const int64_t i2 = std::min(i1 + B, cols), count = i2 - i1;

    // Unstructured: the block's mask from the weights as updated by all previous blocks.
    if (!p.nm() && p.sparsity > 0) {
      std::vector<float> score(size_t(rows * count));
      for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < count; i++) {
          const float d = U(i1 + i, i1 + i);
          score[r * count + i] = W(r, i1 + i) * W(r, i1 + i) / (d * d);  // w² / [H⁻¹]_jj²
        }
      auto m1 = select_mask(score.data(), rows, count, {p.sparsity}, opt.row_mask ? Scope::row : Scope::matrix);
      for (int64_t r = 0; r < rows; r++)
        std::copy_n(m1.begin() + r * count, count, res.mask.begin() + r * cols + i1);
    }

    // Every row is swept independently through the block (H is shared), so tiles of rows run in parallel.
    parallel_for(n_tiles, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t r0 = t * kTile, nr = std::min(kTile, rows - r0);
        auto Wt = W.middleRows(r0, nr);  // this tile's rows
        MatrixRM W1 = Wt.middleCols(i1, count);
        MatrixRM Err1(nr, count);
        uint8_t* mask = res.mask.data() + r0 * cols;
        std::vector<std::pair<float, int64_t>> s(static_cast<size_t>(std::max(p.m, 1)));
        std::vector<float> sc(static_cast<size_t>(nr));
        std::vector<int32_t> zp(static_cast<size_t>(nr));
        for (int64_t i = 0; i < count; i++) {
          const int64_t j = i1 + i;
          if (p.nm() && j % p.m == 0) {
            // N:M: prune the m − n lowest (w / U_jj)² of columns [j, j+m) in each row (ties: lower index)
            for (int64_t r = 0; r < nr; r++) {
              for (int64_t k = 0; k < p.m; k++) {
                const float w = W1(r, i + k), d = U(j + k, j + k);
                s[k] = {w * w / (d * d), k};
              }
              std::sort(s.begin(), s.begin() + p.m);
              for (int64_t k = 0; k < p.m - p.n; k++) mask[r * cols + j + s[k].second] = 1;
            }
          }
          if (joint && !per_channel && j % G == 0) {
            // a new group: its params from the group's current weights (this block's updated in W1)
            const int64_t k = std::min(G, cols - j);
            MatrixRM g(nr, k);
            for (int64_t c = 0; c < k; c++) {
              if (j + c < i2) g.col(c) = W1.col(i + c);
              else g.col(c) = Wt.col(j + c);
            }
            quant::find_params(g.data(), nr, k, k, grid, sc.data(), zp.data());
            for (int64_t r = 0; r < nr; r++) q->scales[(r0 + r) * ng + j / G] = sc[r], q->zeros[(r0 + r) * ng + j / G] = zp[r];
          }
          const float d = U(j, j);
          for (int64_t r = 0; r < nr; r++) {
            const float w = W1(r, i);
            float wq = mask[r * cols + j] ? 0.0f : w;
            if (joint) {
              const float scale = q->scales[(r0 + r) * ng + j / G];
              const int32_t zero = q->zeros[(r0 + r) * ng + j / G];
              const int code = quant::quantize_code(wq, scale, zero, maxq);  // a pruned 0 lands on the zero point
              q->codes[(r0 + r) * cols + j] = uint8_t(code);
              wq = quant::dequantize_code(code, scale, zero);
            }
            const float err = (w - wq) / d;  // OBS: the error scaled by the inverse Hessian's pivot
            loss[r0 + r] += double(err) * double(err) / 2.0;
            Err1(r, i) = err;
            W1.row(r).segment(i, count - i) -= err * U.row(j).segment(j, count - i);  // update the rest of the block
            W1(r, i) = wq;  // exactly the kept (or quantized) value; exactly 0 when pruned
          }
        }
        Wt.middleCols(i1, count) = W1;
        // lazy batch update: push the block's errors into every later column at once
        if (i2 < cols) Wt.rightCols(cols - i2).noalias() -= Err1 * U.block(i1, i2, count, cols - i2);
      }
    });
  }
  for (int64_t r = 0; r < rows; r++) res.loss[r] = float(loss[r]);
  return res;
}

}  // namespace llmopt::prune
