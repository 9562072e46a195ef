#pragma once
// ModelConfig: the architecture read from a Hugging Face config.json (Llama family and DeepSeek MLA).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace llmopt::model {

enum class Arch { Llama, Mistral, Qwen2, Qwen3, DeepseekV2, DeepseekV3 };

struct RopeScaling {
  std::string type;  // "" (none), "llama3", "linear", "yarn", "dynamic"
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 0;          // llama3, yarn
  double beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0;  // yarn
};

struct MlaConfig {  // DeepSeek-V2/V3 multi-head latent attention
  int64_t q_lora_rank = 0;  // 0 = no q compression (q_proj directly)
  int64_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
};

struct ModelConfig {
  std::string model_type;  // as written in config.json
  Arch arch = Arch::Llama;
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (qwen2: always; llama: attention_bias flag)
  bool mlp_bias = false;
  bool qk_norm = false;         // qwen3: RMSNorm over each q/k head before RoPE
  std::string hidden_act = "silu";
  std::optional<int64_t> sliding_window;  // recorded (mistral/qwen2); full attention is used
  std::vector<int64_t> bos_token_ids, eos_token_ids;
  std::string torch_dtype;  // "float32", "bfloat16", "float16" or ""
  std::optional<MlaConfig> mla;
  nlohmann::json quantization_config;  // null if absent; kept verbatim
  nlohmann::json sparsity_config;      // null if absent (compressed-tensors style)
  nlohmann::json raw;                  // the whole config.json, for writing it back out

  bool is_mla() const { return mla.has_value(); }
  int64_t kv_heads() const { return num_key_value_heads; }
  // Bytes of KV cache per token for element size P: 2·L·H_kv·D_h·P, or MLA: L·(kv_lora_rank + rope_dim)·P.
  int64_t kv_bytes_per_token(int64_t elem_bytes) const;
  int64_t bos_id() const { return bos_token_ids.empty() ? -1 : bos_token_ids.front(); }
};

// Parses and validates; Error names the file and the field (unknown model_type, MoE "not supported yet",
// missing or non-positive sizes, heads not dividing hidden, ...).
ModelConfig parse_config(const nlohmann::json& j, const std::string& source_name = "config.json");
ModelConfig load_config(const std::filesystem::path& model_dir);  // or a .gguf file (checkpoint.h)

}  // namespace llmopt::model
