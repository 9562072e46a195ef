// A GGUF file's tokenizer (tokenizer.ggml.*) as the tokenizer.json + tokenizer_config.json that gives llama.cpp's
// ids (llama-vocab.cpp), so that Tokenizer::from_gguf and the HF files write_hf_tokenizer writes are one thing:
//   gpt2:  byte-level BPE; the merges as stored; each regex of llama.cpp's pre type is one Split (Isolated),
//          applied in turn to the pieces of the previous one, then ByteLevel without its own regex.
//   llama: SentencePiece BPE. llama.cpp merges, anywhere in the text, the adjacent pair whose concatenation is
//          the highest-scoring token; as BPE merges that is every split of a token into two tokens, ranked by
//          the token's score. Spaces become "▁", a "▁" is prepended to each text piece (after special tokens
//          too, as llama.cpp does), unknown characters fall back to <0xXX> byte tokens.
// Control (3), unknown (2) and user-defined (4) tokens are added tokens, matched in the raw text; control and
// unknown ones are special (not matched with parse_special=false), user-defined ones always, as in llama.cpp.
#include <algorithm>
#include <map>
#include <unordered_set>

#include "formats/gguf_read.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"
#include "lib/tokenizer/internal.h"

namespace llmopt::tok::detail {

namespace {

enum TokType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

const char* kSpace = "\xE2\x96\x81";  // ▁

struct PreType { std::vector<const char*> names; std::vector<const char*> regexes; bool ignore_merges, add_bos; };

// llama.cpp's pre-tokenizer types (llm_tokenizer_bpe): the names that select each, its regexes in order.
const std::vector<PreType>& pre_types() {
  static const char* gpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
  static const std::vector<PreType> t = {
      {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", gpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, false, false},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"},
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       true, true},
      {{"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"},
       {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       false, false},
      {{"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"}, {R"(\p{N})", gpt2}, false, false},
      {{"gpt-2", "phi-2", "mpt", "olmo", "jais", "roberta-bpe"}, {gpt2}, false, false},
      {{"deepseek-v3"},
       {R"(\p{N}{1,3})", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
        R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       false, false},
      {{"deepseek-coder"}, {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", R"(\p{N})"},
       false, false},
  };
  return t;
}

std::string known_pre_types() {
  std::string s;
  for (const auto& p : pre_types())
    for (const char* n : p.names) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

json split_regex(const char* re) {
  return {{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}};
}

// Every split of a non-special token into two vocab tokens, best-scoring token first (SentencePiece BPE).
std::vector<std::pair<std::string, std::string>> spm_merges(const std::vector<std::string>& tokens,
                                                            const std::vector<int64_t>& types,
                                                            const std::vector<double>& scores) {
  std::unordered_map<std::string_view, int32_t> id;
  for (int32_t i = 0; i < int32_t(tokens.size()); i++) id.emplace(tokens[i], i);
  struct M { double score; int32_t token; size_t at; };
  std::vector<M> ms;
  for (int32_t t = 0; t < int32_t(tokens.size()); t++) {
    if (types[t] == kControl || types[t] == kUnknown || types[t] == kByte) continue;
    std::string_view s = tokens[t];
    for (size_t at = utf8_char_len((unsigned char)s[0]); at < s.size(); at += utf8_char_len((unsigned char)s[at]))
      if (id.count(s.substr(0, at)) && id.count(s.substr(at))) ms.push_back({scores[t], t, at});
  }
  std::stable_sort(ms.begin(), ms.end(), [](const M& a, const M& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(ms.size());
  for (const M& m : ms) out.emplace_back(tokens[m.token].substr(0, m.at), tokens[m.token].substr(m.at));
  return out;
}

// TemplateProcessing adding BOS / EOS around each sequence, or null when neither is added.
json post_processor(const std::vector<std::string>& tokens, int64_t bos, bool add_bos, int64_t eos, bool add_eos) {
  if (!add_bos && !add_eos) return nullptr;
  json specials = json::object();
  auto seq = [&](const char* which, int type_id) {
    json items = json::array();
    auto special = [&](int64_t id) {
      const std::string& piece = tokens[size_t(id)];
      specials[piece] = {{"id", piece}, {"ids", {id}}, {"tokens", {piece}}};
      items.push_back({{"SpecialToken", {{"id", piece}, {"type_id", type_id}}}});
    };
    if (add_bos) special(bos);
    items.push_back({{"Sequence", {{"id", which}, {"type_id", type_id}}}});
    if (add_eos) special(eos);
    return items;
  };
  json single = seq("A", 0), pair = seq("A", 0), b = seq("B", 1);
  pair.insert(pair.end(), b.begin(), b.end());
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

}  // namespace

TokenizerSpec spec_from_gguf(const gguf::File& f) {
  TokenizerSpec spec;
  const std::string where = f.path().string();
  spec.where = where + ": tokenizer.ggml.*";
  spec.config_where = where + ": tokenizer.ggml.* (as tokenizer_config.json)";
  const std::string model = f.string("tokenizer.ggml.model");
  const std::vector<std::string> tokens = f.strings("tokenizer.ggml.tokens");
  std::vector<int64_t> types = f.has("tokenizer.ggml.token_type") ? f.integers("tokenizer.ggml.token_type")
                                                                   : std::vector<int64_t>(tokens.size(), kNormal);
  if (tokens.empty()) fail("{}: tokenizer.ggml.tokens is empty", where);
  if (types.size() != tokens.size())
    fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", where, types.size(), tokens.size());
  auto special_id = [&](const char* key) {
    int64_t id = f.integer_or(std::string("tokenizer.ggml.") + key, -1);
    if (id >= int64_t(tokens.size())) fail("{}: tokenizer.ggml.{} {} is outside the {} tokens", where, key, id, tokens.size());
    return id;
  };
  const int64_t bos = special_id("bos_token_id"), eos = special_id("eos_token_id"), unk = special_id("unknown_token_id"),
                pad = special_id("padding_token_id");

  json& tok = spec.tok;
  json m = {{"type", "BPE"}, {"dropout", nullptr}, {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}};
  bool add_bos = false;
  if (model == "gpt2") {
    const std::string pre = f.string_or("tokenizer.ggml.pre", "default");
    const PreType* p = nullptr;
    for (const auto& t : pre_types())
      if (std::find_if(t.names.begin(), t.names.end(), [&](const char* n) { return pre == n; }) != t.names.end()) p = &t;
    if (!p) fail("{}: tokenizer.ggml.pre \"{}\" is not supported (known: {})", where, pre, known_pre_types());
    json steps = json::array();
    for (const char* re : p->regexes) steps.push_back(split_regex(re));
    steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}});
    tok["normalizer"] = nullptr;
    tok["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", steps}};
    tok["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
    m.update({{"unk_token", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", p->ignore_merges}});
    for (const std::string& s : f.strings("tokenizer.ggml.merges")) {
      size_t sp = s.find(' ', 1);  // as llama.cpp: a token may start with a space
      if (sp == std::string::npos) fail("{}: tokenizer.ggml.merges entry \"{}\" is not two tokens", where, s);
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    }
    add_bos = p->add_bos;
  } else if (model == "llama") {
    std::vector<double> scores = f.numbers("tokenizer.ggml.scores");
    if (scores.size() != tokens.size()) fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", where, scores.size(), tokens.size());
    const bool space_prefix = f.boolean_or("tokenizer.ggml.add_space_prefix", true);
    json norm = json::array();
    if (space_prefix) norm.push_back({{"type", "Prepend"}, {"prepend", kSpace}});
    norm.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}});
    json dec = {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}}, {{"type", "ByteFallback"}},
                {{"type", "Fuse"}}};
    if (space_prefix) dec.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tok["normalizer"] = {{"type", "Sequence"}, {"normalizers", norm}};
    tok["pre_tokenizer"] = nullptr;
    tok["decoder"] = {{"type", "Sequence"}, {"decoders", dec}};
    std::unordered_set<std::string_view> have(tokens.begin(), tokens.end());
    bool bytes = true;  // all 256 <0xXX> tokens: byte fallback
    for (int b = 0; b < 256 && bytes; b++) bytes = have.count(fmt::format("<0x{:02X}>", b)) > 0;
    m.update({{"unk_token", unk >= 0 ? json(tokens[unk]) : json(nullptr)}, {"fuse_unk", true}, {"byte_fallback", bytes},
              {"ignore_merges", false}});
    spec.merges = spm_merges(tokens, types, scores);
    add_bos = true;
  } else {
    fail("{}: tokenizer.ggml.model \"{}\" is not supported (gpt2, llama)", where, model);
  }
  add_bos = f.boolean_or("tokenizer.ggml.add_bos_token", add_bos) && bos >= 0;
  const bool add_eos = f.boolean_or("tokenizer.ggml.add_eos_token", false) && eos >= 0;
  tok["model"] = m;
  tok["post_processor"] = post_processor(tokens, bos, add_bos, eos, add_eos);

  std::map<std::string_view, int32_t> seen;
  json added = json::array();
  for (int32_t i = 0; i < int32_t(tokens.size()); i++) {
    if (!seen.emplace(tokens[i], i).second) {
      log::warn("{}: token {} \"{}\" repeats token {}; only the first is kept", where, i, tokens[i], seen[tokens[i]]);
      continue;
    }
    spec.vocab.emplace_back(tokens[i], i);
    if (types[i] == kControl || types[i] == kUnknown || types[i] == kUserDefined)
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", types[i] != kUserDefined}});
  }
  tok["added_tokens"] = added;

  json& cfg = spec.config;
  auto piece = [&](int64_t id) { return id >= 0 ? json(tokens[size_t(id)]) : json(nullptr); };
  cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"add_bos_token", add_bos}, {"add_eos_token", add_eos},
         {"bos_token", piece(bos)}, {"eos_token", piece(eos)}, {"unk_token", piece(unk)}, {"pad_token", piece(pad)},
         {"clean_up_tokenization_spaces", false}};
  if (f.has("tokenizer.chat_template")) cfg["chat_template"] = f.string("tokenizer.chat_template");
  return spec;
}

}  // namespace llmopt::tok::detail

namespace llmopt::tok {

Tokenizer Tokenizer::from_gguf(const gguf::File& f) {
  detail::TokenizerSpec spec = detail::spec_from_gguf(f);
  return from_spec(spec);
}

void write_hf_tokenizer(const gguf::File& f, const std::filesystem::path& dir) {
  detail::TokenizerSpec spec = detail::spec_from_gguf(f);
  detail::json tok = spec.tok;
  detail::json vocab = detail::json::object(), merges = detail::json::array();
  for (const auto& [piece, id] : spec.vocab) vocab[piece] = id;
  for (const auto& [a, b] : spec.merges) merges.push_back({a, b});
  tok["model"]["vocab"] = std::move(vocab);
  tok["model"]["merges"] = std::move(merges);
  tok["version"] = "1.0";
  tok["truncation"] = nullptr;
  tok["padding"] = nullptr;
  write_file_atomic(dir / "tokenizer.json", tok.dump(1) + "\n");
  write_file_atomic(dir / "tokenizer_config.json", spec.config.dump(2) + "\n");
}

}  // namespace llmopt::tok
