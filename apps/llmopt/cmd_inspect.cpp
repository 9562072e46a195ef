// llmopt inspect MODEL_DIR|FILE.gguf [--json] [--context N --batch B]
#include <fmt/core.h>
#include <fmt/ranges.h>

#include "apps/llmopt/command.h"
#include "lib/model/inspect.h"

namespace {
std::string human(int64_t bytes) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, unit[u]);
}

void print_text(const llmopt::model::InspectReport& r) {
  const auto& s = r.shape;
  fmt::print("architecture   {} (model_type {})\n", r.architecture, r.model_type);
  fmt::print("shape          {} layers, hidden {}, intermediate {}, heads {} q / {} kv, head_dim {}, vocab {}\n",
             s["num_hidden_layers"].get<int64_t>(), s["hidden_size"].get<int64_t>(),
             s["intermediate_size"].get<int64_t>(), s["num_attention_heads"].get<int64_t>(),
             s["num_key_value_heads"].get<int64_t>(), s["head_dim"].get<int64_t>(), s["vocab_size"].get<int64_t>());
  fmt::print("rope           theta {}, scaling {}; tied embeddings {}\n", s["rope_theta"].get<double>(),
             s["rope_scaling"].get<std::string>(), s["tie_word_embeddings"].get<bool>() ? "yes" : "no");
  if (s.contains("mla"))
    fmt::print("mla            {}\n", s["mla"].dump());
  fmt::print("parameters     {} ({})\n", r.parameters, human(r.total_bytes));
  for (const auto& [kind, n] : r.params_by_kind) fmt::print("  {:<12} {:>14}\n", kind, n);
  for (const auto& [dt, n] : r.params_by_dtype)
    fmt::print("dtype {:<8} {:>14} params, {}\n", dt, n, human(r.bytes_by_dtype.at(dt)));
  fmt::print("\n{:>5} {:>12} {:>12} {:>8} {:>12}\n", "layer", "attention", "mlp", "norms", "bytes");
  for (const auto& l : r.layers)
    fmt::print("{:>5} {:>12} {:>12} {:>8} {:>12}\n", l.layer, l.attention_params, l.mlp_params, l.norm_params,
               l.bytes);
  fmt::print("\nkv cache       {} bytes/token (P = {} bytes); context {} x batch {} = {}\n", r.kv_bytes_per_token,
             r.kv_elem_bytes, r.context, r.batch, human(r.kv_bytes_total));
  fmt::print("quantization   {}\n", r.quantization_config.is_null() ? "none" : r.quantization_config.dump());
  if (r.any_quantized_linear) {  // per linear: its format and the bytes saved against P-byte dense weights
    fmt::print("linears        {} stored, {} as dense (P = {} bytes): {} saved ({:.1f}%)\n", human(r.linear_bytes),
               human(r.linear_dense_bytes), r.kv_elem_bytes, human(r.linear_dense_bytes - r.linear_bytes),
               r.linear_dense_bytes ? 100.0 * double(r.linear_dense_bytes - r.linear_bytes) / double(r.linear_dense_bytes) : 0.0);
    fmt::print("\n{:<40} {:<36} {:>12} {:>12}\n", "linear", "format", "bytes", "saved");
    for (const auto& l : r.linear_storage)
      fmt::print("{:<40} {:<36} {:>12} {:>12}\n", l.name, l.format, l.bytes, l.rows * l.cols * r.kv_elem_bytes - l.bytes);
    fmt::print("\n");
  }
  if (!r.gguf_tensors.empty()) {  // a .gguf file: every tensor with its GGUF storage type
    fmt::print("{:<32} {:<44} {:<6} {:>14} {:>12}\n", "gguf tensor", "hf name", "type", "shape", "bytes");
    for (const auto& t : r.gguf_tensors)
      fmt::print("{:<32} {:<44} {:<6} {:>14} {:>12}\n", t.gguf_name, t.name, t.dtype, fmt::format("{}", fmt::join(t.shape, "x")), t.bytes);
    fmt::print("\n");
  }
  const double lin = r.linear_numel ? double(r.linear_zeros) / double(r.linear_numel) : 0.0;
  const double all = r.float_params ? double(r.zeros) / double(r.float_params) : 0.0;
  fmt::print("sparsity       {:.2f}% of the linears' weights are zero, {:.2f}% of all parameters; sparsity_config {}\n",
             100 * lin, 100 * all, r.sparsity_config.is_null() ? "none" : r.sparsity_config.dump());
  bool sparse = !r.sparsity_config.is_null();
  for (const auto& l : r.linear_sparsity) sparse = sparse || l.sparsity() >= 0.01;
  if (!sparse) return;  // a dense model: no per-linear table
  fmt::print("\n{:<48} {:>12} {:>9} {:>5}\n", "linear", "shape", "sparsity", "2:4");
  for (const auto& l : r.linear_sparsity)
    fmt::print("{:<48} {:>12} {:>8.2f}% {:>5}\n", l.name, fmt::format("{}x{}", l.shape[0], l.shape.size() > 1 ? l.shape[1] : 1),
               100 * l.sparsity(), l.nm_2_4 ? "yes" : "no");
}
}  // namespace

LLMOPT_COMMAND("inspect", "Show a checkpoint's architecture, parameters, dtypes and KV-cache size",
               [](CLI::App& sub) -> std::function<int()> {
                 struct Opts { std::string dir; bool json = false; int64_t context = 0, batch = 1; };
                 auto o = std::make_shared<Opts>();
                 sub.add_option("MODEL_DIR", o->dir, "Hugging Face model directory or .gguf file")->required();
                 sub.add_flag("--json", o->json, "print one JSON object on stdout");
                 sub.add_option("--context", o->context, "context length for the KV-cache size (default: max_position_embeddings)")
                     ->check(CLI::PositiveNumber);
                 sub.add_option("--batch", o->batch, "batch size for the KV-cache size")->check(CLI::PositiveNumber);
                 return [o] {
                   auto ck = llmopt::model::Checkpoint::load(o->dir);
                   auto report = llmopt::model::inspect(ck, o->context, o->batch);
                   if (o->json) fmt::print("{}\n", report.to_json().dump(2));
                   else print_text(report);
                   return 0;
                 };
               });
