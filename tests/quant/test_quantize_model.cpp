// quantize_model end to end on stories260K with TinyStories calibration text: GPTQ 4-bit group 32 in
// compressed-tensors (down_proj's 172 inputs, which 32 does not divide, per channel) reads back, through the
// format's own dequantizer, exactly as the weights the runner calibrated later layers on; two runs are
// byte-identical; GPTQ's layer outputs are closer to fp32's than RTN's; the GPTQ layout on a synthetic
// model whose shapes it can hold; bad input fails with one clear error and leaves nothing behind.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>

#include "formats/compressed_tensors.h"
#include "formats/gptq_pack.h"
#include "formats/safetensors.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/model/forward.h"
#include "lib/quant/quantize.h"
#include "tests/support/layer_errors.h"
#include "tests/support/test_paths.h"

using namespace llmopt;
namespace fs = std::filesystem;

namespace {

fs::path model_dir() { return test::shared_dir() / "models/stories260K"; }
fs::path calib_text() { return test::shared_dir() / "data/tinystories/tinystories_train_excerpt.txt"; }

quant::QuantizeOptions gptq_opts(quant::Format f, int bits = 4) {
  quant::QuantizeOptions o;
  o.gptq = true;
  o.format = f;
  o.gptq_opt.grid = {bits, 32, false};
  o.calib.text_file = calib_text();
  o.calib.nsamples = 16;
  o.calib.seqlen = 128;
  o.calib.seed = 3;
  o.ragged_per_channel = true;  // down_proj: 32 does not divide 172
  return o;
}

std::vector<PackedTensor> read_packed(const st::TensorSet& ts, const std::string& prefix) {
  std::vector<PackedTensor> out;
  for (const auto& name : ts.names()) {
    if (name.rfind(prefix + ".", 0) != 0) continue;
    const auto v = ts.get(name);
    PackedTensor p{name.substr(prefix.size() + 1), v.dtype(), v.shape(), {}};
    p.data.assign(v.data, v.data + v.nbytes());
    out.push_back(std::move(p));
  }
  return out;
}

const char* kLinears[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

// Random token ids, not the calibration windows.
std::vector<int32_t> random_ids(const model::Checkpoint& ck) {
  std::vector<int32_t> ids;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 4 * 128; ++i) ids.push_back(int32_t(rng() % uint64_t(ck.config.vocab_size)));
  return ids;
}

}  // namespace

TEST_CASE("GPTQ 4-bit g32 compressed-tensors on stories260K: read back = the runner's weights; deterministic") {
  const fs::path tmp = test::temp_dir("quantize_ct");
  auto o = gptq_opts(quant::Format::CompressedTensors);
  o.ragged_per_channel = true;
  std::map<std::string, std::vector<float>> runner;
  o.on_layer = [&](const model::LayerWeights& w) {
    for (const model::Linear* l : const_cast<model::LayerWeights&>(w).linears()) runner[l->name] = model::linear_weight_f32(*l);
  };
  const auto rep = quant::quantize_model(model_dir(), tmp / "a", o);
  CHECK(rep.layers == 5);
  CHECK(rep.method == "gptq");
  CHECK(rep.format == "compressed-tensors");
  CHECK(rep.bytes_out > 0);
  REQUIRE(runner.size() == 35);

  // config: llm-compressor's pack-quantized group config; tokenizer copied
  const auto cfg = nlohmann::json::parse(read_file(tmp / "a/config.json"));
  CHECK(cfg["quantization_config"]["format"] == "pack-quantized");
  CHECK(cfg["quantization_config"]["config_groups"]["group_0"]["weights"]["group_size"] == 32);
  CHECK(cfg["quantization_config"]["config_groups"]["group_0"]["weights"]["symmetric"] == false);
  CHECK(cfg["hidden_size"] == 64);
  CHECK(fs::exists(tmp / "a/tokenizer.json"));
  CHECK(fs::exists(tmp / "a/tokenizer_config.json"));

  const auto ts = st::TensorSet::open_dir(tmp / "a");
  CHECK(ts.has("model.embed_tokens.weight"));
  CHECK(ts.has("model.norm.weight"));
  CHECK(!ts.has("model.layers.0.mlp.down_proj.weight"));
  CHECK(ts.info("model.layers.0.mlp.down_proj.weight_packed").shape == std::vector<int64_t>{64, 22});  // ceil(172·4/32)
  CHECK(ts.info("model.layers.0.mlp.down_proj.weight_scale").shape == std::vector<int64_t>{64, 1});    // per channel
  CHECK(ts.info("model.layers.0.mlp.down_proj.weight_zero_point").shape == std::vector<int64_t>{8, 1});
  CHECK(ts.info("model.layers.0.mlp.up_proj.weight_scale").shape == std::vector<int64_t>{172, 2});
  const auto& groups = cfg["quantization_config"]["config_groups"];
  CHECK(groups["group_0"]["targets"].size() == 6);
  CHECK(groups["group_1"]["targets"] == nlohmann::json::array({"re:.*mlp\\.down_proj$"}));
  CHECK(groups["group_1"]["weights"]["strategy"] == "channel");
  for (int l = 0; l < 5; ++l)
    for (const char* lin : kLinears) {
      const std::string prefix = "model.layers." + std::to_string(l) + "." + lin;
      const auto back = ct::dequantize(read_packed(ts, prefix), 4, 32);
      const auto& want = runner.at(prefix);
      REQUIRE(back.size() == want.size());
      CHECK_MESSAGE(back == want, prefix);
    }

  // the same seed and input: byte-identical files
  auto o2 = gptq_opts(quant::Format::CompressedTensors);
  o2.ragged_per_channel = true;
  quant::quantize_model(model_dir(), tmp / "b", o2);
  CHECK(read_file(tmp / "a/model.safetensors") == read_file(tmp / "b/model.safetensors"));
  CHECK(read_file(tmp / "a/config.json") == read_file(tmp / "b/config.json"));
  // another seed draws other windows: other bits
  auto o3 = gptq_opts(quant::Format::CompressedTensors);
  o3.calib.seed = 4;
  o3.ragged_per_channel = true;
  quant::quantize_model(model_dir(), tmp / "c", o3);
  CHECK(read_file(tmp / "a/model.safetensors") != read_file(tmp / "c/model.safetensors"));
}

