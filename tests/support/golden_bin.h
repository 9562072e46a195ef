#pragma once
// Raw little-endian arrays written by the scripts in scripts/golden/ (numpy .tofile()).
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "lib/core/dtype.h"
#include "lib/core/fsutil.h"

namespace llmopt::test {

// n elements of T from `file`; fails the test if the size differs.
template <typename T>
std::vector<T> load_bin(const std::filesystem::path& file, size_t n) {
  std::string bytes = read_file(file);
  REQUIRE_MESSAGE(bytes.size() == n * sizeof(T), file.string());
  std::vector<T> v(n);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

// n fp16 values widened to fp32.
inline std::vector<float> load_bin_f16(const std::filesystem::path& file, size_t n) {
  auto h = load_bin<uint16_t>(file, n);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i++) v[i] = f16_to_f32(h[i]);
  return v;
}

}  // namespace llmopt::test
