#include "lib/calib/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "lib/core/clock.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "lib/core/log.h"
#include "lib/model/arch.h"
#include "lib/model/forward.h"
#include "lib/tokenizer/tokenizer.h"

namespace llmopt::calib {

std::vector<std::vector<int32_t>> sample_windows(std::span<const int32_t> ids, int nsamples, int seqlen,
                                                 uint64_t seed) {
  if (nsamples <= 0) fail("--nsamples must be positive, got {}", nsamples);
  if (seqlen <= 0) fail("--seqlen must be positive, got {}", seqlen);
  const int64_t n = int64_t(ids.size());
  if (n < int64_t(seqlen) + 1)
    fail("the calibration text has {} tokens, fewer than seqlen + 1 = {} (lower --seqlen or use more text)", n,
         seqlen + 1);
  std::mt19937_64 rng(seed);
  const uint64_t range = uint64_t(n - seqlen);  // i ∈ [0, n − seqlen − 1]
  std::vector<std::vector<int32_t>> w(static_cast<size_t>(nsamples));
  for (auto& win : w) {
    const int64_t i = int64_t(rng() % range);  // plain modulo: the same windows on every platform
    win.assign(ids.begin() + i, ids.begin() + i + seqlen);
  }
  return w;
}

void ChannelStats::add(const float* x, int64_t n, int64_t cols) {
  if (sum_sq.empty()) sum_sq.assign(size_t(cols), 0.0), sum_abs.assign(size_t(cols), 0.0), max_abs.assign(size_t(cols), 0.0f);
  if (int64_t(sum_sq.size()) != cols) fail("channel statistics: {} columns, expected {}", cols, sum_sq.size());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const float v = x[r * cols + j], a = std::fabs(v);
      sum_sq[size_t(j)] += double(v) * v;
      sum_abs[size_t(j)] += a;
      max_abs[size_t(j)] = std::max(max_abs[size_t(j)], a);
    }
  rows += n;
}

std::vector<float> ChannelStats::norm_sq() const { return {sum_sq.begin(), sum_sq.end()}; }

std::vector<float> ChannelStats::mean_abs() const {
  std::vector<float> m(sum_abs.size());
  for (size_t j = 0; j < m.size(); ++j) m[j] = rows ? float(sum_abs[j] / double(rows)) : 0.0f;
  return m;
}

std::vector<std::vector<model::Linear*>> sequential_groups(model::LayerWeights& w) {
  if (!w.arch || w.arch->groups.empty()) fail("layer {}: this architecture has no calibration groups yet", w.index);
  std::vector<std::vector<model::Linear*>> out;
  for (const model::GroupSpec& g : w.arch->groups) {
    out.emplace_back();
    for (const std::string& name : g.linears) out.back().push_back(&model::linear_slot(*w.arch, w, name));
  }
  return out;
}

namespace {

// Runs `block` (attention or MLP) over the calibration activations X [N·L, H], `batch` windows at a time.
// in_place: X ← block(X); else X is kept and each batch runs on a scratch copy (observation passes).
struct Batches {
  const model::ModelConfig* config;
  const std::vector<float>* inv_freq;
  int64_t nwin, seqlen, hidden;
  int batch;

  using Block = void (*)(const model::LayerContext&, const model::LayerWeights&, float*);
  void run(Block block, const model::LayerWeights& w, std::vector<float>& X, bool in_place,
           const model::Observer* observe, log::Progress& bar, int64_t& done) const {
    std::vector<float> tmp;
    for (int64_t b0 = 0; b0 < nwin; b0 += batch) {
      const int64_t nb = std::min<int64_t>(batch, nwin - b0);
      std::vector<model::SeqRows> seqs(static_cast<size_t>(nb));
      for (int64_t i = 0; i < nb; ++i) seqs[size_t(i)] = {int(i), i * seqlen, seqlen, 0};
      float* x = X.data() + b0 * seqlen * hidden;
      if (!in_place) {
        tmp.assign(x, x + nb * seqlen * hidden);
        x = tmp.data();
      }
      model::LayerContext ctx{config, inv_freq, seqs, nullptr, observe};
      block(ctx, w, x);
      bar.update(++done);
    }
  }
};

}  // namespace

