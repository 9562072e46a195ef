#include "lib/engine/bench.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "lib/core/error.h"

namespace llmopt::engine {
namespace {

// B distinct prompts of pp random tokens (BOS-free: the bench measures, the text does not matter).
std::vector<Request> random_requests(int64_t vocab, int64_t pp, int64_t tg, int64_t pl, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<Request> rq(static_cast<size_t>(pl));
  for (auto& r : rq) {
    for (int64_t i = 0; i < pp; ++i) r.prompt.push_back(int32_t(g() % uint64_t(vocab)));
    r.max_new_tokens = tg + 1;  // the first token comes from the prefill, then tg decode steps
  }
  return rq;
}

RunStats serve_checked(model::Model& m, const std::vector<Request>& rq, const EngineOptions& o) {
  std::string error;
  Callbacks cb;
  cb.on_result = [&](Result&& r) {
    if (!r.error.empty() && error.empty()) error = r.error;
  };
  RunStats st = serve(m, rq, o, cb);
  if (!error.empty()) fail("bench: {}", error);
  return st;
}

}  // namespace

std::vector<BatchedBenchRow> batched_bench(model::Model& m, const BatchedBenchOptions& o,
                                           const std::function<void(const BatchedBenchRow&)>& on_row) {
  std::vector<BatchedBenchRow> rows;
  for (int64_t pp : o.npp)  // every shape checked before anything runs
    for (int64_t tg : o.ntg)
      for (int64_t pl : o.npl) {
        if (pp < 1 || tg < 1 || pl < 1) fail("bench: --npp, --ntg and --npl need values >= 1");
        EngineOptions eo = o.engine;
        eo.scheduler.max_seqs = pl;
        const std::string e = check_request(m.config(), random_requests(m.config().vocab_size, pp, tg, 1, 0)[0], eo, false);
        if (!e.empty()) fail("bench: PP {} TG {} B {}: {}", pp, tg, pl, e);
      }
  for (int64_t pp : o.npp)
    for (int64_t tg : o.ntg)
      for (int64_t pl : o.npl) {
        EngineOptions eo = o.engine;
        eo.scheduler.max_seqs = pl;
        eo.scheduler.prefix_caching = false;  // distinct prompts: nothing to share
        if (o.engine.scheduler.max_batched_tokens <= 0) eo.scheduler.max_batched_tokens = pl * pp;
        const auto rq = random_requests(m.config().vocab_size, pp, tg, pl, o.seed);
        auto warm = rq;
        for (auto& r : warm) r.max_new_tokens = 2;
        serve_checked(m, warm, eo);  // grows the workspace to this shape, untimed
        const RunStats st = serve_checked(m, rq, eo);
        BatchedBenchRow r;
        r.pp = pp, r.tg = tg, r.pl = pl, r.n_kv = pl * (pp + tg);
        r.t_pp = st.prefill_s, r.t_tg = st.decode_s, r.t = st.prefill_s + st.decode_s;
        r.speed_pp = r.t_pp > 0 ? double(st.prefill_tokens) / r.t_pp : 0;
        r.speed_tg = r.t_tg > 0 ? double(st.decode_tokens) / r.t_tg : 0;
        r.speed = r.t > 0 ? double(st.prefill_tokens + st.decode_tokens) / r.t : 0;
        r.kv_waste = st.kv_waste;
        rows.push_back(r);
        if (on_row) on_row(r);
      }
  return rows;
}

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / double(v.size());
  auto at = [&](double q) {  // rank q·(n − 1), interpolated
    const double r = q * double(v.size() - 1);
    const size_t lo = size_t(std::floor(r)), hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (r - double(lo));
  };
  p.p50 = at(0.5), p.p90 = at(0.9), p.p99 = at(0.99);
  return p;
}

ThroughputResult throughput_bench(model::Model& m, const std::vector<Request>& requests, const EngineOptions& o) {
  ThroughputResult t;
  std::vector<double> ttft, itl;
  Callbacks cb;
  cb.on_result = [&](Result&& r) {
    if (!r.error.empty()) return;
    t.prompt_tokens += int64_t(requests[r.request].prompt.size());
    ttft.push_back(r.ttft_s);
    for (const auto& s : r.samples)
      for (size_t i = 1; i < s.token_s.size(); ++i) itl.push_back(s.token_s[i] - s.token_s[i - 1]);
  };
  t.stats = serve(m, requests, o, cb);
  t.requests = t.stats.requests, t.failed = t.stats.failed, t.output_tokens = t.stats.output_tokens;
  t.wall_s = t.stats.wall_s;
  if (t.wall_s > 0) {
    t.requests_per_s = double(t.requests - t.failed) / t.wall_s;
    t.output_tokens_per_s = double(t.output_tokens) / t.wall_s;
    t.total_tokens_per_s = double(t.prompt_tokens + t.output_tokens) / t.wall_s;
  }
  t.ttft_s = percentiles(ttft);
  t.itl_s = percentiles(itl);
  return t;
}

}  // namespace llmopt::engine
