#include "lib/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "lib/core/error.h"

namespace llmopt::engine {

void check_sampling(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    fail("--temperature must be a finite number >= 0, got {}", p.temperature);
  if (p.top_k < 0) fail("--top-k must be >= 0, got {}", p.top_k);
  if (!(p.top_p > 0 && p.top_p <= 1)) fail("--top-p must be in (0, 1], got {}", p.top_p);
}

int32_t argmax(std::span<const float> logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (p_.temperature == 0) return argmax(logits);
  const int64_t V = int64_t(logits.size());
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b); };
  int64_t k = p_.top_k > 0 ? std::min(p_.top_k, V) : V;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_logit);
  idx.resize(size_t(k));
  // softmax(logits / T) over the k candidates, in descending order
  std::vector<double> prob(static_cast<size_t>(k));
  const double mx = logits[size_t(idx[0])];
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += prob[size_t(i)] = std::exp((logits[size_t(idx[size_t(i)])] - mx) / p_.temperature);
  for (double& q : prob) q /= sum;
  if (p_.top_p < 1) {  // nucleus: cut after the cumulative mass reaches top_p
    double cum = 0;
    int64_t n = 0;
    while (n < k && cum < p_.top_p) cum += prob[size_t(n++)];
    k = std::max<int64_t>(n, 1);
    sum = cum;
  } else {
    sum = 1;
  }
  double u = uniform() * sum, acc = 0;
  for (int64_t i = 0; i < k; ++i) {
    acc += prob[size_t(i)];
    if (u < acc) return idx[size_t(i)];
  }
  return idx[size_t(k - 1)];
}

}  // namespace llmopt::engine
