#pragma once
// What `llmopt inspect` reports about a checkpoint: parameters by kind, dtypes and bytes, a per-layer
// table, quantization_config, and the KV-cache size M_KV = 2·L·H_kv·D_h·B·S·P (MLA: L·(r_kv + d_rope)·B·S·P).
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "lib/model/checkpoint.h"
#include "lib/model/linear_quant.h"

namespace llmopt::model {

struct LayerRow {
  int layer;
  int64_t attention_params = 0, mlp_params = 0, norm_params = 0, bytes = 0;
};

// Measured zeros of one linear weight (a float ".weight" tensor; packed quantized linears are not counted).
struct LinearSparsity {
  std::string name;  // "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;
  int64_t zeros = 0, numel = 0;
  bool nm_2_4 = false;  // every 4 consecutive inputs of a row hold at most 2 nonzeros
  double sparsity() const { return numel ? double(zeros) / double(numel) : 0.0; }
};

// One stored tensor: its HF name, the GGUF name (.gguf checkpoints), its storage type (safetensors dtype or GGUF
// type), shape, element count and bytes; zeros_countable: its values are float (counted for sparsity).
struct StoredTensor {
  std::string name, gguf_name, dtype;
  std::vector<int64_t> shape;
  int64_t numel = 0, bytes = 0;
  bool zeros_countable = false;
};

struct InspectReport {
  std::string model_type, architecture;
  int64_t parameters = 0, total_bytes = 0;
  std::map<std::string, int64_t> params_by_kind;  // embeddings, attention, mlp, norms, lm_head
  std::map<std::string, int64_t> params_by_dtype, bytes_by_dtype;
  std::vector<LayerRow> layers;
  int64_t kv_elem_bytes = 0;  // P: the checkpoint's dtype size
  int64_t kv_bytes_per_token = 0;
  int64_t context = 0, batch = 0, kv_bytes_total = 0;
  nlohmann::json quantization_config;
  // sparsity: per linear, over the linears, and over every float parameter (compressed-tensors'
  // global_sparsity); sparsity_config as config.json declares it (top level or in quantization_config)
  std::vector<LinearSparsity> linear_sparsity;
  int64_t linear_zeros = 0, linear_numel = 0, zeros = 0, float_params = 0;
  nlohmann::json sparsity_config;
  // storage of every linear (format, bytes), and bytes saved against dense weights of P bytes (kv_elem_bytes)
  std::vector<LinearStorage> linear_storage;
  int64_t linear_bytes = 0, linear_dense_bytes = 0;
  bool any_quantized_linear = false;
  std::vector<StoredTensor> gguf_tensors;  // a .gguf checkpoint: every tensor in file order
  nlohmann::json shape;  // layers, hidden, heads, head_dim, vocab, rope, tie, MLA dims
  nlohmann::json to_json() const;
};

InspectReport inspect(const Checkpoint& ck, int64_t context, int64_t batch);

}  // namespace llmopt::model
