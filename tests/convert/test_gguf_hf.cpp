// `convert MODEL.gguf -o DIR`: the Hugging Face directory written from the real SmolLM2-135M-Instruct Q4_1
// file runs to the logits transformers computes from the .gguf itself (testdata/gguf/smollm2_logits.f32, from
// scripts/golden/gguf_logits_golden.py); the bf16 export stores bf16 tensors; the tokenizer written beside it
// encodes as the one built from the GGUF metadata; bad --dtype and non-GGUF inputs are one clear error.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "lib/convert/gguf_hf.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/model/checkpoint.h"
#include "lib/model/forward.h"
#include "lib/tokenizer/tokenizer.h"
#include "tests/support/test_paths.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace llmopt;

namespace {
fs::path smollm2() { return test::shared_dir() / "models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf"; }

struct TempDir {
  fs::path p = fs::temp_directory_path() / ("llmopt-test-gguf-hf-" + std::to_string(::getpid()));
  TempDir() { fs::remove_all(p); }
  ~TempDir() { fs::remove_all(p); }
};

// Largest |difference| between our logits of `dir` and transformers' on the golden ids and positions.
double max_diff_to_golden(const fs::path& dir) {
  const fs::path g = test::testdata_dir() / "gguf";
  const json meta = json::parse(read_file(g / "smollm2_logits_ids.json"));
  const std::string raw = read_file(g / "smollm2_logits.f32");
  std::vector<float> want(raw.size() / 4);
  std::memcpy(want.data(), raw.data(), raw.size());
  const auto ids = meta["ids"].get<std::vector<int32_t>>();
  const auto pos = meta["positions"].get<std::vector<int64_t>>();
  auto m = model::Model::load(dir);
  const int64_t V = m->config().vocab_size;
  REQUIRE(want.size() == pos.size() * size_t(V));
  auto kv = m->make_cache(1, int64_t(ids.size()));
  model::Model::SeqInput in{0, ids, true};
  const std::vector<float> got = model::run_step(*m, *kv, {&in, 1});
  double d = 0;
  for (size_t p = 0; p < pos.size(); ++p)
    for (int64_t v = 0; v < V; ++v)
      d = std::max(d, std::fabs(double(got[size_t(pos[p] * V + v)]) - double(want[p * size_t(V) + size_t(v)])));
  return d;
}
}  // namespace

TEST_CASE("SmolLM2 GGUF exported as a Hugging Face directory computes transformers' logits of the GGUF") {
  if (!fs::exists(smollm2())) {
    MESSAGE("skipped: " << smollm2() << " is absent");
    return;
  }
  TempDir t;
  const auto r = convert::export_gguf_to_hf(smollm2(), t.p, DType::F32);
  CHECK(r.tensors == 272);
  CHECK(r.parameters == 134515008);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    CHECK_MESSAGE(fs::exists(t.p / f), f);
  const json cfg = json::parse(read_file(t.p / "config.json"));
  CHECK(cfg["model_type"] == "llama");
  CHECK(cfg["torch_dtype"] == "float32");
  const json tc = json::parse(read_file(t.p / "tokenizer_config.json"));
  CHECK(tc["chat_template"].get<std::string>().find("<|im_start|>") != std::string::npos);

  const double d = max_diff_to_golden(t.p);
  MESSAGE("HF directory written from the GGUF vs transformers on the GGUF: max |logit difference| = " << d);
  CHECK(d < 1e-3);

  // the tokenizer.json written beside the weights encodes like the GGUF's own (digits split one by one)
  const auto a = tok::Tokenizer::load(t.p), b = tok::Tokenizer::load(smollm2());
  for (const char* s : {"In 1998, 12345 people paid $3.50 each.", " The  quick\tbrown fox\n\n", "naïve café 東京"})
    CHECK(a.encode(s) == b.encode(s));
}

TEST_CASE("the bf16 export stores bf16 tensors; bad --dtype and non-GGUF input are errors") {
  if (!fs::exists(smollm2())) {
    MESSAGE("skipped: " << smollm2() << " is absent");
    return;
  }
  TempDir t;
  convert::export_gguf_to_hf(smollm2(), t.p, convert::export_dtype("BF16"));
  const auto ck = model::Checkpoint::load(t.p);
  CHECK(ck.tensors.info("model.layers.0.self_attn.q_proj.weight").dtype == DType::BF16);
  CHECK(ck.tensors.info("model.norm.weight").dtype == DType::BF16);
  CHECK(json::parse(read_file(t.p / "config.json"))["torch_dtype"] == "bfloat16");
  CHECK_THROWS_WITH_AS(convert::export_dtype("q4_0"), doctest::Contains("--dtype q4_0"), Error);
  CHECK_THROWS_WITH_AS(convert::export_gguf_to_hf(test::shared_dir() / "models/stories260K", t.p / "x", DType::F32),
                       doctest::Contains("is not a .gguf file"), Error);
  CHECK_FALSE(fs::exists(t.p / "x"));
}
