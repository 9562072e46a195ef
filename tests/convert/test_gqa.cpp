// MHA → GQA by mean-pooling KV heads. The reference is ../shared/models: stories260K-mha is stories260K with
// every KV head duplicated (made independently, see SOURCES.md), so pooling each adjacent pair must give back
// stories260K tensor for tensor, bit for bit, and its logits. The similarity grouping must find the duplicated
// pairs wherever they sit, and permuting heads alone must not change the model's function.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "lib/core/error.h"
#include "lib/convert/gqa.h"
#include "lib/core/fsutil.h"
#include "lib/model/forward.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using namespace llmopt;

namespace {

fs::path shared_model(const std::string& name) { return test::shared_dir() / "models" / name; }

// Real text: the 257-token greedy continuation in the reference json (BOS + "Once upon a time, ...").
std::vector<int32_t> reference_tokens() {
  auto j = nlohmann::json::parse(read_file(shared_model("reference/stories260K_reference.json")));
  return j["greedy_from_bos"]["token_ids_including_bos"].get<std::vector<int32_t>>();
}

std::vector<float> logits(const fs::path& dir, std::span<const int32_t> ids) {
  auto m = model::Model::load(dir);
  auto kv = m->make_cache(1, int64_t(ids.size()));
  model::Model::SeqInput in{0, ids, true};
  return run_step(*m, *kv, std::span(&in, 1));
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

// Every tensor of `got` equals the one of `want` in name, dtype, shape and bytes.
void check_same_tensors(const fs::path& got, const fs::path& want) {
  auto g = st::TensorSet::open_dir(got), w = st::TensorSet::open_dir(want);
  REQUIRE(g.names() == w.names());
  for (const auto& n : w.names()) {
    INFO(n);
    auto a = g.get(n), b = w.get(n);
    CHECK(a.dtype() == b.dtype());
    CHECK(a.shape() == b.shape());
    REQUIRE(a.nbytes() == b.nbytes());
    CHECK(std::memcmp(a.data, b.data, a.nbytes()) == 0);
  }
}

// The checkpoint with its KV heads re-ordered (size-1 groups): new KV head i is old head perm[i], each with
// its query heads. Same config, so the same function.
fs::path permuted_copy(const fs::path& src, const std::vector<int64_t>& perm, const std::string& tag) {
  auto ck = model::Checkpoint::load(src);
  convert::LayerGroups gs;
  for (int64_t j : perm) gs.push_back({j});
  fs::path out = test::temp_dir(tag);
  convert::write_grouped_checkpoint(ck, convert::KvGroups(size_t(ck.config.num_hidden_layers), gs), out, 1ull << 40);
  return out;
}

}  // namespace

TEST_CASE("stories260K-mha → 4 KV heads (adjacent) is stories260K, bit for bit") {
  fs::path out = test::temp_dir("gqa_adjacent") / "out";
  convert::GqaOptions o;
  o.kv_heads = 4;
  auto r = convert::convert_gqa(shared_model("stories260K-mha"), out, o);
  CHECK(r.kv_heads_before == 8);
  CHECK(r.kv_heads_after == 4);
  CHECK(r.kv_bytes_per_token_before == 2560);  // 2·L·H_kv·D·4 = 2·5·8·8·4
  CHECK(r.kv_bytes_per_token_after == 1280);
  check_same_tensors(out, shared_model("stories260K"));

  // config.json: only num_key_value_heads changed; tokenizer and generation files copied unchanged
  auto cj = nlohmann::json::parse(read_file(out / "config.json"));
  auto want = nlohmann::json::parse(read_file(shared_model("stories260K-mha/config.json")));
  want["num_key_value_heads"] = 4;
  CHECK(cj == want);
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                        "generation_config.json"})
    CHECK(read_file(out / f) == read_file(shared_model("stories260K-mha") / f));

  // and it computes stories260K's (and stories260K-mha's) logits
  auto ids = reference_tokens();
  ids.resize(48);
  const auto got = logits(out, ids);
  CHECK(max_abs_diff(got, logits(shared_model("stories260K"), ids)) == 0.0f);
  // the MHA model sums its heads in another order: float32 rounding only (logits reach ≈ 22, ulp 2e-6)
  CHECK(max_abs_diff(got, logits(shared_model("stories260K-mha"), ids)) <= 5e-5f);
}

