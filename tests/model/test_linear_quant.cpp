// Quantized linears (lib/model/linear_quant.h + backend::matmul_quant) against the formats' own reference
// dequantizers (formats/gptq_pack.h, awq_pack.h, compressed_tensors.h):
//  - per linear, every format and bit width: the loaded weight dequantizes to exactly the format's
//    dequantization, and y = x·Wᵀ matches a double-precision product with it (decode and prefill sizes);
//    W8A8 matches a straightforward reference (per-token int8 activations in double, integer dots, scales);
//  - whole models (stories260K, and the 2-layer stories260K-i128 whose shapes GPTQ/AWQ can hold): a
//    checkpoint written in each layout runs, and its logits equal (≤ 1e-4 relative) those of the dense
//    checkpoint holding the format-dequantized weights;
//  - malformed tensors fail with an Error naming the tensor.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <random>

#include "formats/awq_pack.h"
#include "formats/compressed_tensors.h"
#include "formats/gptq_pack.h"
#include "formats/safetensors.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/model/forward.h"
#include "lib/model/linear_quant.h"
#include "tests/support/test_paths.h"

using namespace llmopt;
using namespace llmopt::model;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Round-to-nearest quantization of w [rows, cols] with groups given per input column (any g_idx).
struct Codes {
  int bits = 4, group_size = 32;
  bool sym = false;
  int64_t rows = 0, cols = 0, ng = 0;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<int32_t> zeros, g_idx;
  PackInput input(bool with_g_idx) const {
    PackInput p;
    p.rows = int(rows), p.cols = int(cols), p.bits = bits, p.group_size = group_size, p.sym = sym;
    p.codes = codes.data(), p.scales = scales.data(), p.zeros = zeros.data();
    p.g_idx = with_g_idx ? g_idx.data() : nullptr;
    return p;
  }
};

Codes rtn(const float* w, int64_t rows, int64_t cols, int bits, int group_size, bool sym, std::vector<int32_t> g_idx = {}) {
  Codes q;
  q.bits = bits, q.group_size = group_size, q.sym = sym, q.rows = rows, q.cols = cols;
  const int64_t G = group_size > 0 && group_size < cols ? group_size : cols;
  q.ng = (cols + G - 1) / G;
  if (g_idx.empty())
    for (int64_t c = 0; c < cols; ++c) g_idx.push_back(int32_t(c / G));
  q.g_idx = g_idx;
  const int maxq = (1 << bits) - 1;
  q.scales.assign(size_t(rows * q.ng), 0), q.zeros.assign(size_t(rows * q.ng), 0), q.codes.resize(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> lo(static_cast<size_t>(q.ng), 0), hi(size_t(q.ng), 0);
    for (int64_t c = 0; c < cols; ++c) {
      const float x = w[r * cols + c];
      lo[size_t(g_idx[c])] = std::min(lo[size_t(g_idx[c])], x), hi[size_t(g_idx[c])] = std::max(hi[size_t(g_idx[c])], x);
    }
    for (int64_t g = 0; g < q.ng; ++g) {
      float s, z;
      if (sym) s = std::max(-lo[g], hi[g]) / float((maxq + 1) / 2) + 1e-8f, z = float((maxq + 1) / 2);
      else s = (hi[g] - lo[g]) / float(maxq) + 1e-8f, z = std::nearbyint(-lo[g] / s);
      q.scales[size_t(r * q.ng + g)] = s, q.zeros[size_t(r * q.ng + g)] = int32_t(z);
    }
    for (int64_t c = 0; c < cols; ++c) {
      const size_t k = size_t(r * q.ng + g_idx[c]);
      const float v = std::nearbyint(w[r * cols + c] / q.scales[k]) + float(q.zeros[k]);
      q.codes[size_t(r * cols + c)] = uint8_t(std::clamp(v, 0.0f, float(maxq)));
    }
  }
  return q;
}

std::vector<float> random_vec(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// One safetensors file holding `tensors` (name → PackedTensor with data), opened as a TensorSet.
st::TensorSet write_tensors(const fs::path& file, const std::map<std::string, const PackedTensor*>& tensors) {
  std::vector<st::TensorInfo> specs;
  for (const auto& [name, t] : tensors) specs.push_back({name, t->dtype, t->shape});
  {
    st::Writer w(file, specs);
    for (const auto& [name, t] : tensors) w.write(name, t->data.data(), t->data.size());
    w.finish();
  }
  return st::TensorSet::open_file(file);
}

std::map<std::string, const PackedTensor*> named(const std::string& prefix, const std::vector<PackedTensor>& ts) {
  std::map<std::string, const PackedTensor*> m;
  for (const auto& t : ts) m[prefix + "." + t.suffix] = &t;
  return m;
}

// max |y − x·Wᵀ| over max |x·Wᵀ|, the product in double.
double rel_err(const std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<float>& x, int64_t n,
               const std::vector<float>& y) {
  double err = 0, mag = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0;
      for (int64_t c = 0; c < cols; ++c) ref += double(x[i * cols + c]) * w[r * cols + c];
      err = std::max(err, std::abs(ref - y[i * rows + r]));
      mag = std::max(mag, std::abs(ref));
    }
  return err / mag;
}

