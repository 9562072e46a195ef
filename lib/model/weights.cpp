#include "lib/model/weights.h"

#include <fmt/format.h>

#include "lib/core/error.h"
#include "lib/model/arch.h"
#include "formats/gguf.h"
#include "lib/model/linear_quant.h"

namespace llmopt::model {
namespace {

DType dense_dtype(gguf::Type t) { return t == gguf::Type::F16 ? DType::F16 : t == gguf::Type::BF16 ? DType::BF16 : DType::F32; }

// Linear `prefix` of a GGUF checkpoint from the tensors of `from` (the tied lm_head reads model.embed_tokens):
// a float type as a view of the file (an owned un-permuted fp32 copy for q/k), block types in their blocks.
Linear gguf_linear(const Checkpoint& ck, const std::string& prefix, const std::string& from) {
  const GgufTensor t = gguf_tensor(ck, from + ".weight");
  if (!t.info) fail("{}: tensor {}.weight is missing", ck.dir.string(), from);
  if (t.info->shape.size() != 2) fail("{}: {} is not 2-D", ck.dir.string(), t.info->name);
  Linear l;
  if (!gguf::is_float_type(t.info->type)) {
    l.name = prefix, l.kind = Linear::Kind::Grouped, l.out = t.info->rows(), l.in = t.info->cols();
    l.quant = std::make_shared<const QuantWeight>(QuantWeight::from_gguf(*t.info, t.permuted_heads));
  } else if (t.permuted_heads) {
    l = Linear::owned_f32(prefix, gguf_tensor_f32(ck, from + ".weight"), t.info->rows(), t.info->cols());
  } else {
    l.name = prefix, l.out = t.info->rows(), l.in = t.info->cols();
    l.dtype = dense_dtype(t.info->type);
    l.data = t.info->data;
  }
  if (gguf_tensor(ck, from + ".bias").info) {
    l.bias = gguf_tensor_f32(ck, from + ".bias");
    if (int64_t(l.bias.size()) != l.out) fail("{}.bias: has {} elements, expected {}", prefix, l.bias.size(), l.out);
  }
  return l;
}

// The embedding table is a row lookup on a dense matrix: a block-quantized token_embd is dequantized for it
// (as the tied lm_head it still runs in its blocks).
Linear gguf_embedding(const Checkpoint& ck) {
  const GgufTensor t = gguf_tensor(ck, "model.embed_tokens.weight");
  if (t.info && !gguf::is_float_type(t.info->type))
    return Linear::owned_f32("model.embed_tokens", gguf_tensor_f32(ck, "model.embed_tokens.weight"), t.info->rows(),
                             t.info->cols());
  return gguf_linear(ck, "model.embed_tokens", "model.embed_tokens");
}

std::vector<float> vector_f32(const Checkpoint& ck, const std::string& name, int64_t numel) {
  if (!ck.gguf) return load_vector_f32(ck.tensors, name, numel);
  std::vector<float> v = gguf_tensor_f32(ck, name);
  if (int64_t(v.size()) != numel) fail("{}: has {} elements, expected {}", name, v.size(), numel);
  return v;
}

// A float ".weight" view, or (quantization_config present) the linear in its quantized layout.
Linear linear(const Checkpoint& ck, const std::string& prefix, bool quantizable = true) {
  if (ck.gguf) return gguf_linear(ck, prefix, prefix);
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

std::vector<Linear*> LayerWeights::linears() {
  if (!arch) fail("layer {}: weights without an architecture table", index);
  std::vector<Linear*> out;
  for (const TensorSpec& s : arch->layer_tensors)
    if (s.linear_slot && !(this->*(s.linear_slot)).name.empty()) out.push_back(&(this->*(s.linear_slot)));
  return out;
}

LayerWeights load_layer(const Checkpoint& ck, int layer) {
  const ModelConfig& c = ck.config;
  const ArchTable& t = arch_table(c);
  if (!t.runnable) fail("{}: the {} architecture is not supported by this forward pass yet", ck.dir.string(), t.family);
  const std::string p = layer_prefix(layer);
  LayerWeights w;
  w.index = layer;
  w.arch = &t;
  for (const TensorSpec& s : t.layer_tensors) {
    if (s.present && !s.present(c)) continue;
    const std::vector<int64_t> shape = s.shape(c);
    if (s.norm_slot) w.*(s.norm_slot) = vector_f32(ck, p + s.name + ".weight", shape[0]);
    if (!s.linear_slot) continue;
    Linear& l = w.*(s.linear_slot) = linear(ck, p + s.name);
    if (l.out != shape[0] || l.in != shape[1])
      fail("{}.weight: shape [{}, {}], expected [{}, {}]", l.name, l.out, l.in, shape[0], shape[1]);
  }
  return w;
}

ModelWeights load_weights(const Checkpoint& ck) {
  const ModelConfig& c = ck.config;
  if (c.is_mla()) fail("{}: multi-head latent attention (model_type {}) is not supported by this forward pass yet",
                       ck.dir.string(), c.model_type);
  if (c.hidden_act != "silu") fail("{}: hidden_act '{}' is not supported (silu only)", ck.dir.string(), c.hidden_act);
  ModelWeights m;
  m.embed = ck.gguf ? gguf_embedding(ck) : linear(ck, "model.embed_tokens", false);
  if (m.embed.out != c.vocab_size || m.embed.in != c.hidden_size)
    fail("model.embed_tokens.weight: shape [{}, {}], expected [{}, {}]", m.embed.out, m.embed.in, c.vocab_size, c.hidden_size);
  for (int l = 0; l < c.num_hidden_layers; ++l) m.layers.push_back(load_layer(ck, l));
  m.final_norm = vector_f32(ck, "model.norm.weight", c.hidden_size);
  if (ck.gguf && c.tie_word_embeddings) {
    m.lm_head = gguf_linear(ck, "lm_head", "model.embed_tokens");
  } else if (!c.tie_word_embeddings && (ck.gguf ? gguf_tensor(ck, "lm_head.weight").info != nullptr : ck.tensors.has("lm_head.weight"))) {
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
