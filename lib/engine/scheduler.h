#pragma once
// Iteration-level scheduling over the paged KV cache (Orca's continuous batching on vLLM's block pool).
// Each step forms one ragged batch: running sequences first, in arrival order, then waiting ones, up to a
// token budget and a sequence limit. A prompt longer than the budget left is split across steps (chunked
// prefill) and shares the forward with other sequences' decode tokens. When the pool cannot hold the
// step, sequences admitted this step are put back first; then the newest running sequence is preempted:
// its blocks are freed and it is requeued at the front of the waiting queue, to be recomputed later. FCFS
// and deterministic: the same calls give the same batches. With prefix caching a waiting sequence whose
// next block another sequence of the step is completing (a shared system prompt) waits one step for it.
//
// The scheduler keeps each sequence's tokens and how many of them are in the cache; the caller runs the
// model on the batch, calls computed(), then append()s sampled tokens, fork()s or finish()es sequences.
// A sequence's pending tokens (tokens not yet in the cache) are fed in order; logits are wanted for every
// pending position from the last verified token on. A decode step has one pending token; a speculative
// proposer appends k draft tokens with propose() and gets the k + 1 logit rows that verify them, then
// keeps the accepted prefix with rollback().
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "lib/kv/paged_cache.h"

namespace llmopt::engine {

struct SchedulerOptions {
  int64_t max_batched_tokens = 2048;  // tokens in one forward step
  int64_t max_seqs = 64;              // sequences running at once
  bool prefix_caching = true;         // reuse cached full blocks of earlier sequences (chained hashes)
};

struct SchedulerStats {
  int64_t steps = 0, preemptions = 0;
  int64_t prefix_hit_tokens = 0;  // prompt tokens adopted from cached blocks instead of computed
  int64_t peak_running = 0, peak_blocks = 0;
  // KV slots in blocks in use and slots holding a token, summed over steps (waste = 1 - used / allocated)
  int64_t allocated_slot_steps = 0, used_slot_steps = 0;
};

class Scheduler {
 public:
  // One sequence's part of a step: tokens [start, start + n) are fed; logit rows are wanted for the
  // positions from first_logit (>= start) to the end of the chunk (none when first_logit == start + n).
  struct Entry {
    int64_t seq, start, n, first_logit;
    int64_t logits() const { return start + n - first_logit; }
  };
  struct Batch {
    std::vector<Entry> entries;
    std::vector<int32_t> tokens;      // the entries' tokens, concatenated
    std::vector<int32_t> logit_rows;  // rows of `tokens` whose logits are wanted, entry by entry
    backend::AttentionBatch attention;
    bool empty() const { return entries.empty(); }
  };

  Scheduler(kv::PagedCache& cache, SchedulerOptions o);

  // Queues a sequence with its prompt (non-empty). `width`: the sequences it becomes once its prompt is
  // computed (n samples forked from it); it is admitted only when that many may run. Returns its id.
  int64_t add(std::vector<int32_t> prompt, int64_t width = 1);

  // The next step's batch, its room in the cache planned (empty when no sequence is left). Valid until
  // the next schedule().
  const Batch& schedule();
  // The batch's tokens are in the cache now; full blocks are sealed for prefix caching.
  void computed();

  // A sequence whose tokens are all computed gets its next token.
  void append(int64_t seq, int32_t token);
  // Speculation: draft tokens to verify in the next step (logits for each and for the token before).
  void propose(int64_t seq, std::span<const int32_t> draft);
  // Keeps the first `keep` tokens (at least the verified ones), dropping the rest from tokens and cache.
  void rollback(int64_t seq, int64_t keep);
  // A new running sequence sharing seq's tokens and cache blocks (copy-on-write); seq's width becomes 1.
  int64_t fork(int64_t seq);
  // Frees the sequence's blocks; it leaves the scheduler.
  void finish(int64_t seq);

  std::span<const int32_t> tokens(int64_t seq) const { return get(seq).tokens; }
  int64_t prompt_len(int64_t seq) const { return get(seq).prompt_len; }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  int64_t num_running() const { return int64_t(running_.size()); }
  int64_t num_waiting() const { return int64_t(waiting_.size()); }
  const SchedulerStats& stats() const { return stats_; }
  kv::PagedCache& cache() { return *cache_; }

 private:
  struct Seq {
    std::vector<int32_t> tokens;
    int64_t prompt_len = 0;
    int64_t computed = 0;          // leading tokens whose K/V are in the cache
    int64_t draft = 0;             // trailing draft tokens awaiting verification
    int64_t width = 1;
    int64_t family = 0;            // the id it was forked from (its own id when not a fork)
    int slot = -1;                 // cache sequence while resident
    bool live = false;
  };
  Seq& get(int64_t seq);
  const Seq& get(int64_t seq) const { return const_cast<Scheduler*>(this)->get(seq); }
  int64_t first_logit(const Seq& s) const { return int64_t(s.tokens.size()) - 1 - s.draft; }
  bool try_plan(int64_t max_admit, int64_t& admitted);
  bool computes_next_block(const Seq& c) const;
  void evict(int64_t seq);  // frees a resident sequence's cache, computed = 0
  void fill_batch();

  kv::PagedCache* cache_;
  SchedulerOptions opt_;
  std::vector<Seq> seqs_;        // by id; ids are never reused
  std::vector<int64_t> running_;  // in arrival order
  std::deque<int64_t> waiting_;   // the front goes first
  std::vector<kv::PagedCache::Chunk> chunks_;
  std::vector<int64_t> fill_;  // per block, slots written (waste statistics)
  Batch batch_;
  SchedulerStats stats_;
};

}  // namespace llmopt::engine
