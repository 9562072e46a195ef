#pragma once
// The op set the forward pass is written against. Activations are fp32, row-major, in host memory;
// weights stay in their stored dtype. backend/cpu implements every op with Eigen + the thread pool.
// A CUDA backend implements the same signatures over device pointers.
#include <cstdint>
#include <span>

#include "lib/core/dtype.h"

namespace llmopt::backend {

// ---- matmul, one entry per linear kind -----------------------------------------------------------
// A dense weight [rows, cols] row-major in its stored dtype (F32, BF16 or F16).
struct DenseMatrix {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
};

// y[n, rows] = x[n, cols] · Wᵀ (+ bias[rows] when non-null). W is streamed once for all n rows.
void matmul_dense(const DenseMatrix& w, const float* bias, const float* x, int64_t n, float* y);

// Converts row `r` of w to fp32 (embedding lookup).
void dense_row(const DenseMatrix& w, int64_t r, float* out);

// ---- elementwise / normalisation -----------------------------------------------------------------
// y[i] = x[i] / sqrt(mean(x[i]²) + eps) ⊙ w over n rows of d; y may alias x.
void rmsnorm(const float* x, const float* w, int64_t n, int64_t d, float eps, float* y);

// RoPE, rotate_half pairing (element j with j + D/2), in place on n rows of `heads` heads of
// head_dim D each (row stride `row_stride` floats). Row i is at position pos[i]; inv_freq has D/2 entries.
void rope(float* x, int64_t n, int64_t heads, int64_t head_dim, int64_t row_stride, const int64_t* pos,
          const float* inv_freq);

// out[n, d] = silu(gate) ⊙ up; gate/up rows have stride `in_stride`, out rows are dense.
void swiglu(const float* gate, const float* up, int64_t n, int64_t d, int64_t in_stride, float* out);

// ---- attention ------------------------------------------------------------------------------------
// Keys/values of one sequence, as fixed-size blocks of tokens (a contiguous cache is one block).
// Token t lives at k[t / block_size] + (t % block_size) * row_stride; a row holds kv_heads·head_dim floats.
struct KVBlocks {
  const float* const* k = nullptr;
  const float* const* v = nullptr;
  int64_t block_size = 0;
  int64_t row_stride = 0;
};

// One sequence's queries in a (ragged) batch: n query rows at positions pos0 .. pos0+n-1; query i
// attends causally to cached tokens [0, pos0 + i]. q/out rows are heads·head_dim floats with stride
// q_stride / out_stride.
struct AttnSeq {
  const float* q = nullptr;
  float* out = nullptr;
  int64_t n = 0, pos0 = 0;
  KVBlocks kv;
};

// Causal softmax(q·kᵀ·scale)·v for every sequence; query head h reads kv head h / (heads / kv_heads)
// (GQA without copying). Covers prefill (n > 1) and decode (n = 1) alike.
void attention(std::span<const AttnSeq> seqs, int64_t heads, int64_t kv_heads, int64_t head_dim,
               int64_t q_stride, int64_t out_stride, float scale);

}  // namespace llmopt::backend
