// `llmopt generate` and `llmopt eval` end to end on stories260K: streamed greedy text equals the reference
// continuation, batches, seeds, JSON shape, and bad flags (non-zero exit, one line on stderr, no crash).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "tests/support/test_paths.h"

using llmopt::test::count_lines;
using llmopt::test::run_llmopt;
using nlohmann::json;

namespace {
std::string model() { return (llmopt::test::shared_dir() / "models/stories260K").string(); }
std::string tinystories() { return (llmopt::test::shared_dir() / "data/tinystories/tinystories_valid_excerpt.txt").string(); }

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(json::parse(line));
  return v;
}

}  // namespace

TEST_CASE("generate: one prompt streams the greedy continuation") {
  auto r = run_llmopt({"generate", model(), "--prompt", "Once upon a time", "--max-new-tokens", "40"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.rfind(", there was a little girl named Lily. She loved to play outside in the park.", 0) == 0);
  CHECK(r.err.find("tokens/s") != std::string::npos);
  auto q = run_llmopt({"--quiet", "generate", model(), "--prompt", "Once upon a time", "--max-new-tokens", "40"});
  CHECK(q.out == r.out);
  CHECK(q.err.empty());
}

TEST_CASE("generate: a batch from stdin, JSON per prompt, same text as prompts run alone") {
  const std::string prompts = "Once upon a time\n\nThe little dog\n";
  auto r = run_llmopt({"-q", "generate", model(), "--prompts-file", "-", "--max-new-tokens", "30", "--json"}, prompts);
  REQUIRE(r.exit_code == 0);
  auto js = json_lines(r.out);
  REQUIRE(js.size() == 4);
  CHECK(js.back()["summary"]["requests"] == 3);  // the summary object comes last
  js.pop_back();
  const char* want[] = {"Once upon a time", "", "The little dog"};
  for (size_t i = 0; i < 3; ++i) {
    const json& j = js[i];
    CHECK(j["prompt"] == want[i]);
    for (const char* k : {"prompt", "text", "ids", "prompt_tokens", "generated_tokens"}) CHECK(j.contains(k));
    CHECK(j["generated_tokens"].get<size_t>() == j["ids"].size());
    CHECK(j["generated_tokens"].get<int>() <= 30);
    auto one = run_llmopt({"-q", "generate", model(), "--prompt", want[i], "--max-new-tokens", "30", "--json"});
    REQUIRE(one.exit_code == 0);
    CHECK(json_lines(one.out)[0]["text"] == j["text"]);
  }
  CHECK(js[1]["prompt_tokens"] == 1);  // empty prompt = BOS only
  CHECK(js[1]["text"].get<std::string>().rfind("Once upon a time, there was a little girl named Lily.", 0) == 0);
}

TEST_CASE("generate: same seed, same sample; valid ids; another seed differs") {
  std::vector<std::string> args = {"-q", "generate", model(), "--prompt", "The cat", "--max-new-tokens", "40",
                                   "--temperature", "1.0", "--top-k", "50", "--top-p", "0.95", "--json", "--seed"};
  auto a1 = args, a2 = args, b = args;
  a1.push_back("7");
  a2.push_back("7");
  b.push_back("8");
  auto r1 = run_llmopt(a1), r2 = run_llmopt(a2), r3 = run_llmopt(b);
  REQUIRE(r1.exit_code == 0);
  REQUIRE(r3.exit_code == 0);
  // the first line is the request's object (timings differ from run to run), the last the summary
  auto j1 = json_lines(r1.out)[0], j2 = json_lines(r2.out)[0], j3 = json_lines(r3.out)[0];
  CHECK(j1["ids"] == j2["ids"]);
  CHECK(j1["text"] == j2["text"]);
  CHECK(j1["ids"] != j3["ids"]);
  for (int id : j1["ids"]) CHECK((id >= 0 && id < 512));
}

TEST_CASE("eval: JSON with ppl and tokens_scored; KL against a base model") {
  auto r = run_llmopt({"-q", "eval", model(), "--ppl", tinystories(), "--ctx", "256", "--max-windows", "4", "--json"});
  REQUIRE(r.exit_code == 0);
  auto j = json::parse(r.out);
  CHECK(j["tokens_scored"] == 4 * 255);
  CHECK(j["ppl"].get<double>() > 2.0);
  CHECK(j["ppl"].get<double>() < 8.0);
  CHECK_FALSE(j.contains("kl"));
  auto mha = (llmopt::test::shared_dir() / "models/stories260K-mha").string();
  auto k = run_llmopt({"-q", "eval", mha, "--ppl", tinystories(), "--ctx", "256", "--max-windows", "4",
                       "--kl-base", model(), "--json"});
  REQUIRE(k.exit_code == 0);
  auto jk = json::parse(k.out);
  CHECK(jk["kl"].get<double>() < 1e-8);
  CHECK(jk["top1_agreement"].get<double>() == 1.0);
  CHECK(jk["ppl"].get<double>() == doctest::Approx(j["ppl"].get<double>()).epsilon(1e-5));
  auto lc = run_llmopt({"-q", "eval", model(), "--ppl", tinystories(), "--ctx", "256", "--max-windows", "4",
                        "--protocol", "llamacpp", "--json"});
  REQUIRE(lc.exit_code == 0);
  CHECK(json::parse(lc.out)["tokens_scored"] == 4 * 127);
}

TEST_CASE("bad flags and inputs: non-zero exit, one line on stderr, nothing on stdout") {
  const std::string tmp = llmopt::test::temp_dir("gen_eval_cli").string();
  std::ofstream(tmp + "/short.txt") << "Once upon a time";
  std::vector<std::vector<std::string>> bad = {
      {"generate", model(), "--prompt", "x", "--temperature", "-1"},
      {"generate", model(), "--prompt", "x", "--temperature", "nan"},
      {"generate", model(), "--prompt", "x", "--top-p", "0"},
      {"generate", model(), "--prompt", "x", "--top-k", "-3"},
      {"generate", model(), "--prompt", "x", "--max-new-tokens", "-1"},
      {"generate", model(), "--prompt", "x", "--temperature", "abc"},
      {"generate", model(), "--prompts-file", tmp + "/missing.txt"},
      {"generate", model()},
      {"generate", tmp + "/no-model", "--prompt", "x"},
      {"eval", model(), "--ppl", tmp + "/missing.txt"},
      {"eval", model(), "--ppl", tinystories(), "--protocol", "bogus"},
      {"eval", model(), "--ppl", tinystories(), "--ctx", "1"},
      {"eval", model(), "--ppl", tmp + "/short.txt"},
      {"eval", model(), "--ppl", tinystories(), "--kl-base", tmp + "/no-model"},
      {"eval", model()},
  };
  for (const auto& args : bad) {
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    CAPTURE(cmd);
    auto r = run_llmopt(args);
    CHECK(r.exit_code != 0);
    CHECK(r.signal == 0);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.out.empty());
  }
}
