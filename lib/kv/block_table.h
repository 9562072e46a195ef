#pragma once
// One sequence's view of a BlockPool: the blocks holding its tokens in order, so token `pos` lives in
// slot blocks[pos / block_size] * block_size + pos % block_size. The table owns one reference to each
// of its blocks; hand them back with release() (or truncate()) before dropping the table.
#include <cstdint>
#include <span>
#include <vector>

#include "lib/kv/block_pool.h"

namespace llmopt::kv {

// Copy-on-write report: copy the storage rows of block src into block dst before writing dst.
struct BlockCopy {
  int32_t src, dst;
};

class BlockTable {
 public:
  int64_t num_tokens() const { return num_tokens_; }
  int64_t size() const { return int64_t(blocks_.size()); }  // blocks held
  int32_t block(int64_t i) const;
  const std::vector<int32_t>& blocks() const { return blocks_; }
  int64_t slot(const BlockPool& pool, int64_t pos) const;  // pos < num_tokens()

  // Room for tokens [num_tokens, num_tokens + n): allocates blocks, makes a shared or cached partial
  // last block writable (a copy goes to `copies`), appends the n slot ids to `slots` and advances
  // num_tokens. False when the pool lacks blocks; then table, pool, slots and copies are unchanged.
  bool append_slots(BlockPool& pool, int64_t n, std::vector<int64_t>& slots, std::vector<BlockCopy>& copies);
  // Keeps the first n tokens (n <= num_tokens); releases blocks no longer needed.
  void truncate(BlockPool& pool, int64_t n);
  // A second table sharing every block.
  BlockTable fork(BlockPool& pool) const;
  // Releases every block; the table is empty afterwards.
  void release(BlockPool& pool);

  // On an empty table: adopts the longest run of cached full blocks matching `tokens`, never the block
  // holding the last token (so at least one token is computed fresh). Returns the tokens adopted.
  int64_t adopt_prefix(BlockPool& pool, std::span<const int32_t> tokens);
  // Seals every block that is now full, given the sequence's tokens so far (their KV written). Blocks
  // sealed before are not rehashed.
  void seal_full_blocks(BlockPool& pool, std::span<const int32_t> tokens_so_far);

 private:
  std::vector<int32_t> blocks_;
  int64_t num_tokens_ = 0;
  // chain_[i]: chained hash of full block i, known for the leading blocks sealed (or adopted) so far.
  std::vector<uint64_t> chain_;
};

}  // namespace llmopt::kv
