#include "lib/quant/quantize.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>

#include "formats/awq_pack.h"
#include "formats/compressed_tensors.h"
#include "formats/gguf.h"
#include "formats/gptq_pack.h"
#include "formats/safetensors.h"
#include "lib/calib/output.h"
#include "lib/core/clock.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"
#include "lib/model/checkpoint.h"
#include "lib/model/config.h"
#include "lib/model/weights.h"
#include "lib/quant/awq.h"
#include "lib/quant/rtn.h"
#include "lib/quant/smoothquant.h"

namespace llmopt::quant {
namespace fs = std::filesystem;

Format parse_format(const std::string& s) {
  if (s == "gptq") return Format::Gptq;
  if (s == "compressed-tensors") return Format::CompressedTensors;
  if (s == "dense") return Format::Dense;
  if (s == "gguf") return Format::Gguf;
  if (s == "awq") return Format::Awq;
  fail("--format {} is not known (gptq, awq, compressed-tensors, dense, gguf)", s);
}

const char* format_name(Format f) {
  switch (f) {
    case Format::Gptq: return "gptq";
    case Format::CompressedTensors: return "compressed-tensors";
    case Format::Dense: return "dense";
    case Format::Gguf: return "gguf";
    case Format::Awq: return "awq";
  }
  return "?";
}

// ---- the method ---------------------------------------------------------------------------------

std::vector<float> stored_weight(const QuantizedMatrix& q, DType scale_dtype, DType weight_dtype) {
  QuantizedMatrix r = q;
  for (float& s : r.scales) s = round_to(scale_dtype, s);
  std::vector<float> w = r.dequantize();
  if (weight_dtype != DType::F32)
    for (float& x : w) x = round_to(weight_dtype, x);
  return w;
}

QuantMethod::QuantMethod(bool gptq, GptqOptions opt, DType scale_dtype, DType weight_dtype)
    : gptq_(gptq), opt_(opt), scale_dtype_(scale_dtype), weight_dtype_(weight_dtype) {}

void QuantMethod::begin(const model::Linear& l) {
  h_.erase(l.name);
  shares_.erase(l.name);
  last_x_ = nullptr;
  last_h_.reset();
}

void QuantMethod::observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) {
  if (!gptq_) return;
  if (shares_[l.name]) return;  // its H is accumulated by the linear it shares the input with
  auto& h = h_[l.name];
  // q, k, v (and gate, up) see the same x in one forward: one Hessian for all of them
  if (!h && x == last_x_ && last_h_ && last_h_->cols() == cols && last_h_->n_samples() == rows) {
    h = last_h_;
    shares_[l.name] = true;
    return;
  }
  if (!h) h = std::make_shared<Hessian>(cols);
  h->add_batch(x, rows);
  last_x_ = x;
  last_h_ = h;
}

model::Linear QuantMethod::compress(const model::Linear& l) {
  const std::vector<float> W = model::linear_weight_f32(l);
  QuantizedMatrix q;
  if (gptq_) {
    auto it = h_.find(l.name);
    if (it == h_.end() || !it->second) fail("GPTQ: no calibration activations were observed for {}", l.name);
    GptqOptions o = opt_;
    if (per_channel.count(l.name)) o.grid.group_size = -1;
    std::vector<uint8_t> zero_mask;
    if (keep_zeros_) {  // RTN keeps exact zeros by itself (0 rounds to the zero code); GPTQ's updates would not
      zero_mask.resize(W.size());
      for (size_t i = 0; i < W.size(); i++) zero_mask[i] = W[i] == 0.0f;
      o.pinned_zero = zero_mask;
    }
    GptqResult r = gptq_quantize(W.data(), l.out, l.in, it->second->matrix(), o);
    double loss = 0;
    for (float v : r.loss) loss += v;
    loss_ += loss;
    log::debug("gptq {}: loss {:.6g}", l.name, loss);
    q = std::move(r.q);
    h_.erase(it);
    shares_.erase(l.name);
  } else {
    QuantGrid g = opt_.grid;
    if (per_channel.count(l.name)) g.group_size = -1;
    q = rtn_quantize(W.data(), l.out, l.in, g);
  }
  std::vector<float> w = stored_weight(q, scale_dtype_, weight_dtype_);
  done_[l.name] = std::move(q);
  if (h_.empty()) last_x_ = nullptr, last_h_.reset();
  return model::Linear::owned_f32(l.name, std::move(w), l.out, l.in, l.bias);
}

