// GPTQ and AWQ packing against the upstream readers' dequantization formulas
// (scripts/golden/formats_golden.py applies AutoGPTQ's / AutoAWQ's unpacking in numpy to the files this
// test writes, and commits them with the results in testdata/formats/).
// With LLMOPT_GOLDEN_OUT=<dir> set, the test only writes its files there for that script.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "formats/awq_pack.h"
#include "formats/gptq_pack.h"
#include "formats/safetensors.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "tests/support/test_paths.h"
#include "tests/formats/pack_cases.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace llmopt;

namespace {
using namespace pack_cases;
}  // namespace

const char* kPrefix = "model.layers.0.mlp.down_proj.";

TEST_CASE("GPTQ packing: 2/3/4/8 bits, groups, act-order, per-channel") {
  struct Spec { const char* name; int bits, group; bool sym, act; };
  for (Spec s : {Spec{"gptq_b2_g32", 2, 32, false, false}, Spec{"gptq_b3_g32", 3, 32, false, false},
                 Spec{"gptq_b4_g32_actorder_sym", 4, 32, true, true}, Spec{"gptq_b4_g64", 4, 64, false, false},
                 Spec{"gptq_b8_channel", 8, -1, false, false}}) {
    // zero0 = false: a GPTQ v1 zero point of 0 is stored as 2^bits - 1 and only readers that mask after
    // adding one (AutoGPTQ's 2/4/8-bit path) read it back; keep the golden cases inside what all read.
    const Case c = make_case(s.name, 64, 128, s.bits, s.group, s.sym, s.act, 1234 + s.bits, false);
    run_case(
        c, kPrefix, [](const PackInput& q) { return gptq::pack(q); },
        [&](const std::vector<PackedTensor>& p) { return gptq::dequantize(p, s.bits); },
        gptq::quantization_config(s.bits, s.group, s.act, s.sym));
  }
}

TEST_CASE("AWQ GEMM packing") {
  for (int group : {32, 128}) {
    const Case c = make_case(fmt::format("awq_b4_g{}", group), 64, 128, 4, group, false, false, 99 + group);
    run_case(
        c, kPrefix, [](const PackInput& q) { return awq::pack(q); },
        [&](const std::vector<PackedTensor>& p) { return awq::dequantize(p, group); }, awq::quantization_config(group));
  }
}

TEST_CASE("AWQ nibble order is [0,2,4,6,1,3,5,7]") {
  // One input row, outputs 0..7 carry codes 0..7: word = sum_j kOrder[j] << 4j.
  std::vector<uint8_t> codes(8 * 32, 0);
  for (int o = 0; o < 8; ++o) codes[size_t(o) * 32] = uint8_t(o);
  std::vector<float> scales(8, 1.0f);
  std::vector<int32_t> zeros(8, 0);
  PackInput q{8, 32, 4, 32, false, codes.data(), scales.data(), zeros.data(), nullptr};
  auto p = awq::pack(q);
  CHECK(uint32_t(p[0].as<int32_t>()[0]) == 0x75316420u);
}

TEST_CASE("GPTQ 4-bit: codes low nibble first along the input dimension, zeros stored minus one") {
  std::vector<uint8_t> codes(32 * 32);
  for (int o = 0; o < 32; ++o)
    for (int i = 0; i < 32; ++i) codes[size_t(o) * 32 + i] = uint8_t((i + o) % 16);
  std::vector<float> scales(32, 0.5f);
  std::vector<int32_t> zeros(32, 8);
  zeros[0] = 0;
  PackInput q{32, 32, 4, 32, false, codes.data(), scales.data(), zeros.data(), nullptr};
  auto p = gptq::pack(q);
  CHECK(p[0].shape == std::vector<int64_t>{4, 32});
  CHECK(uint32_t(p[0].as<int32_t>()[0]) == 0x76543210u);      // qweight[0][o=0]: inputs 0..7
  CHECK(uint32_t(p[0].as<int32_t>()[1]) == 0x87654321u);      // qweight[0][o=1]
  CHECK(uint32_t(p[1].as<int32_t>()[0]) == 0x7777777fu);      // qzeros[0][0]: (0-1)&15 = 15, then 7s
}

TEST_CASE("shapes the formats cannot store are rejected with a clear error") {
  const Case c = make_case("ragged", 64, 172, 4, 32, false, false, 7);  // stories260K down_proj
  CHECK_THROWS_WITH_AS(gptq::pack(c.input()), doctest::Contains("multiples of 32"), Error);
  CHECK_THROWS_WITH_AS(awq::pack(c.input()), doctest::Contains("not a multiple of the group size"), Error);
  const Case c5 = make_case("b5", 64, 128, 5, 32, false, false, 7);
  CHECK_THROWS_WITH_AS(gptq::pack(c5.input()), doctest::Contains("5 bits"), Error);
  const Case c3 = make_case("b3", 64, 128, 3, 32, false, false, 7);
  CHECK_THROWS_WITH_AS(awq::pack(c3.input()), doctest::Contains("only 4-bit"), Error);
  const Case act = make_case("act", 64, 128, 4, 32, false, true, 7);
  CHECK_THROWS_WITH_AS(awq::pack(act.input()), doctest::Contains("act-order"), Error);
  Case bad = make_case("bad", 64, 128, 4, 32, false, false, 7);
  bad.codes[5] = 16;
  CHECK_THROWS_WITH_AS(gptq::pack(bad.input()), doctest::Contains("does not fit 4 bits"), Error);
}
