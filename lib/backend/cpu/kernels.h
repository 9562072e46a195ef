#pragma once
// The CPU backend's kernels on raw host pointers (lib/backend/cpu/*.cpp). Everything above lib/backend
// calls them through the Backend interface (lib/backend/backend.h); tests call them directly.
// Activations are fp32 row-major; weights stay in their stored dtype.
#include <cstdint>

#include "lib/backend/backend.h"
#include "lib/core/dtype.h"

namespace llmopt::backend {

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

// y[i] = x[i] / sqrt(mean(x[i]²) + eps) ⊙ w over n rows of d; y may alias x.
void rmsnorm(const float* x, const float* w, int64_t n, int64_t d, float eps, float* y);

// RoPE, rotate_half pairing (element j with j + rot_dim/2 of the rotated slice), in place on n rows of
// `heads` heads; head h of row i starts at x + i·row_stride + h·head_stride, and dims
// [rot_offset, rot_offset + rot_dim) of it are rotated. Row i is at position pos[i]; inv_freq has rot_dim/2.
void rope(float* x, int64_t n, int64_t heads, int64_t head_stride, int64_t rot_offset, int64_t rot_dim,
          int64_t row_stride, const int64_t* pos, const float* inv_freq);

// out[n, d] = silu(gate) ⊙ up; gate/up rows have stride `in_stride`, out rows are dense.
void swiglu(const float* gate, const float* up, int64_t n, int64_t d, int64_t in_stride, float* out);

// Paged causal attention (see Backend::attention). Per-thread scratch is sized on first use for at least
// reserve_attention_scratch()'s sequence length and width, and grows geometrically past it.
void reserve_attention_scratch(int64_t max_seq_len, int64_t max_width);
void attention(const AttentionBatch& batch, const Tensor& q, const KVLayer& kv, const AttnDims& dims,
               const Tensor& out, const Tensor* lse);

}  // namespace llmopt::backend