void check_forward(const Linear& l, const std::vector<float>& w_ref, std::mt19937& rng) {
  for (int64_t n : {1, 3, 8, 9, 33}) {
    CAPTURE(n);
    const auto x = random_vec(size_t(n * l.in), rng);
    std::vector<float> y(static_cast<size_t>(n * l.out));
    linear_forward(l, x.data(), n, y.data());
    CHECK(rel_err(w_ref, l.out, l.in, x, n, y) < 1e-5);
  }
}

}  // namespace

TEST_CASE("GPTQ layout: every bit width, act-order; loads to the format's dequantization and multiplies") {
  std::mt19937 rng(1);
  const fs::path tmp = test::temp_dir("linear_quant_gptq");
  const int64_t rows = 64, cols = 96;
  for (int bits : {2, 3, 4, 8})
    for (bool act_order : {false, true}) {
      CAPTURE(bits);
      CAPTURE(act_order);
      const auto w = random_vec(size_t(rows * cols), rng);
      std::vector<int32_t> g_idx;
      if (act_order) {  // GPTQ act-order: columns visited in a permuted order, groups of 32 along it
        std::vector<int32_t> perm(static_cast<size_t>(cols));
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        g_idx.resize(size_t(cols));
        for (int64_t i = 0; i < cols; ++i) g_idx[size_t(perm[size_t(i)])] = int32_t(i / 32);
      }
      const Codes q = rtn(w.data(), rows, cols, bits, 32, false, g_idx);
      const auto packed = gptq::pack(q.input(true));
      PackedTensor bias{"bias", DType::F32, {rows}, {}};
      const auto b = random_vec(size_t(rows), rng);
      bias.data.resize(size_t(rows) * 4);
      std::memcpy(bias.data.data(), b.data(), bias.data.size());
      auto tensors = named("lin", packed);
      tensors["lin.bias"] = &bias;
      const auto ts = write_tensors(tmp / fmt::format("g{}_{}.safetensors", bits, act_order), tensors);
      const auto l = load_quantized_linear(ts, gptq::quantization_config(bits, 32, act_order, false), "lin");
      REQUIRE(l.has_value());
      CHECK(l->kind == Linear::Kind::Grouped);
      CHECK(l->out == rows);
      CHECK(l->in == cols);
      CHECK(l->quant->perm.empty() == !act_order);
      const auto ref = gptq::dequantize(packed, bits);
      CHECK(linear_weight_f32(*l) == ref);
      // with the bias: y = x·Wᵀ + b
      const auto x = random_vec(size_t(2 * cols), rng);
      std::vector<float> y(static_cast<size_t>(2 * rows)), y0(size_t(2 * rows));
      linear_forward(*l, x.data(), 2, y.data());
      Linear nb = *l;
      nb.bias.clear();
      linear_forward(nb, x.data(), 2, y0.data());
      for (int64_t i = 0; i < 2 * rows; ++i) CHECK(y[size_t(i)] == doctest::Approx(y0[size_t(i)] + b[size_t(i % rows)]).epsilon(1e-6));
      check_forward(nb, ref, rng);
    }
}

TEST_CASE("AWQ GEMM layout loads to the format's dequantization and multiplies") {
  std::mt19937 rng(2);
  const fs::path tmp = test::temp_dir("linear_quant_awq");
  for (auto [rows, cols, gs] : {std::tuple{64, 128, 32}, std::tuple{24, 64, 64}}) {
    const auto w = random_vec(size_t(rows * cols), rng);
    const Codes q = rtn(w.data(), rows, cols, 4, gs, false);
    const auto packed = awq::pack(q.input(false));
    const auto ts = write_tensors(tmp / fmt::format("a{}.safetensors", rows), named("m.lin", packed));
    const auto l = load_quantized_linear(ts, awq::quantization_config(gs), "m.lin");
    REQUIRE(l.has_value());
    CHECK(l->out == rows);
    CHECK(l->in == cols);
    const auto ref = awq::dequantize(packed, gs);
    CHECK(linear_weight_f32(*l) == ref);
    check_forward(*l, ref, rng);
  }
}

