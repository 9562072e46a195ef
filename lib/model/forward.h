#pragma once
// The Llama-family forward pass (Llama 2/3, Mistral, Qwen2 biases, Qwen3 q/k norm), written once against
// lib/backend. Per-layer building blocks are public so the calibration runner can run one decoder layer at
// a time over a calibration batch and observe every linear's input.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "lib/kv/kv_cache.h"
#include "lib/model/checkpoint.h"
#include "lib/model/weights.h"

namespace llmopt::model {

// RoPE inverse frequencies (head_dim/2) after rope_scaling (none, "linear", "llama3"), as HF computes them.
std::vector<float> rope_inv_freq(const ModelConfig& c);

// Called with each linear's input activations x [rows, cols] before the matmul (q, k and v share one x).
using Observer = std::function<void(int layer, const Linear& linear, const float* x, int64_t rows, int64_t cols)>;

// One sequence's rows in a ragged batch: rows [row, row + n) of the activations are its tokens at
// positions pos0 .. pos0+n-1. With a KV cache, `slot` names its cache entry (and pos0 = its length).
struct SeqRows {
  int slot = 0;
  int64_t row = 0, n = 0, pos0 = 0;
};

// Everything a layer needs besides its weights and activations.
struct LayerContext {
  const ModelConfig* config = nullptr;
  const std::vector<float>* inv_freq = nullptr;
  std::span<const SeqRows> seqs;
  kv::KVCache* kv = nullptr;        // null: every sequence is self-contained (pos0 must be 0); K/V are scratch
  const Observer* observe = nullptr;  // optional
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

// A loaded model: the mmap'd checkpoint, its weights and RoPE table.
class Model {
 public:
  static std::unique_ptr<Model> load(const std::filesystem::path& dir);
  explicit Model(Checkpoint ck);

  const ModelConfig& config() const { return ck_.config; }
  const Checkpoint& checkpoint() const { return ck_; }
  ModelWeights& weights() { return w_; }
  const ModelWeights& weights() const { return w_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }

  // A contiguous KV cache for n_slots sequences of up to max_tokens (default max_position_embeddings).
  std::unique_ptr<kv::KVCache> make_cache(int n_slots, int64_t max_tokens = 0) const;

  struct SeqInput {
    int slot = 0;                     // KV cache slot; the tokens continue it at position kv.length(slot)
    std::span<const int32_t> tokens;  // at least one
    bool all_logits = false;          // logits for every token (else only the last)
  };
  // One step over a ragged batch. Returns logits [rows, vocab]: per sequence, in order, n rows if
  // all_logits else 1. Each slot's cache length advances by its token count.
  std::vector<float> forward(std::span<const SeqInput> batch, kv::KVCache& kv, const Observer* observe = nullptr);

 private:
  Checkpoint ck_;
  ModelWeights w_;
  std::vector<float> inv_freq_;
};

}  // namespace llmopt::model
