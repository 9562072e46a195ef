#pragma once
// AWQ (Lin, Tang, Tang, Yang, Dang, Gan, Han 2023, "AWQ: Activation-aware Weight Quantization for LLM
// Compression and Acceleration"), as AutoAWQ runs it on a Llama-family decoder layer:
//
//   for each group of linears sharing one input X (q,k,v | o | gate,up | down):
//     x̄_j = mean |X_j| over the calibration tokens                          (per input channel)
//     for α in {0, 1/20, …, 19/20}:                                           (the grid search, §3.2)
//       s = x̄^α,  s ← s / sqrt(max s · min s)                                 (AutoAWQ's normalisation)
//       loss(α) = ‖f(X; W) − f(X; Q(W·diag s)·diag(1/s))‖² / numel            (mean squared block output error)
//     s* = s(argmin loss)   (α = 0 is plain RTN: s = 1)
//     W ← W·diag(s*), and 1/s* folded into the op before the group:
//       q,k,v ← input_layernorm; gate,up ← post_attention_layernorm;
//       o ← v_proj's rows (only when v's outputs are o's inputs: num_kv_heads == num_heads);
//       down ← up_proj's rows
//     clip (not q, k): per (output row, group) the max |w| ratio r ∈ {1, 0.95, …, 0.55} minimising the
//       group's mean squared partial output over ≤ 512 tokens of X/s*; W clamped to ±r·max|w| (auto_clip)
//     W ← RTN(W) on the grid
// f is the block the paper's search looks at: the concatenated q/k/v outputs; o's and down's own output;
// for gate/up the MLP output down(silu(gate) ⊙ up) with the original down_proj.
//
// Scaling a quantized linear's output rows is exact (every group scale of a row is divided by s_r, the codes
// stay), so folding o's scales into v and down's into up after those were quantized gives the same weights as
// AutoAWQ's scale-all-then-quantize order; only the activations each group is calibrated on differ (the
// runner's true-sequential order: later groups see the already quantized earlier ones).
// Not done: linears with a bias on the folded-into side (v_proj / up_proj bias) keep o / down unscaled.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lib/model/checkpoint.h"
#include "lib/quant/quantize.h"

namespace llmopt::quant {

struct AwqOptions {
  QuantGrid grid{4, 128, false};  // AutoAWQ: w_bit 4, q_group_size 128, zero_point
  int n_grid = 20;                // α ∈ {i / n_grid}, i < n_grid
  double max_shrink = 0.5;        // clip ratios 1 − i / n_grid for i < max_shrink · n_grid
  int clip_tokens = 512;          // AutoAWQ n_sample_token: X[::max(1, n / 512)] for the clip search
  bool clip = true;
};

// One scale search: the group (named by its first linear), the α chosen and the block output errors.
struct AwqChoice {
  std::string linear;  // "model.layers.0.self_attn.q_proj" (q,k,v), "...o_proj", "...gate_proj", "...down_proj"
  int layer = 0;
  bool scaled = false;      // false: no foldable op before it (o with GQA); only clipped
  double alpha = 0;
  double loss = 0;          // at the chosen α (before clipping)
  double loss_rtn = 0;      // at α = 0, i.e. plain RTN
};

class AwqMethod : public WeightQuantizer {
 public:
  AwqMethod(const model::Checkpoint& ck, AwqOptions opt, DType scale_dtype = DType::F32,
            DType weight_dtype = DType::F32);
  std::string name() const override { return "awq"; }
  void begin(const model::Linear& l) override;
  void observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) override;
  model::Linear compress(const model::Linear& l) override;

  QuantizedMatrix take(const std::string& linear_name) override;
  std::vector<float> take_dense(const std::string& linear_name) override;
  std::map<std::string, std::vector<float>> take_folded() override;

  std::vector<AwqChoice> choices;  // one per group, in order

 private:
  void solve_group();
  QuantGrid grid_for(const std::string& linear_name) const;

  const model::Checkpoint& ck_;
  AwqOptions opt_;
  DType scale_dtype_, weight_dtype_;
  std::vector<model::Linear> group_;  // the linears begun since the last group was solved
  bool open_ = false;                 // begin() since the last compress(): the group is still being observed
  std::vector<float> x_;              // the group's input, every calibration token [n, cols]
  int64_t cols_ = 0;
  calib::ChannelStats stats_;
  std::map<std::string, model::Linear> effective_;   // what compress() returns
  std::map<std::string, QuantizedMatrix> done_;      // Q(W·diag s), rows later divided by a folded scale
  std::map<std::string, std::vector<float>> folded_;  // norm weight name → norm / s
};

}  // namespace llmopt::quant
