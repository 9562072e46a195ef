// BPE model: merges applied per word in rank order with a priority queue (O(n log n)), as HF's
// Word::merge_all; byte_fallback, unk fusing and ignore_merges as in HF's BPE::merge_word/tokenize.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "lib/tokenizer/internal.h"

namespace llmopt::tok::detail {

static uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }
static uint64_t mix(uint64_t k) { return (k ^ (k >> 29)) * 0x9E3779B97F4A7C15ull; }

void MergeMap::build(size_t n) {
  size_t cap = 16;
  while (cap < n + n / 2) cap *= 2;  // load factor <= 2/3
  slots.assign(cap, Slot{~0ull, 0, 0});
  mask = cap - 1;
}

void MergeMap::put(int32_t a, int32_t b, int32_t rank, int32_t id) {
  uint64_t k = pair_key(a, b);
  for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
    if (slots[i].key == ~0ull || slots[i].key == k) {  // a repeated pair keeps the later rank, as HF's HashMap
      slots[i] = {k, rank, id};
      return;
    }
  }
}

const MergeMap::Slot* MergeMap::get(int32_t a, int32_t b) const {
  uint64_t k = pair_key(a, b);
  for (uint64_t i = mix(k) & mask;; i = (i + 1) & mask) {
    if (slots[i].key == k) return &slots[i];
    if (slots[i].key == ~0ull) return nullptr;
  }
}

static uint32_t hash_bytes(std::string_view s) {  // FNV-1a
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

void StrMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n + n / 2) cap *= 2;  // load factor <= 2/3
  slots.assign(cap, Slot{0, 0, -1, 0});
  mask = cap - 1;
}

void StrMap::insert(std::string_view key, int32_t id) {
  if (3 * (count + 1) > 2 * slots.size()) {  // grow
    std::vector<Slot> old = std::move(slots);
    reserve(std::max<size_t>(16, 2 * (count + 1)));
    for (const Slot& o : old)
      if (o.id >= 0)
        for (uint64_t i = o.hash & mask;; i = (i + 1) & mask)
          if (slots[i].id < 0) { slots[i] = o; break; }
  }
  uint32_t h = hash_bytes(key);
  for (uint64_t i = h & mask;; i = (i + 1) & mask) {
    Slot& s = slots[i];
    if (s.id < 0) {
      s = {uint32_t(arena.size()), uint32_t(key.size()), id, h};
      arena.append(key);
      count++;
      return;
    }
    if (s.hash == h && std::string_view(arena).substr(s.off, s.len) == key) return;
  }
}

int32_t StrMap::find(std::string_view key) const {
  if (slots.empty()) return -1;
  uint32_t h = hash_bytes(key);
  for (uint64_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots[i];
    if (s.id < 0) return -1;
    if (s.hash == h && s.len == key.size() && std::memcmp(arena.data() + s.off, key.data(), key.size()) == 0) return s.id;
  }
}

void Bpe::load(const json& m, const std::string& what, std::vector<std::pair<std::string, int32_t>>& vocab_in,
               std::vector<std::pair<std::string, std::string>>& merges_in, bool bytes) {
  static std::atomic<uint64_t> next_serial{1};
  serial = next_serial++;
  const JsonObject f(m, what);
  const std::string type = f.string_or("type", "BPE");
  if (type != "BPE") fail("{}: model type \"{}\" is not supported (BPE)", what, type);
  if (f.number_or("dropout", 0.0) != 0.0) fail("{}: BPE dropout is not supported", what);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!f.string_or(key, "").empty()) fail("{}: BPE {} is not supported", what, key);
  byte_level = bytes;
  byte_fallback = f.boolean_or("byte_fallback", false);
  fuse_unk = f.boolean_or("fuse_unk", false);
  ignore_merges = f.boolean_or("ignore_merges", false);

  // Keys in word space: byte-level tokens are mapped back to the bytes they stand for.
  std::string tmp;
  auto word_space = [&](std::string_view piece) -> std::string_view {
    if (!byte_level) return piece;
    tmp.clear();
    return chars_to_bytes(piece, tmp) ? std::string_view(tmp) : piece;
  };
  vocab.reserve(vocab_in.size());
  vocab.arena.reserve(vocab_in.size() * 8);
  // ids are dense in real tokenizers; allow gaps, but not an id that would allocate far beyond the vocab
  const int64_t max_id = int64_t(vocab_in.size()) + 65536;
  for (auto& [piece, id] : vocab_in) {
    if (id < 0 || id >= max_id)
      fail("{}: vocab id {} of \"{}\" is outside 0..{} ({} entries)", what, id, piece, max_id - 1, vocab_in.size());
    if (size_t(id) >= pieces.size()) pieces.resize(size_t(id) + 1);
    vocab.insert(word_space(piece), id);
    pieces[id] = std::move(piece);
  }
  auto find = [&](std::string_view key) { return vocab.find(key); };
  if (f.has("unk_token")) unk_id = find(f.string("unk_token"));
  for (int b = 0; b < 256; b++) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    byte_id[b] = byte_level ? find(std::string(1, char(b))) : byte_fallback ? find(hex) : -1;
  }
  for (int c = 0; c < 128; c++) ascii_id[c] = find(std::string(1, char(c)));

  merges.build(merges_in.size());
  std::string ab;
  for (size_t r = 0; r < merges_in.size(); r++) {
    const auto& [a, b] = merges_in[r];
    ab.assign(word_space(a));
    int32_t ia = find(ab);
    size_t split = ab.size();
    ab += word_space(b);
    int32_t ib = find(std::string_view(ab).substr(split)), in = find(ab);
    if (ia < 0 || ib < 0 || in < 0) fail("{}: merge {} \"{} {}\" uses a token not in vocab", what, r, a, b);
    merges.put(ia, ib, int32_t(r), in);
  }
}

