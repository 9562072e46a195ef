#pragma once
// Loads testdata/prune (written by scripts/golden/prune_golden.py): raw little-endian arrays + an index.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <Eigen/Core>
#include <cstring>
#include <string>
#include <vector>

#include "lib/core/dtype.h"
#include "lib/core/fsutil.h"
#include "tests/support/golden_bin.h"
#include "tests/support/test_paths.h"

namespace golden {

inline std::filesystem::path dir() { return llmopt::test::testdata_dir() / "prune"; }

inline nlohmann::json index() { return nlohmann::json::parse(llmopt::read_file(dir() / "prune_golden.json")); }

template <typename T>
std::vector<T> load(const std::string& name, size_t n) {
  return llmopt::test::load_bin<T>(dir() / name, n);
}

// np.packbits (big bit order) of an n-entry 0/1 mask.
inline std::vector<uint8_t> load_mask(const std::string& name, size_t n) {
  auto packed = load<uint8_t>(name, (n + 7) / 8);
  std::vector<uint8_t> m(n);
  for (size_t i = 0; i < n; i++) m[i] = (packed[i / 8] >> (7 - i % 8)) & 1;
  return m;
}

struct Inputs {
  int64_t rows, cols;
  std::vector<float> W, X, S;  // W [rows, cols], X [tokens, cols], S [cols] (llm-compressor's Wanda statistic)
  Eigen::MatrixXf H;           // llm-compressor's SparseGPT Hessian
  std::vector<float> x_sq;     // Σ_t x_tj², what the calibration runner hands to wanda_prune
};

inline Inputs inputs() {
  auto idx = index();
  Inputs in{idx["rows"], idx["cols"], {}, {}, {}, {}, {}};
  const int64_t tokens = idx["tokens"];
  in.W = load<float>(idx["files"]["W"], size_t(in.rows * in.cols));
  in.X = llmopt::test::load_bin_f16(dir() / idx["files"]["X"].get<std::string>(), size_t(tokens * in.cols));
  in.S = load<float>(idx["files"]["S"], size_t(in.cols));
  auto Hv = load<float>(idx["files"]["H"], size_t(in.cols * in.cols));
  in.H = Eigen::Map<const Eigen::MatrixXf>(Hv.data(), in.cols, in.cols);
  in.x_sq.assign(size_t(in.cols), 0.0f);
  for (int64_t c = 0; c < in.cols; c++) {
    double s = 0;
    for (int64_t t = 0; t < tokens; t++) s += double(in.X[t * in.cols + c]) * in.X[t * in.cols + c];
    in.x_sq[c] = float(s);
  }
  return in;
}

// The first `cols` columns of a row-major [rows, ld] matrix.
inline std::vector<float> left_cols(const std::vector<float>& m, int64_t rows, int64_t ld, int64_t cols) {
  std::vector<float> out(size_t(rows * cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) out[size_t(r * cols + c)] = m[size_t(r * ld + c)];
  return out;
}

inline double agreement(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  int64_t same = 0;
  for (size_t i = 0; i < a.size(); i++) same += a[i] == b[i];
  return double(same) / double(a.size());
}

}  // namespace golden
