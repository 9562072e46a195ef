// llmopt convert MODEL -o OUT_DIR --kv-heads G [--grouping adjacent|similarity]
//                [--calib FILE --nsamples N --seqlen L] [--json]
// llmopt convert MODEL.gguf -o OUT_DIR [--dtype f32|bf16|f16] [--json]
#include <fmt/core.h>

#include "apps/llmopt/command.h"
#include "lib/convert/gguf_hf.h"
#include "lib/convert/gqa.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/calib/runner.h"

LLMOPT_COMMAND("convert",
               "Convert MHA/GQA attention to fewer KV heads by mean-pooling K/V heads (GQA), or a .gguf file to a "
               "Hugging Face directory",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts {
                   std::string dir, out, grouping = "adjacent", calib, dtype;
                   int64_t kv_heads = 0;
                   int nsamples = 32, seqlen = 256;
                   bool json = false;
                 };
                 auto o = std::make_shared<Opts>();
                 sub.add_option("MODEL", o->dir, "Hugging Face model directory or .gguf file")->required();
                 sub.add_option("-o,--output", o->out, "output directory (must not exist or be empty)")->required();
                 auto* kv = sub.add_option("--kv-heads", o->kv_heads,
                                           "number of KV heads after conversion (divides the current count)");
                 auto* dt = sub.add_option("--dtype", o->dtype,
                                           "without --kv-heads, for a .gguf MODEL: the dtype of the Hugging Face "
                                           "tensors, f32 (default), bf16 or f16");
                 dt->excludes(kv);
                 sub.add_option("--grouping", o->grouping,
                                "adjacent: heads j·s..j·s+s-1 pooled together (default); similarity: heads whose "
                                "K/V outputs on --calib text are closest (query heads permuted to match)");
                 sub.add_option("--calib", o->calib, "calibration text file (--grouping similarity)");
                 sub.add_option("--nsamples", o->nsamples, "calibration windows (default 32)");
                 sub.add_option("--seqlen", o->seqlen, "tokens per calibration window (default 256)");
                 sub.add_flag("--json", o->json, "print one JSON object on stdout");
                 return [o, kv] {
                   using namespace llmopt;
                   if (kv->count() == 0) {
                     if (!model::is_gguf_file(o->dir))
                       fail("convert: give --kv-heads G (or a .gguf MODEL to write as a Hugging Face directory)");
                     const auto r = convert::export_gguf_to_hf(o->dir, o->out, convert::export_dtype(o->dtype));
                     if (o->json) fmt::print("{}\n", r.to_json().dump(2));
                     else fmt::print("{} -> {}: {} tensors, {} parameters, {} bytes\n", o->dir, o->out, r.tensors,
                                     r.parameters, r.bytes);
                     return 0;
                   }
                   convert::GqaOptions opts;
                   opts.kv_heads = o->kv_heads;
                   opts.grouping = convert::parse_grouping(o->grouping);
                   // cheap checks first, so bad flags fail before any model or text is read
                   convert::check_gqa_target(model::load_config(o->dir), o->kv_heads);
                   if (opts.grouping == convert::Grouping::Similarity) {
                     if (o->calib.empty()) fail("--grouping similarity needs calibration text: --calib FILE");
                     calib::CalibOptions co;
                     co.text_file = o->calib, co.nsamples = o->nsamples, co.seqlen = o->seqlen;
                     opts.calib = calib::calibration_windows(model::Checkpoint::load(o->dir), co);
                   } else if (!o->calib.empty()) {
                     fail("--calib is only used with --grouping similarity");
                   }
                   const auto r = convert::convert_gqa(o->dir, o->out, opts);
                   if (o->json) {
                     fmt::print("{}\n", r.to_json().dump(2));
                   } else {
                     fmt::print("{} -> {}: {} -> {} KV heads, KV cache {} -> {} bytes/token\n", o->dir, o->out,
                                r.kv_heads_before, r.kv_heads_after, r.kv_bytes_per_token_before,
                                r.kv_bytes_per_token_after);
                     if (!r.error_chosen.empty()) {
                       double a = 0, s = 0;
                       for (size_t l = 0; l < r.error_chosen.size(); ++l) a += r.error_adjacent[l], s += r.error_chosen[l];
                       fmt::print("relative pooling error on {} calibration tokens: similarity {:.4f}, adjacent {:.4f}\n",
                                  r.calib_tokens, s / double(r.error_chosen.size()), a / double(r.error_chosen.size()));
                     }
                   }
                   return 0;
                 };
               });