TEST_CASE("permuting KV heads with their query heads leaves the function unchanged") {
  auto ids = reference_tokens();
  ids.resize(40);
  SUBCASE("stories260K, 4 KV heads") {
    fs::path p = permuted_copy(shared_model("stories260K"), {2, 0, 3, 1}, "gqa_perm");
    auto a = st::TensorSet::open_dir(p), b = st::TensorSet::open_dir(shared_model("stories260K"));
    // k rows of new head 0 are old head 2's; q rows of new heads 0,1 are old heads 4,5
    auto k0 = a.get("model.layers.1.self_attn.k_proj.weight").as<float>();
    auto k2 = b.get("model.layers.1.self_attn.k_proj.weight").as<float>();
    CHECK(std::equal(k0.begin(), k0.begin() + 8 * 64, k2.begin() + 2 * 8 * 64));
    auto q0 = a.get("model.layers.1.self_attn.q_proj.weight").as<float>();
    auto q4 = b.get("model.layers.1.self_attn.q_proj.weight").as<float>();
    CHECK(std::equal(q0.begin(), q0.begin() + 16 * 64, q4.begin() + 4 * 8 * 64));
    CHECK(max_abs_diff(logits(p, ids), logits(shared_model("stories260K"), ids)) <= 5e-5f);  // o_proj sums in another order
  }
  SUBCASE("tiny qwen2 (q/k/v biases), 2 KV heads swapped") {
    fs::path src = test::testdata_dir() / "models/tiny-qwen2";
    fs::path p = permuted_copy(src, {1, 0}, "gqa_perm_qwen2");
    std::vector<int32_t> small(ids.begin(), ids.begin() + 16);
    for (auto& t : small) t %= 64;
    CHECK(max_abs_diff(logits(p, small), logits(src, small)) <= 5e-5f);
  }
}

TEST_CASE("similarity grouping finds duplicated heads wherever they are") {
  // stories260K-mha with KV heads re-ordered so that the duplicated pairs (2j, 2j+1) sit at (j, j+4)
  fs::path shuffled = permuted_copy(shared_model("stories260K-mha"), {0, 2, 4, 6, 1, 3, 5, 7}, "gqa_shuffled");
  auto ck = model::Checkpoint::load(shuffled);
  auto ids = reference_tokens();
  std::vector<std::vector<int32_t>> calib = {std::vector<int32_t>(ids.begin(), ids.begin() + 128),
                                             std::vector<int32_t>(ids.begin() + 128, ids.begin() + 256)};
  auto stats = convert::collect_head_stats(ck, calib);
  CHECK(stats.tokens == 256);
  for (int l = 0; l < 5; ++l) {
    auto m = convert::head_metric(stats, l);
    auto g = convert::similarity_groups(m, 8, 4);
    CHECK(g == convert::LayerGroups{{0, 4}, {1, 5}, {2, 6}, {3, 7}});
    CHECK(convert::pooling_error(m, 8, g) <= 1e-12);
    CHECK(convert::pooling_error(m, 8, {{0, 1}, {2, 3}, {4, 5}, {6, 7}}) > 0.05);
  }

  // The whole conversion: pooled heads + permuted query heads give stories260K's function back.
  fs::path out = test::temp_dir("gqa_similarity") / "out";
  convert::GqaOptions o;
  o.kv_heads = 4;
  o.grouping = convert::Grouping::Similarity;
  o.calib = calib;
  auto r = convert::convert_gqa(shuffled, out, o);
  REQUIRE(r.error_chosen.size() == 5);
  check_same_tensors(out, shared_model("stories260K"));  // query heads moved back to their pooled KV heads
  std::vector<int32_t> few(ids.begin(), ids.begin() + 48);
  CHECK(max_abs_diff(logits(out, few), logits(shared_model("stories260K"), few)) <= 5e-5f);
  // the adjacent grouping of the shuffled model pools unrelated heads and changes the function
  fs::path adj = test::temp_dir("gqa_similarity") / "adj";
  o.grouping = convert::Grouping::Adjacent;
  convert::convert_gqa(shuffled, adj, o);
  CHECK(max_abs_diff(logits(adj, few), logits(shared_model("stories260K"), few)) > 1e-2f);
}

