#include "lib/quant/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/model/weights.h"
#include "lib/quant/gptq.h"
#include "lib/quant/rtn.h"

namespace llmopt::quant {

SmoothQuantMethod::SmoothQuantMethod(const model::Checkpoint& ck, SmoothQuantOptions opt, DType scale_dtype,
                                     DType weight_dtype)
    : ck_(ck), opt_(std::move(opt)), scale_dtype_(scale_dtype), weight_dtype_(weight_dtype) {
  if (!(opt_.alpha >= 0 && opt_.alpha <= 1)) fail("--alpha {} is outside [0, 1]", opt_.alpha);
  opt_.gptq_opt.grid = {8, -1, true};  // W8A8: int8 symmetric per output channel
}

void SmoothQuantMethod::begin(const model::Linear& l) {
  if (!open_) {
    group_.clear(), stats_ = {}, h_.reset();
    open_ = true;
  }
  group_.push_back(l);
}

void SmoothQuantMethod::observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) {
  if (group_.empty() || l.name != group_[0].name) return;  // the group's linears share one input
  stats_.add(x, rows, cols);
  if (opt_.gptq && opt_.quantize) {
    if (!h_) h_ = std::make_unique<Hessian>(cols);
    h_->add_batch(x, rows);
  }
}

model::Linear SmoothQuantMethod::compress(const model::Linear& l) {
  if (open_) {
    solve_group();
    open_ = false;
  }
  auto it = effective_.find(l.name);
  if (it == effective_.end()) fail("SmoothQuant: {} was not part of the group being quantized", l.name);
  model::Linear out = std::move(it->second);
  effective_.erase(it);
  return out;
}

void SmoothQuantMethod::solve_group() {
  const std::string& first = group_[0].name;
  if (stats_.rows == 0) fail("SmoothQuant: no calibration activations were observed for {}", first);
  const int64_t cols = int64_t(stats_.max_abs.size());
  const std::string kind = first.substr(first.rfind('.') + 1);
  const std::string pre = first.substr(0, first.find('.', first.find("layers.") + 7) + 1);
  std::string norm_name;  // the op 1/s folds into; o and down have none
  if (kind == "q_proj") norm_name = pre + "input_layernorm.weight";
  else if (kind == "gate_proj") norm_name = pre + "post_attention_layernorm.weight";

  std::vector<std::vector<float>> W;
  for (const auto& l : group_) W.push_back(model::linear_weight_f32(l));

  // s_j = max|X_j|^α / max|W_j|^(1−α)   (Eq. 4; the reference clamps both maxima and s at 1e-5)
  std::vector<float> s(static_cast<size_t>(cols), 1.0f);
  if (!norm_name.empty()) {
    std::vector<float> wmax(static_cast<size_t>(cols), 0.0f);
    for (size_t i = 0; i < W.size(); ++i)
      for (int64_t r = 0; r < group_[i].out; ++r)
        for (int64_t j = 0; j < cols; ++j) wmax[size_t(j)] = std::max(wmax[size_t(j)], std::fabs(W[i][size_t(r * cols + j)]));
    const float a = float(opt_.alpha);
    for (int64_t j = 0; j < cols; ++j) {
      const float xm = std::max(stats_.max_abs[size_t(j)], 1e-5f), wm = std::max(wmax[size_t(j)], 1e-5f);
      s[size_t(j)] = std::max(std::pow(xm, a) / std::pow(wm, 1.0f - a), 1e-5f);
    }
    std::vector<float> norm = model::load_vector_f32(ck_.tensors, norm_name, cols);
    for (int64_t j = 0; j < cols; ++j) norm[size_t(j)] /= s[size_t(j)];
    folded_[norm_name] = std::move(norm);
    scales[first] = s;
  }

  // the smoothed inputs' Hessian: X ← X diag(s)⁻¹ gives H ← diag(s)⁻¹ H diag(s)⁻¹
  Eigen::MatrixXf H;
  if (opt_.gptq && opt_.quantize) {
    if (!h_) fail("SmoothQuant+GPTQ: no calibration activations were observed for {}", first);
    H = h_->matrix();
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = 0; j < cols; ++j) H(i, j) /= s[size_t(i)] * s[size_t(j)];
  }

  for (size_t i = 0; i < group_.size(); ++i) {
    const model::Linear& l = group_[i];
    std::vector<float>& w = W[i];
    for (size_t k = 0; k < w.size(); ++k) w[k] *= s[k % size_t(cols)];  // W·diag(s)
    std::vector<float> eff;
    if (!opt_.quantize) {
      eff = w;
      dense_[l.name] = std::move(w);
    } else {
      QuantizedMatrix q = opt_.gptq ? gptq_quantize(w.data(), l.out, cols, H, opt_.gptq_opt).q
                                    : rtn_quantize(w.data(), l.out, cols, opt_.gptq_opt.grid);
      eff = stored_weight(q, scale_dtype_, weight_dtype_);
      done_[l.name] = std::move(q);
    }
    for (size_t k = 0; k < eff.size(); ++k) eff[k] /= s[k % size_t(cols)];  // what the runner continues with
    effective_[l.name] = model::Linear::owned_f32(l.name, std::move(eff), l.out, l.in, l.bias);
  }
  h_.reset();
}

QuantizedMatrix SmoothQuantMethod::take(const std::string& name) {
  auto it = done_.find(name);
  if (it == done_.end()) fail("no quantized weight for {}", name);
  QuantizedMatrix q = std::move(it->second);
  done_.erase(it);
  return q;
}

std::vector<float> SmoothQuantMethod::take_dense(const std::string& name) {
  if (opt_.quantize) return stored_weight(take(name), scale_dtype_, weight_dtype_);
  auto it = dense_.find(name);
  if (it == dense_.end()) fail("no smoothed weight for {}", name);
  std::vector<float> w = std::move(it->second);
  dense_.erase(it);
  return w;
}

std::map<std::string, std::vector<float>> SmoothQuantMethod::take_folded() { return std::exchange(folded_, {}); }

}  // namespace llmopt::quant
