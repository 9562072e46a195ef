#pragma once
// The calibration runner: the one mechanism every quantizer and pruner runs through.
//
//   ids   = tokenize(calibration text)
//   X     = embed(nsamples random windows of seqlen tokens)          (GPTQ's get_loaders)
//   for each decoder layer l:
//     W = load_layer(l)
//     for group in {q,k,v} → {o} → {gate,up} → {down}:               ("true sequential")
//       run the layer over X, method.observe(linear, its input) for the group's linears
//       linear ← method.compress(linear)   (later groups see the compressed earlier ones)
//     X = layer(X) with the compressed weights                       (the next layer's input)
//     sink(l, W); free W
//
// Peak memory: one layer's weights + the calibration activations. Methods that need no data (RTN,
// magnitude pruning) skip tokenization and the forward passes. Same seed + input → same bits.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lib/model/checkpoint.h"
#include "lib/model/weights.h"

namespace llmopt::calib {

struct CalibOptions {
  std::filesystem::path text_file;  // calibration text (required when the method needs data)
  int nsamples = 128;               // windows
  int seqlen = 2048;                // tokens per window (0: min(2048, max_position_embeddings))
  uint64_t seed = 0;
  int batch = 4;                    // windows per forward call (bounds the scratch activations)
};

// nsamples windows of seqlen tokens starting at random positions i ∈ [0, n − seqlen − 1] (as GPTQ's
// get_loaders draws them), from std::mt19937_64(seed). Error when the text is shorter than seqlen + 1.
std::vector<std::vector<int32_t>> sample_windows(std::span<const int32_t> ids, int nsamples, int seqlen,
                                                 uint64_t seed);

// The windows run() calibrates on: opt.text_file tokenized with the checkpoint's tokenizer (no special
// tokens), then sample_windows (seqlen 0 = min(2048, max_position_embeddings)).
std::vector<std::vector<int32_t>> calibration_windows(const model::Checkpoint& ck, const CalibOptions& opt);

// What a compression method does with the linears of a layer. The runner calls, per group of linears:
// begin(l) for each, observe(l, x) for every calibration batch, then compress(l) for each, in order.
class Method {
 public:
  virtual ~Method() = default;
  virtual std::string name() const = 0;
  // false: compress() needs no activations (RTN, magnitude); the runner never tokenizes or runs the model.
  virtual bool needs_calibration() const { return true; }
  virtual void begin(const model::Linear& l) { (void)l; }
  // x [rows, cols]: the linear's input for one calibration batch (q, k, v share one x).
  virtual void observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) = 0;
  // The linear the rest of the calibration forward uses (e.g. dequantized or pruned weight, fp32); the
  // method keeps whatever its writer needs (codes, masks) keyed by l.name.
  virtual model::Linear compress(const model::Linear& l) = 0;
};

// Per-input-channel activation statistics (Wanda's ‖X_j‖², SmoothQuant/AWQ's max|X_j| and mean|X_j|).
struct ChannelStats {
  std::vector<double> sum_sq, sum_abs;
  std::vector<float> max_abs;
  int64_t rows = 0;

  void add(const float* x, int64_t rows, int64_t cols);
  std::vector<float> norm_sq() const;   // Σ x_j²
  std::vector<float> mean_abs() const;  // Σ |x_j| / rows
};

// Called once a layer is done, with its compressed weights (linears as returned by compress()).
using LayerSink = std::function<void(model::LayerWeights& layer)>;

struct RunStats {
  int layers = 0;
  int64_t tokens = 0;  // calibration tokens per layer
  double seconds = 0;
};

// The linear groups in true-sequential order, as pointers into w.
std::vector<std::vector<model::Linear*>> sequential_groups(model::LayerWeights& w);

RunStats run(const model::Checkpoint& ck, Method& method, const CalibOptions& opt, const LayerSink& sink);

// The same over already tokenized windows (convert's similarity grouping, tests, callers that tokenize themselves).
RunStats run_windows(const model::Checkpoint& ck, Method& method, const std::vector<std::vector<int32_t>>& windows,
                     int batch, const LayerSink& sink);

}  // namespace llmopt::calib
