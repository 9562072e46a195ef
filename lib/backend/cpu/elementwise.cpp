// RMSNorm, RoPE and SwiGLU on fp32 rows, threaded over rows.
#include <cmath>

#include "lib/backend/cpu/kernels.h"
#include "lib/core/error.h"
#include "lib/core/threads.h"

namespace llmopt::backend {

void rmsnorm(const float* x, const float* w, int64_t n, int64_t d, float eps, float* y) {
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* xi = x + i * d;
      float* yi = y + i * d;
      double ss = 0;
      for (int64_t j = 0; j < d; ++j) ss += double(xi[j]) * xi[j];
      const float inv = float(1.0 / std::sqrt(float(ss / double(d)) + double(eps)));
      for (int64_t j = 0; j < d; ++j) yi[j] = w[j] * (xi[j] * inv);
    }
  }, 16);
}

void rope(float* x, int64_t n, int64_t heads, int64_t head_stride, int64_t rot_offset, int64_t rot_dim,
          int64_t row_stride, const int64_t* pos, const float* inv_freq) {
  constexpr int64_t kMaxHalf = 512;
  const int64_t half = rot_dim / 2;
  if (half > kMaxHalf || rot_dim % 2) fail("rope: rotary dimension {} is not even or above {}", rot_dim, 2 * kMaxHalf);
  parallel_for(n, [&](int64_t b, int64_t e) {
    float cs[kMaxHalf], sn[kMaxHalf];
    for (int64_t i = b; i < e; ++i) {
      // angle rounded to fp32 first, as HF computes position·inv_freq in fp32
      for (int64_t j = 0; j < half; ++j) {
        const float a = float(pos[i]) * inv_freq[j];
        cs[j] = float(std::cos(double(a)));
        sn[j] = float(std::sin(double(a)));
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + i * row_stride + h * head_stride + rot_offset;
        for (int64_t j = 0; j < half; ++j) {
          const float a = v[j], c = v[j + half];
          v[j] = a * cs[j] - c * sn[j];
          v[j + half] = c * cs[j] + a * sn[j];
        }
      }
    }
  }, 8);
}

void swiglu(const float* gate, const float* up, int64_t n, int64_t d, int64_t in_stride, float* out) {
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* g = gate + i * in_stride;
      const float* u = up + i * in_stride;
      float* o = out + i * d;
      for (int64_t j = 0; j < d; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
    }
  }, 4);
}

}  // namespace llmopt::backend
