// GGUF writer against llama.cpp's Python package `gguf`: scripts/golden/formats_golden.py reads the files
// this test writes with gguf.GGUFReader, re-quantizes the same floats with gguf.quants.quantize (a bit-exact
// port of ggml's quantize_row_*_ref), dequantizes with gguf.quants.dequantize, and rebuilds the stories260K
// export with gguf.GGUFWriter the way convert_hf_to_gguf.py does; the verdicts are in formats_golden.json.
// With LLMOPT_GOLDEN_OUT=<dir> set, the test only writes its files there for that script.
#include "formats/gguf.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "formats/quant_layout.h"
#include "formats/safetensors.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "tests/support/test_paths.h"
#include "tests/formats/pack_cases.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace llmopt;
using gguf::Type;

namespace {
using namespace pack_cases;
fs::path stories() { return test::shared_dir() / "models" / "stories260K"; }

const Type kTypes[] = {Type::F32, Type::F16, Type::Q8_0, Type::Q4_0, Type::Q4_1};

// 8 rows x 256: zeros, a constant row, huge, tiny (fp16-subnormal scales), all-negative, random normals.
std::vector<float> block_data() {
  Rng rng{42};
  std::vector<float> x(8 * 256);
  for (int r = 0; r < 8; ++r)
    for (int j = 0; j < 256; ++j) {
      float v = rng.normal();
      x[r * 256 + j] = r == 0 ? 0.0f : r == 1 ? 0.3f : r == 2 ? 1000.0f * v : r == 3 ? 1e-6f * v : r == 4 ? -std::fabs(v) - 0.5f : v;
    }
  return x;
}

std::vector<float> roundtrip(Type t, const std::vector<float>& x, int64_t cols) {
  const size_t rb = gguf::row_bytes(t, cols);
  std::vector<uint8_t> buf(rb);
  std::vector<float> y(x.size());
  for (size_t r = 0; r < x.size() / cols; ++r) {
    gguf::quantize_row(t, x.data() + r * cols, cols, buf.data());
    gguf::dequantize_row(t, buf.data(), cols, y.data() + r * cols);
  }
  return y;
}

Type stories_choice(const std::string& g, const std::vector<int64_t>&) {
  if (g == "token_embd.weight") return Type::Q8_0;
  if (g.find("attn_q.") != std::string::npos) return Type::Q4_0;
  if (g.find("attn_k.") != std::string::npos) return Type::Q4_1;
  if (g.find("attn_v.") != std::string::npos) return Type::Q8_0;
  if (g.find("attn_output.") != std::string::npos) return Type::F16;
  if (g.find("ffn_up.") != std::string::npos) return Type::Q4_1;
  return Type::Q4_0;  // ffn_gate; ffn_down falls back to F16 (172 columns), norms to F32
}

void write_f32_set(const fs::path& p, const std::vector<std::pair<std::string, std::vector<float>>>& ts) {
  std::vector<st::TensorInfo> specs;
  for (auto& [n, v] : ts) specs.push_back({n, DType::F32, {int64_t(v.size())}, 0, 0});
  st::Writer w(p, specs);
  for (auto& [n, v] : ts) w.write(n, v.data(), v.size() * 4);
  w.finish();
}
}  // namespace

