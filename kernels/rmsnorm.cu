// RMSNorm kernels: one thread block per row, two passes over the row (sum of squares, then scale);
// the second pass re-reads x, which is still in L1/L2. Vector loads of 16 bytes when n and all
// pointers allow it, else scalar loads. Warp-shuffle reduction, then one value per warp in shared memory.
#include "kernels/rmsnorm.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda_util.h"
#include "lib/core/error.h"

namespace llmopt {
namespace {

// VEC elements loaded / stored as one aligned access (VEC = 1: plain scalar).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ void from_f32(float f, float& out) { out = f; }
__device__ __forceinline__ void from_f32(float f, __nv_bfloat16& out) { out = __float2bfloat16_rn(f); }

// Sum over the block; every thread gets the result. blockDim.x is a multiple of 32, at most 1024.
__device__ float block_sum(float v) {
  __shared__ float warp_sums[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  v = lane < nwarps ? warp_sums[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;  // every warp reduced the same 32 partials, so all threads hold the same sum
}

// T: activation type (in and out), W: weight type.
template <typename T, typename W, int VEC>
__global__ void rmsnorm_kernel(const T* x, const W* __restrict__ w, T* y, int n, float eps) {  // x may be y
  const size_t row = blockIdx.x;
  const int nv = n / VEC;  // the launcher guarantees n % VEC == 0
  const auto* xv = reinterpret_cast<const Pack<T, VEC>*>(x + row * n);
  const auto* wv = reinterpret_cast<const Pack<W, VEC>*>(w);
  auto* yv = reinterpret_cast<Pack<T, VEC>*>(y + row * n);

  float ss = 0.0f;
  for (int i = threadIdx.x; i < nv; i += blockDim.x) {
    Pack<T, VEC> p = xv[i];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      float f = to_f32(p.v[k]);
      ss += f * f;
    }
  }
  ss = block_sum(ss);
  const float r = 1.0f / sqrtf(ss / float(n) + eps);  // IEEE sqrt and divide, as torch.rsqrt on CPU

  for (int i = threadIdx.x; i < nv; i += blockDim.x) {
    Pack<T, VEC> p = xv[i];
    Pack<W, VEC> q = wv[i];
    Pack<T, VEC> o;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      T h;
      from_f32(to_f32(p.v[k]) * r, h);       // normalized value, cast to the input dtype first (HF order)
      from_f32(to_f32(q.v[k]) * to_f32(h), o.v[k]);  // then times the weight, rounded to the output dtype
    }
    yv[i] = o;
  }
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

template <typename T, typename W, int VEC>
void launch(const T* x, const W* w, T* y, int rows, int n, float eps, cudaStream_t stream) {
  // ~4 vectors per thread, a whole number of warps, 32..1024 threads.
  int threads = (n / VEC + 3) / 4;
  threads = std::clamp((threads + 31) / 32 * 32, 32, 1024);
  rmsnorm_kernel<T, W, VEC><<<rows, threads, 0, stream>>>(x, w, y, n, eps);
  LLMOPT_CUDA_CHECK(cudaGetLastError());
}

// Picks 16-byte vectors when n and every pointer allow it.
template <typename T, typename W>
void dispatch(const void* x, const void* w, void* y, int rows, int n, float eps, void* stream, const char* name) {
  if (rows < 0 || n <= 0) fail("{}: bad shape rows={} n={}", name, rows, n);
  if (!(eps >= 0.0f)) fail("{}: bad eps {}", name, eps);
  if (!x || !w || !y) fail("{}: null device pointer", name);
  if (rows == 0) return;
  auto xt = static_cast<const T*>(x);
  auto wt = static_cast<const W*>(w);
  auto yt = static_cast<T*>(y);
  auto s = static_cast<cudaStream_t>(stream);
  constexpr int V = 16 / sizeof(T);  // 4 fp32 or 8 bf16 activations per access
  if (n % V == 0 && aligned(x, 16) && aligned(y, 16) && aligned(w, sizeof(W) * V))
    launch<T, W, V>(xt, wt, yt, rows, n, eps, s);
  else
    launch<T, W, 1>(xt, wt, yt, rows, n, eps, s);
}

}  // namespace

void cuda_rmsnorm_f32(const float* x, const float* w, float* y, int rows, int n, float eps, void* stream) {
  dispatch<float, float>(x, w, y, rows, n, eps, stream, "cuda_rmsnorm_f32");
}

void cuda_rmsnorm_bf16(const uint16_t* x, const uint16_t* w, uint16_t* y, int rows, int n, float eps,
                       void* stream) {
  dispatch<__nv_bfloat16, __nv_bfloat16>(x, w, y, rows, n, eps, stream, "cuda_rmsnorm_bf16");
}

void cuda_rmsnorm_bf16_wf32(const uint16_t* x, const float* w, uint16_t* y, int rows, int n, float eps,
                            void* stream) {
  dispatch<__nv_bfloat16, float>(x, w, y, rows, n, eps, stream, "cuda_rmsnorm_bf16_wf32");
}

}  // namespace llmopt
