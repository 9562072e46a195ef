// prune_model end to end on stories260K with TinyStories calibration text: every decoder linear has exactly the
// requested sparsity (floor(cols/2) zeros in every row at 50%; 2 zeros in every 4 inputs at 2:4) for magnitude,
// Wanda and SparseGPT; embeddings, norms and every other tensor are byte-identical; sparsity_config is written;
// the same seed gives the same bytes; Wanda's output equals wanda_prune applied to statistics the test gathers
// itself by running the pruned model over the same calibration windows; SparseGPT reconstructs each layer's
// output better than magnitude; joint SparseGPT + 4-bit puts every kept weight on a 16-level grid.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "formats/safetensors.h"
#include "lib/calib/runner.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/model/forward.h"
#include "lib/prune/prune_model.h"
#include "lib/prune/wanda.h"
#include "lib/tokenizer/tokenizer.h"
#include "tests/support/layer_errors.h"
#include "tests/support/test_paths.h"

using namespace llmopt;
namespace fs = std::filesystem;

namespace {

fs::path model_dir() { return test::shared_dir() / "models/stories260K"; }
fs::path calib_text() { return test::shared_dir() / "data/tinystories/tinystories_train_excerpt.txt"; }
fs::path valid_text() { return test::shared_dir() / "data/tinystories/tinystories_valid_excerpt.txt"; }

prune::PruneOptions opts(prune::Algo a, const std::string& pattern, int nsamples = 8, int seqlen = 64) {
  prune::PruneOptions o;
  o.algo = a;
  if (pattern == "50%") o.pattern.sparsity = 0.5;
  else o.pattern = prune::parse_nm(pattern);
  o.calib.text_file = calib_text();
  o.calib.nsamples = nsamples;
  o.calib.seqlen = seqlen;
  o.calib.seed = 5;
  return o;
}

bool is_decoder_linear(const std::string& name) {
  return name.rfind("model.layers.", 0) == 0 && name.find("_proj.weight") != std::string::npos;
}

std::string bytes(const st::TensorSet& ts, const std::string& name) {
  const auto v = ts.get(name);
  return {reinterpret_cast<const char*>(v.data), v.nbytes()};
}

// 4 windows of 128 tokens of held-out text (the validation excerpt).
std::vector<int32_t> valid_ids(const model::Checkpoint& ck) {
  auto ids = tok::Tokenizer::load(ck.dir).encode(read_file(valid_text()), false);
  ids.resize(4 * 128);
  return ids;
}

}  // namespace

TEST_CASE("magnitude, Wanda, SparseGPT at 50% and 2:4: exact sparsity per row / per 4 inputs; the rest untouched") {
  const fs::path tmp = test::temp_dir("prune_exact");
  const auto in = st::TensorSet::open_dir(model_dir());
  int runs = 0;
  for (auto algo : {prune::Algo::Magnitude, prune::Algo::Wanda, prune::Algo::SparseGpt})
    for (const std::string pattern : {"50%", "2:4"}) {
      const std::string tag = std::string(prune::algo_name(algo)) + (pattern == "2:4" ? "_24" : "_50");
      CAPTURE(tag);
      const auto rep = prune::prune_model(model_dir(), tmp / tag, opts(algo, pattern));
      CHECK(rep.layers == 5);
      CHECK(rep.method == prune::algo_name(algo));
      CHECK(rep.linear_sparsity == doctest::Approx(0.5).epsilon(1e-12));
      const auto cfg = nlohmann::json::parse(read_file(tmp / tag / "config.json"));
      const auto& sc = cfg["sparsity_config"];
      CHECK(sc["format"] == "dense");
      CHECK(sc["sparsity_structure"] == (pattern == "2:4" ? "2:4" : "unstructured"));
      CHECK(sc["targets"] == nlohmann::json::array({"Linear"}));
      CHECK(sc["ignore"] == nlohmann::json::array({"lm_head"}));
      CHECK(sc["global_sparsity"].get<double>() == doctest::Approx(rep.global_sparsity));
      CHECK(!cfg.contains("quantization_config"));
      CHECK(cfg["hidden_size"] == 64);
      CHECK(fs::exists(tmp / tag / "tokenizer.json"));

      const auto out = st::TensorSet::open_dir(tmp / tag);
      REQUIRE(out.names() == in.names());
      int64_t zeros = 0, numel = 0, linears = 0;
      for (const auto& name : in.names()) {
        CAPTURE(name);
        REQUIRE(out.info(name).shape == in.info(name).shape);
        REQUIRE(out.info(name).dtype == in.info(name).dtype);
        const std::vector<float> w = out.get(name).to_f32();
        for (float v : w) zeros += v == 0.0f;
        numel += int64_t(w.size());
        if (!is_decoder_linear(name)) {  // embeddings, norms: not one byte changed
          CHECK(bytes(out, name) == bytes(in, name));
          continue;
        }
        ++linears;
        CHECK(bytes(out, name) != bytes(in, name));
        const int64_t rows = out.info(name).shape[0], cols = out.info(name).shape[1];
        const std::vector<float> w0 = in.get(name).to_f32();
        bool exact = true, kept_unchanged = true;
        for (int64_t r = 0; r < rows; ++r) {
          if (pattern == "2:4") {
            for (int64_t c0 = 0; c0 < cols; c0 += 4)
              exact = exact && std::count(w.begin() + r * cols + c0, w.begin() + r * cols + c0 + 4, 0.0f) == 2;
          } else {
            exact = exact && std::count(w.begin() + r * cols, w.begin() + (r + 1) * cols, 0.0f) == cols / 2;
          }
          for (int64_t c = 0; c < cols; ++c)
            if (w[size_t(r * cols + c)] != 0.0f) kept_unchanged = kept_unchanged && w[size_t(r * cols + c)] == w0[size_t(r * cols + c)];
        }
        CHECK(exact);
        // magnitude and Wanda only zero weights; SparseGPT also updates the kept ones
        CHECK(kept_unchanged == (algo != prune::Algo::SparseGpt));
      }
      CHECK(linears == 35);
      CHECK(rep.global_sparsity == doctest::Approx(double(zeros) / double(numel)).epsilon(1e-12));
      ++runs;
    }
  CHECK(runs == 6);
}

