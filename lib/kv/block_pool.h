#pragma once
// Integer bookkeeping for a paged KV cache: which of num_blocks fixed-size blocks are in use, by how
// many sequences, and which full blocks hold cached content findable by a chained hash of their tokens.
// No storage lives here; a block id b owns slots [b * block_size, (b + 1) * block_size) of whatever
// arrays the caller keeps.
//
// Free blocks (refcount 0) sit in one list in LRU order: release() appends at the back, allocate()
// takes the front. A free block that still has a hash stays findable by lookup() until allocate()
// reuses it, which is the only eviction. The order is exactly LRU: a free block without a hash is
// not preferred over an older cached one.
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace llmopt::kv {

class BlockPool {
 public:
  // Parent hash of a sequence's first block.
  static constexpr uint64_t kRootHash = 0x9e3779b97f4a7c15ull;

  struct Writable {
    int32_t block;      // block to write into
    int32_t copy_from;  // copy its rows from this block first; -1 when no copy is needed
  };
  struct Stats {
    int64_t hits = 0, misses = 0;  // lookup() results
    int64_t evictions = 0;         // cached blocks whose hash allocate() dropped
  };

  explicit BlockPool(int32_t num_blocks, int32_t block_size = 16, uint64_t hash_seed = 0);

  int32_t num_blocks() const { return int32_t(ref_.size()); }
  int32_t block_size() const { return block_size_; }
  int32_t num_free() const { return num_free_; }
  bool can_allocate(int32_t n) const { return n <= num_free_; }
  int32_t ref_count(int32_t id) const;
  const Stats& stats() const { return stats_; }

  // Least recently freed block with refcount 1 and no hash (an old hash is evicted); nullopt when
  // every block is in use.
  std::optional<int32_t> allocate();
  // refcount + 1. A free block may be retained only while it is cached (it leaves the free list).
  void retain(int32_t id);
  // refcount - 1; at 0 the block goes to the back of the free list, keeping its hash.
  void release(int32_t id);

  // Chained content hash of one full block: depends on the seed, the parent's hash and the tokens
  // in order. The same on every run and platform.
  uint64_t hash_block(uint64_t parent_hash, std::span<const int32_t> tokens) const;
  // Registers an in-use full block under `hash`. False (block stays unhashed) when another block
  // already holds that hash; true when registered or already registered under the same hash.
  bool seal(int32_t id, uint64_t hash);
  // The block cached under `hash`, retained for the caller; nullopt when none.
  std::optional<int32_t> lookup(uint64_t hash);
  std::optional<uint64_t> hash_of(int32_t id) const;

  // Prepares in-use block `id` for writing. Sole owner: the block itself, its hash dropped if it had
  // one (the cached content is about to change). Shared: a fresh block to copy into, and the caller's
  // reference to `id` is released. nullopt (nothing changed) when a copy is needed and no block is free.
  std::optional<Writable> make_writable(int32_t id);

 private:
  void check(int32_t id) const;
  void push_back(int32_t id);
  void unlink(int32_t id);
  void drop_hash(int32_t id);

  int32_t block_size_;
  uint64_t seed_;
  std::vector<int32_t> ref_;
  // Free list: intrusive doubly-linked over ids, sentinel at index num_blocks (next = front, prev = back).
  std::vector<int32_t> prev_, next_;
  int32_t num_free_ = 0;
  std::vector<uint64_t> hash_;
  std::vector<uint8_t> hashed_;
  std::unordered_map<uint64_t, int32_t> cached_;  // hash -> block, for every hashed block
  Stats stats_;
};

}  // namespace llmopt::kv
