#pragma once
// A Hugging Face checkpoint directory: config.json + mmap'd safetensors, shapes checked against the config.
#include <filesystem>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "lib/model/config.h"

namespace llmopt::model {

enum class ParamKind { Embedding, Attention, Mlp, Norm, LmHead };
const char* param_kind_name(ParamKind k);

struct ExpectedTensor {
  std::string name;            // e.g. "model.layers.3.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // [out, in] for linears
  ParamKind kind;
  int layer = -1;              // -1 for embeddings, final norm, lm_head
  bool is_linear = false;      // a matmul weight (quantizable/prunable)
};

// Every tensor the config implies, in a stable order (embeddings, layer 0..L-1, final norm, lm_head).
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c);

struct Checkpoint {
  std::filesystem::path dir;
  ModelConfig config;
  st::TensorSet tensors;

  // Loads config.json and the safetensors; every expected tensor must exist with the expected shape
  // (Error names the tensor, its shape and the expected one). Missing directory/config is an Error.
  static Checkpoint load(const std::filesystem::path& dir);
};

}  // namespace llmopt::model
