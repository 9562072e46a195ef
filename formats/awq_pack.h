#pragma once
// AWQ checkpoint layout, GEMM version (AutoAWQ's WQLinear_GEMM, what transformers' AWQ loader reads):
//   qweight int32 [in, out/8]        8 codes of one input row packed along the OUTPUT dimension; nibble j
//                                    (bits 4j..4j+3) of word c holds output column 8c + kOrder[j],
//                                    kOrder = {0, 2, 4, 6, 1, 3, 5, 7}
//   qzeros  int32 [in/group, out/8]  zero points packed the same way (stored as is, no minus one)
//   scales  fp16  [in/group, out]
// Reference dequantization: W[o][i] = (q[i][o] - z[g][o]) * scales[g][o], g = i / group_size.
#include <nlohmann/json.hpp>

#include <vector>

#include "formats/quant_layout.h"

namespace llmopt::awq {

inline constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// Throws Error unless: 4 bits, out % 8 == 0, in % group == 0 (AutoAWQ allocates in // group zero rows),
// and no act-order permutation.
void check_shape(int rows, int cols, int bits, int group_size);

std::vector<PackedTensor> specs(int rows, int cols, int group_size);  // qweight, qzeros, scales
std::vector<PackedTensor> pack(const PackInput& q);                    // same order

std::vector<float> dequantize(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales_f16, int rows,
                              int cols, int group_size);
std::vector<float> dequantize(const std::vector<PackedTensor>& packed, int group_size);

// {"quant_method": "awq", "bits": 4, "group_size", "zero_point": true, "version": "gemm", ...}
nlohmann::json quantization_config(int group_size, const std::vector<std::string>& modules_to_not_convert = {});

}  // namespace llmopt::awq