QuantizedMatrix QuantMethod::take(const std::string& name) {
  auto it = done_.find(name);
  if (it == done_.end()) fail("no quantized weight for {}", name);
  QuantizedMatrix q = std::move(it->second);
  done_.erase(it);
  return q;
}

std::vector<float> QuantMethod::take_dense(const std::string& name) {
  return stored_weight(take(name), scale_dtype_, weight_dtype_);
}

// ---- the formats ----------------------------------------------------------------------------------

namespace {

struct LinearSpec {
  std::string prefix;  // "model.layers.0.self_attn.q_proj"
  int64_t rows, cols;
  DType dtype;         // stored dtype of the original weight
  bool per_channel = false;  // compressed-tensors fallback for a ragged group
};

PackInput pack_input(const QuantizedMatrix& q, bool with_g_idx) {
  PackInput p;
  p.rows = int(q.rows), p.cols = int(q.cols), p.bits = q.grid.bits, p.group_size = q.grid.group_size, p.sym = q.grid.sym;
  p.codes = q.codes.data(), p.scales = q.scales.data(), p.zeros = q.zeros.data();
  p.g_idx = with_g_idx ? q.g_idx.data() : nullptr;
  return p;
}

bool ragged(int64_t cols, int group_size) { return group_size > 0 && group_size < cols && cols % group_size != 0; }

std::vector<PackedTensor> dense_spec(const LinearSpec& l) { return {{"weight", l.dtype, {l.rows, l.cols}, {}}}; }

}  // namespace

