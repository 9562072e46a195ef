// Models from .gguf files: GGUF blocks in the one quantized-weight type (against gguf-py's dequantization in
// testdata/gguf/blocks/ and a double-precision matmul), stories260K exported to GGUF and read back (tensors and
// logits equal to the safetensors checkpoint's), and the real SmolLM2-135M-Instruct Q4_1 file against Hugging
// Face transformers loading the same file (scripts/golden/gguf_logits_golden.py).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/gguf_read.h"
#include "lib/backend/cpu/qmatmul.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/model/checkpoint.h"
#include "lib/model/forward.h"
#include "lib/model/linear_quant.h"
#include "tests/support/random.h"
#include "tests/support/test_paths.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace llmopt;
using namespace llmopt::model;
using gguf::Type;

namespace {
fs::path gdir() { return test::testdata_dir() / "gguf"; }
fs::path smollm2() { return test::shared_dir() / "models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf"; }

std::vector<float> floats(const std::string& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

std::vector<float> prefill_logits(Model& m, const std::vector<int32_t>& ids) {
  auto kv = m.make_cache(1, int64_t(ids.size()));
  Model::SeqInput in{0, ids, true};
  return run_step(m, *kv, {&in, 1});
}
}  // namespace

TEST_CASE("GGUF blocks load into QuantWeight exactly, and matmul_quant matches a double-precision reference") {
  const json index = json::parse(read_file(gdir() / "blocks" / "blocks.json"));
  for (Type t : {Type::Q8_0, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::Q2_K, Type::Q3_K, Type::Q4_K,
                 Type::Q5_K, Type::Q6_K}) {
    const std::string name = gguf::type_name(t);
    INFO(name);
    const std::string raw = read_file(gdir() / "blocks" / (name + ".blocks"));
    const std::vector<float> want = floats(read_file(gdir() / "blocks" / (name + ".f32")));
    const int64_t cols = 512, rows = index[name]["n_elems"].get<int64_t>() / cols;
    gguf::TensorInfo ti;
    ti.name = name, ti.type = t, ti.shape = {rows, cols}, ti.nbytes = raw.size();
    ti.data = reinterpret_cast<const uint8_t*>(raw.data());
    const QuantWeight q = QuantWeight::from_gguf(ti);
    CHECK(q.bits == gguf::block_form(t).bits);
    CHECK(q.mins.empty() == !gguf::block_form(t).has_min);
    const std::vector<float> w = q.dequantize();
    REQUIRE(w.size() == want.size());
    CHECK(std::memcmp(w.data(), want.data(), w.size() * 4) == 0);  // bit for bit, as gguf.quants.dequantize
    // Rows in HF order for a rope-permuted q/k weight: whole rows of blocks move.
    const int heads = 2;
    const std::vector<float> wp = QuantWeight::from_gguf(ti, heads).dequantize();
    int64_t bad_rows = 0;
    for (int64_t r = 0; r < rows; ++r)
      bad_rows += std::memcmp(wp.data() + r * cols, want.data() + gguf::rope_gguf_row(r, rows, heads) * cols, cols * 4) != 0;
    CHECK(bad_rows == 0);
    // matmul_quant (decode and prefill paths) against Σ x·w in double.
    for (int64_t n : {3, 19}) {
      const std::vector<float> x = test::randn(size_t(n * cols), uint32_t(n)), bias = test::randn(size_t(rows), 7);
      std::vector<float> y(size_t(n * rows));
      backend::matmul_quant(q.matrix(), bias.data(), x.data(), n, y.data());
      double worst = 0, scale = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < rows; ++r) {
          double ref = bias[size_t(r)];
          for (int64_t j = 0; j < cols; ++j) ref += double(x[size_t(i * cols + j)]) * double(want[size_t(r * cols + j)]);
          worst = std::max(worst, std::fabs(double(y[size_t(i * rows + r)]) - ref));
          scale = std::max(scale, std::fabs(ref));
        }
      INFO("n ", n, ": max |y - ref| ", worst, " of max |ref| ", scale);
      CHECK(worst <= 1e-5 * scale);
    }
  }
}