TEST_CASE("compressed-tensors pack-quantized: bits 2..8, sym/asym, group/channel, scale dtypes") {
  std::mt19937 rng(3);
  const fs::path tmp = test::temp_dir("linear_quant_ct");
  const int64_t rows = 40, cols = 48;
  int k = 0;
  for (int bits : {2, 3, 4, 8})
    for (bool sym : {false, true})
      for (int gs : {8, -1}) {
        CAPTURE(bits);
        CAPTURE(sym);
        CAPTURE(gs);
        const DType sd = k % 2 ? DType::BF16 : DType::F32;
        const auto w = random_vec(size_t(rows * cols), rng);
        const Codes q = rtn(w.data(), rows, cols, bits, gs, sym);
        const auto packed = ct::pack_packed(q.input(false), sd);
        const auto ts = write_tensors(tmp / fmt::format("c{}.safetensors", k++), named("model.layers.0.mlp.up_proj", packed));
        const auto l = load_quantized_linear(ts, ct::quantization_config_packed(bits, gs, sym), "model.layers.0.mlp.up_proj");
        REQUIRE(l.has_value());
        CHECK(l->kind == Linear::Kind::Grouped);
        const auto ref = ct::dequantize(packed, bits, gs);
        CHECK(linear_weight_f32(*l) == ref);
        check_forward(*l, ref, rng);
      }
}

TEST_CASE("compressed-tensors int-quantized: W8A8 against a per-token int8 reference, and weight-only int8") {
  std::mt19937 rng(4);
  const fs::path tmp = test::temp_dir("linear_quant_w8a8");
  const int64_t rows = 48, cols = 80;
  const auto w = random_vec(size_t(rows * cols), rng, 0.1f);
  const Codes q = rtn(w.data(), rows, cols, 8, -1, true);
  const auto packed = ct::pack_int8(q.input(false), DType::F32);
  const auto ts = write_tensors(tmp / "w8.safetensors", named("model.layers.1.self_attn.o_proj", packed));
  const auto l = load_quantized_linear(ts, ct::quantization_config_w8a8(), "model.layers.1.self_attn.o_proj");
  REQUIRE(l.has_value());
  CHECK(l->kind == Linear::Kind::W8A8);
  const auto wq = ct::dequantize(packed, 8, -1);
  CHECK(linear_weight_f32(*l) == wq);
  const int8_t* wi = packed[0].as<int8_t>();
  const float* ws = packed[1].as<float>();
  for (int64_t n : {1, 4, 17}) {
    CAPTURE(n);
    auto x = random_vec(size_t(n * cols), rng, 3.0f);
    if (n > 1) std::fill_n(x.begin(), cols, 0.0f);  // an all-zero token
    std::vector<float> y(static_cast<size_t>(n * rows));
    linear_forward(*l, x.data(), n, y.data());
    double err = 0, mag = 0, fp_err = 0;
    for (int64_t i = 0; i < n; ++i) {
      // the activation quantization in double: s = max|x| / 127, q = round half to even (x / s)
      double amax = 0;
      for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::abs(double(x[size_t(i * cols + c)])));
      const double sx = amax / 127.0;
      std::vector<int> xq(static_cast<size_t>(cols));
      for (int64_t c = 0; c < cols; ++c) xq[size_t(c)] = sx > 0 ? int(std::nearbyint(double(x[size_t(i * cols + c)]) / sx)) : 0;
      for (int64_t r = 0; r < rows; ++r) {
        int64_t dot = 0;
        double fp = 0;
        for (int64_t c = 0; c < cols; ++c) {
          dot += int64_t(wi[r * cols + c]) * xq[size_t(c)];
          fp += double(wq[size_t(r * cols + c)]) * x[size_t(i * cols + c)];
        }
        const double ref = double(dot) * ws[r] * sx;
        err = std::max(err, std::abs(ref - y[size_t(i * rows + r)]));
        fp_err = std::max(fp_err, std::abs(fp - y[size_t(i * rows + r)]));
        mag = std::max(mag, std::abs(ref));
      }
      if (i == 0 && n > 1)
        for (int64_t r = 0; r < rows; ++r) CHECK(y[size_t(r)] == 0.0f);
    }
    CHECK(err / mag < 1e-6);
    CHECK(fp_err / mag > 1e-4);  // the activations really were quantized
  }
  // the same tensors under a weight-only scheme (input_activations null): an int8 weight, fp32 activations
  json wo = ct::quantization_config_w8a8();
  wo["config_groups"]["group_0"]["input_activations"] = nullptr;
  const auto l2 = load_quantized_linear(ts, wo, "model.layers.1.self_attn.o_proj");
  REQUIRE(l2.has_value());
  CHECK(l2->kind == Linear::Kind::Grouped);
  check_forward(*l2, wq, rng);
}

