#include "formats/gptq_pack.h"

#include <algorithm>
#include <cstring>

namespace llmopt::gptq {

void check_shape(int rows, int cols, int bits) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8) fail("GPTQ format: {} bits is not supported (2, 3, 4, 8)", bits);
  if (cols % 32 != 0 || rows % 32 != 0)
    fail("GPTQ format: a {}x{} weight cannot be packed (in and out features must be multiples of 32)", rows, cols);
}

std::vector<PackedTensor> specs(int rows, int cols, int bits, int group_size) {
  check_shape(rows, cols, bits);
  PackInput shape{.rows = rows, .cols = cols, .bits = bits, .group_size = group_size};
  const int64_t ng = shape.n_groups();
  return {{"qweight", DType::I32, {int64_t(cols) / 32 * bits, rows}, {}},
          {"qzeros", DType::I32, {ng, int64_t(rows) / 32 * bits}, {}},
          {"scales", DType::F16, {ng, rows}, {}},
          {"g_idx", DType::I32, {cols}, {}}};
}

std::vector<PackedTensor> pack(const PackInput& q) {
  check_pack_input(q, "GPTQ pack");
  auto out = specs(q.rows, q.cols, q.bits, q.group_size);
  for (auto& t : out) t.data.assign(size_t(t.numel()) * dtype_size(t.dtype), std::byte{0});
  const int ng = q.n_groups(), rows = q.rows, cols = q.cols, bits = q.bits;
  const uint32_t mask = (1u << bits) - 1;

  // qweight: each output column o is one word stream over the input index.
  auto* qw = reinterpret_cast<uint32_t*>(out[0].data.data());
  const int64_t nw = int64_t(cols) / 32 * bits;
  std::vector<uint32_t> col(nw);
  for (int o = 0; o < rows; ++o) {
    std::fill(col.begin(), col.end(), 0u);
    for (int i = 0; i < cols; ++i) put_bits(col.data(), i, bits, q.codes[size_t(o) * cols + i]);
    for (int64_t w = 0; w < nw; ++w) qw[w * rows + o] = col[w];
  }
  // qzeros: each group is one word stream over the output index, holding zero - 1.
  auto* qz = reinterpret_cast<uint32_t*>(out[1].data.data());
  const int64_t nz = int64_t(rows) / 32 * bits;
  for (int g = 0; g < ng; ++g)
    for (int o = 0; o < rows; ++o) put_bits(qz + g * nz, o, bits, uint32_t(q.zeros[size_t(o) * ng + g] - 1) & mask);
  auto* sc = reinterpret_cast<uint16_t*>(out[2].data.data());
  for (int g = 0; g < ng; ++g)
    for (int o = 0; o < rows; ++o) sc[size_t(g) * rows + o] = f32_to_f16(q.scales[size_t(o) * ng + g]);
  auto* gi = reinterpret_cast<int32_t*>(out[3].data.data());
  for (int i = 0; i < cols; ++i) gi[i] = q.group_of(i);
  return out;
}

std::vector<float> dequantize(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales_f16,
                              const int32_t* g_idx, int rows, int cols, int bits, int n_groups) {
  check_shape(rows, cols, bits);
  const uint32_t mask = (1u << bits) - 1;
  const int64_t nw = int64_t(cols) / 32 * bits, nz = int64_t(rows) / 32 * bits;
  std::vector<float> w(size_t(rows) * cols);
  std::vector<uint32_t> col(nw);
  for (int o = 0; o < rows; ++o) {
    for (int64_t k = 0; k < nw; ++k) col[k] = uint32_t(qweight[k * rows + o]);
    for (int i = 0; i < cols; ++i) {
      const int g = g_idx[i];
      if (g < 0 || g >= n_groups) fail("GPTQ: g_idx[{}] = {} outside [0, {})", i, g, n_groups);
      const int z = int((get_bits(reinterpret_cast<const uint32_t*>(qzeros) + g * nz, o, bits) + 1) & mask);
      const float s = f16_to_f32(scales_f16[size_t(g) * rows + o]);
      w[size_t(o) * cols + i] = s * float(int(get_bits(col.data(), i, bits)) - z);
    }
  }
  return w;
}

static const PackedTensor& find(const std::vector<PackedTensor>& ts, const char* suffix) {
  for (auto& t : ts)
    if (t.suffix == suffix) return t;
  fail("GPTQ: tensor {} missing", suffix);
}

std::vector<float> dequantize(const std::vector<PackedTensor>& p, int bits) {
  auto& qw = find(p, "qweight");
  auto& sc = find(p, "scales");
  return dequantize(qw.as<int32_t>(), find(p, "qzeros").as<int32_t>(), sc.as<uint16_t>(), find(p, "g_idx").as<int32_t>(),
                    int(qw.shape[1]), int(find(p, "g_idx").shape[0]), bits, int(sc.shape[0]));
}

nlohmann::json quantization_config(int bits, int group_size, bool desc_act, bool sym, double damp_percent) {
  return {{"quant_method", "gptq"},   {"bits", bits},
          {"group_size", group_size}, {"desc_act", desc_act},
          {"sym", sym},               {"damp_percent", damp_percent},
          {"true_sequential", true},  {"static_groups", false},
          {"checkpoint_format", "gptq"}};
}

}  // namespace llmopt::gptq
