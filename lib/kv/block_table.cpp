#include "lib/kv/block_table.h"

#include "lib/core/error.h"

namespace llmopt::kv {

int32_t BlockTable::block(int64_t i) const {
  if (i < 0 || i >= size()) fail("block table: block {} of {}", i, size());
  return blocks_[size_t(i)];
}

int64_t BlockTable::slot(const BlockPool& pool, int64_t pos) const {
  if (pos < 0 || pos >= num_tokens_) fail("block table: position {} of {} tokens", pos, num_tokens_);
  const int64_t bs = pool.block_size();
  return int64_t(blocks_[size_t(pos / bs)]) * bs + pos % bs;
}

bool BlockTable::append_slots(BlockPool& pool, int64_t n, std::vector<int64_t>& slots,
                              std::vector<BlockCopy>& copies) {
  if (n < 0) fail("block table: append of {} tokens", n);
  const int64_t bs = pool.block_size();
  const int64_t fresh = (num_tokens_ + n + bs - 1) / bs - size();
  // Writing into a partial last block someone else also holds needs one more block for its copy.
  const bool partial = n > 0 && num_tokens_ % bs != 0;
  const bool copy = partial && pool.ref_count(blocks_.back()) > 1;
  // Count first so that nothing needs rolling back: every allocation below then succeeds.
  if (fresh + copy > pool.num_free()) return false;

  if (partial) {
    // A partial block is never in chain_; a sole owner's stale hash is dropped here.
    const auto w = pool.make_writable(blocks_.back());
    if (w->copy_from >= 0) copies.push_back({w->copy_from, w->block});
    blocks_.back() = w->block;
  }
  for (int64_t i = 0; i < fresh; ++i) blocks_.push_back(*pool.allocate());
  for (int64_t pos = num_tokens_; pos < num_tokens_ + n; ++pos)
    slots.push_back(int64_t(blocks_[size_t(pos / bs)]) * bs + pos % bs);
  num_tokens_ += n;
  return true;
}

void BlockTable::truncate(BlockPool& pool, int64_t n) {
  if (n < 0 || n > num_tokens_) fail("block table: truncate to {} of {} tokens", n, num_tokens_);
  const int64_t bs = pool.block_size();
  const int64_t keep = (n + bs - 1) / bs;
  // Tail first: the free list then evicts the tail before the (more shareable) head.
  while (size() > keep) {
    pool.release(blocks_.back());
    blocks_.pop_back();
  }
  if (int64_t(chain_.size()) > n / bs) chain_.resize(size_t(n / bs));
  num_tokens_ = n;
}

BlockTable BlockTable::fork(BlockPool& pool) const {
  for (int32_t b : blocks_) pool.retain(b);
  return *this;
}

void BlockTable::release(BlockPool& pool) { truncate(pool, 0); }

int64_t BlockTable::adopt_prefix(BlockPool& pool, std::span<const int32_t> tokens) {
  if (num_tokens_ != 0 || !blocks_.empty()) fail("block table: adopt_prefix on a non-empty table");
  const int64_t bs = pool.block_size();
  const int64_t full = tokens.empty() ? 0 : int64_t(tokens.size() - 1) / bs;  // excludes the last token
  uint64_t parent = BlockPool::kRootHash;
  for (int64_t i = 0; i < full; ++i) {
    const uint64_t h = pool.hash_block(parent, tokens.subspan(size_t(i * bs), size_t(bs)));
    const auto b = pool.lookup(h);
    if (!b) break;
    blocks_.push_back(*b);
    chain_.push_back(h);
    parent = h;
  }
  num_tokens_ = size() * bs;
  return num_tokens_;
}

void BlockTable::seal_full_blocks(BlockPool& pool, std::span<const int32_t> tokens_so_far) {
  if (int64_t(tokens_so_far.size()) > num_tokens_)
    fail("block table: {} tokens given, {} held", tokens_so_far.size(), num_tokens_);
  const int64_t bs = pool.block_size();
  const int64_t full = int64_t(tokens_so_far.size()) / bs;
  for (int64_t i = int64_t(chain_.size()); i < full; ++i) {
    const uint64_t parent = chain_.empty() ? BlockPool::kRootHash : chain_.back();
    const uint64_t h = pool.hash_block(parent, tokens_so_far.subspan(size_t(i * bs), size_t(bs)));
    pool.seal(blocks_[size_t(i)], h);  // false: the same content is cached in another block; chain goes on
    chain_.push_back(h);
  }
}

}  // namespace llmopt::kv
