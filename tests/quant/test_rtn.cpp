// The quantization grid and RTN against a numpy transcription of grid.h (scripts/golden/quant_golden.py):
// codes, scales and zeros must match exactly, ragged last groups included.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>

#include "golden.h"
#include "lib/core/error.h"
#include "lib/quant/rtn.h"

using namespace llmopt::quant;

TEST_CASE("RTN equals the numpy reference exactly") {
  auto idx = golden::index();
  const int64_t rows = idx["rows"], cols = idx["cols"];
  auto W = golden::load<float>(idx["files"]["W_rtn"], size_t(rows * cols));
  int n = 0;
  for (auto& c : idx["cases"]) {
    if (c["reference"] != "numpy-rtn") continue;
    CAPTURE(c["name"].get<std::string>());
    auto ref = golden::reference(c, rows);
    auto q = rtn_quantize(W.data(), rows, cols, ref.grid);
    REQUIRE(q.n_groups() == int64_t(c["n_groups"]));
    CHECK(q.g_idx == ref.g_idx);
    CHECK(q.zeros == ref.zeros);
    CHECK(q.scales == ref.scales);  // bit-exact fp32
    int64_t diff = 0;
    for (size_t i = 0; i < q.codes.size(); i++) diff += q.codes[i] != ref.codes[i];
    CHECK(diff == 0);
    CHECK(q.dequantize() == ref.dequantize());
    n++;
  }
  CHECK(n == 5);
}

TEST_CASE("grid conventions") {
  // one row, 6 columns, group 4: a full group and a ragged group of 2
  std::vector<float> w = {-1.0f, 0.5f, 2.0f, 0.25f, 3.0f, 1.0f};
  QuantizedMatrix q = rtn_quantize(w.data(), 1, 6, {4, 4, false});
  REQUIRE(q.n_groups() == 2);
  CHECK(q.g_idx == std::vector<int32_t>{0, 0, 0, 0, 1, 1});
  CHECK(q.scales[0] == doctest::Approx(3.0f / 15));  // (max − min) / (2^4 − 1)
  CHECK(q.zeros[0] == 5);                             // round(1 / 0.2)
  CHECK(q.scales[1] == doctest::Approx(3.0f / 15));  // ragged group: min clamps to 0, so (3 − 0) / 15
  CHECK(q.zeros[1] == 0);
  CHECK(q.codes[2] == 15);  // 2 / 0.2 + 5
  auto d = q.dequantize();
  for (int i = 0; i < 6; i++) CHECK(std::fabs(d[i] - w[i]) <= q.scales[q.g_idx[i]] / 2 + 1e-6f);

  QuantizedMatrix s = rtn_quantize(w.data(), 1, 6, {4, -1, true});  // per channel, symmetric
  REQUIRE(s.n_groups() == 1);
  CHECK(s.zeros[0] == 8);                            // 2^(b−1)
  CHECK(s.scales[0] == doctest::Approx(3.0f / 7.5f));  // max|w| / ((2^b − 1) / 2)
  CHECK(s.codes[4] == 15);                           // +max clamps to 2^b − 1 (7.5 rounds to 8 → 16)

  std::vector<float> zero(8, 0.0f);
  QuantizedMatrix z = rtn_quantize(zero.data(), 2, 4, {2, 2, false});
  CHECK(z.scales[0] == FLT_EPSILON);
  for (float v : z.dequantize()) CHECK(v == 0.0f);

  CHECK_THROWS_AS(rtn_quantize(w.data(), 1, 6, {5, 4, false}), llmopt::Error);
  CHECK_THROWS_AS(rtn_quantize(w.data(), 1, 6, {4, 0, false}), llmopt::Error);
}
