// The malformed-input suite: every bad input gives a non-zero exit (not a crash signal), exactly one line on
// stderr naming the file, tensor or flag, and nothing on stdout.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

#include "test_paths.h"

namespace fs = std::filesystem;
using llmopt::test::run_llmopt;

namespace {
std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void spit(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

// A fresh copy of stories260K (config + weights) to damage.
fs::path model_copy(const std::string& tag) {
  fs::path d = llmopt::test::temp_dir(tag);
  fs::path src = llmopt::test::shared_dir() / "models/stories260K";
  fs::copy_file(src / "config.json", d / "config.json");
  fs::copy_file(src / "model.safetensors", d / "model.safetensors");
  return d;
}

// Rewrites a safetensors header through fn, keeping the data section.
void edit_header(const fs::path& file, const std::function<void(nlohmann::json&)>& fn) {
  std::string s = slurp(file);
  uint64_t n;
  std::memcpy(&n, s.data(), 8);
  auto h = nlohmann::json::parse(s.substr(8, n));
  fn(h);
  std::string hs = h.dump();
  while (hs.size() % 8) hs += ' ';
  uint64_t m = hs.size();
  std::string out(reinterpret_cast<const char*>(&m), 8);
  spit(file, out + hs + s.substr(8 + n));
}

void edit_config(const fs::path& dir, const std::function<void(nlohmann::json&)>& fn) {
  auto j = nlohmann::json::parse(slurp(dir / "config.json"));
  fn(j);
  spit(dir / "config.json", j.dump(2));
}

// The contract for every bad input.
void expect_one_line_error(const std::vector<std::string>& args, const std::string& must_name) {
  auto r = run_llmopt(args);
  INFO("stderr: " << r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.signal == 0);
  CHECK(r.exit_code < 128);
  CHECK(r.out.empty());
  REQUIRE(!r.err.empty());
  CHECK(r.err.back() == '\n');
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find(must_name) != std::string::npos);
}
}  // namespace

TEST_CASE("missing model directory") {
  expect_one_line_error({"inspect", "/nonexistent/model-dir"}, "/nonexistent/model-dir");
}

TEST_CASE("directory without config.json") {
  fs::path d = llmopt::test::temp_dir("noconfig");
  expect_one_line_error({"inspect", d.string()}, "config.json");
}

TEST_CASE("malformed config.json") {
  fs::path d = model_copy("badjson");
  spit(d / "config.json", "{\"model_type\": \"llama\", ");
  expect_one_line_error({"inspect", d.string()}, "config.json");
}

TEST_CASE("unknown model_type") {
  fs::path d = model_copy("unknownarch");
  edit_config(d, [](auto& j) { j["model_type"] = "gpt_neox"; });
  expect_one_line_error({"inspect", d.string()}, "gpt_neox");
}

TEST_CASE("mixture-of-experts is rejected as not supported yet") {
  fs::path d = model_copy("moe");
  edit_config(d, [](auto& j) { j["model_type"] = "mixtral"; });
  expect_one_line_error({"inspect", d.string()}, "not supported yet");
}

TEST_CASE("missing weights file") {
  fs::path d = model_copy("noweights");
  fs::remove(d / "model.safetensors");
  expect_one_line_error({"inspect", d.string()}, "model.safetensors");
}

TEST_CASE("truncated safetensors") {
  fs::path d = model_copy("truncated");
  std::string s = slurp(d / "model.safetensors");
  spit(d / "model.safetensors", s.substr(0, s.size() / 2));
  expect_one_line_error({"inspect", d.string()}, "model.safetensors");
}

TEST_CASE("safetensors shorter than its length prefix") {
  fs::path d = model_copy("tiny");
  spit(d / "model.safetensors", "abc");
  expect_one_line_error({"inspect", d.string()}, "model.safetensors");
}

TEST_CASE("corrupt header length") {
  fs::path d = model_copy("hdrlen");
  std::string s = slurp(d / "model.safetensors");
  uint64_t huge = uint64_t(1) << 40;
  std::memcpy(s.data(), &huge, 8);
  spit(d / "model.safetensors", s);
  expect_one_line_error({"inspect", d.string()}, "model.safetensors");
}

TEST_CASE("corrupt header JSON") {
  fs::path d = model_copy("hdrjson");
  std::string s = slurp(d / "model.safetensors");
  s[8] = '[';
  s[9] = '!';
  spit(d / "model.safetensors", s);
  expect_one_line_error({"inspect", d.string()}, "model.safetensors");
}

TEST_CASE("overlapping tensor offsets") {
  fs::path d = model_copy("overlap");
  edit_header(d / "model.safetensors", [](auto& h) {
    auto& a = h["model.layers.0.mlp.down_proj.weight"]["data_offsets"];
    auto& b = h["model.layers.0.mlp.gate_proj.weight"]["data_offsets"];
    b = a;  // same bytes claimed twice
  });
  expect_one_line_error({"inspect", d.string()}, "model.safetensors");
}

TEST_CASE("unknown dtype in header") {
  fs::path d = model_copy("dtype");
  edit_header(d / "model.safetensors", [](auto& h) { h["model.norm.weight"]["dtype"] = "F12"; });
  expect_one_line_error({"inspect", d.string()}, "F12");
}

TEST_CASE("tensor shape does not match config") {
  fs::path d = model_copy("shape");
  edit_config(d, [](auto& j) { j["intermediate_size"] = 176; });
  expect_one_line_error({"inspect", d.string()}, "mlp");
}

TEST_CASE("tensor missing for the configured depth") {
  fs::path d = model_copy("depth");
  edit_config(d, [](auto& j) { j["num_hidden_layers"] = 6; });
  expect_one_line_error({"inspect", d.string()}, "model.layers.5");
}

TEST_CASE("heads not dividing") {
  fs::path d = model_copy("heads");
  edit_config(d, [](auto& j) { j["num_key_value_heads"] = 3; });
  expect_one_line_error({"inspect", d.string()}, "num_key_value_heads");
}

TEST_CASE("unknown flag") {
  fs::path m = llmopt::test::shared_dir() / "models/stories260K";
  expect_one_line_error({"inspect", m.string(), "--bogus"}, "--bogus");
}

TEST_CASE("bad flag value") {
  fs::path m = llmopt::test::shared_dir() / "models/stories260K";
  expect_one_line_error({"inspect", m.string(), "--context", "-5"}, "--context");
}

TEST_CASE("unknown subcommand") {
  expect_one_line_error({"frobnicate"}, "frobnicate");
}
