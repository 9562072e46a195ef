// The calibration runner on stories260K: seeded windows, the call order of a Method (true sequential: each
// group is observed, then compressed, before the next is observed), later linears observing the outputs of
// the already compressed ones, and the next layer's input computed with the compressed layer.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "lib/calib/runner.h"
#include "lib/core/error.h"
#include "lib/model/linear.h"
#include "tests/support/test_paths.h"

using namespace llmopt;

namespace {

std::filesystem::path model_dir() { return test::shared_dir() / "models/stories260K"; }

// Records every call; compresses a linear to zero (zero=true) or keeps it (zero=false). Keeps the first
// observed batch of every linear.
struct Recorder : calib::Method {
  bool zero = true;
  std::vector<std::string> calls;
  std::map<std::string, std::vector<float>> first_x;
  std::map<std::string, int64_t> rows_seen;
  std::string name() const override { return "recorder"; }
  void begin(const model::Linear& l) override { calls.push_back("begin " + l.name); }
  void observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) override {
    calls.push_back("observe " + l.name);
    if (!first_x.count(l.name)) first_x[l.name].assign(x, x + rows * cols);
    rows_seen[l.name] += rows;
  }
  model::Linear compress(const model::Linear& l) override {
    calls.push_back("compress " + l.name);
    auto w = model::linear_weight_f32(l);
    if (zero) std::fill(w.begin(), w.end(), 0.0f);
    return model::Linear::owned_f32(l.name, std::move(w), l.out, l.in, l.bias);
  }
};

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

std::vector<std::vector<int32_t>> windows(int n, int len, uint64_t seed) {
  std::vector<int32_t> ids(2000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7919 + 13) % 500);  // any valid ids
  return calib::sample_windows(ids, n, len, seed);
}

}  // namespace

TEST_CASE("sample_windows: seeded, in range, reproducible") {
  std::vector<int32_t> ids(1000);
  std::iota(ids.begin(), ids.end(), 0);
  auto a = calib::sample_windows(ids, 8, 100, 42), b = calib::sample_windows(ids, 8, 100, 42);
  auto c = calib::sample_windows(ids, 8, 100, 43);
  CHECK(a == b);
  CHECK(a != c);
  REQUIRE(a.size() == 8);
  for (auto& w : a) {
    REQUIRE(w.size() == 100);
    CHECK(w.front() >= 0);
    CHECK(w.front() <= 1000 - 100 - 1);
    for (size_t i = 1; i < w.size(); ++i) CHECK(w[i] == w[i - 1] + 1);  // a contiguous slice of the text
  }
  // the first draw of mt19937_64(42), modulo the range: the same on every platform
  std::mt19937_64 rng(42);
  CHECK(a[0][0] == int32_t(rng() % 900));
  CHECK_THROWS_WITH_AS(calib::sample_windows(ids, 4, 1000, 0), doctest::Contains("fewer than seqlen + 1"), Error);
  CHECK_THROWS_AS(calib::sample_windows(ids, 0, 10, 0), Error);
}

TEST_CASE("ChannelStats: per-column sum of squares, mean and max of |x|") {
  calib::ChannelStats s;
  const float x[6] = {1, -2, 3, -4, 0.5f, 0};
  s.add(x, 2, 3);
  s.add(x, 1, 3);
  CHECK(s.rows == 3);
  CHECK(s.norm_sq() == std::vector<float>{1 + 16 + 1, 4 + 0.25f + 4, 9 + 0 + 9});
  CHECK(s.max_abs == std::vector<float>{4, 2, 3});
  CHECK(s.mean_abs()[0] == doctest::Approx(6.0 / 3));
}

