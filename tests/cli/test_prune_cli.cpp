// `llmopt prune` end to end on stories260K: the JSON report, the output directory, `llmopt inspect` measuring the
// sparsity per linear and for the model (text and --json), and bad flags / input (exit 1, one line on stderr,
// nothing written).
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

TEST_CASE("prune magnitude 50% → JSON report, HF directory, inspect measures 50% in every linear") {
  const fs::path tmp = llmopt::test::temp_dir("cli_prune");
  const std::string out = (tmp / "m50").string();
  auto r = run_llmopt({"-q", "prune", model(), "-o", out, "--method", "magnitude", "--sparsity", "0.5", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  const json j = json::parse(r.out);
  for (const char* k : {"method", "pattern", "sparsity_structure", "linear_sparsity", "global_sparsity", "bits",
                        "seconds", "layers", "output", "bytes_in", "bytes_out"})
    CHECK_MESSAGE(j.contains(k), k);
  CHECK(j["method"] == "magnitude");
  CHECK(j["sparsity_structure"] == "unstructured");
  CHECK(j["layers"] == 5);
  CHECK(j["linear_sparsity"].get<double>() == doctest::Approx(0.5));
  // dense format: the same tensors, dtypes and shapes (safetensors header aside, the same size)
  CHECK(fs::file_size(tmp / "m50/model.safetensors") == fs::file_size(fs::path(model()) / "model.safetensors"));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model", "generation_config.json"})
    CHECK_MESSAGE(fs::exists(tmp / "m50" / f), f);

  auto ij = run_llmopt({"inspect", out, "--json"});
  REQUIRE(ij.exit_code == 0);
  const json s = json::parse(ij.out)["sparsity"];
  CHECK(s["linears"].size() == 35);  // tied embeddings: no lm_head
  for (const auto& l : s["linears"]) {
    CHECK_MESSAGE(l["sparsity"].get<double>() == doctest::Approx(0.5), l["name"]);
    CHECK(l["nm_2_4"] == false);
  }
  CHECK(s["linear_sparsity"].get<double>() == doctest::Approx(0.5));
  CHECK(s["global_sparsity"].get<double>() == doctest::Approx(j["global_sparsity"].get<double>()));
  CHECK(s["sparsity_config"]["sparsity_structure"] == "unstructured");
  auto it = run_llmopt({"inspect", out});
  REQUIRE(it.exit_code == 0);
  CHECK(it.out.find("sparsity       50.00% of the linears") != std::string::npos);
  CHECK(it.out.find("model.layers.4.mlp.down_proj.weight") != std::string::npos);

  // the original: 0% measured, no per-linear table
  auto io = run_llmopt({"inspect", model(), "--json"});
  REQUIRE(io.exit_code == 0);
  CHECK(json::parse(io.out)["sparsity"]["linear_sparsity"].get<double>() < 0.01);
  CHECK(json::parse(io.out)["sparsity"]["sparsity_config"].is_null());
}

TEST_CASE("prune wanda 2:4 and sparsegpt 2:4 + 4-bit: inspect sees 2:4 in every linear") {
  const fs::path tmp = llmopt::test::temp_dir("cli_prune_24");
  const std::vector<std::vector<std::string>> runs = {
      {"--method", "wanda", "--pattern", "2:4"},
      {"--method", "sparsegpt", "--pattern", "2:4", "--bits", "4", "--group-size", "32", "--asym"}};
  int i = 0;
  for (auto args : runs) {
    const std::string out = (tmp / std::to_string(i++)).string();
    std::vector<std::string> cmd = {"-q", "prune", model(), "-o", out, "--calib", calib(), "--nsamples", "4",
                                    "--seqlen", "64", "--json"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto r = run_llmopt(cmd);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const json j = json::parse(r.out);
    CHECK(j["sparsity_structure"] == "2:4");
    CHECK(j["bits"] == (args[1] == "sparsegpt" ? 4 : 0));
    auto ij = run_llmopt({"inspect", out, "--json"});
    REQUIRE(ij.exit_code == 0);
    const json inspected = json::parse(ij.out);  // (a range-for over a temporary's member would dangle)
    for (const auto& l : inspected["sparsity"]["linears"]) CHECK_MESSAGE(l["nm_2_4"] == true, l["name"]);
  }
}

TEST_CASE("prune: bad flags and input fail with one line and no output") {
  const fs::path tmp = llmopt::test::temp_dir("cli_prune_bad");
  const std::string out = (tmp / "out").string();
  struct Case {
    std::vector<std::string> args;
    const char* msg;
  };
  const std::vector<Case> cases = {
      {{"--method", "magnitude", "--sparsity", "0"}, "--sparsity 0 must be in (0, 1)"},
      {{"--method", "magnitude", "--sparsity", "1"}, "must be in (0, 1)"},
      {{"--method", "magnitude", "--sparsity", "1.5"}, "must be in (0, 1)"},
      {{"--method", "magnitude", "--pattern", "5:4"}, "0 < N < M"},
      {{"--method", "magnitude", "--pattern", "4:4"}, "0 < N < M"},
      {{"--method", "magnitude", "--pattern", "2-4"}, "is not N:M"},
      {{"--method", "magnitude", "--pattern", "2:"}, "is not N:M"},
      {{"--method", "magnitude", "--pattern", "3:7"}, "not a multiple of 7"},
      {{"--method", "wanda", "--sparsity", "0.5"}, "--method wanda needs calibration text: --calib FILE"},
      {{"--method", "sparsegpt", "--pattern", "2:4"}, "--method sparsegpt needs calibration text"},
      {{"--method", "sparsegpt", "--pattern", "2:4", "--calib", "/nonexistent/calib.txt"}, "no such file"},
      {{"--method", "magnitude", "--sparsity", "0.5", "--pattern", "2:4"}, "exclude each other"},
      {{"--method", "magnitude"}, "give --sparsity"},
      {{"--method", "pruneit", "--sparsity", "0.5"}, "is not known"},
      {{"--method", "magnitude", "--sparsity", "0.5", "--bits", "4"}, "needs --method sparsegpt"},
      {{"--method", "magnitude", "--sparsity", "0.5", "--group-size", "32"}, "need --bits"},
      {{"--method", "magnitude", "--sparsity", "0.5", "--scope", "global"}, "--scope global"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"prune", model(), "-o", out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = run_llmopt(args);
    CAPTURE(c.msg);
    CAPTURE(r.err);
    CHECK(r.exit_code == 1);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.rfind("llmopt: error: ", 0) == 0);
    CHECK(r.err.find(c.msg) != std::string::npos);
    CHECK(!fs::exists(out));
    CHECK(fs::is_empty(tmp));
  }
  // not a model directory
  auto r = run_llmopt({"prune", (tmp / "nomodel").string(), "-o", out, "--method", "magnitude", "--sparsity", "0.5"});
  CHECK(r.exit_code == 1);
  CHECK(count_lines(r.err) == 1);
  CHECK(!fs::exists(out));
}
