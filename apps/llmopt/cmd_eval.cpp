// llmopt eval MODEL_DIR --ppl FILE [--ctx N] [--protocol gptq|llamacpp] [--max-windows W] [--kl-base BASE_DIR] [--json]
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "apps/llmopt/command.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"
#include "lib/engine/perplexity.h"
#include "lib/tokenizer/tokenizer.h"

LLMOPT_COMMAND("eval", "Perplexity of a model on a text file (and KL divergence from a base model)",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts {
                   std::string dir, file, protocol = "gptq", base;
                   int64_t ctx = 512, max_windows = 0;
                   bool json = false;
                 };
                 auto o = std::make_shared<Opts>();
                 sub.add_option("MODEL_DIR", o->dir, "Hugging Face model directory")->required();
                 sub.add_option("--ppl", o->file, "text file to score")->required();
                 sub.add_option("--ctx", o->ctx, "window length in tokens (default 512)");
                 sub.add_option("--protocol", o->protocol,
                                "gptq: score every token of non-overlapping windows (default); "
                                "llamacpp: llama-perplexity (BOS per window, second half scored)");
                 sub.add_option("--max-windows", o->max_windows, "score at most W windows (0 = all)");
                 sub.add_option("--kl-base", o->base, "base model: also report KL(base || model) and top-1 agreement");
                 sub.add_flag("--json", o->json, "print one JSON object on stdout");
                 return [o] {
                   using namespace llmopt;
                   engine::PplOptions po;
                   po.protocol = engine::parse_ppl_protocol(o->protocol);
                   if (o->ctx < 2) fail("--ctx must be at least 2, got {}", o->ctx);
                   if (o->max_windows < 0) fail("--max-windows must be >= 0, got {}", o->max_windows);
                   po.ctx = o->ctx;
                   po.max_windows = o->max_windows;
                   const std::string text = read_file(o->file);
                   auto model = model::Model::load(o->dir);
                   std::unique_ptr<model::Model> base;
                   if (!o->base.empty()) base = model::Model::load(o->base);
                   auto tk = tok::Tokenizer::load(o->dir);
                   const bool llamacpp = po.protocol == engine::PplProtocol::LlamaCpp;
                   // llama-perplexity tokenizes with special tokens (BOS first when the model adds one)
                   auto ids = tk.encode(text, llamacpp);
                   if (llamacpp && tk.add_bos()) po.bos_id = tk.bos_id();
                   auto r = engine::perplexity(*model, ids, po, base.get());
                   if (o->json) {
                     nlohmann::json j = {{"ppl", r.ppl}, {"mean_nll", r.mean_nll}, {"tokens_scored", r.tokens_scored},
                                         {"windows", r.windows}, {"ctx", po.ctx}, {"protocol", o->protocol},
                                         {"text_tokens", ids.size()}};
                     if (r.kl) {
                       j["kl"] = *r.kl;
                       j["top1_agreement"] = *r.top1_agreement;
                     }
                     fmt::print("{}\n", j.dump(2));
                   } else {
                     fmt::print("ppl {:.4f} (mean nll {:.5f}) over {} tokens in {} windows of {} ({})\n", r.ppl, r.mean_nll,
                                r.tokens_scored, r.windows, po.ctx, o->protocol);
                     if (r.kl) fmt::print("kl {:.6f}, top-1 agreement {:.4f} against {}\n", *r.kl, *r.top1_agreement, o->base);
                   }
                   return 0;
                 };
               });
