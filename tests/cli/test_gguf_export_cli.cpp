// Every compression command takes a .gguf file where it takes a model directory (the real SmolLM2-135M-Instruct
// Q4_1 file): convert writes a Hugging Face directory, quantize and prune write theirs with the tokenizer and
// generation files made from the GGUF metadata, and the results run. Bad uses are one clear error.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace fs = std::filesystem;
using llmopt::test::count_lines;
using llmopt::test::run_llmopt;

namespace {
fs::path smollm2() {
  return llmopt::test::shared_dir() / "models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf";
}
}  // namespace

TEST_CASE("convert, quantize and prune take a .gguf file") {
  if (!fs::exists(smollm2())) {
    MESSAGE("skipped: " << smollm2() << " is absent");
    return;
  }
  const fs::path tmp = llmopt::test::temp_dir("gguf_cli");
  auto c = run_llmopt({"-q", "convert", smollm2().string(), "-o", (tmp / "hf").string(), "--dtype", "bf16", "--json"});
  INFO(c.err);
  REQUIRE(c.exit_code == 0);
  CHECK(nlohmann::json::parse(c.out)["tensors"] == 272);

  auto q = run_llmopt({"-q", "quantize", smollm2().string(), "-o", (tmp / "rtn").string(), "--method", "rtn",
                       "--bits", "4", "--group-size", "64"});
  INFO(q.err);
  REQUIRE(q.exit_code == 0);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    CHECK_MESSAGE(fs::exists(tmp / "rtn" / f), f);
  // the same greedy continuation from the quantized directory, its tokenizer the GGUF's
  auto g = run_llmopt({"-q", "generate", (tmp / "rtn").string(), "--prompt", "The capital of France is",
                       "--max-new-tokens", "4", "--json"});
  INFO(g.err);
  REQUIRE(g.exit_code == 0);
  const auto first = nlohmann::json::parse(g.out.substr(0, g.out.find('\n')));  // one object per request, then a summary
  CHECK(first["text"].get<std::string>().find("Paris") != std::string::npos);
}

TEST_CASE("convert without --kv-heads needs a .gguf; --dtype only for the GGUF export") {
  const fs::path tmp = llmopt::test::temp_dir("gguf_cli_bad");
  const std::string dir = (llmopt::test::shared_dir() / "models/stories260K").string();
  auto r = run_llmopt({"convert", dir, "-o", (tmp / "x").string()});
  CHECK(r.exit_code == 1);
  CHECK(count_lines(r.err) == 1);
  CHECK(r.err.find("--kv-heads") != std::string::npos);
  r = run_llmopt({"convert", dir, "-o", (tmp / "y").string(), "--kv-heads", "2", "--dtype", "bf16"});
  CHECK(r.exit_code == 2);
  if (fs::exists(smollm2())) {
    r = run_llmopt({"convert", smollm2().string(), "-o", (tmp / "z").string(), "--dtype", "q4_0"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("--dtype q4_0") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(tmp / "x"));
  CHECK_FALSE(fs::exists(tmp / "y"));
  CHECK_FALSE(fs::exists(tmp / "z"));
}
