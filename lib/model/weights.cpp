#include "lib/model/weights.h"

#include <fmt/format.h>

#include "lib/core/error.h"
#include "lib/model/linear_quant.h"

namespace llmopt::model {
namespace {

// A float ".weight" view, or (quantization_config present) the linear in its quantized layout.
Linear linear(const Checkpoint& ck, const std::string& prefix, bool quantizable = true) {
  const st::TensorSet& ts = ck.tensors;
  if (quantizable && !ck.config.quantization_config.is_null())
    if (auto q = load_quantized_linear(ts, ck.config.quantization_config, prefix)) return std::move(*q);
  const st::TensorView w = ts.get(prefix + ".weight");
  if (ts.has(prefix + ".bias")) {
    const st::TensorView b = ts.get(prefix + ".bias");
    return Linear::view(prefix, w, &b);
  }
  return Linear::view(prefix, w);
}

}  // namespace

std::vector<float> load_vector_f32(const st::TensorSet& ts, const std::string& name, int64_t numel) {
  const st::TensorView t = ts.get(name);
  if (t.numel() != numel) fail("{}: has {} elements, expected {}", name, t.numel(), numel);
  return t.to_f32();
}

LayerWeights load_layer(const Checkpoint& ck, int layer) {
  const ModelConfig& c = ck.config;
  const st::TensorSet& ts = ck.tensors;
  const std::string p = fmt::format("model.layers.{}.", layer);
  LayerWeights w;
  w.index = layer;
  w.input_norm = load_vector_f32(ts, p + "input_layernorm.weight", c.hidden_size);
  w.post_attention_norm = load_vector_f32(ts, p + "post_attention_layernorm.weight", c.hidden_size);
  if (c.qk_norm) {
    w.q_norm = load_vector_f32(ts, p + "self_attn.q_norm.weight", c.head_dim);
    w.k_norm = load_vector_f32(ts, p + "self_attn.k_norm.weight", c.head_dim);
  }
  w.q = linear(ck, p + "self_attn.q_proj");
  w.k = linear(ck, p + "self_attn.k_proj");
  w.v = linear(ck, p + "self_attn.v_proj");
  w.o = linear(ck, p + "self_attn.o_proj");
  w.gate = linear(ck, p + "mlp.gate_proj");
  w.up = linear(ck, p + "mlp.up_proj");
  w.down = linear(ck, p + "mlp.down_proj");
  const int64_t H = c.hidden_size, qd = c.num_attention_heads * c.head_dim, kvd = c.num_key_value_heads * c.head_dim;
  auto check = [&](const Linear& l, int64_t out, int64_t in) {
    if (l.out != out || l.in != in) fail("{}.weight: shape [{}, {}], expected [{}, {}]", l.name, l.out, l.in, out, in);
  };
  check(w.q, qd, H);
  check(w.k, kvd, H);
  check(w.v, kvd, H);
  check(w.o, H, qd);
  check(w.gate, c.intermediate_size, H);
  check(w.up, c.intermediate_size, H);
  check(w.down, H, c.intermediate_size);
  return w;
}

ModelWeights load_weights(const Checkpoint& ck) {
  const ModelConfig& c = ck.config;
  if (c.is_mla()) fail("{}: multi-head latent attention (model_type {}) is not supported by this forward pass yet",
                       ck.dir.string(), c.model_type);
  if (c.hidden_act != "silu") fail("{}: hidden_act '{}' is not supported (silu only)", ck.dir.string(), c.hidden_act);
  ModelWeights m;
  m.embed = linear(ck, "model.embed_tokens", false);
  if (m.embed.out != c.vocab_size || m.embed.in != c.hidden_size)
    fail("model.embed_tokens.weight: shape [{}, {}], expected [{}, {}]", m.embed.out, m.embed.in, c.vocab_size, c.hidden_size);
  for (int l = 0; l < c.num_hidden_layers; ++l) m.layers.push_back(load_layer(ck, l));
  m.final_norm = load_vector_f32(ck.tensors, "model.norm.weight", c.hidden_size);
  if (!c.tie_word_embeddings && ck.tensors.has("lm_head.weight")) {
    m.lm_head = linear(ck, "lm_head");
    if (m.lm_head.out != c.vocab_size || m.lm_head.in != c.hidden_size)
      fail("lm_head.weight: shape [{}, {}], expected [{}, {}]", m.lm_head.out, m.lm_head.in, c.vocab_size, c.hidden_size);
  } else {
    if (!c.tie_word_embeddings) fail("{}: lm_head.weight is missing and tie_word_embeddings is false", ck.dir.string());
    m.lm_head = m.embed;
    m.lm_head.name = "lm_head";
  }
  return m;
}

}  // namespace llmopt::model
