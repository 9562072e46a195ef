// kv::BlockPool and kv::BlockTable: free-list LRU order, refcounts, prefix-cache hashing and lookup,
// copy-on-write, and a random-operation run checked against a naive model written here.
#include "lib/kv/block_pool.h"

#include <doctest/doctest.h>

#include <list>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include "lib/core/error.h"
#include "lib/kv/block_table.h"

using namespace llmopt;
using kv::BlockPool;
using kv::BlockTable;

namespace {

std::vector<int32_t> drain(BlockPool pool) {  // by value: the free list's order, front first
  std::vector<int32_t> order;
  while (auto b = pool.allocate()) order.push_back(*b);
  return order;
}

std::vector<int32_t> iota_tokens(int n, int32_t first = 100) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[size_t(i)] = first + i;
  return t;
}

// Chained hashes of the full blocks of `tokens`.
std::vector<uint64_t> chain(const BlockPool& pool, const std::vector<int32_t>& tokens) {
  std::vector<uint64_t> hs;
  uint64_t parent = BlockPool::kRootHash;
  const size_t bs = size_t(pool.block_size());
  for (size_t i = 0; i + bs <= tokens.size(); i += bs) {
    parent = pool.hash_block(parent, std::span(tokens).subspan(i, bs));
    hs.push_back(parent);
  }
  return hs;
}

// The obvious implementation: vectors, a std::list in LRU order, a std::map of hashes.
struct Model {
  std::vector<int> ref;
  std::vector<std::optional<uint64_t>> hash;
  std::list<int32_t> lru;
  std::map<uint64_t, int32_t> cached;

  explicit Model(int n) : ref(size_t(n)), hash(size_t(n)) {
    for (int32_t i = 0; i < n; ++i) lru.push_back(i);
  }
  void unhash(int32_t id) {
    if (hash[size_t(id)]) cached.erase(*hash[size_t(id)]), hash[size_t(id)].reset();
  }
  std::optional<int32_t> allocate() {
    if (lru.empty()) return std::nullopt;
    int32_t id = lru.front();
    lru.pop_front();
    unhash(id);
    ref[size_t(id)] = 1;
    return id;
  }
  bool can_retain(int32_t id) const { return ref[size_t(id)] > 0 || hash[size_t(id)]; }
  void retain(int32_t id) {
    if (ref[size_t(id)]++ == 0) lru.remove(id);
  }
  void release(int32_t id) {
    if (--ref[size_t(id)] == 0) lru.push_back(id);
  }
  bool seal(int32_t id, uint64_t h) {  // id in use, unhashed or hashed under h
    if (hash[size_t(id)]) return true;
    if (cached.count(h)) return false;
    cached[h] = id, hash[size_t(id)] = h;
    return true;
  }
  std::optional<int32_t> lookup(uint64_t h) {
    auto it = cached.find(h);
    if (it == cached.end()) return std::nullopt;
    retain(it->second);
    return it->second;
  }
  std::optional<BlockPool::Writable> make_writable(int32_t id) {
    if (ref[size_t(id)] == 1) {
      unhash(id);
      return BlockPool::Writable{id, -1};
    }
    auto fresh = allocate();
    if (!fresh) return std::nullopt;
    release(id);
    return BlockPool::Writable{*fresh, id};
  }
};

void check_same(const BlockPool& pool, const Model& m, const std::vector<uint64_t>& hashes) {
  REQUIRE(pool.num_free() == int32_t(m.lru.size()));
  for (int32_t id = 0; id < pool.num_blocks(); ++id) {
    REQUIRE(pool.ref_count(id) == m.ref[size_t(id)]);
    REQUIRE(pool.hash_of(id) == m.hash[size_t(id)]);
  }
  BlockPool probe = pool;  // lookups and allocations on a copy leave `pool` as it was
  for (uint64_t h : hashes) {
    auto it = m.cached.find(h);
    REQUIRE(probe.lookup(h) == (it == m.cached.end() ? std::nullopt : std::optional(it->second)));
  }
  REQUIRE(drain(pool) == std::vector<int32_t>(m.lru.begin(), m.lru.end()));
}

}  // namespace

