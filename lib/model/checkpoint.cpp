#include "lib/model/checkpoint.h"

#include <fmt/ranges.h>

#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/model/arch.h"

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
  const int64_t H = c.hidden_size;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, H}, ParamKind::Embedding, -1, false});
  const ArchTable& t = arch_table(c);
  for (int l = 0; l < int(c.num_hidden_layers); ++l) {
    const std::string p = layer_prefix(l);
    for (const TensorSpec& s : t.layer_tensors) {
      if (s.present && !s.present(c)) continue;
      const ParamKind kind = s.norm ? ParamKind::Norm : s.block == Block::Mlp ? ParamKind::Mlp : ParamKind::Attention;
      const std::vector<int64_t> shape = s.shape(c);
      out.push_back({p + s.name + ".weight", shape, kind, l, s.linear});
      if (s.linear && s.bias && s.bias(c)) out.push_back({p + s.name + ".bias", {shape[0]}, kind, l, false});
    }
  }
  out.push_back({"model.norm.weight", {H}, ParamKind::Norm, -1, false});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, H}, ParamKind::LmHead, -1, false});
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

Checkpoint Checkpoint::load(const std::filesystem::path& dir, bool dense) {
  if (is_gguf_file(dir)) return load_gguf(dir, dense);
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
