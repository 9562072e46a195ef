// Tokenizers: a fuzzed tokenizer.json loaded and used; fuzzed text through the real tokenizers; fuzzed id
// lines (`llmopt detokenize` input) parsed and decoded.
#include <array>
#include <memory>
#include <string_view>

#include "fuzz/targets/targets.h"
#include "lib/core/error.h"
#include "lib/tokenizer/ids.h"
#include "lib/tokenizer/tokenizer.h"

namespace llmopt::fuzz {
namespace fs = std::filesystem;

namespace {

// Encodes and decodes with every flag combination; every id must be inside the vocabulary.
void exercise(const tok::Tokenizer& t, std::string_view text, unsigned flags) {
  const bool add_special = flags & 1, parse_special = flags & 2, skip_special = flags & 4;
  const auto ids = t.encode(text, add_special, parse_special);
  for (int32_t id : ids)
    if (id < 0 || id >= t.vocab_size()) std::abort();
  volatile size_t sink = t.decode(ids, skip_special).size() + t.id_to_piece(ids.empty() ? 0 : ids[0]).size();
  (void)sink;
}

// Valid UTF-8 (no surrogates, no overlongs): what a byte-level tokenizer without normalizer round-trips.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = uint8_t(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0 || i + size_t(n) >= s.size()) return false;
    uint32_t cp = n == 0 ? c : n == 1 ? c & 0x1f : n == 2 ? c & 0x0f : c & 0x07;
    for (int k = 1; k <= n; ++k) {
      const auto d = uint8_t(s[i + size_t(k)]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += size_t(n) + 1;
  }
  return true;
}

// The real tokenizers of ../shared, loaded once: SentencePiece-style BPE (byte fallback) and byte-level BPE.
struct Real {
  const char* name;
  std::unique_ptr<tok::Tokenizer> t;
};
std::array<Real, 5>& real() {
  static std::array<Real, 5> r = [] {
    std::array<Real, 5> a{{{"models/stories260K", nullptr},
                           {"models/llama2-tokenizer-32k", nullptr},
                           {"models/tokenizers/llama3", nullptr},
                           {"models/tokenizers/qwen3", nullptr},
                           {"models/tokenizers/deepseek-v3", nullptr}}};
    for (auto& x : a) x.t = std::make_unique<tok::Tokenizer>(tok::Tokenizer::load(shared_dir() / x.name));
    return a;
  }();
  return r;
}

}  // namespace

void warm_up() { real(); }

int tokenizer_json(const uint8_t* data, size_t size) {
  const fs::path dir = scratch() / "tokenizer";
  fs::create_directories(dir);
  put(dir / "tokenizer.json", data, size);
  try {
    const auto t = tok::Tokenizer::load(dir);
    for (std::string_view s : {"Once upon a time, there was a little girl.", " Hello  world\n", "日本語 😀 é",
                               "<s>hi</s> <unk>", "<|begin_of_text|>x<|im_end|>", "\xff\xfe broken"})
      for (unsigned f = 0; f < 8; ++f) exercise(t, s, f);
    volatile int64_t sink = t.bos_id() + t.eos_id() + t.add_bos() + t.piece_to_id("a");
    for (int32_t id = 0; id < t.vocab_size() && id < 512; ++id) sink = sink + t.is_special(id) + int64_t(t.id_to_piece(id).size());
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}

// First byte: the tokenizer (low 3 bits) and the flags; the rest is the text.
int encode(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Real& r = real()[data[0] % 5];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  exercise(*r.t, text, unsigned(data[0] >> 3));
  // llama3 is byte-level BPE without a normalizer: decoding gives back exactly the (valid UTF-8) text
  if (std::string_view(r.name) == "models/tokenizers/llama3" && valid_utf8(text) &&
      r.t->decode(r.t->encode(text, false, (data[0] >> 4) & 1), false) != text)
    std::abort();
  return 0;
}

// First byte: the tokenizer and --skip-special; the rest is detokenize's stdin, split into lines as it does.
int detokenize(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const tok::Tokenizer& t = *real()[data[0] % 5].t;
  const bool skip_special = (data[0] >> 3) & 1;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t line = 0;
  for (size_t pos = 0; pos < in.size(); ++line) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) nl = in.size();
    try {
      const auto ids = tok::parse_id_line(in.substr(pos, nl - pos), "line " + std::to_string(line + 1), t.vocab_size());
      volatile size_t sink = t.decode(ids, skip_special).size();
      (void)sink;
    } catch (const Error&) {
    }
    pos = nl + 1;
  }
  return 0;
}

}  // namespace llmopt::fuzz