TEST_CASE("free list hands out blocks least recently freed first and fails softly when empty") {
  BlockPool pool(4, 8);
  CHECK(pool.num_blocks() == 4);
  CHECK(pool.block_size() == 8);
  CHECK(drain(pool) == std::vector<int32_t>{0, 1, 2, 3});
  std::vector<int32_t> got;
  for (int i = 0; i < 4; ++i) got.push_back(*pool.allocate());
  CHECK(got == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(pool.num_free() == 0);
  CHECK_FALSE(pool.can_allocate(1));
  CHECK(pool.can_allocate(0));
  CHECK_FALSE(pool.allocate().has_value());
  pool.release(2), pool.release(0), pool.release(3);
  CHECK(pool.num_free() == 3);
  CHECK(pool.can_allocate(3));
  CHECK_FALSE(pool.can_allocate(4));
  CHECK(drain(pool) == std::vector<int32_t>{2, 0, 3});
  CHECK(*pool.allocate() == 2);
  CHECK(pool.ref_count(2) == 1);
  CHECK(pool.ref_count(0) == 0);
}

TEST_CASE("refcounts: a block is free only when every holder released it; misuse throws") {
  BlockPool pool(3, 4);
  const int32_t b = *pool.allocate();
  pool.retain(b);
  pool.retain(b);
  CHECK(pool.ref_count(b) == 3);
  pool.release(b), pool.release(b);
  CHECK(pool.num_free() == 2);
  pool.release(b);
  CHECK(pool.ref_count(b) == 0);
  CHECK(pool.num_free() == 3);
  CHECK_THROWS_AS(pool.release(b), Error);
  CHECK_THROWS_AS(pool.retain(b), Error);  // free and caches nothing: a stale id
  CHECK_THROWS_AS(pool.seal(b, 7), Error);
  CHECK_THROWS_AS(pool.make_writable(b), Error);
  CHECK_THROWS_AS(pool.ref_count(3), Error);
  CHECK_THROWS_AS(pool.release(-1), Error);
  CHECK_THROWS_AS(BlockPool(2, 0), Error);
  CHECK(pool.num_free() == 3);
}

TEST_CASE("seal, lookup and eviction of cached blocks") {
  BlockPool pool(3, 4);
  const int32_t a = *pool.allocate(), b = *pool.allocate();
  CHECK(pool.seal(a, 11));
  CHECK(pool.seal(a, 11));  // again under the same hash: no-op
  CHECK_THROWS_AS(pool.seal(a, 12), Error);
  CHECK_FALSE(pool.seal(b, 11));  // same content cached in a already
  CHECK_FALSE(pool.hash_of(b).has_value());
  CHECK(pool.hash_of(a) == std::optional<uint64_t>(11));
  CHECK(pool.lookup(11) == std::optional<int32_t>(a));
  CHECK(pool.ref_count(a) == 2);
  CHECK_FALSE(pool.lookup(12).has_value());

  pool.release(a), pool.release(a);  // free but cached, behind block 2
  CHECK(pool.num_free() == 2);
  CHECK(pool.lookup(11) == std::optional<int32_t>(a));  // revived: leaves the free list
  CHECK(pool.num_free() == 1);
  pool.release(a);
  pool.retain(a);  // a cached free block may be retained directly
  pool.release(a);
  CHECK(pool.stats().hits == 2);
  CHECK(pool.stats().misses == 1);

  CHECK(*pool.allocate() == 2);
  CHECK(pool.hash_of(a).has_value());
  CHECK(*pool.allocate() == a);  // reuse evicts
  CHECK_FALSE(pool.hash_of(a).has_value());
  CHECK_FALSE(pool.lookup(11).has_value());
  CHECK(pool.stats().evictions == 1);
  CHECK(pool.seal(b, 11));  // the hash is free to register again
}

TEST_CASE("make_writable: sole owner writes in place, a shared block is copied") {
  BlockPool pool(3, 4);
  const int32_t a = *pool.allocate();
  auto w = pool.make_writable(a);
  REQUIRE(w);
  CHECK(w->block == a);
  CHECK(w->copy_from == -1);

  pool.seal(a, 5);  // sole owner of a cached block: the hash goes, no copy
  w = pool.make_writable(a);
  CHECK(w->block == a);
  CHECK(w->copy_from == -1);
  CHECK_FALSE(pool.hash_of(a).has_value());
  CHECK_FALSE(pool.lookup(5).has_value());

  pool.seal(a, 5);
  pool.retain(a);  // shared: copy into a fresh block, our reference to a is released
  w = pool.make_writable(a);
  REQUIRE(w);
  CHECK(w->block == 1);
  CHECK(w->copy_from == a);
  CHECK(pool.ref_count(a) == 1);
  CHECK(pool.ref_count(1) == 1);
  CHECK(pool.hash_of(a) == std::optional<uint64_t>(5));  // the other holder's content is untouched

  const int32_t c = *pool.allocate();
  pool.retain(c);
  CHECK_FALSE(pool.make_writable(c).has_value());  // no room: nothing changed
  CHECK(pool.ref_count(c) == 2);
  CHECK(pool.num_free() == 0);
}

TEST_CASE("random operations agree with a naive model") {
  const int n = 10;
  std::vector<uint64_t> hashes;  // few distinct values so seals collide and lookups hit
  for (uint64_t h = 0; h < 14; ++h) hashes.push_back(h * 0x9e3779b97f4a7c15ull);
  for (uint32_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    BlockPool pool(n, 4);
    Model m(n);
    std::mt19937 rng(seed);
    auto pick = [&](int k) { return int(rng() % uint32_t(k)); };
    for (int step = 0; step < 3000; ++step) {
      CAPTURE(step);
      const int32_t id = pick(n);
      const uint64_t h = hashes[size_t(pick(int(hashes.size())))];
      switch (pick(6)) {
        case 0:
          REQUIRE(pool.allocate() == m.allocate());
          break;
        case 1:
          if (m.can_retain(id)) pool.retain(id), m.retain(id);
          else REQUIRE_THROWS_AS(pool.retain(id), Error);
          break;
        case 2:
        case 3:  // release twice as often as the rest, so the pool does not stay full
          if (m.ref[size_t(id)] > 0) pool.release(id), m.release(id);
          else REQUIRE_THROWS_AS(pool.release(id), Error);
          break;
        case 4:
          if (m.ref[size_t(id)] == 0 || (m.hash[size_t(id)] && *m.hash[size_t(id)] != h))
            REQUIRE_THROWS_AS(pool.seal(id, h), Error);
          else
            REQUIRE(pool.seal(id, h) == m.seal(id, h));
          break;
        default:
          if (pick(2)) {
            REQUIRE(pool.lookup(h) == m.lookup(h));
          } else if (m.ref[size_t(id)] == 0) {
            REQUIRE_THROWS_AS(pool.make_writable(id), Error);
          } else {
            auto got = pool.make_writable(id), want = m.make_writable(id);
            REQUIRE(got.has_value() == want.has_value());
            if (got) REQUIRE((got->block == want->block && got->copy_from == want->copy_from));
          }
      }
      check_same(pool, m, hashes);
    }
  }
}

TEST_CASE("hash_block is deterministic and depends on parent, tokens, their order and the seed") {
  BlockPool pool(1, 4), same(8, 4), seeded(1, 4, 1);
  const std::vector<int32_t> t{1, 2, 3, 4}, swapped{1, 3, 2, 4}, other{1, 2, 3, 5};
  const uint64_t h = pool.hash_block(BlockPool::kRootHash, t);
  CHECK(h == pool.hash_block(BlockPool::kRootHash, t));
  CHECK(h == same.hash_block(BlockPool::kRootHash, t));
  // Pinned (a Python transcription of the FNV-1a + splitmix steps agrees) so that a change to the
  // function, or reliance on std::hash, is noticed.
  CHECK(h == 0x95a0f5b70f484bdfull);
  CHECK(h != pool.hash_block(h, t));
  CHECK(h != pool.hash_block(BlockPool::kRootHash, swapped));
  CHECK(h != pool.hash_block(BlockPool::kRootHash, other));
  CHECK(h != pool.hash_block(BlockPool::kRootHash, std::span(t).first(3)));
  CHECK(h != seeded.hash_block(BlockPool::kRootHash, t));
  CHECK(pool.hash_block(BlockPool::kRootHash, std::vector<int32_t>{-1}) !=
        pool.hash_block(BlockPool::kRootHash, std::vector<int32_t>{0x7fffffff}));
}

TEST_CASE("chained hashes of two sequences agree exactly on their common full blocks") {
  BlockPool pool(1, 16);
  std::vector<int32_t> a = iota_tokens(70), b(a.begin(), a.begin() + 37);
  for (int i = 0; i < 40; ++i) b.push_back(9000 + i);  // diverges inside block 2
  const auto ha = chain(pool, a), hb = chain(pool, b);
  REQUIRE(ha.size() == 4);
  REQUIRE(hb.size() == 4);
  CHECK(ha[0] == hb[0]);
  CHECK(ha[1] == hb[1]);
  CHECK(ha[2] != hb[2]);
  CHECK(ha[3] != hb[3]);
  CHECK(ha[0] != ha[1]);
}

TEST_CASE("BlockTable: append hands out slots block by block, truncate gives blocks back") {
  BlockPool pool(8, 4);
  BlockTable t;
  std::vector<int64_t> slots;
  std::vector<kv::BlockCopy> copies;
  REQUIRE(t.append_slots(pool, 6, slots, copies));
  CHECK(slots == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(t.num_tokens() == 6);
  CHECK(t.size() == 2);
  pool.allocate();  // block 2 goes elsewhere: the table's next block is 3
  REQUIRE(t.append_slots(pool, 3, slots, copies));
  CHECK(slots == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 12});
  CHECK(copies.empty());
  CHECK(t.blocks() == std::vector<int32_t>{0, 1, 3});
  CHECK(t.slot(pool, 8) == 12);
  CHECK(t.slot(pool, 5) == 5);
  CHECK_THROWS_AS(t.slot(pool, 9), Error);
  CHECK(t.block(2) == 3);
  CHECK_THROWS_AS(t.block(3), Error);
  REQUIRE(t.append_slots(pool, 0, slots, copies));
  CHECK(slots.size() == 9);

  t.truncate(pool, 5);
  CHECK(t.size() == 2);
  CHECK(t.num_tokens() == 5);
  CHECK(pool.ref_count(3) == 0);
  CHECK_THROWS_AS(t.truncate(pool, 6), Error);
  slots.clear();
  REQUIRE(t.append_slots(pool, 1, slots, copies));
  CHECK(slots == std::vector<int64_t>{5});
  t.release(pool);
  CHECK(t.size() == 0);
  CHECK(t.num_tokens() == 0);
  CHECK(pool.num_free() == 7);
  CHECK(drain(pool) == std::vector<int32_t>{4, 5, 6, 7, 3, 1, 0});  // tail released first
}

TEST_CASE("BlockTable: fork shares blocks, the first writer of the shared partial block copies it") {
  BlockPool pool(8, 4);
  BlockTable parent;
  std::vector<int64_t> slots;
  std::vector<kv::BlockCopy> copies;
  REQUIRE(parent.append_slots(pool, 6, slots, copies));
  BlockTable child = parent.fork(pool);
  CHECK(child.blocks() == parent.blocks());
  CHECK(child.num_tokens() == 6);
  CHECK(pool.ref_count(0) == 2);
  CHECK(pool.ref_count(1) == 2);

  slots.clear();
  REQUIRE(child.append_slots(pool, 3, slots, copies));
  REQUIRE(copies.size() == 1);
  CHECK(copies[0].src == 1);
  CHECK(copies[0].dst == 2);
  CHECK(child.blocks() == std::vector<int32_t>{0, 2, 3});
  CHECK(slots == std::vector<int64_t>{2 * 4 + 2, 2 * 4 + 3, 3 * 4 + 0});
  CHECK(parent.blocks() == std::vector<int32_t>{0, 1});
  CHECK(pool.ref_count(0) == 2);  // full shared block: never copied
  CHECK(pool.ref_count(1) == 1);

  copies.clear(), slots.clear();
  REQUIRE(parent.append_slots(pool, 1, slots, copies));  // sole owner now: in place
  CHECK(copies.empty());
  CHECK(slots == std::vector<int64_t>{1 * 4 + 2});

  parent.release(pool);
  CHECK(pool.ref_count(0) == 1);
  child.release(pool);
  CHECK(pool.num_free() == 8);
}

TEST_CASE("BlockTable: a failed append leaves table and pool exactly as they were") {
  BlockPool pool(4, 4);
  BlockTable t;
  std::vector<int64_t> slots;
  std::vector<kv::BlockCopy> copies;
  REQUIRE(t.append_slots(pool, 6, slots, copies));
  const auto tokens = iota_tokens(4);
  t.seal_full_blocks(pool, tokens);
  BlockTable other;
  REQUIRE(other.append_slots(pool, 1, slots, copies));  // one block left free
  const int32_t spare = *pool.allocate();
  pool.release(spare);

  auto unchanged = [&](const std::vector<int32_t>& blocks, int64_t n) {
    CHECK(t.blocks() == blocks);
    CHECK(t.num_tokens() == n);
    CHECK(slots.size() == 7);
    CHECK(copies.empty());
    CHECK(drain(pool) == std::vector<int32_t>{spare});
    CHECK(pool.ref_count(0) == 1);
    CHECK(pool.ref_count(1) == 1);
  };
  CHECK_FALSE(t.append_slots(pool, 7, slots, copies));  // needs 2 blocks
  unchanged({0, 1}, 6);

  // Shared partial block: the copy needs the only free block and the new tail one more.
  BlockTable kid = t.fork(pool);
  CHECK_FALSE(kid.append_slots(pool, 3, slots, copies));
  CHECK(kid.blocks() == std::vector<int32_t>{0, 1});
  CHECK(pool.ref_count(1) == 2);
  kid.release(pool);
  unchanged({0, 1}, 6);

  // Truncated into a sealed block: a failed append must not drop its hash either.
  t.truncate(pool, 2);
  const auto h = pool.hash_of(0);
  REQUIRE(h);
  CHECK_FALSE(t.append_slots(pool, 11, slots, copies));  // 13 tokens need 4 blocks, 3 in hand
  CHECK(pool.hash_of(0) == h);
  CHECK(t.num_tokens() == 2);
  REQUIRE(t.append_slots(pool, 3, slots, copies));  // in place: the hash goes
  CHECK(copies.empty());
  CHECK_FALSE(pool.hash_of(0).has_value());
}

TEST_CASE("BlockTable: seal_full_blocks hashes each block once, chained like hash_block") {
  BlockPool pool(8, 4);
  const auto tokens = iota_tokens(11);
  BlockTable t;
  std::vector<int64_t> slots;
  std::vector<kv::BlockCopy> copies;
  for (size_t i = 1; i <= tokens.size(); ++i) {  // one decode step at a time
    REQUIRE(t.append_slots(pool, 1, slots, copies));
    t.seal_full_blocks(pool, std::span(tokens).first(i));
  }
  const auto want = chain(pool, tokens);
  REQUIRE(want.size() == 2);
  CHECK(pool.hash_of(t.block(0)) == want[0]);
  CHECK(pool.hash_of(t.block(1)) == want[1]);
  CHECK_FALSE(pool.hash_of(t.block(2)).has_value());
  CHECK_THROWS_AS(t.seal_full_blocks(pool, iota_tokens(12)), Error);  // more tokens than held

  // Rolled back into block 1 and rewritten with other tokens: block 1 is hashed again, by its new content.
  t.truncate(pool, 6);
  auto redo = std::vector<int32_t>(tokens.begin(), tokens.begin() + 6);
  for (int32_t x : {-1, -2, -3}) redo.push_back(x);
  REQUIRE(t.append_slots(pool, 3, slots, copies));
  CHECK(copies.empty());
  t.seal_full_blocks(pool, redo);
  const auto redone = chain(pool, redo);
  CHECK(pool.hash_of(t.block(0)) == want[0]);
  CHECK(pool.hash_of(t.block(1)) == redone[1]);
  CHECK(redone[1] != want[1]);
}

TEST_CASE("BlockTable: adopt_prefix reuses cached blocks, never the last token's, until evicted") {
  BlockPool pool(10, 4);
  const auto prompt = iota_tokens(12);  // exactly three full blocks
  std::vector<int64_t> slots;
  std::vector<kv::BlockCopy> copies;
  BlockTable a;
  REQUIRE(a.append_slots(pool, 12, slots, copies));
  a.seal_full_blocks(pool, prompt);

  BlockTable b;
  CHECK(b.adopt_prefix(pool, prompt) == 8);  // block 2 holds the last token: computed fresh
  CHECK(b.blocks() == std::vector<int32_t>{0, 1});
  CHECK(b.num_tokens() == 8);
  CHECK(pool.ref_count(0) == 2);
  CHECK(pool.ref_count(2) == 1);
  CHECK_THROWS_AS(b.adopt_prefix(pool, prompt), Error);  // not empty
  slots.clear();
  REQUIRE(b.append_slots(pool, 4, slots, copies));
  CHECK(copies.empty());
  CHECK(b.block(2) == 3);
  b.release(pool);

  auto longer = prompt;
  longer.push_back(7);
  BlockTable c;
  CHECK(c.adopt_prefix(pool, longer) == 12);
  CHECK(c.blocks() == std::vector<int32_t>{0, 1, 2});
  c.release(pool);
  BlockTable d;
  CHECK(d.adopt_prefix(pool, std::span(prompt).first(1)) == 0);
  CHECK(d.adopt_prefix(pool, {}) == 0);
  auto diverged = longer;
  diverged[5] = -5;
  CHECK(d.adopt_prefix(pool, diverged) == 4);  // the chain breaks at block 1
  d.release(pool);

  a.release(pool);  // all free, prefix still cached; free list: 4..9, 3, 2, 1, 0
  CHECK(pool.num_free() == 10);
  BlockTable e;
  CHECK(e.adopt_prefix(pool, longer) == 12);
  CHECK(e.blocks() == std::vector<int32_t>{0, 1, 2});
  e.release(pool);  // free list: 4..9, 3, 2, 1, 0

  std::vector<int32_t> held;
  for (int i = 0; i < 8; ++i) held.push_back(*pool.allocate());  // 4..9 and 3 and 2: block 2 evicted
  CHECK(held.back() == 2);
  CHECK(e.adopt_prefix(pool, longer) == 8);
  e.release(pool);  // free list: 1, 0
  held.push_back(*pool.allocate());  // evicts 1
  CHECK(e.adopt_prefix(pool, longer) == 4);
  e.release(pool);
  held.push_back(*pool.allocate());  // evicts 0
  CHECK(e.adopt_prefix(pool, longer) == 0);
  CHECK(pool.num_free() == 0);
  for (int32_t id : held) pool.release(id);
  CHECK(pool.num_free() == 10);
}

TEST_CASE("prefix hits agree with a brute-force longest common prefix over random request sets") {
  std::mt19937 g(2024);
  for (int round = 0; round < 40; ++round) {
    const int32_t bs = 1 + int32_t(g() % 6);
    BlockPool pool(4000, bs, g());
    std::vector<std::vector<int32_t>> seen;  // every sequence sealed so far (the pool never evicts here)
    std::vector<BlockTable> held;
    for (int r = 0; r < 30; ++r) {
      // a random earlier request's prefix, then random tokens from a tiny alphabet: long shared runs
      std::vector<int32_t> t;
      if (!seen.empty() && g() % 4 != 0) {
        const auto& base = seen[g() % seen.size()];
        t.assign(base.begin(), base.begin() + int64_t(g() % (base.size() + 1)));
      }
      const size_t extra = g() % 20;
      for (size_t i = 0; i < extra; ++i) t.push_back(int32_t(g() % 3));
      if (t.empty()) t.push_back(0);
      // brute force: the longest common prefix with any earlier sequence, in whole blocks, never the last token
      size_t best = 0;
      for (const auto& s : seen) {
        size_t l = 0;
        while (l < s.size() && l < t.size() && s[l] == t[l]) ++l;
        best = std::max(best, l);
      }
      const size_t cap = (t.size() - 1) / size_t(bs) * size_t(bs);
      const int64_t want = int64_t(std::min(best / size_t(bs) * size_t(bs), cap));
      BlockTable tab;
      CAPTURE(round);
      CAPTURE(r);
      REQUIRE(tab.adopt_prefix(pool, t) == want);
      std::vector<int64_t> slots;
      std::vector<kv::BlockCopy> copies;
      REQUIRE(tab.append_slots(pool, int64_t(t.size()) - want, slots, copies));
      tab.seal_full_blocks(pool, t);
      seen.push_back(t);
      if (g() % 2) tab.release(pool);  // released blocks stay cached: the pool is large enough
      else held.push_back(std::move(tab));
    }
    for (auto& h : held) h.release(pool);
    CHECK(pool.num_free() == pool.num_blocks());
    CHECK(pool.stats().evictions == 0);
  }
}
