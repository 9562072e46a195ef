#include "lib/convert/gqa.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <regex>
#include <set>

#include "lib/calib/output.h"
#include "lib/core/dtype.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"

namespace llmopt::convert {
namespace fs = std::filesystem;

Grouping parse_grouping(const std::string& s) {
  if (s == "adjacent") return Grouping::Adjacent;
  if (s == "similarity") return Grouping::Similarity;
  fail("--grouping must be 'adjacent' or 'similarity', got '{}'", s);
}

void check_gqa_target(const model::ModelConfig& c, int64_t G) {
  if (c.is_mla())
    fail("cannot convert {}: MLA attention has no per-head K/V projections to pool (--kv-heads is for MHA/GQA models)",
         c.model_type);
  if (!c.quantization_config.is_null())
    fail("cannot convert a quantized checkpoint (quantization_config in config.json); convert the dense model first");
  const int64_t H = c.num_key_value_heads;
  if (G <= 0) fail("--kv-heads must be positive, got {}", G);
  if (G >= H) fail("--kv-heads {} is not a reduction: the model has {} KV heads", G, H);
  if (H % G != 0) fail("--kv-heads {} does not divide the model's {} KV heads (GQA needs equal groups)", G, H);
}

KvGroups adjacent_groups(const model::ModelConfig& c, int64_t G) {
  const int64_t H = c.num_key_value_heads, s = H / G;
  LayerGroups layer(static_cast<size_t>(G));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t j = 0; j < s; ++j) layer[size_t(g)].push_back(g * s + j);
  return KvGroups(size_t(c.num_hidden_layers), layer);
}

namespace {

// Checks that each layer's groups partition 0..H-1 into equal groups.
void check_groups(const model::ModelConfig& c, const KvGroups& groups) {
  const int64_t H = c.num_key_value_heads;
  if (int64_t(groups.size()) != c.num_hidden_layers) fail("KV grouping has {} layers, the model {}", groups.size(), c.num_hidden_layers);
  for (size_t l = 0; l < groups.size(); ++l) {
    const auto& gs = groups[l];
    if (gs.empty() || H % int64_t(gs.size()) != 0) fail("layer {}: {} KV groups do not divide {} heads", l, gs.size(), H);
    std::set<int64_t> seen;
    for (const auto& g : gs) {
      if (int64_t(g.size()) != H / int64_t(gs.size())) fail("layer {}: KV groups of unequal size", l);
      for (int64_t j : g)
        if (j < 0 || j >= H || !seen.insert(j).second) fail("layer {}: KV head {} is out of range or in two groups", l, j);
    }
  }
}

// Query head order after grouping: new head n takes old head qperm[n]. Old KV head j serves query heads
// j·r .. j·r+r-1 (r = n_heads / H_kv); group g's heads are laid out member after member.
std::vector<int64_t> query_permutation(const model::ModelConfig& c, const LayerGroups& gs) {
  const int64_t r = c.num_attention_heads / c.num_key_value_heads;
  std::vector<int64_t> perm;
  for (const auto& g : gs)
    for (int64_t j : g)
      for (int64_t i = 0; i < r; ++i) perm.push_back(j * r + i);
  return perm;
}

bool is_identity(const std::vector<int64_t>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != int64_t(i)) return false;
  return true;
}

// Mean of the rows (head_dim blocks) of each group, in fp64, stored back in the tensor's dtype.
// t: [H·D, cols] (a weight) or [H·D] (a bias; cols = 1).
std::vector<std::byte> pool_heads(const st::TensorView& t, const LayerGroups& gs, int64_t D) {
  const DType dt = t.dtype();
  if (dt != DType::F32 && dt != DType::BF16 && dt != DType::F16)
    fail("cannot pool {}: dtype {} (need F32, BF16 or F16)", t.info->name, dtype_name(dt));
  const int64_t cols = t.shape().size() > 1 ? t.shape()[1] : 1;
  const std::vector<float> w = t.to_f32();
  const int64_t G = int64_t(gs.size()), esz = int64_t(dtype_size(dt));
  std::vector<std::byte> out(size_t(G * D * cols * esz));
  std::vector<double> acc(static_cast<size_t>(cols));
  std::vector<float> mean(static_cast<size_t>(cols));
  for (int64_t g = 0; g < G; ++g) {
    const auto& members = gs[size_t(g)];
    for (int64_t d = 0; d < D; ++d) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j : members) {
        const float* src = w.data() + (j * D + d) * cols;
        for (int64_t c = 0; c < cols; ++c) acc[size_t(c)] += src[c];
      }
      for (int64_t c = 0; c < cols; ++c) mean[size_t(c)] = float(acc[size_t(c)] / double(members.size()));
      from_f32(dt, mean.data(), out.data() + (g * D + d) * cols * esz, size_t(cols));
    }
  }
  return out;
}

