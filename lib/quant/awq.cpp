#include "lib/quant/awq.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/core/threads.h"
#include "lib/model/arch.h"
#include "lib/model/weights.h"
#include "lib/quant/rtn.h"

namespace llmopt::quant {
namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapC = Eigen::Map<const Mat>;

// "model.layers.3.self_attn.q_proj" → "model.layers.3.", "q_proj" (the layer from the architecture table's parser)
using model::layer_of;
std::string layer_prefix(const std::string& name) { return model::layer_prefix(layer_of(name)); }
std::string kind_of(const std::string& name) { return name.substr(name.rfind('.') + 1); }

// Y [n, out] = X Wᵀ + b
Mat linear(const MapC& X, const std::vector<float>& W, int64_t out, const std::vector<float>& b) {
  Mat Y = X * MapC(W.data(), out, X.cols()).transpose();
  if (!b.empty()) Y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b.data(), out);
  return Y;
}

// Q(W) on the grid (fp32 scales): the fake-quantized weight the search scores.
std::vector<float> fake_quant(const std::vector<float>& W, int64_t rows, int64_t cols, const QuantGrid& g) {
  return rtn_quantize(W.data(), rows, cols, g).dequantize();
}

// s = x̄^α clamped to ≥ 1e-4, normalised by sqrt(max s · min s) (AutoAWQ's _search_best_scale)
std::vector<float> awq_scales(const std::vector<float>& xmean, double alpha) {
  std::vector<float> s(xmean.size());
  for (size_t j = 0; j < s.size(); ++j) s[j] = std::max(std::pow(xmean[j], float(alpha)), 1e-4f);
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const float norm = std::sqrt(*hi * *lo);
  for (float& v : s) {
    v /= norm;
    if (!std::isfinite(v)) v = 1.0f;
  }
  return s;
}

// W ← W·diag(s) (s empty: unchanged)
void scale_cols(std::vector<float>& W, int64_t cols, const std::vector<float>& s, bool divide = false) {
  for (size_t i = 0; i < W.size(); ++i) W[i] = divide ? W[i] / s[i % size_t(cols)] : W[i] * s[i % size_t(cols)];
}

// AutoAWQ's auto_clip for one linear: per (row, group) the clip value ±r·max|w|, r = 1 − i/n_grid for
// i < max_shrink·n_grid, minimising the mean over the tokens Xc [nc, cols] of the group's squared partial output
// error (w − Q(clamp(w)))·x; W [rows, cols] is clamped in place.
void clip_weights(std::vector<float>& W, int64_t rows, int64_t cols, const Mat& Xc, const QuantGrid& g, int n_grid,
                  double max_shrink) {
  const int64_t G = g.group_cols(cols), ng = g.n_groups(cols), nc = Xc.rows();
  const int steps = int(max_shrink * n_grid);
  parallel_for(ng, [&](int64_t b, int64_t e) {
    for (int64_t gi = b; gi < e; ++gi) {
      const int64_t c0 = gi * G, k = std::min(G, cols - c0);
      Mat Wg(rows, k);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < k; ++c) Wg(r, c) = W[size_t(r * cols + c0 + c)];
      const Mat Xg = Xc.middleCols(c0, k);
      const Mat Yfp = Wg * Xg.transpose();  // [rows, nc]
      std::vector<float> maxv(static_cast<size_t>(rows)), best(static_cast<size_t>(rows));
      std::vector<double> best_err(static_cast<size_t>(rows), std::numeric_limits<double>::infinity());
      for (int64_t r = 0; r < rows; ++r) maxv[size_t(r)] = Wg.row(r).cwiseAbs().maxCoeff();
      Mat Q(rows, k);
      std::vector<float> row(static_cast<size_t>(k));
      for (int i = 0; i < steps; ++i) {
        const float ratio = 1.0f - float(i) / float(n_grid);
        for (int64_t r = 0; r < rows; ++r) {
          const float mv = maxv[size_t(r)] * ratio;
          for (int64_t c = 0; c < k; ++c) row[size_t(c)] = std::clamp(Wg(r, c), -mv, mv);
          float s;
          int32_t z;
          find_params(row.data(), 1, k, k, g, &s, &z);
          for (int64_t c = 0; c < k; ++c) Q(r, c) = dequantize_code(quantize_code(row[size_t(c)], s, z, g.maxq()), s, z);
        }
        const Mat Y = Q * Xg.transpose();
        for (int64_t r = 0; r < rows; ++r) {
          const double err = double((Y.row(r) - Yfp.row(r)).squaredNorm()) / double(std::max<int64_t>(nc, 1));
          if (err < best_err[size_t(r)]) best_err[size_t(r)] = err, best[size_t(r)] = maxv[size_t(r)] * ratio;
        }
      }
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = c0; c < c0 + k; ++c) {
          float& w = W[size_t(r * cols + c)];
          w = std::clamp(w, -best[size_t(r)], best[size_t(r)]);
        }
    }
  });
}

}  // namespace

