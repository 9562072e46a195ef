// The CPU forward pass against Hugging Face transformers fp32 logits (scripts/golden/forward_golden.py):
// stories260K (GQA and MHA), tiny random Llama (llama3 rope), Llama (linear rope, tied, bf16 weights),
// Qwen2 (biases), Qwen3 (q/k norm, head_dim != hidden/heads), Mistral. max |Δlogit| ≤ 1e-4 everywhere,
// whether the 64 tokens go in as one prefill, token by token through the KV cache, or in a ragged batch.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/model/forward.h"
#include "tests/support/test_paths.h"

using namespace llmopt;
using namespace llmopt::model;

namespace {

struct Golden {
  std::string name;
  std::filesystem::path model_dir;
  std::vector<int32_t> ids;
  int64_t vocab = 0;
  std::vector<float> logits;  // [ids.size(), vocab]
};

Golden load_golden(const std::string& name) {
  const auto dir = test::testdata_dir() / "forward";
  auto j = nlohmann::json::parse(read_file(dir / (name + ".json")));
  Golden g;
  g.name = name;
  const std::string m = j["model"];
  g.model_dir = test::source_dir() / m;
  g.ids = j["ids"].get<std::vector<int32_t>>();
  g.vocab = j["shape"][1];
  const std::string bin = read_file(dir / (name + ".bin"));
  REQUIRE(bin.size() == g.ids.size() * size_t(g.vocab) * 4);
  g.logits.resize(bin.size() / 4);
  std::memcpy(g.logits.data(), bin.data(), bin.size());
  return g;
}

// max |a - golden rows [row0, row0 + rows)|
double max_diff(const Golden& g, const float* a, int64_t row0, int64_t rows) {
  double m = 0;
  for (int64_t i = 0; i < rows * g.vocab; ++i) m = std::max(m, std::abs(double(a[i]) - g.logits[size_t(row0 * g.vocab + i)]));
  return m;
}

const char* kModels[] = {"stories260K", "stories260K-mha", "tiny-llama3", "tiny-llama-linear-bf16",
                         "tiny-qwen2",  "tiny-qwen3",      "tiny-mistral"};
constexpr double kTol = 1e-4;

}  // namespace

TEST_CASE("prefill logits match transformers at every position") {
  for (std::string name : kModels) {
    CAPTURE(name);
    Golden g = load_golden(name);
    auto model = Model::load(g.model_dir);
    REQUIRE(model->config().vocab_size == g.vocab);
    auto kv = model->make_cache(1);
    Model::SeqInput in{0, g.ids, true};
    auto logits = run_step(*model, *kv, {&in, 1});
    REQUIRE(logits.size() == g.logits.size());
    double d = max_diff(g, logits.data(), 0, int64_t(g.ids.size()));
    MESSAGE(name << ": max |dlogit| = " << d);
    CHECK(d <= kTol);
    CHECK(kv->length(0) == int64_t(g.ids.size()));
  }
}

TEST_CASE("prefill then token-by-token decode through the KV cache") {
  for (std::string name : {"stories260K", "tiny-qwen3", "tiny-llama-linear-bf16", "tiny-qwen2"}) {
    CAPTURE(name);
    Golden g = load_golden(name);
    auto model = Model::load(g.model_dir);
    auto kv = model->make_cache(1);
    const int64_t P = 20;
    Model::SeqInput in{0, std::span(g.ids).first(P), false};
    auto l0 = run_step(*model, *kv, {&in, 1});
    CHECK(max_diff(g, l0.data(), P - 1, 1) <= kTol);
    double worst = 0;
    for (int64_t t = P; t < int64_t(g.ids.size()); ++t) {
      Model::SeqInput step{0, std::span(g.ids).subspan(size_t(t), 1), false};
      auto l = run_step(*model, *kv, {&step, 1});
      worst = std::max(worst, max_diff(g, l.data(), t, 1));
    }
    CHECK(worst <= kTol);
  }
}

TEST_CASE("ragged batch: sequences at different positions in one step") {
  Golden g = load_golden("tiny-llama3");
  auto model = Model::load(g.model_dir);
  auto kv = model->make_cache(3);
  // slot 0: first 10 tokens, slot 1: first 30, slot 2: nothing yet
  Model::SeqInput a{0, std::span(g.ids).first(10), false}, b{1, std::span(g.ids).first(30), false};
  Model::SeqInput first[] = {a, b};
  run_step(*model, *kv, first);
  // one step: slot 0 continues with 5 tokens (all logits), slot 1 decodes one, slot 2 prefills 64
  Model::SeqInput step[] = {{0, std::span(g.ids).subspan(10, 5), true},
                            {1, std::span(g.ids).subspan(30, 1), false},
                            {2, g.ids, true}};
  auto l = run_step(*model, *kv, step);
  REQUIRE(l.size() == size_t((5 + 1 + 64) * g.vocab));
  CHECK(max_diff(g, l.data(), 10, 5) <= kTol);
  CHECK(max_diff(g, l.data() + 5 * g.vocab, 30, 1) <= kTol);
  CHECK(max_diff(g, l.data() + 6 * g.vocab, 0, 64) <= kTol);
  CHECK(kv->length(0) == 15);
  CHECK(kv->length(1) == 31);
  CHECK(kv->length(2) == 64);
}

TEST_CASE("layer by layer without a cache, observing each linear's input (calibration path)") {
  Golden g = load_golden("tiny-qwen2");
  auto model = Model::load(g.model_dir);
  const ModelConfig& c = model->config();
  const int64_t T = int64_t(g.ids.size());
  // two copies of the prompt as a calibration batch of two sequences
  std::vector<int32_t> ids = g.ids;
  ids.insert(ids.end(), g.ids.begin(), g.ids.end());
  std::vector<float> x(size_t(2 * T * c.hidden_size));
  embed_tokens(model->weights(), ids, x.data());
  SeqRows seqs[] = {{0, 0, T, 0}, {1, T, T, 0}};
  std::vector<std::string> seen;
  Observer obs = [&](int layer, const Linear& l, const float*, int64_t rows, int64_t cols) {
    CHECK(rows == 2 * T);
    CHECK(cols == l.in);
    seen.push_back(std::to_string(layer) + ":" + l.name.substr(l.name.rfind('.') + 1));
  };
  LayerContext ctx{&c, &model->inv_freq(), seqs, nullptr, &obs};
  for (const auto& layer : model->weights().layers) decoder_layer_forward(ctx, layer, x.data());
  CHECK(seen.size() == size_t(7 * c.num_hidden_layers));
  CHECK(seen[0] == "0:q_proj");
  CHECK(seen[3] == "0:o_proj");
  CHECK(seen[6] == "0:down_proj");
  std::vector<int64_t> rows(size_t(2 * T));
  for (int64_t i = 0; i < 2 * T; ++i) rows[size_t(i)] = i;
  std::vector<float> logits(size_t(2 * T * c.vocab_size));
  final_logits(c, model->weights(), x.data(), rows, logits.data());
  CHECK(max_diff(g, logits.data(), 0, T) <= kTol);
  CHECK(max_diff(g, logits.data() + T * g.vocab, 0, T) <= kTol);
}

TEST_CASE("bad token id is an error, not a crash") {
  Golden g = load_golden("tiny-mistral");
  auto model = Model::load(g.model_dir);
  auto kv = model->make_cache(1);
  std::vector<int32_t> ids = {1, 5, int32_t(g.vocab)};
  Model::SeqInput in{0, ids, false};
  CHECK_THROWS_AS(run_step(*model, *kv, {&in, 1}), Error);
}