// Rows (dim 0) or columns (dim 1) of a 2-D tensor, or a 1-D tensor, moved in blocks of D by head:
// new block n = old block perm[n]. Byte-level, so any dtype.
std::vector<std::byte> permute_heads(const st::TensorView& t, const std::vector<int64_t>& perm, int64_t D, int dim) {
  const int64_t esz = int64_t(dtype_size(t.dtype()));
  const int64_t rows = t.shape()[0], cols = t.shape().size() > 1 ? t.shape()[1] : 1;
  std::vector<std::byte> out(t.nbytes());
  if (dim == 0) {
    const int64_t block = D * cols * esz;
    for (size_t n = 0; n < perm.size(); ++n) std::memcpy(out.data() + int64_t(n) * block, t.data + perm[n] * block, size_t(block));
  } else {
    const int64_t block = D * esz;
    for (int64_t r = 0; r < rows; ++r)
      for (size_t n = 0; n < perm.size(); ++n)
        std::memcpy(out.data() + (r * cols + int64_t(n) * D) * esz, t.data + (r * cols + perm[n] * D) * esz, size_t(block));
  }
  return out;
}

// An attention projection tensor of a decoder layer, by name.
struct AttnTensor {
  size_t layer;
  char which;  // q, k, v, o
  bool bias;
};
std::optional<AttnTensor> attn_tensor(const std::string& name, size_t n_layers) {
  static const std::regex attn(R"(model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.(weight|bias))");
  std::smatch m;
  if (!std::regex_match(name, m, attn)) return std::nullopt;
  const std::string idx = m[1].str();
  size_t layer = 0;
  auto [end, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), layer);
  if (ec != std::errc() || end != idx.data() + idx.size() || layer >= n_layers)
    fail("tensor {}: layer {} is outside the model's {} layers", name, idx, n_layers);
  return AttnTensor{layer, m[2].str()[0], m[3] == "bias"};
}

// The output directory with every attention projection declared as replaced: k/v with G heads (D rows
// each), q and o with their own shapes (permuted, or copied when the permutation is the identity).
std::unique_ptr<calib::OutputDir> open_output(const model::Checkpoint& src, int64_t G, const fs::path& out,
                                              uint64_t max_shard_bytes) {
  const model::ModelConfig& c = src.config;
  std::map<std::string, std::vector<PackedTensor>> replaced;
  for (const auto& name : src.tensors.names()) {
    const auto a = attn_tensor(name, size_t(c.num_hidden_layers));
    if (!a) continue;
    const st::TensorInfo& t = src.tensors.info(name);
    std::vector<int64_t> shape = t.shape;
    if ((a->which == 'k' || a->which == 'v') && !shape.empty()) shape[0] = G * c.head_dim;
    replaced[name] = {{a->bias ? "bias" : "weight", t.dtype, shape, {}}};
  }
  calib::OutputOptions opt;
  opt.max_shard_bytes = max_shard_bytes;
  opt.metadata.clear();
  if (!src.tensors.files().empty()) opt.metadata = src.tensors.files().front()->metadata();
  return std::make_unique<calib::OutputDir>(src, out, replaced, opt);
}

// Streams the attention projections (one tensor in memory at a time) and commits the directory with
// config.json = the input's text re-serialised in its key order, num_key_value_heads = G.
void write_grouped(const model::Checkpoint& src, const KvGroups& groups, calib::OutputDir& dst) {
  const model::ModelConfig& c = src.config;
  check_groups(c, groups);
  const int64_t D = c.head_dim;
  const std::vector<std::string> names = src.tensors.names();
  log::Progress progress("convert", int64_t(names.size()));
  int64_t done = 0;
  for (const auto& name : names) {
    const auto a = attn_tensor(name, groups.size());
    progress.update(++done);
    if (!a) continue;  // copied by OutputDir
    const st::TensorView t = src.tensors.get(name);
    const LayerGroups& gs = groups[a->layer];
    const std::vector<int64_t> qperm = query_permutation(c, gs);
    std::vector<std::byte> bytes;
    if (a->which == 'k' || a->which == 'v') bytes = pool_heads(t, gs, D);
    else if (!is_identity(qperm) && a->which == 'q') bytes = permute_heads(t, qperm, D, 0);
    else if (!is_identity(qperm) && a->which == 'o' && !a->bias) bytes = permute_heads(t, qperm, D, 1);
    else bytes.assign(t.data, t.data + t.nbytes());  // unchanged, in its stored dtype
    std::vector<int64_t> shape = t.shape();
    if ((a->which == 'k' || a->which == 'v') && !shape.empty()) shape[0] = int64_t(gs.size()) * D;
    dst.write_linear(name.substr(0, name.rfind('.')), {{a->bias ? "bias" : "weight", t.dtype(), shape, std::move(bytes)}});
  }
  progress.finish();

  // config.json: only num_key_value_heads changes; key order and every other value kept.
  const fs::path cpath = src.dir / "config.json";
  nlohmann::ordered_json conf;
  try {  // a .gguf checkpoint: the config.json its metadata gave
    conf = nlohmann::ordered_json::parse(src.gguf ? c.raw.dump() : read_file(cpath));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed JSON ({})", cpath.string(), e.what());
  }
  conf["num_key_value_heads"] = groups.empty() ? c.num_key_value_heads : int64_t(groups.front().size());
  dst.commit(conf.dump(2) + "\n");
}

}  // namespace

