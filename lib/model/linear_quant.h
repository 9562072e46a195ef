#pragma once
// Quantized linears read from a checkpoint. Every format is converted at load time into ONE canonical
// in-memory form (QuantWeight below = the layout documented in lib/backend/cpu/qmatmul.h: unsigned codes
// packed per row in 2/4/8-bit cells, group column ranges, fp32 scales, integer zero points, optional
// act-order column permutation), so there is one kernel (backend::matmul_quant) and each format is only a
// loader:
//   gptq                qweight / qzeros / scales / g_idx    (quant_method "gptq", v1 zero−1 convention or
//                                                             checkpoint_format "gptq_v2"; act-order → perm)
//   awq                 qweight / qzeros / scales             (quant_method "awq", GEMM packing)
//   compressed-tensors  weight_packed / weight_scale [/ weight_zero_point] / weight_shape  (pack-quantized)
//                       weight int8 / weight_scale [/ weight_zero_point]  (int-quantized; W8A8 when the
//                       scheme's input_activations are dynamic 8-bit int, else weight-only int8)
//   gguf                Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K blocks (from_gguf): each block's codes as they
//                       are, one group per (sub-)block scale (16 or 32 columns), the block's zero code, and
//                       Q4_1/Q5_1/Q2_K/Q4_K/Q5_K's minimums as `mins`; dequantizes bit for bit as ggml/gguf-py
// The formats' own dequantizers (formats/*.h) are the references the tests hold the loaders to.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/gguf_read.h"
#include "formats/safetensors.h"
#include "lib/backend/cpu/qmatmul.h"
#include "lib/model/linear.h"

namespace llmopt::model {

struct QuantWeight {
  std::string format;  // "gptq", "awq", "compressed-tensors" (messages, inspect)
  int bits = 4;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;   // [rows, row_bytes], stored column order
  std::vector<int64_t> groups;  // [n_groups + 1] stored-column ranges
  std::vector<float> scales;    // [rows, n_groups]
  std::vector<uint8_t> zeros;   // [rows, n_groups]
  std::vector<float> mins;      // [rows, n_groups] or empty (none): W = (q - zero)*scale + min
  std::vector<int32_t> perm;    // [cols] or empty (identity)
  bool int8_activations = false;

  int64_t n_groups() const { return int64_t(groups.size()) - 1; }
  backend::QuantMatrix matrix() const;
  std::vector<float> dequantize() const;  // fp32 [rows, cols], input column order

  // From unpacked codes [rows, cols] (input column order, each < 2^bits), the group of each input column
  // (g_idx, values in [0, n_groups)), scales and zeros [rows, n_groups]. Columns are stored sorted by group
  // (stable), so a permuted g_idx becomes perm and every group one contiguous range.
  static QuantWeight from_codes(std::string format, int bits, int64_t rows, int64_t cols, const uint8_t* codes,
                                const int32_t* g_idx, int64_t n_groups, std::vector<float> scales,
                                std::vector<uint8_t> zeros);

  // A GGUF block-quantized tensor [rows, cols] in its blocks; with permuted_heads > 0 its rows are taken in HF
  // order (row r from GGUF row gguf::rope_gguf_row(r, rows, permuted_heads)). Error for the float types.
  static QuantWeight from_gguf(const gguf::TensorInfo& t, int permuted_heads = 0);
};

// The linear `prefix` (e.g. "model.layers.0.mlp.up_proj") of a checkpoint whose config.json has
// `quantization_config`, in the canonical form; nullopt when that linear is stored as a plain float
// ".weight" (a module the quantizer ignored, e.g. lm_head). Errors name the tensor and what is wrong.
std::optional<Linear> load_quantized_linear(const st::TensorSet& ts, const nlohmann::json& quantization_config,
                                            const std::string& prefix);

// How one linear is stored, from the tensor headers only (for `llmopt inspect`).
struct LinearStorage {
  std::string name;    // prefix
  std::string format;  // "BF16", "gptq int4 g128", "gptq int4 g128 act-order", "awq int4 g128",
                       // "compressed-tensors int4 g32 asym", "w8a8 int8", ...
  int64_t rows = 0, cols = 0;
  int64_t bytes = 0;   // the weight's tensors (biases excluded)
};
LinearStorage describe_linear(const st::TensorSet& ts, const nlohmann::json& quantization_config,
                              const std::string& prefix);

}  // namespace llmopt::model
