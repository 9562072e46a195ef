// llmopt generate MODEL_DIR (--prompt TEXT | --prompts-file FILE|-) [--max-new-tokens N] [--temperature T]
//                 [--top-k K] [--top-p P] [--seed S] [--json]
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

#include "apps/llmopt/command.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"
#include "lib/engine/generate.h"

namespace {

std::vector<std::string> read_prompts(const std::string& path) {
  std::string all;
  if (path == "-") all.assign(std::istreambuf_iterator<char>(std::cin), {});
  else all = llmopt::read_file(path);
  std::vector<std::string> out;
  std::istringstream in(all);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  if (out.empty()) llmopt::fail("--prompts-file {}: no prompts (one per line)", path == "-" ? "(stdin)" : path);
  return out;
}

}  // namespace

LLMOPT_COMMAND("generate", "Generate text from one prompt or a batch of prompts",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts {
                   std::string dir, prompt, prompts_file;
                   int64_t max_new = 128, top_k = 0;
                   double temperature = 0, top_p = 1;
                   uint64_t seed = 0;
                   bool json = false;
                 };
                 auto o = std::make_shared<Opts>();
                 sub.add_option("MODEL_DIR", o->dir, "Hugging Face model directory")->required();
                 auto* p = sub.add_option("--prompt", o->prompt, "prompt text (empty: start from BOS)");
                 auto* f = sub.add_option("--prompts-file", o->prompts_file, "file with one prompt per line ('-' = stdin)");
                 p->excludes(f);
                 sub.add_option("--max-new-tokens", o->max_new, "tokens to generate per prompt (default 128)");
                 sub.add_option("--temperature", o->temperature, "sampling temperature; 0 = greedy (default)");
                 sub.add_option("--top-k", o->top_k, "sample among the k most likely tokens (0 = all)");
                 sub.add_option("--top-p", o->top_p, "nucleus sampling mass in (0, 1] (default 1)");
                 sub.add_option("--seed", o->seed, "random seed (default 0)");
                 sub.add_flag("--json", o->json, "print one JSON object per prompt on stdout");
                 return [o, p, f] {
                   using namespace llmopt;
                   if (p->count() == 0 && f->count() == 0) fail("generate: give --prompt TEXT or --prompts-file FILE");
                   engine::GenerateOptions g;
                   g.max_new_tokens = o->max_new;
                   g.sampling = {float(o->temperature), o->top_k, float(o->top_p)};
                   g.seed = o->seed;
                   if (o->max_new < 0) fail("--max-new-tokens must be >= 0, got {}", o->max_new);
                   engine::check_sampling(g.sampling);
                   std::vector<std::string> prompts = f->count() ? read_prompts(o->prompts_file)
                                                                 : std::vector<std::string>{o->prompt};
                   auto model = model::Model::load(o->dir);
                   auto tk = tok::Tokenizer::load(o->dir);
                   const bool stream = !o->json && prompts.size() == 1;
                   std::unique_ptr<engine::TextStream> ts;
                   if (stream) {
                     ts = std::make_unique<engine::TextStream>(tk, engine::prompt_ids(tk, model->config(), prompts[0]));
                     g.on_token = [&](size_t, int32_t t) {
                       std::string s = ts->push(t);
                       std::fwrite(s.data(), 1, s.size(), stdout);
                       std::fflush(stdout);
                     };
                   }
                   engine::GenerateStats st;
                   auto out = engine::generate_text(*model, tk, prompts, g, &st);
                   if (stream) {
                     std::fputs("\n", stdout);
                   } else if (o->json) {
                     for (const auto& r : out) {
                       nlohmann::json j = {{"prompt", r.prompt}, {"text", r.text}, {"ids", r.ids},
                                           {"prompt_ids", r.prompt_ids},
                                           {"prompt_tokens", r.prompt_ids.size()},
                                           {"generated_tokens", r.ids.size()},
                                           {"finish_reason", r.finish_reason}};
                       fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
                     }
                   } else {
                     for (const auto& r : out) fmt::print("{}\n", r.text);
                   }
                   std::fflush(stdout);
                   log::info("prefill: {} tokens in {:.3f} s ({:.1f} tokens/s); decode: {} tokens in {:.3f} s ({:.1f} tokens/s)",
                             st.prefill_tokens, st.prefill_s, st.prefill_s > 0 ? st.prefill_tokens / st.prefill_s : 0.0,
                             st.decode_tokens, st.decode_s, st.decode_s > 0 ? st.decode_tokens / st.decode_s : 0.0);
                   return 0;
                 };
               });