QuantizeReport quantize_model(const fs::path& dir, const fs::path& out, const QuantizeOptions& opt) {
  const double t0 = now_s();
  const QuantGrid& grid = opt.gptq_opt.grid;
  // ---- validate everything before any work ----
  const model::ModelConfig cfg = model::load_config(dir);
  if (!cfg.quantization_config.is_null())
    fail("{}: already quantized (config.json has quantization_config, quant_method {}); quantize the original model",
         dir.string(), cfg.quantization_config.value("quant_method", std::string("?")));
  if (grid.bits != 2 && grid.bits != 3 && grid.bits != 4 && grid.bits != 8)
    fail("--bits {} is not supported (2, 3, 4 or 8)", grid.bits);
  if (grid.group_size == 0 || grid.group_size < -1)
    fail("--group-size {} is not supported (a positive number, or -1 for one group per output channel)", grid.group_size);
  using Scaling = QuantizeOptions::Scaling;
  const bool awq = opt.scaling == Scaling::Awq, sq = opt.scaling == Scaling::SmoothQuant;
  const bool calibrated = opt.gptq || awq || sq;
  const std::string method_name = awq ? "awq" : sq ? (opt.gptq ? "smoothquant+gptq" : "smoothquant") : opt.gptq ? "gptq" : "rtn";
  const char* flag_method = awq ? "awq" : sq ? "smoothquant" : "gptq";
  if (!(opt.alpha >= 0 && opt.alpha <= 1)) fail("--alpha {} is outside [0, 1]", opt.alpha);
  if (awq && opt.gptq) fail("--method awq quantizes the scaled weights with RTN; GPTQ is not combined with it");
  if (sq) {
    if (grid.bits != 8) fail("--method smoothquant is W8A8: --bits must be 8 (got {})", grid.bits);
    if (grid.group_size != -1)
      fail("--method smoothquant quantizes weights per output channel: --group-size must be -1 (got {})", grid.group_size);
    if (!grid.sym) fail("--method smoothquant uses symmetric int8 weights; drop --asym");
    if (opt.format != Format::CompressedTensors && opt.format != Format::Dense)
      fail("--method smoothquant writes --format compressed-tensors (W8A8 int-quantized) or dense, not {}",
           format_name(opt.format));
  }
  if (opt.smooth_only && (!sq || opt.format != Format::Dense))
    fail("smoothing without quantizing needs --method smoothquant and --format dense");
  if (opt.format == Format::Awq) {
    if (grid.bits != 4) fail("--format awq stores 4-bit weights (AutoAWQ GEMM); got --bits {}", grid.bits);
    if (grid.group_size <= 0) fail("--format awq needs a positive --group-size (got {})", grid.group_size);
    if (opt.gptq && opt.gptq_opt.act_order && !opt.gptq_opt.static_groups)
      fail("--format awq cannot store act-order with dynamic groups (g_idx); add --static-groups");
  }
  if (calibrated && opt.calib.text_file.empty()) fail("--method {} needs calibration text: --calib FILE", flag_method);
  if (calibrated && !fs::is_regular_file(opt.calib.text_file))
    fail("--calib {}: no such file", opt.calib.text_file.string());
  if (calibrated && (opt.calib.nsamples <= 0 || opt.calib.seqlen < 0))
    fail("--nsamples and --seqlen must be positive (got {} and {})", opt.calib.nsamples, opt.calib.seqlen);
  if (opt.gptq && opt.gptq_opt.block_size <= 0) fail("--block-size must be positive, got {}", opt.gptq_opt.block_size);
  if (opt.gptq && !(opt.gptq_opt.damp > 0)) fail("--damp must be positive, got {}", opt.gptq_opt.damp);

  QuantizeReport rep;
  rep.method = method_name;
  rep.format = format_name(opt.format);
  rep.bits = grid.bits;
  rep.group_size = grid.group_size;
  rep.output = out.string();

  if (opt.format == Format::Gguf) {
    if (opt.gptq || opt.scaling != Scaling::None) fail("--format gguf stores ggml's own block quantization (Q4_0/Q4_1/Q8_0); use --method rtn");
    if (grid.group_size != 32) fail("--format gguf: ggml blocks are 32 weights, --group-size must be 32 (got {})", grid.group_size);
    gguf::Type t;
    if (grid.bits == 4) t = grid.sym ? gguf::Type::Q4_0 : gguf::Type::Q4_1;
    else if (grid.bits == 8 && grid.sym) t = gguf::Type::Q8_0;
    else fail("--format gguf: {}-bit {} has no GGUF type here (4 --sym: Q4_0, 4 --asym: Q4_1, 8 --sym: Q8_0)", grid.bits,
              grid.sym ? "sym" : "asym");
    if (fs::exists(out)) fail("output {} already exists", out.string());
    const auto ts = st::TensorSet::open_dir(dir);
    for (auto& f : ts.files()) rep.bytes_in += f->file_size();
    gguf::export_llama(dir, out, t);  // atomic; linears whose rows are not a multiple of 32 stay F16
    rep.layers = int(cfg.num_hidden_layers);
    rep.bytes_out = fs::file_size(out);
    rep.seconds = now_s() - t0;
    return rep;
  }

  const model::Checkpoint ck = model::Checkpoint::load(dir);
  for (auto& f : ck.tensors.files()) rep.bytes_in += f->file_size();

  // every decoder-layer linear: its output tensors, checked against what the format can hold
  std::map<std::string, LinearSpec> linears;  // by weight tensor name
  for (const auto& e : model::expected_tensors(cfg)) {
    if (!e.is_linear || e.layer < 0) continue;
    const auto& info = ck.tensors.info(e.name);
    LinearSpec l{e.name.substr(0, e.name.size() - 7), e.shape[0], e.shape[1], info.dtype};
    grid.validate(l.cols);
    if (opt.format == Format::Gptq) {
      if (l.rows % 32 || l.cols % 32)
        fail("--format gptq cannot store {} ({}x{}: the GPTQ layout needs in/out features that are multiples of 32); "
             "use --format compressed-tensors",
             e.name, l.rows, l.cols);
      if (grid.group_size > 0 && grid.group_size < l.cols && l.cols % grid.group_size)
        fail("--format gptq: --group-size {} does not divide {}'s {} input features", grid.group_size, e.name, l.cols);
    }
    if (opt.format == Format::Awq && (l.rows % 8 || l.cols % grid.group_size))
      fail("--format awq cannot store {} ({}x{}: the AWQ GEMM layout needs out_features a multiple of 8 and in_features "
           "of --group-size {}); use --format compressed-tensors or dense",
           e.name, l.rows, l.cols, grid.group_size);
    if (opt.format == Format::CompressedTensors && ragged(l.cols, grid.group_size)) {
      if (!opt.ragged_per_channel)
        fail("--format compressed-tensors cannot store {}: --group-size {} does not divide its {} input features "
             "(compressed-tensors cannot load a ragged group); use a group size that divides it, "
             "--ragged-per-channel, or --format dense",
             e.name, grid.group_size, l.cols);
      l.per_channel = true;
    }
    if (opt.format == Format::CompressedTensors && opt.gptq_opt.act_order && !opt.gptq_opt.static_groups && opt.gptq)
      fail("--format compressed-tensors cannot store act-order with dynamic groups (g_idx); add --static-groups");
    linears[e.name] = l;
  }
  const DType model_dtype = linears.empty() ? DType::F32 : linears.begin()->second.dtype;
  const DType scale_dtype = opt.format == Format::Gptq || opt.format == Format::Awq ? DType::F16
                            : opt.format == Format::CompressedTensors ? model_dtype
                                                                      : DType::F32;
  const DType weight_dtype = opt.format == Format::Dense ? model_dtype : DType::F32;

  auto tensor_specs = [&](const LinearSpec& l) {
    switch (opt.format) {
      case Format::Gptq: return gptq::specs(int(l.rows), int(l.cols), grid.bits, grid.group_size);
      case Format::Awq: return awq::specs(int(l.rows), int(l.cols), grid.group_size);
      case Format::CompressedTensors:
        if (sq) return ct::int8_specs(int(l.rows), int(l.cols), scale_dtype);
        return ct::packed_specs(int(l.rows), int(l.cols), grid.bits, l.per_channel ? -1 : grid.group_size, grid.sym,
                                scale_dtype);
      default: return dense_spec(l);
    }
  };

  // ---- declare the output: every input tensor, the linears replaced by their packed tensors ----
  std::map<std::string, std::vector<PackedTensor>> replaced;
  for (const auto& [name, l] : linears) replaced[name] = tensor_specs(l);
  std::vector<std::string> norms;  // AWQ / SmoothQuant fold 1/s into these: written with the layer
  if (opt.scaling != Scaling::None)
    for (int64_t i = 0; i < cfg.num_hidden_layers; ++i)
      for (const char* n : {"input_layernorm", "post_attention_layernorm"}) {
        const std::string name = fmt::format("model.layers.{}.{}.weight", i, n);
        const auto& info = ck.tensors.info(name);
        replaced[name] = {{"weight", info.dtype, info.shape, {}}};
        norms.push_back(name);
      }
  calib::OutputDir dst(ck, out, replaced);

  // ---- the runner: quantize layer by layer, write each layer's linears as it completes ----
  std::unique_ptr<WeightQuantizer> method_ptr;
  AwqMethod* awq_method = nullptr;
  if (awq) {
    AwqOptions ao;
    ao.grid = grid, ao.n_grid = opt.awq_n_grid, ao.clip = opt.awq_clip;
    auto m = std::make_unique<AwqMethod>(ck, ao, scale_dtype, weight_dtype);
    awq_method = m.get();
    method_ptr = std::move(m);
  } else if (sq) {
    SmoothQuantOptions so;
    so.alpha = opt.alpha, so.gptq = opt.gptq, so.gptq_opt = opt.gptq_opt, so.quantize = !opt.smooth_only;
    method_ptr = std::make_unique<SmoothQuantMethod>(ck, so, scale_dtype, weight_dtype);
  } else {
    auto m = std::make_unique<QuantMethod>(opt.gptq, opt.gptq_opt, scale_dtype, weight_dtype);
    m->keep_zeros(!ck.config.sparsity_config.is_null());  // a pruned checkpoint keeps exactly its zeros
    method_ptr = std::move(m);
  }
  WeightQuantizer& method = *method_ptr;
  std::set<std::string> channel_kinds, group_kinds;  // "mlp.down_proj", ... for the config groups
  for (const auto& [name, l] : linears) {
    const std::string kind = l.prefix.substr(l.prefix.find('.', l.prefix.find("layers.") + 7) + 1);
    if (l.per_channel) method.per_channel.insert(l.prefix), channel_kinds.insert(kind);
    else group_kinds.insert(kind);
  }
  const bool g_idx = opt.format == Format::Gptq;
  auto sink = [&](model::LayerWeights& w) {
    for (model::Linear* lin : w.linears()) {
      const LinearSpec& l = linears.at(lin->name + ".weight");
      std::vector<PackedTensor> packed;
      if (opt.format == Format::Dense) {
        packed = {{"weight", l.dtype, {l.rows, l.cols}, calib::to_dtype(method.take_dense(lin->name), l.dtype)}};
      } else {
        const QuantizedMatrix q = method.take(lin->name);
        if (opt.format == Format::Gptq) packed = gptq::pack(pack_input(q, g_idx));
        else if (opt.format == Format::Awq) packed = awq::pack(pack_input(q, false));
        else if (sq) packed = ct::pack_int8(pack_input(q, false), scale_dtype);
        else packed = ct::pack_packed(pack_input(q, false), scale_dtype);
      }
      dst.write_linear(l.prefix, packed);
    }
    if (opt.scaling != Scaling::None) {  // the layer's norms, 1/s folded in
      auto folded = method.take_folded();
      const std::string pre = fmt::format("model.layers.{}.", w.index);
      for (const auto& name : norms) {
        if (name.rfind(pre, 0) != 0) continue;
        const auto& info = ck.tensors.info(name);
        auto it = folded.find(name);
        const std::vector<float> v = it != folded.end() ? it->second : model::load_vector_f32(ck.tensors, name, info.numel());
        dst.write_linear(name.substr(0, name.size() - 7), {{"weight", info.dtype, info.shape, calib::to_dtype(v, info.dtype)}});
      }
    }
    if (opt.on_layer) opt.on_layer(w);
  };
  const calib::RunStats rs = calib::run(ck, method, opt.calib, sink);

  // ---- config.json and the tokenizer / generation files ----
  nlohmann::json config = cfg.raw;
  if (opt.format == Format::Awq) {
    config["quantization_config"] = awq::quantization_config(grid.group_size);
  } else if (sq && opt.format == Format::CompressedTensors) {
    config["quantization_config"] = ct::quantization_config_w8a8();
  } else if (opt.format == Format::Gptq) {
    auto qc = gptq::quantization_config(grid.bits, grid.group_size, opt.gptq_opt.act_order, grid.sym, opt.gptq_opt.damp);
    qc["static_groups"] = opt.gptq_opt.static_groups;
    config["quantization_config"] = qc;
  } else if (opt.format == Format::CompressedTensors) {
    auto qc = ct::quantization_config_packed(grid.bits, grid.group_size, grid.sym);
    if (!channel_kinds.empty()) {  // ragged linears: a second, per-channel group; both target by name
      auto regexes = [](const std::set<std::string>& kinds) {
        nlohmann::json t = nlohmann::json::array();
        for (const auto& k : kinds) {
          std::string r = "re:.*";
          for (char c : k) r += c == '.' ? std::string("\\.") : std::string(1, c);
          t.push_back(r + "$");
        }
        return t;
      };
      auto g1 = ct::quantization_config_packed(grid.bits, -1, grid.sym)["config_groups"]["group_0"];
      g1["targets"] = regexes(channel_kinds);
      qc["config_groups"]["group_0"]["targets"] = regexes(group_kinds);
      qc["config_groups"]["group_1"] = g1;
    }
    config["quantization_config"] = qc;
  }
  dst.commit(config);

  rep.layers = rs.layers;
  if (awq_method)
    for (const auto& c : awq_method->choices) rep.awq_alpha.push_back(c.scaled ? c.alpha : 0.0);
  rep.bytes_out = calib::dir_bytes(out);
  rep.seconds = now_s() - t0;
  return rep;
}

}  // namespace llmopt::quant
