#include "formats/awq_pack.h"

namespace llmopt::awq {

void check_shape(int rows, int cols, int bits, int group_size) {
  if (bits != 4) fail("AWQ format: only 4-bit weights can be packed (got {} bits)", bits);
  if (rows % 8 != 0) fail("AWQ format: out_features {} is not a multiple of 8", rows);
  if (group_size <= 0 || cols % group_size != 0)
    fail("AWQ format: in_features {} is not a multiple of the group size {}", cols, group_size);
}

std::vector<PackedTensor> specs(int rows, int cols, int group_size) {
  check_shape(rows, cols, 4, group_size);
  const int64_t ng = cols / group_size;
  return {{"qweight", DType::I32, {cols, rows / 8}, {}},
          {"qzeros", DType::I32, {ng, rows / 8}, {}},
          {"scales", DType::F16, {ng, rows}, {}}};
}

// Packs v[8c + kOrder[j]] into nibble j of word c, for c < n/8.
static void pack_row(const uint32_t* v, int n, uint32_t* words) {
  for (int c = 0; c < n / 8; ++c) {
    uint32_t w = 0;
    for (int j = 0; j < 8; ++j) w |= (v[8 * c + kOrder[j]] & 15u) << (4 * j);
    words[c] = w;
  }
}

std::vector<PackedTensor> pack(const PackInput& q) {
  check_pack_input(q, "AWQ pack");
  const int gs = q.group_len();
  check_shape(q.rows, q.cols, q.bits, gs);
  if (q.g_idx)
    for (int c = 0; c < q.cols; ++c)
      if (q.g_idx[c] != c / gs) fail("AWQ format: act-order (a permuted g_idx) cannot be stored");
  auto out = specs(q.rows, q.cols, gs);
  for (auto& t : out) t.data.assign(size_t(t.numel()) * dtype_size(t.dtype), std::byte{0});
  const int rows = q.rows, cols = q.cols, ng = q.n_groups();
  auto* qw = reinterpret_cast<uint32_t*>(out[0].data.data());
  auto* qz = reinterpret_cast<uint32_t*>(out[1].data.data());
  auto* sc = reinterpret_cast<uint16_t*>(out[2].data.data());
  std::vector<uint32_t> v(rows);
  for (int i = 0; i < cols; ++i) {  // one input row: the codes of every output column
    for (int o = 0; o < rows; ++o) v[o] = q.codes[size_t(o) * cols + i];
    pack_row(v.data(), rows, qw + size_t(i) * (rows / 8));
  }
  for (int g = 0; g < ng; ++g) {
    for (int o = 0; o < rows; ++o) v[o] = uint32_t(q.zeros[size_t(o) * ng + g]);
    pack_row(v.data(), rows, qz + size_t(g) * (rows / 8));
    for (int o = 0; o < rows; ++o) sc[size_t(g) * rows + o] = f32_to_f16(q.scales[size_t(o) * ng + g]);
  }
  return out;
}

std::vector<float> dequantize(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales_f16, int rows,
                              int cols, int group_size) {
  check_shape(rows, cols, 4, group_size);
  auto nib = [&](const int32_t* words, int r, int o) {  // value of output column o in packed row r
    const int c = o / 8, k = o % 8;
    int j = 0;
    while (kOrder[j] != k) ++j;
    return int((uint32_t(words[size_t(r) * (rows / 8) + c]) >> (4 * j)) & 15u);
  };
  std::vector<float> w(size_t(rows) * cols);
  for (int o = 0; o < rows; ++o)
    for (int i = 0; i < cols; ++i) {
      const int g = i / group_size;
      w[size_t(o) * cols + i] = float(nib(qweight, i, o) - nib(qzeros, g, o)) * f16_to_f32(scales_f16[size_t(g) * rows + o]);
    }
  return w;
}

std::vector<float> dequantize(const std::vector<PackedTensor>& p, int group_size) {
  const PackedTensor *qw = nullptr, *qz = nullptr, *sc = nullptr;
  for (auto& t : p) {
    if (t.suffix == "qweight") qw = &t;
    if (t.suffix == "qzeros") qz = &t;
    if (t.suffix == "scales") sc = &t;
  }
  if (!qw || !qz || !sc) fail("AWQ: qweight, qzeros or scales missing");
  return dequantize(qw->as<int32_t>(), qz->as<int32_t>(), sc->as<uint16_t>(), int(sc->shape[1]), int(qw->shape[0]),
                    group_size);
}

nlohmann::json quantization_config(int group_size, const std::vector<std::string>& modules_to_not_convert) {
  nlohmann::json j = {{"quant_method", "awq"}, {"bits", 4},         {"group_size", group_size},
                      {"zero_point", true},    {"version", "gemm"}, {"modules_to_not_convert", nullptr}};
  if (!modules_to_not_convert.empty()) j["modules_to_not_convert"] = modules_to_not_convert;
  return j;
}

}  // namespace llmopt::awq
