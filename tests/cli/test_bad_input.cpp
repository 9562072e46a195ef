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

// ---- malformed JSON fields, token ids and input files: exit code 1 (bad input), never 3 (internal error) ----
namespace {
// The contract above plus exit code 1, with `stdin_text` fed to the command.
void expect_bad_input(const std::vector<std::string>& args, const std::string& must_name,
                      const std::string& stdin_text = "") {
  auto r = run_llmopt(args, stdin_text);
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.signal == 0);
  CHECK(r.out.empty());
  REQUIRE(!r.err.empty());
  CHECK(r.err.back() == '\n');
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find(must_name) != std::string::npos);
}

// A directory with stories260K's tokenizer.json and tokenizer_config.json, tokenizer.json edited through fn.
fs::path tokenizer_copy(const std::string& tag, const std::function<void(nlohmann::json&)>& fn) {
  fs::path d = llmopt::test::temp_dir(tag);
  fs::path src = llmopt::test::shared_dir() / "models/stories260K";
  fs::copy_file(src / "tokenizer_config.json", d / "tokenizer_config.json");
  auto j = nlohmann::json::parse(slurp(src / "tokenizer.json"));
  fn(j);
  spit(d / "tokenizer.json", j.dump());
  return d;
}

void expect_bad_tokenizer(const fs::path& d, const std::string& must_name) {
  expect_bad_input({"tokenize", d.string()}, must_name, "Once upon a time\n");
  expect_bad_input({"detokenize", d.string()}, must_name, "1 2 3\n");
}
}  // namespace

TEST_CASE("tokenizer.json without a model") {
  expect_bad_tokenizer(tokenizer_copy("tok_nomodel", [](auto& j) { j.erase("model"); }), "\"model\"");
}

TEST_CASE("tokenizer.json with a model that is not an object") {
  expect_bad_tokenizer(tokenizer_copy("tok_modelstr", [](auto& j) { j["model"] = "BPE"; }), "model");
}

TEST_CASE("tokenizer.json vocab id of the wrong type") {
  expect_bad_tokenizer(tokenizer_copy("tok_vocabtype", [](auto& j) { j["model"]["vocab"]["<unk>"] = "zero"; }),
                       "vocab[\"<unk>\"]");
}

TEST_CASE("tokenizer.json vocab ids out of range") {
  expect_bad_tokenizer(tokenizer_copy("tok_vocabneg", [](auto& j) { j["model"]["vocab"]["<unk>"] = -3; }), "<unk>");
  expect_bad_tokenizer(tokenizer_copy("tok_vocabhuge", [](auto& j) { j["model"]["vocab"]["<unk>"] = int64_t(1) << 40; }),
                       "<unk>");
  // fits in 32 bits but would allocate ~2^31 pieces
  expect_bad_tokenizer(tokenizer_copy("tok_vocabbig", [](auto& j) { j["model"]["vocab"]["<unk>"] = 2147483647; }),
                       "<unk>");
}

TEST_CASE("tokenizer.json with bad merges") {
  expect_bad_tokenizer(tokenizer_copy("tok_mergenum", [](auto& j) { j["model"]["merges"] = {1, 2}; }), "merges[0]");
  expect_bad_tokenizer(tokenizer_copy("tok_mergeone", [](auto& j) { j["model"]["merges"] = {"abc"}; }), "abc");
  expect_bad_tokenizer(tokenizer_copy("tok_mergeunk", [](auto& j) { j["model"]["merges"] = {"zzq qqz"}; }),
                       "not in vocab");
}

TEST_CASE("tokenizer.json added_tokens of the wrong shape") {
  expect_bad_tokenizer(tokenizer_copy("tok_addedstr", [](auto& j) { j["added_tokens"] = "none"; }), "added_tokens");
  expect_bad_tokenizer(tokenizer_copy("tok_addedid", [](auto& j) { j["added_tokens"][0]["id"] = "0"; }),
                       "added_tokens[0]");
  expect_bad_tokenizer(tokenizer_copy("tok_addedbig", [](auto& j) { j["added_tokens"][0]["id"] = int64_t(1) << 40; }),
                       "added_tokens[0]");
  expect_bad_tokenizer(tokenizer_copy("tok_addednocontent", [](auto& j) { j["added_tokens"][0].erase("content"); }),
                       "content");
}

TEST_CASE("tokenizer.json sections of the wrong type") {
  expect_bad_tokenizer(tokenizer_copy("tok_normnum", [](auto& j) { j["normalizer"] = 5; }), "normalizer");
  expect_bad_tokenizer(tokenizer_copy("tok_normtype", [](auto& j) { j["normalizer"] = {{"type", 5}}; }), "type");
  expect_bad_tokenizer(tokenizer_copy("tok_decarr", [](auto& j) { j["decoder"] = {1, 2}; }), "decoder");
  expect_bad_tokenizer(tokenizer_copy("tok_regex", [](auto& j) {
                         j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "("}}}, {"behavior", "Isolated"}};
                       }),
                       "pre_tokenizer");
}

