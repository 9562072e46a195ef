// `llmopt tokenize` / `llmopt detokenize`: ids per stdin line equal HF tokenizers' (testdata/tokenizer,
// from scripts/golden/tokenizer_golden.py), empty lines stay empty, --json/--add-special/--split-special,
// a directory holding only tokenizer.json + tokenizer_config.json, a .gguf file (llama.cpp's ids), and errors.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "../tokenizer/golden.h"
#include "support/test_paths.h"

using namespace llmopt::test;
using Ids = std::vector<int32_t>;

namespace {
std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (auto& l : lines) s += l + "\n";
  return s;
}
}  // namespace

TEST_CASE("tokenize prints HF's ids for each line of wikitext; detokenize gives the lines back") {
  for (const char* name : {"llama2-tokenizer-32k", "qwen3"}) {
    CAPTURE(std::string(name));
    std::string dir;
    for (auto& t : tokgold::tokenizers()) if (std::string(t.name) == name) dir = (shared_dir() / t.dir).string();
    auto lines = tokgold::read_lines(shared_dir() / "data/wikitext-2-raw/wiki.test.raw");
    lines.resize(100);
    auto head = nlohmann::json::parse(llmopt::read_file(testdata_dir() / "tokenizer" / (std::string(name) + ".head.json")));
    auto r = run_llmopt({"tokenize", dir}, join_lines(lines));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> want;
    for (size_t i = 0; i < lines.size(); i++) want.push_back(fmt::format("{}", fmt::join(head["wiki"][i].get<Ids>(), " ")));
    CHECK(r.out == join_lines(want));
    CHECK(want[0].size() > 0);
    auto back = run_llmopt({"detokenize", dir}, r.out);
    REQUIRE(back.exit_code == 0);
    CHECK(back.out == join_lines(lines));
  }
}

TEST_CASE("empty lines, no trailing newline, --json, --add-special, --split-special") {
  auto dir = (shared_dir() / "models/stories260K").string();
  const auto& cases = nlohmann::json::parse(llmopt::read_file(testdata_dir() / "tokenizer" / "cases.json"));
  const auto& strings = cases["strings"];
  const auto& want = cases["tokenizers"]["stories260K"];
  auto idx = [&](const std::string& s) {
    for (size_t i = 0; i < strings.size(); i++) if (strings[i] == s) return i;
    FAIL("no case " << s);
    return size_t(0);
  };
  auto ids = [&](const char* key, const std::string& s) { return fmt::format("{}", fmt::join(want[key][idx(s)].get<Ids>(), " ")); };

  auto r = run_llmopt({"tokenize", dir}, "Hello world\n\n<s>hi</s> <unk>");  // last line has no "\n"
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == ids("encode", "Hello world") + "\n\n" + ids("encode", "<s>hi</s> <unk>") + "\n");

  r = run_llmopt({"tokenize", dir, "--split-special"}, "<s>hi</s> <unk>\n");
  CHECK(r.out == ids("encode_split_special", "<s>hi</s> <unk>") + "\n");

  r = run_llmopt({"tokenize", dir, "--add-special", "--json"}, "Hello world\n\n");
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 2);
  CHECK(j[0].get<Ids>() == want["encode_add_special"][idx("Hello world")].get<Ids>());
  CHECK(j[1].get<Ids>() == Ids{1});  // BOS alone, as HF on ""

  r = run_llmopt({"detokenize", dir, "--skip-special"}, "1 346 306 414 263 304 341 2\n\n");
  CHECK(r.out == "Hello world\n\n");
}

TEST_CASE("a directory with only tokenizer.json and tokenizer_config.json") {
  auto tmp = temp_dir("tokcli");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(shared_dir() / "models/tokenizers/llama3" / f, tmp / f);
  auto r = run_llmopt({"tokenize", tmp.string(), "--add-special"}, "Hello world\n");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "9906 1917\n");  // HF: Llama-3's ByteLevel post-processor adds no BOS
  std::filesystem::remove_all(tmp);
}

TEST_CASE("errors: missing tokenizer.json, bad ids") {
  auto tmp = temp_dir("tokcli-bad");
  auto r = run_llmopt({"tokenize", tmp.string()}, "x\n");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("tokenizer.json") != std::string::npos);
  auto dir = (shared_dir() / "models/stories260K").string();
  r = run_llmopt({"detokenize", dir}, "1 2\n3 abc\n");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("line 2") != std::string::npos);
  r = run_llmopt({"detokenize", dir}, "100000\n");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("100000") != std::string::npos);
  std::filesystem::remove_all(tmp);
}

TEST_CASE("tokenize and detokenize take a .gguf file: llama.cpp's ids for SmolLM2 (testdata/tokenizer/gguf)") {
  auto gguf = (shared_dir() / "models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf").string();
  auto lines = tokgold::read_lines(shared_dir() / "data/wikitext-2-raw/wiki.test.raw");
  lines.resize(100);
  auto head = nlohmann::json::parse(llmopt::read_file(testdata_dir() / "tokenizer/gguf/smollm2.head.json"));
  auto r = run_llmopt({"tokenize", gguf}, join_lines(lines));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> want;
  for (size_t i = 0; i < lines.size(); i++) want.push_back(fmt::format("{}", fmt::join(head["wiki"][i].get<Ids>(), " ")));
  CHECK(r.out == join_lines(want));
  auto back = run_llmopt({"detokenize", gguf}, r.out);
  REQUIRE(back.exit_code == 0);
  CHECK(back.out == join_lines(lines));

  auto bad = temp_dir("tok-cli-gguf") / "truncated.gguf";
  std::string bytes = llmopt::read_file(gguf).substr(0, 4096);
  { std::ofstream(bad, std::ios::binary) << bytes; }
  auto e = run_llmopt({"tokenize", bad.string()}, "Hello\n");
  CHECK(e.exit_code == 1);
  CHECK(e.out.empty());
  CHECK(e.err.find(bad.string()) != std::string::npos);
  CHECK(std::count(e.err.begin(), e.err.end(), '\n') == 1);
}
