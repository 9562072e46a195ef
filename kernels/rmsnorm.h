#pragma once
// RMSNorm on the GPU, one launch for `rows` contiguous rows of `n` elements (row-major, no stride):
//   y[r, :] = w[:] * (x[r, :] * rsqrt(mean(x[r, :]^2) + eps))
// Sums of squares accumulate in fp32. All pointers are device pointers; bf16 is passed as raw
// uint16_t bits. `stream` is a cudaStream_t (nullptr = default stream). x and y may alias (in place).
// Launches are asynchronous; errors in the arguments or the launch throw llmopt::Error.
#include <cstdint>

namespace llmopt {

// fp32 in, fp32 weight, fp32 out (HF Llama with an fp32 model).
void cuda_rmsnorm_f32(const float* x, const float* w, float* y, int rows, int n, float eps, void* stream);

// bf16 in, bf16 out, with HF LlamaRMSNorm's cast order so results are bit-comparable with HF:
//   h = bf16(float(x) * r);  y = bf16(float(w) * float(h))
// i.e. the fp32 normalized value is rounded to the input dtype BEFORE the weight multiply.
// Weight bf16 (a bf16 checkpoint: `weight * hidden.to(input_dtype)` is a bf16 x bf16 product):
void cuda_rmsnorm_bf16(const uint16_t* x, const uint16_t* w, uint16_t* y, int rows, int n, float eps,
                       void* stream);
// Weight fp32 (norm weights kept in fp32 next to bf16 activations): same order, product in fp32,
// rounded to bf16. (HF itself would return fp32 here; this keeps activations in bf16.)
void cuda_rmsnorm_bf16_wf32(const uint16_t* x, const float* w, uint16_t* y, int rows, int n, float eps,
                            void* stream);

}  // namespace llmopt
