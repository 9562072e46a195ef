#include "lib/model/config.h"

#include <algorithm>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"

namespace llmopt::model {
namespace {

struct Reader {  // typed field access with errors that name the file and the field
  const nlohmann::json& j;
  const std::string& src;

  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }
  int64_t integer(const char* k) const {
    if (!has(k)) fail("{}: missing required field \"{}\"", src, k);
    return integer_or(k, 0);
  }
  int64_t integer_or(const char* k, int64_t dflt) const {
    if (!has(k)) return dflt;
    const auto& v = j[k];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && v.get<double>() == double(int64_t(v.get<double>()))) return int64_t(v.get<double>());
    fail("{}: field \"{}\" must be an integer, got {}", src, k, v.dump());
  }
  int64_t positive(const char* k) const {
    int64_t v = integer(k);
    if (v <= 0) fail("{}: field \"{}\" must be positive, got {}", src, k, v);
    return v;
  }
  double number_or(const char* k, double dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_number()) fail("{}: field \"{}\" must be a number, got {}", src, k, j[k].dump());
    return j[k].get<double>();
  }
  bool boolean_or(const char* k, bool dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_boolean()) fail("{}: field \"{}\" must be true or false, got {}", src, k, j[k].dump());
    return j[k].get<bool>();
  }
  std::string string_or(const char* k, std::string dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_string()) fail("{}: field \"{}\" must be a string, got {}", src, k, j[k].dump());
    return j[k].get<std::string>();
  }
  std::vector<int64_t> ids(const char* k) const {  // int or list of ints
    if (!has(k)) return {};
    const auto& v = j[k];
    if (v.is_number_integer()) return {v.get<int64_t>()};
    std::vector<int64_t> out;
    if (v.is_array()) {
      for (const auto& e : v) {
        if (!e.is_number_integer()) fail("{}: field \"{}\" must hold integers, got {}", src, k, v.dump());
        out.push_back(e.get<int64_t>());
      }
      return out;
    }
    fail("{}: field \"{}\" must be an integer or a list of integers, got {}", src, k, v.dump());
  }
};

RopeScaling parse_rope_scaling(const nlohmann::json& rs, const std::string& src) {
  RopeScaling r;
  if (rs.is_null()) return r;
  if (!rs.is_object()) fail("{}: rope_scaling must be an object or null", src);
  Reader f{rs, src};
  r.type = f.string_or("rope_type", f.string_or("type", ""));
  if (r.type == "default") r.type = "";
  static const char* known[] = {"", "llama3", "linear", "yarn", "dynamic"};
  if (std::find(std::begin(known), std::end(known), r.type) == std::end(known))
    fail("{}: rope_scaling type \"{}\" is not supported (llama3, linear, yarn, dynamic)", src, r.type);
  r.factor = f.number_or("factor", 1.0);
  r.low_freq_factor = f.number_or("low_freq_factor", 1.0);
  r.high_freq_factor = f.number_or("high_freq_factor", 4.0);
  r.original_max_position_embeddings = f.integer_or("original_max_position_embeddings", 0);
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
  if (!j.is_object()) fail("{}: expected a JSON object", src);
  Reader f{j, src};
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

  c.vocab_size = f.positive("vocab_size");
  c.hidden_size = f.positive("hidden_size");
  c.intermediate_size = f.positive("intermediate_size");
  c.num_hidden_layers = f.positive("num_hidden_layers");
  c.num_attention_heads = f.positive("num_attention_heads");
  c.num_key_value_heads = f.has("num_key_value_heads") ? f.positive("num_key_value_heads") : c.num_attention_heads;
  c.max_position_embeddings = f.integer_or("max_position_embeddings", 2048);
  c.rms_norm_eps = f.number_or("rms_norm_eps", 1e-6);
  // transformers ≥ 5 writes "rope_parameters" {rope_type, rope_theta, factor, ...}; 4.x "rope_theta" + "rope_scaling".
  const auto& rp = f.has("rope_parameters") ? j["rope_parameters"] : j.value("rope_scaling", nlohmann::json());
  c.rope_scaling = parse_rope_scaling(rp, src);
  c.rope_theta = f.number_or("rope_theta", rp.is_object() && rp.contains("rope_theta")
                                               ? Reader{rp, src}.number_or("rope_theta", 10000.0)
                                               : 10000.0);
  c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", false);
  c.hidden_act = f.string_or("hidden_act", "silu");
  if (c.hidden_act != "silu" && c.hidden_act != "swish")
    fail("{}: hidden_act \"{}\" is not supported (silu)", src, c.hidden_act);
  c.bos_token_ids = f.ids("bos_token_id");
  c.eos_token_ids = f.ids("eos_token_id");
  c.torch_dtype = f.string_or("torch_dtype", f.string_or("dtype", ""));
  c.mlp_bias = f.boolean_or("mlp_bias", false);
  c.attention_bias = c.arch == Arch::Qwen2 ? true : f.boolean_or("attention_bias", false);
  c.qk_norm = c.arch == Arch::Qwen3;
  if ((c.arch == Arch::Mistral || c.arch == Arch::Qwen2) && f.has("sliding_window") &&
      f.boolean_or("use_sliding_window", c.arch == Arch::Mistral))
    c.sliding_window = f.integer("sliding_window");
  if (j.contains("quantization_config")) c.quantization_config = j["quantization_config"];
  if (j.contains("sparsity_config")) c.sparsity_config = j["sparsity_config"];

  if (c.arch == Arch::DeepseekV2 || c.arch == Arch::DeepseekV3) {
    int64_t experts = f.integer_or("n_routed_experts", 0);
    int64_t first_dense = f.integer_or("first_k_dense_replace", 0);
    int64_t freq = f.integer_or("moe_layer_freq", 1);
    bool any_moe = false;
    for (int64_t l = 0; experts > 0 && l < c.num_hidden_layers; ++l)
      any_moe |= l >= first_dense && freq > 0 && l % freq == 0;
    if (any_moe)
      fail("{}: mixture-of-experts layers (n_routed_experts={}, first_k_dense_replace={}) are not supported yet; "
           "only fully dense DeepSeek models load", src, experts, first_dense);
    MlaConfig m;
    m.q_lora_rank = f.integer_or("q_lora_rank", 0);
    m.kv_lora_rank = f.positive("kv_lora_rank");
    m.qk_nope_head_dim = f.positive("qk_nope_head_dim");
    m.qk_rope_head_dim = f.positive("qk_rope_head_dim");
    m.v_head_dim = f.positive("v_head_dim");
    c.mla = m;
    c.head_dim = m.qk_nope_head_dim + m.qk_rope_head_dim;
    c.num_key_value_heads = c.num_attention_heads;
  } else {
    c.head_dim = f.has("head_dim") ? f.positive("head_dim") : 0;
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
  if (!std::filesystem::exists(dir)) fail("model directory {} does not exist", dir.string());
  if (!std::filesystem::is_directory(dir)) fail("{} is not a directory", dir.string());
  auto path = dir / "config.json";
  if (!std::filesystem::exists(path)) fail("{}: no config.json in the model directory", path.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON ({})", path.string(), e.what());
  }
  return parse_config(j, path.string());
}

int64_t ModelConfig::kv_bytes_per_token(int64_t elem_bytes) const {
  if (mla) return num_hidden_layers * (mla->kv_lora_rank + mla->qk_rope_head_dim) * elem_bytes;
  return 2 * num_hidden_layers * num_key_value_heads * head_dim * elem_bytes;
}

}  // namespace llmopt::model