TEST_CASE("GPTQ reconstructs the layer outputs better than RTN (4 and 3 bits, dense fake-quant)") {
  const fs::path tmp = test::temp_dir("quantize_err");
  const auto fp = model::Checkpoint::load(model_dir());
  for (int bits : {4, 3}) {
    auto g = gptq_opts(quant::Format::Dense, bits);
    g.calib.nsamples = 32;
    auto r = g;
    r.gptq = false;
    const auto gd = tmp / ("gptq" + std::to_string(bits)), rd = tmp / ("rtn" + std::to_string(bits));
    quant::quantize_model(model_dir(), gd, g);
    quant::quantize_model(model_dir(), rd, r);
    const auto eg = test::layer_errors(fp, model::Checkpoint::load(gd), random_ids(fp));
    const auto er = test::layer_errors(fp, model::Checkpoint::load(rd), random_ids(fp));
    double sg = 0, sr = 0;
    int better = 0;
    for (size_t l = 0; l < eg.size(); ++l) sg += eg[l], sr += er[l], better += eg[l] < er[l];
    MESSAGE(bits << "-bit layer-output error: gptq " << sg << ", rtn " << sr << " (gptq better in " << better << "/5 layers)");
    CHECK(sg < sr);
    CHECK(sg > 0);
    CHECK(better >= 4);
    // dense keeps the original dtype and names, and no quantization_config
    const auto cfg = nlohmann::json::parse(read_file(gd / "config.json"));
    CHECK(!cfg.contains("quantization_config"));
    CHECK(st::TensorSet::open_dir(gd).info("model.layers.0.mlp.down_proj.weight").dtype == DType::F32);
  }
}

namespace {

// A synthetic llama whose linears the GPTQ layout can hold (all dims multiples of 32), written with the
// streaming writer; no tokenizer (RTN needs none).
fs::path synthetic_model(const fs::path& dir) {
  fs::create_directories(dir);
  const int64_t H = 64, I = 96, V = 32, L = 2;
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", H},
                        {"intermediate_size", I}, {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"head_dim", 32},
                        {"num_hidden_layers", L}, {"vocab_size", V}, {"max_position_embeddings", 64},
                        {"rms_norm_eps", 1e-5}, {"tie_word_embeddings", true}, {"hidden_act", "silu"},
                        {"torch_dtype", "float32"}};
  std::ofstream(dir / "config.json") << cfg.dump(2);
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {{"model.embed_tokens.weight", {V, H}},
                                                                      {"model.norm.weight", {H}}};
  for (int l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    shapes.push_back({p + "input_layernorm.weight", {H}});
    shapes.push_back({p + "post_attention_layernorm.weight", {H}});
    shapes.push_back({p + "self_attn.q_proj.weight", {64, H}});
    shapes.push_back({p + "self_attn.k_proj.weight", {32, H}});
    shapes.push_back({p + "self_attn.v_proj.weight", {32, H}});
    shapes.push_back({p + "self_attn.o_proj.weight", {H, 64}});
    shapes.push_back({p + "mlp.gate_proj.weight", {I, H}});
    shapes.push_back({p + "mlp.up_proj.weight", {I, H}});
    shapes.push_back({p + "mlp.down_proj.weight", {H, I}});
  }
  std::vector<st::TensorInfo> specs;
  for (auto& [n, s] : shapes) specs.push_back({n, DType::F32, s});
  st::Writer w(dir / "model.safetensors", specs);
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  for (auto& [n, s] : shapes) {
    int64_t k = 1;
    for (auto d : s) k *= d;
    std::vector<float> v(static_cast<size_t>(k));
    for (float& x : v) x = s.size() == 1 ? 1.0f : nd(rng);
    w.write(n, v.data(), v.size() * 4);
  }
  w.finish();
  return dir;
}

}  // namespace

