// config.json parsing against what Hugging Face transformers derives from the same files
// (testdata/configs, written by scripts/golden/config_golden.py).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "lib/core/error.h"
#include "lib/model/config.h"
#include "test_paths.h"

using namespace llmopt::model;

namespace {
nlohmann::json load_json(const std::filesystem::path& p) {
  std::ifstream f(p);
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}
}  // namespace

TEST_CASE("every architecture agrees with transformers") {
  auto dir = llmopt::test::testdata_dir() / "configs";
  auto expected = load_json(dir / "expected.json")["configs"];
  REQUIRE(expected.size() >= 8);
  for (auto& [name, e] : expected.items()) {
    CAPTURE(name);
    auto j = load_json(dir / (name + ".json"));
    if (e.value("moe_layers", 0) > 0) {
      CHECK_THROWS_WITH_AS(parse_config(j, name), doctest::Contains("not supported yet"), llmopt::Error);
      continue;
    }
    ModelConfig c = parse_config(j, name);
    CHECK(c.model_type == e["model_type"].get<std::string>());
    CHECK(c.hidden_size == e["hidden_size"].get<int64_t>());
    CHECK(c.num_hidden_layers == e["num_hidden_layers"].get<int64_t>());
    CHECK(c.num_attention_heads == e["num_attention_heads"].get<int64_t>());
    CHECK(c.num_key_value_heads == e["num_key_value_heads"].get<int64_t>());
    CHECK(c.vocab_size == e["vocab_size"].get<int64_t>());
    CHECK(c.rope_theta == doctest::Approx(e["rope_theta"].get<double>()));
    std::string rt = e["rope_type"].get<std::string>();
    CHECK(c.rope_scaling.type == (rt == "default" ? "" : rt));
    CHECK(c.rope_scaling.factor == doctest::Approx(e["rope_factor"].get<double>()));
    CHECK(c.tie_word_embeddings == e["tie_word_embeddings"].get<bool>());
    CHECK(c.rms_norm_eps == doctest::Approx(e["rms_norm_eps"].get<double>()));
    CHECK(c.attention_bias == e["attention_bias"].get<bool>());
    if (e.contains("head_dim")) {
      CHECK(c.head_dim == e["head_dim"].get<int64_t>());
      CHECK(!c.is_mla());
      CHECK(c.kv_bytes_per_token(2) == 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 2);
    } else {
      REQUIRE(c.is_mla());
      CHECK(c.mla->kv_lora_rank == e["kv_lora_rank"].get<int64_t>());
      CHECK(c.mla->qk_rope_head_dim == e["qk_rope_head_dim"].get<int64_t>());
      CHECK(c.mla->qk_nope_head_dim == e["qk_nope_head_dim"].get<int64_t>());
      CHECK(c.mla->v_head_dim == e["v_head_dim"].get<int64_t>());
      CHECK(c.mla->q_lora_rank == e["q_lora_rank"].get<int64_t>());
      // MLA caches the compressed latent and the shared rope key per token and layer.
      CHECK(c.kv_bytes_per_token(2) == c.num_hidden_layers * (c.mla->kv_lora_rank + c.mla->qk_rope_head_dim) * 2);
    }
  }
}

TEST_CASE("qwen3 has q/k norm, qwen2 has biases, llama3 rope scaling fields") {
  auto dir = llmopt::test::testdata_dir() / "configs";
  CHECK(parse_config(load_json(dir / "qwen3.json")).qk_norm);
  CHECK(parse_config(load_json(dir / "qwen2.json")).attention_bias);
  auto l3 = parse_config(load_json(dir / "llama3_rope.json"));
  CHECK(l3.rope_scaling.original_max_position_embeddings == 64);
  CHECK(l3.rope_scaling.high_freq_factor == doctest::Approx(4.0));
  CHECK(l3.eos_token_ids == std::vector<int64_t>{2, 3});
  auto legacy = parse_config(load_json(dir / "llama_legacy.json"));
  CHECK(legacy.torch_dtype == "bfloat16");
}

TEST_CASE("bad configs name the field") {
  nlohmann::json base = load_json(llmopt::test::testdata_dir() / "configs" / "llama_linear.json");
  auto bad = [&](auto edit, const char* must) {
    nlohmann::json j = base;
    edit(j);
    CHECK_THROWS_WITH_AS(parse_config(j, "config.json"), doctest::Contains(must), llmopt::Error);
  };
  bad([](auto& j) { j["model_type"] = "bloom"; }, "bloom");
  bad([](auto& j) { j.erase("hidden_size"); }, "hidden_size");
  bad([](auto& j) { j["hidden_size"] = -64; }, "hidden_size");
  bad([](auto& j) { j["num_key_value_heads"] = 3; }, "num_key_value_heads");
  bad([](auto& j) { j["hidden_act"] = "gelu"; }, "gelu");
  bad([](auto& j) { j["rope_parameters"] = {{"rope_type", "wavy"}}; }, "wavy");
  bad([](auto& j) { j["num_local_experts"] = 8; }, "not supported yet");
  bad([](auto& j) { j["vocab_size"] = "many"; }, "vocab_size");
}
