// lib/core/dtype conversions against numpy (float16) and torch (bfloat16, float8) results committed by
// scripts/golden/safetensors_golden.py in testdata/safetensors/dtype_conversions.json.
#include "lib/core/dtype.h"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lib/core/fsutil.h"
#include "support/test_paths.h"

using namespace llmopt;
using json = nlohmann::json;

namespace {
const json& golden() {
  static json j = json::parse(read_file(test::testdata_dir() / "safetensors" / "dtype_conversions.json"));
  return j;
}
bool f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

// FNV-1a 64 over the little-endian float32 bytes of f(0..65535), as the golden script hashes numpy's table.
template <typename F> std::string table_fnv(F f) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t i = 0; i < 65536; ++i) {
    uint32_t u = std::bit_cast<uint32_t>(f(uint16_t(i)));
    for (int k = 0; k < 4; ++k) h = (h ^ ((u >> (8 * k)) & 0xff)) * 0x100000001b3ull;
  }
  return std::to_string(h);
}
}  // namespace

TEST_CASE("f32 -> f16 rounds like numpy on tricky values") {
  const auto& pairs = golden()["f32_to_f16"];
  REQUIRE(pairs.size() >= 64);
  for (const auto& p : pairs) {
    uint32_t in = p[0];
    uint16_t want = p[1];
    uint16_t got = f32_to_f16(from_bits(in));
    INFO("f32 bits 0x" << std::hex << in);
    if (f16_is_nan(want)) CHECK(f16_is_nan(got));  // numpy keeps NaN payload bits; we only keep NaN
    else CHECK(got == want);
  }
}

TEST_CASE("f32 -> bf16 rounds like torch on tricky values") {
  const auto& pairs = golden()["f32_to_bf16"];
  REQUIRE(pairs.size() >= 64);
  for (const auto& p : pairs) {
    uint32_t in = p[0];
    uint16_t want = p[1];
    uint16_t got = f32_to_bf16(from_bits(in));
    INFO("f32 bits 0x" << std::hex << in);
    if (bf16_is_nan(want)) CHECK(bf16_is_nan(got));
    else CHECK(got == want);
  }
}

TEST_CASE("f16 and bf16 -> f32 match numpy / torch on all 65536 values") {
  CHECK(table_fnv(f16_to_f32) == golden()["f16_to_f32_table_fnv1a64"].get<std::string>());
  CHECK(table_fnv(bf16_to_f32) == golden()["bf16_to_f32_table_fnv1a64"].get<std::string>());
  // and every non-NaN value round-trips exactly
  int bad16 = 0, badbf = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    uint16_t h = uint16_t(i);
    if (!f16_is_nan(h) && f32_to_f16(f16_to_f32(h)) != h) ++bad16;
    if (!bf16_is_nan(h) && f32_to_bf16(bf16_to_f32(h)) != h) ++badbf;
    if (f16_is_nan(h)) bad16 += !std::isnan(f16_to_f32(h)) || !f16_is_nan(f32_to_f16(f16_to_f32(h)));
    if (bf16_is_nan(h)) badbf += !std::isnan(bf16_to_f32(h)) || !bf16_is_nan(f32_to_bf16(bf16_to_f32(h)));
  }
  CHECK(bad16 == 0);
  CHECK(badbf == 0);
}

TEST_CASE("f8 E4M3FN and E5M2 -> f32 match torch on all 256 values") {
  const auto e4 = golden()["f8e4m3_to_f32"].get<std::vector<uint32_t>>();
  const auto e5 = golden()["f8e5m2_to_f32"].get<std::vector<uint32_t>>();
  REQUIRE(e4.size() == 256);
  REQUIRE(e5.size() == 256);
  for (int v = 0; v < 256; ++v) {
    INFO("f8 byte " << v);
    float w4 = from_bits(e4[size_t(v)]), w5 = from_bits(e5[size_t(v)]);
    if (std::isnan(w4)) CHECK(std::isnan(f8e4m3_to_f32(uint8_t(v))));
    else CHECK(std::bit_cast<uint32_t>(f8e4m3_to_f32(uint8_t(v))) == e4[size_t(v)]);
    if (std::isnan(w5)) CHECK(std::isnan(f8e5m2_to_f32(uint8_t(v))));
    else CHECK(std::bit_cast<uint32_t>(f8e5m2_to_f32(uint8_t(v))) == e5[size_t(v)]);
  }
}

TEST_CASE("dtype names, sizes and to_f32 dispatch") {
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32,
                       DType::I16, DType::I8,  DType::U8,  DType::BOOL, DType::F8_E4M3, DType::F8_E5M2};
  const size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1, 1, 1};
  for (size_t i = 0; i < 12; ++i) {
    CHECK(dtype_from_name(dtype_name(all[i])) == all[i]);
    CHECK(dtype_size(all[i]) == sizes[i]);
  }
  CHECK(dtype_name(DType::F8_E4M3) == "F8_E4M3");
  CHECK_FALSE(dtype_from_name("F8_E8M0").has_value());
  CHECK_FALSE(dtype_from_name("f32").has_value());
  CHECK(dtype_is_float(DType::BF16));
  CHECK_FALSE(dtype_is_float(DType::I8));

  float out[3];
  const double d[3] = {1.5, -1e300, 1e-50};
  to_f32(DType::F64, d, out, 3);
  CHECK(out[0] == 1.5f);
  CHECK(std::isinf(out[1]));
  CHECK(out[2] == 0.0f);
  const int16_t s[3] = {-32768, 7, 0};
  to_f32(DType::I16, s, out, 3);
  CHECK(out[0] == -32768.0f);
  const int64_t l[1] = {(int64_t(1) << 53) + 1};
  to_f32(DType::I64, l, out, 1);
  CHECK(out[0] == 9007199254740992.0f);
  const uint16_t h[2] = {0x3c00, 0xc000};
  to_f32(DType::F16, h, out, 2);
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == -2.0f);
  const uint8_t b[2] = {0, 1};
  to_f32(DType::BOOL, b, out, 2);
  CHECK(out[1] == 1.0f);
}
