#pragma once
// What `llmopt inspect` reports about a checkpoint: parameters by kind, dtypes and bytes, a per-layer
// table, quantization_config, and the KV-cache size M_KV = 2·L·H_kv·D_h·B·S·P (MLA: L·(r_kv + d_rope)·B·S·P).
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "lib/model/checkpoint.h"

namespace llmopt::model {

struct LayerRow {
  int layer;
  int64_t attention_params = 0, mlp_params = 0, norm_params = 0, bytes = 0;
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
  nlohmann::json shape;  // layers, hidden, heads, head_dim, vocab, rope, tie, MLA dims
  nlohmann::json to_json() const;
};

InspectReport inspect(const Checkpoint& ck, int64_t context, int64_t batch);

}  // namespace llmopt::model
