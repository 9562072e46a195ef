// llmopt quantize MODEL_DIR -o OUT --method rtn|gptq [--bits B] [--group-size G] [--sym|--asym] [--calib FILE]
//   [--nsamples N] [--seqlen L] [--act-order] [--static-groups] [--damp D] [--block-size B]
//   [--format gptq|compressed-tensors|dense|gguf] [--ragged-per-channel] [--seed S] [--json]
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "apps/llmopt/command.h"
#include "lib/core/error.h"
#include "lib/quant/quantize.h"

LLMOPT_COMMAND("quantize", "Quantize a checkpoint's linears (RTN or GPTQ) into GPTQ, compressed-tensors, dense or GGUF",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts {
                   std::string dir, out, method, format = "gptq", calib;
                   int bits = 4, group_size = 128, nsamples = 128, seqlen = 0, block_size = 128;
                   bool sym = false, asym = false, ragged = false, act_order = false, static_groups = false, json = false;
                   double damp = 0.01;
                   uint64_t seed = 0;
                 };
                 auto o = std::make_shared<Opts>();
                 sub.add_option("MODEL_DIR", o->dir, "Hugging Face model directory")->required();
                 sub.add_option("-o,--output", o->out, "output directory (the .gguf file for --format gguf)")->required();
                 sub.add_option("--method", o->method, "rtn or gptq")->required();
                 sub.add_option("--bits", o->bits, "2, 3, 4 or 8 (default 4)");
                 auto* gs = sub.add_option("--group-size", o->group_size,
                                           "input columns per scale (default 128; 32 for gguf; -1 = per channel)");
                 auto* s = sub.add_flag("--sym", o->sym, "symmetric grid, zero point 2^(bits-1) (default)");
                 sub.add_flag("--asym", o->asym, "asymmetric grid with zero points")->excludes(s);
                 sub.add_option("--calib", o->calib, "calibration text file (gptq)");
                 sub.add_option("--nsamples", o->nsamples, "calibration windows (default 128)");
                 sub.add_option("--seqlen", o->seqlen, "tokens per window (default min(2048, max_position_embeddings))");
                 sub.add_flag("--act-order", o->act_order, "gptq: quantize columns by decreasing Hessian diagonal");
                 sub.add_flag("--static-groups", o->static_groups, "gptq: group scales from the original weights");
                 sub.add_option("--damp", o->damp, "gptq: dampening, fraction of mean diag H (default 0.01)");
                 sub.add_option("--block-size", o->block_size, "gptq: lazy-batch width (default 128)");
                 sub.add_option("--format", o->format, "gptq (default), compressed-tensors, dense or gguf");
                 sub.add_flag("--ragged-per-channel", o->ragged,
                              "compressed-tensors: quantize linears whose inputs the group size does not divide "
                              "per output channel (else an error)");
                 sub.add_option("--seed", o->seed, "calibration window seed (default 0)");
                 sub.add_flag("--json", o->json, "print one JSON object on stdout");
                 return [o, gs] {
                   using namespace llmopt;
                   quant::QuantizeOptions q;
                   if (o->method != "rtn" && o->method != "gptq") fail("--method {} is not known (rtn, gptq)", o->method);
                   q.gptq = o->method == "gptq";
                   q.format = quant::parse_format(o->format);
                   q.gptq_opt.grid.bits = o->bits;
                   q.gptq_opt.grid.group_size = gs->count() ? o->group_size : q.format == quant::Format::Gguf ? 32 : 128;
                   q.gptq_opt.grid.sym = !o->asym;
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
                     fail("--act-order and --static-groups are GPTQ options (--method gptq)");
                   const auto r = quant::quantize_model(o->dir, o->out, q);
                   if (o->json) {
                     nlohmann::json j = {{"method", r.method}, {"bits", r.bits},         {"group_size", r.group_size},
                                         {"format", r.format}, {"seconds", r.seconds},   {"layers", r.layers},
                                         {"output", r.output}, {"bytes_in", r.bytes_in}, {"bytes_out", r.bytes_out}};
                     fmt::print("{}\n", j.dump(2));
                   } else {
                     fmt::print("{} {}-bit (group {}) → {} [{}]: {} layers in {:.2f}s, {} → {} bytes\n", r.method, r.bits,
                                r.group_size, r.output, r.format, r.layers, r.seconds, r.bytes_in, r.bytes_out);
                   }
                   return 0;
                 };
               });
