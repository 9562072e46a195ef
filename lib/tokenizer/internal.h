#pragma once
// Pieces of the tokenizer pipeline, shared by the files of lib/tokenizer (not a public API).
#include <nlohmann/json.hpp>

#include "lib/core/error.h"
#include "lib/core/json.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/tokenizer/tokenizer.h"

namespace llmopt::tok::detail {

using json = nlohmann::json;

// ---- UTF-8 ------------------------------------------------------------------------------------
// Length of the valid UTF-8 sequence at s[i] (0 if invalid), as Rust's str validation decides.
int utf8_valid_len(std::string_view s, size_t i);
int utf8_char_len(unsigned char lead);                // length from the lead byte alone (1 for stray bytes)
bool utf8_valid(std::string_view s);
std::string utf8_lossy(std::string_view s);           // Rust String::from_utf8_lossy
void utf8_append(std::string& out, uint32_t cp);
uint32_t utf8_decode(std::string_view s, size_t& i);  // s must be valid UTF-8; advances i
bool is_white_space(uint32_t cp);                     // Rust char::is_whitespace (Unicode White_Space)

// ---- GPT-2 byte-level alphabet: every byte is shown as one printable char ------------------------
const std::array<std::string, 256>& byte_to_char();
// Maps each char of `piece` back to its byte; false (out untouched) if some char is not in the alphabet.
bool chars_to_bytes(std::string_view piece, std::string& out);

// ---- normalizer -------------------------------------------------------------------------------
struct Regex;  // PCRE2 code, JIT-compiled (pretokenize.cpp)
struct NormStep {
  enum Kind { Prepend, Replace, ReplaceRegex, NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Bert } kind = NFC;
  std::string a, b;            // Prepend: a; Replace, ReplaceRegex: a (the pattern) → b
  std::shared_ptr<Regex> re;   // ReplaceRegex
  bool left = false, right = false;  // Strip: which ends
  // Bert: clean_text, handle_chinese_chars, strip_accents, lowercase
  bool clean = false, chinese = false, accents = false, lower = false;
};
struct Normalizer {
  std::vector<NormStep> steps;
  bool empty() const { return steps.empty(); }
  void apply(std::string& s) const;
};
// The parse_* functions read one section of tokenizer.json (null: none); `what` names it in errors
// ("/m/tokenizer.json: normalizer"), which are llmopt::Error for malformed or unsupported sections.
Normalizer parse_normalizer(const json& j, const std::string& what);

// ---- pre-tokenizer ----------------------------------------------------------------------------
std::shared_ptr<Regex> make_regex(const std::string& pattern, bool literal);  // Error on a bad pattern
struct Segment { size_t begin, end; bool match; };
// All matches of re in s with the gaps between them, in order (as HF's Pattern::find_matches).
void find_matches(const Regex& re, std::string_view s, std::vector<Segment>& segs);

struct PreStep {
  // Split: regex split with a behavior. Prefix: ByteLevel's add_prefix_space (prepend `text` unless the piece
  // starts with it). Metaspace: ' ' → `text`, prepend `text` (always, or only at the start of the input),
  // then (if `meta_split`) split before each `text`.
  enum Kind { Split, Prefix, Metaspace } kind = Split;
  std::shared_ptr<Regex> re;
  enum Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous } behavior = Isolated;
  bool invert = false;
  std::string text;
  enum Prepend { Always, First, Never } prepend = Always;
  bool meta_split = true;
};
struct PreTokenizer {
  std::vector<PreStep> steps;
  bool byte_level = false;  // a ByteLevel step: the model works on raw bytes
  // Splits s into words, appended to `words`: views into s, or into per-thread storage that lives until
  // the next split() on this thread. at_start: s begins at offset 0 of the input (Metaspace "first").
  void split(std::string_view s, bool at_start, std::vector<std::string_view>& words) const;
};
PreTokenizer parse_pre_tokenizer(const json& j, const std::string& what);

// ---- BPE model --------------------------------------------------------------------------------
// Open-addressing map (left id, right id) → (rank, merged id).
struct MergeMap {
  struct Slot { uint64_t key; int32_t rank, id; };
  std::vector<Slot> slots;
  uint64_t mask = 0;
  void build(size_t n);
  void put(int32_t a, int32_t b, int32_t rank, int32_t id);
  const Slot* get(int32_t a, int32_t b) const;
};

struct StrHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
// Open-addressing map from byte strings to ids; the keys live in one arena (fast to build and probe).
struct StrMap {
  struct Slot { uint32_t off, len; int32_t id; uint32_t hash; };
  std::string arena;
  std::vector<Slot> slots;
  uint64_t mask = 0;
  size_t count = 0;
  void reserve(size_t n);
  void insert(std::string_view key, int32_t id);  // the first id for a key is kept
  int32_t find(std::string_view key) const;       // -1 if absent
};

struct Bpe {
  bool byte_level = false;           // words are raw bytes; `vocab` keys were mapped back to bytes
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  int32_t unk_id = -1;
  StrMap vocab;                      // in word space (raw bytes for byte-level)
  std::vector<std::string> pieces;   // id → token as written in tokenizer.json
  std::array<int32_t, 256> byte_id;  // byte-level: single byte; byte_fallback: <0xXX>; else -1
  std::array<int32_t, 128> ascii_id; // id of a one-ASCII-char token (-1 if none)
  MergeMap merges;
  uint64_t serial = 0;               // identifies this model's per-thread word cache

  // `model` is tokenizer.json's "model" without vocab and merges, which come pre-extracted (see load()).
  // `what` names "model" in errors.
  void load(const json& model, const std::string& what, std::vector<std::pair<std::string, int32_t>>& vocab,
            std::vector<std::pair<std::string, std::string>>& merges, bool byte_level);
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;  // cached
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;   // uncached
};

// ---- decoder ----------------------------------------------------------------------------------
struct DecStep {
  enum Kind { Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace } kind;
  std::string a, b;        // Replace: a → b; Strip: a = the char; Metaspace: a = the replacement, b = "first"
                           // if the first token's replacements are dropped (prepend_scheme not "never")
  int start = 0, stop = 0; // Strip
};
struct Decoder {
  std::vector<DecStep> steps;
  bool present = false;
  std::string run(std::vector<std::string> tokens) const;
};
Decoder parse_decoder(const json& j, const std::string& what);

// ---- what a Tokenizer is built from -----------------------------------------------------------
// tokenizer.json (read from a file, or made from GGUF metadata) and tokenizer_config.json.
struct TokenizerSpec {
  json tok = json::object();  // tokenizer.json without model.vocab and model.merges
  std::vector<std::pair<std::string, int32_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  json config = json::object();  // tokenizer_config.json
  std::string where, config_where;  // their names in messages
};
// The tokenizer.json / tokenizer_config.json equivalent of a GGUF file's tokenizer.ggml.* metadata
// (gguf_vocab.cpp); Error naming the file and key for an unknown tokenizer model or pre-tokenizer type.
TokenizerSpec spec_from_gguf(const gguf::File& f);

}  // namespace llmopt::tok::detail
