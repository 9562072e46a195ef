// llmopt generate MODEL_DIR (--prompt TEXT | --prompts-file FILE|-) [--max-new-tokens N] [--temperature T]
//                 [--top-k K] [--top-p P] [--seed S] [--n K] [--json] [serving flags: engine_flags.h]
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "apps/llmopt/command.h"
#include "apps/llmopt/engine_flags.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"
#include "lib/engine/prompts.h"

namespace {

using nlohmann::json;
using namespace llmopt;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json result_json(const engine::PromptLine& pl, const engine::Result& r) {
  const engine::Sample& s = r.samples[0];
  json j = {{"id", pl.id}, {"prompt", pl.prompt}, {"text", s.text}, {"ids", s.ids},
            {"prompt_ids", pl.request.prompt}, {"prompt_tokens", pl.request.prompt.size()},
            {"generated_tokens", s.ids.size()}, {"finish_reason", s.finish_reason},
            {"timings", {{"queue_s", r.queue_s}, {"ttft_s", r.ttft_s}, {"decode_s", r.decode_s}}}};
  if (r.samples.size() > 1) {
    j["samples"] = json::array();
    for (const auto& x : r.samples) j["samples"].push_back({{"text", x.text}, {"ids", x.ids}, {"finish_reason", x.finish_reason}});
  }
  return j;
}

json summary_json(const engine::RunStats& st) {
  const auto& s = st.scheduler;
  return {{"requests", st.requests}, {"failed", st.failed}, {"output_tokens", st.output_tokens},
          {"tokens_per_s", st.tokens_per_s}, {"wall_s", st.wall_s}, {"peak_running", s.peak_running},
          {"peak_blocks", s.peak_blocks}, {"kv_blocks", st.kv_blocks}, {"block_size", st.block_size},
          {"prefix_hit_tokens", s.prefix_hit_tokens}, {"preemptions", s.preemptions},
          {"blocks_in_use_at_end", st.blocks_in_use_at_end}, {"steps", s.steps},
          {"prefill_tokens", st.prefill_tokens}, {"decode_tokens", st.decode_tokens}, {"prefill_s", st.prefill_s},
          {"decode_s", st.decode_s}, {"kv_waste", st.kv_waste}};
}

// One request per line of --prompts-file, or the one --prompt.
std::vector<engine::PromptLine> read_requests(const std::string* file_text, const std::string& prompt,
                                              const engine::Request& dflt, const tok::Tokenizer& tk,
                                              const model::ModelConfig& c) {
  if (file_text) return engine::parse_prompts(*file_text, dflt, &tk, c);
  std::vector<engine::PromptLine> lines(1);  // the text may hold any character, newlines included
  lines[0] = {0, prompt, dflt, ""};
  lines[0].request.prompt = engine::prompt_ids(tk, c, prompt);
  lines[0].request.stop_ids = engine::default_stop_ids(tk, c);
  return lines;
}

void log_summary(const engine::RunStats& st) {
  const auto& s = st.scheduler;
  log::info("{} requests ({} failed): {} tokens in {:.3f} s ({:.1f} tokens/s); prefill: {} tokens in {:.3f} s "
            "({:.1f} tokens/s); decode: {} tokens in {:.3f} s ({:.1f} tokens/s)",
            st.requests, st.failed, st.output_tokens, st.wall_s, st.tokens_per_s, st.prefill_tokens, st.prefill_s,
            st.prefill_s > 0 ? st.prefill_tokens / st.prefill_s : 0.0, st.decode_tokens, st.decode_s,
            st.decode_s > 0 ? st.decode_tokens / st.decode_s : 0.0);
  log::info("kv: {} blocks of {} tokens, peak {} in use, {} at the end, waste {:.1f}%; peak running {}, "
            "prefix hits {} tokens, preemptions {}",
            st.kv_blocks, st.block_size, s.peak_blocks, st.blocks_in_use_at_end, 100 * st.kv_waste, s.peak_running,
            s.prefix_hit_tokens, s.preemptions);
}

}  // namespace

