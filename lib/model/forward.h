#pragma once
// The Llama-family forward pass (Llama 2/3, Mistral, Qwen2 biases, Qwen3 q/k norm), written once against
// the Backend op set. Activations live in a workspace arena; K/V go to the paged cache through the step's
// attention batch. Per-layer blocks are public so the calibration runner can run one decoder layer at a
// time over a calibration batch and observe every linear's input.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "lib/backend/backend.h"
#include "lib/core/arena.h"
#include "lib/kv/paged_cache.h"
#include "lib/model/checkpoint.h"
#include "lib/model/weights.h"

namespace llmopt::model {

// RoPE inverse frequencies (head_dim/2) after rope_scaling (none, "linear", "llama3"), as HF computes them.
std::vector<float> rope_inv_freq(const ModelConfig& c);

// Called with each linear's input activations x [rows, cols] before the matmul (q, k and v share one x).
using Observer = std::function<void(int layer, const Linear& linear, const float* x, int64_t rows, int64_t cols)>;

// Without a cache: one self-contained sequence's rows [row, row + n) of the activations (pos0 must be 0).
struct SeqRows {
  int slot = 0;
  int64_t row = 0, n = 0, pos0 = 0;
};

// Everything a layer needs besides its weights and activations. Either `seqs` (self-contained sequences,
// K/V scratch: calibration) or `kv` + `batch` (the paged cache and this step's attention batch).
struct LayerContext {
  const ModelConfig* config = nullptr;
  const std::vector<float>* inv_freq = nullptr;
  std::span<const SeqRows> seqs;
  kv::KVStorage* kv = nullptr;
  const Observer* observe = nullptr;  // optional
  const backend::AttentionBatch* batch = nullptr;
  backend::Backend* backend = nullptr;  // null: the CPU backend
  Arena* arena = nullptr;               // null: a scratch arena per call
};

// x [T, hidden] ← x + attention(rmsnorm(x)); K/V of the new tokens are written to the cache.
void attention_block(const LayerContext& ctx, const LayerWeights& w, float* x);
// x [T, hidden] ← x + down(silu(gate(h)) ⊙ up(h)), h = rmsnorm(x)
void mlp_block(const LayerContext& ctx, const LayerWeights& w, float* x);
// Both blocks: one decoder layer, in place on x [T, hidden].
void decoder_layer_forward(const LayerContext& ctx, const LayerWeights& w, float* x);

// x [T, hidden] ← embedding rows of ids (Error on an id outside the vocabulary).
void embed_tokens(const ModelWeights& w, std::span<const int32_t> ids, float* x);
// logits [rows, vocab] = lm_head(rmsnorm(x[rows])) for the selected rows of x.
void final_logits(const ModelConfig& c, const ModelWeights& w, const float* x, std::span<const int64_t> rows,
                  float* logits);

// One ragged step: the new tokens of every sequence in the batch, concatenated in batch order, and the
// rows whose logits are wanted.
struct Step {
  std::span<const int32_t> tokens;
  const backend::AttentionBatch* batch = nullptr;
  std::span<const int32_t> logit_rows;
};

// A loaded model: the mmap'd checkpoint, its weights placed on a backend, RoPE table and workspace.
class Model {
 public:
  static std::unique_ptr<Model> load(const std::filesystem::path& dir, backend::Backend& b = backend::current());
  explicit Model(Checkpoint ck, backend::Backend& b = backend::current());

  const ModelConfig& config() const { return ck_.config; }
  const Checkpoint& checkpoint() const { return ck_; }
  ModelWeights& weights() { return w_; }
  const ModelWeights& weights() const { return w_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  backend::Backend& backend() const { return *b_; }
  Arena& workspace() { return arena_; }

  // This model's KV layout in the paged cache (fp32 K/V rows, `block_size` tokens per block).
  kv::KVFormat kv_format(int64_t block_size = 16) const;
  // A paged cache on this model's backend with n_seqs sequences (ids 0..n-1) of up to max_tokens each
  // (default max_position_embeddings).
  std::unique_ptr<kv::PagedCache> make_cache(int n_seqs, int64_t max_tokens = 0, int64_t block_size = 16) const;

  // One step. The cache already holds room for the tokens (PagedCache::plan built step.batch). Returns
  // logits [logit_rows, vocab], a view into the workspace valid until the next forward. Allocates nothing
  // once the workspace has seen a step of this size.
  Tensor forward(const Step& step, kv::KVStorage& cache, const Observer* observe = nullptr);

  struct SeqInput {
    int slot = 0;                     // the cache sequence; the tokens continue it
    std::span<const int32_t> tokens;  // at least one
    bool all_logits = false;          // logits for every token (else only the last)
  };

 private:
  Checkpoint ck_;
  backend::Backend* b_;
  ModelWeights w_;
  std::vector<float> inv_freq_;
  Arena arena_;
};

// Plans one step of `batch` on the cache (Error when it does not fit) and runs it: logits [rows, vocab],
// per sequence in order, every token's if all_logits else the last one's.
std::vector<float> run_step(Model& m, kv::PagedCache& cache, std::span<const Model::SeqInput> batch,
                            const Observer* observe = nullptr);

}  // namespace llmopt::model