AwqMethod::AwqMethod(const model::Checkpoint& ck, AwqOptions opt, DType scale_dtype, DType weight_dtype)
    : ck_(ck), opt_(opt), scale_dtype_(scale_dtype), weight_dtype_(weight_dtype) {
  if (opt_.n_grid <= 0) fail("AWQ: the α grid needs at least one point, got {}", opt_.n_grid);
}

QuantGrid AwqMethod::grid_for(const std::string& name) const {
  QuantGrid g = opt_.grid;
  if (per_channel.count(name)) g.group_size = -1;
  return g;
}

void AwqMethod::begin(const model::Linear& l) {
  if (!open_) {
    group_.clear(), x_.clear(), stats_ = {}, cols_ = 0;
    open_ = true;
  }
  group_.push_back(l);
}

void AwqMethod::observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) {
  if (group_.empty() || l.name != group_[0].name) return;  // the group's linears share one input
  stats_.add(x, rows, cols);
  x_.insert(x_.end(), x, x + rows * cols);
  cols_ = cols;
}

model::Linear AwqMethod::compress(const model::Linear& l) {
  if (open_) {
    solve_group();
    open_ = false;
  }
  auto it = effective_.find(l.name);
  if (it == effective_.end()) fail("AWQ: {} was not part of the group being quantized", l.name);
  model::Linear out = std::move(it->second);
  effective_.erase(it);
  return out;
}

