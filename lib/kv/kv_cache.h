#pragma once
// The KV cache interface the forward pass writes to and attends over. A sequence lives in a slot;
// each layer keeps one fp32 K row and one V row (kv_heads·head_dim floats) per token. A contiguous
// cache (below) is one block per sequence; a paged cache hands out fixed blocks through the same calls.
// Header-only: llmopt_model uses it without linking llmopt_kv.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "lib/backend/ops.h"
#include "lib/core/error.h"

namespace llmopt::kv {

class KVCache {
 public:
  virtual ~KVCache() = default;
  virtual int64_t length(int slot) const = 0;  // tokens committed
  // Room for tokens [length, length + n) in every layer (a paged cache allocates blocks here).
  virtual void reserve(int slot, int64_t n) = 0;
  // Where token `pos` of `slot` goes in `layer` (pos < length + reserved).
  virtual float* key_row(int layer, int slot, int64_t pos) = 0;
  virtual float* value_row(int layer, int slot, int64_t pos) = 0;
  // Block addresses of slot's keys/values in `layer`, valid until the next reserve().
  virtual backend::KVBlocks blocks(int layer, int slot) = 0;
  // Commit after a forward step, or truncate (rollback of rejected speculative tokens, reuse of a slot).
  virtual void set_length(int slot, int64_t n) = 0;
};

// One growable buffer per (slot, layer); at most max_tokens per sequence.
class ContiguousKVCache final : public KVCache {
 public:
  ContiguousKVCache(int n_layers, int64_t row, int n_slots, int64_t max_tokens)
      : layers_(n_layers), row_(row), max_tokens_(max_tokens), slots_(size_t(n_slots)) {
    for (auto& s : slots_) {
      s.k.resize(size_t(n_layers)), s.v.resize(size_t(n_layers));
      s.kp.resize(size_t(n_layers)), s.vp.resize(size_t(n_layers));
    }
  }
  int64_t length(int slot) const override { return at(slot).len; }
  void reserve(int slot, int64_t n) override {
    Slot& s = at(slot);
    const int64_t need = s.len + n;
    if (need > max_tokens_) fail("sequence of {} tokens exceeds the context limit of {}", need, max_tokens_);
    if (need <= s.cap) return;
    s.cap = std::min(max_tokens_, std::max(need, 2 * s.cap));
    for (int l = 0; l < layers_; ++l) {
      s.k[size_t(l)].resize(size_t(s.cap * row_));
      s.v[size_t(l)].resize(size_t(s.cap * row_));
    }
  }
  float* key_row(int layer, int slot, int64_t pos) override { return at(slot).k[size_t(layer)].data() + pos * row_; }
  float* value_row(int layer, int slot, int64_t pos) override { return at(slot).v[size_t(layer)].data() + pos * row_; }
  backend::KVBlocks blocks(int layer, int slot) override {
    Slot& s = at(slot);
    s.kp[size_t(layer)] = s.k[size_t(layer)].data();
    s.vp[size_t(layer)] = s.v[size_t(layer)].data();
    // one block holding every token; block_size is the capacity so t / block_size is always 0
    return {&s.kp[size_t(layer)], &s.vp[size_t(layer)], std::max<int64_t>(s.cap, 1), row_};
  }
  void set_length(int slot, int64_t n) override { at(slot).len = n; }

 private:
  struct Slot {
    int64_t len = 0, cap = 0;
    std::vector<std::vector<float>> k, v;
    std::vector<const float*> kp, vp;  // per layer: the block address handed out by blocks()
  };
  Slot& at(int slot) {
    if (slot < 0 || size_t(slot) >= slots_.size()) fail("kv cache: no slot {}", slot);
    return slots_[size_t(slot)];
  }
  const Slot& at(int slot) const { return const_cast<ContiguousKVCache*>(this)->at(slot); }
  int layers_;
  int64_t row_, max_tokens_;
  std::vector<Slot> slots_;
};

}  // namespace llmopt::kv
