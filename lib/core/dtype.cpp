#include "lib/core/dtype.h"

#include <cmath>

#include "lib/core/error.h"

namespace llmopt {
namespace {
struct Info { DType t; std::string_view name; size_t size; bool is_float; };
constexpr Info kInfo[] = {
    {DType::F64, "F64", 8, true},   {DType::F32, "F32", 4, true},         {DType::F16, "F16", 2, true},
    {DType::BF16, "BF16", 2, true}, {DType::I64, "I64", 8, false},        {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false},  {DType::I8, "I8", 1, false},          {DType::U8, "U8", 1, false},
    {DType::BOOL, "BOOL", 1, false}, {DType::F8_E4M3, "F8_E4M3", 1, true}, {DType::F8_E5M2, "F8_E5M2", 1, true},
};
}  // namespace

std::string_view dtype_name(DType t) { return kInfo[int(t)].name; }
size_t dtype_size(DType t) { return kInfo[int(t)].size; }
bool dtype_is_float(DType t) { return kInfo[int(t)].is_float; }
std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (i.name == name) return i.t;
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: value = man * 2^-24
      float f = std::ldexp(float(man), -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00);  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520: inf
  if (a < 0x38800000u) {                                 // below the smallest normal 2^-14: subnormal
    float m = std::fabs(f) * 16777216.0f;                // in units of 2^-24, exact
    return uint16_t(sign | uint16_t(std::nearbyint(m)));  // default rounding mode is to nearest even
  }
  uint32_t exp = (a >> 23) - 112, man = a & 0x7fffffu;
  uint32_t h = (exp << 10) | (man >> 13);
  uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // carries into the exponent correctly
  return uint16_t(sign | h);
}

float f8e4m3_to_f32(uint8_t v) {  // E4M3FN: bias 7, no inf, 0x7f/0xff are NaN
  int sign = v >> 7, exp = (v >> 3) & 0xf, man = v & 7;
  if (exp == 15 && man == 7) return NAN;
  float f = exp == 0 ? std::ldexp(float(man), -9) : std::ldexp(1.0f + man / 8.0f, exp - 7);
  return sign ? -f : f;
}

float f8e5m2_to_f32(uint8_t v) { return f16_to_f32(uint16_t(v) << 8); }

void to_f32(DType t, const void* src, float* dst, size_t n) {
  auto conv = [&](auto* p, auto f) {
    for (size_t i = 0; i < n; ++i) dst[i] = f(p[i]);
  };
  switch (t) {
    case DType::F32: if (n) std::memcpy(dst, src, n * 4); break;  // (an empty tensor may have null pointers)
    case DType::F64: conv(static_cast<const double*>(src), [](double x) { return float(x); }); break;
    case DType::F16: conv(static_cast<const uint16_t*>(src), f16_to_f32); break;
    case DType::BF16: conv(static_cast<const uint16_t*>(src), bf16_to_f32); break;
    case DType::F8_E4M3: conv(static_cast<const uint8_t*>(src), f8e4m3_to_f32); break;
    case DType::F8_E5M2: conv(static_cast<const uint8_t*>(src), f8e5m2_to_f32); break;
    case DType::I64: conv(static_cast<const int64_t*>(src), [](int64_t x) { return float(x); }); break;
    case DType::I32: conv(static_cast<const int32_t*>(src), [](int32_t x) { return float(x); }); break;
    case DType::I16: conv(static_cast<const int16_t*>(src), [](int16_t x) { return float(x); }); break;
    case DType::I8: conv(static_cast<const int8_t*>(src), [](int8_t x) { return float(x); }); break;
    case DType::U8:
    case DType::BOOL: conv(static_cast<const uint8_t*>(src), [](uint8_t x) { return float(x); }); break;
  }
}

void from_f32(DType t, const float* src, void* dst, size_t n) {
  uint16_t* d16 = static_cast<uint16_t*>(dst);
  switch (t) {
    case DType::F32: if (n) std::memcpy(dst, src, n * 4); return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(src[i]);
        std::memcpy(d16 + i, &h, 2);
      }
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(d16 + i, &h, 2);
      }
      return;
    default: fail("cannot store fp32 values as {} (F32, F16 or BF16)", dtype_name(t));
  }
}

}  // namespace llmopt
