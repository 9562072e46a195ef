// SmoothQuant on stories260K with TinyStories calibration text: smoothing alone (no quantization) leaves the
// model's function unchanged (logits of the dense output = the original's, through Model::forward); the W8A8
// compressed-tensors output ("int-quantized", per-token dynamic activations) dequantizes with the format's own
// reader to our dense weights, which are within half a quantization step of W·diag(s) with s read back from the
// folded norms; GPTQ int8 weights reconstruct the layers at least as well as RTN's.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

#include "lib/core/error.h"
#include "formats/compressed_tensors.h"
#include "formats/safetensors.h"
#include "lib/core/fsutil.h"
#include "lib/model/forward.h"
#include "lib/quant/quantize.h"
#include "lib/tokenizer/tokenizer.h"
#include "tests/support/test_paths.h"

using namespace llmopt;
namespace fs = std::filesystem;

namespace {

fs::path model_dir() { return test::shared_dir() / "models/stories260K"; }

quant::QuantizeOptions sq_opts(quant::Format f) {
  quant::QuantizeOptions o;
  o.scaling = quant::QuantizeOptions::Scaling::SmoothQuant;
  o.format = f;
  o.gptq_opt.grid = {8, -1, true};
  o.alpha = 0.5;
  o.calib.text_file = test::shared_dir() / "data/tinystories/tinystories_train_excerpt.txt";
  o.calib.nsamples = 8;
  o.calib.seqlen = 128;
  o.calib.seed = 1;
  return o;
}

// 64 tokens of the validation text
std::vector<int32_t> valid_ids(size_t n) {
  const auto tk = tok::Tokenizer::load(model_dir());
  auto ids = tk.encode(read_file(test::shared_dir() / "data/tinystories/tinystories_valid_excerpt.txt"), false);
  ids.resize(n);
  return ids;
}

std::vector<float> logits(const fs::path& dir, const std::vector<int32_t>& ids) {
  auto m = model::Model::load(dir);
  auto kv = m->make_cache(1);
  model::Model::SeqInput in{0, ids, true};
  return run_step(*m, *kv, {&in, 1});
}

std::vector<float> tensor_f32(const st::TensorSet& ts, const std::string& name) {
  const auto v = ts.get(name);
  const auto s = v.as<float>();
  return {s.begin(), s.end()};
}

const char* kLinears[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

}  // namespace

TEST_CASE("smoothing without quantizing leaves stories260K's logits unchanged") {
  const fs::path tmp = test::temp_dir("sq_fold");
  auto o = sq_opts(quant::Format::Dense);
  o.smooth_only = true;
  const auto rep = quant::quantize_model(model_dir(), tmp / "s", o);
  CHECK(rep.method == "smoothquant");

  // the scales are far from 1 (else this test could not fail): the norms and linears really changed
  const auto a = st::TensorSet::open_dir(model_dir()), b = st::TensorSet::open_dir(tmp / "s");
  double max_ratio = 0;
  for (int l = 0; l < 5; ++l)
    for (const char* n : {"input_layernorm", "post_attention_layernorm"}) {
      const std::string name = "model.layers." + std::to_string(l) + "." + n + ".weight";
      const auto x = tensor_f32(a, name), y = tensor_f32(b, name);
      for (size_t j = 0; j < x.size(); ++j) max_ratio = std::max(max_ratio, std::fabs(double(x[j]) / y[j] - 1));
    }
  MESSAGE("max |s - 1| = " << max_ratio);
  CHECK(max_ratio > 0.5);
  CHECK(tensor_f32(a, "model.layers.0.mlp.up_proj.weight") != tensor_f32(b, "model.layers.0.mlp.up_proj.weight"));
  CHECK(tensor_f32(a, "model.layers.0.mlp.down_proj.weight") == tensor_f32(b, "model.layers.0.mlp.down_proj.weight"));

  const auto ids = valid_ids(64);
  const auto la = logits(model_dir(), ids), lb = logits(tmp / "s", ids);
  REQUIRE(la.size() == lb.size());
  float maxdiff = 0;
  for (size_t i = 0; i < la.size(); ++i) maxdiff = std::max(maxdiff, std::fabs(la[i] - lb[i]));
  MESSAGE("max |logit difference| = " << maxdiff);
  CHECK(maxdiff <= 1e-4f);
}

TEST_CASE("SmoothQuant W8A8 compressed-tensors: int-quantized, dequantizes to our weights = W·diag(s) on the int8 grid") {
  const fs::path tmp = test::temp_dir("sq_w8a8");
  const auto rep = quant::quantize_model(model_dir(), tmp / "ct", sq_opts(quant::Format::CompressedTensors));
  quant::quantize_model(model_dir(), tmp / "dense", sq_opts(quant::Format::Dense));
  CHECK(rep.format == "compressed-tensors");
  CHECK(rep.bits == 8);

  const auto cfg = nlohmann::json::parse(read_file(tmp / "ct/config.json"));
  const auto& qc = cfg["quantization_config"];
  CHECK(qc["format"] == "int-quantized");
  CHECK(qc["config_groups"]["group_0"]["weights"]["num_bits"] == 8);
  CHECK(qc["config_groups"]["group_0"]["weights"]["strategy"] == "channel");
  CHECK(qc["config_groups"]["group_0"]["input_activations"]["strategy"] == "token");
  CHECK(qc["config_groups"]["group_0"]["input_activations"]["dynamic"] == true);

  const auto orig = st::TensorSet::open_dir(model_dir()), ct_ts = st::TensorSet::open_dir(tmp / "ct"),
             dense = st::TensorSet::open_dir(tmp / "dense");
  for (int l = 0; l < 5; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    // the folded norms are the same in both outputs; s = norm / norm'
    std::map<std::string, std::vector<float>> s;
    for (const char* n : {"input_layernorm", "post_attention_layernorm"}) {
      const auto n0 = tensor_f32(orig, p + n + ".weight"), n1 = tensor_f32(ct_ts, p + n + ".weight");
      CHECK(n1 == tensor_f32(dense, p + n + ".weight"));
      std::vector<float> v(n0.size());
      for (size_t j = 0; j < v.size(); ++j) v[j] = n0[j] / n1[j];
      s[n] = v;
    }
    for (const char* lin : kLinears) {
      const std::string name = p + lin;
      std::vector<PackedTensor> packed;
      for (const char* suffix : {"weight", "weight_scale"}) {
        const auto v = ct_ts.get(name + "." + suffix);
        PackedTensor t{suffix, v.dtype(), v.shape(), {}};
        t.data.assign(v.data, v.data + v.nbytes());
        packed.push_back(std::move(t));
      }
      CHECK(packed[0].dtype == DType::I8);
      const auto back = ct::dequantize(packed, 8, -1);
      const auto ours = tensor_f32(dense, name + ".weight");
      CHECK_MESSAGE(back == ours, name);

      // independent of our quantizer: |back − W·diag(s)| ≤ scale_r / 2 with scale_r = max_j |W s|_rj / 127.5
      const auto W = tensor_f32(orig, name + ".weight");
      const std::string k = lin;
      const std::vector<float>* sv = k.rfind("self_attn.o", 0) == 0 || k == "mlp.down_proj" ? nullptr
                                     : k.rfind("self_attn", 0) == 0                       ? &s["input_layernorm"]
                                                                                          : &s["post_attention_layernorm"];
      const int64_t cols = int64_t(sv ? sv->size() : 0), rows = cols ? int64_t(W.size()) / cols : 0;
      if (!sv) continue;
      double worst = 0;
      for (int64_t r = 0; r < rows; ++r) {
        float mx = 0;
        for (int64_t j = 0; j < cols; ++j) mx = std::max(mx, std::fabs(W[size_t(r * cols + j)] * (*sv)[size_t(j)]));
        const float step = mx / 127.5f;
        for (int64_t j = 0; j < cols; ++j) {
          const double e = std::fabs(back[size_t(r * cols + j)] - W[size_t(r * cols + j)] * (*sv)[size_t(j)]);
          worst = std::max(worst, e / step);
        }
      }
      CHECK_MESSAGE(worst <= 0.5 + 1e-3, name << ": error " << worst << " steps");
    }
  }
}

TEST_CASE("SmoothQuant bad options fail before writing") {
  const fs::path tmp = test::temp_dir("sq_bad");
  auto o = sq_opts(quant::Format::Dense);
  o.alpha = 1.5;
  CHECK_THROWS_WITH_AS(quant::quantize_model(model_dir(), tmp / "x", o), doctest::Contains("--alpha 1.5"), Error);
  o = sq_opts(quant::Format::Dense);
  o.gptq_opt.grid.bits = 4;
  CHECK_THROWS_WITH_AS(quant::quantize_model(model_dir(), tmp / "x", o), doctest::Contains("--bits must be 8"), Error);
  o = sq_opts(quant::Format::Gptq);
  CHECK_THROWS_WITH_AS(quant::quantize_model(model_dir(), tmp / "x", o), doctest::Contains("not gptq"), Error);
  CHECK(fs::is_empty(tmp));
}
