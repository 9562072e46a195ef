#include "lib/kv/block_pool.h"

#include "lib/core/error.h"

namespace llmopt::kv {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull, kFnvPrime = 0x100000001b3ull;

// FNV-1a over the low `bytes` bytes of v, least significant first (so independent of endianness).
uint64_t fnv(uint64_t h, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) h = (h ^ ((v >> (8 * k)) & 0xff)) * kFnvPrime;
  return h;
}

// splitmix64's finalizer: spreads FNV's weak high bits over the whole word.
uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size, uint64_t hash_seed)
    : block_size_(block_size), seed_(hash_seed) {
  if (num_blocks < 0) fail("block pool: {} blocks", num_blocks);
  if (block_size < 1) fail("block pool: block size {}", block_size);
  const size_t n = size_t(num_blocks);
  ref_.assign(n, 0);
  prev_.assign(n + 1, num_blocks);
  next_.assign(n + 1, num_blocks);
  hash_.assign(n, 0);
  hashed_.assign(n, 0);
  for (int32_t id = 0; id < num_blocks; ++id) push_back(id);
}

void BlockPool::check(int32_t id) const {
  if (id < 0 || id >= num_blocks()) fail("block pool: block {} out of range [0, {})", id, num_blocks());
}

int32_t BlockPool::ref_count(int32_t id) const {
  check(id);
  return ref_[size_t(id)];
}

void BlockPool::push_back(int32_t id) {
  const int32_t s = num_blocks(), back = prev_[size_t(s)];
  prev_[size_t(id)] = back, next_[size_t(id)] = s;
  next_[size_t(back)] = id, prev_[size_t(s)] = id;
  ++num_free_;
}

void BlockPool::unlink(int32_t id) {
  const int32_t p = prev_[size_t(id)], n = next_[size_t(id)];
  next_[size_t(p)] = n, prev_[size_t(n)] = p;
  --num_free_;
}

void BlockPool::drop_hash(int32_t id) {
  if (!hashed_[size_t(id)]) return;
  cached_.erase(hash_[size_t(id)]);
  hashed_[size_t(id)] = 0;
}

std::optional<int32_t> BlockPool::allocate() {
  if (num_free_ == 0) return std::nullopt;
  const int32_t id = next_[size_t(num_blocks())];
  unlink(id);
  if (hashed_[size_t(id)]) ++stats_.evictions;
  drop_hash(id);
  ref_[size_t(id)] = 1;
  return id;
}

void BlockPool::retain(int32_t id) {
  check(id);
  if (ref_[size_t(id)] == 0) {
    if (!hashed_[size_t(id)]) fail("block pool: retain of free block {} that caches nothing", id);
    unlink(id);
  }
  ++ref_[size_t(id)];
}

void BlockPool::release(int32_t id) {
  check(id);
  if (ref_[size_t(id)] == 0) fail("block pool: release of free block {}", id);
  if (--ref_[size_t(id)] == 0) push_back(id);
}

uint64_t BlockPool::hash_block(uint64_t parent_hash, std::span<const int32_t> tokens) const {
  uint64_t h = fnv(kFnvOffset, seed_, 8);
  h = fnv(h, parent_hash, 8);
  h = fnv(h, uint64_t(tokens.size()), 4);
  for (int32_t t : tokens) h = fnv(h, uint32_t(t), 4);
  return mix64(h);
}

bool BlockPool::seal(int32_t id, uint64_t hash) {
  check(id);
  if (ref_[size_t(id)] == 0) fail("block pool: seal of free block {}", id);
  if (hashed_[size_t(id)]) {
    if (hash_[size_t(id)] != hash) fail("block pool: block {} is already sealed under another hash", id);
    return true;
  }
  if (!cached_.emplace(hash, id).second) return false;  // same content already cached elsewhere
  hash_[size_t(id)] = hash, hashed_[size_t(id)] = 1;
  return true;
}

std::optional<int32_t> BlockPool::lookup(uint64_t hash) {
  auto it = cached_.find(hash);
  if (it == cached_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  ++stats_.hits;
  retain(it->second);
  return it->second;
}

std::optional<uint64_t> BlockPool::hash_of(int32_t id) const {
  check(id);
  if (!hashed_[size_t(id)]) return std::nullopt;
  return hash_[size_t(id)];
}

std::optional<BlockPool::Writable> BlockPool::make_writable(int32_t id) {
  check(id);
  if (ref_[size_t(id)] == 0) fail("block pool: write to free block {}", id);
  if (ref_[size_t(id)] == 1) {
    drop_hash(id);
    return Writable{id, -1};
  }
  const auto fresh = allocate();
  if (!fresh) return std::nullopt;
  release(id);  // refcount stays >= 1: the other owners keep it
  return Writable{*fresh, id};
}

}  // namespace llmopt::kv