TEST_CASE("malformed quantized tensors fail naming the tensor") {
  std::mt19937 rng(5);
  const fs::path tmp = test::temp_dir("linear_quant_bad");
  const auto w = random_vec(64 * 64, rng);
  const Codes q = rtn(w.data(), 64, 64, 4, 32, false);
  auto packed = gptq::pack(q.input(true));
  auto cfg = gptq::quantization_config(4, 32, false, false);
  {
    auto bad = packed;
    bad[1].shape = {1, bad[1].shape[1]};  // qzeros with one group instead of two
    bad[1].data.resize(size_t(bad[1].numel()) * 4);
    const auto ts = write_tensors(tmp / "z.safetensors", named("lin", bad));
    CHECK_THROWS_WITH_AS(load_quantized_linear(ts, cfg, "lin"), doctest::Contains("lin.qzeros"), Error);
  }
  {
    auto bad = packed;
    bad[3].data.assign(bad[3].data.size(), std::byte{9});  // g_idx far outside [0, 2)
    const auto ts = write_tensors(tmp / "g.safetensors", named("lin", bad));
    CHECK_THROWS_WITH_AS(load_quantized_linear(ts, cfg, "lin"), doctest::Contains("lin.g_idx"), Error);
  }
  {
    std::vector<PackedTensor> part(packed.begin(), packed.begin() + 1);  // qweight only
    const auto ts = write_tensors(tmp / "m.safetensors", named("lin", part));
    CHECK_THROWS_WITH_AS(load_quantized_linear(ts, cfg, "lin"), doctest::Contains("lin.qzeros is missing"), Error);
  }
  {
    const auto ts = write_tensors(tmp / "ok.safetensors", named("lin", packed));
    CHECK_THROWS_WITH_AS(load_quantized_linear(ts, gptq::quantization_config(5, 32, false, false), "lin"),
                         doctest::Contains("5-bit"), Error);
  }
}

// ---- whole models --------------------------------------------------------------------------------

namespace {

enum class Fmt { Gptq, Awq, CtPacked, CtInt8 };

// Writes `src`'s checkpoint with every decoder linear quantized (RTN, in the test) and stored in `fmt`, into
// dir/quant, and the same weights dequantized by the format's reference dequantizer into dir/dense.
void write_pair(const fs::path& src, const fs::path& dir, Fmt fmt, int bits, int gs, bool sym, bool act_order) {
  const auto ts = st::TensorSet::open_dir(src);
  json cfg = json::parse(read_file(src / "config.json"));
  std::mt19937 rng(7);
  std::map<std::string, std::vector<PackedTensor>> packed, dense;
  for (const auto& name : ts.names()) {
    if (name.find("model.layers.") != 0 || name.find("_proj.weight") == std::string::npos) continue;
    const auto v = ts.get(name);
    const std::string prefix = name.substr(0, name.size() - 7);
    const int64_t rows = v.shape()[0], cols = v.shape()[1];
    const auto w = v.to_f32();
    std::vector<int32_t> g_idx;
    if (act_order) {
      std::vector<int32_t> perm(static_cast<size_t>(cols));
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      g_idx.resize(size_t(cols));
      for (int64_t i = 0; i < cols; ++i) g_idx[size_t(perm[size_t(i)])] = int32_t(i / gs);
    }
    const Codes q = rtn(w.data(), rows, cols, bits, gs, sym, g_idx);
    std::vector<float> deq;
    switch (fmt) {
      case Fmt::Gptq: packed[prefix] = gptq::pack(q.input(true)), deq = gptq::dequantize(packed[prefix], bits); break;
      case Fmt::Awq: packed[prefix] = awq::pack(q.input(false)), deq = awq::dequantize(packed[prefix], gs); break;
      case Fmt::CtPacked:
        packed[prefix] = ct::pack_packed(q.input(false), DType::F32), deq = ct::dequantize(packed[prefix], bits, gs);
        break;
      case Fmt::CtInt8:
        packed[prefix] = ct::pack_int8(q.input(false), DType::F32), deq = ct::dequantize(packed[prefix], 8, -1);
        break;
    }
    PackedTensor d{"weight", DType::F32, {rows, cols}, {}};
    d.data.resize(deq.size() * 4);
    std::memcpy(d.data.data(), deq.data(), d.data.size());
    dense[prefix] = {std::move(d)};
  }
  auto write = [&](const fs::path& out, const std::map<std::string, std::vector<PackedTensor>>& linears, const json& c) {
    fs::create_directories(out);
    std::vector<PackedTensor> plain;  // every other tensor as is
    for (const auto& name : ts.names()) {
      const std::string prefix = name.substr(0, name.size() - 7);
      if (linears.count(prefix) && name.ends_with(".weight")) continue;
      const auto v = ts.get(name);
      PackedTensor t{name, v.dtype(), v.shape(), {}};
      t.data.assign(v.data, v.data + v.nbytes());
      plain.push_back(std::move(t));
    }
    std::map<std::string, const PackedTensor*> all;
    for (const auto& t : plain) all[t.suffix] = &t;
    for (const auto& [prefix, list] : linears)
      for (const auto& t : list) all[prefix + "." + t.suffix] = &t;
    write_tensors(out / "model.safetensors", all);
    std::ofstream(out / "config.json") << c.dump(2);
  };
  json qc;
  switch (fmt) {
    case Fmt::Gptq: qc = gptq::quantization_config(bits, gs, act_order, sym); break;
    case Fmt::Awq: qc = awq::quantization_config(gs); break;
    case Fmt::CtPacked: qc = ct::quantization_config_packed(bits, gs, sym); break;
    case Fmt::CtInt8: qc = ct::quantization_config_w8a8(); break;
  }
  json qcfg = cfg;
  qcfg["quantization_config"] = qc;
  write(dir / "quant", packed, qcfg);
  write(dir / "dense", dense, cfg);
}

std::vector<float> logits(const fs::path& dir, const std::vector<int32_t>& ids) {
  auto m = Model::load(dir);
  auto kv = m->make_cache(1, 64);
  Model::SeqInput in{0, ids, true};
  return run_step(*m, *kv, {&in, 1});
}

// max |a − b| / max |b|
double rel(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, m = 0;
  for (size_t i = 0; i < a.size(); ++i) e = std::max(e, double(std::abs(a[i] - b[i]))), m = std::max(m, double(std::abs(b[i])));
  return e / m;
}

}  // namespace

