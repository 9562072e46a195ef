#pragma once
// Seeded standard-normal test data.
#include <cstdint>
#include <random>
#include <vector>

namespace llmopt::test {
inline std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}
}  // namespace llmopt::test