TEST_CASE("stories260K exported to GGUF loads back: config, un-permuted tensors, logits") {
  const fs::path dir = test::stories260k();
  if (!fs::exists(dir / "model.safetensors")) {
    MESSAGE("skipped: stories260K is absent");
    return;
  }
  const fs::path out = test::temp_dir("gguf-model") / "stories260K.f32.gguf";
  gguf::export_llama(dir, out, Type::F32);
  const Checkpoint hf = Checkpoint::load(dir);
  const Checkpoint gg = Checkpoint::load(out);
  REQUIRE(gg.gguf);
  const ModelConfig &a = hf.config, &b = gg.config;
  CHECK(b.model_type == "llama");
  CHECK(b.num_hidden_layers == a.num_hidden_layers);
  CHECK(b.hidden_size == a.hidden_size);
  CHECK(b.intermediate_size == a.intermediate_size);
  CHECK(b.num_attention_heads == a.num_attention_heads);
  CHECK(b.num_key_value_heads == a.num_key_value_heads);
  CHECK(b.head_dim == a.head_dim);
  CHECK(b.vocab_size == a.vocab_size);
  CHECK(b.max_position_embeddings == a.max_position_embeddings);
  CHECK(b.rms_norm_eps == double(float(a.rms_norm_eps)));
  CHECK(b.rope_theta == a.rope_theta);
  CHECK(b.tie_word_embeddings == !hf.tensors.has("lm_head.weight"));
  CHECK(b.bos_token_ids == a.bos_token_ids);
  // The dense fp32 tensors are the HF ones (q/k permutation undone), under the HF names.
  for (const auto& name : hf.tensors.names()) {
    INFO(name);
    if (name.find("rotary_emb") != std::string::npos) continue;
    REQUIRE(gg.tensors.has(name));
    CHECK(gg.tensors.get(name).to_f32() == hf.tensors.get(name).to_f32());
  }
  auto mh = std::make_unique<Model>(Checkpoint::load(dir));
  auto mg = Model::load(out);
  CHECK(mg->checkpoint().tensors.names().empty());  // Model::load makes no fp32 copy
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 13, 70, 400, 22, 301, 11, 459};
  const auto lh = prefill_logits(*mh, ids), lg = prefill_logits(*mg, ids);
  REQUIRE(lh.size() == lg.size());
  double d = 0;
  for (size_t i = 0; i < lh.size(); ++i) d = std::max(d, std::fabs(double(lh[i]) - double(lg[i])));
  MESSAGE("stories260K F32 GGUF vs safetensors: max |logit difference| = " << d);
  CHECK(d < 1e-5);
}

TEST_CASE("SmolLM2-135M-Instruct Q4_1 GGUF: config from metadata and logits equal transformers' within 1e-3") {
  if (!fs::exists(smollm2())) {
    MESSAGE("skipped: " << smollm2() << " is absent");
    return;
  }
  const json g = json::parse(read_file(gdir() / "smollm2_logits_ids.json"));
  const json e = json::parse(read_file(gdir() / "smollm2_expect.json"));
  auto m = Model::load(smollm2());
  const ModelConfig& c = m->config();
  auto kv = [&](const char* k) { return e["kv"][k]["value"]; };
  CHECK(c.arch == Arch::Llama);
  CHECK(c.num_hidden_layers == kv("llama.block_count").get<int64_t>());
  CHECK(c.hidden_size == kv("llama.embedding_length").get<int64_t>());
  CHECK(c.intermediate_size == kv("llama.feed_forward_length").get<int64_t>());
  CHECK(c.num_attention_heads == kv("llama.attention.head_count").get<int64_t>());
  CHECK(c.num_key_value_heads == kv("llama.attention.head_count_kv").get<int64_t>());
  CHECK(c.head_dim == kv("llama.rope.dimension_count").get<int64_t>());
  CHECK(c.rope_theta == kv("llama.rope.freq_base").get<double>());
  CHECK(c.vocab_size == g["vocab"].get<int64_t>());
  CHECK(c.tie_word_embeddings);
  CHECK(c.bos_id() == kv("tokenizer.ggml.bos_token_id").get<int64_t>());
  // The linears run in their Q4_1 blocks; the tied lm_head in token_embd's Q8_0 blocks.
  const ModelWeights& w = m->weights();
  CHECK(w.layers[0].q.kind == Linear::Kind::Grouped);
  CHECK(w.layers[0].q.quant->format == "gguf Q4_1");
  CHECK(w.lm_head.quant->format == "gguf Q8_0");

  const std::vector<int32_t> ids = g["ids"].get<std::vector<int32_t>>();
  const std::vector<int64_t> pos = g["positions"].get<std::vector<int64_t>>();
  const std::vector<float> want = floats(read_file(gdir() / "smollm2_logits.f32"));
  const int64_t V = c.vocab_size;
  REQUIRE(want.size() == pos.size() * size_t(V));
  const std::vector<float> got = prefill_logits(*m, ids);
  REQUIRE(got.size() == ids.size() * size_t(V));
  double d = 0;
  for (size_t p = 0; p < pos.size(); ++p) {
    int64_t best = 0;
    for (int64_t v = 0; v < V; ++v) {
      const float x = got[size_t(pos[p] * V + v)];
      d = std::max(d, std::fabs(double(x) - double(want[p * size_t(V) + size_t(v)])));
      if (x > got[size_t(pos[p] * V + best)]) best = v;
    }
    CHECK(best == g["argmax"][p].get<int64_t>());
  }
  MESSAGE("SmolLM2 Q4_1 GGUF vs transformers (fp32): max |logit difference| over " << pos.size() << " positions = " << d);
  CHECK(d < 1e-3);
}