TEST_CASE("runner: true-sequential order, compressed inputs observed, layer by layer") {
  const auto ck = model::Checkpoint::load(model_dir());
  const int L = int(ck.config.num_hidden_layers);
  const auto wins = windows(3, 32, 7);
  Recorder zero;
  std::vector<int> sunk;
  auto st = calib::run_windows(ck, zero, wins, 2, [&](model::LayerWeights& w) {
    sunk.push_back(w.index);
    for (auto* l : w.linears()) CHECK(max_abs(model::linear_weight_f32(*l)) == 0.0);  // the compressed linears
  });
  CHECK(st.layers == L);
  CHECK(st.tokens == 3 * 32);
  CHECK(sunk == std::vector<int>{0, 1, 2, 3, 4});

  // call order in layer 0: each group begun, observed over both batches (2 + 1 windows), compressed
  const std::string p = "model.layers.0.";
  const std::vector<std::string> want = {
      "begin " + p + "self_attn.q_proj",     "begin " + p + "self_attn.k_proj",      "begin " + p + "self_attn.v_proj",
      "observe " + p + "self_attn.q_proj",   "observe " + p + "self_attn.k_proj",    "observe " + p + "self_attn.v_proj",
      "observe " + p + "self_attn.q_proj",   "observe " + p + "self_attn.k_proj",    "observe " + p + "self_attn.v_proj",
      "compress " + p + "self_attn.q_proj",  "compress " + p + "self_attn.k_proj",   "compress " + p + "self_attn.v_proj",
      "begin " + p + "self_attn.o_proj",     "observe " + p + "self_attn.o_proj",    "observe " + p + "self_attn.o_proj",
      "compress " + p + "self_attn.o_proj",  "begin " + p + "mlp.gate_proj",         "begin " + p + "mlp.up_proj",
      "observe " + p + "mlp.gate_proj",      "observe " + p + "mlp.up_proj",         "observe " + p + "mlp.gate_proj",
      "observe " + p + "mlp.up_proj",        "compress " + p + "mlp.gate_proj",      "compress " + p + "mlp.up_proj",
      "begin " + p + "mlp.down_proj",        "observe " + p + "mlp.down_proj",       "observe " + p + "mlp.down_proj",
      "compress " + p + "mlp.down_proj"};
  REQUIRE(zero.calls.size() == want.size() * size_t(L));
  CHECK(std::vector<std::string>(zero.calls.begin(), zero.calls.begin() + long(want.size())) == want);
  CHECK(zero.rows_seen[p + "self_attn.q_proj"] == 96);

  // q, k, v zeroed → attention output 0 → o_proj observes zeros; gate, up zeroed → down observes zeros
  for (int l = 0; l < L; ++l) {
    const std::string pl = "model.layers." + std::to_string(l) + ".";
    CHECK(max_abs(zero.first_x[pl + "self_attn.o_proj"]) == 0.0);
    CHECK(max_abs(zero.first_x[pl + "mlp.down_proj"]) == 0.0);
    CHECK(max_abs(zero.first_x[pl + "self_attn.q_proj"]) > 0.0);
  }
  // every compressed layer is the identity, so every layer's q input is rmsnorm(embedding) · its own norm
  // weight: dividing by the norm weight gives layer 0's
  std::vector<float> g0 = model::load_layer(ck, 0).input_norm, g3 = model::load_layer(ck, 3).input_norm;
  const auto& x0 = zero.first_x["model.layers.0.self_attn.q_proj"];
  const auto& x3 = zero.first_x["model.layers.3.self_attn.q_proj"];
  REQUIRE(x0.size() == x3.size());
  const size_t H = g0.size();
  double err = 0;
  for (size_t i = 0; i < x0.size(); ++i) err = std::max(err, double(std::fabs(x0[i] / g0[i % H] - x3[i] / g3[i % H])));
  CHECK(err < 1e-4);

  // the same with uncompressed linears: o_proj / down_proj see real activations and layer 3 sees other inputs
  Recorder keep;
  keep.zero = false;
  calib::run_windows(ck, keep, wins, 2, [](model::LayerWeights&) {});
  CHECK(max_abs(keep.first_x["model.layers.0.self_attn.o_proj"]) > 0.0);
  CHECK(max_abs(keep.first_x["model.layers.0.mlp.down_proj"]) > 0.0);
  CHECK(keep.first_x["model.layers.0.self_attn.q_proj"] == x0);  // same input to the first layer
  const auto& k3 = keep.first_x["model.layers.3.self_attn.q_proj"];
  double diff = 0;
  for (size_t i = 0; i < x0.size(); ++i) diff = std::max(diff, double(std::fabs(x0[i] / g0[i % H] - k3[i] / g3[i % H])));
  CHECK(diff > 1e-2);
}

TEST_CASE("runner: batching does not change what a method sees; methods without data skip the model") {
  const auto ck = model::Checkpoint::load(model_dir());
  const auto wins = windows(3, 16, 1);
  Recorder a, b;
  a.zero = b.zero = false;
  calib::run_windows(ck, a, wins, 1, [](model::LayerWeights&) {});
  calib::run_windows(ck, b, wins, 3, [](model::LayerWeights&) {});
  // batch 1 vs 3: the first observed batch of b holds a's first window in its first rows
  const auto& xa = a.first_x["model.layers.2.mlp.down_proj"];
  const auto& xb = b.first_x["model.layers.2.mlp.down_proj"];
  REQUIRE(xb.size() == 3 * xa.size());
  double err = 0;
  for (size_t i = 0; i < xa.size(); ++i) err = std::max(err, double(std::fabs(xa[i] - xb[i])));
  CHECK(err < 1e-5);

  struct NoData : Recorder {
    bool needs_calibration() const override { return false; }
  } nd;
  int layers = 0;
  calib::CalibOptions opt;  // no text file: fine without calibration
  calib::run(ck, nd, opt, [&](model::LayerWeights&) { ++layers; });
  CHECK(layers == 5);
  CHECK(nd.first_x.empty());
  CHECK(nd.calls.size() == 5 * 7);

  Recorder needs;
  CHECK_THROWS_WITH_AS(calib::run(ck, needs, opt, [](model::LayerWeights&) {}), doctest::Contains("--calib"), Error);
}
