#include "lib/prune/prune_model.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>

#include "lib/calib/output.h"
#include "lib/core/clock.h"
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/model/checkpoint.h"
#include "lib/model/config.h"
#include "lib/prune/magnitude.h"
#include "lib/prune/sparsegpt.h"
#include "lib/prune/wanda.h"
#include "lib/quant/hessian.h"

namespace llmopt::prune {
namespace fs = std::filesystem;

Algo parse_algo(const std::string& s) {
  if (s == "magnitude") return Algo::Magnitude;
  if (s == "wanda") return Algo::Wanda;
  if (s == "sparsegpt") return Algo::SparseGpt;
  fail("--method {} is not known (magnitude, wanda, sparsegpt)", s);
}

const char* algo_name(Algo a) {
  switch (a) {
    case Algo::Magnitude: return "magnitude";
    case Algo::Wanda: return "wanda";
    case Algo::SparseGpt: return "sparsegpt";
  }
  return "?";
}

SparsityPattern parse_nm(const std::string& s) {
  int n = 0, m = 0, used = 0;
  if (std::sscanf(s.c_str(), "%d:%d%n", &n, &m, &used) != 2 || used != int(s.size()) || s[0] == '+' || s[0] == '-')
    fail("--pattern {} is not N:M (e.g. 2:4: keep 2 of every 4 inputs)", s);
  if (!(0 < n && n < m)) fail("--pattern {}: N:M needs 0 < N < M (N weights kept of every M)", s);
  SparsityPattern p;
  p.n = n, p.m = m;
  return p;
}

// ---- the method ---------------------------------------------------------------------------------

struct PruneMethod::Acc {
  calib::ChannelStats stats;                // Wanda: Σ x_j²
  std::unique_ptr<quant::Hessian> hessian;  // SparseGPT: H = 2/n Σ x xᵀ
  int64_t rows = 0;
};

PruneMethod::PruneMethod(Algo algo, SparsityPattern pattern, Scope scope, std::optional<quant::QuantGrid> quant,
                         int block_size, double damp)
    : algo_(algo), pattern_(pattern), scope_(scope), quant_(quant), block_size_(block_size), damp_(damp) {}

void PruneMethod::begin(const model::Linear& l) {
  acc_.erase(l.name);
  shares_.erase(l.name);
  last_x_ = nullptr;
  last_acc_.reset();
}

void PruneMethod::observe(const model::Linear& l, const float* x, int64_t rows, int64_t cols) {
  if (algo_ == Algo::Magnitude || shares_[l.name]) return;  // a shared accumulator is fed by its first linear
  auto& a = acc_[l.name];
  // q, k, v (gate, up) see the same x in one forward: the first batch of the second linear finds the first's
  // accumulator holding exactly this batch
  if (!a && x == last_x_ && last_acc_ && last_acc_->rows == rows) {
    a = last_acc_;
    shares_[l.name] = true;
    return;
  }
  if (!a) {
    a = std::make_shared<Acc>();
    if (algo_ == Algo::SparseGpt) a->hessian = std::make_unique<quant::Hessian>(cols);
  }
  if (algo_ == Algo::SparseGpt) a->hessian->add_batch(x, rows);
  else a->stats.add(x, rows, cols);
  a->rows += rows;
  last_x_ = x;
  last_acc_ = a;
}

model::Linear PruneMethod::compress(const model::Linear& l) {
  std::vector<float> W = model::linear_weight_f32(l);
  std::shared_ptr<Acc> a;
  if (algo_ != Algo::Magnitude) {
    auto it = acc_.find(l.name);
    if (it == acc_.end() || !it->second || it->second->rows == 0)
      fail("{}: no calibration activations were observed for {}", name(), l.name);
    a = it->second;
    acc_.erase(it);
    shares_.erase(l.name);
  }
  switch (algo_) {
    case Algo::Magnitude: magnitude_prune(W.data(), l.out, l.in, pattern_, scope_); break;
    case Algo::Wanda: {
      const std::vector<float> s = a->stats.norm_sq();
      if (on_stats) on_stats(l.name, s);
      wanda_prune(W.data(), l.out, l.in, s.data(), pattern_, scope_);
      break;
    }
    case Algo::SparseGpt: {
      SparseGptOptions o;
      o.pattern = pattern_;
      o.block_size = block_size_;
      o.damp = damp_;
      o.row_mask = scope_ == Scope::row;
      o.quant = quant_;
      const SparseGptResult r = sparsegpt_prune(W.data(), l.out, l.in, a->hessian->matrix(), o);
      double loss = 0;
      for (float v : r.loss) loss += v;
      loss_ += loss;
      log::debug("sparsegpt {}: loss {:.6g}", l.name, loss);
      break;
    }
  }
  if (acc_.empty()) last_x_ = nullptr, last_acc_.reset();
  for (float& w : W) w = round_to(l.dtype, w);  // as stored (SparseGPT moved the kept weights); 0 stays 0
  return model::Linear::owned_f32(l.name, std::move(W), l.out, l.in, l.bias);
}

// ---- the model ------------------------------------------------------------------------------------

namespace {

int64_t count_zeros(const std::vector<float>& w) {
  int64_t z = 0;
  for (float x : w) z += x == 0.0f;
  return z;
}

}  // namespace

PruneReport prune_model(const fs::path& dir, const fs::path& out, const PruneOptions& opt) {
  const double t0 = now_s();
  const SparsityPattern& p = opt.pattern;
  const char* method = algo_name(opt.algo);
  // ---- validate everything before any work ----
  if (p.nm()) {
    if (!(0 < p.n && p.n < p.m)) fail("--pattern {}: N:M needs 0 < N < M (N weights kept of every M)", p.str());
  } else if (!(p.sparsity > 0.0 && p.sparsity < 1.0)) {
    fail("--sparsity {} must be in (0, 1)", p.sparsity);
  }
  const model::ModelConfig cfg = model::load_config(dir);
  if (!cfg.quantization_config.is_null())
    fail("{}: quantized (config.json has quantization_config, quant_method {}); prune the original model",
         dir.string(), cfg.quantization_config.value("quant_method", std::string("?")));
  const bool calib = opt.algo != Algo::Magnitude;
  if (calib && opt.calib.text_file.empty()) fail("--method {} needs calibration text: --calib FILE", method);
  if (calib && !fs::is_regular_file(opt.calib.text_file)) fail("--calib {}: no such file", opt.calib.text_file.string());
  if (calib && (opt.calib.nsamples <= 0 || opt.calib.seqlen < 0))
    fail("--nsamples and --seqlen must be positive (got {} and {})", opt.calib.nsamples, opt.calib.seqlen);
  if (opt.quant && opt.algo != Algo::SparseGpt)
    fail("--bits (joint sparsify + quantize) needs --method sparsegpt, not {}", method);
  if (opt.quant && opt.quant->bits != 2 && opt.quant->bits != 3 && opt.quant->bits != 4 && opt.quant->bits != 8)
    fail("--bits {} is not supported (2, 3, 4 or 8)", opt.quant->bits);
  if (opt.quant && (opt.quant->group_size == 0 || opt.quant->group_size < -1))
    fail("--group-size {} is not supported (a positive number, or -1 for one group per output channel)",
         opt.quant->group_size);
  if (opt.algo == Algo::SparseGpt) {
    if (opt.block_size <= 0) fail("--block-size must be positive, got {}", opt.block_size);
    if (p.nm() && opt.block_size % p.m) fail("--block-size {} must be a multiple of M = {} for --pattern {}", opt.block_size, p.m, p.str());
    if (!(opt.damp > 0)) fail("--damp must be positive, got {}", opt.damp);
  }
  if (!cfg.sparsity_config.is_null()) log::warn("{}: already has a sparsity_config; pruning it again", dir.string());

  const model::Checkpoint ck = model::Checkpoint::load(dir);
  PruneReport rep;
  rep.method = method;
  rep.pattern = p.str();
  rep.structure = p.nm() ? fmt::format("{}:{}", p.n, p.m) : "unstructured";
  rep.output = out.string();
  if (opt.quant) rep.bits = opt.quant->bits, rep.group_size = opt.quant->group_size;
  for (auto& f : ck.tensors.files()) rep.bytes_in += f->file_size();

  // every decoder-layer linear is pruned and written back dense in its own dtype
  std::map<std::string, std::vector<PackedTensor>> replaced;
  for (const auto& e : model::expected_tensors(cfg)) {
    if (!e.is_linear || e.layer < 0) continue;
    const auto& info = ck.tensors.info(e.name);
    if (!dtype_is_float(info.dtype)) fail("{}: dtype {} cannot be pruned (a float weight is needed)", e.name, dtype_name(info.dtype));
    if (p.nm() && e.shape[1] % p.m)
      fail("--pattern {} cannot prune {}: its {} input features are not a multiple of {}", p.str(), e.name, e.shape[1], p.m);
    if (opt.quant) opt.quant->validate(e.shape[1]);
    replaced[e.name] = {{"weight", info.dtype, e.shape, {}}};
  }

  calib::OutputDir dst(ck, out, replaced);
  PruneMethod m(opt.algo, p, opt.scope, opt.quant, opt.block_size, opt.damp);
  m.on_stats = opt.on_stats;
  int64_t linear_zeros = 0, linear_numel = 0;
  auto sink = [&](model::LayerWeights& w) {
    for (model::Linear* lin : w.linears()) {
      const std::vector<float> W = model::linear_weight_f32(*lin);
      const auto& spec = replaced.at(lin->name + ".weight")[0];
      linear_zeros += count_zeros(W);
      linear_numel += int64_t(W.size());
      dst.write_linear(lin->name, {{"weight", spec.dtype, spec.shape, calib::to_dtype(W, spec.dtype)}});
    }
    if (opt.on_layer) opt.on_layer(w);
  };
  const calib::RunStats rs = calib::run(ck, m, opt.calib, sink);

  // global_sparsity as llm-compressor defines it: zeros over every parameter of the model
  int64_t zeros = linear_zeros, numel = linear_numel;
  for (const auto& name : ck.tensors.names()) {
    if (replaced.count(name)) continue;
    const auto v = ck.tensors.get(name);
    if (!dtype_is_float(v.dtype())) continue;
    zeros += count_zeros(v.to_f32());
    numel += v.numel();
  }
  rep.linear_sparsity = linear_numel ? double(linear_zeros) / double(linear_numel) : 0.0;
  rep.global_sparsity = numel ? double(zeros) / double(numel) : 0.0;

  nlohmann::json config = cfg.raw;
  config["sparsity_config"] = {{"format", "dense"},
                               {"sparsity_structure", rep.structure},
                               {"global_sparsity", rep.global_sparsity},
                               {"targets", {"Linear"}},
                               {"ignore", {"lm_head"}},
                               {"registry_requires_subclass", false}};
  if (opt.quant)
    config["llmopt_fake_quantization"] = {
        {"method", "sparsegpt"}, {"bits", opt.quant->bits}, {"group_size", opt.quant->group_size},
        {"symmetric", opt.quant->sym},
        {"note", "weights are stored dequantized in the original dtype: every decoder linear's weights lie on its "
                 "group's integer grid (pruned weights at 0); no quantization_config, any engine runs it dense"}};
  dst.commit(config);

  rep.layers = rs.layers;
  rep.bytes_out = calib::dir_bytes(out);
  rep.seconds = now_s() - t0;
  return rep;
}

}  // namespace llmopt::prune
