// The block codecs of formats/gguf_blocks.h against gguf-py's gguf.quants.dequantize on the same bytes:
// scripts/golden/gguf_blocks_golden.py wrote random valid blocks of every type and their dequantization
// (testdata/gguf/blocks/); ours must equal them bit for bit.
#include "formats/gguf_blocks.h"

#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "tests/support/test_paths.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace llmopt;
using gguf::Type;

namespace {
fs::path blocks_dir() { return test::testdata_dir() / "gguf" / "blocks"; }
}  // namespace

TEST_CASE("GGUF block codecs equal gguf.quants.dequantize bit for bit, for every type") {
  const json index = json::parse(read_file(blocks_dir() / "blocks.json"));
  const Type all[] = {Type::F32,  Type::F16,  Type::BF16, Type::Q8_0, Type::Q4_0, Type::Q4_1, Type::Q5_0,
                      Type::Q5_1, Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K};
  CHECK(index.size() == std::size(all));
  for (Type t : all) {
    const std::string name = gguf::type_name(t);
    INFO(name);
    REQUIRE(index.contains(name));
    CHECK(index[name]["ggml_type"].get<uint32_t>() == uint32_t(t));
    CHECK(gguf::type_from_id(uint32_t(t)) == t);
    const int64_t n = index[name]["n_elems"].get<int64_t>();
    const std::string raw = read_file(blocks_dir() / (name + ".blocks"));
    const std::string want = read_file(blocks_dir() / (name + ".f32"));
    REQUIRE(raw.size() == gguf::row_bytes(t, n));
    REQUIRE(want.size() == size_t(n) * 4);
    std::vector<float> got(static_cast<size_t>(n));
    // Row by row (a few blocks each) and as one row: both must give the same bits.
    const int64_t be = gguf::block_elems(t), per = be * (be == 1 ? 64 : 4);
    for (int64_t i = 0; i < n; i += per)
      gguf::dequantize_row(t, raw.data() + gguf::row_bytes(t, i), std::min(per, n - i), got.data() + i);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; ++i) differ += std::memcmp(&got[i], want.data() + 4 * i, 4) != 0;
    CHECK(differ == 0);
    std::vector<float> whole(static_cast<size_t>(n));
    gguf::dequantize_row(t, raw.data(), n, whole.data());
    CHECK(std::memcmp(whole.data(), want.data(), want.size()) == 0);
  }
}

TEST_CASE("GGUF block forms: codes within their width, and sizes as ggml's") {
  for (Type t : {Type::Q8_0, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::Q2_K, Type::Q3_K, Type::Q4_K,
                 Type::Q5_K, Type::Q6_K}) {
    INFO(gguf::type_name(t));
    const std::string raw = read_file(blocks_dir() / (std::string(gguf::type_name(t)) + ".blocks"));
    const gguf::BlockForm f = gguf::block_form(t);
    const int64_t be = gguf::block_elems(t);
    CHECK(be % f.group == 0);
    uint8_t q[256];
    float s[16], m[16];
    int max_code = 0;
    for (size_t b = 0; b + gguf::block_bytes(t) <= raw.size(); b += gguf::block_bytes(t)) {
      gguf::decode_block(t, reinterpret_cast<const uint8_t*>(raw.data()) + b, q, s, m);
      for (int64_t j = 0; j < be; ++j) max_code = std::max<int>(max_code, q[j]);
    }
    CHECK(max_code == (1 << f.bits) - 1);  // random bytes reach the top code, never beyond
  }
  CHECK(gguf::block_bytes(Type::Q4_K) == 144);
  CHECK(gguf::block_bytes(Type::Q6_K) == 210);
  CHECK_FALSE(gguf::type_from_id(4).has_value());  // Q4_2, removed from ggml
  CHECK_THROWS_WITH_AS(gguf::row_bytes(Type::Q4_K, 4096 + 32), doctest::Contains("not a multiple of 256"), Error);
  float x[256] = {};
  uint8_t buf[256];
  CHECK_THROWS_WITH_AS(gguf::quantize_row(Type::Q4_K, x, 256, buf), doctest::Contains("no encoder for Q4_K"), Error);
}