TEST_CASE("whole models in every layout: logits equal those of the dequantized dense checkpoint") {
  const fs::path stories = test::shared_dir() / "models/stories260K";
  const fs::path i128 = test::testdata_dir() / "models/stories260K-i128";
  std::vector<int32_t> ids;
  for (int i = 0; i < 24; ++i) ids.push_back(int32_t((i * 37 + 1) % 512));
  struct Case {
    const char* name;
    fs::path src;
    Fmt fmt;
    int bits, gs;
    bool sym, act_order;
    Linear::Kind kind;
  };
  const std::vector<Case> cases = {
      {"gptq4_g32_act_order", i128, Fmt::Gptq, 4, 32, false, true, Linear::Kind::Grouped},
      {"gptq3_g64", i128, Fmt::Gptq, 3, 64, true, false, Linear::Kind::Grouped},
      {"gptq8_g32", i128, Fmt::Gptq, 8, 32, false, false, Linear::Kind::Grouped},
      {"awq4_g32", i128, Fmt::Awq, 4, 32, false, false, Linear::Kind::Grouped},
      {"ct4_g4_asym", stories, Fmt::CtPacked, 4, 4, false, false, Linear::Kind::Grouped},
      {"ct2_g4_sym", stories, Fmt::CtPacked, 2, 4, true, false, Linear::Kind::Grouped},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const fs::path dir = test::temp_dir(std::string("linear_quant_model_") + c.name);
    write_pair(c.src, dir, c.fmt, c.bits, c.gs, c.sym, c.act_order);
    auto m = Model::load(dir / "quant");
    CHECK(m->weights().layers[0].q.kind == c.kind);
    CHECK(m->weights().layers.back().down.kind == c.kind);
    CHECK(m->weights().lm_head.kind == Linear::Kind::Dense);
    const auto q = logits(dir / "quant", ids), d = logits(dir / "dense", ids);
    REQUIRE(q.size() == d.size());
    CHECK(rel(q, d) < 1e-4);
  }
  SUBCASE("W8A8 runs with int8 activations: close to, but not equal to, the fp32-activation twin") {
    const fs::path dir = test::temp_dir("linear_quant_model_w8a8");
    write_pair(stories, dir, Fmt::CtInt8, 8, -1, true, false);
    auto m = Model::load(dir / "quant");
    CHECK(m->weights().layers[0].q.kind == Linear::Kind::W8A8);
    const auto q = logits(dir / "quant", ids), d = logits(dir / "dense", ids);
    CHECK(rel(q, d) < 0.05);
    CHECK(rel(q, d) > 1e-6);
  }
}