TEST_CASE("similarity grouping never pools worse than adjacent (stories260K 4 → 2)") {
  auto ck = model::Checkpoint::load(shared_model("stories260K"));
  auto ids = reference_tokens();
  auto stats = convert::collect_head_stats(ck, {ids});
  for (int l = 0; l < 5; ++l) {
    auto m = convert::head_metric(stats, l);
    auto g = convert::similarity_groups(m, 4, 2);
    REQUIRE(g.size() == 2);
    CHECK(g[0].size() == 2);
    CHECK(g[0][0] == 0);  // canonical order
    CHECK(convert::pooling_error(m, 4, g) <= convert::pooling_error(m, 4, {{0, 1}, {2, 3}}) + 1e-12);
    // the best of the three possible pairings
    for (const convert::LayerGroups& other : {convert::LayerGroups{{0, 2}, {1, 3}}, convert::LayerGroups{{0, 3}, {1, 2}}})
      CHECK(convert::pooling_error(m, 4, g) <= convert::pooling_error(m, 4, other) + 1e-12);
  }
}

TEST_CASE("pooling in bf16 (with qwen2 k/v biases) rounds the fp64 mean once") {
  // a bf16 copy of the tiny qwen2 test model (2 KV heads, q/k/v biases)
  fs::path f32 = test::testdata_dir() / "models/tiny-qwen2", src = test::temp_dir("gqa_bf16") / "src";
  fs::create_directory(src);
  fs::copy_file(f32 / "config.json", src / "config.json");
  {
    auto ts = st::TensorSet::open_dir(f32);
    std::vector<st::TensorInfo> specs;
    for (const auto& n : ts.names()) specs.push_back({n, DType::BF16, ts.info(n).shape, 0, 0});
    st::Writer w(src / "model.safetensors", specs);
    for (const auto& n : ts.names()) {
      std::vector<uint16_t> h;
      for (float x : ts.get(n).to_f32()) h.push_back(f32_to_bf16(x));
      w.write(n, h.data(), h.size() * 2);
    }
    w.finish();
  }
  fs::path out = test::temp_dir("gqa_bf16") / "out";
  convert::GqaOptions o;
  o.kv_heads = 1;
  convert::convert_gqa(src, out, o);
  auto a = st::TensorSet::open_dir(src), b = st::TensorSet::open_dir(out);
  for (const char* n : {"model.layers.0.self_attn.k_proj.weight", "model.layers.1.self_attn.v_proj.weight",
                        "model.layers.0.self_attn.k_proj.bias", "model.layers.1.self_attn.v_proj.bias"}) {
    INFO(n);
    REQUIRE(b.get(n).dtype() == DType::BF16);
    auto w = a.get(n).to_f32(), p = b.get(n).to_f32();
    REQUIRE(p.size() * 2 == w.size());
    int differs = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      const float mean = float((double(w[i]) + double(w[i + p.size()])) / 2);
      REQUIRE(p[i] == bf16_to_f32(f32_to_bf16(mean)));
      differs += w[i] != w[i + p.size()];
    }
    CHECK(differs > 0);  // the two heads really differ
  }
  // q, o and everything else copied in their stored dtype, byte for byte
  for (const char* n : {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.bias",
                        "model.layers.1.self_attn.o_proj.weight", "model.embed_tokens.weight"})
    CHECK(std::memcmp(a.get(n).data, b.get(n).data, a.get(n).nbytes()) == 0);
}

TEST_CASE("bad targets are one-line errors and leave nothing behind") {
  auto c = model::load_config(shared_model("stories260K-mha"));
  CHECK_THROWS_WITH_AS(convert::check_gqa_target(c, 3), doctest::Contains("does not divide"), Error);
  CHECK_THROWS_WITH_AS(convert::check_gqa_target(c, 8), doctest::Contains("not a reduction"), Error);
  CHECK_THROWS_WITH_AS(convert::check_gqa_target(c, 0), doctest::Contains("must be positive"), Error);
  auto mla = model::parse_config(nlohmann::json::parse(read_file(test::testdata_dir() / "configs/deepseek_v2.json")));
  CHECK_THROWS_WITH_AS(convert::check_gqa_target(mla, 4), doctest::Contains("MLA"), Error);

  fs::path parent = test::temp_dir("gqa_bad");
  convert::GqaOptions o;
  o.kv_heads = 4;
  o.grouping = convert::Grouping::Similarity;  // no calibration
  CHECK_THROWS_AS(convert::convert_gqa(shared_model("stories260K-mha"), parent / "out", o), Error);
  CHECK(fs::is_empty(parent));
}
