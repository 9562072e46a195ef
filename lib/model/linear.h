#pragma once
// One linear-weight type for every format. Dense: the stored dtype (F32/BF16/F16), usually a
// zero-copy view into the mmap'd checkpoint, plus an optional fp32 bias. Grouped (int2/3/4/8 weights with
// scales/zeros/act-order, any of GPTQ/AWQ/compressed-tensors) and W8A8 (int8 weights, int8 activations per
// token) share one canonical payload, `quant` (lib/model/linear_quant.h). N:M-sparse linears become a further
// `Kind`; linear_forward() dispatches each kind to its backend matmul; nothing above this file needs to know.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "lib/backend/backend.h"
#include "lib/core/dtype.h"

namespace llmopt::model {

struct QuantWeight;  // linear_quant.h

struct Linear {
  enum class Kind { Dense, Grouped, W8A8 };

  std::string name;  // checkpoint prefix, e.g. "model.layers.3.self_attn.q_proj"
  Kind kind = Kind::Dense;
  int64_t out = 0, in = 0;

  // Dense: weight [out, in] row-major.
  DType dtype = DType::F32;
  const void* data = nullptr;
  std::shared_ptr<const void> storage;  // owns `data` when it is not a view of the checkpoint

  // Grouped / W8A8: the quantized weight in canonical form (shared by copies, e.g. a tied lm_head).
  std::shared_ptr<const QuantWeight> quant;

  std::vector<float> bias;  // [out], or empty

  bool has_bias() const { return !bias.empty(); }
  Tensor weight() const { return Tensor::matrix(const_cast<void*>(data), dtype, out, in); }  // dense only

  // A view of checkpoint tensor `weight` [out, in] (and optional `bias` [out], widened to fp32).
  static Linear view(std::string name, const st::TensorView& weight, const st::TensorView* bias = nullptr);
  // An fp32 linear that owns its weight (e.g. the result of a weight transform).
  static Linear owned_f32(std::string name, std::vector<float> weight, int64_t out, int64_t in,
                          std::vector<float> bias = {});
};

// y[n, out] = x[n, in] · Wᵀ + b on backend b (x, y on its device)
void linear_forward(backend::Backend& b, const Linear& l, const Tensor& x, const Tensor& y);
// The same on host fp32 rows with the CPU backend.
void linear_forward(const Linear& l, const float* x, int64_t n, float* y);

// The weight as fp32 [out, in] (for calibration methods and tests).
std::vector<float> linear_weight_f32(const Linear& l);

}  // namespace llmopt::model
