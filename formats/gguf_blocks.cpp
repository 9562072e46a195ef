// ggml block codecs. Built with -ffp-contract=off (CMakeLists.txt): ggml's reference quantizers compute
// x*id + 8.5f etc. as separate float operations, and the decoders must match numpy's separate multiply and add.
#include "formats/gguf_blocks.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "lib/core/dtype.h"
#include "lib/core/error.h"

namespace llmopt::gguf {

const char* type_name(Type t) {
  switch (t) {
    case Type::F32: return "F32";
    case Type::F16: return "F16";
    case Type::BF16: return "BF16";
    case Type::Q4_0: return "Q4_0";
    case Type::Q4_1: return "Q4_1";
    case Type::Q5_0: return "Q5_0";
    case Type::Q5_1: return "Q5_1";
    case Type::Q8_0: return "Q8_0";
    case Type::Q2_K: return "Q2_K";
    case Type::Q3_K: return "Q3_K";
    case Type::Q4_K: return "Q4_K";
    case Type::Q5_K: return "Q5_K";
    case Type::Q6_K: return "Q6_K";
  }
  return "?";
}

std::optional<Type> type_from_id(uint32_t id) {
  switch (id) {
    case 0: case 1: case 2: case 3: case 6: case 7: case 8: case 10: case 11: case 12: case 13: case 14: case 30:
      return Type(id);
  }
  return std::nullopt;
}

bool is_float_type(Type t) { return t == Type::F32 || t == Type::F16 || t == Type::BF16; }

int64_t block_elems(Type t) {
  if (is_float_type(t)) return 1;
  return t >= Type::Q2_K && t <= Type::Q6_K ? 256 : 32;
}

size_t block_bytes(Type t) {
  switch (t) {
    case Type::F32: return 4;
    case Type::F16: case Type::BF16: return 2;
    case Type::Q4_0: return 18;
    case Type::Q4_1: return 20;
    case Type::Q5_0: return 22;
    case Type::Q5_1: return 24;
    case Type::Q8_0: return 34;
    case Type::Q2_K: return 84;
    case Type::Q3_K: return 110;
    case Type::Q4_K: return 144;
    case Type::Q5_K: return 176;
    case Type::Q6_K: return 210;
  }
  return 0;
}

size_t row_bytes(Type t, int64_t n) {
  if (n % block_elems(t) != 0) fail("GGUF {}: a row of {} elements is not a multiple of {}", type_name(t), n, block_elems(t));
  return size_t(n / block_elems(t)) * block_bytes(t);
}

BlockForm block_form(Type t) {
  switch (t) {
    case Type::Q8_0: return {8, 32, 128, false};
    case Type::Q4_0: return {4, 32, 8, false};
    case Type::Q4_1: return {4, 32, 0, true};
    case Type::Q5_0: return {5, 32, 16, false};
    case Type::Q5_1: return {5, 32, 0, true};
    case Type::Q2_K: return {2, 16, 0, true};
    case Type::Q3_K: return {3, 16, 4, false};
    case Type::Q4_K: return {4, 32, 0, true};
    case Type::Q5_K: return {5, 32, 0, true};
    case Type::Q6_K: return {6, 16, 32, false};
    default: fail("GGUF {} is not a block-quantized type", type_name(t));
  }
}

namespace {
float get_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
void put_f16(uint8_t* p, float v) {
  uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// Q4_0/Q4_1/Q5_0/Q5_1 codes: low nibbles are elements 0..15, high nibbles 16..31, qh the 5th bits.
void nibbles32(const uint8_t* qs, const uint8_t* qh, uint8_t* q) {
  uint32_t h = 0;
  if (qh) std::memcpy(&h, qh, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = uint8_t((qs[j] & 15) | (((h >> j) & 1) << 4));
    q[j + 16] = uint8_t((qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4));
  }
}

// The 2-bit planes of Q2_K/Q3_K: element 128h + 32k + l is (qs[32h + l] >> 2k) & 3.
void planes2(const uint8_t* qs, uint8_t* q) {
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 32; ++l) q[128 * h + 32 * k + l] = (qs[32 * h + l] >> (2 * k)) & 3;
}

// Q4_K/Q5_K: 8 sub-blocks, 6-bit scale and min packed in 12 bytes (get_scale_min_k4).
void k4_scales(const uint8_t* p, float d, float dmin, float* scales, float* mins) {
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    if (j < 4) sc = p[j] & 63, m = p[j + 4] & 63;
    else sc = (p[j + 4] & 15) | ((p[j - 4] >> 6) << 4), m = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
    scales[j] = d * float(sc);
    mins[j] = -(dmin * float(m));
  }
}

// Q4_K/Q5_K low nibbles: element 64c + 32s + l is (qs[32c + l] >> 4s) & 15.
void nibbles256(const uint8_t* qs, uint8_t* q) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) q[64 * c + l] = qs[32 * c + l] & 15, q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
}