TEST_CASE("GGUF blocks: every type and every metadata value type") {
  const std::vector<float> x = block_data();
  gguf::Metadata m;
  m.set_str("general.architecture", "llama");
  m.set_u32("test.u32", 4000000000u);
  m.set_i32("test.i32", -7);
  m.set_u64("test.u64", 1ull << 40);
  m.set_f32("test.f32", 0.1f);
  m.set_bool("test.bool", true);
  m.set_str("test.str", "h\xc3\xa9llo");
  m.set_str_array("test.str_arr", {"a", "", "\xe2\x96\x81x"});
  m.set_f32_array("test.f32_arr", {1.5f, -2.0f});
  m.set_i32_array("test.i32_arr", {1, -2, 3});
  m.set_u32("test.u32", 5);  // replaces in place
  std::vector<gguf::TensorSpec> specs;
  for (Type t : kTypes) specs.push_back({fmt::format("src.{}", gguf::type_name(t)), {8, 256}, Type::F32}),
                        specs.push_back({gguf::type_name(t), {8, 256}, t});
  specs.push_back({"vec", {3}, Type::F32});
  const fs::path path = test::temp_dir("gguf") / "gguf_blocks.gguf";
  std::vector<std::pair<std::string, std::vector<float>>> ours;
  {
    gguf::Writer w(path, m, specs);
    const float v[3] = {1, 2, 3};
    w.write_f32("vec", v, 3);
    for (Type t : kTypes) {  // out of declared order on purpose
      w.write_f32(gguf::type_name(t), x.data(), x.size());
      w.write_f32(fmt::format("src.{}", gguf::type_name(t)), x.data(), x.size());
      ours.emplace_back(gguf::type_name(t), roundtrip(t, x, 256));
    }
    w.finish();
  }
  // Dequantization error within what each type promises: about half a step, relative to the row's largest
  // magnitude (rows 2, 4..7; the zero, constant and fp16-subnormal rows are left to the golden check).
  for (auto& [name, y] : ours) {
    INFO(name);
    double worst = 0;
    for (int r : {2, 4, 5, 6, 7}) {
      double amax = 0, err = 0;
      for (int j = 0; j < 256; ++j) {
        amax = std::max(amax, std::fabs(double(x[r * 256 + j])));
        err = std::max(err, std::fabs(double(y[r * 256 + j]) - double(x[r * 256 + j])));
      }
      worst = std::max(worst, err / amax);
    }
    if (name == "F32") CHECK(worst == 0.0);
    CHECK(worst < (name == "F16" ? 1e-3 : name == "Q8_0" ? 0.01 : 0.1));
  }
  CHECK(ours[0].second == x);
  if (auto out = golden_out(); !out.empty()) {
    fs::copy_file(path, out / path.filename(), fs::copy_options::overwrite_existing);
    write_f32_set(out / "gguf_blocks.ours.safetensors", ours);
    return;
  }
  const json g = golden().at("gguf").at("gguf_blocks");
  CHECK(read_file(path) == read_file(fmt_dir() / "gguf_blocks.gguf"));
  for (auto& [name, y] : ours) {
    INFO(name);
    CHECK(hex64(fnv1a64(y.data(), y.size() * 4)) == g.at("tensors").at(name).at("ref_dequant_fnv").get<std::string>());
    CHECK(g.at("tensors").at(name).at("max_abs_diff").get<double>() == 0.0);
    CHECK(g.at("tensors").at(name).at("bytes_equal_gguf_py_quantize").get<bool>());
  }
  CHECK(g.at("metadata_ok").get<bool>());
}

TEST_CASE("GGUF export of stories260K (llama metadata, SentencePiece vocab, permuted q/k, mixed types)") {
  if (!fs::exists(stories() / "model.safetensors")) {
    MESSAGE("stories260K not found under ../shared; skipped");
    return;
  }
  const fs::path path = test::temp_dir("gguf") / "stories260K.gguf";
  gguf::export_llama(stories(), path, Type::Q4_0, stories_choice);

  // Our own dequantization of every tensor, recomputed in process.
  const auto ts = st::TensorSet::open_dir(stories());
  std::vector<std::pair<std::string, std::vector<float>>> ours;
  for (auto& hf : ts.names()) {
    const std::string g = gguf::llama_tensor_name(hf);
    auto v = ts.get(hf);
    std::vector<float> x = v.to_f32();
    if (hf.ends_with("q_proj.weight") || hf.ends_with("k_proj.weight")) {
      std::vector<float> p(x.size());
      gguf::permute_rope_rows(x.data(), p.data(), v.shape()[0], v.shape()[1], hf.ends_with("q_proj.weight") ? 8 : 4);
      x.swap(p);
    }
    ours.emplace_back(g, roundtrip(gguf::pick_type(stories_choice(g, v.shape()), v.shape()), x, v.shape().back()));
  }
  if (auto out = golden_out(); !out.empty()) {
    fs::copy_file(path, out / path.filename(), fs::copy_options::overwrite_existing);
    write_f32_set(out / "stories260K.ours.safetensors", ours);
    return;
  }
  const json g = golden().at("gguf").at("stories260K");
  const std::string bytes = read_file(path);
  CHECK(bytes.size() == g.at("size").get<size_t>());
  CHECK(hex64(fnv1a64(bytes.data(), bytes.size())) == g.at("file_fnv").get<std::string>());
  CHECK(g.at("bytes_equal_gguf_py_writer").get<bool>());
  CHECK(g.at("metadata_ok").get<bool>());
  for (auto& [name, y] : ours) {
    INFO(name);
    CHECK(hex64(fnv1a64(y.data(), y.size() * 4)) == g.at("tensors").at(name).at("ref_dequant_fnv").get<std::string>());
    CHECK(g.at("tensors").at(name).at("max_abs_diff").get<double>() == 0.0);
  }
}

