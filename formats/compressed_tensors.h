#pragma once
// compressed-tensors checkpoint layouts (what llm-compressor writes and vLLM / transformers read), as
// defined by the `compressed-tensors` package (0.20: compressors/naive_quantized, compressors/pack_quantized):
// (a) "int-quantized" (W8A8): weight int8 [out, in] = code - 128, weight_scale [out, 1]; activations are
//     quantized per token at run time (config only).
// (b) "pack-quantized" (W4A16 and friends): weight_packed int32 [out, ceil(in*bits/32)], each row a dense
//     little-endian bit stream of (code) = signed value + 2^(bits-1), padded with zero bits;
//     weight_scale [out, n_groups]; weight_zero_point int32 [ceil(out*bits/32), n_groups] (asymmetric only)
//     packed the same way along the OUTPUT dimension; weight_shape int64 [2] = {out, in}.
// Dequantization (their `dequantize`): (q - zp) * scale with q, zp signed; group g = i / group_size.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "formats/quant_layout.h"

namespace llmopt::ct {

inline const char* kVersion = "0.20.0";  // the compressed-tensors release whose layout this matches

// (a) W8A8: bits 8, symmetric, one group per row (per-channel). scale_dtype: F32, F16 or BF16 (the model's).
std::vector<PackedTensor> int8_specs(int rows, int cols, DType scale_dtype);  // weight, weight_scale
std::vector<PackedTensor> pack_int8(const PackInput& q, DType scale_dtype);

// (b) pack-quantized: bits 1..8, per-channel (group_size <= 0 or >= in) or groups dividing in_features.
std::vector<PackedTensor> packed_specs(int rows, int cols, int bits, int group_size, bool sym, DType scale_dtype);
std::vector<PackedTensor> pack_packed(const PackInput& q, DType scale_dtype);

// fp32 [out, in] from either layout's tensors (found by suffix).
std::vector<float> dequantize(const std::vector<PackedTensor>& packed, int bits, int group_size);

// config.json "quantization_config" as llm-compressor writes it (config_groups.group_0 targets ["Linear"]).
nlohmann::json quantization_config_w8a8(const std::vector<std::string>& ignore = {"lm_head"});
nlohmann::json quantization_config_packed(int bits, int group_size, bool sym,
                                          const std::vector<std::string>& ignore = {"lm_head"});

}  // namespace llmopt::ct
