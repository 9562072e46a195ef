// compressed-tensors layouts against the `compressed-tensors` package: scripts/golden/formats_golden.py
// decompresses the files this test writes with the package's own compressors (and validates the
// quantization_config with its pydantic models), and commits them with the results in testdata/formats/.
// With LLMOPT_GOLDEN_OUT=<dir> set, the test only writes its files there for that script.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "formats/compressed_tensors.h"
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

TEST_CASE("compressed-tensors int-quantized (W8A8)") {
  for (DType sd : {DType::F32, DType::BF16}) {
    const Case c = make_case(fmt::format("ct_w8a8_{}", sd == DType::F32 ? "f32" : "bf16"), 64, 128, 8, -1, true, false, 5);
    run_case(
        c, "model.layers.0.self_attn.q_proj.", [&](const PackInput& q) { return ct::pack_int8(q, sd); },
        [&](const std::vector<PackedTensor>& p) { return ct::dequantize(p, 8, -1); }, ct::quantization_config_w8a8(),
        /*f16_scales=*/false, sd, /*ref_in_scale_dtype=*/true);
  }
}

TEST_CASE("compressed-tensors pack-quantized") {
  struct Spec { const char* name; int rows, cols, bits, group; bool sym; DType sd; };
  for (Spec s : {Spec{"ct_w4_sym_g32", 64, 128, 4, 32, true, DType::F16}, Spec{"ct_w4_asym_g32", 64, 128, 4, 32, false, DType::F32},
                 Spec{"ct_w4_asym_channel_172", 44, 172, 4, -1, false, DType::F32},
                 Spec{"ct_w3_asym_g32", 40, 96, 3, 32, false, DType::BF16}, Spec{"ct_w8_sym_g64", 32, 128, 8, 64, true, DType::F32}}) {
    const Case c = make_case(s.name, s.rows, s.cols, s.bits, s.group, s.sym, false, 77 + s.bits);
    run_case(
        c, "model.layers.0.mlp.down_proj.", [&](const PackInput& q) { return ct::pack_packed(q, s.sd); },
        [&](const std::vector<PackedTensor>& p) { return ct::dequantize(p, s.bits, s.group); },
        ct::quantization_config_packed(s.bits, s.group, s.sym), false, s.sd, /*ref_in_scale_dtype=*/true);
  }
}

TEST_CASE("pack-quantized 4-bit: 8 codes per int32 low first, offset by 8; zero points packed down the rows") {
  std::vector<uint8_t> codes(16 * 8);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 8; ++c) codes[size_t(r) * 8 + c] = uint8_t((c + r) % 16);
  std::vector<float> scales(16, 1.0f);
  std::vector<int32_t> zeros(16);
  for (int r = 0; r < 16; ++r) zeros[r] = r;
  PackInput q{16, 8, 4, -1, false, codes.data(), scales.data(), zeros.data(), nullptr};
  auto p = ct::pack_packed(q, DType::F32);
  REQUIRE(p.size() == 4);
  CHECK(p[0].shape == std::vector<int64_t>{16, 1});
  CHECK(uint32_t(p[0].as<int32_t>()[0]) == 0x76543210u);
  CHECK(p[2].suffix == "weight_zero_point");
  CHECK(p[2].shape == std::vector<int64_t>{2, 1});
  CHECK(uint32_t(p[2].as<int32_t>()[0]) == 0x76543210u);
  CHECK(uint32_t(p[2].as<int32_t>()[1]) == 0xfedcba98u);
  CHECK(p[3].as<int64_t>()[0] == 16);
  CHECK(p[3].as<int64_t>()[1] == 8);
}

TEST_CASE("compressed-tensors rejects what it cannot store") {
  const Case c = make_case("ragged_group", 64, 172, 4, 32, false, false, 7);
  CHECK_THROWS_WITH_AS(ct::pack_packed(c.input(), DType::F32), doctest::Contains("not a multiple of the group size"), Error);
  const Case a = make_case("asym8", 64, 128, 8, -1, false, false, 7);
  CHECK_THROWS_WITH_AS(ct::pack_int8(a.input(), DType::F32), doctest::Contains("symmetric per-channel"), Error);
  const Case s = make_case("sym8", 64, 128, 8, -1, true, false, 7);
  CHECK_THROWS_WITH_AS(ct::pack_int8(s.input(), DType::I32), doctest::Contains("F32, F16 or BF16"), Error);
}