TEST_CASE("qwen2 and qwen3 GGUF files (gguf-py, as convert_hf_to_gguf writes them): logits equal transformers'") {
  for (const char* name : {"tiny-qwen2", "tiny-qwen3"}) {
    INFO(name);
    const json g = json::parse(read_file(test::testdata_dir() / "forward" / (std::string(name) + ".json")));
    const std::vector<float> want = floats(read_file(test::testdata_dir() / "forward" / (std::string(name) + ".bin")));
    auto m = Model::load(gdir() / (std::string(name) + ".gguf"));
    const ModelConfig& c = m->config();
    const bool qwen3 = std::string(name) == "tiny-qwen3";
    CHECK(c.arch == (qwen3 ? Arch::Qwen3 : Arch::Qwen2));
    CHECK(c.qk_norm == qwen3);
    CHECK(c.attention_bias == !qwen3);
    CHECK(c.head_dim == (qwen3 ? 16 : 12));
    const std::vector<float> got = prefill_logits(*m, g["ids"].get<std::vector<int32_t>>());
    REQUIRE(got.size() == want.size());
    double d = 0;
    for (size_t i = 0; i < got.size(); ++i) d = std::max(d, std::fabs(double(got[i]) - double(want[i])));
    MESSAGE(std::string(name) << " GGUF vs transformers on the HF checkpoint: max |logit difference| = " << d);
    CHECK(d <= 1e-4);
  }
}

TEST_CASE("GGUF checkpoints: unsupported architecture and missing tensors are one clear error") {
  const fs::path dir = test::temp_dir("gguf-arch");
  gguf::Metadata m;
  m.set_str("general.architecture", "gpt2");
  {
    gguf::Writer w(dir / "gpt2.gguf", m, {{"token_embd.weight", {4, 32}, Type::F32}});
    std::vector<float> x(128, 0.5f);
    w.write_f32("token_embd.weight", x.data(), x.size());
    w.finish();
  }
  CHECK_THROWS_WITH_AS(Checkpoint::load(dir / "gpt2.gguf"), doctest::Contains("GGUF architecture 'gpt2' is not supported"), Error);
  m.set_str("general.architecture", "llama");
  for (const auto& [k, v] : std::vector<std::pair<std::string, uint32_t>>{{"llama.block_count", 1}, {"llama.embedding_length", 32},
                                                                          {"llama.feed_forward_length", 64},
                                                                          {"llama.attention.head_count", 2},
                                                                          {"llama.context_length", 128}})
    m.set_u32(k, v);
  {
    gguf::Writer w(dir / "short.gguf", m, {{"token_embd.weight", {4, 32}, Type::F32}});
    std::vector<float> x(128, 0.5f);
    w.write_f32("token_embd.weight", x.data(), x.size());
    w.finish();
  }
  CHECK_THROWS_WITH_AS(Checkpoint::load(dir / "short.gguf"), doctest::Contains("metadata key 'llama.attention.layer_norm_rms_epsilon' is missing"), Error);
  m.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  {
    gguf::Writer w(dir / "short.gguf", m, {{"token_embd.weight", {4, 32}, Type::F32}});
    std::vector<float> x(128, 0.5f);
    w.write_f32("token_embd.weight", x.data(), x.size());
    w.finish();
  }
  CHECK_THROWS_WITH_AS(Checkpoint::load(dir / "short.gguf"), doctest::Contains("tensor blk.0.attn_norm.weight (model.layers.0.input_layernorm.weight) is missing"), Error);
}
