#pragma once
// A checkpoint: a Hugging Face directory (config.json + mmap'd safetensors) or a llama.cpp .gguf file; shapes
// are checked against the config either way.
//
// A .gguf file (checkpoint_gguf.cpp): the config comes from its metadata, turned into the config.json a Hugging
// Face export would carry (gguf_config_json) and parsed by the same parse_config. `gguf` keeps the mapped file:
// the forward pass (load_weights) takes its linears from there, block-quantized ones in their blocks through the
// one quantized-weight type (QuantWeight::from_gguf), with llama.cpp's q/k row permutation undone row by row.
// Everything else reads `tensors`, as for a safetensors checkpoint: for a .gguf file it is an in-memory set of
// every tensor dequantized to fp32 under its HF name, q/k rows un-permuted, i.e. the dense model the file
// stores. That keeps the compression commands (quantize, prune, convert: dense fp32 through ck.tensors)
// unchanged for GGUF input, at the price of the fp32 copy, which is why Model::load asks for it not to be
// made (`dense` false: `tensors` then stays empty).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "formats/gguf_read.h"
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
  std::filesystem::path dir;  // the model directory, or the .gguf file
  ModelConfig config;
  st::TensorSet tensors;
  std::shared_ptr<const gguf::File> gguf;  // set when loaded from a .gguf file

  // Loads config.json and the safetensors, or a .gguf file (see the top of this file; `dense`: build the fp32
  // `tensors` of a .gguf); every expected tensor must exist with the expected shape (Error names the tensor,
  // its shape and the expected one). Missing directory/config is an Error.
  static Checkpoint load(const std::filesystem::path& path, bool dense = true);
  static Checkpoint load_gguf(const std::filesystem::path& file, bool dense = true);
};

// A regular file named *.gguf.
bool is_gguf_file(const std::filesystem::path& p);

// The config.json of a GGUF file's model from its metadata (general.architecture llama, qwen2 or qwen3;
// <arch>.block_count, embedding_length, ...); Error naming the file and key when one is missing or wrong.
nlohmann::json gguf_config_json(const gguf::File& f);
ModelConfig gguf_config(const gguf::File& f);  // that, parsed by parse_config

// The GGUF tensor behind HF tensor `hf_name` of a GGUF checkpoint (nullptr if absent), and for q/k weights
// and biases of the llama architecture the head count their rows were permuted with (0: stored in HF order).
struct GgufTensor {
  const gguf::TensorInfo* info = nullptr;
  int permuted_heads = 0;
};
GgufTensor gguf_tensor(const Checkpoint& ck, const std::string& hf_name);
// That tensor dequantized to fp32 in HF row order (Error naming it if absent).
std::vector<float> gguf_tensor_f32(const Checkpoint& ck, const std::string& hf_name);

}  // namespace llmopt::model
