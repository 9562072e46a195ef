// `llmopt` on .gguf files: inspect lists every tensor with its GGUF storage type (against gguf.GGUFReader's
// view in testdata/gguf/smollm2_expect.json), and malformed GGUF files give one line on stderr naming the file,
// exit code 1 and no output.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

#include "lib/core/fsutil.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using llmopt::test::run_llmopt;

namespace {
fs::path smollm2() { return llmopt::test::shared_dir() / "models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf"; }
void write_bytes(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f.write(s.data(), std::streamsize(s.size()));
}
// A safetensors file's bytes after its JSON header; the header's tensor entries without "__metadata__".
std::pair<std::string, nlohmann::json> data_section(const fs::path& p) {
  const std::string b = llmopt::read_file(p);
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  auto h = nlohmann::json::parse(b.substr(8, n));
  h.erase("__metadata__");
  return {b.substr(8 + n), h};
}
}  // namespace

TEST_CASE("inspect FILE.gguf: tensors with their GGUF types, parameters and KV size") {
  if (!fs::exists(smollm2())) {
    MESSAGE("skipped: " << smollm2() << " is absent");
    return;
  }
  const auto e = nlohmann::json::parse(llmopt::read_file(llmopt::test::testdata_dir() / "gguf" / "smollm2_expect.json"));
  auto r = run_llmopt({"inspect", smollm2().string(), "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.out);
  int64_t params = 0;
  for (const auto& t : e["tensors"]) {
    int64_t n = 1;
    for (auto d : t["shape"]) n *= d.get<int64_t>();
    params += n;
  }
  CHECK(j["parameters"].get<int64_t>() == params);
  CHECK(j["architecture"] == "llama");
  CHECK(j["kv_bytes_per_token"].get<int64_t>() == 2 * 30 * 3 * 64 * 4);  // fp32 K/V
  REQUIRE(j["gguf_tensors"].size() == e["tensors"].size());
  for (size_t i = 0; i < e["tensors"].size(); ++i) {
    CHECK(j["gguf_tensors"][i]["name"] == e["tensors"][i]["name"]);
    CHECK(j["gguf_tensors"][i]["type"] == e["tensors"][i]["type"]);
    CHECK(j["gguf_tensors"][i]["bytes"] == e["tensors"][i]["nbytes"]);
  }
  CHECK(j["gguf_tensors"][0]["hf_name"] == "model.embed_tokens.weight");
  CHECK(j["linear_storage"]["linears"][0]["format"] == "gguf Q4_1");
  auto text = run_llmopt({"inspect", smollm2().string()});
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("blk.0.attn_q.weight") != std::string::npos);
  CHECK(text.out.find("model.layers.0.self_attn.q_proj.weight") != std::string::npos);
}

TEST_CASE("malformed .gguf files: one line naming the file, exit 1, no output") {
  const fs::path dir = llmopt::test::temp_dir("gguf-cli");
  const std::string good = llmopt::read_file(llmopt::test::testdata_dir() / "gguf" / "pywriter.gguf");
  std::string magic = good, version = good, count = good;
  magic[1] = 'X';
  version[4] = 9;
  count[8 + 7] = 0x7f;  // tensor count ~2^63
  const std::pair<const char*, std::string> cases[] = {
      {"truncated", good.substr(0, good.size() / 2)}, {"header", good.substr(0, 100)}, {"magic", magic},
      {"version", version}, {"count", count}};
  for (const auto& [tag, bytes] : cases) {
    const fs::path p = dir / (std::string(tag) + ".gguf");
    write_bytes(p, bytes);
    for (const std::vector<std::string>& args : {std::vector<std::string>{"inspect", p.string()},
                                                 std::vector<std::string>{"generate", p.string(), "--prompt", "hi"},
                                                 std::vector<std::string>{"quantize", p.string(), "-o", (dir / "out").string(),
                                                                          "--method", "rtn"}}) {
      INFO(tag, " ", args[0]);
      auto r = run_llmopt(args);
      CHECK(r.exit_code == 1);
      CHECK(r.out.empty());
      CHECK(r.err.find(p.string()) != std::string::npos);
      CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
      CHECK(r.err.find("tokenizer") == std::string::npos);  // the model file is read (and rejected) first
      CHECK_FALSE(fs::exists(dir / "out"));
    }
  }
}

TEST_CASE("quantize, prune and convert read a .gguf as the dense model it stores: same weights as from the HF dir") {
  // testdata/gguf/tiny-qwen2.gguf holds testdata/models/tiny-qwen2's tensors (scripts/golden/gguf_arch_golden.py).
  const fs::path gg = llmopt::test::testdata_dir() / "gguf" / "tiny-qwen2.gguf";
  const fs::path hf = llmopt::test::testdata_dir() / "models" / "tiny-qwen2";
  const fs::path dir = llmopt::test::temp_dir("gguf-compress");
  const std::vector<std::vector<std::string>> commands = {
      {"quantize", "--method", "rtn", "--bits", "4", "--group-size", "16", "--format", "compressed-tensors"},
      {"prune", "--method", "magnitude", "--sparsity", "0.5"},
      {"convert", "--kv-heads", "1"}};
  for (const auto& cmd : commands) {
    INFO(cmd[0]);
    std::vector<fs::path> outs;
    for (const fs::path& in : {gg, hf}) {
      outs.push_back(dir / (cmd[0] + (in == gg ? "-gguf" : "-hf")));
      std::vector<std::string> args = {"--quiet", cmd[0], in.string(), "-o", outs.back().string()};
      args.insert(args.end(), cmd.begin() + 1, cmd.end());
      auto r = run_llmopt(args);
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
    }
    // The data sections (the headers may differ in __metadata__: the HF file's {"format": "pt"} is carried over).
    CHECK(data_section(outs[0] / "model.safetensors") == data_section(outs[1] / "model.safetensors"));
    const auto a = nlohmann::json::parse(llmopt::read_file(outs[0] / "config.json"));
    const auto b = nlohmann::json::parse(llmopt::read_file(outs[1] / "config.json"));
    for (const char* k : {"model_type", "num_hidden_layers", "hidden_size", "num_key_value_heads", "vocab_size",
                          "quantization_config", "sparsity_config"})
      CHECK(a.value(k, nlohmann::json()) == b.value(k, nlohmann::json()));
  }
}
