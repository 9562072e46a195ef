// Writes a random-weight Llama checkpoint (~100M parameters: 12 layers, hidden 768, 12 q / 4 kv heads,
// intermediate 2048, vocab 32000, tied embeddings) with llmopt's safetensors Writer, for speed work.
// Usage: bench_forward_make OUT_DIR f32|bf16       (built and run by scripts/bench/bench_forward.sh)
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "formats/safetensors.h"

using namespace llmopt;

int main(int argc, char** argv) {
  if (argc != 3) {
    fmt::print(stderr, "usage: bench_forward_make OUT_DIR f32|bf16\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const bool bf16 = std::string(argv[2]) == "bf16";
  const int64_t L = 12, H = 768, I = 2048, V = 32000, nh = 12, nkv = 4, D = H / nh;
  std::filesystem::create_directories(dir);
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                        {"hidden_size", H}, {"intermediate_size", I}, {"num_hidden_layers", L},
                        {"num_attention_heads", nh}, {"num_key_value_heads", nkv}, {"head_dim", D},
                        {"vocab_size", V}, {"max_position_embeddings", 2048}, {"rms_norm_eps", 1e-5},
                        {"rope_theta", 10000.0}, {"rope_scaling", nullptr}, {"tie_word_embeddings", true},
                        {"hidden_act", "silu"}, {"bos_token_id", 1}, {"eos_token_id", 2},
                        {"torch_dtype", bf16 ? "bfloat16" : "float32"}};
  std::ofstream(dir / "config.json") << cfg.dump(2) << "\n";

  struct Spec { std::string name; std::vector<int64_t> shape; bool norm; };
  std::vector<Spec> specs = {{"model.embed_tokens.weight", {V, H}, false}};
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    specs.push_back({p + "input_layernorm.weight", {H}, true});
    specs.push_back({p + "post_attention_layernorm.weight", {H}, true});
    specs.push_back({p + "self_attn.q_proj.weight", {nh * D, H}, false});
    specs.push_back({p + "self_attn.k_proj.weight", {nkv * D, H}, false});
    specs.push_back({p + "self_attn.v_proj.weight", {nkv * D, H}, false});
    specs.push_back({p + "self_attn.o_proj.weight", {H, nh * D}, false});
    specs.push_back({p + "mlp.gate_proj.weight", {I, H}, false});
    specs.push_back({p + "mlp.up_proj.weight", {I, H}, false});
    specs.push_back({p + "mlp.down_proj.weight", {H, I}, false});
  }
  specs.push_back({"model.norm.weight", {H}, true});
  std::vector<st::TensorInfo> infos;
  for (const auto& s : specs) {
    st::TensorInfo t;
    t.name = s.name;
    t.dtype = bf16 ? DType::BF16 : DType::F32;
    t.shape = s.shape;
    infos.push_back(t);
  }
  st::Writer w(dir / "model.safetensors", infos, {{"format", "pt"}});
  std::mt19937_64 rng(1234);
  std::normal_distribution<float> nd;
  int64_t params = 0;
  for (const auto& s : specs) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    params += n;
    const float sd = s.norm ? 0.0f : 1.0f / std::sqrt(float(s.shape.back()));
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = s.norm ? 1.0f : nd(rng) * sd;
    if (bf16) {
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_bf16(v[i]);
      w.write(s.name, h.data(), h.size() * 2);
    } else {
      w.write(s.name, v.data(), v.size() * 4);
    }
  }
  w.finish();
  fmt::print("{}: {} parameters ({})\n", dir.string(), params, bf16 ? "bf16" : "f32");
  return 0;
}
