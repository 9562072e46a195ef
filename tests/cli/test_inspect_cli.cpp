// `llmopt inspect --json` on the real checkpoints: parameter counts and KV bytes per token are those
// published in ../shared/models/SOURCES.md (260,032 / 280,512 parameters) and given by
// M_KV = 2·L·H_kv·D_h·P (5 layers, 4 or 8 KV heads, head_dim 8, fp32).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"

using llmopt::test::run_llmopt;

namespace {
nlohmann::json inspect_json(const std::string& model, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"inspect", (llmopt::test::shared_dir() / "models" / model).string(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_llmopt(args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}
}  // namespace

TEST_CASE("stories260K (GQA 8/4)") {
  auto j = inspect_json("stories260K", {"--context", "512", "--batch", "4"});
  CHECK(j["parameters"].get<int64_t>() == 260032);
  CHECK(j["kv_bytes_per_token"].get<int64_t>() == 1280);
  CHECK(j["kv_cache"]["bytes"].get<int64_t>() == 1280 * 512 * 4);
  CHECK(j["parameters_by_kind"]["lm_head"].get<int64_t>() == 0);  // tied
  CHECK(j["parameters_by_kind"]["embeddings"].get<int64_t>() == 512 * 64);
  CHECK(j["layers"].size() == 5);
  CHECK(j["bytes"].get<int64_t>() == 260032 * 4);
  CHECK(j["quantization_config"].is_null());
}

TEST_CASE("stories260K-mha (8 KV heads)") {
  auto j = inspect_json("stories260K-mha");
  CHECK(j["parameters"].get<int64_t>() == 280512);
  CHECK(j["kv_bytes_per_token"].get<int64_t>() == 2560);
}

TEST_CASE("human-readable output names the architecture and KV size") {
  auto r = run_llmopt({"inspect", (llmopt::test::shared_dir() / "models/stories260K").string()});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("llama") != std::string::npos);
  CHECK(r.out.find("1280 bytes/token") != std::string::npos);
}
