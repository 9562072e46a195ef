// Tokenizer: loading tokenizer.json / tokenizer_config.json, added-token splitting, the encode pipeline,
// the post-processor and decode. The parts live in normalize.cpp, pretokenize.cpp, bpe.cpp, decoders.cpp.
#include "lib/tokenizer/tokenizer.h"

#include <stdexcept>

#include "formats/gguf_read.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"
#include "lib/tokenizer/internal.h"

namespace llmopt::tok {
using namespace detail;

namespace {

struct AddedToken {
  std::string content;
  int32_t id;
  bool special, normalized, lstrip, rstrip;
  std::string piece;  // what decode gives: the content, normalized if normalized=true (as HF's id_to_token)
};

// Byte trie over added-token contents: leftmost-longest matching, as HF's aho-corasick (LeftmostLongest).
struct Trie {
  struct Node { std::vector<std::pair<unsigned char, int32_t>> kids; int32_t token = -1; };
  std::vector<Node> nodes{1};
  std::array<bool, 256> first{};

  void add(std::string_view s, int32_t token) {
    if (s.empty()) return;
    first[(unsigned char)s[0]] = true;
    int32_t n = 0;
    for (unsigned char c : s) {
      int32_t next = -1;
      for (auto& [k, v] : nodes[n].kids) if (k == c) next = v;
      if (next < 0) {
        next = int32_t(nodes.size());
        nodes[n].kids.push_back({c, next});
        nodes.emplace_back();
      }
      n = next;
    }
    if (nodes[n].token < 0) nodes[n].token = token;
  }
  bool empty() const { return nodes.size() == 1; }
  // Longest token starting at s[i]: its index and length, or false.
  bool longest(std::string_view s, size_t i, int32_t& token, size_t& len) const {
    int32_t n = 0;
    token = -1;
    for (size_t k = i; k < s.size(); k++) {
      int32_t next = -1;
      for (auto& [c, v] : nodes[n].kids) if (c == (unsigned char)s[k]) { next = v; break; }
      if (next < 0) break;
      n = next;
      if (nodes[n].token >= 0) token = nodes[n].token, len = k + 1 - i;
    }
    return token >= 0;
  }
};

}  // namespace

struct Tokenizer::Impl {
  Normalizer normalizer;
  PreTokenizer pre;
  Bpe bpe;
  Decoder decoder;
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, int32_t> added_by_id;  // id → index in `added`
  Trie raw_trie, norm_trie;                          // normalized=false / normalized=true tokens
  std::vector<int32_t> prefix, suffix;               // post-processor around the sequence
  int32_t bos = -1, eos = -1;
  bool add_bos = false;
  std::string chat_template;
  int64_t vocab_size = 0;

  int32_t token_id(std::string_view piece) const {
    for (auto& a : added) if (a.content == piece) return a.id;
    std::string key;
    if (!bpe.byte_level || !chars_to_bytes(piece, key)) key = piece;
    return bpe.vocab.find(key);
  }

  // Splits s on added tokens (HF AddedVocabulary::find_matches); calls gap(view) or token(id) in order.
  template <class Gap>
  void split_added(const Trie& trie, std::string_view s, bool parse_special, std::vector<int32_t>& out, Gap&& gap) const {
    if (trie.empty()) return gap(s);
    size_t done = 0;
    for (size_t i = 0; i < s.size();) {
      int32_t t;
      size_t len;
      if (!trie.first[(unsigned char)s[i]] || !trie.longest(s, i, t, len)) { i++; continue; }
      const AddedToken& a = added[t];
      size_t b = i, e = i + len;
      i = e;
      if (a.special && !parse_special) continue;  // stays part of the text
      if (a.lstrip) {  // swallow whitespace before the token
        while (b > done) {
          size_t p = b - 1;
          while (p > done && (s[p] & 0xC0) == 0x80) p--;
          size_t q = p;
          if (!is_white_space(utf8_decode(s, q))) break;
          b = p;
        }
      }
      if (a.rstrip) {
        while (e < s.size()) {
          size_t q = e;
          if (!is_white_space(utf8_decode(s, q))) break;
          e = q;
        }
        i = e;
      }
      if (b > done) gap(s.substr(done, b - done));
      out.push_back(a.id);
      done = e;
    }
    if (done < s.size()) gap(s.substr(done));
  }

