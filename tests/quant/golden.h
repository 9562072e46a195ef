#pragma once
// Loads testdata/quant (written by scripts/golden/quant_golden.py): raw little-endian arrays + an index.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "lib/core/dtype.h"
#include "lib/core/fsutil.h"
#include "lib/quant/grid.h"
#include "tests/support/golden_bin.h"
#include "tests/support/test_paths.h"

namespace golden {

inline std::filesystem::path dir() { return llmopt::test::testdata_dir() / "quant"; }

inline nlohmann::json index() { return nlohmann::json::parse(llmopt::read_file(dir() / "quant_golden.json")); }

template <typename T>
std::vector<T> load(const std::string& name, size_t n) {
  return llmopt::test::load_bin<T>(dir() / name, n);
}

inline std::vector<float> load_f16(const std::string& name, size_t n) {
  return llmopt::test::load_bin_f16(dir() / name, n);
}

// The first `cols` columns of a row-major [rows, ld] matrix.
inline std::vector<float> left_cols(const std::vector<float>& m, int64_t rows, int64_t ld, int64_t cols) {
  std::vector<float> out(size_t(rows * cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) out[size_t(r * cols + c)] = m[size_t(r * ld + c)];
  return out;
}

// A case's reference QuantizedMatrix.
inline llmopt::quant::QuantizedMatrix reference(const nlohmann::json& c, int64_t rows) {
  llmopt::quant::QuantizedMatrix q;
  q.rows = rows;
  q.cols = c["cols"];
  q.grid = {c["bits"].get<int>(), c["group_size"].get<int>(), c["sym"].get<bool>()};
  const size_t ng = c["n_groups"];
  q.codes = load<uint8_t>(c["codes"], size_t(rows * q.cols));
  q.scales = load<float>(c["scales"], rows * ng);
  q.zeros = load<int32_t>(c["zeros"], rows * ng);
  q.g_idx = load<int32_t>(c["g_idx"], size_t(q.cols));
  return q;
}

}  // namespace golden
