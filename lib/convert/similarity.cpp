// KV-head grouping by output similarity: Gram matrices of the heads' K/V outputs on calibration text,
// and a balanced grouping that minimises the error of mean-pooling each group.
#include <algorithm>
#include <limits>
#include <numeric>

#include "lib/convert/gqa.h"
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/model/forward.h"

namespace llmopt::convert {

HeadStats collect_head_stats(const model::Checkpoint& ck, const std::vector<std::vector<int32_t>>& samples) {
  model::Model mdl(ck);
  const model::ModelConfig& c = mdl.config();
  const int64_t H = c.num_key_value_heads, D = c.head_dim, kvd = H * D;
  const int L = int(c.num_hidden_layers);
  HeadStats s;
  s.heads = H;
  s.k.assign(size_t(L), std::vector<double>(size_t(H * H), 0.0));
  s.v = s.k;

  // Gram of one [T, H·D] block of head outputs: m[a·H+b] += Σ_t Σ_d X[t, a·D+d]·X[t, b·D+d]
  auto gram = [&](const std::vector<float>& x, int64_t T, std::vector<double>& m) {
    for (int64_t t = 0; t < T; ++t) {
      const float* row = x.data() + t * kvd;
      for (int64_t a = 0; a < H; ++a)
        for (int64_t b = a; b < H; ++b) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += double(row[a * D + d]) * double(row[b * D + d]);
          m[size_t(a * H + b)] += dot;
          if (b != a) m[size_t(b * H + a)] += dot;
        }
    }
  };

  std::vector<float> kbuf, vbuf;
  model::Observer obs = [&](int layer, const model::Linear& lin, const float* x, int64_t rows, int64_t) {
    const model::LayerWeights& w = mdl.weights().layers[size_t(layer)];
    if (&lin != &w.k) return;  // q, k and v share their input; compute K and V once
    kbuf.resize(size_t(rows * kvd));
    vbuf.resize(size_t(rows * kvd));
    model::linear_forward(w.k, x, rows, kbuf.data());
    model::linear_forward(w.v, x, rows, vbuf.data());
    gram(kbuf, rows, s.k[size_t(layer)]);
    gram(vbuf, rows, s.v[size_t(layer)]);
  };

  log::Progress progress("calibrate", int64_t(samples.size()));
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& ids = samples[i];
    if (ids.empty()) continue;
    const int64_t T = int64_t(ids.size());
    std::vector<float> x(static_cast<size_t>(T * c.hidden_size));
    model::embed_tokens(mdl.weights(), ids, x.data());
    const model::SeqRows seq{0, 0, T, 0};
    model::LayerContext ctx{&c, &mdl.inv_freq(), std::span<const model::SeqRows>(&seq, 1), nullptr, &obs};
    for (const auto& layer : mdl.weights().layers) model::decoder_layer_forward(ctx, layer, x.data());
    s.tokens += T;
    progress.update(int64_t(i + 1));
  }
  progress.finish();
  return s;
}

std::vector<double> head_metric(const HeadStats& s, int layer) {
  const int64_t H = s.heads;
  const auto& k = s.k[size_t(layer)];
  const auto& v = s.v[size_t(layer)];
  double ek = 0, ev = 0;
  for (int64_t j = 0; j < H; ++j) ek += k[size_t(j * H + j)], ev += v[size_t(j * H + j)];
  ek = ek > 0 ? ek / double(H) : 1.0;
  ev = ev > 0 ? ev / double(H) : 1.0;
  std::vector<double> m(static_cast<size_t>(H * H));
  for (size_t i = 0; i < m.size(); ++i) m[i] = k[i] / ek + v[i] / ev;
  return m;
}

namespace {

// Σ_{j∈g} ‖X_j − mean‖² = Σ_j m_jj − (1/|g|) Σ_{a,b∈g} m_ab
double group_cost(std::span<const double> m, int64_t H, const std::vector<int64_t>& g) {
  double diag = 0, all = 0;
  for (int64_t a : g) {
    diag += m[size_t(a * H + a)];
    for (int64_t b : g) all += m[size_t(a * H + b)];
  }
  return diag - all / double(g.size());
}

double total_cost(std::span<const double> m, int64_t H, const LayerGroups& gs) {
  double t = 0;
  for (const auto& g : gs) t += group_cost(m, H, g);
  return t;
}

// Swap members between pairs of groups while some swap lowers the total cost (first improvement).
void refine(std::span<const double> m, int64_t H, LayerGroups& gs) {
  for (int round = 0; round < 1000; ++round) {
    bool improved = false;
    for (size_t p = 0; p < gs.size(); ++p)
      for (size_t q = p + 1; q < gs.size(); ++q)
        for (size_t i = 0; i < gs[p].size(); ++i)
          for (size_t j = 0; j < gs[q].size(); ++j) {
            const double before = group_cost(m, H, gs[p]) + group_cost(m, H, gs[q]);
            std::swap(gs[p][i], gs[q][j]);
            const double after = group_cost(m, H, gs[p]) + group_cost(m, H, gs[q]);
            if (after < before - 1e-12 * std::max(1.0, before)) improved = true;
            else std::swap(gs[p][i], gs[q][j]);
          }
    if (!improved) return;
  }
}

void canonical(LayerGroups& gs) {
  for (auto& g : gs) std::sort(g.begin(), g.end());
  std::sort(gs.begin(), gs.end());
}

}  // namespace

double pooling_error(std::span<const double> m, int64_t H, const LayerGroups& groups) {
  double energy = 0;
  for (int64_t j = 0; j < H; ++j) energy += m[size_t(j * H + j)];
  return energy > 0 ? total_cost(m, H, groups) / energy : 0.0;
}

LayerGroups similarity_groups(std::span<const double> m, int64_t H, int64_t G) {
  if (G <= 0 || H % G != 0) fail("cannot split {} KV heads into {} equal groups", H, G);
  const int64_t s = H / G;

  // Greedy: seed each group with the lowest unassigned head, grow it by the head that adds least cost.
  LayerGroups greedy;
  std::vector<bool> used(size_t(H), false);
  for (int64_t g = 0; g < G; ++g) {
    std::vector<int64_t> grp;
    for (int64_t j = 0; j < H; ++j)
      if (!used[size_t(j)]) { grp.push_back(j); used[size_t(j)] = true; break; }
    while (int64_t(grp.size()) < s) {
      int64_t best = -1;
      double best_cost = std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < H; ++j) {
        if (used[size_t(j)]) continue;
        grp.push_back(j);
        const double cst = group_cost(m, H, grp);
        grp.pop_back();
        if (cst < best_cost) best_cost = cst, best = j;
      }
      grp.push_back(best);
      used[size_t(best)] = true;
    }
    greedy.push_back(std::move(grp));
  }
  LayerGroups adjacent(static_cast<size_t>(G));
  for (int64_t j = 0; j < H; ++j) adjacent[size_t(j / s)].push_back(j);

  refine(m, H, greedy);
  refine(m, H, adjacent);
  LayerGroups& best = total_cost(m, H, adjacent) < total_cost(m, H, greedy) ? adjacent : greedy;
  canonical(best);
  return best;
}

}  // namespace llmopt::convert
