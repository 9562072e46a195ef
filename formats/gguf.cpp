#include "formats/gguf.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>

#include "lib/core/dtype.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/json.h"
#include "formats/safetensors.h"

namespace llmopt::gguf {
namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- types ---------------------------------------------------------------------------------------

Type type_from_name(const std::string& s) {
  std::string u = s;
  for (auto& c : u) c = char(std::toupper(uint8_t(c)));
  for (Type t : {Type::F32, Type::F16, Type::Q4_0, Type::Q4_1, Type::Q8_0})
    if (u == type_name(t)) return t;
  fail("unknown GGUF tensor type '{}' (F32, F16, Q8_0, Q4_0, Q4_1)", s);
}

Type pick_type(Type want, const std::vector<int64_t>& shape) {
  if (shape.size() <= 1) return Type::F32;
  if (shape.back() % block_elems(want) != 0) return Type::F16;
  return want;
}

uint32_t file_type(Type t) {
  switch (t) {
    case Type::F32: return 0;   // LLAMA_FTYPE_ALL_F32
    case Type::F16: return 1;   // MOSTLY_F16
    case Type::Q4_0: return 2;  // MOSTLY_Q4_0
    case Type::Q4_1: return 3;  // MOSTLY_Q4_1
    case Type::Q8_0: return 7;  // MOSTLY_Q8_0
    case Type::BF16: return 32; // MOSTLY_BF16
    default: fail("GGUF export: no file type for {}", type_name(t));
  }
}

// ---- metadata --------------------------------------------------------------------------------------

namespace {
template <typename T> void raw(std::string& s, T v) { s.append(reinterpret_cast<const char*>(&v), sizeof(T)); }
void str(std::string& s, const std::string& v) {
  raw<uint64_t>(s, v.size());
  s += v;
}
using VT = Metadata::VType;
std::string typed(VT t) {
  std::string s;
  raw<uint32_t>(s, uint32_t(t));
  return s;
}
template <typename T> std::string scalar(VT t, T v) {
  auto s = typed(t);
  raw<T>(s, v);
  return s;
}
template <typename T, typename F> std::string array(VT elem, const std::vector<T>& v, F put_one) {
  if (v.empty()) fail("GGUF metadata: an array must not be empty");
  auto s = typed(VT::ARRAY);
  raw<uint32_t>(s, uint32_t(elem));
  raw<uint64_t>(s, v.size());
  for (auto& x : v) put_one(s, x);
  return s;
}
}  // namespace

void Metadata::put(const std::string& k, std::string v) {
  for (auto& [key, val] : kv_)
    if (key == k) {
      val = std::move(v);
      return;
    }
  kv_.emplace_back(k, std::move(v));
}
void Metadata::set_u32(const std::string& k, uint32_t v) { put(k, scalar(VT::U32, v)); }
void Metadata::set_i32(const std::string& k, int32_t v) { put(k, scalar(VT::I32, v)); }
void Metadata::set_u64(const std::string& k, uint64_t v) { put(k, scalar(VT::U64, v)); }
void Metadata::set_f32(const std::string& k, float v) { put(k, scalar(VT::F32, v)); }
void Metadata::set_bool(const std::string& k, bool v) { put(k, scalar(VT::BOOL, uint8_t(v))); }
void Metadata::set_str(const std::string& k, const std::string& v) {
  auto s = typed(VT::STRING);
  str(s, v);
  put(k, s);
}
void Metadata::set_str_array(const std::string& k, const std::vector<std::string>& v) {
  put(k, array(VT::STRING, v, [](std::string& s, const std::string& x) { str(s, x); }));
}
void Metadata::set_f32_array(const std::string& k, const std::vector<float>& v) {
  put(k, array(VT::F32, v, [](std::string& s, float x) { raw(s, x); }));
}
void Metadata::set_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  put(k, array(VT::I32, v, [](std::string& s, int32_t x) { raw(s, x); }));
}
bool Metadata::has(const std::string& k) const {
  return std::any_of(kv_.begin(), kv_.end(), [&](auto& p) { return p.first == k; });
}
std::vector<std::string> Metadata::keys() const {
  std::vector<std::string> out;
  for (auto& p : kv_) out.push_back(p.first);
  return out;
}
std::string Metadata::encode() const {
  std::string s;
  for (auto& [k, v] : kv_) {
    str(s, k);
    s += v;
  }
  return s;
}

