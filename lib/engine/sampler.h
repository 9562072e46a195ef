#pragma once
// Next-token sampling: greedy (temperature 0) or temperature → top-k → top-p (nucleus) → draw.
#include <cstdint>
#include <random>
#include <span>

namespace llmopt::engine {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax)
  int64_t top_k = 0;         // 0 = no limit
  float top_p = 1.0f;        // keep the smallest set of most likely tokens with mass ≥ top_p
};

// Error naming the flag (--temperature, --top-k, --top-p) on a value outside its range.
void check_sampling(const SamplingParams& p);

// Index of the largest logit (the first one on ties).
int32_t argmax(std::span<const float> logits);

class Sampler {
 public:
  Sampler(SamplingParams p, uint64_t seed) : p_(p), rng_(seed) {}
  int32_t sample(std::span<const float> logits);

 private:
  double uniform() { return double(rng_() >> 11) * 0x1.0p-53; }  // [0, 1), same on every platform
  SamplingParams p_;
  std::mt19937_64 rng_;
};

}  // namespace llmopt::engine
