#pragma once
// GPTQ checkpoint layout (AutoGPTQ / GPTQModel "gptq" v1 format, what transformers' GPTQ loader reads):
//   qweight int32 [in*bits/32, out]  codes packed along the INPUT dimension, value k of a column at bits
//                                    [k*bits, (k+1)*bits) of the column's word stream (3-bit crosses words)
//   qzeros  int32 [n_groups, out*bits/32]  zero points packed the same way along the output dimension,
//                                    stored as (zero - 1) mod 2^bits (the v1 convention; readers add 1)
//   scales  fp16  [n_groups, out]
//   g_idx   int32 [in]               group of each input column (non-monotone with act-order)
// Reference dequantization: W[o][i] = scales[g][o] * (q[i][o] - (qzeros[g][o] + 1)), g = g_idx[i].
#include <nlohmann/json.hpp>

#include <vector>

#include "formats/quant_layout.h"

namespace llmopt::gptq {

// Throws Error unless bits is 2, 3, 4 or 8 and in/out features are multiples of 32 (the buffer shapes
// AutoGPTQ's QuantLinear allocates: in // 32 * bits rows, out // 32 * bits zero columns).
void check_shape(int rows, int cols, int bits);

// qweight, qzeros, scales, g_idx: names, dtypes and shapes (no data).
std::vector<PackedTensor> specs(int rows, int cols, int bits, int group_size);

// The four tensors, in the order of specs().
std::vector<PackedTensor> pack(const PackInput& q);

// fp32 [out, in] from the packed tensors, by the reference formula above (scales widened to fp32).
std::vector<float> dequantize(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales_f16,
                              const int32_t* g_idx, int rows, int cols, int bits, int n_groups);
std::vector<float> dequantize(const std::vector<PackedTensor>& packed, int bits);

// config.json "quantization_config". checkpoint_format "gptq" = the v1 zero-minus-one convention above.
nlohmann::json quantization_config(int bits, int group_size, bool desc_act, bool sym, double damp_percent = 0.01);

}  // namespace llmopt::gptq