TEST_CASE("GPTQ layout: RTN 4-bit g32 reads back through the GPTQ reference dequantization") {
  const fs::path tmp = test::temp_dir("quantize_gptq_layout");
  const auto src = synthetic_model(tmp / "src");
  quant::QuantizeOptions o;
  o.format = quant::Format::Gptq;
  o.gptq_opt.grid = {4, 32, true};
  std::map<std::string, std::vector<float>> runner;
  o.on_layer = [&](const model::LayerWeights& w) {
    for (const model::Linear* l : const_cast<model::LayerWeights&>(w).linears()) runner[l->name] = model::linear_weight_f32(*l);
  };
  quant::quantize_model(src, tmp / "out", o);
  const auto cfg = nlohmann::json::parse(read_file(tmp / "out/config.json"));
  CHECK(cfg["quantization_config"]["quant_method"] == "gptq");
  CHECK(cfg["quantization_config"]["bits"] == 4);
  CHECK(cfg["quantization_config"]["sym"] == true);
  const auto ts = st::TensorSet::open_dir(tmp / "out");
  CHECK(ts.info("model.layers.1.mlp.down_proj.qweight").shape == std::vector<int64_t>{96 / 8, 64});
  CHECK(ts.info("model.layers.1.mlp.down_proj.scales").dtype == DType::F16);
  REQUIRE(runner.size() == 14);
  for (auto& [name, want] : runner) {
    const auto back = gptq::dequantize(read_packed(ts, name), 4);
    CHECK_MESSAGE(back == want, name);
  }
}

TEST_CASE("quantize: bad input is one clear error and leaves no output") {
  const fs::path tmp = test::temp_dir("quantize_bad");
  auto expect_fail = [&](quant::QuantizeOptions o, const char* what, const fs::path& in = model_dir()) {
    const fs::path out = tmp / "out";
    CHECK_THROWS_WITH_AS(quant::quantize_model(in, out, o), doctest::Contains(what), Error);
    CHECK(!fs::exists(out));
    for (auto& e : fs::directory_iterator(tmp)) CHECK_MESSAGE(e.path().filename().string()[0] != '.', e.path());
  };
  expect_fail(gptq_opts(quant::Format::Gptq), "use --format compressed-tensors");  // 172-wide MLP
  auto o = gptq_opts(quant::Format::CompressedTensors);
  o.ragged_per_channel = false;
  expect_fail(o, "--ragged-per-channel");  // 32 does not divide 172
  o = gptq_opts(quant::Format::CompressedTensors);
  o.gptq_opt.grid.bits = 5;
  expect_fail(o, "--bits 5");
  o = gptq_opts(quant::Format::CompressedTensors);
  o.calib.text_file.clear();
  expect_fail(o, "--calib");
  o = gptq_opts(quant::Format::CompressedTensors);
  o.calib.text_file = tmp / "missing.txt";
  expect_fail(o, "no such file");
  o = gptq_opts(quant::Format::CompressedTensors);
  o.gptq_opt.act_order = true;
  expect_fail(o, "--static-groups");
  o = gptq_opts(quant::Format::CompressedTensors);
  o.calib.seqlen = 4096;
  expect_fail(o, "max_position_embeddings");
  o = gptq_opts(quant::Format::Gguf);
  expect_fail(o, "--method rtn");
  o.gptq = false;
  o.gptq_opt.grid = {3, 32, true};
  expect_fail(o, "no GGUF type");

  // an already quantized model
  auto q = gptq_opts(quant::Format::CompressedTensors);
  q.gptq = false;
  q.ragged_per_channel = true;
  quant::quantize_model(model_dir(), tmp / "q", q);
  fs::remove_all(tmp / "out");
  expect_fail(q, "already quantized", tmp / "q");
}