LLMOPT_COMMAND("generate", "Generate text for one prompt or many (continuous batching)",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts {
                   std::string dir, prompt, prompts_file;
                   int64_t max_new = 128, top_k = 0, n = 1;
                   double temperature = 0, top_p = 1;
                   uint64_t seed = 0;
                   bool json = false;
                   app::EngineFlags eng;
                 };
                 auto o = std::make_shared<Opts>();
                 sub.add_option("MODEL_DIR", o->dir, "Hugging Face model directory")->required();
                 auto* p = sub.add_option("--prompt", o->prompt, "prompt text (empty: start from BOS)");
                 auto* f = sub.add_option("--prompts-file", o->prompts_file,
                                          "one request per line, plain text or JSON ('-' = stdin)");
                 p->excludes(f);
                 sub.add_option("--max-new-tokens", o->max_new, "tokens to generate per prompt (default 128)");
                 sub.add_option("--temperature", o->temperature, "sampling temperature; 0 = greedy (default)");
                 sub.add_option("--top-k", o->top_k, "sample among the k most likely tokens (0 = all)");
                 sub.add_option("--top-p", o->top_p, "nucleus sampling mass in (0, 1] (default 1)");
                 sub.add_option("--seed", o->seed, "random seed of requests without their own (default 0)");
                 sub.add_option("--n", o->n, "samples per prompt, sharing its KV blocks (default 1)")->check(CLI::PositiveNumber);
                 sub.add_flag("--json", o->json, "one JSON object per request on stdout, then a summary object");
                 app::add_engine_flags(sub, o->eng);
                 return [o, p, f] {
                   if (p->count() == 0 && f->count() == 0) fail("generate: give --prompt TEXT or --prompts-file FILE");
                   engine::Request dflt;
                   dflt.max_new_tokens = o->max_new;
                   dflt.sampling = {float(o->temperature), o->top_k, float(o->top_p)};
                   dflt.seed = o->seed;
                   dflt.n = o->n;
                   if (o->max_new < 0) fail("--max-new-tokens must be >= 0, got {}", o->max_new);
                   engine::check_sampling(dflt.sampling);
                   std::string text;
                   if (f->count()) {
                     text = o->prompts_file == "-" ? std::string(std::istreambuf_iterator<char>(std::cin), {})
                                                   : read_file(o->prompts_file);
                     if (text.empty()) fail("--prompts-file {}: no prompts (one per line)", o->prompts_file);
                   }
                   auto model = model::Model::load(o->dir);
                   auto tk = tok::Tokenizer::load(o->dir);
                   const engine::EngineOptions eo = app::engine_options(o->eng, *model);
                   const auto lines = read_requests(f->count() ? &text : nullptr, o->prompt, dflt, tk, model->config());
                   int failed = 0;
                   auto report_error = [&](const engine::PromptLine& pl, const std::string& err) {
                     ++failed;
                     std::fprintf(stderr, "llmopt: error: request %s: %s\n", dump(pl.id).c_str(), err.c_str());
                     if (o->json) fmt::print("{}\n", dump(json{{"id", pl.id}, {"error", err}}));
                   };
                   std::vector<engine::Request> reqs;
                   std::vector<size_t> line_of;
                   for (size_t i = 0; i < lines.size(); ++i) {
                     if (!lines[i].error.empty()) {
                       report_error(lines[i], lines[i].error);
                       continue;
                     }
                     reqs.push_back(lines[i].request);
                     line_of.push_back(i);
                   }
                   std::fflush(stdout);
                   const bool stream = !o->json && !f->count() && o->n == 1;
                   std::unique_ptr<engine::TextStream> ts;
                   engine::Callbacks cb;
                   if (stream && !reqs.empty()) {
                     ts = std::make_unique<engine::TextStream>(tk, reqs[0].prompt);
                     cb.on_token = [&](size_t, int64_t, int32_t t) {
                       std::string s = ts->push(t);
                       std::fwrite(s.data(), 1, s.size(), stdout);
                       std::fflush(stdout);
                     };
                   }
                   cb.on_result = [&](engine::Result&& r) {
                     const engine::PromptLine& pl = lines[line_of[r.request]];
                     if (!r.error.empty()) return report_error(pl, r.error);
                     if (stream) fmt::print("\n");
                     else if (o->json) fmt::print("{}\n", dump(result_json(pl, r)));
                     else
                       for (const auto& s : r.samples) fmt::print("{}\n", s.text);
                     std::fflush(stdout);
                   };
                   engine::RunStats st = engine::serve(*model, reqs, eo, cb, &tk);
                   st.requests = int64_t(lines.size());
                   st.failed = failed;
                   if (o->json) fmt::print("{}\n", dump(json{{"summary", summary_json(st)}}));
                   std::fflush(stdout);
                   log_summary(st);
                   return failed > 0 ? 1 : 0;
                 };
               });
