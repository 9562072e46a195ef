#pragma once
// `llmopt bench`: throughput of the serving loop (serve()), in two shapes.
// - batched: llama.cpp's llama-batched-bench table. For every prompt length PP, generation length TG and
//   parallel sequence count B: B distinct random prompts of PP tokens are prefilled (T_PP, S_PP = B·PP /
//   T_PP), then TG decode steps of B tokens run (T_TG, S_TG = B·TG / T_TG), greedy, no stop token.
// - throughput: the requests of a prompts file served as fast as possible, like vLLM's offline throughput
//   benchmark: requests/s, output tokens/s, TTFT and inter-token latency percentiles.
#include <cstdint>
#include <functional>
#include <vector>

#include "lib/engine/generate.h"

namespace llmopt::engine {

struct BatchedBenchOptions {
  std::vector<int64_t> npp = {128}, ntg = {128}, npl = {1, 2, 4, 8, 16, 32};
  EngineOptions engine;            // max_batched_tokens 0: B·PP (the whole prefill in one step)
  uint64_t seed = 0;               // of the random prompts
};

struct BatchedBenchRow {
  int64_t pp = 0, tg = 0, pl = 0, n_kv = 0;
  double t_pp = 0, speed_pp = 0, t_tg = 0, speed_tg = 0, t = 0, speed = 0;
  double kv_waste = 0;
};

// One row per (pp, tg, pl), in that nesting order; each after an untimed warm-up of the same shape.
std::vector<BatchedBenchRow> batched_bench(model::Model& m, const BatchedBenchOptions& o,
                                           const std::function<void(const BatchedBenchRow&)>& on_row = {});

struct Percentiles {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};
// Linear interpolation between closest ranks (numpy's default); zeros for no values.
Percentiles percentiles(std::vector<double> v);

struct ThroughputResult {
  int64_t requests = 0, failed = 0, prompt_tokens = 0, output_tokens = 0;
  double wall_s = 0, requests_per_s = 0, output_tokens_per_s = 0, total_tokens_per_s = 0;
  Percentiles ttft_s, itl_s;  // time to first token per request; gaps between a sample's tokens
  RunStats stats;
};

ThroughputResult throughput_bench(model::Model& m, const std::vector<Request>& requests, const EngineOptions& o);

}  // namespace llmopt::engine
