#include "lib/kv/paged_cache.h"

#include <algorithm>

#include "lib/core/error.h"

namespace llmopt::kv {
namespace {

template <typename T> Tensor host_vector(std::vector<T>& v, size_t n, DType t) {
  return Tensor::vector(v.data(), t, int64_t(n));
}

}  // namespace

PagedCache::PagedCache(backend::Backend& b, const KVFormat& f, int n_layers, int64_t num_blocks, int64_t max_seq_tokens,
                       uint64_t hash_seed)
    : pool_(int32_t(num_blocks), int32_t(f.block_size), hash_seed), storage_(b, f, n_layers, num_blocks) {
  const int64_t cap = num_blocks * f.block_size;
  b.reserve_attention(max_seq_tokens > 0 ? std::min(max_seq_tokens, cap) : cap, std::max(f.k_dim, f.v_dim));
}

BlockTable& PagedCache::table(int seq) {
  if (seq < 0 || size_t(seq) >= tables_.size() || !tables_[size_t(seq)]) fail("kv cache: no sequence {}", seq);
  return *tables_[size_t(seq)];
}

int PagedCache::add_sequence() {
  for (size_t i = 0; i < tables_.size(); ++i)
    if (!tables_[i]) {
      tables_[i].emplace();
      return int(i);
    }
  tables_.emplace_back(BlockTable{});
  return int(tables_.size() - 1);
}

void PagedCache::free_sequence(int seq) {
  table(seq).release(pool_);
  tables_[size_t(seq)].reset();
}

int PagedCache::fork(int seq) {
  BlockTable child = table(seq).fork(pool_);
  const int id = add_sequence();
  *tables_[size_t(id)] = std::move(child);
  return id;
}

bool PagedCache::plan(std::span<const Chunk> chunks, backend::AttentionBatch& b) {
  const size_t S = chunks.size();
  query_start_.assign(S + 1, 0);
  seq_len_.assign(S, 0);
  slots_.clear();
  positions_.clear();
  copies_.clear();
  for (size_t i = 0; i < S; ++i) {
    BlockTable& t = table(chunks[i].seq);
    if (chunks[i].n <= 0) fail("kv cache: sequence {} brings no tokens to the step", chunks[i].seq);
    const int64_t pos0 = t.num_tokens();
    copies_.clear();
    if (!t.append_slots(pool_, chunks[i].n, slots_, copies_)) {
      for (size_t j = 0; j < i; ++j)  // undo the chunks that fit (a block they copied stays copied)
        table(chunks[j].seq).truncate(pool_, seq_len_[j] - (query_start_[j + 1] - query_start_[j]));
      return false;
    }
    for (const BlockCopy& c : copies_) storage_.copy_block(c.src, c.dst);
    for (int64_t p = pos0; p < t.num_tokens(); ++p) positions_.push_back(p);
    query_start_[i + 1] = int32_t(query_start_[i] + chunks[i].n);
    seq_len_[i] = int32_t(t.num_tokens());
  }
  int64_t max_blocks = 1;
  for (const Chunk& c : chunks) max_blocks = std::max(max_blocks, table(c.seq).size());
  block_table_.assign(S * size_t(max_blocks), 0);
  for (size_t i = 0; i < S; ++i) {
    const auto& bl = table(chunks[i].seq).blocks();
    std::copy(bl.begin(), bl.end(), block_table_.begin() + int64_t(i) * max_blocks);
  }
  b.num_seqs = int64_t(S);
  b.num_tokens = int64_t(slots_.size());
  b.max_blocks = max_blocks;
  b.block_size = format().block_size;
  b.query_start = host_vector(query_start_, S + 1, DType::I32);
  b.seq_len = host_vector(seq_len_, S, DType::I32);
  b.block_table = Tensor::matrix(block_table_.data(), DType::I32, int64_t(S), max_blocks);
  b.slot_mapping = host_vector(slots_, slots_.size(), DType::I64);
  b.positions = host_vector(positions_, positions_.size(), DType::I64);
  return true;
}

}  // namespace llmopt::kv
