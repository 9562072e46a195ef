// serve() on stories260K: every request's output in a continuous batch equals the request run alone, under
// preemption (a tiny pool), chunked prefill (a tiny token budget) and prefix caching (a shared system
// prompt); greedy outputs are also held to the reference greedy continuation
// (../shared/models/reference/stories260K_reference.json: prompts that are prefixes of it must continue
// it). Sampled outputs with fixed seeds do not depend on batch composition. A soak of 32 sequences.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <random>

#include "lib/core/fsutil.h"
#include "lib/engine/generate.h"
#include "tests/support/test_paths.h"

using namespace llmopt;
using namespace llmopt::engine;

namespace {

model::Model& stories() {
  static auto m = model::Model::load(test::shared_dir() / "models/stories260K");
  return *m;
}

// The reference greedy continuation from BOS (BOS included).
const std::vector<int32_t>& reference() {
  static const auto ids = nlohmann::json::parse(read_file(test::shared_dir() / "models/reference/stories260K_reference.json"))
                              ["greedy_from_bos"]["token_ids_including_bos"].get<std::vector<int32_t>>();
  return ids;
}

std::vector<int32_t> ref_prefix(size_t k) { return {reference().begin(), reference().begin() + int64_t(k)}; }

Request greedy(std::vector<int32_t> prompt, int64_t max_new) {
  Request r;
  r.prompt = std::move(prompt);
  r.max_new_tokens = max_new;
  return r;
}

struct Run {
  std::vector<Result> results;  // by request index
  std::vector<size_t> finish_order;
  RunStats stats;
};

Run run(const std::vector<Request>& rq, const EngineOptions& o) {
  Run out;
  out.results.resize(rq.size());
  Callbacks cb;
  cb.on_result = [&](Result&& r) {
    out.finish_order.push_back(r.request);
    out.results[r.request] = std::move(r);
  };
  out.stats = serve(stories(), rq, o, cb);
  return out;
}

// Each request served on its own with default options.
std::vector<std::vector<Sample>> alone(const std::vector<Request>& rq) {
  std::vector<std::vector<Sample>> out;
  for (const Request& r : rq) {
    Run one = run({r}, {});
    REQUIRE(one.results[0].error.empty());
    out.push_back(one.results[0].samples);
  }
  return out;
}

void check_same(const Run& batch, const std::vector<std::vector<Sample>>& solo) {
  REQUIRE(batch.results.size() == solo.size());
  for (size_t i = 0; i < solo.size(); ++i) {
    CAPTURE(i);
    REQUIRE(batch.results[i].error.empty());
    REQUIRE(batch.results[i].samples.size() == solo[i].size());
    for (size_t j = 0; j < solo[i].size(); ++j) {
      CHECK(batch.results[i].samples[j].ids == solo[i][j].ids);
      CHECK(batch.results[i].samples[j].finish_reason == solo[i][j].finish_reason);
    }
  }
  CHECK(batch.stats.blocks_in_use_at_end == 0);
  CHECK(batch.stats.scheduler.peak_blocks <= batch.stats.kv_blocks);
}

// Prefixes of the reference, of lengths `lens`, each asked for `max_new` tokens: the golden output of
// request i is the reference from lens[i] on.
std::vector<Request> reference_requests(const std::vector<size_t>& lens, int64_t max_new) {
  std::vector<Request> rq;
  for (size_t k : lens) rq.push_back(greedy(ref_prefix(k), max_new));
  return rq;
}

void check_golden(const Run& r, const std::vector<size_t>& lens, int64_t max_new) {
  for (size_t i = 0; i < lens.size(); ++i) {
    CAPTURE(i);
    const auto& ref = reference();
    CHECK(r.results[i].samples[0].ids ==
          std::vector<int32_t>(ref.begin() + int64_t(lens[i]), ref.begin() + int64_t(lens[i]) + max_new));
  }
}

}  // namespace

TEST_CASE("a pool so small that sequences are preempted: every output equals the request alone and the reference") {
  const std::vector<size_t> lens = {1, 5, 23, 40, 64, 17, 90, 3};
  const int64_t max_new = 60;
  auto rq = reference_requests(lens, max_new);
  rq.push_back(greedy({1, 291, 376, 400, 428}, 70));  // "The little dog": no golden, checked against alone
  rq.push_back(greedy({1, 291, 280, 294}, 45));
  EngineOptions o;
  o.block_size = 8;
  o.kv_blocks = 24;  // 192 slots for ten sequences of up to 150 tokens
  const Run r = run(rq, o);
  MESSAGE("preemptions " << r.stats.scheduler.preemptions << ", peak blocks " << r.stats.scheduler.peak_blocks);
  CHECK(r.stats.scheduler.preemptions > 0);
  check_same(r, alone(rq));
  check_golden(r, lens, max_new);
}

