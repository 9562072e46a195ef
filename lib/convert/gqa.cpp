#include "lib/convert/gqa.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>

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
  const int64_t rows = t.shape()[0], cols = t.shape().size() > 1 ? t.shape()[1] : 1;
  const std::vector<float> w = t.to_f32();
  (void)rows;
  const int64_t G = int64_t(gs.size()), esz = int64_t(dtype_size(dt));
  std::vector<std::byte> out(size_t(G * D * cols * esz));
  std::vector<double> acc(static_cast<size_t>(cols));
  for (int64_t g = 0; g < G; ++g) {
    const auto& members = gs[size_t(g)];
    for (int64_t d = 0; d < D; ++d) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j : members) {
        const float* src = w.data() + (j * D + d) * cols;
        for (int64_t c = 0; c < cols; ++c) acc[size_t(c)] += src[c];
      }
      std::byte* dst = out.data() + (g * D + d) * cols * esz;
      for (int64_t c = 0; c < cols; ++c) {
        const float m = float(acc[size_t(c)] / double(members.size()));
        if (dt == DType::F32) {
          std::memcpy(dst + c * 4, &m, 4);
        } else {
          const uint16_t h = dt == DType::BF16 ? f32_to_bf16(m) : f32_to_f16(m);
          std::memcpy(dst + c * 2, &h, 2);
        }
      }
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

bool is_weight_file(const fs::path& p) {
  static const std::set<std::string> skip = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack"};
  const std::string name = p.filename().string();
  return name == "config.json" || name == "model.safetensors.index.json" || name == "pytorch_model.bin.index.json" ||
         skip.count(p.extension().string()) != 0;
}

}  // namespace

void write_grouped_tensors(const model::Checkpoint& src, const KvGroups& groups, const fs::path& out_dir,
                           uint64_t max_shard_bytes) {
  const model::ModelConfig& c = src.config;
  check_groups(c, groups);
  const int64_t D = c.head_dim;
  static const std::regex attn(R"(model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.(weight|bias))");

  // Declare every tensor (shapes of k/v shrink to G heads), then stream them through one at a time.
  const std::vector<std::string> names = src.tensors.names();
  std::vector<st::TensorInfo> specs;
  for (const auto& name : names) {
    st::TensorInfo t = src.tensors.info(name);
    std::smatch m;
    if (std::regex_match(name, m, attn) && (m[2] == "k" || m[2] == "v"))
      t.shape[0] = int64_t(groups[std::stoul(m[1])].size()) * D;
    specs.push_back({t.name, t.dtype, t.shape, 0, 0});
  }
  std::map<std::string, std::string> meta;
  if (!src.tensors.files().empty()) meta = src.tensors.files().front()->metadata();
  st::ShardedWriter w(out_dir, specs, max_shard_bytes, meta);

  log::Progress progress("convert", int64_t(names.size()));
  int64_t done = 0;
  for (const auto& name : names) {
    const st::TensorView t = src.tensors.get(name);
    std::smatch m;
    if (std::regex_match(name, m, attn)) {
      const LayerGroups& gs = groups[std::stoul(m[1])];
      const char which = m[2].str()[0];
      const bool bias = m[3] == "bias";
      const std::vector<int64_t> qperm = query_permutation(c, gs);
      std::vector<std::byte> bytes;
      if (which == 'k' || which == 'v') bytes = pool_heads(t, gs, D);
      else if (!is_identity(qperm) && which == 'q') bytes = permute_heads(t, qperm, D, 0);
      else if (!is_identity(qperm) && which == 'o' && !bias) bytes = permute_heads(t, qperm, D, 1);
      if (!bytes.empty()) {
        w.write(name, bytes.data(), bytes.size());
        progress.update(++done);
        continue;
      }
    }
    w.write(name, t.data, t.nbytes());  // unchanged, in its stored dtype
    progress.update(++done);
  }
  w.finish();
  progress.finish();
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

  AtomicOutput dir(out, AtomicOutput::Kind::Directory);  // checks `out` is absent or empty

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

  write_grouped_tensors(ck, r.groups, dir.path(), opts.max_shard_bytes);

  // config.json: only num_key_value_heads changes; key order and every other value kept.
  auto conf = nlohmann::ordered_json::parse(read_file(in / "config.json"));
  conf["num_key_value_heads"] = G;
  {
    std::ofstream f(dir.path() / "config.json", std::ios::binary);
    f << conf.dump(2) << "\n";
    if (!f) fail("cannot write {}", (dir.path() / "config.json").string());
  }
  // Tokenizer, generation config and any other side files (not the old weights).
  for (const auto& e : fs::directory_iterator(in)) {
    if (!e.is_regular_file() || is_weight_file(e.path())) continue;
    std::error_code ec;
    fs::copy_file(e.path(), dir.path() / e.path().filename(), ec);
    if (ec) fail("cannot copy {}: {}", e.path().string(), ec.message());
  }
  dir.commit();
  log::info("wrote {} ({} → {} KV heads)", out.string(), r.kv_heads_before, r.kv_heads_after);
  return r;
}

}  // namespace llmopt::convert
