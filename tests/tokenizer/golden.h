#pragma once
// Shared by the tokenizer tests: the five tokenizers and the golden files of scripts/golden/tokenizer_golden.py.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/fsutil.h"
#include "support/test_paths.h"

namespace llmopt::test::tokgold {

struct Named { const char* name; const char* dir; };
inline const std::vector<Named>& tokenizers() {
  static const std::vector<Named> t = {
      {"stories260K", "models/stories260K"},
      {"llama2-tokenizer-32k", "models/llama2-tokenizer-32k"},
      {"llama3", "models/tokenizers/llama3"},
      {"qwen3", "models/tokenizers/qwen3"},
      {"deepseek-v3", "models/tokenizers/deepseek-v3"},
  };
  return t;
}

inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xCBF29CE484222325ull) {
  auto p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}
inline uint64_t hash_ids(std::span<const int32_t> ids) { return fnv1a(ids.data(), ids.size() * 4); }  // little-endian host

// The file split on "\n" (no trailing empty line), as the golden script and `llmopt tokenize`.
inline std::vector<std::string> read_lines(const std::filesystem::path& p) {
  std::string text = llmopt::read_file(p);
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

struct Record { uint32_t count; bool roundtrip; uint64_t ids_hash, decode_hash; };
inline std::vector<Record> read_records(const std::filesystem::path& p) {
  std::string b = llmopt::read_file(p);
  std::vector<Record> r;
  for (size_t at = 0; at + 12 <= b.size();) {
    uint32_t c;
    Record x{};
    std::memcpy(&c, b.data() + at, 4);
    std::memcpy(&x.ids_hash, b.data() + at + 4, 8);
    at += 12;
    x.count = c & 0x7FFFFFFFu;
    x.roundtrip = !(c >> 31);
    if (!x.roundtrip) std::memcpy(&x.decode_hash, b.data() + at, 8), at += 8;
    r.push_back(x);
  }
  return r;
}

}  // namespace llmopt::test::tokgold
