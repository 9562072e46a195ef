// llmopt quantize MODEL_DIR -o OUT --method rtn|gptq|awq|smoothquant [--bits B] [--group-size G] [--sym|--asym]
//   [--calib FILE] [--nsamples N] [--seqlen L] [--act-order] [--static-groups] [--damp D] [--block-size B]
//   [--alpha A] [--weights rtn|gptq] [--format gptq|awq|compressed-tensors|dense|gguf] [--ragged-per-channel]
//   [--seed S] [--json]
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "apps/llmopt/command.h"
#include "lib/core/error.h"
#include "lib/quant/quantize.h"

LLMOPT_COMMAND("quantize", "Quantize a checkpoint's linears (RTN, GPTQ, AWQ or SmoothQuant W8A8) into GPTQ, AWQ, "
               "compressed-tensors, dense or GGUF",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts {
                   std::string dir, out, method, format, calib, weights = "rtn";
                   double alpha = 0.5;
                   int bits = 4, group_size = 128, nsamples = 128, seqlen = 0, block_size = 128;
                   bool sym = false, asym = false, ragged = false, act_order = false, static_groups = false, json = false;
                   double damp = 0.01;
                   uint64_t seed = 0;
                 };
                 auto o = std::make_shared<Opts>();
                 sub.add_option("MODEL_DIR", o->dir, "Hugging Face model directory")->required();
                 sub.add_option("-o,--output", o->out, "output directory (the .gguf file for --format gguf)")->required();
                 sub.add_option("--method", o->method, "rtn, gptq, awq or smoothquant (W8A8)")->required();
                 auto* bits = sub.add_option("--bits", o->bits, "2, 3, 4 or 8 (default 4; smoothquant: 8)");
                 auto* gs = sub.add_option("--group-size", o->group_size,
                                           "input columns per scale (default 128; 32 for gguf; -1 = per channel, "
                                           "smoothquant's only choice)");
                 auto* s = sub.add_flag("--sym", o->sym, "symmetric grid, zero point 2^(bits-1) (default, except awq)");
                 sub.add_flag("--asym", o->asym, "asymmetric grid with zero points (awq's default)")->excludes(s);
                 sub.add_option("--calib", o->calib, "calibration text file (gptq, awq, smoothquant)");
                 auto* alpha = sub.add_option("--alpha", o->alpha,
                                              "smoothquant: migration strength in [0, 1] (default 0.5)");
                 sub.add_option("--weights", o->weights, "smoothquant: int8 weight quantizer, rtn (default) or gptq");
                 sub.add_option("--nsamples", o->nsamples, "calibration windows (default 128)");
                 sub.add_option("--seqlen", o->seqlen, "tokens per window (default min(2048, max_position_embeddings))");
                 sub.add_flag("--act-order", o->act_order, "gptq: quantize columns by decreasing Hessian diagonal");
                 sub.add_flag("--static-groups", o->static_groups, "gptq: group scales from the original weights");
                 sub.add_option("--damp", o->damp, "gptq: dampening, fraction of mean diag H (default 0.01)");
                 sub.add_option("--block-size", o->block_size, "gptq: lazy-batch width (default 128)");
                 sub.add_option("--format", o->format,
                                "gptq (default for rtn/gptq), awq (default for awq), compressed-tensors (default "
                                "for smoothquant), dense or gguf");
                 sub.add_flag("--ragged-per-channel", o->ragged,
                              "compressed-tensors: quantize linears whose inputs the group size does not divide "
                              "per output channel (else an error)");
                 sub.add_option("--seed", o->seed, "calibration window seed (default 0)");
                 sub.add_flag("--json", o->json, "print one JSON object on stdout");
                 return [o, gs, bits, s, alpha] {
                   using namespace llmopt;
                   using Scaling = quant::QuantizeOptions::Scaling;
                   quant::QuantizeOptions q;
                   const std::string& m = o->method;
                   if (m != "rtn" && m != "gptq" && m != "awq" && m != "smoothquant")
                     fail("--method {} is not known (rtn, gptq, awq, smoothquant)", m);
                   const bool sq = m == "smoothquant";
                   q.scaling = m == "awq" ? Scaling::Awq : sq ? Scaling::SmoothQuant : Scaling::None;
                   if (o->weights != "rtn" && o->weights != "gptq") fail("--weights {} is not known (rtn, gptq)", o->weights);
                   if (!sq && o->weights != "rtn") fail("--weights is SmoothQuant's int8 weight quantizer (--method smoothquant)");
                   if (!sq && alpha->count()) fail("--alpha is SmoothQuant's migration strength (--method smoothquant); AWQ searches it");
                   q.gptq = m == "gptq" || (sq && o->weights == "gptq");
                   q.alpha = o->alpha;
                   q.format = quant::parse_format(!o->format.empty() ? o->format
                                                  : m == "awq"       ? "awq"
                                                  : sq               ? "compressed-tensors"
                                                                     : "gptq");
                   q.gptq_opt.grid.bits = bits->count() || !sq ? o->bits : 8;
                   q.gptq_opt.grid.group_size = gs->count()                   ? o->group_size
                                                : sq                           ? -1
                                                : q.format == quant::Format::Gguf ? 32
                                                                               : 128;
                   q.gptq_opt.grid.sym = m == "awq" ? s->count() > 0 : !o->asym;
                   q.gptq_opt.act_order = o->act_order;
                   q.gptq_opt.static_groups = o->static_groups;
                   q.gptq_opt.damp = o->damp;
                   q.gptq_opt.block_size = o->block_size;
                   q.calib.text_file = o->calib;
                   q.calib.nsamples = o->nsamples;
                   q.calib.seqlen = o->seqlen;
                   q.calib.seed = o->seed;
                   q.ragged_per_channel = o->ragged;
                   if (!q.gptq && (o->act_order || o->static_groups))
                     fail("--act-order and --static-groups are GPTQ options (--method gptq, or smoothquant --weights gptq)");
                   const auto r = quant::quantize_model(o->dir, o->out, q);
                   if (o->json) {
                     nlohmann::json j = {{"method", r.method}, {"bits", r.bits},         {"group_size", r.group_size},
                                         {"format", r.format}, {"seconds", r.seconds},   {"layers", r.layers},
                                         {"output", r.output}, {"bytes_in", r.bytes_in}, {"bytes_out", r.bytes_out}};
                     if (q.scaling == Scaling::SmoothQuant) j["alpha"] = q.alpha;
                     if (!r.awq_alpha.empty()) j["awq_alpha"] = r.awq_alpha;
                     fmt::print("{}\n", j.dump(2));
                   } else {
                     fmt::print("{} {}-bit (group {}) → {} [{}]: {} layers in {:.2f}s, {} → {} bytes\n", r.method, r.bits,
                                r.group_size, r.output, r.format, r.layers, r.seconds, r.bytes_in, r.bytes_out);
                   }
                   return 0;
                 };
               });
