// Generation and perplexity against ../shared/models/reference/stories260K_reference.json (an independent
// numpy implementation whose greedy sample matches llama2.c's published one), plus sampler properties.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/engine/generate.h"
#include "lib/engine/perplexity.h"
#include "tests/support/test_paths.h"

using namespace llmopt;
using namespace llmopt::engine;

namespace {
nlohmann::json reference() {
  return nlohmann::json::parse(read_file(test::shared_dir() / "models/reference/stories260K_reference.json"));
}
std::filesystem::path stories() { return test::shared_dir() / "models/stories260K"; }
}  // namespace

TEST_CASE("greedy from BOS reproduces the reference continuation token for token") {
  auto ref = reference()["greedy_from_bos"]["token_ids_including_bos"].get<std::vector<int32_t>>();
  // up to the first BOS after position 0 (llama2.c stops there); the reference has none in 256 tokens
  size_t end = 1;
  while (end < ref.size() && ref[end] != 1) ++end;
  auto model = model::Model::load(stories());
  GenerateOptions o;
  o.max_new_tokens = int64_t(end - 1);
  auto g = generate(*model, {{1}}, o);
  REQUIRE(g.size() == 1);
  std::vector<int32_t> want(ref.begin() + 1, ref.begin() + int64_t(end));
  CHECK(g[0].ids == want);
  CHECK(g[0].finish_reason == "length");
}

TEST_CASE("a batch of prompts gives the same greedy output as each prompt alone") {
  auto model = model::Model::load(stories());
  std::vector<std::vector<int32_t>> prompts = {{1}, {1, 403, 407, 261, 378}, {1, 403, 407}};
  GenerateOptions o;
  o.max_new_tokens = 40;
  o.stop_ids = {2};
  auto batch = generate(*model, prompts, o);
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto one = generate(*model, {prompts[i]}, o);
    CHECK(one[0].ids == batch[i].ids);
  }
  // the reference continues "Once upon a time" with ", there was a little girl"
  auto ref = reference()["greedy_from_bos"]["token_ids_including_bos"].get<std::vector<int32_t>>();
  CHECK(std::vector<int32_t>(batch[1].ids.begin(), batch[1].ids.begin() + 10) ==
        std::vector<int32_t>(ref.begin() + 5, ref.begin() + 15));
}

TEST_CASE("text generation: BOS-only empty prompt, streaming text equals the final text") {
  auto model = model::Model::load(stories());
  auto tk = tok::Tokenizer::load(stories());
  GenerateOptions o;
  o.max_new_tokens = 30;
  std::string streamed;
  TextStream ts(tk, prompt_ids(tk, model->config(), ""));
  o.on_token = [&](size_t, int32_t t) { streamed += ts.push(t); };
  auto g = generate_text(*model, tk, {""}, o);
  CHECK(g[0].prompt_ids == std::vector<int32_t>{1});
  CHECK(g[0].text.rfind("Once upon a time, there was a little girl named Lily.", 0) == 0);
  CHECK(streamed == g[0].text);
}

TEST_CASE("sampler: seeds, top-k 1 is greedy, frequencies follow softmax(logits / T)") {
  std::vector<float> logits = {1.0f, 2.0f, 0.5f, 2.0f + float(std::log(2.0)), -3.0f};
  Sampler a({0.7f, 0, 1.0f}, 42), b({0.7f, 0, 1.0f}, 42);
  for (int i = 0; i < 100; ++i) CHECK(a.sample(logits) == b.sample(logits));
  Sampler k1({1.5f, 1, 1.0f}, 7);
  for (int i = 0; i < 50; ++i) CHECK(k1.sample(logits) == 3);
  // T = 1: p ∝ exp(logits); top-p 0.5 keeps only token 3 (mass 0.49... < 0.5 -> token 1 too)
  Sampler s({1.0f, 0, 1.0f}, 123);
  std::map<int, int> count;
  const int n = 200000;
  for (int i = 0; i < n; ++i) ++count[s.sample(logits)];
  double z = 0;
  for (float l : logits) z += std::exp(double(l));
  for (int t = 0; t < 5; ++t) CHECK(std::abs(count[t] / double(n) - std::exp(double(logits[size_t(t)])) / z) < 0.005);
  Sampler p({1.0f, 0, 0.6f}, 9);
  std::map<int, int> pc;
  for (int i = 0; i < 20000; ++i) ++pc[p.sample(logits)];
  CHECK(pc.size() == 2);  // tokens 3 (p≈.49) and 1 (p≈.25) reach 0.6
  CHECK(pc.count(3) == 1);
  CHECK(pc.count(1) == 1);
  CHECK_THROWS_AS(check_sampling({-1.0f, 0, 1.0f}), Error);
  CHECK_THROWS_AS(check_sampling({1.0f, 0, 0.0f}), Error);
  CHECK_THROWS_AS(check_sampling({NAN, 0, 1.0f}), Error);
}

