#pragma once
// `llmopt quantize`: a whole checkpoint through the calibration runner with RTN, GPTQ, AWQ (awq.h) or
// SmoothQuant (smoothquant.h), streamed layer by layer into an output directory other tools load:
//   gptq                GPTQ v1 layout (qweight/qzeros/scales/g_idx) + quantization_config quant_method "gptq";
//                       every linear's in/out features must be multiples of 32 (else: use compressed-tensors)
//   compressed-tensors  "pack-quantized" (weight_packed/weight_scale[/weight_zero_point]/weight_shape), group or
//                       channel. compressed-tensors 0.20 cannot dequantize a ragged last group ("tensor column
//                       shape must be divisible by the given group_size"), so a linear whose in_features G does
//                       not divide (stories260K's down_proj, 172 = 5·32 + 12) is an error, or with
//                       ragged_per_channel (--ragged-per-channel) is quantized per output channel and listed in
//                       a second config group. act-order needs --static-groups here.
//   awq                 AutoAWQ GEMM layout (qweight/qzeros/scales) + quant_method "awq"; 4 bits, every linear's
//                       out_features a multiple of 8 and in_features of the group size
//   compressed-tensors  for SmoothQuant: "int-quantized" W8A8 (int8 per-channel weights, dynamic per-token
//                       int8 activations at run time)
//   dense               the dequantized weights in the original dtype ("fake quant"; any engine runs it); for
//                       AWQ/SmoothQuant the smoothed weights Q(W·diag s) with 1/s folded into the norms
//   gguf                one .gguf file (OUT is the file): ggml's own Q4_0 (sym) / Q4_1 (asym) / Q8_0 block
//                       rounding, group 32; RTN only (GGUF types have their own grid, GPTQ codes do not map)
// The output is written atomically: config.json (+ quantization_config), model.safetensors (sharded above
// 5 GB), tokenizer and generation files copied. Bad input fails before anything is written.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lib/calib/runner.h"
#include "lib/core/dtype.h"
#include "lib/quant/gptq.h"
#include "lib/quant/grid.h"
#include "lib/quant/hessian.h"

namespace llmopt::quant {

enum class Format { Gptq, CompressedTensors, Dense, Gguf, Awq };
Format parse_format(const std::string& s);  // Error listing the choices
const char* format_name(Format f);

// A calibration Method whose result the writer stores: per linear the quantized codes (take) or the dense
// weight as --format dense stores it (take_dense), and per layer the norm weights the method rewrote by
// folding its smoothing scales into them (AWQ, SmoothQuant; full tensor name → values).
class WeightQuantizer : public calib::Method {
 public:
  virtual QuantizedMatrix take(const std::string& linear_name) = 0;  // Error if absent
  virtual std::vector<float> take_dense(const std::string& linear_name) = 0;
  virtual std::map<std::string, std::vector<float>> take_folded() { return {}; }
  std::set<std::string> per_channel;  // linears quantized with group_size −1
};

// RTN or GPTQ as a calibration Method. compress() returns the dequantized weight exactly as the output file
// will hold it (scales rounded to scale_dtype, the weight to weight_dtype), so later layers calibrate on it;
// the QuantizedMatrix is kept for the writer (take()).
class QuantMethod : public WeightQuantizer {
 public:
  QuantMethod(bool gptq, GptqOptions opt, DType scale_dtype = DType::F32, DType weight_dtype = DType::F32);
  std::string name() const override { return gptq_ ? "gptq" : "rtn"; }
  bool needs_calibration() const override { return gptq_; }
  void begin(const model::Linear& l) override;
  void observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) override;
  model::Linear compress(const model::Linear& l) override;

  QuantizedMatrix take(const std::string& linear_name) override;
  std::vector<float> take_dense(const std::string& linear_name) override;
  double gptq_loss() const { return loss_; }              // Σ over linears of GPTQ's reported loss
  void keep_zeros(bool on) { keep_zeros_ = on; }           // pin exact zeros (a pruned input's pattern survives)

 private:
  bool gptq_;
  GptqOptions opt_;
  DType scale_dtype_, weight_dtype_;
  std::map<std::string, std::shared_ptr<Hessian>> h_;
  std::map<std::string, bool> shares_;  // linears whose H is another's (q/k/v, gate/up: the same input)
  const float* last_x_ = nullptr;
  std::shared_ptr<Hessian> last_h_;
  std::map<std::string, QuantizedMatrix> done_;
  double loss_ = 0;
  bool keep_zeros_ = false;
};

// W'[r, c] as stored: scales rounded to scale_dtype, the product rounded to weight_dtype.
std::vector<float> stored_weight(const QuantizedMatrix& q, DType scale_dtype, DType weight_dtype = DType::F32);

struct QuantizeOptions {
  // Activation-aware scaling before the weight quantizer: AWQ (grid search of s = mean|X|^α, clipping, RTN) or
  // SmoothQuant (s = max|X|^α / max|W|^(1−α), int8 per-channel weights by RTN or, with gptq, GPTQ).
  enum class Scaling { None, Awq, SmoothQuant } scaling = Scaling::None;
  bool gptq = false;               // else RTN
  double alpha = 0.5;              // SmoothQuant's migration strength, in [0, 1]
  int awq_n_grid = 20;             // AWQ: α ∈ {0, 1/n, …, (n−1)/n}
  bool awq_clip = true;            // AWQ: the weight-clipping search
  bool smooth_only = false;        // SmoothQuant: fold the scales but keep the weights unquantized (tests)
  GptqOptions gptq_opt;            // grid (bits, group_size, sym), block_size, damp, act_order, static_groups
  Format format = Format::Gptq;
  calib::CalibOptions calib;
  bool ragged_per_channel = false;  // compressed-tensors: linears whose in_features G does not divide → per channel
  // Tests: called after each layer is written, with the weights the runner calibrated the next layer on.
  std::function<void(const model::LayerWeights&)> on_layer;
};

struct QuantizeReport {
  std::string method, format, output;
  std::vector<double> awq_alpha;  // AWQ: the α chosen per scaled group (q,k,v | o | gate,up | down per layer)
  int bits = 0, group_size = 0, layers = 0;
  double seconds = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
};

QuantizeReport quantize_model(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                              const QuantizeOptions& opt);

}  // namespace llmopt::quant