TEST_CASE("tokenizer_config.json of the wrong shape") {
  fs::path d = tokenizer_copy("tokcfg_bos", [](auto&) {});
  spit(d / "tokenizer_config.json", R"({"bos_token": 5})");
  expect_bad_tokenizer(d, "bos_token");
  spit(d / "tokenizer_config.json", "[1, 2]");
  expect_bad_tokenizer(d, "tokenizer_config.json");
}

TEST_CASE("config.json fields of the wrong type or range") {
  struct Case { const char* key; nlohmann::json value; };
  for (const Case& c : {Case{"hidden_size", "abc"}, Case{"hidden_size", -64}, Case{"intermediate_size", 0},
                        Case{"num_hidden_layers", int64_t(1) << 40}, Case{"vocab_size", 1.5},
                        Case{"max_position_embeddings", -1}, Case{"rms_norm_eps", "small"},
                        Case{"eos_token_id", "</s>"}, Case{"tie_word_embeddings", "yes"}}) {
    INFO(c.key << " = " << c.value.dump());
    fs::path d = model_copy("cfgfield");
    edit_config(d, [&](auto& j) { j[c.key] = c.value; });
    expect_bad_input({"inspect", d.string()}, c.key);
  }
}

TEST_CASE("config.json quantization_config of the wrong shape") {
  for (const nlohmann::json& qc : {nlohmann::json("gptq"), nlohmann::json{{"quant_method", 5}},
                                   nlohmann::json{{"quant_method", "gptq"}, {"bits", "four"}}}) {
    INFO(qc.dump());
    fs::path d = model_copy("cfgqc");
    edit_config(d, [&](auto& j) { j["quantization_config"] = qc; });
    expect_bad_input({"inspect", d.string()}, "quantization_config");
  }
}

TEST_CASE("detokenize: ids that are not numbers or overflow") {
  fs::path m = llmopt::test::shared_dir() / "models/stories260K";
  expect_bad_input({"detokenize", m.string()}, "99999999999999999999", "1 99999999999999999999\n");
  expect_bad_input({"detokenize", m.string()}, "abc", "abc\n");
  expect_bad_input({"detokenize", m.string()}, "12x", "12x 3\n");
  expect_bad_input({"detokenize", m.string()}, "-1", "-1\n");
}

TEST_CASE("a directory where a text file is expected") {
  fs::path m = llmopt::test::shared_dir() / "models/stories260K";
  fs::path d = llmopt::test::temp_dir("textdir");
  expect_bad_input({"generate", m.string(), "--prompts-file", d.string()}, d.string());
  expect_bad_input({"eval", m.string(), "--ppl", d.string()}, d.string());
}

TEST_CASE("compressed-tensors checkpoint with a zero or NaN weight_shape, or a bad target regex") {
  // a real packed checkpoint from quantize, then damaged where the header cannot see it: the values of one
  // weight_shape tensor (a division by zero rows before the fix), or config_groups' target regex
  fs::path tmp = llmopt::test::temp_dir("ct_damage");
  const std::string out = (tmp / "ct").string();
  auto q = run_llmopt({"-q", "quantize", llmopt::test::stories260k(), "-o", out, "--method", "rtn", "--bits", "4",
                       "--group-size", "32", "--format", "compressed-tensors", "--ragged-per-channel"});
  INFO(q.err);
  REQUIRE(q.exit_code == 0);
  const fs::path st = fs::path(out) / "model.safetensors";
  const std::string orig = slurp(st);
  uint64_t n;
  std::memcpy(&n, orig.data(), 8);
  const auto h = nlohmann::json::parse(orig.substr(8, n));
  const std::string name = "model.layers.0.mlp.down_proj.weight_shape";
  REQUIRE(h.contains(name));
  const auto off = h[name]["data_offsets"];
  const size_t b = 8 + n + off[0].get<size_t>(), e = 8 + n + off[1].get<size_t>();
  const std::string dtype = h[name]["dtype"];
  for (const std::string& fill : {std::string(e - b, '\0'), std::string(e - b, '\xff')}) {
    std::string s = orig;
    s.replace(b, e - b, fill);  // zeros; or all-ones bits (-1 as an integer, NaN as a float)
    spit(st, s);
    INFO("dtype " << dtype);
    expect_bad_input({"eval", out, "--ppl", llmopt::test::tinystories_valid(), "--max-windows", "1"}, "weight_shape");
  }
  spit(st, orig);
  edit_config(out, [](auto& j) {
    for (auto& [k, g] : j["quantization_config"]["config_groups"].items()) g["targets"] = {"re:model.(layers"};
  });
  expect_bad_input({"eval", out, "--ppl", llmopt::test::tinystories_valid(), "--max-windows", "1"}, "regex");
}

TEST_CASE("a path longer than the OS allows is bad input, not an internal error") {
  const std::string longname = "/tmp/" + std::string(5000, 'a');
  expect_bad_input({"inspect", longname}, "File name too long");
  expect_bad_input({"tokenize", longname}, "File name too long", "hi\n");
}