void decode_q3_k(const uint8_t* b, uint8_t* q, float* scales) {
  const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
  const float d = get_f16(b + 108);
  planes2(qs, q);
  for (int e = 0; e < 256; ++e) q[e] |= uint8_t(((hmask[e % 32] >> (e / 32)) & 1) << 2);
  for (int i = 0; i < 16; ++i) {
    const int lo = i < 8 ? sc[i] & 15 : sc[i - 8] >> 4, hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
    scales[i] = d * float(int8_t(uint8_t(lo | hi << 4)) - 32);
  }
}

void decode_q6_k(const uint8_t* b, uint8_t* q, float* scales) {
  const uint8_t *ql = b, *qh = b + 128;
  const float d = get_f16(b + 208);
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < 32; ++l) {
        const int lo = (ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15, hi = (qh[32 * h + l] >> (2 * k)) & 3;
        q[128 * h + 32 * k + l] = uint8_t(lo | hi << 4);
      }
  for (int i = 0; i < 16; ++i) scales[i] = d * float(int8_t(b[192 + i]));
}
}  // namespace

void decode_block(Type t, const uint8_t* b, uint8_t* q, float* scales, float* mins) {
  switch (t) {
    case Type::Q8_0:
      scales[0] = get_f16(b);
      for (int j = 0; j < 32; ++j) q[j] = uint8_t(b[2 + j] ^ 0x80);  // int8 + 128
      return;
    case Type::Q4_0: scales[0] = get_f16(b), nibbles32(b + 2, nullptr, q); return;
    case Type::Q4_1: scales[0] = get_f16(b), mins[0] = get_f16(b + 2), nibbles32(b + 4, nullptr, q); return;
    case Type::Q5_0: scales[0] = get_f16(b), nibbles32(b + 6, b + 2, q); return;
    case Type::Q5_1: scales[0] = get_f16(b), mins[0] = get_f16(b + 2), nibbles32(b + 8, b + 4, q); return;
    case Type::Q2_K: {
      const float d = get_f16(b + 80), dmin = get_f16(b + 82);
      for (int s = 0; s < 16; ++s) scales[s] = d * float(b[s] & 15), mins[s] = -(dmin * float(b[s] >> 4));
      planes2(b + 16, q);
      return;
    }
    case Type::Q3_K: decode_q3_k(b, q, scales); return;
    case Type::Q4_K:
      k4_scales(b + 4, get_f16(b), get_f16(b + 2), scales, mins);
      nibbles256(b + 16, q);
      return;
    case Type::Q5_K:
      k4_scales(b + 4, get_f16(b), get_f16(b + 2), scales, mins);
      nibbles256(b + 48, q);
      for (int e = 0; e < 256; ++e) q[e] |= uint8_t(((b[16 + e % 32] >> (e / 32)) & 1) << 4);
      return;
    case Type::Q6_K: decode_q6_k(b, q, scales); return;
    default: block_form(t);  // throws for the float types
  }
}