TEST_CASE("chunked prefill under a small token budget, mixed with decode steps, changes no output") {
  const std::vector<size_t> lens = {100, 1, 57, 130, 9};
  const int64_t max_new = 40;
  auto rq = reference_requests(lens, max_new);
  EngineOptions o;
  o.scheduler.max_batched_tokens = 7;
  const Run r = run(rq, o);
  int64_t prompt_tokens = 0;
  for (size_t k : lens) prompt_tokens += int64_t(k);
  CHECK(r.stats.scheduler.steps >= (prompt_tokens + 6) / 7);  // no step exceeded the budget
  CHECK(r.stats.prefill_tokens + r.stats.scheduler.prefix_hit_tokens == prompt_tokens);  // the prefixes overlap
  check_same(r, alone(rq));
  check_golden(r, lens, max_new);
}

TEST_CASE("prefix caching: a shared system prompt is computed once, with fewer blocks, same outputs") {
  // eight requests share the reference's first 48 tokens (three blocks of 16) and continue differently
  std::vector<size_t> lens;
  for (size_t i = 0; i < 8; ++i) lens.push_back(48 + 3 * i);
  const int64_t max_new = 50;
  auto rq = reference_requests(lens, max_new);
  EngineOptions o;
  o.scheduler.max_seqs = 4;
  o.scheduler.max_batched_tokens = 48;  // the first prompt alone takes the first step
  const Run shared = run(rq, o);
  o.scheduler.prefix_caching = false;
  const Run unshared = run(rq, o);
  const auto& s = shared.stats.scheduler;
  MESSAGE("prefix hits " << s.prefix_hit_tokens << " tokens; peak blocks " << s.peak_blocks << " vs "
                         << unshared.stats.scheduler.peak_blocks << " without caching");
  CHECK(s.prefix_hit_tokens >= 7 * 48);  // every request after the first adopts the system prompt
  CHECK(unshared.stats.scheduler.prefix_hit_tokens == 0);
  CHECK(s.peak_blocks < unshared.stats.scheduler.peak_blocks);
  CHECK(shared.stats.prefill_tokens < unshared.stats.prefill_tokens);
  const auto solo = alone(rq);
  check_same(shared, solo);
  check_same(unshared, solo);
  check_golden(shared, lens, max_new);
  // all admitted at once under the default budget: the others wait one step for the first one's blocks
  const Run together = run(rq, {});
  MESSAGE("default budget: prefix hits " << together.stats.scheduler.prefix_hit_tokens << ", prefill tokens "
                                         << together.stats.prefill_tokens);
  CHECK(together.stats.scheduler.prefix_hit_tokens >= 7 * 48);
  check_same(together, solo);
}

TEST_CASE("sampled outputs with fixed seeds do not depend on the batch they run in") {
  std::vector<Request> rq;
  for (int i = 0; i < 6; ++i) {
    Request r = greedy(ref_prefix(size_t(1 + 7 * i)), 50);
    r.sampling = {1.0f, 40, 0.95f};
    r.seed = uint64_t(100 + i % 3);
    r.stop_ids = {2};
    rq.push_back(r);
  }
  rq[2].n = 3;  // three samples forked from one prompt
  const auto solo = alone(rq);
  EngineOptions tight;
  tight.block_size = 4;
  tight.kv_blocks = 40;
  tight.scheduler.max_batched_tokens = 9;
  tight.scheduler.max_seqs = 5;
  const Run r = run(rq, tight);
  CHECK(r.stats.scheduler.preemptions > 0);
  check_same(r, solo);
  // reversed order: other batch mates, other positions
  std::vector<Request> rev(rq.rbegin(), rq.rend());
  const Run b = run(rev, {});
  for (size_t i = 0; i < rq.size(); ++i)
    for (size_t j = 0; j < solo[i].size(); ++j) CHECK(b.results[rq.size() - 1 - i].samples[j].ids == solo[i][j].ids);
  // the samples of one prompt differ from each other (own generators), the same seed repeats
  CHECK(solo[2][0].ids != solo[2][1].ids);
  CHECK(solo[2][1].ids != solo[2][2].ids);
  CHECK(solo[0][0].ids != solo[3][0].ids);  // same seed, other prompt
}

