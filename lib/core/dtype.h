#pragma once
// Element types of checkpoint tensors, with their safetensors names, sizes and fp32 conversion.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace llmopt {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

std::string_view dtype_name(DType t);                       // "F32", "BF16", ... (safetensors spelling)
std::optional<DType> dtype_from_name(std::string_view name);  // inverse; nullopt if unknown
size_t dtype_size(DType t);                                  // bytes per element
bool dtype_is_float(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {  // round to nearest even; NaN stays NaN
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even, overflow to inf
float f8e4m3_to_f32(uint8_t v);
float f8e5m2_to_f32(uint8_t v);

// Converts n elements of type t at src to fp32 (float types and integers).
void to_f32(DType t, const void* src, float* dst, size_t n);

// The inverse for the dtypes a dense weight is written in: n fp32 values as t (F32, F16 or BF16; Error
// otherwise) into dst (n · dtype_size(t) bytes). Rounds to nearest even.
void from_f32(DType t, const float* src, void* dst, size_t n);

// x rounded to what dtype t stores (F16, BF16; every other dtype leaves x unchanged).
inline float round_to(DType t, float x) {
  if (t == DType::F16) return f16_to_f32(f32_to_f16(x));
  if (t == DType::BF16) return bf16_to_f32(f32_to_bf16(x));
  return x;
}

// Bit widths of the group-quantized weights llmopt computes with: 2, 3, 4 and 8.
inline bool is_supported_quant_bits(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

}  // namespace llmopt
