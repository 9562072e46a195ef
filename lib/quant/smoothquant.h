#pragma once
// SmoothQuant (Xiao, Lin, Seznec, Wu, Demouth, Han 2022, "SmoothQuant: Accurate and Efficient Post-Training
// Quantization for Large Language Models"): activation outliers make per-token int8 activations lossy, so part
// of their range is migrated into the weights with a per-input-channel scale (Eq. 4):
//
//   s_j = max|X_j|^α / max|W_j|^(1−α)       (α: migration strength, 0.5 by default; both clamped ≥ 1e-5)
//   Y = (X diag(s)⁻¹) (diag(s) Wᵀ)           the function is unchanged
//
// max|X_j| over the calibration tokens, max|W_j| over the rows of every linear that reads X (q,k,v share
// input_layernorm's output, gate,up post_attention_layernorm's). diag(s)⁻¹ is folded into the norm weight;
// o_proj and down_proj have no foldable op before them and are quantized as they are (as the reference's
// smooth_lm does for Llama). Then W8A8: int8 symmetric weights per output channel (RTN, or GPTQ on the smoothed
// inputs' Hessian diag(s)⁻¹ H diag(s)⁻¹), activations quantized per token at run time.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/model/checkpoint.h"
#include "lib/quant/hessian.h"
#include "lib/quant/quantize.h"

namespace llmopt::quant {

struct SmoothQuantOptions {
  double alpha = 0.5;
  bool gptq = false;          // the int8 weights by GPTQ (gptq_opt's block size, damp, act order) instead of RTN
  GptqOptions gptq_opt;       // grid forced to 8 bits, symmetric, per output channel
  bool quantize = true;       // false: only smooth (fold the scales); the dense output then is the same function
};

class SmoothQuantMethod : public WeightQuantizer {
 public:
  SmoothQuantMethod(const model::Checkpoint& ck, SmoothQuantOptions opt, DType scale_dtype = DType::F32,
                    DType weight_dtype = DType::F32);
  std::string name() const override { return opt_.gptq ? "smoothquant+gptq" : "smoothquant"; }
  void begin(const model::Linear& l) override;
  void observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) override;
  model::Linear compress(const model::Linear& l) override;

  QuantizedMatrix take(const std::string& linear_name) override;  // Error when quantize is false
  std::vector<float> take_dense(const std::string& linear_name) override;
  std::map<std::string, std::vector<float>> take_folded() override;

  // The smoothing scales s of every smoothed group, by its first linear ("...q_proj", "...gate_proj").
  std::map<std::string, std::vector<float>> scales;

 private:
  void solve_group();

  const model::Checkpoint& ck_;
  SmoothQuantOptions opt_;
  DType scale_dtype_, weight_dtype_;
  std::vector<model::Linear> group_;
  bool open_ = false;
  calib::ChannelStats stats_;
  std::unique_ptr<Hessian> h_;  // the group's input Hessian (GPTQ)
  std::map<std::string, model::Linear> effective_;
  std::map<std::string, QuantizedMatrix> done_;
  std::map<std::string, std::vector<float>> dense_;   // quantize == false: the smoothed W·diag(s)
  std::map<std::string, std::vector<float>> folded_;  // norm weight name → norm / s
};

}  // namespace llmopt::quant
