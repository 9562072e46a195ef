#include "lib/engine/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/core/threads.h"

namespace llmopt::engine {
namespace {

// log-softmax of one row, in double
void log_softmax(const float* l, int64_t V, std::vector<double>& out) {
  out.resize(size_t(V));
  double mx = *std::max_element(l, l + V), s = 0;
  for (int64_t i = 0; i < V; ++i) s += std::exp(double(l[i]) - mx);
  const double lse = mx + std::log(s);
  for (int64_t i = 0; i < V; ++i) out[size_t(i)] = double(l[i]) - lse;
}

}  // namespace

PplProtocol parse_ppl_protocol(const std::string& s) {
  if (s == "gptq") return PplProtocol::Gptq;
  if (s == "llamacpp") return PplProtocol::LlamaCpp;
  fail("--protocol must be gptq or llamacpp, got '{}'", s);
}

PplResult perplexity(model::Model& model, std::span<const int32_t> ids, const PplOptions& opts, model::Model* base) {
  const int64_t ctx = opts.ctx, V = model.config().vocab_size, N = int64_t(ids.size());
  if (ctx < 2) fail("--ctx must be at least 2, got {}", ctx);
  if (base && base->config().vocab_size != V)
    fail("--kl-base: vocabulary size {} differs from the model's {}", base->config().vocab_size, V);
  const bool llamacpp = opts.protocol == PplProtocol::LlamaCpp;
  if (llamacpp && N < 2 * ctx)
    fail("the text has {} tokens; the llamacpp protocol needs at least 2 x ctx = {}", N, 2 * ctx);
  int64_t windows = N / ctx;
  if (windows == 0) fail("the text has {} tokens, fewer than one window of --ctx {}", N, ctx);
  if (opts.max_windows > 0) windows = std::min(windows, opts.max_windows);
  const int64_t first = llamacpp ? ctx / 2 : 0;  // first scored position (predicting the token after it)
  const int64_t per_window = ctx - 1 - first;

  auto kv = model.make_cache(1, ctx);
  auto kv_base = base ? base->make_cache(1, ctx) : nullptr;
  double nll = 0, kl = 0;
  int64_t agree = 0, scored = 0;
  log::Progress progress("perplexity", windows);
  std::vector<int32_t> win(static_cast<size_t>(ctx));
  for (int64_t w = 0; w < windows; ++w) {
    const int64_t start = w * ctx;
    std::copy_n(ids.begin() + start, ctx, win.begin());
    if (llamacpp && opts.bos_id >= 0) win[0] = opts.bos_id;
    model::Model::SeqInput in{0, win, true};
    kv->truncate(0, 0);
    const auto logits = model::run_step(model, *kv, {&in, 1});
    std::vector<float> blogits;
    if (base) {
      kv_base->truncate(0, 0);
      blogits = model::run_step(*base, *kv_base, {&in, 1});
    }
    // per scored position: nll, KL and top-1 agreement, summed in order afterwards (deterministic)
    std::vector<double> pn(static_cast<size_t>(per_window)), pk(static_cast<size_t>(per_window));
    std::vector<int> pa(static_cast<size_t>(per_window));
    parallel_for(per_window, [&](int64_t b, int64_t e) {
      std::vector<double> lp, lb;
      for (int64_t j = b; j < e; ++j) {
        const int64_t pos = first + j;
        const float* l = logits.data() + pos * V;
        log_softmax(l, V, lp);
        pn[size_t(j)] = -lp[size_t(ids[size_t(start + pos + 1)])];
        if (base) {
          const float* bl = blogits.data() + pos * V;
          log_softmax(bl, V, lb);
          double k = 0;
          for (int64_t t = 0; t < V; ++t) k += std::exp(lb[size_t(t)]) * (lb[size_t(t)] - lp[size_t(t)]);
          pk[size_t(j)] = k;
          pa[size_t(j)] = std::max_element(l, l + V) - l == std::max_element(bl, bl + V) - bl;
        }
      }
    }, 8);
    for (int64_t j = 0; j < per_window; ++j) {
      nll += pn[size_t(j)];
      kl += pk[size_t(j)];
      agree += pa[size_t(j)];
    }
    scored += per_window;
    progress.update(w + 1);
  }
  progress.finish();
  PplResult r;
  r.windows = windows;
  r.tokens_scored = scored;
  r.mean_nll = nll / double(scored);
  r.ppl = std::exp(r.mean_nll);
  if (base) {
    r.kl = kl / double(scored);
    r.top1_agreement = double(agree) / double(scored);
  }
  return r;
}

}  // namespace llmopt::engine
