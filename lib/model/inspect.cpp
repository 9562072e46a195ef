#include "lib/model/inspect.h"

#include <cmath>
#include <cstring>

#include "formats/gguf.h"
#include "lib/model/arch.h"

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
// Zeros of a float tensor (±0), read in its stored dtype; 2:4 conformance when the last dim allows it.
LinearSparsity count_zeros(const std::string& name, const st::TensorView& v) {
  LinearSparsity s{name, v.shape(), 0, v.numel(), false};
  const size_t es = dtype_size(v.dtype());
  auto is_zero = [&](int64_t i) {
    if (es == 4) {
      float x;
      std::memcpy(&x, v.data + i * 4, 4);
      return x == 0.0f;
    }
    uint16_t h;
    std::memcpy(&h, v.data + i * 2, 2);
    return (h & 0x7fff) == 0;  // f16 and bf16: exponent and mantissa zero
  };
  const int64_t cols = s.shape.empty() ? 0 : s.shape.back();
  s.nm_2_4 = cols > 0 && cols % 4 == 0;
  for (int64_t i = 0; i < s.numel; i += 4) {
    int z = 0;
    const int64_t k = std::min<int64_t>(4, s.numel - i);
    for (int64_t j = 0; j < k; ++j) z += is_zero(i + j);
    s.zeros += z;
    if (k == 4 && z < 2) s.nm_2_4 = false;
  }
  return s;
}

// Every stored tensor under its HF name with its storage type: the safetensors dtype, or the GGUF type.
std::vector<StoredTensor> stored_tensors(const Checkpoint& ck) {
  std::vector<StoredTensor> out;
  if (ck.gguf) {
    for (const auto& t : ck.gguf->tensors()) {
      const std::string hf = gguf::hf_tensor_name(t.name);
      out.push_back({hf, t.name, gguf::type_name(t.type), t.shape, t.numel(), int64_t(t.nbytes), ck.tensors.has(hf)});
    }
    return out;
  }
  for (const auto& name : ck.tensors.names()) {
    const auto& info = ck.tensors.info(name);
    const bool fl = dtype_is_float(info.dtype) && (info.dtype == DType::F32 || dtype_size(info.dtype) == 2);
    out.push_back({name, "", std::string(dtype_name(info.dtype)), info.shape, info.numel(), int64_t(info.nbytes()), fl});
  }
  return out;
}
}  // namespace

InspectReport inspect(const Checkpoint& ck, int64_t context, int64_t batch) {
  const ModelConfig& c = ck.config;
  InspectReport r;
  r.model_type = c.model_type;
  r.architecture = arch_name(c);
  r.quantization_config = c.quantization_config;
  r.sparsity_config = c.sparsity_config;
  if (r.sparsity_config.is_null() && c.quantization_config.is_object() &&
      c.quantization_config.contains("sparsity_config") && !c.quantization_config["sparsity_config"].empty())
    r.sparsity_config = c.quantization_config["sparsity_config"];
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

  for (const StoredTensor& st : stored_tensors(ck)) {
    const std::string& name = st.name;
    const int64_t n = st.numel, bytes = st.bytes;
    r.parameters += n;
    r.total_bytes += bytes;
    r.params_by_dtype[st.dtype] += n;
    r.bytes_by_dtype[st.dtype] += bytes;
    if (ck.gguf) r.gguf_tensors.push_back(st);
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
      if (const auto p = parse_layer_tensor(name); p && p->layer < int(c.num_hidden_layers)) layer = p->layer;
    }
    r.params_by_kind[param_kind_name(kind)] += n;
    if (st.zeros_countable) {  // a float tensor (for a .gguf: its dequantized fp32 values)
      const auto v = ck.tensors.get(name);
      LinearSparsity s = count_zeros(name, v);
      r.zeros += s.zeros;
      r.float_params += s.numel;
      if (it != expected.end() && it->second->is_linear) {
        r.linear_zeros += s.zeros;
        r.linear_numel += s.numel;
        r.linear_sparsity.push_back(std::move(s));
      }
    }
    if (layer >= 0) {
      auto& row = r.layers[size_t(layer)];
      (kind == ParamKind::Mlp ? row.mlp_params : kind == ParamKind::Norm ? row.norm_params : row.attention_params) += n;
      row.bytes += bytes;
    }
  }
  for (const char* k : {"embeddings", "attention", "mlp", "norms", "lm_head"}) r.params_by_kind.try_emplace(k, 0);

  r.kv_elem_bytes = model_elem_bytes(ck);
  for (const auto& e : exp) {  // how each linear is stored, against dense weights of the model's dtype
    if (!e.is_linear) continue;
    const std::string prefix = e.name.substr(0, e.name.size() - 7);
    LinearStorage s;
    if (ck.gguf) {
      const gguf::TensorInfo& t = *gguf_tensor(ck, e.name).info;
      s = {prefix, gguf::is_float_type(t.type) ? gguf::type_name(t.type) : std::string("gguf ") + gguf::type_name(t.type),
           t.rows(), t.cols(), int64_t(t.nbytes)};
      r.any_quantized_linear = r.any_quantized_linear || !gguf::is_float_type(t.type);
    } else {
      s = describe_linear(ck.tensors, c.quantization_config, prefix);
      r.any_quantized_linear = r.any_quantized_linear || !ck.tensors.has(e.name) ||
                               !dtype_is_float(ck.tensors.info(e.name).dtype);
    }
    r.linear_bytes += s.bytes;
    r.linear_dense_bytes += s.rows * s.cols * r.kv_elem_bytes;
    r.linear_storage.push_back(std::move(s));
  }
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
  nlohmann::json lin = nlohmann::json::array();
  for (const auto& s : linear_sparsity)
    lin.push_back({{"name", s.name}, {"shape", s.shape}, {"zeros", s.zeros}, {"sparsity", s.sparsity()}, {"nm_2_4", s.nm_2_4}});
  nlohmann::json ls = nlohmann::json::array();
  for (const auto& s : linear_storage)
    ls.push_back({{"name", s.name}, {"format", s.format}, {"shape", {s.rows, s.cols}}, {"bytes", s.bytes},
                  {"dense_bytes", s.rows * s.cols * kv_elem_bytes}, {"bytes_saved", s.rows * s.cols * kv_elem_bytes - s.bytes}});
  j["linear_storage"] = {{"linears", ls}, {"bytes", linear_bytes}, {"dense_bytes", linear_dense_bytes},
                         {"bytes_saved", linear_dense_bytes - linear_bytes}};
  if (!gguf_tensors.empty()) {
    nlohmann::json gt = nlohmann::json::array();
    for (const auto& t : gguf_tensors)
      gt.push_back({{"name", t.gguf_name}, {"hf_name", t.name}, {"type", t.dtype}, {"shape", t.shape}, {"bytes", t.bytes}});
    j["gguf_tensors"] = gt;
  }
  j["sparsity"] = {{"linears", lin},
                   {"linear_sparsity", linear_numel ? double(linear_zeros) / double(linear_numel) : 0.0},
                   {"global_sparsity", float_params ? double(zeros) / double(float_params) : 0.0},
                   {"sparsity_config", sparsity_config}};
  return j;
}

}  // namespace llmopt::model