  void encode_text(std::string_view text, bool parse_special, std::vector<int32_t>& out) const {
    thread_local std::vector<std::string_view> words;
    auto model = [&](std::string_view piece, bool at_start) {
      words.clear();
      pre.split(piece, at_start, words);
      for (auto w : words) bpe.encode_word(w, out);
    };
    // at_start: the piece begins at offset 0 of the input (for Metaspace prepend_scheme "first").
    split_added(raw_trie, text, parse_special, out, [&](std::string_view gap) {
      const bool gap_start = gap.data() == text.data();
      auto norm_gap = [&](std::string_view base) {
        return [&, base](std::string_view g) { model(g, gap_start && g.data() == base.data()); };
      };
      if (normalizer.empty()) return split_added(norm_trie, gap, parse_special, out, norm_gap(gap));
      std::string norm(gap);
      normalizer.apply(norm);
      split_added(norm_trie, norm, parse_special, out, norm_gap(norm));
    });
  }
};

static void parse_post_processor(const json& j, const std::string& what, Tokenizer::Impl& t, bool& has_template) {
  if (j.is_null()) return;
  const JsonObject f(j, what);
  const std::string type = f.string("type");
  if (type == "Sequence") {
    const json& ps = f.array("processors");
    for (size_t i = 0; i < ps.size(); ++i)
      parse_post_processor(ps[i], fmt::format("{}: processors[{}]", what, i), t, has_template);
  } else if (type == "TemplateProcessing") {
    has_template = true;
    bool seen_a = false;
    const JsonObject specials = f.object("special_tokens");
    const json& single = f.array("single");
    for (size_t i = 0; i < single.size(); ++i) {
      const JsonObject item(single[i], fmt::format("{}: single[{}]", what, i));
      if (item.has("Sequence")) { seen_a = true; continue; }
      const std::string name = item.object("SpecialToken").string("id");
      if (!specials.has(name)) fail("{}: special token \"{}\" is not in special_tokens", what, name);
      const JsonObject special = specials.object(name);
      for (const auto& id : special.array("ids"))
        (seen_a ? t.suffix : t.prefix).push_back(int32_t(json_integer(id, special.path("ids") + " element", 0, INT32_MAX)));
    }
  } else if (type != "ByteLevel") {
    fail("{}: post_processor type \"{}\" is not supported", what, type);
  }
}

// A token in tokenizer_config.json: a string, {"content": ...} or null.
static std::string config_token(const JsonObject& c, const char* key) {
  if (!c.has(key)) return {};
  const json& v = c.get(key);
  if (v.is_object()) return JsonObject(v, c.path(key)).string_or("content", "");
  return json_string(v, fmt::format("{}: field \"{}\"", c.what(), key));
}

// tokenizer.json text → spec. vocab and merges (most of the file) are taken out during the parse instead of
// becoming json values.
static void parse_tokenizer_json(const std::string& text, TokenizerSpec& spec) {
  auto& vocab = spec.vocab;
  auto& merges = spec.merges;
  const std::string& where = spec.where;
  std::string top, sub, key;  // keys at depth 1 and 2, and the pending vocab key
  bool pending_first = false;  // inside a ["a", "b"] merge after "a"
  using E = json::parse_event_t;
  vocab.reserve(text.size() / 16);  // upper bounds; untouched capacity costs nothing
  merges.reserve(text.size() / 16);
  spec.tok = json::parse(text, [&](int depth, E ev, json& v) -> bool {
    if (ev == E::key) {
      if (depth == 1) top = v.get<std::string>();
      else if (depth == 2) sub = v.get<std::string>();
      else if (depth == 3 && top == "model" && sub == "vocab") return key = std::move(v.get_ref<std::string&>()), false;
      return true;
    }
    if (depth < 3 || top != "model") return true;
    if (ev == E::value && depth == 3 && sub == "vocab") {
      const int64_t id = json_integer(v, fmt::format("{}: model: vocab[\"{}\"]", where, key), 0, INT32_MAX);
      return vocab.emplace_back(std::move(key), int32_t(id)), false;
    }
    if (sub != "merges") return true;
    if (ev == E::value && depth == 3) {  // "a b"
      const std::string s = json_string(v, fmt::format("{}: model: merges[{}]", where, merges.size()));
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail("{}: model: merges[{}] \"{}\" is not two tokens separated by one space", where, merges.size(), s);
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      return false;
    }
    if (ev == E::value && depth == 4) {  // ["a", "b"]
      const size_t at = pending_first ? merges.size() - 1 : merges.size();
      std::string s = json_string(v, fmt::format("{}: model: merges[{}] element", where, at));
      if (pending_first) merges.back().second = std::move(s), pending_first = false;
      else merges.emplace_back(std::move(s), std::string()), pending_first = true;
      return false;
    }
    return !(ev == E::array_end && depth == 3);  // drop the emptied ["a", "b"]
  });
}

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  std::error_code ec;
  if (path.extension() == ".gguf" && std::filesystem::is_regular_file(path, ec)) return from_gguf(*gguf::File::open(path));
  TokenizerSpec spec;
  spec.where = (path / "tokenizer.json").string();
  try {
    parse_tokenizer_json(read_file(path / "tokenizer.json"), spec);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("cannot load tokenizer {}: {}", spec.where, e.what());
  }
  auto cpath = path / "tokenizer_config.json";
  spec.config_where = cpath.string();
  if (std::filesystem::exists(cpath)) spec.config = read_json_file(cpath);
  return from_spec(spec);
}