void write_grouped_checkpoint(const model::Checkpoint& src, const KvGroups& groups, const fs::path& out,
                              uint64_t max_shard_bytes) {
  const int64_t G = groups.empty() ? src.config.num_key_value_heads : int64_t(groups.front().size());
  write_grouped(src, groups, *open_output(src, G, out, max_shard_bytes));
}

nlohmann::json GqaReport::to_json() const {
  nlohmann::json j = {{"kv_heads_before", kv_heads_before},
                      {"kv_heads_after", kv_heads_after},
                      {"kv_bytes_per_token_before", kv_bytes_per_token_before},
                      {"kv_bytes_per_token_after", kv_bytes_per_token_after},
                      {"groups", groups}};
  if (!error_chosen.empty()) {
    double a = 0, s = 0;
    for (size_t l = 0; l < error_chosen.size(); ++l) a += error_adjacent[l], s += error_chosen[l];
    j["calib_tokens"] = calib_tokens;
    j["pooling_error_adjacent"] = error_adjacent;
    j["pooling_error_similarity"] = error_chosen;
    j["mean_pooling_error_adjacent"] = a / double(error_chosen.size());
    j["mean_pooling_error_similarity"] = s / double(error_chosen.size());
  }
  return j;
}

GqaReport convert_gqa(const fs::path& in, const fs::path& out, const GqaOptions& opts) {
  const model::ModelConfig cfg = model::load_config(in);
  check_gqa_target(cfg, opts.kv_heads);
  if (opts.grouping == Grouping::Similarity && opts.calib.empty())
    fail("--grouping similarity needs calibration text (--calib FILE)");
  if (fs::exists(out) && fs::exists(in) && fs::equivalent(in, out)) fail("output {} is the input directory", out.string());
  const model::Checkpoint ck = model::Checkpoint::load(in);
  const model::ModelConfig& c = ck.config;
  const int64_t G = opts.kv_heads;

  GqaReport r;
  r.kv_heads_before = c.num_key_value_heads;
  r.kv_heads_after = G;
  const int64_t P = c.torch_dtype == "float32" ? 4
                    : (c.torch_dtype == "bfloat16" || c.torch_dtype == "float16")
                        ? 2
                        : int64_t(dtype_size(ck.tensors.info("model.embed_tokens.weight").dtype));
  r.kv_bytes_per_token_before = c.kv_bytes_per_token(P);
  model::ModelConfig after = c;
  after.num_key_value_heads = G;
  r.kv_bytes_per_token_after = after.kv_bytes_per_token(P);

  // Checks `out` is absent or empty and copies the tensors convert leaves alone, before any calibration.
  const std::unique_ptr<calib::OutputDir> dst = open_output(ck, G, out, opts.max_shard_bytes);

  if (opts.grouping == Grouping::Adjacent) {
    r.groups = adjacent_groups(c, G);
  } else {
    const HeadStats s = collect_head_stats(ck, opts.calib);
    r.calib_tokens = s.tokens;
    const KvGroups adj = adjacent_groups(c, G);
    for (int l = 0; l < int(c.num_hidden_layers); ++l) {
      const std::vector<double> m = head_metric(s, l);
      r.groups.push_back(similarity_groups(m, s.heads, G));
      r.error_adjacent.push_back(pooling_error(m, s.heads, adj[size_t(l)]));
      r.error_chosen.push_back(pooling_error(m, s.heads, r.groups.back()));
      log::info("layer {}: pooling error {:.4f} (adjacent {:.4f})", l, r.error_chosen.back(), r.error_adjacent.back());
    }
  }

  write_grouped(ck, r.groups, *dst);  // attention tensors, config.json, tokenizer and generation files
  log::info("wrote {} ({} → {} KV heads)", out.string(), r.kv_heads_before, r.kv_heads_after);
  return r;
}

}  // namespace llmopt::convert