TEST_CASE("perplexity reproduces the reference (gptq protocol, ctx 512, 64 windows)") {
  auto model = model::Model::load(stories());
  auto tk = tok::Tokenizer::load(stories());
  auto ref = reference()["perplexity"]["data/tinystories/tinystories_valid_excerpt.txt"];
  auto ids = tk.encode(read_file(test::shared_dir() / "data/tinystories/tinystories_valid_excerpt.txt"), false);
  PplOptions o;
  o.ctx = 512;
  o.max_windows = 64;
  auto r = perplexity(*model, ids, o);
  MESSAGE("ppl " << r.ppl << " nll " << r.mean_nll << " reference " << ref["ppl"]);
  CHECK(r.windows == 64);
  CHECK(r.tokens_scored == ref["scored_tokens"].get<int64_t>());
  CHECK(std::abs(r.ppl - ref["ppl"].get<double>()) < 0.0005 * ref["ppl"].get<double>());
  CHECK(std::abs(r.mean_nll - ref["mean_nll"].get<double>()) < 2e-5);
  CHECK_FALSE(r.kl.has_value());
}

TEST_CASE("KL against itself is 0 with full top-1 agreement; GQA and MHA twins agree; llamacpp scoring") {
  auto model = model::Model::load(stories());
  auto mha = model::Model::load(test::shared_dir() / "models/stories260K-mha");
  auto tk = tok::Tokenizer::load(stories());
  auto text = read_file(test::shared_dir() / "data/tinystories/tinystories_valid_excerpt.txt").substr(0, 40000);
  auto ids = tk.encode(text, false);
  PplOptions o;
  o.ctx = 128;
  o.max_windows = 4;
  auto self = perplexity(*model, ids, o, model.get());
  CHECK(*self.kl == doctest::Approx(0.0).epsilon(1e-12));
  CHECK(*self.top1_agreement == 1.0);
  auto twin = perplexity(*mha, ids, o, model.get());
  CHECK(*twin.kl < 1e-9);
  CHECK(twin.ppl == doctest::Approx(self.ppl).epsilon(1e-5));

  auto with_bos = tk.encode(text, true);
  o.protocol = PplProtocol::LlamaCpp;
  o.bos_id = 1;
  auto lc = perplexity(*model, with_bos, o);
  CHECK(lc.windows == 4);
  CHECK(lc.tokens_scored == 4 * (128 - 1 - 64));
  CHECK(lc.ppl > 1.0);
  CHECK(lc.ppl < self.ppl);  // scoring only the second half of each window (more context) lowers it
  std::vector<int32_t> few(ids.begin(), ids.begin() + 200);
  CHECK_THROWS_AS(perplexity(*model, few, o), Error);  // llamacpp needs 2 x ctx tokens
}

TEST_CASE("llamacpp protocol reproduces llama.cpp's llama-perplexity (testdata/forward/llamacpp_ppl.json)") {
  auto ref = nlohmann::json::parse(read_file(test::testdata_dir() / "forward/llamacpp_ppl.json"));
  auto model = model::Model::load(stories());
  auto tk = tok::Tokenizer::load(stories());
  auto text = read_file(test::shared_dir() / ref["text"].get<std::string>()).substr(0, ref["bytes"].get<size_t>());
  auto ids = tk.encode(text, true);  // llama-perplexity tokenizes with BOS
  PplOptions o;
  o.ctx = ref["ctx"];
  o.protocol = PplProtocol::LlamaCpp;
  o.bos_id = tk.bos_id();
  auto r = perplexity(*model, ids, o);
  MESSAGE("llmopt " << r.ppl << " llama.cpp " << ref["ppl"]);
  CHECK(r.windows == ref["chunks"].get<int64_t>());
  CHECK(std::abs(r.ppl - ref["ppl"].get<double>()) < 1e-3);
}