// The added tokens of the spec, and the tries that find them in text.
static void load_added(const JsonObject& top_level, Tokenizer::Impl& t, const std::string& where) {
  const json& added = top_level.array_or_empty("added_tokens");
  const int64_t max_added_id = t.vocab_size + int64_t(added.size()) + 65536;  // as for the vocab (bpe.cpp)
  for (size_t i = 0; i < added.size(); ++i) {
    const JsonObject a(added[i], fmt::format("{}: added_tokens[{}]", where, i));
    AddedToken tok{a.string("content"), int32_t(a.integer("id", 0, max_added_id)), a.boolean_or("special", false),
                   a.boolean_or("normalized", true), a.boolean_or("lstrip", false), a.boolean_or("rstrip", false), ""};
    if (a.boolean_or("single_word", false)) log::warn("{}: added token {} has single_word=true, which is ignored", where, tok.content);
    int32_t index = int32_t(t.added.size());
    t.added_by_id[tok.id] = index;
    t.vocab_size = std::max<int64_t>(t.vocab_size, tok.id + 1);
    t.added.push_back(std::move(tok));
  }
  for (int32_t i = 0; i < int32_t(t.added.size()); i++) {
    AddedToken& a = t.added[i];
    a.piece = a.content;
    if (!a.normalized) { t.raw_trie.add(a.content, i); continue; }
    t.normalizer.apply(a.piece);  // normalized tokens are matched in normalized text
    t.norm_trie.add(a.piece, i);
  }
}

Tokenizer Tokenizer::from_spec(TokenizerSpec& spec) {
  auto impl = std::make_shared<Impl>();
  Impl& t = *impl;
  const std::string& where = spec.where;
  bool has_template = false;
  try {
    const JsonObject top_level(spec.tok, where);
    static const json none;
    auto section = [&](const char* k) -> const json& { return top_level.has(k) ? top_level.get(k) : none; };
    t.normalizer = parse_normalizer(section("normalizer"), top_level.path("normalizer"));
    t.pre = parse_pre_tokenizer(section("pre_tokenizer"), top_level.path("pre_tokenizer"));
    t.bpe.load(top_level.get("model"), top_level.path("model"), spec.vocab, spec.merges, t.pre.byte_level);
    t.decoder = parse_decoder(section("decoder"), top_level.path("decoder"));
    parse_post_processor(section("post_processor"), top_level.path("post_processor"), t, has_template);
    t.vocab_size = int64_t(t.bpe.pieces.size());
    load_added(top_level, t, where);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("cannot load tokenizer {}: {}", where, e.what());
  }

  const JsonObject cfg(spec.config, spec.config_where);
  std::string bos = config_token(cfg, "bos_token"), eos = config_token(cfg, "eos_token");
  t.bos = bos.empty() ? (t.prefix.empty() ? -1 : t.prefix.front()) : t.token_id(bos);
  t.eos = eos.empty() ? (t.suffix.empty() ? -1 : t.suffix.back()) : t.token_id(eos);
  if (!bos.empty() && t.bos < 0) fail("{}: bos_token {} is not in the vocabulary", spec.config_where, bos);
  if (!eos.empty() && t.eos < 0) fail("{}: eos_token {} is not in the vocabulary", spec.config_where, eos);
  // Without a template, tokenizer_config.json's add_bos_token/add_eos_token decide (transformers 4.x).
  if (!has_template) {
    if (cfg.boolean_or("add_bos_token", false) && t.bos >= 0) t.prefix = {t.bos};
    if (cfg.boolean_or("add_eos_token", false) && t.eos >= 0) t.suffix = {t.eos};
  }
  t.add_bos = cfg.has("add_bos_token") ? cfg.boolean("add_bos_token") && t.bos >= 0 && !t.prefix.empty()
                                       : !t.prefix.empty() && t.prefix.front() == t.bos;
  if (cfg.has("chat_template") && cfg.get("chat_template").is_string()) t.chat_template = cfg.string("chat_template");
  Tokenizer out;
  out.impl_ = std::move(impl);
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special) ids = impl_->prefix;
  if (utf8_valid(text)) impl_->encode_text(text, parse_special, ids);
  else impl_->encode_text(utf8_lossy(text), parse_special, ids);
  if (add_special) ids.insert(ids.end(), impl_->suffix.begin(), impl_->suffix.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (auto it = t.added_by_id.find(id); it != t.added_by_id.end()) {
      const AddedToken& a = t.added[it->second];
      if (!(skip_special && a.special)) tokens.push_back(a.piece);
    } else if (id >= 0 && size_t(id) < t.bpe.pieces.size() && !t.bpe.pieces[id].empty()) {
      tokens.push_back(t.bpe.pieces[id]);
    }
  }
  return t.decoder.run(std::move(tokens));
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
int64_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::string Tokenizer::id_to_piece(int32_t id) const {
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) return impl_->added[it->second].piece;
  if (id >= 0 && size_t(id) < impl_->bpe.pieces.size()) return impl_->bpe.pieces[id];
  return {};
}

int32_t Tokenizer::piece_to_id(std::string_view piece) const { return impl_->token_id(piece); }

const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

}  // namespace llmopt::tok
