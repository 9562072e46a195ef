#pragma once
// `llmopt prune`: a whole checkpoint through the calibration runner (lib/calib/runner.h) with magnitude, Wanda
// or SparseGPT, one decoder layer at a time, true sequential (later linears are calibrated on the already
// pruned earlier ones), streamed into an output directory:
//   model.safetensors  the same tensors, names, shapes and dtypes as the input, the pruned weights set to 0
//                      ("dense" sparse format: any engine runs it); embeddings, norms and lm_head untouched.
//   config.json        the input's plus a compressed-tensors SparsityCompressionConfig (0.20's fields):
//                        "sparsity_config": {"format": "dense", "sparsity_structure": "unstructured" | "2:4",
//                          "global_sparsity": zeros / parameters of the whole model, "targets": ["Linear"],
//                          "ignore": ["lm_head"], "registry_requires_subclass": false}
//                      at the TOP level. compressed-tensors nests it in quantization_config (and 0.20 writes it
//                      empty, "sparsity is removed for now"); a quantization_config would make every loader treat
//                      the dense checkpoint as quantized, so a pruned model stays a plain checkpoint that
//                      transformers, llmopt and llmopt quantize (prune → quantize) load as is.
//   joint SparseGPT + quantization (--bits): the dequantized weights ("fake quant", as quantize --format dense)
//                      with the sparsity_config above and "llmopt_fake_quantization": {method, bits, group_size,
//                      symmetric, note}: every weight of a linear lies on its group's grid, the pruned ones at 0.
// Patterns (lib/prune/pattern.h): unstructured --sparsity p, exactly floor(cols·p) zeros in every output row
// (scope row, default) or floor(rows·cols·p) per matrix (scope layer: magnitude's classic one threshold per
// matrix; Wanda's per-layer ablation; SparseGPT's reference mask, chosen per 128-column block over all rows);
// N:M keeps N of every M consecutive inputs of a row.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/calib/runner.h"
#include "lib/prune/pattern.h"
#include "lib/quant/grid.h"

namespace llmopt::prune {

enum class Algo { Magnitude, Wanda, SparseGpt };
Algo parse_algo(const std::string& s);  // Error listing the choices
const char* algo_name(Algo a);

// "2:4" → {n 2, m 4}; Error on anything else than N:M with 0 < N < M.
SparsityPattern parse_nm(const std::string& s);

// Magnitude / Wanda / SparseGPT as a calibration Method. compress() returns the pruned (SparseGPT: pruned and
// reconstructed, joint: also quantized) weight rounded to the stored dtype, exactly as the output file holds it.
class PruneMethod : public calib::Method {
 public:
  PruneMethod(Algo algo, SparsityPattern pattern, Scope scope, std::optional<quant::QuantGrid> quant = {},
              int block_size = 128, double damp = 0.01);
  std::string name() const override { return algo_name(algo_); }
  bool needs_calibration() const override { return algo_ != Algo::Magnitude; }
  void begin(const model::Linear& l) override;
  void observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) override;
  model::Linear compress(const model::Linear& l) override;

  // Tests: Wanda's Σ_t x_tj² of each linear's input as compress() used it.
  std::function<void(const std::string& linear, const std::vector<float>& x_sq_norm)> on_stats;
  double sparsegpt_loss() const { return loss_; }  // Σ over linears of SparseGPT's reported loss

 private:
  struct Acc;  // a linear's observed statistics: Wanda's channel norms or SparseGPT's Hessian
  Algo algo_;
  SparsityPattern pattern_;
  Scope scope_;
  std::optional<quant::QuantGrid> quant_;
  int block_size_;
  double damp_;
  std::map<std::string, std::shared_ptr<Acc>> acc_;
  std::map<std::string, bool> shares_;  // q/k/v and gate/up see one input: one accumulator
  const float* last_x_ = nullptr;
  std::shared_ptr<Acc> last_acc_;
  double loss_ = 0;
};

struct PruneOptions {
  Algo algo = Algo::Magnitude;
  SparsityPattern pattern;                // sparsity in (0, 1), or N:M
  Scope scope = Scope::row;
  calib::CalibOptions calib;              // Wanda, SparseGPT
  std::optional<quant::QuantGrid> quant;  // SparseGPT only: joint sparsify + quantize
  int block_size = 128;                   // SparseGPT lazy-batch width
  double damp = 0.01;                     // SparseGPT dampening
  // Tests: called after each layer is written, with the weights the runner calibrated the next layer on.
  std::function<void(const model::LayerWeights&)> on_layer;
  std::function<void(const std::string&, const std::vector<float>&)> on_stats;  // see PruneMethod
};

struct PruneReport {
  std::string method, pattern, structure, output;  // pattern "50%" / "2:4"; structure as sparsity_config's
  int layers = 0, bits = 0, group_size = 0;         // bits 0: no quantization
  double linear_sparsity = 0;                       // zeros / weights of the pruned linears
  double global_sparsity = 0;                       // zeros / parameters of the whole model
  double seconds = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
};

PruneReport prune_model(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                        const PruneOptions& opt);

}  // namespace llmopt::prune