TEST_CASE("the same seed gives the same bytes; another seed other bytes") {
  const fs::path tmp = test::temp_dir("prune_det");
  for (auto algo : {prune::Algo::Wanda, prune::Algo::SparseGpt}) {
    CAPTURE(prune::algo_name(algo));
    const std::string a = prune::algo_name(algo);
    prune::prune_model(model_dir(), tmp / (a + "1"), opts(algo, "50%"));
    prune::prune_model(model_dir(), tmp / (a + "2"), opts(algo, "50%"));
    auto o = opts(algo, "50%");
    o.calib.seed = 6;
    prune::prune_model(model_dir(), tmp / (a + "3"), o);
    CHECK(read_file(tmp / (a + "1/model.safetensors")) == read_file(tmp / (a + "2/model.safetensors")));
    CHECK(read_file(tmp / (a + "1/config.json")) == read_file(tmp / (a + "2/config.json")));
    CHECK(read_file(tmp / (a + "1/model.safetensors")) != read_file(tmp / (a + "3/model.safetensors")));
  }
}

TEST_CASE("Wanda = wanda_prune on statistics gathered independently from the pruned model's own forward pass") {
  // True sequential calibration means linear j of layer l saw the inputs of the model pruned up to it: running
  // the PRUNED layer l over the pruned layers' output gives exactly those inputs (q,k,v: the normed input; o:
  // attention with the pruned q,k,v; gate,up: after the pruned attention; down: from the pruned gate,up).
  const fs::path tmp = test::temp_dir("prune_wanda");
  for (const std::string pattern : {"50%", "2:4"}) {
    CAPTURE(pattern);
    const auto o = opts(prune::Algo::Wanda, pattern, 8, 64);
    prune::prune_model(model_dir(), tmp / pattern, o);
    const auto orig = model::Checkpoint::load(model_dir());
    const auto pruned = model::Checkpoint::load(tmp / pattern);
    CHECK(pruned.config.sparsity_config["sparsity_structure"] == (pattern == "2:4" ? "2:4" : "unstructured"));

    const auto tk = tok::Tokenizer::load(model_dir());
    const auto windows = calib::sample_windows(tk.encode(read_file(calib_text()), false), 8, 64, o.calib.seed);
    std::vector<int32_t> ids;
    for (const auto& w : windows) ids.insert(ids.end(), w.begin(), w.end());
    const int64_t H = orig.config.hidden_size, S = 64, batch = 4;  // the runner's default batch of windows
    model::ModelWeights mw;
    mw.embed = model::Linear::view("model.embed_tokens", orig.tensors.get("model.embed_tokens.weight"));
    std::vector<float> x(ids.size() * size_t(H));
    model::embed_tokens(mw, ids, x.data());
    const auto inv = model::rope_inv_freq(orig.config);

    int checked = 0;
    for (int l = 0; l < orig.config.num_hidden_layers; ++l) {
      const auto wp = model::load_layer(pruned, l);
      std::map<std::string, std::vector<double>> sq;  // Σ_t x_tj² per linear, in token order
      const model::Observer obs = [&](int, const model::Linear& lin, const float* xi, int64_t rows, int64_t cols) {
        auto& s = sq[lin.name];
        s.resize(size_t(cols), 0.0);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < cols; ++j) s[size_t(j)] += double(xi[r * cols + j]) * xi[r * cols + j];
      };
      for (int64_t b0 = 0; b0 < 8; b0 += batch) {
        std::vector<model::SeqRows> seqs;
        for (int64_t i = 0; i < batch; ++i) seqs.push_back({int(i), i * S, S, 0});
        model::LayerContext ctx{&orig.config, &inv, seqs, nullptr, &obs};
        model::decoder_layer_forward(ctx, wp, x.data() + b0 * S * H);
      }
      auto wo = model::load_layer(orig, l);
      for (model::Linear* lin : wo.linears()) {
        CAPTURE(lin->name);
        std::vector<float> W = model::linear_weight_f32(*lin);
        const auto& s = sq.at(lin->name);
        const std::vector<float> norm_sq(s.begin(), s.end());
        prune::wanda_prune(W.data(), lin->out, lin->in, norm_sq.data(), o.pattern);
        const std::vector<float> got = pruned.tensors.get(lin->name + ".weight").to_f32();
        CHECK(got == W);
        ++checked;
      }
    }
    CHECK(checked == 35);
  }
}