// ---- writer ----------------------------------------------------------------------------------------

size_t TensorSpec::nbytes() const {
  if (shape.empty()) fail("GGUF tensor {}: no shape", name);
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  return size_t(rows) * row_bytes(type, shape.back());
}

struct Writer::Impl {
  AtomicOutput out;
  std::fstream f;
  std::vector<TensorSpec> specs;
  std::map<std::string, size_t> index;
  std::vector<uint64_t> offset;  // absolute file offsets
  std::vector<bool> written;
  uint64_t alignment = 32, total = 0;
  bool finished = false;
  Impl(const fs::path& p) : out(p, AtomicOutput::Kind::File) {}
};

static uint64_t pad_to(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

Writer::Writer(const fs::path& path, Metadata meta, std::vector<TensorSpec> specs) : impl_(new Impl(path)) {
  auto& m = *impl_;
  if (!meta.has("general.alignment")) meta.set_u32("general.alignment", 32);
  m.specs = std::move(specs);
  std::string head = "GGUF";
  raw<uint32_t>(head, 3);
  raw<uint64_t>(head, m.specs.size());
  raw<uint64_t>(head, meta.size());
  head += meta.encode();
  uint64_t rel = 0;
  std::vector<uint64_t> rels;
  for (size_t i = 0; i < m.specs.size(); ++i) {
    auto& t = m.specs[i];
    if (!m.index.emplace(t.name, i).second) fail("GGUF: tensor {} declared twice", t.name);
    str(head, t.name);
    raw<uint32_t>(head, uint32_t(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) raw<uint64_t>(head, uint64_t(t.shape[d]));  // ne[0] innermost
    raw<uint32_t>(head, uint32_t(t.type));
    raw<uint64_t>(head, rel);
    rels.push_back(rel);
    rel += pad_to(t.nbytes(), m.alignment);
  }
  const uint64_t data = pad_to(head.size(), m.alignment);
  head.resize(data, '\0');
  for (auto r : rels) m.offset.push_back(data + r);
  m.total = data + rel;
  m.written.assign(m.specs.size(), false);
  m.f.open(m.out.path(), std::ios::binary | std::ios::out | std::ios::trunc);
  if (!m.f) fail("cannot create {}", m.out.path().string());
  m.f.write(head.data(), std::streamsize(head.size()));
  if (!m.f) fail("cannot write {}", m.out.path().string());
}

Writer::~Writer() = default;

void Writer::write(const std::string& name, const void* bytes, size_t nbytes) {
  auto& m = *impl_;
  auto it = m.index.find(name);
  if (it == m.index.end()) fail("GGUF: tensor {} was not declared", name);
  const size_t i = it->second;
  if (m.written[i]) fail("GGUF: tensor {} written twice", name);
  const size_t want = m.specs[i].nbytes();
  if (nbytes != want) fail("GGUF: tensor {} has {} bytes, its {} shape needs {}", name, nbytes, type_name(m.specs[i].type), want);
  m.f.seekp(std::streamoff(m.offset[i]));
  m.f.write(static_cast<const char*>(bytes), std::streamsize(nbytes));
  const std::string pad(pad_to(nbytes, m.alignment) - nbytes, '\0');
  m.f.write(pad.data(), std::streamsize(pad.size()));
  if (!m.f) fail("cannot write tensor {} to {}", name, m.out.path().string());
  m.written[i] = true;
}

void Writer::write_f32(const std::string& name, const float* x, size_t n) {
  auto& m = *impl_;
  auto it = m.index.find(name);
  if (it == m.index.end()) fail("GGUF: tensor {} was not declared", name);
  const auto& t = m.specs[it->second];
  const int64_t cols = t.shape.back();
  if (n % size_t(cols) != 0 || n * size_t(block_bytes(t.type)) / size_t(block_elems(t.type)) != t.nbytes())
    fail("GGUF: tensor {} got {} values for its shape", name, n);
  std::vector<uint8_t> buf(t.nbytes());
  const size_t rb = row_bytes(t.type, cols);
  for (size_t r = 0; r < n / size_t(cols); ++r) quantize_row(t.type, x + r * cols, cols, buf.data() + r * rb);
  write(name, buf.data(), buf.size());
}

void Writer::finish() {
  auto& m = *impl_;
  for (size_t i = 0; i < m.specs.size(); ++i)
    if (!m.written[i]) fail("GGUF: tensor {} was declared but never written", m.specs[i].name);
  m.f.close();
  if (!m.f) fail("cannot write {}", m.out.path().string());
  if (fs::file_size(m.out.path()) != m.total) fail("GGUF: {} has the wrong size", m.out.path().string());
  m.out.commit();
  m.finished = true;
}

// ---- llama -----------------------------------------------------------------------------------------

namespace {
// The one HF <-> llama.cpp tensor-name table (convert_hf_to_gguf's tensor map for the llama family).
const std::pair<const char*, const char*> kTopNames[] = {
    {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"}};
const std::pair<const char*, const char*> kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},   {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},     {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},     {"self_attn.o_proj.weight", "attn_output.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},      {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},      {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},         {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"}, {"self_attn.k_norm.weight", "attn_k_norm.weight"}};

// `from` (side 0 = HF, 1 = GGUF) to the other side; "" when the table has no such name.
std::string map_name(const std::string& from, int side) {
  auto pick = [&](const std::pair<const char*, const char*>& e, int k) { return std::string(k == 0 ? e.first : e.second); };
  for (auto& e : kTopNames)
    if (pick(e, side) == from) return pick(e, 1 - side);
  static const std::regex hf_re(R"(model\.layers\.(\d+)\.(.+))"), gguf_re(R"(blk\.(\d+)\.(.+))");
  std::smatch mt;
  if (!std::regex_match(from, mt, side == 0 ? hf_re : gguf_re)) return "";
  for (auto& e : kLayerNames)
    if (pick(e, side) == mt[2].str()) return (side == 0 ? "blk." : "model.layers.") + mt[1].str() + "." + pick(e, 1 - side);
  return "";
}
}  // namespace

std::string llama_tensor_name(const std::string& hf) {
  if (std::string g = map_name(hf, 0); !g.empty()) return g;
  if (hf.ends_with(".self_attn.rotary_emb.inv_freq")) return "";
  fail("GGUF llama export: no llama.cpp name for tensor {}", hf);
}

std::string hf_tensor_name(const std::string& gguf_name) { return map_name(gguf_name, 1); }
std::string gguf_tensor_name(const std::string& hf_name) { return map_name(hf_name, 0); }

int64_t rope_gguf_row(int64_t r, int64_t rows, int n_head) {
  const int64_t hd = rows / n_head, half = hd / 2, w = r % hd;
  return r / hd * hd + 2 * (w % half) + w / half;
}

void permute_rope_rows(const float* src, float* dst, int64_t rows, int64_t cols, int n_head) {
  if (n_head <= 0 || rows % (2 * n_head) != 0) fail("RoPE permute: {} rows do not split into {} heads of even size", rows, n_head);
  const int64_t hd = rows / n_head, half = hd / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t j = 0; j < half; ++j)
      for (int64_t t = 0; t < 2; ++t)
        std::memcpy(dst + (h * hd + 2 * j + t) * cols, src + (h * hd + t * half + j) * cols, size_t(cols) * 4);
}

// Minimal protobuf reading: varints, and skipping fields by wire type.
namespace {
struct Proto {
  const uint8_t* p;
  const uint8_t* end;
  std::string file;
  uint64_t varint() {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
      if (p >= end) fail("{}: truncated protobuf", file);
      const uint8_t b = *p++;
      v |= uint64_t(b & 0x7f) << s;
      if (!(b & 0x80)) return v;
    }
    fail("{}: bad protobuf varint", file);
  }
  std::pair<const uint8_t*, size_t> bytes() {
    const uint64_t n = varint();
    if (n > uint64_t(end - p)) fail("{}: truncated protobuf field", file);
    auto r = std::make_pair(p, size_t(n));
    p += n;
    return r;
  }
  void skip(int wire) {
    if (wire == 0) varint();
    else if (wire == 1) p += 8;
    else if (wire == 2) bytes();
    else if (wire == 5) p += 4;
    else fail("{}: unsupported protobuf wire type {}", file, wire);
    if (p > end) fail("{}: truncated protobuf", file);
  }
};
}  // namespace

