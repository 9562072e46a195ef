#include "formats/compressed_tensors.h"

namespace llmopt::ct {

static void check_scale_dtype(DType t) {
  if (t != DType::F32 && t != DType::F16 && t != DType::BF16)
    fail("compressed-tensors: scales must be F32, F16 or BF16, not {}", dtype_name(t));
}

std::vector<PackedTensor> int8_specs(int rows, int cols, DType scale_dtype) {
  check_scale_dtype(scale_dtype);
  return {{"weight", DType::I8, {rows, cols}, {}}, {"weight_scale", scale_dtype, {rows, 1}, {}}};
}

std::vector<PackedTensor> pack_int8(const PackInput& q, DType scale_dtype) {
  check_pack_input(q, "compressed-tensors int8");
  if (q.bits != 8 || !q.sym || q.n_groups() != 1)
    fail("compressed-tensors int-quantized: needs 8-bit symmetric per-channel weights (got {} bits, {}, {} groups)",
         q.bits, q.sym ? "sym" : "asym", q.n_groups());
  auto out = int8_specs(q.rows, q.cols, scale_dtype);
  auto& w = out[0].data;
  w.resize(size_t(q.rows) * q.cols);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::byte(uint8_t(int8_t(int(q.codes[i]) - 128)));
  out[1].data = scales_as(scale_dtype, q.scales, size_t(q.rows));
  return out;
}

static bool per_channel(int cols, int group_size) { return group_size <= 0 || group_size >= cols; }

std::vector<PackedTensor> packed_specs(int rows, int cols, int bits, int group_size, bool sym, DType scale_dtype) {
  check_scale_dtype(scale_dtype);
  if (bits < 1 || bits > 8) fail("compressed-tensors pack-quantized: {} bits is not supported (1..8)", bits);
  if (!per_channel(cols, group_size) && cols % group_size != 0)
    fail("compressed-tensors pack-quantized: in_features {} is not a multiple of the group size {}", cols, group_size);
  const int64_t ng = per_channel(cols, group_size) ? 1 : cols / group_size;
  std::vector<PackedTensor> out = {{"weight_packed", DType::I32, {rows, (int64_t(cols) * bits + 31) / 32}, {}},
                                   {"weight_scale", scale_dtype, {rows, ng}, {}}};
  if (!sym) out.push_back({"weight_zero_point", DType::I32, {(int64_t(rows) * bits + 31) / 32, ng}, {}});
  out.push_back({"weight_shape", DType::I64, {2}, {}});
  return out;
}

std::vector<PackedTensor> pack_packed(const PackInput& q, DType scale_dtype) {
  check_pack_input(q, "compressed-tensors pack-quantized");
  if (q.g_idx)
    for (int c = 0; c < q.cols; ++c)
      if (q.g_idx[c] != c / q.group_len()) fail("compressed-tensors pack-quantized: act-order g_idx is not supported");
  auto out = packed_specs(q.rows, q.cols, q.bits, q.group_size, q.sym, scale_dtype);
  const int ng = q.n_groups();
  auto& wp = out[0];
  wp.data.assign(size_t(wp.numel()) * 4, std::byte{0});
  const int64_t nw = wp.shape[1];
  auto* words = reinterpret_cast<uint32_t*>(wp.data.data());
  for (int r = 0; r < q.rows; ++r)
    for (int c = 0; c < q.cols; ++c) put_bits(words + r * nw, c, q.bits, q.codes[size_t(r) * q.cols + c]);
  out[1].data = scales_as(scale_dtype, q.scales, size_t(q.rows) * ng);
  size_t k = 2;
  if (!q.sym) {
    auto& zp = out[k++];
    zp.data.assign(size_t(zp.numel()) * 4, std::byte{0});
    // packed along dim 0: the stream of group g runs down the output rows; word (w, g) at w * ng + g
    std::vector<uint32_t> col(zp.shape[0]);
    auto* z = reinterpret_cast<uint32_t*>(zp.data.data());
    for (int g = 0; g < ng; ++g) {
      std::fill(col.begin(), col.end(), 0u);
      for (int r = 0; r < q.rows; ++r) put_bits(col.data(), r, q.bits, uint32_t(q.zeros[size_t(r) * ng + g]));
      for (size_t w = 0; w < col.size(); ++w) z[w * ng + g] = col[w];
    }
  }
  int64_t shape[2] = {q.rows, q.cols};
  out[k].data.resize(16);
  std::memcpy(out[k].data.data(), shape, 16);
  return out;
}

static const PackedTensor* find(const std::vector<PackedTensor>& ts, const char* suffix) {
  for (auto& t : ts)
    if (t.suffix == suffix) return &t;
  return nullptr;
}

static float scale_at(const PackedTensor& s, size_t i) {
  float f;
  to_f32(s.dtype, s.data.data() + i * dtype_size(s.dtype), &f, 1);
  return f;
}

std::vector<float> dequantize(const std::vector<PackedTensor>& p, int bits, int group_size) {
  const PackedTensor* sc = find(p, "weight_scale");
  if (!sc) fail("compressed-tensors: weight_scale missing");
  if (auto* w = find(p, "weight")) {  // int-quantized
    const int64_t rows = w->shape[0], cols = w->shape[1];
    std::vector<float> out(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        out[r * cols + c] = float(w->as<int8_t>()[r * cols + c]) * scale_at(*sc, size_t(r));
    return out;
  }
  const PackedTensor* wp = find(p, "weight_packed");
  const PackedTensor* shp = find(p, "weight_shape");
  if (!wp || !shp) fail("compressed-tensors: weight_packed or weight_shape missing");
  const int64_t rows = shp->as<int64_t>()[0], cols = shp->as<int64_t>()[1], ng = sc->shape[1];
  const int64_t gs = ng == 1 ? cols : group_size;
  const PackedTensor* zp = find(p, "weight_zero_point");
  const int half = 1 << (bits - 1);
  std::vector<uint32_t> zcol;
  std::vector<float> out(size_t(rows * cols));
  auto* words = reinterpret_cast<const uint32_t*>(wp->data.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t g = c / gs;
      int z = half;
      if (zp) {
        zcol.resize(zp->shape[0]);
        for (int64_t w = 0; w < zp->shape[0]; ++w) zcol[w] = zp->as<uint32_t>()[w * ng + g];
        z = int(get_bits(zcol.data(), r, bits));
      }
      const int v = int(get_bits(words + r * wp->shape[1], c, bits));
      out[r * cols + c] = float(v - z) * scale_at(*sc, size_t(r * ng + g));
    }
  return out;
}

static nlohmann::json config(const char* format, nlohmann::json weights, nlohmann::json input_activations,
                             const std::vector<std::string>& ignore) {
  nlohmann::json group = {{"targets", {"Linear"}},
                          {"weights", std::move(weights)},
                          {"input_activations", std::move(input_activations)},
                          {"output_activations", nullptr},
                          {"format", format}};
  return {{"quant_method", "compressed-tensors"},
          {"format", format},
          {"quantization_status", "compressed"},
          {"version", kVersion},
          {"config_groups", {{"group_0", group}}},
          {"ignore", ignore},
          {"kv_cache_scheme", nullptr},
          {"global_compression_ratio", nullptr},
          {"sparsity_config", nlohmann::json::object()},
          {"transform_config", nlohmann::json::object()}};
}

static nlohmann::json int_args(int bits, bool sym, const char* strategy, nlohmann::json group_size, bool dynamic) {
  return {{"num_bits", bits},     {"type", "int"},           {"symmetric", sym},
          {"strategy", strategy}, {"group_size", group_size}, {"dynamic", dynamic}};
}

nlohmann::json quantization_config_w8a8(const std::vector<std::string>& ignore) {
  return config("int-quantized", int_args(8, true, "channel", nullptr, false), int_args(8, true, "token", nullptr, true),
                ignore);
}

nlohmann::json quantization_config_packed(int bits, int group_size, bool sym, const std::vector<std::string>& ignore) {
  const bool channel = group_size <= 0;
  return config("pack-quantized",
                int_args(bits, sym, channel ? "channel" : "group",
                         channel ? nlohmann::json(nullptr) : nlohmann::json(group_size), false),
                nullptr, ignore);
}

}  // namespace llmopt::ct
