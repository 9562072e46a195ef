// llmopt bench MODEL [--npp LIST] [--ntg LIST] [--npl LIST] [--prompts-file FILE|-] [--json]
//              [serving flags: engine_flags.h]
// Without --prompts-file: the llama-batched-bench table; with it: offline throughput over its requests.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <optional>
#include <iterator>
#include <utility>

#include "apps/llmopt/command.h"
#include "apps/llmopt/engine_flags.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"
#include "lib/engine/bench.h"
#include "lib/engine/prompts.h"

namespace {

using nlohmann::json;
using namespace llmopt;

json percentiles_json(const engine::Percentiles& p) {
  return {{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}};
}

int run_throughput(model::Model& m, const std::string& dir, const std::string& file, const engine::Request& dflt,
                   const engine::EngineOptions& eo, bool as_json) {
  const std::string text =
      file == "-" ? std::string(std::istreambuf_iterator<char>(std::cin), {}) : read_file(file);
  std::optional<tok::Tokenizer> tk;  // a .gguf without tokenizer metadata serves `ids` lines only
  if (std::filesystem::is_directory(dir)) {
    tk = tok::Tokenizer::load(dir);
  } else {
    try {
      tk = tok::Tokenizer::load(dir);
    } catch (const Error& e) {
      log::warn("bench: {} (only `ids` lines can be served)", e.what());
    }
  }
  std::vector<engine::Request> rq;
  for (const auto& pl : engine::parse_prompts(text, dflt, tk ? &*tk : nullptr, m.config())) {
    if (!pl.error.empty()) fail("--prompts-file {}: request {}: {}", file, pl.id.dump(), pl.error);
    rq.push_back(pl.request);
  }
  if (rq.empty()) fail("--prompts-file {}: no prompts (one per line)", file);
  const engine::ThroughputResult t = engine::throughput_bench(m, rq, eo);
  if (as_json) {
    fmt::print("{}\n", json{{"requests", t.requests}, {"failed", t.failed}, {"prompt_tokens", t.prompt_tokens},
                            {"output_tokens", t.output_tokens}, {"wall_s", t.wall_s},
                            {"requests_per_s", t.requests_per_s}, {"output_tokens_per_s", t.output_tokens_per_s},
                            {"total_tokens_per_s", t.total_tokens_per_s}, {"ttft_s", percentiles_json(t.ttft_s)},
                            {"itl_s", percentiles_json(t.itl_s)}, {"preemptions", t.stats.scheduler.preemptions},
                            {"prefix_hit_tokens", t.stats.scheduler.prefix_hit_tokens},
                            {"prefill_s", t.stats.prefill_s}, {"decode_s", t.stats.decode_s},
                            {"kv_waste", t.stats.kv_waste}}.dump());
  } else {
    fmt::print("requests {} ({} failed), prompt tokens {}, output tokens {}, {:.3f} s\n", t.requests, t.failed,
               t.prompt_tokens, t.output_tokens, t.wall_s);
    fmt::print("throughput: {:.2f} requests/s, {:.1f} output tokens/s, {:.1f} total tokens/s\n", t.requests_per_s,
               t.output_tokens_per_s, t.total_tokens_per_s);
    for (auto [name, p] : {std::pair{"TTFT", t.ttft_s}, std::pair{"ITL", t.itl_s}})
      fmt::print("{:>4} ms: mean {:.2f}  p50 {:.2f}  p90 {:.2f}  p99 {:.2f}\n", name, 1e3 * p.mean, 1e3 * p.p50,
                 1e3 * p.p90, 1e3 * p.p99);
    fmt::print("prefill {:.3f} s, decode {:.3f} s, preemptions {}, prefix hits {} tokens, KV waste {:.1f}%\n",
               t.stats.prefill_s, t.stats.decode_s, t.stats.scheduler.preemptions,
               t.stats.scheduler.prefix_hit_tokens, 100 * t.stats.kv_waste);
  }
  return t.failed > 0 ? 1 : 0;
}

}  // namespace

LLMOPT_COMMAND("bench", "Serving throughput: llama-batched-bench table, or offline throughput over a prompts file",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts {
                   std::string dir, prompts_file;
                   engine::BatchedBenchOptions b;
                   int64_t max_new = 128;
                   bool json = false;
                   app::EngineFlags eng;
                 };
                 auto o = std::make_shared<Opts>();
                 o->eng.sched.max_batched_tokens = 0;  // batched: B·PP, the whole prefill in one step
                 sub.add_option("MODEL", o->dir, "model directory or .gguf file")->required();
                 sub.add_option("--npp", o->b.npp, "prompt lengths, comma-separated (default 128)")->delimiter(',');
                 sub.add_option("--ntg", o->b.ntg, "generated lengths (default 128)")->delimiter(',');
                 sub.add_option("--npl", o->b.npl, "parallel sequences (default 1,2,4,8,16,32)")->delimiter(',');
                 auto* f = sub.add_option("--prompts-file", o->prompts_file,
                                          "offline throughput over these requests (as generate reads them)");
                 sub.add_option("--max-new-tokens", o->max_new, "throughput: tokens per request (default 128)");
                 sub.add_option("--seed", o->b.seed, "seed of the random prompts (default 0)");
                 sub.add_flag("--json", o->json, "JSON: one object per table row, or one for the throughput run");
                 app::add_engine_flags(sub, o->eng);
                 return [o, f] {
                   auto model = model::Model::load(o->dir);
                   engine::EngineOptions eo = app::engine_options(o->eng, *model);
                   if (f->count()) {
                     if (eo.scheduler.max_batched_tokens <= 0) eo.scheduler.max_batched_tokens = 2048;
                     if (o->max_new < 0) fail("--max-new-tokens must be >= 0, got {}", o->max_new);
                     engine::Request dflt;
                     dflt.max_new_tokens = o->max_new;
                     return run_throughput(*model, o->dir, o->prompts_file, dflt, eo, o->json);
                   }
                   o->b.engine = eo;
                   bool header = !o->json;
                   engine::batched_bench(*model, o->b, [&](const engine::BatchedBenchRow& r) {
                     if (std::exchange(header, false)) {
                       fmt::print("|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |\n");
                       fmt::print("|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|\n");
                     }
                     if (o->json)
                       fmt::print("{}\n", json{{"pp", r.pp}, {"tg", r.tg}, {"pl", r.pl}, {"n_kv", r.n_kv},
                                               {"t_pp", r.t_pp}, {"speed_pp", r.speed_pp}, {"t_tg", r.t_tg},
                                               {"speed_tg", r.speed_tg}, {"t", r.t}, {"speed", r.speed},
                                               {"kv_waste", r.kv_waste}}.dump());
                     else
                       fmt::print("| {:5} | {:6} | {:4} | {:6} | {:8.3f} | {:8.2f} | {:8.3f} | {:8.2f} | {:8.3f} | {:8.2f} |\n",
                                  r.pp, r.tg, r.pl, r.n_kv, r.t_pp, r.speed_pp, r.t_tg, r.speed_tg, r.t, r.speed);
                     std::fflush(stdout);
                   });
                   return 0;
                 };
               });
