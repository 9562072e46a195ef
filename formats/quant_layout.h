#pragma once
// What the packers of quantized linears (GPTQ, AWQ, compressed-tensors) take and give.
// Input: a quantized weight W [rows = out_features, cols = in_features] as unsigned integer codes with
// per-(row, group) scales and unsigned zero points:  W[r][c] = (codes[r][c] - zeros[r][g]) * scales[r][g],
// g = g_idx ? g_idx[c] : c / group_size. Symmetric quantization is the case zeros == 2^(bits-1).
// Output: named tensors ("qweight", "scales", ...) with their safetensors dtype, shape and bytes, to be
// stored under the linear's prefix ("model.layers.0.self_attn.q_proj." + suffix).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lib/core/dtype.h"
#include "lib/core/error.h"

namespace llmopt {

struct PackInput {
  int rows = 0, cols = 0;     // out_features, in_features
  int bits = 4;
  int group_size = 128;       // <= 0 or >= cols: one group per row (per-channel)
  bool sym = false;
  const uint8_t* codes = nullptr;   // [rows, cols], each < 2^bits
  const float* scales = nullptr;    // [rows, n_groups()]
  const int32_t* zeros = nullptr;   // [rows, n_groups()], each in [0, 2^bits); 2^(bits-1) everywhere when sym
  const int32_t* g_idx = nullptr;   // [cols] group of each input column (act-order); nullptr: c / group_size

  int group_len() const { return group_size <= 0 || group_size >= cols ? cols : group_size; }
  int n_groups() const { return (cols + group_len() - 1) / group_len(); }  // the last group may be ragged
  int group_of(int c) const { return g_idx ? g_idx[c] : c / group_len(); }
};

// One output tensor. `data` is empty for a spec (names, dtypes and shapes known before quantization, so a
// streaming safetensors writer can declare every tensor first).
struct PackedTensor {
  std::string suffix;
  DType dtype = DType::I32;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;

  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  template <typename T> const T* as() const { return reinterpret_cast<const T*>(data.data()); }
};

// Throws Error naming `what` when codes, zeros or group indices are out of range.
inline void check_pack_input(const PackInput& q, const std::string& what) {
  if (q.rows <= 0 || q.cols <= 0) fail("{}: empty weight {}x{}", what, q.rows, q.cols);
  if (q.bits < 1 || q.bits > 8) fail("{}: {} bits is not supported", what, q.bits);
  if (!q.codes || !q.scales || !q.zeros) fail("{}: missing codes, scales or zeros", what);
  const int maxq = (1 << q.bits) - 1, ng = q.n_groups();
  for (int64_t i = 0, n = int64_t(q.rows) * q.cols; i < n; ++i)
    if (q.codes[i] > maxq) fail("{}: code {} at {} does not fit {} bits", what, q.codes[i], i, q.bits);
  for (int64_t i = 0, n = int64_t(q.rows) * ng; i < n; ++i) {
    if (q.zeros[i] < 0 || q.zeros[i] > maxq) fail("{}: zero point {} does not fit {} bits", what, q.zeros[i], q.bits);
    if (q.sym && q.zeros[i] != 1 << (q.bits - 1))
      fail("{}: symmetric quantization needs zero point {}, got {}", what, 1 << (q.bits - 1), q.zeros[i]);
  }
  if (q.g_idx)
    for (int c = 0; c < q.cols; ++c)
      if (q.g_idx[c] < 0 || q.g_idx[c] >= ng) fail("{}: g_idx[{}] = {} outside [0, {})", what, c, q.g_idx[c], ng);
}

// The weight the codes stand for, [rows, cols] fp32. With f16_scales the scales are first rounded to fp16,
// as GPTQ and AWQ checkpoints store them.
inline std::vector<float> dequantize_codes(const PackInput& q, bool f16_scales = false) {
  std::vector<float> w(size_t(q.rows) * q.cols);
  const int ng = q.n_groups();
  for (int r = 0; r < q.rows; ++r)
    for (int c = 0; c < q.cols; ++c) {
      const int g = q.group_of(c);
      float s = q.scales[size_t(r) * ng + g];
      if (f16_scales) s = f16_to_f32(f32_to_f16(s));
      w[size_t(r) * q.cols + c] = float(int(q.codes[size_t(r) * q.cols + c]) - q.zeros[size_t(r) * ng + g]) * s;
    }
  return w;
}

// Dense little-endian bit stream: value k of a run occupies bits [k*bits, (k+1)*bits) of consecutive uint32
// words (low bits first, crossing word boundaries when 32 % bits != 0). GPTQ (incl. its 3-bit layout) and
// compressed-tensors' pack_to_int32 both pack this way.
inline void put_bits(uint32_t* words, int64_t k, int bits, uint32_t v) {
  const int64_t bit = k * bits;
  const int64_t w = bit >> 5;
  const int off = int(bit & 31);
  words[w] |= v << off;
  if (off + bits > 32) words[w + 1] |= v >> (32 - off);
}
inline uint32_t get_bits(const uint32_t* words, int64_t k, int bits) {
  const int64_t bit = k * bits;
  const int64_t w = bit >> 5;
  const int off = int(bit & 31);
  uint64_t v = words[w] >> off;
  if (off + bits > 32) v |= uint64_t(words[w + 1]) << (32 - off);
  return uint32_t(v) & ((1u << bits) - 1);
}

// Scales converted to a float dtype (F32, F16 or BF16) as raw bytes.
inline std::vector<std::byte> scales_as(DType t, const float* s, size_t n) {
  std::vector<std::byte> out(n * dtype_size(t));
  for (size_t i = 0; i < n; ++i) {
    if (t == DType::F32) std::memcpy(&out[i * 4], &s[i], 4);
    else {
      uint16_t h = t == DType::F16 ? f32_to_f16(s[i]) : f32_to_bf16(s[i]);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

// FNV-1a 64 of raw bytes: what the golden references record for files and dequantized tensors.
inline uint64_t fnv1a64(const void* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace llmopt