TEST_CASE("llama vocab from tokenizer.json alone equals tokenizer.model's for stories260K") {
  if (!fs::exists(stories() / "tokenizer.model")) return;
  const fs::path d = test::temp_dir("gguf-vocab");
  for (auto f : {"config.json", "tokenizer.json", "tokenizer_config.json"}) fs::copy_file(stories() / f, d / f);
  const auto a = gguf::llama_vocab(stories()), b = gguf::llama_vocab(d);
  CHECK(a.tokens.size() == 512);
  CHECK(a.tokens == b.tokens);
  CHECK(a.scores == b.scores);
  CHECK(a.types == b.types);
  CHECK(a.types[0] == 2);
  CHECK(a.types[1] == 3);
  CHECK(a.types[3] == 6);
  CHECK(a.tokens[3] == "<0x00>");
}

TEST_CASE("RoPE permutation: HF rotate_half rows back to interleaved pairs") {
  // 2 heads of dim 4, one column: HF order per head is [r0 r1 i0 i1]; llama.cpp wants [r0 i0 r1 i1].
  const float src[8] = {0, 1, 2, 3, 10, 11, 12, 13};
  float dst[8];
  gguf::permute_rope_rows(src, dst, 8, 1, 2);
  const float want[8] = {0, 2, 1, 3, 10, 12, 11, 13};
  CHECK(std::memcmp(dst, want, sizeof dst) == 0);
}

TEST_CASE("GGUF writer errors") {
  CHECK_THROWS_WITH_AS(gguf::row_bytes(Type::Q4_0, 172), doctest::Contains("not a multiple of 32"), Error);
  CHECK(gguf::pick_type(Type::Q4_0, {64, 172}) == Type::F16);
  CHECK(gguf::pick_type(Type::Q8_0, {64}) == Type::F32);
  CHECK(gguf::file_type(Type::Q8_0) == 7);
  CHECK_THROWS_WITH_AS(gguf::type_from_name("q5_k"), doctest::Contains("unknown GGUF tensor type"), Error);
  const fs::path dir = test::temp_dir("gguf-err");
  {
    gguf::Writer w(dir / "a.gguf", {}, {{"t", {2, 32}, Type::Q8_0}});
    std::vector<uint8_t> buf(10);
    CHECK_THROWS_WITH_AS(w.write("t", buf.data(), buf.size()), doctest::Contains("needs 68"), Error);
    CHECK_THROWS_WITH_AS(w.write("u", buf.data(), buf.size()), doctest::Contains("not declared"), Error);
    CHECK_THROWS_WITH_AS(w.finish(), doctest::Contains("never written"), Error);
  }
  CHECK(fs::is_empty(dir));  // the unfinished file was removed
  CHECK_THROWS_WITH_AS(gguf::llama_metadata(dir, Type::Q4_0), doctest::Contains("config.json"), Error);
}