void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Sym { int32_t id, prev, next; };
  struct Cand { int32_t rank, pos, id; };
  thread_local std::vector<Sym> sym;
  thread_local std::vector<Cand> heap;
  sym.clear();
  heap.clear();
  auto add = [&](int32_t id) { sym.push_back({id, int32_t(sym.size()) - 1, int32_t(sym.size()) + 1}); };

  if (byte_level) {
    for (unsigned char c : word)
      if (byte_id[c] >= 0) add(byte_id[c]);  // (a byte missing from the vocab with no unk is dropped, as HF)
  } else {
    int32_t unk_len = 0;  // pending (fused) unknown, as HF's merge_word
    for (size_t i = 0; i < word.size();) {
      unsigned char c = word[i];
      size_t n = std::min<size_t>(utf8_char_len(c), word.size() - i);
      int32_t id = -1;
      if (n == 1 && c < 128) id = ascii_id[c];
      else id = vocab.find(word.substr(i, n));
      if (id >= 0) {
        if (unk_len) add(unk_id), unk_len = 0;
        add(id);
      } else {
        bool all = byte_fallback;
        for (size_t k = 0; k < n && all; k++) all = byte_id[(unsigned char)word[i + k]] >= 0;
        if (all) {
          for (size_t k = 0; k < n; k++) add(byte_id[(unsigned char)word[i + k]]);
        } else if (unk_id >= 0) {
          if (unk_len && !fuse_unk) add(unk_id);
          unk_len = 1;
        }
      }
      i += n;
    }
    if (unk_len) add(unk_id);
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  auto cmp = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos; };
  auto push = [&](int32_t pos) {
    int32_t nx = sym[pos].next;
    if (nx < 0) return;
    if (auto* m = merges.get(sym[pos].id, sym[nx].id)) {
      heap.push_back({m->rank, pos, m->id});
      std::push_heap(heap.begin(), heap.end(), cmp);
    }
  };
  for (int32_t i = 0; i + 1 < int32_t(sym.size()); i++) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    Cand top = heap.back();
    heap.pop_back();
    Sym& left = sym[top.pos];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or last symbol
    Sym& right = sym[left.next];
    auto* m = merges.get(left.id, right.id);
    if (!m || m->id != top.id) continue;  // stale entry
    left.id = top.id;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges)
    if (int32_t id = vocab.find(word); id >= 0) return out.push_back(id);
  if (word.size() > 256) return merge_word(word, out);
  // Per-thread cache of merged words; a few slots so that several tokenizers can be used in turn.
  struct Cache { uint64_t serial = 0; std::unordered_map<std::string, std::vector<int32_t>, StrHash, std::equal_to<>> map; };
  thread_local std::array<Cache, 4> caches;
  Cache* c = nullptr;
  for (auto& k : caches) if (k.serial == serial) c = &k;
  if (!c) {
    c = &caches[serial % caches.size()];
    c->serial = serial;
    c->map.clear();
  }
  if (auto it = c->map.find(word); it != c->map.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  size_t mark = out.size();
  merge_word(word, out);
  if (c->map.size() > 100000) c->map.clear();
  c->map.emplace(std::string(word), std::vector<int32_t>(out.begin() + mark, out.end()));
}

}  // namespace llmopt::tok::detail