TEST_CASE("n samples share the prompt's blocks: fewer blocks than n separate requests") {
  Request r = greedy(ref_prefix(64), 20);
  r.sampling = {0.8f, 0, 1.0f};
  r.n = 4;
  const Run forked = run({r}, {});
  std::vector<Request> separate(4, r);
  for (auto& s : separate) s.n = 1;
  EngineOptions o;
  o.scheduler.prefix_caching = false;
  const Run apart = run(separate, o);
  CHECK(forked.results[0].samples.size() == 4);
  CHECK(forked.stats.scheduler.peak_running == 4);
  CHECK(forked.stats.scheduler.peak_blocks < apart.stats.scheduler.peak_blocks);
  CHECK(forked.stats.prefill_tokens == 64);
  CHECK(forked.stats.blocks_in_use_at_end == 0);
  CHECK(apart.results[0].samples[0].ids == forked.results[0].samples[0].ids);  // sample 0: seed (s, 0) both ways
}

TEST_CASE("soak: 32 sequences, 10,000 tokens, preemptions, every block free at the end") {
  std::mt19937 g(7);
  std::vector<Request> rq;
  int64_t total = 0;
  for (int i = 0; i < 32; ++i) {
    const int64_t P = 20 + int64_t(g() % 150), want = 10000 / 32 + (i < 10000 % 32);
    std::vector<int32_t> p = {1};
    for (int64_t t = 1; t < P; ++t) p.push_back(int32_t(3 + g() % 509));
    rq.push_back(greedy(p, want - P));
    total += want;
  }
  REQUIRE(total == 10000);
  EngineOptions o;
  o.kv_blocks = 160;  // 2560 slots for 10,000 tokens
  o.scheduler.max_batched_tokens = 256;
  const Run r = run(rq, o);
  const auto& s = r.stats.scheduler;
  MESSAGE("steps " << s.steps << ", preemptions " << s.preemptions << ", peak running " << s.peak_running
                   << ", peak blocks " << s.peak_blocks << " of " << r.stats.kv_blocks << ", waste " << r.stats.kv_waste);
  int64_t tokens = 0;
  for (size_t i = 0; i < rq.size(); ++i) {
    REQUIRE(r.results[i].error.empty());
    CHECK(int64_t(r.results[i].samples[0].ids.size()) == rq[i].max_new_tokens);
    tokens += int64_t(rq[i].prompt.size() + r.results[i].samples[0].ids.size());
  }
  CHECK(tokens == 10000);
  CHECK(r.stats.blocks_in_use_at_end == 0);
  CHECK(s.peak_blocks <= r.stats.kv_blocks);
  CHECK(s.preemptions > 0);
  CHECK(s.peak_running > 8);
}

TEST_CASE("requests the engine cannot serve fail alone; the others complete") {
  std::vector<Request> rq = {greedy({}, 5), greedy(ref_prefix(5), 5), greedy(std::vector<int32_t>(600, 5), 5),
                             greedy({1, 9999}, 5), greedy(ref_prefix(3), 0), greedy(ref_prefix(200), 300)};
  rq.push_back(greedy(ref_prefix(4), 5));
  rq.back().n = 100;
  EngineOptions o;
  o.kv_blocks = 20;  // 320 slots: request 5 needs 499
  const Run r = run(rq, o);
  CHECK(r.stats.failed == 5);
  CHECK(r.results[0].error.find("empty") != std::string::npos);
  CHECK(r.results[2].error.find("context") != std::string::npos);
  CHECK(r.results[3].error.find("vocabulary") != std::string::npos);
  CHECK(r.results[5].error.find("blocks") != std::string::npos);
  CHECK(r.results[6].error.find("max-seqs") != std::string::npos);
  CHECK(r.results[1].error.empty());
  CHECK(r.results[1].samples[0].ids == std::vector<int32_t>(reference().begin() + 5, reference().begin() + 10));
  CHECK(r.results[4].samples[0].ids.empty());
  CHECK(r.results[4].samples[0].finish_reason == "length");
  // failures are reported before anything is served
  CHECK(r.finish_order.size() == 7);
  CHECK(r.finish_order.back() == 1);
}

TEST_CASE("a sample stops at the context length") {
  std::vector<int32_t> p;
  while (p.size() < 499) p.push_back(reference()[p.size() % reference().size()]);
  const Run r = run({greedy(p, 50)}, {});
  // prompt + generated reach the context of 512: 13 tokens
  CHECK(r.results[0].samples[0].ids.size() == 512 - 499);
  CHECK(r.results[0].samples[0].finish_reason == "length");
}