TEST_CASE("SparseGPT reconstructs every layer's output better than magnitude (50% and 2:4)") {
  const fs::path tmp = test::temp_dir("prune_err");
  const auto fp = model::Checkpoint::load(model_dir());
  for (const std::string pattern : {"50%", "2:4"}) {
    CAPTURE(pattern);
    prune::prune_model(model_dir(), tmp / ("mag" + pattern), opts(prune::Algo::Magnitude, pattern));
    prune::prune_model(model_dir(), tmp / ("sgpt" + pattern), opts(prune::Algo::SparseGpt, pattern, 32, 128));
    const auto em = test::layer_errors(fp, model::Checkpoint::load(tmp / ("mag" + pattern)), valid_ids(fp));
    const auto es = test::layer_errors(fp, model::Checkpoint::load(tmp / ("sgpt" + pattern)), valid_ids(fp));
    for (size_t l = 0; l < em.size(); ++l) {
      CAPTURE(l);
      INFO("magnitude ", em[l], ", sparsegpt ", es[l]);
      CHECK(es[l] > 0);
      CHECK(es[l] < em[l]);
    }
  }
}

TEST_CASE("joint SparseGPT 2:4 + 4-bit: 2:4 and at most 16 levels (0 among them) per row and group") {
  const fs::path tmp = test::temp_dir("prune_joint");
  auto o = opts(prune::Algo::SparseGpt, "2:4");
  o.quant = quant::QuantGrid{4, 32, false};
  const auto rep = prune::prune_model(model_dir(), tmp / "j", o);
  CHECK(rep.bits == 4);
  const auto cfg = nlohmann::json::parse(read_file(tmp / "j/config.json"));
  CHECK(cfg["sparsity_config"]["sparsity_structure"] == "2:4");
  CHECK(cfg["llmopt_fake_quantization"]["bits"] == 4);
  CHECK(cfg["llmopt_fake_quantization"]["group_size"] == 32);
  const auto ts = st::TensorSet::open_dir(tmp / "j");
  int linears = 0;
  for (const auto& name : ts.names()) {
    if (!is_decoder_linear(name)) continue;
    CAPTURE(name);
    ++linears;
    const auto w = ts.get(name).to_f32();
    const int64_t rows = ts.info(name).shape[0], cols = ts.info(name).shape[1];
    bool ok = true;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c0 = 0; c0 < cols; c0 += 4)
        ok = ok && std::count(w.begin() + r * cols + c0, w.begin() + r * cols + c0 + 4, 0.0f) >= 2;
      for (int64_t g0 = 0; g0 < cols; g0 += 32) {
        std::set<float> levels(w.begin() + r * cols + g0, w.begin() + r * cols + std::min(cols, g0 + 32));
        ok = ok && levels.size() <= 16 && levels.count(0.0f);
      }
    }
    CHECK(ok);
  }
  CHECK(linears == 35);
}

TEST_CASE("bad options fail before anything is written") {
  const fs::path tmp = test::temp_dir("prune_bad");
  auto expect = [&](prune::PruneOptions o, const std::string& msg) {
    CAPTURE(msg);
    try {
      prune::prune_model(model_dir(), tmp / "out", o);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find(msg) != std::string::npos);
    }
    CHECK(!fs::exists(tmp / "out"));
    CHECK(fs::is_empty(tmp));  // no temporary sibling left either
  };
  auto o = opts(prune::Algo::Wanda, "50%");
  o.calib.text_file.clear();
  expect(o, "--calib");
  o = opts(prune::Algo::SparseGpt, "2:4");
  o.calib.text_file = tmp / "missing.txt";
  expect(o, "no such file");
  for (double s : {0.0, 1.0, 1.5, -0.5}) {
    o = opts(prune::Algo::Magnitude, "50%");
    o.pattern.sparsity = s;
    expect(o, "--sparsity");
  }
  o = opts(prune::Algo::Magnitude, "50%");
  o.pattern.n = 5, o.pattern.m = 4;
  expect(o, "0 < N < M");
  o = opts(prune::Algo::Wanda, "2:4");
  o.quant = quant::QuantGrid{4, 32, false};
  expect(o, "--method sparsegpt");
  o = opts(prune::Algo::Magnitude, "2:4");
  o.pattern = prune::parse_nm("3:7");  // 64 inputs are not a multiple of 7
  expect(o, "multiple of 7");
  for (const char* bad : {"5:4", "2-4", "2:", ":4", "0:4", "4:4", "2:4x", "-1:4"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(prune::parse_nm(bad), Error);
  }
}
