// KV-head grouping by output similarity: Gram matrices of the heads' K/V outputs on calibration text,
// and a balanced grouping that minimises the error of mean-pooling each group.
#include <algorithm>
#include <limits>
#include <numeric>

#include "lib/convert/gqa.h"
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/calib/runner.h"
#include "lib/model/arch.h"
#include "lib/model/forward.h"

namespace llmopt::convert {

namespace {
// Gram of one [T, H·D] block of head outputs: m[a·H+b] += Σ_t Σ_d X[t, a·D+d]·X[t, b·D+d]
void add_gram(const std::vector<float>& x, int64_t T, int64_t H, int64_t D, std::vector<double>& m) {
  for (int64_t t = 0; t < T; ++t) {
    const float* row = x.data() + t * H * D;
    for (int64_t a = 0; a < H; ++a)
      for (int64_t b = a; b < H; ++b) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += double(row[a * D + d]) * double(row[b * D + d]);
        m[size_t(a * H + b)] += dot;
        if (b != a) m[size_t(b * H + a)] += dot;
      }
  }
}

// A calibration method that compresses nothing: it observes each layer's k_proj/v_proj input and
// accumulates the Gram matrices of the KV heads' outputs.
class HeadStatsMethod : public calib::Method {
 public:
  explicit HeadStatsMethod(const model::ModelConfig& c) : D_(c.head_dim) {
    s.heads = c.num_key_value_heads;
    s.k.assign(size_t(c.num_hidden_layers), std::vector<double>(size_t(s.heads * s.heads), 0.0));
    s.v = s.k;
  }
  std::string name() const override { return "kv-head statistics"; }
  void observe(const model::Linear& l, const float* x, int64_t rows, int64_t) override {
    const bool is_k = l.name.ends_with(".k_proj"), is_v = l.name.ends_with(".v_proj");
    if (!is_k && !is_v) return;
    const auto name = model::parse_layer_tensor(l.name);
    const int layer = name ? name->layer : -1;
    if (layer < 0 || layer >= int(s.k.size())) fail("kv-head statistics: unexpected linear {}", l.name);
    out_.resize(size_t(rows * l.out));
    model::linear_forward(l, x, rows, out_.data());
    add_gram(out_, rows, s.heads, D_, (is_k ? s.k : s.v)[size_t(layer)]);
    if (is_k && layer == 0) s.tokens += rows;
  }
  model::Linear compress(const model::Linear& l) override { return l; }

  HeadStats s;

 private:
  int64_t D_;
  std::vector<float> out_;
};
}  // namespace

HeadStats collect_head_stats(const model::Checkpoint& ck, const std::vector<std::vector<int32_t>>& samples) {
  HeadStatsMethod m(ck.config);
  calib::run_windows(ck, m, samples, 4, [](model::LayerWeights&) {});
  return std::move(m.s);
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
