#pragma once
// Synthetic quantized weights and file helpers shared by the packing tests (test_gptq_awq_pack.cpp,
// test_compressed_tensors.cpp; test_gguf.cpp uses the helpers). With LLMOPT_GOLDEN_OUT=<dir> set, the tests only write their files there for
// scripts/golden/formats_golden.py.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "formats/safetensors.h"
#include "lib/core/error.h"
#include "lib/core/fsutil.h"
#include "tests/support/test_paths.h"
#include "formats/quant_layout.h"

namespace pack_cases {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace llmopt;

inline fs::path golden_out() {
  const char* e = std::getenv("LLMOPT_GOLDEN_OUT");
  return e && *e ? fs::path(e) : fs::path();
}
inline fs::path fmt_dir() { return test::testdata_dir() / "formats"; }
inline json golden() { return json::parse(read_file(fmt_dir() / "formats_golden.json")); }
inline std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

struct Rng {  // splitmix64
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(next() >> 40) / float(1 << 24); }
  float normal() { return std::sqrt(-2.0f * std::log(uniform() + 1e-7f)) * std::cos(6.2831853f * uniform()); }
};

// A synthetic quantized weight: codes/scales/zeros by round-to-nearest over groups (act-order groups
// follow a random column permutation). Asymmetric cases force a zero point of 0 (1 with !zero0) and of
// 2^bits - 1 in row 0 / row 1.
struct Case {
  std::string name;
  int rows, cols, bits, group;
  bool sym, act_order;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<int32_t> zeros, g_idx;
  PackInput input() const {
    return {rows, cols, bits, group, sym, codes.data(), scales.data(), zeros.data(), act_order ? g_idx.data() : nullptr};
  }
};

inline Case make_case(std::string name, int rows, int cols, int bits, int group, bool sym, bool act_order, uint64_t seed,
               bool zero0 = true) {
  Case c{std::move(name), rows, cols, bits, group, sym, act_order, {}, {}, {}, {}};
  Rng rng{seed};
  PackInput shape{.rows = rows, .cols = cols, .bits = bits, .group_size = group};
  const int ng = shape.n_groups(), gl = shape.group_len(), maxq = (1 << bits) - 1;
  std::vector<float> w(size_t(rows) * cols);
  for (auto& x : w) x = 0.05f * rng.normal();
  std::vector<int> perm(cols);
  for (int i = 0; i < cols; ++i) perm[i] = i;
  if (act_order)
    for (int i = cols - 1; i > 0; --i) std::swap(perm[i], perm[rng.next() % uint64_t(i + 1)]);
  c.g_idx.resize(cols);
  for (int k = 0; k < cols; ++k) c.g_idx[perm[k]] = k / gl;
  c.codes.resize(w.size());
  c.scales.resize(size_t(rows) * ng);
  c.zeros.resize(size_t(rows) * ng);
  for (int r = 0; r < rows; ++r)
    for (int g = 0; g < ng; ++g) {
      float lo = 0, hi = 0;
      for (int i = 0; i < cols; ++i)
        if (c.g_idx[i] == g) lo = std::min(lo, w[size_t(r) * cols + i]), hi = std::max(hi, w[size_t(r) * cols + i]);
      float s;
      int z;
      if (sym) {
        s = std::max(-lo, hi) / float((maxq + 1) / 2 - (bits == 1 ? 0 : 1) + (bits == 1 ? 1 : 0));
        z = (maxq + 1) / 2;
      } else {
        s = (hi - lo) / float(maxq);
        z = int(std::lround(-lo / s));
        if (r == 0) z = zero0 ? 0 : 1;
        if (r == 1) z = maxq;
      }
      c.scales[size_t(r) * ng + g] = s;
      c.zeros[size_t(r) * ng + g] = z;
      for (int i = 0; i < cols; ++i)
        if (c.g_idx[i] == g) {
          long q = std::lround(w[size_t(r) * cols + i] / s) + z;
          c.codes[size_t(r) * cols + i] = uint8_t(std::clamp<long>(q, 0, maxq));
        }
    }
  return c;
}

