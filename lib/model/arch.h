#pragma once
// The architecture table: everything the code knows about a model family's tensors, in one place per
// family. It declares each decoder layer's tensors (name, shape as a function of the config, kind), the
// linears and the LayerWeights slot each loads into, the true-sequential groups (linears that read one
// input and are compressed together) with, per group, the block whose output scores a candidate and
// the AWQ/SmoothQuant fold target. Tensor names are built and parsed here and nowhere else.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/model/config.h"
#include "lib/model/linear.h"

namespace llmopt::model {

struct LayerWeights;  // weights.h

enum class Block { Attention, Mlp };

// One tensor of a decoder layer, relative to the layer prefix ("self_attn.q_proj").
struct TensorSpec {
  std::string name;  // without ".weight"
  std::function<std::vector<int64_t>(const ModelConfig&)> shape;
  bool linear = false;  // a matmul weight: name.weight [out, in] (+ name.bias when `bias` says so)
  std::function<bool(const ModelConfig&)> bias;  // linears only; null = never
  std::function<bool(const ModelConfig&)> present;  // null = always
  Block block = Block::Attention;
  bool norm = false;
  // where the forward pass keeps it (null: not run yet, e.g. MLA)
  Linear LayerWeights::*linear_slot = nullptr;
  std::vector<float> LayerWeights::*norm_slot = nullptr;
};

// Where AWQ/SmoothQuant fold diag(s)⁻¹ for a group: the norm that produces its input, or the output rows
// of the linear that does (o_proj's input is v's output, down_proj's input is scaled by up's output).
struct FoldTarget {
  enum class Kind { Norm, LinearRows } kind = Kind::Norm;
  std::string name;  // "input_layernorm", "self_attn.v_proj", ...
};

struct GroupSpec {
  std::vector<std::string> linears;  // share one input, in processing order
  Block block;                       // the block whose output scores a candidate
  FoldTarget fold;
};

struct ArchTable {
  std::string family;  // "llama" (Llama 2/3, Mistral, SmolLM), "qwen2", "qwen3", "deepseek" (MLA)
  std::vector<TensorSpec> layer_tensors;
  std::vector<GroupSpec> groups;  // true-sequential order; empty = not calibratable yet
  bool runnable = true;           // the forward pass implements it

  const TensorSpec* find(std::string_view local) const;
};

const ArchTable& arch_table(const ModelConfig& c);

// "model.layers.{l}." — the one spelling of a layer prefix.
std::string layer_prefix(int layer);
// "model.layers.3.self_attn.q_proj.weight" → {3, "self_attn.q_proj.weight"}; nullopt outside the layers.
struct LayerTensorName {
  int layer = -1;
  std::string local;
};
std::optional<LayerTensorName> parse_layer_tensor(std::string_view name);
// The layer of a linear prefix ("model.layers.3.mlp.up_proj" → 3), Error when it names none.
int layer_of(std::string_view name);
// The LayerWeights member a linear of the table loads into (Error for a name without one).
Linear& linear_slot(const ArchTable& t, LayerWeights& w, std::string_view local);

}  // namespace llmopt::model
