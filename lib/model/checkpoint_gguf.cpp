// Checkpoints from llama.cpp .gguf files (see checkpoint.h): metadata -> config.json, GGUF tensor names -> HF
// names through the one table in formats/gguf.h, q/k rows un-permuted.
#include <fmt/ranges.h>

#include <cstring>

#include "formats/gguf.h"
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/model/checkpoint.h"

namespace llmopt::model {
namespace fs = std::filesystem;
using nlohmann::json;

bool is_gguf_file(const fs::path& p) {
  std::error_code ec;
  return p.extension() == ".gguf" && fs::is_regular_file(p, ec);
}

json gguf_config_json(const gguf::File& f) {
  const std::string path = f.path().string();
  const std::string arch = f.string("general.architecture");
  static const std::pair<const char*, const char*> known[] = {
      {"llama", "LlamaForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"}, {"qwen3", "Qwen3ForCausalLM"}};
  const char* cls = nullptr;
  for (auto& [a, c] : known)
    if (arch == a) cls = c;
  if (!cls) fail("{}: GGUF architecture '{}' is not supported (llama, qwen2, qwen3)", path, arch);
  const std::string A = arch + ".";
  json j;
  j["architectures"] = {cls};
  j["model_type"] = arch;
  j["num_hidden_layers"] = f.integer(A + "block_count");
  j["hidden_size"] = f.integer(A + "embedding_length");
  j["intermediate_size"] = f.integer(A + "feed_forward_length");
  j["num_attention_heads"] = f.integer(A + "attention.head_count");
  j["num_key_value_heads"] = f.integer_or(A + "attention.head_count_kv", f.integer(A + "attention.head_count"));
  if (f.has(A + "attention.key_length")) {
    j["head_dim"] = f.integer(A + "attention.key_length");
    if (f.integer_or(A + "attention.value_length", j["head_dim"]) != j["head_dim"].get<int64_t>())
      fail("{}: {}attention.value_length differs from key_length (not supported)", path, A);
  }
  j["max_position_embeddings"] = f.integer(A + "context_length");
  j["rms_norm_eps"] = f.number(A + "attention.layer_norm_rms_epsilon");
  j["rope_theta"] = f.number_or(A + "rope.freq_base", 10000.0);
  const int64_t head_dim = j.contains("head_dim") ? j["head_dim"].get<int64_t>()
                                                  : j["hidden_size"].get<int64_t>() / std::max<int64_t>(1, j["num_attention_heads"].get<int64_t>());
  if (f.has(A + "rope.dimension_count") && f.integer(A + "rope.dimension_count") != head_dim)
    fail("{}: {}rope.dimension_count {} != head_dim {}: partial rotary embeddings are not supported", path, A,
         f.integer(A + "rope.dimension_count"), head_dim);
  const std::string scaling = f.string_or(A + "rope.scaling.type", "none");
  if (scaling != "none") {
    if (scaling != "linear" && scaling != "yarn") fail("{}: {}rope.scaling.type '{}' is not supported (linear, yarn)", path, A, scaling);
    json rs = {{"type", scaling}, {"factor", f.number(A + "rope.scaling.factor")}};
    if (f.has(A + "rope.scaling.original_context_length"))
      rs["original_max_position_embeddings"] = f.integer(A + "rope.scaling.original_context_length");
    j["rope_scaling"] = rs;
  }
  if (f.find("rope_freqs.weight"))
    fail("{}: rope_freqs.weight (llama3-style rope scaling factors) is not supported yet", path);
  const gguf::TensorInfo* emb = f.find("token_embd.weight");
  if (!emb || emb->shape.size() != 2) fail("{}: no 2-D token_embd.weight tensor", path);
  j["vocab_size"] = emb->shape[0];
  if (f.has("tokenizer.ggml.tokens") && int64_t(f.find_key("tokenizer.ggml.tokens")->items.size()) != emb->shape[0])
    fail("{}: tokenizer.ggml.tokens has {} entries but token_embd.weight {} rows", path,
         f.find_key("tokenizer.ggml.tokens")->items.size(), emb->shape[0]);
  j["tie_word_embeddings"] = f.find("output.weight") == nullptr;
  if (f.has("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = f.integer("tokenizer.ggml.bos_token_id");
  if (f.has("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = f.integer("tokenizer.ggml.eos_token_id");
  j["hidden_act"] = "silu";
  j["torch_dtype"] = "float32";  // what the dequantized model computes in
  if (arch == "llama") j["attention_bias"] = f.find("blk.0.attn_q.bias") != nullptr;
  return j;
}

ModelConfig gguf_config(const gguf::File& f) {
  return parse_config(gguf_config_json(f), f.path().string() + " (GGUF metadata)");
}

GgufTensor gguf_tensor(const Checkpoint& ck, const std::string& hf) {
  GgufTensor t;
  if (!ck.gguf) fail("{}: not a GGUF checkpoint", ck.dir.string());
  t.info = ck.gguf->find(gguf::gguf_tensor_name(hf));
  if (t.info && ck.config.arch == Arch::Llama) {
    if (hf.ends_with("self_attn.q_proj.weight") || hf.ends_with("self_attn.q_proj.bias"))
      t.permuted_heads = int(ck.config.num_attention_heads);
    if (hf.ends_with("self_attn.k_proj.weight") || hf.ends_with("self_attn.k_proj.bias"))
      t.permuted_heads = int(ck.config.num_key_value_heads);
  }
  return t;
}

std::vector<float> gguf_tensor_f32(const Checkpoint& ck, const std::string& hf) {
  const GgufTensor t = gguf_tensor(ck, hf);
  if (!t.info) fail("{}: tensor {} is missing", ck.dir.string(), hf);
  std::vector<float> x = ck.gguf->to_f32(*t.info);
  if (!t.permuted_heads) return x;
  // A bias is one column of rows; a weight [rows, cols].
  const int64_t rows = t.info->shape.size() == 1 ? t.info->numel() : t.info->rows(), cols = int64_t(x.size()) / rows;
  if (rows % (2 * t.permuted_heads)) fail("{}: {} has {} rows, not {} heads of even size", ck.dir.string(), hf, rows, t.permuted_heads);
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(y.data() + r * cols, x.data() + gguf::rope_gguf_row(r, rows, t.permuted_heads) * cols, size_t(cols) * 4);
  return y;
}

namespace {
// Every GGUF tensor dequantized to fp32 under its HF name, in one buffer (a safetensors set in memory).
st::TensorSet dense_tensors(const Checkpoint& ck) {
  std::vector<st::TensorInfo> infos;
  uint64_t at = 0;
  for (const auto& t : ck.gguf->tensors()) {
    const std::string hf = gguf::hf_tensor_name(t.name);
    const uint64_t n = uint64_t(t.numel()) * 4;
    infos.push_back({hf, DType::F32, t.shape, at, at + n});
    at += n;
  }
  auto data = std::make_shared<std::vector<std::byte>>(at);
  for (const auto& i : infos) {
    const std::vector<float> x = gguf_tensor_f32(ck, i.name);
    std::memcpy(data->data() + i.begin, x.data(), x.size() * 4);
  }
  return st::TensorSet::of(st::File::in_memory(ck.dir, std::move(infos), std::move(data)));
}
}  // namespace

Checkpoint Checkpoint::load_gguf(const fs::path& file, bool dense) {
  Checkpoint ck;
  ck.dir = file;
  ck.gguf = gguf::File::open(file);
  ck.config = gguf_config(*ck.gguf);
  for (const auto& t : ck.gguf->tensors())
    if (gguf::hf_tensor_name(t.name).empty())
      fail("{}: GGUF tensor '{}' has no counterpart in a Hugging Face {} model (not supported)", file.string(), t.name,
           ck.config.model_type);
  for (const auto& e : expected_tensors(ck.config)) {
    const GgufTensor t = gguf_tensor(ck, e.name);
    if (!t.info)
      fail("{}: tensor {} ({}) is missing (expected shape [{}] from the metadata)", file.string(),
           gguf::gguf_tensor_name(e.name), e.name, fmt::join(e.shape, ", "));
    if (t.info->shape != e.shape)
      fail("{}: tensor {} has shape [{}] but the metadata implies [{}]", file.string(), t.info->name,
           fmt::join(t.info->shape, ", "), fmt::join(e.shape, ", "));
  }
  if (dense) ck.tensors = dense_tensors(ck);
  return ck;
}

}  // namespace llmopt::model