Vocab read_sentencepiece(const fs::path& model_file) {
  const std::string data = read_file(model_file);
  Proto top{reinterpret_cast<const uint8_t*>(data.data()), reinterpret_cast<const uint8_t*>(data.data()) + data.size(),
            model_file.string()};
  Vocab v;
  while (top.p < top.end) {
    const uint64_t key = top.varint();
    if (key >> 3 != 1 || (key & 7) != 2) {
      top.skip(int(key & 7));
      continue;
    }
    auto [b, n] = top.bytes();  // one SentencePiece message
    Proto sp{b, b + n, top.file};
    std::string piece;
    float score = 0.0f;
    int32_t type = 1;  // NORMAL; the numbering equals llama_token_type's
    while (sp.p < sp.end) {
      const uint64_t k = sp.varint();
      if (k == (1 << 3 | 2)) {
        auto [s, len] = sp.bytes();
        piece.assign(reinterpret_cast<const char*>(s), len);
      } else if (k == (2 << 3 | 5)) {
        if (sp.end - sp.p < 4) fail("{}: truncated score", top.file);
        std::memcpy(&score, sp.p, 4);
        sp.p += 4;
      } else if (k == (3 << 3 | 0)) {
        type = int32_t(sp.varint());
      } else {
        sp.skip(int(k & 7));
      }
    }
    v.tokens.push_back(piece);
    v.scores.push_back(score);
    v.types.push_back(type);
  }
  if (v.tokens.empty()) fail("{}: no SentencePiece pieces", model_file.string());
  return v;
}

