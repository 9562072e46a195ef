// `llmopt quantize` end to end on stories260K: JSON report, the output directory's files, GGUF export, and
// bad flags / input (exit 1, one line on stderr, nothing written).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "lib/core/fsutil.h"
#include "tests/support/test_paths.h"

using llmopt::test::count_lines;
using llmopt::test::run_llmopt;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {
std::string model() { return llmopt::test::stories260k(); }
std::string calib() { return llmopt::test::tinystories_train(); }
}  // namespace

TEST_CASE("quantize gptq → compressed-tensors: JSON report and an HF directory") {
  const fs::path tmp = llmopt::test::temp_dir("cli_quantize");
  const std::string out = (tmp / "w4").string();
  auto r = run_llmopt({"-q", "quantize", model(), "-o", out, "--method", "gptq", "--bits", "4", "--group-size", "32",
                       "--format", "compressed-tensors", "--ragged-per-channel", "--calib", calib(), "--nsamples", "8",
                       "--seqlen", "64", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  const json j = json::parse(r.out);
  for (const char* k : {"method", "bits", "group_size", "format", "seconds", "layers", "output", "bytes_in", "bytes_out"})
    CHECK_MESSAGE(j.contains(k), k);
  CHECK(j["method"] == "gptq");
  CHECK(j["bits"] == 4);
  CHECK(j["group_size"] == 32);
  CHECK(j["format"] == "compressed-tensors");
  CHECK(j["layers"] == 5);
  CHECK(j["output"] == out);
  CHECK(j["bytes_out"].get<uint64_t>() < j["bytes_in"].get<uint64_t>());
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model", "generation_config.json"})
    CHECK_MESSAGE(fs::exists(tmp / "w4" / f), f);
  const json cfg = json::parse(llmopt::read_file(tmp / "w4/config.json"));
  CHECK(cfg["quantization_config"]["quant_method"] == "compressed-tensors");

  // quantizing the output again is refused
  auto again = run_llmopt({"quantize", out, "-o", (tmp / "again").string(), "--method", "rtn", "--format", "dense"});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("already quantized") != std::string::npos);
  CHECK(!fs::exists(tmp / "again"));
}

TEST_CASE("quantize rtn → gguf Q4_0 and → dense") {
  const fs::path tmp = llmopt::test::temp_dir("cli_quantize_gguf");
  auto r = run_llmopt({"-q", "quantize", model(), "-o", (tmp / "m.gguf").string(), "--method", "rtn", "--format", "gguf", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(r.out)["group_size"] == 32);
  CHECK(llmopt::read_file(tmp / "m.gguf").substr(0, 4) == "GGUF");
  auto d = run_llmopt({"-q", "quantize", model(), "-o", (tmp / "dense").string(), "--method", "rtn", "--bits", "8",
                       "--group-size", "-1", "--format", "dense"});
  INFO(d.err);
  REQUIRE(d.exit_code == 0);
  CHECK(d.out.find("rtn 8-bit") != std::string::npos);
  CHECK(fs::file_size(tmp / "dense/model.safetensors") == fs::file_size(fs::path(model()) / "model.safetensors"));
}

TEST_CASE("quantize: bad flags and input fail with one line and no output") {
  const fs::path tmp = llmopt::test::temp_dir("cli_quantize_bad");
  const std::string out = (tmp / "out").string();
  struct Case {
    std::vector<std::string> args;
    const char* msg;
    int code;
  };
  const std::vector<Case> cases = {
      {{"--method", "gptq", "--format", "compressed-tensors"}, "--calib", 1},
      {{"--method", "gptq", "--calib", calib()}, "use --format compressed-tensors", 1},
      {{"--method", "rtn", "--format", "compressed-tensors"}, "--ragged-per-channel", 1},
      {{"--method", "rtn", "--bits", "5", "--format", "dense"}, "--bits 5", 1},
      {{"--method", "awq"}, "--method awq", 1},
      {{"--method", "rtn", "--format", "onnx"}, "--format onnx", 1},
      {{"--method", "rtn", "--group-size", "0", "--format", "dense"}, "--group-size 0", 1},
      {{"--method", "rtn", "--act-order", "--format", "dense"}, "GPTQ options", 1},
      {{"--method", "rtn", "--sym", "--asym"}, "excludes", 2},
      // AWQ and SmoothQuant
      {{"--method", "smoothquant", "--alpha", "1.5", "--calib", calib()}, "--alpha 1.5 is outside [0, 1]", 1},
      {{"--method", "smoothquant", "--alpha", "-0.1", "--calib", calib()}, "--alpha -0.1 is outside [0, 1]", 1},
      {{"--method", "awq", "--alpha", "0.5", "--calib", calib()}, "--alpha is SmoothQuant's", 1},
      {{"--method", "awq", "--format", "awq", "--bits", "3", "--calib", calib()}, "--format awq stores 4-bit", 1},
      {{"--method", "awq", "--format", "awq", "--group-size", "32", "--calib", calib()}, "--format awq cannot store", 1},
      {{"--method", "smoothquant", "--bits", "4", "--calib", calib()}, "--bits must be 8", 1},
      {{"--method", "smoothquant", "--group-size", "32", "--calib", calib()}, "--group-size must be -1", 1},
      {{"--method", "smoothquant", "--format", "gptq", "--calib", calib()}, "--method smoothquant writes", 1},
      {{"--method", "smoothquant", "--weights", "sparsegpt", "--calib", calib()}, "--weights sparsegpt", 1},
      {{"--method", "smoothquant", "--format", "compressed-tensors"}, "--method smoothquant needs calibration", 1},
      {{"--method", "awq", "--format", "gguf", "--group-size", "32", "--calib", calib()}, "--format gguf", 1},
      {{"--method", "rtn", "--weights", "gptq"}, "--weights is SmoothQuant's", 1},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"quantize", model(), "-o", out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = run_llmopt(args);
    INFO(r.err);
    CHECK(r.exit_code == c.code);
    CHECK(r.err.find(c.msg) != std::string::npos);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.out.empty());
    CHECK(!fs::exists(out));
    CHECK(fs::is_empty(tmp));
  }
  auto missing = run_llmopt({"quantize", (tmp / "nope").string(), "-o", out, "--method", "rtn"});
  CHECK(missing.exit_code == 1);
  CHECK(count_lines(missing.err) == 1);
}

TEST_CASE("quantize awq → dense and smoothquant → W8A8 compressed-tensors from the CLI") {
  const fs::path tmp = llmopt::test::temp_dir("cli_quantize_awq_sq");
  auto a = run_llmopt({"-q", "quantize", model(), "-o", (tmp / "awq").string(), "--method", "awq", "--group-size", "32",
                       "--format", "dense", "--calib", calib(), "--nsamples", "4", "--seqlen", "64", "--json"});
  INFO(a.err);
  REQUIRE(a.exit_code == 0);
  const auto ja = json::parse(a.out);
  CHECK(ja["method"] == "awq");
  CHECK(ja["awq_alpha"].size() == 20);
  auto s = run_llmopt({"-q", "quantize", model(), "-o", (tmp / "sq").string(), "--method", "smoothquant", "--alpha",
                       "0.8", "--calib", calib(), "--nsamples", "4", "--seqlen", "64", "--json"});
  INFO(s.err);
  REQUIRE(s.exit_code == 0);
  const auto js = json::parse(s.out);
  CHECK(js["method"] == "smoothquant");
  CHECK(js["format"] == "compressed-tensors");
  CHECK(js["bits"] == 8);
  CHECK(js["group_size"] == -1);
  CHECK(js["alpha"] == 0.8);
  const auto cfg = json::parse(llmopt::read_file(tmp / "sq/config.json"));
  CHECK(cfg["quantization_config"]["format"] == "int-quantized");
}