std::vector<std::vector<int32_t>> calibration_windows(const model::Checkpoint& ck, const CalibOptions& opt) {
  if (opt.text_file.empty()) fail("calibration text is required (--calib FILE)");
  int seqlen = opt.seqlen;
  if (seqlen == 0) seqlen = int(std::min<int64_t>(2048, ck.config.max_position_embeddings));
  if (ck.config.max_position_embeddings > 0 && seqlen > ck.config.max_position_embeddings)
    fail("--seqlen {} is longer than the model's max_position_embeddings {}", seqlen,
         ck.config.max_position_embeddings);
  const std::string text = read_file(opt.text_file);
  const auto tk = tok::Tokenizer::load(ck.dir);
  const auto ids = tk.encode(text, false);
  auto windows = sample_windows(ids, opt.nsamples, seqlen, opt.seed);
  log::info("calibration: {} windows of {} tokens from {} ({} tokens)", windows.size(), seqlen,
            opt.text_file.string(), ids.size());
  return windows;
}

RunStats run(const model::Checkpoint& ck, Method& method, const CalibOptions& opt, const LayerSink& sink) {
  std::vector<std::vector<int32_t>> windows;
  if (method.needs_calibration()) {
    if (opt.text_file.empty()) fail("method {} needs calibration text (--calib FILE)", method.name());
    windows = calibration_windows(ck, opt);
  }
  return run_windows(ck, method, windows, opt.batch, sink);
}

RunStats run_windows(const model::Checkpoint& ck, Method& method, const std::vector<std::vector<int32_t>>& windows,
                     int batch, const LayerSink& sink) {
  const double t0 = now_s();
  const model::ModelConfig& c = ck.config;
  if (c.is_mla()) fail("{}: calibration of multi-head latent attention models is not supported yet", ck.dir.string());
  const int L = int(c.num_hidden_layers);
  const bool calib = method.needs_calibration();
  if (calib && windows.empty()) fail("method {} needs calibration windows", method.name());
  if (batch <= 0) fail("calibration batch must be positive, got {}", batch);
  const int64_t nwin = int64_t(windows.size()), seqlen = calib ? int64_t(windows[0].size()) : 0, H = c.hidden_size;
  for (const auto& w : windows)
    if (int64_t(w.size()) != seqlen) fail("calibration windows must all have {} tokens", seqlen);

  // X [nwin·seqlen, H]: the current layer's input for every calibration token.
  std::vector<float> X;
  const std::vector<float> inv_freq = calib ? model::rope_inv_freq(c) : std::vector<float>{};
  if (calib) {
    model::ModelWeights mw;
    mw.embed = model::Linear::view("model.embed_tokens", ck.tensors.get("model.embed_tokens.weight"));
    std::vector<int32_t> ids;
    for (const auto& w : windows) ids.insert(ids.end(), w.begin(), w.end());
    X.resize(ids.size() * size_t(H));
    model::embed_tokens(mw, ids, X.data());
  }
  const Batches B{&c, &inv_freq, nwin, seqlen, H, batch};
  const int64_t nbatch = calib ? (nwin + batch - 1) / batch : 0;

  RunStats st;
  st.tokens = nwin * seqlen;
  for (int l = 0; l < L; ++l) {
    model::LayerWeights w = model::load_layer(ck, l);
    auto groups = sequential_groups(w);
    // per layer: 2 attention observation passes + 1 update, 2 MLP passes + 1 update (or just the linears)
    log::Progress bar(fmt::format("{} layer {}/{}", method.name(), l + 1, L), calib ? 6 * nbatch : 7);
    int64_t done = 0;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      const auto& group = groups[gi];
      if (calib) {
        for (model::Linear* lin : group) method.begin(*lin);
        const model::Observer obs = [&](int, const model::Linear& lin, const float* x, int64_t rows, int64_t cols) {
          if (std::find(group.begin(), group.end(), &lin) != group.end()) method.observe(lin, x, rows, cols);
        };
        const bool attn = gi < 2;
        B.run(attn ? model::attention_block : model::mlp_block, w, X, false, &obs, bar, done);
      }
      for (model::Linear* lin : group) {
        *lin = method.compress(*lin);
        if (!calib) bar.update(++done);
      }
      // the next layer's input: attention once q..o are compressed, MLP once gate..down are
      if (calib && (gi == 1 || gi == 3)) B.run(gi == 1 ? model::attention_block : model::mlp_block, w, X, true, nullptr, bar, done);
    }
    bar.finish();
    sink(w);
    ++st.layers;
  }
  st.seconds = now_s() - t0;
  return st;
}

}  // namespace llmopt::calib
