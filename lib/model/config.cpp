#include "lib/model/config.h"

#include <algorithm>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/json.h"
#include "lib/model/checkpoint.h"

namespace llmopt::model {
namespace {

// Sizes (hidden_size, layers, heads, ...) are positive and fit in 32 bits, as in every real config; a larger
// value is a corrupt file, not a model to allocate for.
constexpr int64_t kMaxSize = (int64_t(1) << 31) - 1;

int64_t positive(const JsonObject& f, const char* k) {
  const int64_t v = f.integer(k, 1);
  if (v > kMaxSize) fail("{}: field \"{}\" = {} is too large (at most {})", f.what(), k, v, kMaxSize);
  return v;
}

// int or list of ints (token ids)
std::vector<int64_t> ids(const JsonObject& f, const char* k) {
  if (!f.has(k)) return {};
  const nlohmann::json& v = f.get(k);
  const std::string what = fmt::format("{}: field \"{}\"", f.what(), k);
  if (!v.is_array()) return {json_integer(v, what, 0, kMaxSize)};
  std::vector<int64_t> out;
  for (const auto& e : v) out.push_back(json_integer(e, what + " element", 0, kMaxSize));
  return out;
}

// The fields of quantization_config that the quantized-linear loaders (lib/model/linear_quant.cpp) and inspect
// read with throwing accessors, type-checked once here so that a malformed value is an Error naming config.json.
void check_quantization_config(const nlohmann::json& qc, const std::string& src) {
  const JsonObject q(qc, src + ": quantization_config");
  for (const char* k : {"quant_method", "checkpoint_format", "version"}) q.string_or(k, "");
  q.boolean_or("desc_act", false);
  for (const char* k : {"bits", "w_bit"}) q.integer_or(k, 0, 1, 16);
  for (const char* k : {"group_size", "q_group_size"}) q.integer_or(k, 0, -1, kMaxSize);
  if (auto groups = q.object_or_null("config_groups")) {
    for (const auto& [name, g] : groups->raw().items()) {
      const JsonObject grp(g, groups->path(name));
      if (!grp.has("targets")) continue;
      for (const auto& t : grp.array("targets")) json_string(t, grp.path("targets") + " element");
      grp.object("weights");
      if (auto ia = grp.object_or_null("input_activations")) {
        ia->string_or("type", "");
        ia->boolean_or("dynamic", false);
        ia->boolean_or("symmetric", true);
      }
    }
  }
}

RopeScaling parse_rope_scaling(const nlohmann::json& rs, const std::string& src) {
  RopeScaling r;
  if (rs.is_null()) return r;
  if (!rs.is_object()) fail("{}: rope_scaling must be an object or null", src);
  const JsonObject f(rs, src + ": rope_scaling");
  r.type = f.string_or("rope_type", f.string_or("type", ""));
  if (r.type == "default") r.type = "";
  static const char* known[] = {"", "llama3", "linear", "yarn", "dynamic"};
  if (std::find(std::begin(known), std::end(known), r.type) == std::end(known))
    fail("{}: rope_scaling type \"{}\" is not supported (llama3, linear, yarn, dynamic)", src, r.type);
  r.factor = f.number_or("factor", 1.0);
  r.low_freq_factor = f.number_or("low_freq_factor", 1.0);
  r.high_freq_factor = f.number_or("high_freq_factor", 4.0);
  r.original_max_position_embeddings = f.integer_or("original_max_position_embeddings", 0, 0, kMaxSize);
  r.beta_fast = f.number_or("beta_fast", 32.0);
  r.beta_slow = f.number_or("beta_slow", 1.0);
  r.mscale = f.number_or("mscale", 1.0);
  r.mscale_all_dim = f.number_or("mscale_all_dim", 0.0);
  if (r.type == "llama3" && r.original_max_position_embeddings <= 0)
    fail("{}: rope_scaling llama3 needs original_max_position_embeddings", src);
  if (!r.type.empty() && r.factor <= 0) fail("{}: rope_scaling factor must be positive", src);
  return r;
}

}  // namespace

ModelConfig parse_config(const nlohmann::json& j, const std::string& src) {
  const JsonObject f(j, src);
  ModelConfig c;
  c.raw = j;
  c.model_type = f.string_or("model_type", "");
  if (c.model_type.empty()) fail("{}: missing \"model_type\"", src);
  const std::string& t = c.model_type;
  if (t == "llama" || t == "smollm") c.arch = Arch::Llama;
  else if (t == "mistral") c.arch = Arch::Mistral;
  else if (t == "qwen2") c.arch = Arch::Qwen2;
  else if (t == "qwen3") c.arch = Arch::Qwen3;
  else if (t == "deepseek_v2") c.arch = Arch::DeepseekV2;
  else if (t == "deepseek_v3") c.arch = Arch::DeepseekV3;
  else if (t == "mixtral" || t == "qwen2_moe" || t == "qwen3_moe" || t == "deepseek" || t == "olmoe")
    fail("{}: model_type \"{}\" is a mixture-of-experts model, not supported yet", src, t);
  else
    fail("{}: unknown model_type \"{}\" (supported: llama, mistral, qwen2, qwen3, smollm, deepseek_v2, deepseek_v3)",
         src, t);

  for (const char* moe : {"num_local_experts", "num_experts"})
    if (f.integer_or(moe, 0) > 0) fail("{}: mixture-of-experts field \"{}\" is not supported yet", src, moe);

  c.vocab_size = positive(f, "vocab_size");
  c.hidden_size = positive(f, "hidden_size");
  c.intermediate_size = positive(f, "intermediate_size");
  c.num_hidden_layers = positive(f, "num_hidden_layers");
  c.num_attention_heads = positive(f, "num_attention_heads");
  c.num_key_value_heads = f.has("num_key_value_heads") ? positive(f, "num_key_value_heads") : c.num_attention_heads;
  c.max_position_embeddings = f.has("max_position_embeddings") ? positive(f, "max_position_embeddings") : 2048;
  c.rms_norm_eps = f.number_or("rms_norm_eps", 1e-6);
  // transformers ≥ 5 writes "rope_parameters" {rope_type, rope_theta, factor, ...}; 4.x "rope_theta" + "rope_scaling".
  static const nlohmann::json null_json;
  const auto& rp = f.has("rope_parameters") ? f.get("rope_parameters") : f.has("rope_scaling") ? f.get("rope_scaling") : null_json;
  c.rope_scaling = parse_rope_scaling(rp, src);
  c.rope_theta = f.number_or("rope_theta", rp.is_object() && rp.contains("rope_theta")
                                               ? JsonObject(rp, src).number_or("rope_theta", 10000.0)
                                               : 10000.0);
  c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", false);
  c.hidden_act = f.string_or("hidden_act", "silu");
  if (c.hidden_act != "silu" && c.hidden_act != "swish")
    fail("{}: hidden_act \"{}\" is not supported (silu)", src, c.hidden_act);
  c.bos_token_ids = ids(f, "bos_token_id");
  c.eos_token_ids = ids(f, "eos_token_id");
  c.torch_dtype = f.string_or("torch_dtype", f.string_or("dtype", ""));
  c.mlp_bias = f.boolean_or("mlp_bias", false);
  c.attention_bias = c.arch == Arch::Qwen2 ? true : f.boolean_or("attention_bias", false);
  c.qk_norm = c.arch == Arch::Qwen3;
  if ((c.arch == Arch::Mistral || c.arch == Arch::Qwen2) && f.has("sliding_window") &&
      f.boolean_or("use_sliding_window", c.arch == Arch::Mistral))
    c.sliding_window = f.integer("sliding_window", 1);
  if (f.has("quantization_config")) {
    check_quantization_config(f.get("quantization_config"), src);
    c.quantization_config = f.get("quantization_config");
  }
  if (f.has("sparsity_config")) c.sparsity_config = f.object("sparsity_config").raw();

  if (c.arch == Arch::DeepseekV2 || c.arch == Arch::DeepseekV3) {
    int64_t experts = f.integer_or("n_routed_experts", 0, 0, kMaxSize);
    int64_t first_dense = f.integer_or("first_k_dense_replace", 0, 0, kMaxSize);
    int64_t freq = f.integer_or("moe_layer_freq", 1, 0, kMaxSize);
    bool any_moe = false;
    for (int64_t l = 0; experts > 0 && l < c.num_hidden_layers; ++l)
      any_moe |= l >= first_dense && freq > 0 && l % freq == 0;
    if (any_moe)
      fail("{}: mixture-of-experts layers (n_routed_experts={}, first_k_dense_replace={}) are not supported yet; "
           "only fully dense DeepSeek models load", src, experts, first_dense);
    MlaConfig m;
    m.q_lora_rank = f.integer_or("q_lora_rank", 0, 0, kMaxSize);
    m.kv_lora_rank = positive(f, "kv_lora_rank");
    m.qk_nope_head_dim = positive(f, "qk_nope_head_dim");
    m.qk_rope_head_dim = positive(f, "qk_rope_head_dim");
    m.v_head_dim = positive(f, "v_head_dim");
    c.mla = m;
    c.head_dim = m.qk_nope_head_dim + m.qk_rope_head_dim;
    c.num_key_value_heads = c.num_attention_heads;
  } else {
    c.head_dim = f.has("head_dim") ? positive(f, "head_dim") : 0;
    if (c.head_dim == 0) {
      if (c.hidden_size % c.num_attention_heads)
        fail("{}: hidden_size {} is not divisible by num_attention_heads {} and head_dim is not given", src,
             c.hidden_size, c.num_attention_heads);
      c.head_dim = c.hidden_size / c.num_attention_heads;
    }
  }
  if (c.num_attention_heads % c.num_key_value_heads)
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", src, c.num_attention_heads,
         c.num_key_value_heads);
  for (int64_t id : c.bos_token_ids)
    if (id < 0 || id >= c.vocab_size) fail("{}: bos_token_id {} outside the vocabulary ({})", src, id, c.vocab_size);
  return c;
}

ModelConfig load_config(const std::filesystem::path& dir) {
  if (is_gguf_file(dir)) return gguf_config(*gguf::File::open(dir));
  if (!std::filesystem::exists(dir)) fail("model directory {} does not exist", dir.string());
  if (!std::filesystem::is_directory(dir)) fail("{} is not a directory", dir.string());
  auto path = dir / "config.json";
  if (!std::filesystem::exists(path)) fail("{}: no config.json in the model directory", path.string());
  return parse_config(read_json_file(path), path.string());
}

int64_t ModelConfig::kv_bytes_per_token(int64_t elem_bytes) const {
  if (mla) return num_hidden_layers * (mla->kv_lora_rank + mla->qk_rope_head_dim) * elem_bytes;
  return 2 * num_hidden_layers * num_key_value_heads * head_dim * elem_bytes;
}

}  // namespace llmopt::model
