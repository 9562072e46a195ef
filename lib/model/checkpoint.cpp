#include "lib/model/checkpoint.h"

#include <fmt/ranges.h>

#include "lib/core/error.h"
#include "lib/core/log.h"

namespace llmopt::model {

const char* param_kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::Embedding: return "embeddings";
    case ParamKind::Attention: return "attention";
    case ParamKind::Mlp: return "mlp";
    case ParamKind::Norm: return "norms";
    case ParamKind::LmHead: return "lm_head";
  }
  return "?";
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  std::vector<ExpectedTensor> out;
  const int64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const int64_t Hq = c.num_attention_heads, Hkv = c.num_key_value_heads;
  auto add = [&](std::string name, std::vector<int64_t> shape, ParamKind kind, int layer, bool linear) {
    out.push_back({std::move(name), std::move(shape), kind, layer, linear});
  };
  auto linear = [&](const std::string& p, int64_t rows, int64_t cols, ParamKind kind, int l, bool bias) {
    add(p + ".weight", {rows, cols}, kind, l, true);
    if (bias) add(p + ".bias", {rows}, kind, l, false);
  };

  add("model.embed_tokens.weight", {c.vocab_size, H}, ParamKind::Embedding, -1, false);
  for (int l = 0; l < int(c.num_hidden_layers); ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    add(p + "input_layernorm.weight", {H}, ParamKind::Norm, l, false);
    if (c.mla) {
      const auto& m = *c.mla;
      const int64_t qk = m.qk_nope_head_dim + m.qk_rope_head_dim;
      if (m.q_lora_rank > 0) {
        linear(p + "self_attn.q_a_proj", m.q_lora_rank, H, ParamKind::Attention, l, c.attention_bias);
        add(p + "self_attn.q_a_layernorm.weight", {m.q_lora_rank}, ParamKind::Norm, l, false);
        linear(p + "self_attn.q_b_proj", Hq * qk, m.q_lora_rank, ParamKind::Attention, l, false);
      } else {
        linear(p + "self_attn.q_proj", Hq * qk, H, ParamKind::Attention, l, false);
      }
      linear(p + "self_attn.kv_a_proj_with_mqa", m.kv_lora_rank + m.qk_rope_head_dim, H, ParamKind::Attention, l,
             c.attention_bias);
      add(p + "self_attn.kv_a_layernorm.weight", {m.kv_lora_rank}, ParamKind::Norm, l, false);
      linear(p + "self_attn.kv_b_proj", Hq * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank,
             ParamKind::Attention, l, false);
      linear(p + "self_attn.o_proj", H, Hq * m.v_head_dim, ParamKind::Attention, l, c.attention_bias);
    } else {
      linear(p + "self_attn.q_proj", Hq * D, H, ParamKind::Attention, l, c.attention_bias);
      linear(p + "self_attn.k_proj", Hkv * D, H, ParamKind::Attention, l, c.attention_bias);
      linear(p + "self_attn.v_proj", Hkv * D, H, ParamKind::Attention, l, c.attention_bias);
      // Llama's attention_bias also covers o_proj; Qwen2 has q/k/v biases only.
      linear(p + "self_attn.o_proj", H, Hq * D, ParamKind::Attention, l,
             c.attention_bias && c.arch != Arch::Qwen2);
      if (c.qk_norm) {
        add(p + "self_attn.q_norm.weight", {D}, ParamKind::Norm, l, false);
        add(p + "self_attn.k_norm.weight", {D}, ParamKind::Norm, l, false);
      }
    }
    add(p + "post_attention_layernorm.weight", {H}, ParamKind::Norm, l, false);
    linear(p + "mlp.gate_proj", I, H, ParamKind::Mlp, l, c.mlp_bias);
    linear(p + "mlp.up_proj", I, H, ParamKind::Mlp, l, c.mlp_bias);
    linear(p + "mlp.down_proj", H, I, ParamKind::Mlp, l, c.mlp_bias);
  }
  add("model.norm.weight", {H}, ParamKind::Norm, -1, false);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, H}, ParamKind::LmHead, -1, false);
  return out;
}

namespace {
// A linear stored in a packed quantized layout (GPTQ/AWQ qweight, compressed-tensors weight_packed)
// has no ".weight"; its shapes are checked by the loader of that format.
bool has_packed_form(const st::TensorSet& ts, const std::string& weight_name) {
  const std::string prefix = weight_name.substr(0, weight_name.size() - std::string(".weight").size());
  return ts.has(prefix + ".qweight") || ts.has(prefix + ".weight_packed");
}
}  // namespace

Checkpoint Checkpoint::load(const std::filesystem::path& dir) {
  Checkpoint ck;
  ck.dir = dir;
  ck.config = load_config(dir);
  ck.tensors = st::TensorSet::open_dir(dir);
  const bool quantized = !ck.config.quantization_config.is_null();
  for (const auto& e : expected_tensors(ck.config)) {
    if (!ck.tensors.has(e.name)) {
      if (e.is_linear && quantized && has_packed_form(ck.tensors, e.name)) continue;
      fail("{}: tensor {} is missing (expected shape [{}] from config.json)", dir.string(), e.name,
           fmt::join(e.shape, ", "));
    }
    const auto& info = ck.tensors.info(e.name);
    if (info.shape != e.shape)
      fail("{}: tensor {} has shape [{}] but config.json implies [{}]", dir.string(), e.name,
           fmt::join(info.shape, ", "), fmt::join(e.shape, ", "));
    if (!dtype_is_float(info.dtype) && !quantized)
      fail("{}: tensor {} has dtype {}, expected a float type", dir.string(), e.name, dtype_name(info.dtype));
  }
  return ck;
}

}  // namespace llmopt::model
