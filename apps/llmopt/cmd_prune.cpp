// llmopt prune MODEL_DIR -o OUT --method magnitude|wanda|sparsegpt (--sparsity P | --pattern N:M) [--scope row|layer]
//   [--calib FILE --nsamples N --seqlen L] [--bits B --group-size G --sym|--asym] [--damp D] [--block-size B]
//   [--seed S] [--json]
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "apps/llmopt/command.h"
#include "lib/core/error.h"
#include "lib/prune/prune_model.h"

LLMOPT_COMMAND("prune", "Prune a checkpoint's linears (magnitude, Wanda or SparseGPT; unstructured or N:M)",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts {
                   std::string dir, out, method, pattern, scope = "row", calib;
                   double sparsity = 0, damp = 0.01;
                   int bits = 0, group_size = 128, nsamples = 128, seqlen = 0, block_size = 128;
                   bool sym = false, asym = false, json = false;
                   uint64_t seed = 0;
                 };
                 auto o = std::make_shared<Opts>();
                 sub.add_option("MODEL_DIR", o->dir, "Hugging Face model directory")->required();
                 sub.add_option("-o,--output", o->out, "output directory")->required();
                 sub.add_option("--method", o->method, "magnitude, wanda or sparsegpt")->required();
                 auto* sp = sub.add_option("--sparsity", o->sparsity, "unstructured: fraction of weights zeroed, in (0, 1)");
                 auto* pat = sub.add_option("--pattern", o->pattern, "N:M: keep N of every M consecutive inputs (2:4)");
                 sub.add_option("--scope", o->scope,
                                "unstructured: row (default: every output row gets the sparsity) or layer (one "
                                "budget per matrix; sparsegpt: per 128-column block, as the reference)");
                 sub.add_option("--calib", o->calib, "calibration text file (wanda, sparsegpt)");
                 sub.add_option("--nsamples", o->nsamples, "calibration windows (default 128)");
                 sub.add_option("--seqlen", o->seqlen, "tokens per window (default min(2048, max_position_embeddings))");
                 auto* bits = sub.add_option("--bits", o->bits, "sparsegpt: also quantize the kept weights to 2, 3, 4 or 8 bits");
                 auto* gs = sub.add_option("--group-size", o->group_size, "with --bits: columns per scale (default 128; -1 = per channel)");
                 auto* s = sub.add_flag("--sym", o->sym, "with --bits: symmetric grid (default)");
                 auto* a = sub.add_flag("--asym", o->asym, "with --bits: asymmetric grid with zero points")->excludes(s);
                 sub.add_option("--damp", o->damp, "sparsegpt: dampening, fraction of mean diag H (default 0.01)");
                 sub.add_option("--block-size", o->block_size, "sparsegpt: lazy-batch width (default 128)");
                 sub.add_option("--seed", o->seed, "calibration window seed (default 0)");
                 sub.add_flag("--json", o->json, "print one JSON object on stdout");
                 return [o, sp, pat, bits, gs, s, a] {
                   using namespace llmopt;
                   prune::PruneOptions p;
                   p.algo = prune::parse_algo(o->method);
                   if (sp->count() && pat->count()) fail("--sparsity and --pattern exclude each other: give one");
                   if (!sp->count() && !pat->count()) fail("give --sparsity P (unstructured) or --pattern N:M");
                   if (pat->count()) p.pattern = prune::parse_nm(o->pattern);
                   else p.pattern.sparsity = o->sparsity;
                   if (o->scope == "row") p.scope = prune::Scope::row;
                   else if (o->scope == "layer") p.scope = prune::Scope::matrix;
                   else fail("--scope {} is not known (row, layer)", o->scope);
                   if (pat->count() && o->scope != "row") fail("--scope applies to unstructured --sparsity, not --pattern");
                   if (bits->count()) p.quant = quant::QuantGrid{o->bits, o->group_size, !o->asym};
                   else if (gs->count() || s->count() || a->count()) fail("--group-size, --sym and --asym need --bits");
                   p.calib.text_file = o->calib;
                   p.calib.nsamples = o->nsamples;
                   p.calib.seqlen = o->seqlen;
                   p.calib.seed = o->seed;
                   p.block_size = o->block_size;
                   p.damp = o->damp;
                   const auto r = prune::prune_model(o->dir, o->out, p);
                   if (o->json) {
                     nlohmann::json j = {{"method", r.method},
                                         {"pattern", r.pattern},
                                         {"sparsity_structure", r.structure},
                                         {"linear_sparsity", r.linear_sparsity},
                                         {"global_sparsity", r.global_sparsity},
                                         {"bits", r.bits},
                                         {"group_size", r.bits ? nlohmann::json(r.group_size) : nlohmann::json(nullptr)},
                                         {"seconds", r.seconds},
                                         {"layers", r.layers},
                                         {"output", r.output},
                                         {"bytes_in", r.bytes_in},
                                         {"bytes_out", r.bytes_out}};
                     fmt::print("{}\n", j.dump(2));
                   } else {
                     fmt::print("{} {}{} → {}: {} layers in {:.2f}s; linears {:.2f}% zero, model {:.2f}%\n", r.method,
                                r.pattern, r.bits ? fmt::format(" + {}-bit (group {})", r.bits, r.group_size) : "",
                                r.output, r.layers, r.seconds, 100 * r.linear_sparsity, 100 * r.global_sparsity);
                   }
                   return 0;
                 };
               });