// Writes the tensors under `prefix` with the quantization config as the file's only metadata entry.
inline void write_st(const fs::path& path, const std::string& prefix, const std::vector<PackedTensor>& ts, const json& qcfg) {
  std::vector<st::TensorInfo> specs;
  for (auto& t : ts) specs.push_back({prefix + t.suffix, t.dtype, t.shape, 0, 0});
  st::Writer w(path, specs, {{"quantization_config", qcfg.dump()}});
  for (auto& t : ts) w.write(prefix + t.suffix, t.data.data(), t.data.size());
  w.finish();
}

inline void write_f32(const fs::path& path, const std::string& name, const std::vector<float>& x, int64_t rows, int64_t cols) {
  st::Writer w(path, {{name, DType::F32, {rows, cols}, 0, 0}});
  w.write(name, x.data(), x.size() * 4);
  w.finish();
}

// Packs `c` with `pack`, checks our dequantization of the packed tensors against the codes, writes the file
// and compares it (bytes) and the reference readers' dequantization (hash) with the committed golden data.
template <typename Pack, typename Deq>
inline void run_case(const Case& c, const std::string& prefix, Pack pack, Deq deq, const json& qcfg, bool f16_scales = true,
              DType scale_dtype = DType::F16, bool ref_in_scale_dtype = false) {
  INFO("case " << c.name);
  const std::vector<PackedTensor> packed = pack(c.input());
  const std::vector<float> ours = deq(packed);
  Case r = c;  // the scales as stored
  for (auto& s : r.scales) {
    if (scale_dtype == DType::F16 || f16_scales) s = f16_to_f32(f32_to_f16(s));
    else if (scale_dtype == DType::BF16) s = bf16_to_f32(f32_to_bf16(s));
  }
  const std::vector<float> want = dequantize_codes(r.input());
  CHECK(ours == want);
  const fs::path tmp = test::temp_dir("fmtpack") / (c.name + ".safetensors");
  write_st(tmp, prefix, packed, qcfg);
  if (auto out = golden_out(); !out.empty()) {
    fs::copy_file(tmp, out / tmp.filename(), fs::copy_options::overwrite_existing);
    write_f32(out / (c.name + ".ours.safetensors"), "weight", ours, c.rows, c.cols);
    return;
  }
  const json g = golden().at("cases").at(c.name);
  CHECK(read_file(tmp) == read_file(fmt_dir() / g.at("file").get<std::string>()));
  // compressed-tensors (ref_in_scale_dtype) multiplies in the scales' dtype: round ours the same way first.
  std::vector<float> rounded = ours;
  for (auto& v : rounded) {
    if (!ref_in_scale_dtype) break;
    if (scale_dtype == DType::F16) v = f16_to_f32(f32_to_f16(v));
    if (scale_dtype == DType::BF16) v = bf16_to_f32(f32_to_bf16(v));
  }
  CHECK(hex64(fnv1a64(rounded.data(), rounded.size() * 4)) == g.at("ref_dequant_fnv").get<std::string>());
  CHECK(g.at("max_abs_diff").get<double>() == 0.0);
  // Read the committed (Python-verified) file back through our reader and dequantize it again.
  auto f = st::File::open(fmt_dir() / g.at("file").get<std::string>());
  std::vector<PackedTensor> back;
  for (auto& t : packed) {
    auto v = f->view(*f->find(prefix + t.suffix));
    PackedTensor p{t.suffix, v.dtype(), v.shape(), {}};
    p.data.assign(v.data, v.data + v.nbytes());
    back.push_back(std::move(p));
  }
  CHECK(deq(back) == ours);
  CHECK(json::parse(f->metadata().at("quantization_config")) == qcfg);
}

}  // namespace pack_cases