void dequantize_row(Type t, const void* src, int64_t n, float* y) {
  auto* p = static_cast<const uint8_t*>(src);
  row_bytes(t, n);
  switch (t) {
    case Type::F32: std::memcpy(y, p, size_t(n) * 4); return;
    case Type::F16:
      for (int64_t i = 0; i < n; ++i) y[i] = get_f16(p + 2 * i);
      return;
    case Type::BF16:
      for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(uint16_t(p[2 * i] | p[2 * i + 1] << 8));
      return;
    default: break;
  }
  const BlockForm f = block_form(t);
  const int64_t be = block_elems(t), bb = int64_t(block_bytes(t));
  uint8_t q[256];
  float scales[16], mins[16];
  for (int64_t b = 0; b < n / be; ++b, p += bb, y += be) {
    decode_block(t, p, q, scales, mins);
    for (int64_t j = 0; j < be; ++j) y[j] = float(int(q[j]) - f.zero) * scales[j / f.group];
    if (f.has_min)  // separately: adding a zero min would turn -0 into +0
      for (int64_t j = 0; j < be; ++j) y[j] = y[j] + mins[j / f.group];
  }
}

// ---- encoders (ggml's quantize_row_*_ref) ---------------------------------------------------------------

namespace {
// d = amax/127, q = roundf(x/d) (x*id, id = 1/d).
void q8_0(const float* x, uint8_t* y) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(y, d);
  for (int j = 0; j < 32; ++j) y[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
}

// d = (signed value of largest magnitude) / -8, q = min(15, trunc(x/d + 8.5)).
void q4_0(const float* x, uint8_t* y) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) amax = std::fabs(x[j]), max = x[j];
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(y, d);
  for (int j = 0; j < 16; ++j) {
    const float a = x[j] * id, b = x[16 + j] * id;
    const uint8_t qa = uint8_t(std::min(15, int(int8_t(a + 8.5f))));
    const uint8_t qb = uint8_t(std::min(15, int(int8_t(b + 8.5f))));
    y[2 + j] = uint8_t(qa | (qb << 4));
  }
}

// d = (max - min)/15, m = min, q = min(15, trunc((x - min)/d + 0.5)).
void q4_1(const float* x, uint8_t* y) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(y, d);
  put_f16(y + 2, min);
  for (int j = 0; j < 16; ++j) {
    const float a = (x[j] - min) * id, b = (x[16 + j] - min) * id;
    const uint8_t qa = uint8_t(std::min(15, int(int8_t(a + 0.5f))));
    const uint8_t qb = uint8_t(std::min(15, int(int8_t(b + 0.5f))));
    y[4 + j] = uint8_t(qa | (qb << 4));
  }
}
}  // namespace

void quantize_row(Type t, const float* x, int64_t n, void* dst) {
  auto* y = static_cast<uint8_t*>(dst);
  row_bytes(t, n);
  switch (t) {
    case Type::F32: std::memcpy(y, x, size_t(n) * 4); return;
    case Type::F16:
      for (int64_t i = 0; i < n; ++i) put_f16(y + 2 * i, x[i]);
      return;
    case Type::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(y + 2 * i, &h, 2);
      }
      return;
    case Type::Q8_0:
      for (int64_t b = 0; b < n / 32; ++b) q8_0(x + 32 * b, y + 34 * b);
      return;
    case Type::Q4_0:
      for (int64_t b = 0; b < n / 32; ++b) q4_0(x + 32 * b, y + 18 * b);
      return;
    case Type::Q4_1:
      for (int64_t b = 0; b < n / 32; ++b) q4_1(x + 32 * b, y + 20 * b);
      return;
    default: fail("GGUF: no encoder for {} (the writer produces F32, F16, BF16, Q8_0, Q4_0, Q4_1)", type_name(t));
  }
}

}  // namespace llmopt::gguf
