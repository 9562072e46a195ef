#pragma once
// The paged KV cache: a BlockPool (integers), a BlockTable per sequence, and the backend's KVStorage.
// Each step the caller names how many new tokens every sequence brings; plan() makes room (failing softly
// so a scheduler can preempt), performs copy-on-write, and fills the step's AttentionBatch. The forward
// pass then appends K/V through the batch's slot mapping and attends through its block tables.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "lib/backend/backend.h"
#include "lib/kv/block_pool.h"
#include "lib/kv/block_table.h"
#include "lib/kv/kv_storage.h"

namespace llmopt::kv {

class PagedCache {
 public:
  // max_seq_tokens: the longest sequence the caller will build (0: the whole pool), for the backend's
  // attention scratch.
  PagedCache(backend::Backend& b, const KVFormat& f, int n_layers, int64_t num_blocks, int64_t max_seq_tokens = 0,
             uint64_t hash_seed = 0);

  // Sequences are small integer ids; a freed id is reused.
  int add_sequence();
  void free_sequence(int seq);
  int fork(int seq);  // a new sequence sharing every block of seq (copy-on-write on the first write)
  int64_t length(int seq) const { return table(seq).num_tokens(); }
  const std::vector<int32_t>& blocks(int seq) const { return table(seq).blocks(); }
  void truncate(int seq, int64_t n) { table(seq).truncate(pool_, n); }
  // Prefix caching: adopt cached full blocks of `tokens` into an empty sequence / seal its full blocks.
  int64_t adopt_prefix(int seq, std::span<const int32_t> tokens) { return table(seq).adopt_prefix(pool_, tokens); }
  void seal(int seq, std::span<const int32_t> tokens_so_far) { table(seq).seal_full_blocks(pool_, tokens_so_far); }

  struct Chunk {
    int seq;
    int64_t n;  // new tokens this step (> 0)
  };
  // Room for every chunk's tokens, in order, and the step's attention batch (views into buffers of this
  // cache, valid until the next plan()). False when the pool runs out: every table is as it was before.
  bool plan(std::span<const Chunk> chunks, backend::AttentionBatch& batch);

  BlockPool& pool() { return pool_; }
  const BlockPool& pool() const { return pool_; }
  KVStorage& storage() { return storage_; }
  const KVFormat& format() const { return storage_.format(); }

 private:
  BlockTable& table(int seq);
  const BlockTable& table(int seq) const { return const_cast<PagedCache*>(this)->table(seq); }

  BlockPool pool_;
  KVStorage storage_;
  std::vector<std::optional<BlockTable>> tables_;
  // the step's batch arrays, grow-only so planning allocates nothing after warm-up
  std::vector<int32_t> query_start_, seq_len_, block_table_;
  std::vector<int64_t> slots_, positions_;
  std::vector<BlockCopy> copies_;
};

}  // namespace llmopt::kv
