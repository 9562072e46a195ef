#pragma once
// ggml tensor types and their block codecs (ggml-common.h layouts; all fields little-endian, fp16 = IEEE half).
// Every quantized block decodes to unsigned codes q plus per-group affine terms:
//   x[j] = (q[j] - zero) * scale[g] + min[g],   g = j / group   (min absent = 0)
// which is also how the blocks load into the one quantized-weight type (lib/backend/cpu/qmatmul.h).
// Layouts, in byte order (n = elements per block):
//   F32, F16, BF16     n = 1         x = value (BF16: the top 16 bits of an fp32)
//   Q8_0  n 32, 34 B   fp16 d, int8 qs[32]                       x = qs[j]*d              (q = qs+128, zero 128)
//   Q4_0  n 32, 18 B   fp16 d, u8 qs[16]                         x[j] = ((qs[j]&15) - 8)*d, x[j+16] = ((qs[j]>>4) - 8)*d
//   Q4_1  n 32, 20 B   fp16 d, fp16 m, u8 qs[16]                 x[j] = (qs[j]&15)*d + m,   x[j+16] = (qs[j]>>4)*d + m
//   Q5_0  n 32, 22 B   fp16 d, u32 qh, u8 qs[16]                 q[j] = lo nibble | bit j of qh << 4, q[j+16] = hi
//                                                                nibble | bit j+16 of qh << 4;  x = (q - 16)*d
//   Q5_1  n 32, 24 B   fp16 d, fp16 m, u32 qh, u8 qs[16]         q as Q5_0;  x = q*d + m
// K-quants: super-blocks of 256 with sub-block scales.
//   Q2_K  84 B   u8 scales[16], u8 qs[64], fp16 d, fp16 dmin.  Sub-block s (16 elements) has scale
//                d*(scales[s]&15) and min -dmin*(scales[s]>>4).  Element e = 128h + 32k + l (h<2, k<4, l<32):
//                q = (qs[32h + l] >> 2k) & 3;  x = q*scale + min.
//   Q3_K  110 B  u8 hmask[32], u8 qs[64], u8 scales[12], fp16 d.  16 sub-blocks of 16 with 6-bit scales:
//                sc[i] = low 4 bits (i<8: scales[i]&15, else scales[i-8]>>4) | ((scales[8 + i%4] >> 2(i/4)) & 3) << 4;
//                scale = d*(sc - 32).  Element e = 128h + 32k + l: low 2 bits as Q2_K, high bit = bit (4h+k)
//                of hmask[l];  x = (q - 4)*scale  (q = low | high << 2).
//   Q4_K  144 B  fp16 d, fp16 dmin, u8 scales[12], u8 qs[128].  8 sub-blocks of 32, 6-bit scale/min pairs
//                (j<4: sc = scales[j]&63, m = scales[j+4]&63; j>=4: sc = (scales[j+4]&15) | (scales[j-4]>>6)<<4,
//                m = (scales[j+4]>>4) | (scales[j]>>6)<<4);  scale = d*sc, min = -dmin*m.
//                Element e = 64c + 32s + l (c<4, s<2): q = (qs[32c + l] >> 4s) & 15;  x = q*scale + min.
//   Q5_K  176 B  fp16 d, fp16 dmin, u8 scales[12], u8 qh[32], u8 qs[128].  As Q4_K plus a 5th bit: bit k of
//                qh[l] for element e = 32k + l.
//   Q6_K  210 B  u8 ql[128], u8 qh[64], int8 scales[16], fp16 d.  Element e = 128h + 32k + l (h<2, k<4, l<32):
//                low 4 bits (ql[64h + 32(k&1) + l] >> 4(k>>1)) & 15, high 2 bits (qh[32h + l] >> 2k) & 3;
//                scale = d*scales[e/16];  x = (q - 32)*scale.
// dequantize_row reproduces gguf-py's gguf.quants.dequantize bit for bit (same float operations in the same
// order; the file is compiled without FMA contraction).
#include <cstdint>
#include <optional>

namespace llmopt::gguf {

enum class Type : uint32_t {  // ggml_type values
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30
};

const char* type_name(Type t);                    // "F32", "Q4_K", ...
std::optional<Type> type_from_id(uint32_t id);    // nullopt for types this reader does not know
int64_t block_elems(Type t);                      // 1, 32 or 256
size_t block_bytes(Type t);                       // bytes of one block
size_t row_bytes(Type t, int64_t n);              // Error if n is not a multiple of the block
bool is_float_type(Type t);                       // F32, F16, BF16

// The decoded form of a quantized type's blocks (see the top of this file).
struct BlockForm {
  int bits = 0;       // code width: 2..8
  int group = 0;      // elements per scale: 16 or 32
  int zero = 0;       // the zero code
  bool has_min = false;
};
BlockForm block_form(Type t);  // Error for F32/F16/BF16
// One block of a quantized type: codes[block_elems], scales and mins[block_elems / group] (mins untouched
// when the type has none).
void decode_block(Type t, const uint8_t* blk, uint8_t* codes, float* scales, float* mins);

// ggml's reference encoders (quantize_row_q*_ref: same d/m, same rounding, bit for bit) for the types the
// writer produces: F32, F16, BF16, Q8_0, Q4_0, Q4_1 (Error for the others).
void quantize_row(Type t, const float* x, int64_t n, void* dst);
// Any type: n elements (a multiple of the block) at src to fp32.
void dequantize_row(Type t, const void* src, int64_t n, float* y);

}  // namespace llmopt::gguf
