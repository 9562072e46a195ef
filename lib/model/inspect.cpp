#include "lib/model/inspect.h"

#include <cstdio>

namespace llmopt::model {
namespace {
const char* arch_name(const ModelConfig& c) {
  switch (c.arch) {
    case Arch::Llama: return "llama";
    case Arch::Mistral: return "mistral";
    case Arch::Qwen2: return "qwen2";
    case Arch::Qwen3: return "qwen3";
    case Arch::DeepseekV2: return "deepseek_v2";
    case Arch::DeepseekV3: return "deepseek_v3";
  }
  return "?";
}

// P for the KV cache: the dtype the model computes in, from config.json or else the embedding's storage.
int64_t model_elem_bytes(const Checkpoint& ck) {
  const std::string& t = ck.config.torch_dtype;
  if (t == "float32") return 4;
  if (t == "bfloat16" || t == "float16") return 2;
  return int64_t(dtype_size(ck.tensors.info("model.embed_tokens.weight").dtype));
}
}  // namespace

InspectReport inspect(const Checkpoint& ck, int64_t context, int64_t batch) {
  const ModelConfig& c = ck.config;
  InspectReport r;
  r.model_type = c.model_type;
  r.architecture = arch_name(c);
  r.quantization_config = c.quantization_config;
  r.shape = {{"num_hidden_layers", c.num_hidden_layers}, {"hidden_size", c.hidden_size},
             {"intermediate_size", c.intermediate_size}, {"num_attention_heads", c.num_attention_heads},
             {"num_key_value_heads", c.num_key_value_heads}, {"head_dim", c.head_dim},
             {"vocab_size", c.vocab_size}, {"max_position_embeddings", c.max_position_embeddings},
             {"rope_theta", c.rope_theta}, {"rope_scaling", c.rope_scaling.type.empty() ? "none" : c.rope_scaling.type},
             {"tie_word_embeddings", c.tie_word_embeddings}, {"torch_dtype", c.torch_dtype}};
  if (c.mla)
    r.shape["mla"] = {{"q_lora_rank", c.mla->q_lora_rank}, {"kv_lora_rank", c.mla->kv_lora_rank},
                      {"qk_nope_head_dim", c.mla->qk_nope_head_dim}, {"qk_rope_head_dim", c.mla->qk_rope_head_dim},
                      {"v_head_dim", c.mla->v_head_dim}};
  r.layers.resize(size_t(c.num_hidden_layers));
  for (int l = 0; l < int(c.num_hidden_layers); ++l) r.layers[size_t(l)].layer = l;

  std::map<std::string, const ExpectedTensor*> expected;
  auto exp = expected_tensors(c);
  for (const auto& e : exp) expected[e.name] = &e;

  for (const auto& name : ck.tensors.names()) {
    const auto& info = ck.tensors.info(name);
    const int64_t n = info.numel(), bytes = int64_t(info.nbytes());
    r.parameters += n;
    r.total_bytes += bytes;
    r.params_by_dtype[std::string(dtype_name(info.dtype))] += n;
    r.bytes_by_dtype[std::string(dtype_name(info.dtype))] += bytes;
    auto it = expected.find(name);
    ParamKind kind = ParamKind::Attention;
    int layer = -1;
    if (it != expected.end()) {
      kind = it->second->kind;
      layer = it->second->layer;
    } else {  // packed/extra tensors: classify by name
      if (name.find("embed_tokens") != std::string::npos) kind = ParamKind::Embedding;
      else if (name.rfind("lm_head", 0) == 0) kind = ParamKind::LmHead;
      else if (name.find("norm") != std::string::npos) kind = ParamKind::Norm;
      else if (name.find(".mlp.") != std::string::npos) kind = ParamKind::Mlp;
      if (int l; std::sscanf(name.c_str(), "model.layers.%d.", &l) == 1 && l >= 0 && l < int(c.num_hidden_layers))
        layer = l;
    }
    r.params_by_kind[param_kind_name(kind)] += n;
    if (layer >= 0) {
      auto& row = r.layers[size_t(layer)];
      (kind == ParamKind::Mlp ? row.mlp_params : kind == ParamKind::Norm ? row.norm_params : row.attention_params) += n;
      row.bytes += bytes;
    }
  }
  for (const char* k : {"embeddings", "attention", "mlp", "norms", "lm_head"}) r.params_by_kind.try_emplace(k, 0);

  r.kv_elem_bytes = model_elem_bytes(ck);
  r.kv_bytes_per_token = c.kv_bytes_per_token(r.kv_elem_bytes);
  r.context = context > 0 ? context : c.max_position_embeddings;
  r.batch = batch;
  r.kv_bytes_total = r.kv_bytes_per_token * r.context * r.batch;
  return r;
}

nlohmann::json InspectReport::to_json() const {
  nlohmann::json j;
  j["model_type"] = model_type;
  j["architecture"] = architecture;
  j["config"] = shape;
  j["parameters"] = parameters;
  j["bytes"] = total_bytes;
  j["parameters_by_kind"] = params_by_kind;
  j["parameters_by_dtype"] = params_by_dtype;
  j["bytes_by_dtype"] = bytes_by_dtype;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& l : layers)
    rows.push_back({{"layer", l.layer}, {"attention", l.attention_params}, {"mlp", l.mlp_params},
                    {"norms", l.norm_params}, {"bytes", l.bytes}});
  j["layers"] = rows;
  j["kv_elem_bytes"] = kv_elem_bytes;
  j["kv_bytes_per_token"] = kv_bytes_per_token;
  j["kv_cache"] = {{"context", context}, {"batch", batch}, {"bytes", kv_bytes_total}};
  j["quantization_config"] = quantization_config;
  return j;
}

}  // namespace llmopt::model