void AwqMethod::solve_group() {
  const std::string& first = group_[0].name;
  if (x_.empty()) fail("AWQ: no calibration activations were observed for {}", first);
  const int64_t n = int64_t(x_.size()) / cols_;
  const MapC X(x_.data(), n, cols_);
  const int layer = layer_of(first);
  const std::string kind = kind_of(first), pre = layer_prefix(first);

  // where 1/s goes: a norm (always possible) or the rows of the linear before (when shapes and biases allow)
  std::string fold_norm, fold_rows;
  if (kind == "q_proj") fold_norm = pre + "input_layernorm.weight";
  else if (kind == "gate_proj") fold_norm = pre + "post_attention_layernorm.weight";
  else if (kind == "o_proj") fold_rows = pre + "self_attn.v_proj";
  else if (kind == "down_proj") fold_rows = pre + "mlp.up_proj";
  else fail("AWQ: unexpected linear group starting at {}", first);
  bool scalable = true;
  if (!fold_rows.empty()) {
    auto d = done_.find(fold_rows);
    scalable = d != done_.end() && d->second.rows == cols_ && !ck_.tensors.has(fold_rows + ".bias");
  }

  std::vector<std::vector<float>> W;
  for (const auto& l : group_) W.push_back(model::linear_weight_f32(l));

  // f(X; W): the block output the search scores (see awq.h)
  std::vector<float> down;
  int64_t down_out = 0;
  if (kind == "gate_proj") {
    const auto dl = model::Linear::view(pre + "mlp.down_proj", ck_.tensors.get(pre + "mlp.down_proj.weight"));
    down = model::linear_weight_f32(dl);
    down_out = dl.out;
  }
  auto outputs = [&](const std::vector<std::vector<float>>& Ws) {
    std::vector<Mat> y;
    if (kind == "gate_proj") {
      Mat g = linear(X, Ws[0], group_[0].out, group_[0].bias), u = linear(X, Ws[1], group_[1].out, group_[1].bias);
      g = g.unaryExpr([](float v) { return v / (1.0f + std::exp(-v)); }).cwiseProduct(u);
      y.push_back(g * MapC(down.data(), down_out, g.cols()).transpose());
    } else {
      for (size_t i = 0; i < group_.size(); ++i) y.push_back(linear(X, Ws[i], group_[i].out, group_[i].bias));
    }
    return y;
  };
  const std::vector<Mat> yfp = outputs(W);
  double numel = 0;
  for (const auto& y : yfp) numel += double(y.size());
  auto loss_at = [&](const std::vector<float>& s) {  // ‖f(W) − f(Q(W·diag s)·diag(1/s))‖² / numel
    std::vector<std::vector<float>> Wq(W.size());
    for (size_t i = 0; i < W.size(); ++i) {
      std::vector<float> ws = W[i];
      scale_cols(ws, cols_, s);
      Wq[i] = fake_quant(ws, group_[i].out, cols_, grid_for(group_[i].name));
      scale_cols(Wq[i], cols_, s, true);
    }
    const std::vector<Mat> y = outputs(Wq);
    double e = 0;
    for (size_t i = 0; i < y.size(); ++i) e += double((y[i] - yfp[i]).squaredNorm());
    return e / numel;
  };

  // ---- the α grid search ----
  const std::vector<float> xmean = stats_.mean_abs();
  const int npts = scalable ? opt_.n_grid : 1;
  std::vector<double> loss(static_cast<size_t>(npts));
  parallel_for(npts, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) loss[size_t(i)] = loss_at(awq_scales(xmean, double(i) / opt_.n_grid));
  });
  const int best = int(std::min_element(loss.begin(), loss.end()) - loss.begin());
  AwqChoice ch{first, layer, scalable, double(best) / opt_.n_grid, loss[size_t(best)], loss[0]};
  choices.push_back(ch);
  log::debug("awq {}: α {:.2f}, loss {:.6g} (rtn {:.6g})", first, ch.alpha, ch.loss, ch.loss_rtn);

  // ---- fold 1/s into the op before, W ← W·diag(s) ----
  const std::vector<float> s = scalable ? awq_scales(xmean, ch.alpha) : std::vector<float>(static_cast<size_t>(cols_), 1.0f);
  if (!fold_norm.empty()) {
    std::vector<float> norm = model::load_vector_f32(ck_.tensors, fold_norm, cols_);
    for (int64_t j = 0; j < cols_; ++j) norm[size_t(j)] /= s[size_t(j)];
    folded_[fold_norm] = std::move(norm);
  } else if (scalable) {  // scaling a quantized linear's output row r by 1/s_r: its group scales, exactly
    QuantizedMatrix& prev = done_.at(fold_rows);
    const int64_t ng = prev.n_groups();
    for (int64_t r = 0; r < prev.rows; ++r)
      for (int64_t g = 0; g < ng; ++g) prev.scales[size_t(r * ng + g)] /= s[size_t(r)];
  }
  for (auto& w : W) scale_cols(w, cols_, s);

  // ---- clip (not q, k: their error hides in the attention softmax, AutoAWQ skips them), then RTN ----
  Mat Xc;
  if (opt_.clip) {
    const int64_t step = std::max<int64_t>(1, n / std::max(1, opt_.clip_tokens));
    Xc.resize((n + step - 1) / step, cols_);
    for (int64_t r = 0; r < Xc.rows(); ++r)
      for (int64_t j = 0; j < cols_; ++j) Xc(r, j) = X(r * step, j) / s[size_t(j)];
  }
  for (size_t i = 0; i < group_.size(); ++i) {
    const model::Linear& l = group_[i];
    const QuantGrid g = grid_for(l.name);
    const std::string k = kind_of(l.name);
    if (opt_.clip && k != "q_proj" && k != "k_proj") clip_weights(W[i], l.out, cols_, Xc, g, opt_.n_grid, opt_.max_shrink);
    QuantizedMatrix q = rtn_quantize(W[i].data(), l.out, cols_, g);
    std::vector<float> eff = stored_weight(q, scale_dtype_, weight_dtype_);
    scale_cols(eff, cols_, s, true);  // the function the runner continues with: Q(W·s)·diag(1/s)
    effective_[l.name] = model::Linear::owned_f32(l.name, std::move(eff), l.out, l.in, l.bias);
    done_[l.name] = std::move(q);
  }
  x_.clear(), x_.shrink_to_fit();
}

QuantizedMatrix AwqMethod::take(const std::string& name) {
  auto it = done_.find(name);
  if (it == done_.end()) fail("no quantized weight for {}", name);
  QuantizedMatrix q = std::move(it->second);
  done_.erase(it);
  return q;
}

std::vector<float> AwqMethod::take_dense(const std::string& name) {
  return stored_weight(take(name), scale_dtype_, weight_dtype_);
}

std::map<std::string, std::vector<float>> AwqMethod::take_folded() { return std::exchange(folded_, {}); }

}  // namespace llmopt::quant
