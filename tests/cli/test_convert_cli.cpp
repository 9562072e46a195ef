// `llmopt convert`: the happy path on the real stories260K-mha (→ stories260K, byte for byte in every tensor),
// similarity grouping from a calibration file, and bad inputs: one error line, exit 1, no output left behind.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

#include "test_paths.h"

namespace fs = std::filesystem;
using llmopt::test::count_lines;
using llmopt::test::run_llmopt;

namespace {
fs::path shared(const std::string& p) { return llmopt::test::shared_dir() / p; }

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("convert stories260K-mha to 4 KV heads") {
  fs::path out = llmopt::test::temp_dir("convert_cli") / "gqa4";
  auto r = run_llmopt({"-q", "convert", shared("models/stories260K-mha").string(), "-o", out.string(), "--kv-heads", "4",
                       "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["kv_heads_before"] == 8);
  CHECK(j["kv_heads_after"] == 4);
  CHECK(j["kv_bytes_per_token_after"] == 1280);
  CHECK(j["groups"][0] == nlohmann::json::parse("[[0,1],[2,3],[4,5],[6,7]]"));
  // the converted weights are stories260K's exactly: same file size and data section (the headers differ only
  // in where "__metadata__" sits)
  const std::string got = slurp(out / "model.safetensors"), want = slurp(shared("models/stories260K/model.safetensors"));
  REQUIRE(got.size() == want.size());
  uint64_t n = 0;
  std::memcpy(&n, want.data(), 8);
  CHECK(got.compare(8 + n, std::string::npos, want, 8 + n, std::string::npos) == 0);
  auto cfg = nlohmann::json::parse(slurp(out / "config.json"));
  CHECK(cfg == nlohmann::json::parse(slurp(shared("models/stories260K/config.json"))));
  CHECK(fs::exists(out / "tokenizer.json"));

  // and `inspect` sees the smaller KV cache
  auto ins = run_llmopt({"inspect", out.string(), "--json"});
  REQUIRE(ins.exit_code == 0);
  CHECK(nlohmann::json::parse(ins.out)["kv_bytes_per_token"] == 1280);
}

TEST_CASE("convert with similarity grouping from a calibration file") {
  fs::path out = llmopt::test::temp_dir("convert_cli_sim") / "gqa2";
  auto r = run_llmopt({"-q", "convert", shared("models/stories260K").string(), "-o", out.string(), "--kv-heads", "2",
                       "--grouping", "similarity", "--calib", shared("data/tinystories/tinystories_train_excerpt.txt").string(),
                       "--nsamples", "4", "--seqlen", "64", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["calib_tokens"] == 256);
  CHECK(j["kv_bytes_per_token_after"] == 640);
  CHECK(j["mean_pooling_error_similarity"].get<double>() <= j["mean_pooling_error_adjacent"].get<double>() + 1e-12);
  CHECK(nlohmann::json::parse(slurp(out / "config.json"))["num_key_value_heads"] == 2);
}

TEST_CASE("bad inputs: one error line, exit 1, no output directory") {
  fs::path parent = llmopt::test::temp_dir("convert_cli_bad");
  const std::string mha = shared("models/stories260K-mha").string(), out = (parent / "out").string();
  fs::path mla = llmopt::test::temp_dir("convert_cli_mla");
  fs::copy_file(llmopt::test::testdata_dir() / "configs/deepseek_v2.json", mla / "config.json");

  struct Case { std::vector<std::string> args; std::string says; };
  const std::vector<Case> cases = {
      {{"convert", mha, "-o", out, "--kv-heads", "3"}, "does not divide"},
      {{"convert", mha, "-o", out, "--kv-heads", "8"}, "not a reduction"},
      {{"convert", mha, "-o", out, "--kv-heads", "16"}, "not a reduction"},
      {{"convert", mha, "-o", out, "--kv-heads", "0"}, "must be positive"},
      {{"convert", mha, "-o", out, "--kv-heads", "-2"}, "must be positive"},
      {{"convert", mla.string(), "-o", out, "--kv-heads", "4"}, "MLA"},
      {{"convert", mha, "-o", out, "--kv-heads", "4", "--grouping", "similarity"}, "--calib"},
      {{"convert", mha, "-o", out, "--kv-heads", "4", "--grouping", "similarity", "--calib", (parent / "none.txt").string()},
       "none.txt"},
      {{"convert", mha, "-o", out, "--kv-heads", "4", "--grouping", "nearest"}, "--grouping"},
      {{"convert", (parent / "nomodel").string(), "-o", out, "--kv-heads", "4"}, "nomodel"},
  };
  for (const auto& c : cases) {
    auto r = run_llmopt(c.args);
    INFO(c.args[5], " ", c.args.size() > 6 ? c.args[6] + " " + c.args.back() : "", ": ", r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.signal == 0);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.rfind("llmopt: error: ", 0) == 0);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(r.out.empty());
    CHECK(fs::is_empty(parent));  // no output, no temporary sibling
  }

  // an existing non-empty output directory is refused and left as it was
  fs::create_directory(parent / "full");
  std::ofstream(parent / "full" / "keep.txt") << "x";
  auto r = run_llmopt({"convert", mha, "-o", (parent / "full").string(), "--kv-heads", "4"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("already exists") != std::string::npos);
  CHECK(slurp(parent / "full" / "keep.txt") == "x");
  CHECK(std::distance(fs::directory_iterator(parent), fs::directory_iterator()) == 1);
}
