#include "lib/model/arch.h"

#include <fmt/format.h>

#include <charconv>

#include "lib/core/error.h"
#include "lib/model/weights.h"

namespace llmopt::model {
namespace {

using Shape = std::vector<int64_t>;
using C = const ModelConfig&;

TensorSpec norm(std::string name, std::function<Shape(C)> shape, Block b, std::function<bool(C)> present = {},
                std::vector<float> LayerWeights::*slot = nullptr) {
  return {std::move(name), std::move(shape), false, {}, std::move(present), b, true, nullptr, slot};
}
TensorSpec lin(std::string name, std::function<Shape(C)> shape, Block b, std::function<bool(C)> bias = {},
               Linear LayerWeights::*slot = nullptr) {
  return {std::move(name), std::move(shape), true, std::move(bias), {}, b, false, slot, nullptr};
}

int64_t H(C c) { return c.hidden_size; }
int64_t Q(C c) { return c.num_attention_heads * c.head_dim; }
int64_t KV(C c) { return c.num_key_value_heads * c.head_dim; }

std::vector<TensorSpec> mlp_tensors() {
  auto mb = [](C c) { return c.mlp_bias; };
  using W = LayerWeights;
  return {norm("post_attention_layernorm", [](C c) { return Shape{H(c)}; }, Block::Mlp, {}, &W::post_attention_norm),
          lin("mlp.gate_proj", [](C c) { return Shape{c.intermediate_size, H(c)}; }, Block::Mlp, mb, &W::gate),
          lin("mlp.up_proj", [](C c) { return Shape{c.intermediate_size, H(c)}; }, Block::Mlp, mb, &W::up),
          lin("mlp.down_proj", [](C c) { return Shape{H(c), c.intermediate_size}; }, Block::Mlp, mb, &W::down)};
}

// Llama, Mistral, SmolLM, Qwen2 (q/k/v biases), Qwen3 (q/k norms): GQA attention + SwiGLU MLP.
ArchTable gqa_table(std::string family) {
  ArchTable t;
  t.family = std::move(family);
  auto qkv_bias = [](C c) { return c.attention_bias; };
  // Llama's attention_bias also covers o_proj; Qwen2 has q/k/v biases only.
  auto o_bias = [](C c) { return c.attention_bias && c.arch != Arch::Qwen2; };
  auto qk = [](C c) { return c.qk_norm; };
  using W = LayerWeights;
  const Block A = Block::Attention;
  t.layer_tensors = {norm("input_layernorm", [](C c) { return Shape{H(c)}; }, A, {}, &W::input_norm),
                     lin("self_attn.q_proj", [](C c) { return Shape{Q(c), H(c)}; }, A, qkv_bias, &W::q),
                     lin("self_attn.k_proj", [](C c) { return Shape{KV(c), H(c)}; }, A, qkv_bias, &W::k),
                     lin("self_attn.v_proj", [](C c) { return Shape{KV(c), H(c)}; }, A, qkv_bias, &W::v),
                     lin("self_attn.o_proj", [](C c) { return Shape{H(c), Q(c)}; }, A, o_bias, &W::o),
                     norm("self_attn.q_norm", [](C c) { return Shape{c.head_dim}; }, A, qk, &W::q_norm),
                     norm("self_attn.k_norm", [](C c) { return Shape{c.head_dim}; }, A, qk, &W::k_norm)};
  for (auto& s : mlp_tensors()) t.layer_tensors.push_back(std::move(s));
  using K = FoldTarget::Kind;
  t.groups = {{{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}, Block::Attention, {K::Norm, "input_layernorm"}},
              {{"self_attn.o_proj"}, Block::Attention, {K::LinearRows, "self_attn.v_proj"}},
              {{"mlp.gate_proj", "mlp.up_proj"}, Block::Mlp, {K::Norm, "post_attention_layernorm"}},
              {{"mlp.down_proj"}, Block::Mlp, {K::LinearRows, "mlp.up_proj"}}};
  return t;
}

// DeepSeek-V2/V3 multi-head latent attention (tensors only: not run or calibrated yet).
ArchTable mla_table() {
  ArchTable t;
  t.family = "deepseek";
  t.runnable = false;
  auto m = [](C c) -> const MlaConfig& { return *c.mla; };
  auto qk = [m](C c) { return m(c).qk_nope_head_dim + m(c).qk_rope_head_dim; };
  auto q_lora = [m](C c) { return m(c).q_lora_rank > 0; };
  auto no_q_lora = [m](C c) { return m(c).q_lora_rank == 0; };
  auto ab = [](C c) { return c.attention_bias; };
  TensorSpec qa = lin("self_attn.q_a_proj", [m](C c) { return Shape{m(c).q_lora_rank, H(c)}; }, Block::Attention, ab);
  qa.present = q_lora;
  TensorSpec qb = lin("self_attn.q_b_proj", [m, qk](C c) { return Shape{c.num_attention_heads * qk(c), m(c).q_lora_rank}; },
                      Block::Attention);
  qb.present = q_lora;
  TensorSpec qp = lin("self_attn.q_proj", [qk](C c) { return Shape{c.num_attention_heads * qk(c), H(c)}; }, Block::Attention);
  qp.present = no_q_lora;
  t.layer_tensors = {
      norm("input_layernorm", [](C c) { return Shape{H(c)}; }, Block::Attention),
      qa,
      norm("self_attn.q_a_layernorm", [m](C c) { return Shape{m(c).q_lora_rank}; }, Block::Attention, q_lora),
      qb,
      qp,
      lin("self_attn.kv_a_proj_with_mqa", [m](C c) { return Shape{m(c).kv_lora_rank + m(c).qk_rope_head_dim, H(c)}; },
          Block::Attention, ab),
      norm("self_attn.kv_a_layernorm", [m](C c) { return Shape{m(c).kv_lora_rank}; }, Block::Attention),
      lin("self_attn.kv_b_proj",
          [m](C c) { return Shape{c.num_attention_heads * (m(c).qk_nope_head_dim + m(c).v_head_dim), m(c).kv_lora_rank}; },
          Block::Attention),
      lin("self_attn.o_proj", [m](C c) { return Shape{H(c), c.num_attention_heads * m(c).v_head_dim}; }, Block::Attention, ab)};
  for (auto& s : mlp_tensors()) t.layer_tensors.push_back(std::move(s));
  for (auto& s : t.layer_tensors) s.linear_slot = nullptr, s.norm_slot = nullptr;  // no MLA forward yet
  return t;
}

}  // namespace

const TensorSpec* ArchTable::find(std::string_view local) const {
  for (const auto& s : layer_tensors)
    if (s.name == local) return &s;
  return nullptr;
}

const ArchTable& arch_table(const ModelConfig& c) {
  static const ArchTable llama = gqa_table("llama"), qwen2 = gqa_table("qwen2"), qwen3 = gqa_table("qwen3"),
                         deepseek = mla_table();
  if (c.is_mla()) return deepseek;
  switch (c.arch) {
    case Arch::Qwen2: return qwen2;
    case Arch::Qwen3: return qwen3;
    case Arch::Llama:
    case Arch::Mistral: return llama;
    case Arch::DeepseekV2:
    case Arch::DeepseekV3: return deepseek;
  }
  fail("model_type {}: no architecture table", c.model_type);
}

std::string layer_prefix(int layer) { return fmt::format("model.layers.{}.", layer); }

std::optional<LayerTensorName> parse_layer_tensor(std::string_view name) {
  constexpr std::string_view pre = "model.layers.";
  if (name.substr(0, pre.size()) != pre) return std::nullopt;
  name.remove_prefix(pre.size());
  int l = -1;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), l);
  if (ec != std::errc() || l < 0 || end == name.data() + name.size() || *end != '.') return std::nullopt;
  return LayerTensorName{l, std::string(end + 1, name.data() + name.size())};
}

int layer_of(std::string_view name) {
  const auto p = parse_layer_tensor(name);
  if (!p) fail("{}: not a decoder-layer tensor (model.layers.N....)", name);
  return p->layer;
}

Linear& linear_slot(const ArchTable& t, LayerWeights& w, std::string_view local) {
  const TensorSpec* s = t.find(local);
  if (!s || !s->linear_slot) fail("no linear {} in the {} forward pass", local, t.family);
  return w.*(s->linear_slot);
}

}  // namespace llmopt::model