// Ids and sizes in the tokenizer files are below 2^31 (GGUF stores them as u32 / i32 arrays).
constexpr int64_t kMaxId = (int64_t(1) << 31) - 1;

// convert_hf_to_gguf's does_token_look_special
static bool looks_special(const std::string& t) {
  auto ends = [&](const std::string& a, const std::string& b) {
    return t.size() >= a.size() + b.size() && t.compare(0, a.size(), a) == 0 && t.compare(t.size() - b.size(), b.size(), b) == 0;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || ends("<|", "|>") ||
         ends("<\xef\xbd\x9c", "\xef\xbd\x9c>") || ends("<unused", ">");
}

Vocab llama_vocab(const fs::path& dir) {
  const json cfg_json = read_json_file(dir / "config.json");
  const JsonObject cfg(cfg_json, (dir / "config.json").string());
  Vocab v;
  if (fs::exists(dir / "tokenizer.model")) {
    Vocab sp = read_sentencepiece(dir / "tokenizer.model");
    const int64_t n = cfg.integer_or("vocab_size", int64_t(sp.tokens.size()), 1, kMaxId);
    for (int64_t i = 0; i < n; ++i) {
      v.tokens.push_back("[PAD" + std::to_string(i) + "]");
      v.scores.push_back(-10000.0f);
      v.types.push_back(5);
    }
    for (size_t i = 0; i < sp.tokens.size() && int64_t(i) < n; ++i)
      v.tokens[i] = sp.tokens[i], v.scores[i] = sp.scores[i], v.types[i] = sp.types[i];
    if (fs::exists(dir / "added_tokens.json")) {
      const fs::path ap = dir / "added_tokens.json";
      const json added = read_json_file(ap);
      for (auto& [text, id_json] : JsonObject(added, ap.string()).raw().items()) {
        const int64_t id = json_integer(id_json, fmt::format("{}: id of \"{}\"", ap.string(), text), 0, kMaxId);
        if (id < n) v.tokens[size_t(id)] = text, v.scores[size_t(id)] = -1000.0f, v.types[size_t(id)] = 4;
      }
    }
    if (fs::exists(dir / "tokenizer_config.json")) {
      const fs::path tp = dir / "tokenizer_config.json";
      const json tc_json = read_json_file(tp);
      const JsonObject tc(tc_json, tp.string());
      if (auto decoder = tc.object_or_null("added_tokens_decoder"))
        for (auto& [key, tok_json] : decoder->raw().items()) {
          int64_t id = -1;
          auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
          if (ec != std::errc() || end != key.data() + key.size())
            fail("{}: added_tokens_decoder key \"{}\" is not a token id", tp.string(), key);
          if (id < 0 || id >= n) continue;
          const JsonObject tok(tok_json, decoder->path(key));
          std::string text = tok.string("content");
          if (tok.boolean_or("special", false) || looks_special(text)) v.types[id] = 3;
          else {
            for (size_t p; (p = text.find("\xe2\x96\x81")) != std::string::npos;) text.replace(p, 3, " ");
            v.types[id] = 4;
          }
          v.scores[id] = -1000.0f;
          v.tokens[id] = text;
        }
    }
    return v;
  }
  if (!fs::exists(dir / "tokenizer.json")) fail("GGUF export: {} has neither tokenizer.model nor tokenizer.json", dir.string());
  const fs::path tpath = dir / "tokenizer.json";
  const json tj_json = read_json_file(tpath);
  const JsonObject tj(tj_json, tpath.string());
  const JsonObject model = tj.object("model");
  if (model.string_or("type", "") != "BPE" || !model.boolean_or("byte_fallback", false))
    fail("GGUF export: {}: only SentencePiece-style BPE tokenizers (byte_fallback) are supported",
         (dir / "tokenizer.json").string());
  std::map<int64_t, std::string> by_id;
  const JsonObject vocab = model.object("vocab");
  const json& added_tokens = tj.array_or_empty("added_tokens");
  // as the tokenizer loader: ids may leave gaps, but not far beyond the number of entries
  const int64_t max_id = int64_t(vocab.raw().size() + added_tokens.size()) + 65536;
  for (auto& [text, id] : vocab.raw().items()) by_id[json_integer(id, vocab.path(text), 0, max_id)] = text;
  std::map<int64_t, bool> added;  // id -> special
  for (size_t i = 0; i < added_tokens.size(); ++i) {
    const JsonObject a(added_tokens[i], fmt::format("{}: added_tokens[{}]", tpath.string(), i));
    const int64_t id = a.integer("id", 0, max_id);
    by_id[id] = a.string("content");
    added[id] = a.boolean_or("special", false);
  }
  const int64_t n = std::max<int64_t>(cfg.integer_or("vocab_size", 0, 0, kMaxId), by_id.empty() ? 0 : by_id.rbegin()->first + 1);
  const std::string unk = model.has("unk_token") && model.get("unk_token").is_string() ? model.string("unk_token") : "";
  static const std::regex byte_re("<0x[0-9A-Fa-f]{2}>");
  int64_t first_normal = -1;
  for (int64_t i = 0; i < n; ++i) {
    auto it = by_id.find(i);
    int32_t type = 1;
    std::string text = it == by_id.end() ? "[PAD" + std::to_string(i) + "]" : it->second;
    if (it == by_id.end()) type = 5;
    else if (added.count(i)) type = added[i] ? (text == unk ? 2 : 3) : 4;
    else if (text == unk) type = 2;
    else if (std::regex_match(text, byte_re)) type = 6;
    if (type == 1 && first_normal < 0) first_normal = i;
    v.tokens.push_back(text);
    v.types.push_back(type);
    v.scores.push_back(type == 1 ? -float(i - first_normal) : type == 5 ? -10000.0f : type == 4 ? -1000.0f : 0.0f);
  }
  return v;
}

static int64_t token_id(const Vocab& v, const json& tok, const std::string& what) {
  std::string s = tok.is_string() ? tok.get<std::string>() : tok.is_object() ? JsonObject(tok, what).string_or("content", "") : "";
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (!s.empty() && v.tokens[i] == s) return int64_t(i);
  return -1;
}

Metadata llama_metadata(const fs::path& dir, Type bulk) {
  const fs::path cfg_path = dir / "config.json";
  const json cfg_json = read_json_file(cfg_path);
  const JsonObject cfg(cfg_json, cfg_path.string());
  auto need = [&](const char* k) { return uint32_t(cfg.integer(k, 1, kMaxId)); };  // sizes, stored as u32
  const std::string mt = cfg.string_or("model_type", "");
  if (mt != "llama" && mt != "mistral") fail("{}: GGUF export supports llama models, not model_type '{}'", cfg_path.string(), mt);
  const int64_t n_head = need("num_attention_heads");
  const int64_t hidden = need("hidden_size");
  Metadata m;
  m.set_str("general.architecture", "llama");
  m.set_str("general.type", "model");
  std::string name = fs::absolute(dir).lexically_normal().filename().string();
  if (name.empty()) name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  m.set_str("general.name", name);
  m.set_u32("llama.block_count", need("num_hidden_layers"));
  m.set_u32("llama.context_length", need("max_position_embeddings"));
  m.set_u32("llama.embedding_length", uint32_t(hidden));
  m.set_u32("llama.feed_forward_length", need("intermediate_size"));
  m.set_u32("llama.attention.head_count", uint32_t(n_head));
  m.set_u32("llama.attention.head_count_kv", uint32_t(cfg.integer_or("num_key_value_heads", n_head, 1, kMaxId)));
  m.set_f32("llama.rope.freq_base", float(cfg.number_or("rope_theta", 10000.0)));
  m.set_f32("llama.attention.layer_norm_rms_epsilon", float(cfg.number("rms_norm_eps")));
  if (cfg.has("head_dim")) {
    m.set_u32("llama.attention.key_length", need("head_dim"));
    m.set_u32("llama.attention.value_length", need("head_dim"));
  }
  m.set_u32("general.file_type", file_type(bulk));
  m.set_u32("llama.vocab_size", need("vocab_size"));
  const int64_t head_dim = cfg.has("head_dim") ? int64_t(need("head_dim")) : hidden / n_head;
  m.set_u32("llama.rope.dimension_count", uint32_t(head_dim));
  if (auto rs = cfg.object_or_null("rope_scaling")) {
    const std::string kind = rs->string_or("type", rs->string_or("rope_type", ""));
    if (kind != "linear") fail("{}: rope_scaling type '{}' is not supported by the GGUF export", cfg_path.string(), kind);
    m.set_str("llama.rope.scaling.type", "linear");
    m.set_f32("llama.rope.scaling.factor", float(rs->number("factor")));
  }
  m.set_u32("general.quantization_version", 2);
  m.set_u32("general.alignment", 32);

  const Vocab v = llama_vocab(dir);
  m.set_str("tokenizer.ggml.model", "llama");
  m.set_str("tokenizer.ggml.pre", "default");
  m.set_str_array("tokenizer.ggml.tokens", v.tokens);
  m.set_f32_array("tokenizer.ggml.scores", v.scores);
  m.set_i32_array("tokenizer.ggml.token_type", v.types);
  const fs::path tc_path = dir / "tokenizer_config.json";
  const json tc_json = fs::exists(tc_path) ? read_json_file(tc_path) : json::object();
  const JsonObject tc(tc_json, tc_path.string());
  // Special ids: the tokenizer_config.json token strings first, config.json's *_token_id for what is missing.
  auto special = [&](const char* typ, const char* cfg_key) {
    const std::string tk = std::string(typ) + "_token";
    int64_t id = tc.raw().contains(tk) ? token_id(v, tc.raw()[tk], tc.path(tk)) : -1;
    if (id < 0 && cfg_key && cfg.raw().contains(cfg_key)) {
      const json& c = cfg.raw()[cfg_key];
      const std::string what = fmt::format("{}: field \"{}\"", cfg_path.string(), cfg_key);
      if (c.is_number_integer()) id = json_integer(c, what, 0, kMaxId);
      else if (c.is_array() && !c.empty()) id = json_integer(c[0], what + " element", 0, kMaxId);
    }
    static const std::map<std::string, std::string> key = {
        {"bos", "bos_token_id"}, {"eos", "eos_token_id"}, {"unk", "unknown_token_id"}, {"pad", "padding_token_id"}};
    if (id >= 0) m.set_u32("tokenizer.ggml." + key.at(typ), uint32_t(id));
  };
  special("bos", "bos_token_id");
  special("eos", "eos_token_id");
  special("unk", nullptr);
  special("pad", "pad_token_id");
  // add_{bos,sep,eos}_token as gguf-py's SpecialVocab derives them: from tokenizer.json's TemplateProcessing
  // first, then tokenizer_config.json's add_*_token booleans (keys keep their first position).
  std::vector<std::pair<std::string, bool>> add;
  auto set_add = [&](const std::string& typ, bool v) {
    for (auto& [t, b] : add)
      if (t == typ) return void(b = v);
    add.emplace_back(typ, v);
  };
  auto tc_str = [&](const char* k) { return tc.has(k) && tc.get(k).is_string() ? tc.string(k) : std::string(); };
  if (fs::exists(dir / "tokenizer.json")) {
    const fs::path tpath = dir / "tokenizer.json";
    const json tj_json = read_json_file(tpath);
    const JsonObject tj(tj_json, tpath.string());
    const std::string bos = tc_str("bos_token"), eos = tc_str("eos_token"), sep = tc_str("sep_token"), cls = tc_str("cls_token");
    // The template pieces: {"SpecialToken": {"id": ...}} or {"Sequence": {"id": "A"|"B"}}; "" for anything else.
    auto piece_id = [&](const json& e, const char* kind) {
      if (!e.is_object() || !e.contains(kind)) return std::string();
      return JsonObject(e[kind], tj.path("post_processor")).string_or("id", "");
    };
    auto special_id = [&](const json& e) { return piece_id(e, "SpecialToken"); };
    if (tj.has("post_processor") && tj.get("post_processor").is_object()) {
      const JsonObject pp = tj.object("post_processor");
      const json procs = pp.has("processors") ? pp.array("processors") : json::array({pp.raw()});
      for (const json& pr_json : procs) {
        const JsonObject pr(pr_json, pp.what());
        if (pr.string_or("type", "") == "RobertaProcessing") {
          set_add("bos", true), set_add("eos", true), set_add("sep", true);
          continue;
        }
        if (pr.string_or("type", "") != "TemplateProcessing") continue;
        const json single = pr.array_or_empty("single"), pair = pr.array_or_empty("pair");
        std::string first, last;
        if (single.size() > 1) {
          if (!(first = special_id(single.front())).empty()) set_add("bos", first == bos || first == cls);
          if (!(last = special_id(single.back())).empty()) set_add("eos", last == eos);
        }
        if (!pair.empty()) {
          size_t b = !first.empty() && special_id(pair.front()) == first ? 1 : 0;
          size_t e = !last.empty() && special_id(pair.back()) == last ? pair.size() - 1 : pair.size();
          if (e > b + 2 && piece_id(pair[b], "Sequence") == "A" && piece_id(pair[e - 1], "Sequence") == "B") {
            bool add_sep = false;
            const std::string m0 = special_id(pair[b + 1]);
            if (!m0.empty() && (m0 == sep || m0 == eos) && last.empty()) add_sep = true;
            if (e - b - 2 == 2) {
              const std::string m1 = special_id(pair[b + 2]);
              if (!m1.empty() && (m1 == sep || m1 == eos)) add_sep = true;
            }
            set_add("sep", add_sep);
          }
        }
      }
    }
  }
  for (const char* typ : {"bos", "eos", "unk", "sep", "pad", "cls", "mask"}) {
    const std::string k = std::string("add_") + typ + "_token";
    if (tc.has(k) && tc.get(k).is_boolean()) set_add(typ, tc.boolean(k));
  }
  for (auto& [typ, v] : add) m.set_bool("tokenizer.ggml.add_" + typ + "_token", v);
  if (tc.has("chat_template") && tc.get("chat_template").is_string()) m.set_str("tokenizer.chat_template", tc.string("chat_template"));
  return m;
}

void export_llama(const fs::path& dir, const fs::path& out, Type bulk, const TypeChooser& choose) {
  const json cfg_json = read_json_file(dir / "config.json");
  const JsonObject cfg(cfg_json, (dir / "config.json").string());
  const int n_head = int(cfg.integer("num_attention_heads", 1, kMaxId));
  const int n_kv = int(cfg.integer_or("num_key_value_heads", n_head, 1, kMaxId));
  const auto ts = st::TensorSet::open_dir(dir);
  std::vector<std::pair<std::string, std::string>> names;  // hf, gguf
  std::vector<TensorSpec> specs;
  for (auto& hf : ts.names()) {
    std::string g = llama_tensor_name(hf);
    if (g.empty()) continue;
    const auto& shape = ts.info(hf).shape;
    specs.push_back({g, shape, pick_type(choose ? choose(g, shape) : bulk, shape)});
    names.emplace_back(hf, g);
  }
  Writer w(out, llama_metadata(dir, bulk), specs);
  for (auto& [hf, g] : names) {
    const auto view = ts.get(hf);
    std::vector<float> x = view.to_f32();
    const bool q = hf.ends_with("q_proj.weight") || hf.ends_with("q_proj.bias");
    const bool k = hf.ends_with("k_proj.weight") || hf.ends_with("k_proj.bias");
    if (q || k) {
      std::vector<float> p(x.size());
      const int64_t rows = view.shape()[0], cols = int64_t(x.size()) / rows;
      permute_rope_rows(x.data(), p.data(), rows, cols, q ? n_head : n_kv);
      x.swap(p);
    }
    w.write_f32(g, x.data(), x.size());
  }
  w.finish();
}

}  // namespace llmopt::gguf
