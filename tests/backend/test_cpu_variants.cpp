// Every CPU kernel variant this machine can run (base, avx2, avx512; kernels.h) against naive double loops:
// dense matmul in f32/bf16/f16 for decode (n <= 8) and prefill shapes with a ragged last block, quantized
// matmul at 2/3/4/8 bits with groups, zero points, act-order and W8A8, and the dequantized rows.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "lib/backend/cpu/dispatch.h"
#include "lib/core/threads.h"
#include "tests/support/random.h"

using namespace llmopt;
using namespace llmopt::backend;

namespace {
using test::randn;

struct Kernels {
  std::string name;
  std::function<void(const DenseMatrix&, const float*, const float*, int64_t, float*)> dense;
  std::function<void(const QuantMatrix&, const float*, const float*, int64_t, float*)> quant;
  std::function<void(const QuantMatrix&, int64_t, int64_t, float*)> dequant;
};

// The variants this CPU supports, called directly, plus the dispatched public entry points.
std::vector<Kernels> all_kernels() {
  std::vector<Kernels> out{{"dispatched", matmul_dense, matmul_quant, dequant_rows}};
  for (CpuVariant v : cpu_variants_supported()) {
    switch (v) {
      case CpuVariant::base: out.push_back({"base", base::matmul_dense, base::matmul_quant, base::dequant_rows}); break;
#if LLMOPT_CPU_X86_VARIANTS
      case CpuVariant::avx2: out.push_back({"avx2", avx2::matmul_dense, avx2::matmul_quant, avx2::dequant_rows}); break;
      case CpuVariant::avx512:
        out.push_back({"avx512", avx512::matmul_dense, avx512::matmul_quant, avx512::dequant_rows});
        break;
#endif
    }
  }
  return out;
}

void check_close(const std::vector<float>& y, const std::vector<double>& ref) {
  REQUIRE(y.size() == ref.size());
  for (size_t i = 0; i < y.size(); ++i) REQUIRE(std::fabs(y[i] - ref[i]) <= 1e-4 * (1 + std::fabs(ref[i])));
}
}  // namespace

TEST_CASE("cpu variants: the chosen variant is supported and the base one always is") {
  auto ok = cpu_variants_supported();
  REQUIRE(!ok.empty());
  CHECK(ok.front() == CpuVariant::base);
  bool found = false;
  for (CpuVariant v : ok) found |= v == cpu_variant();
  CHECK(found);
  MESSAGE("cpu kernel variant: " << cpu_variant_name(cpu_variant()) << " (" << ok.size() << " supported)");
}

TEST_CASE("cpu variants: matmul_dense against a double loop") {
  set_num_threads(2);
  for (const Kernels& k : all_kernels())
    for (int64_t rows : {1, 19, 150})
      for (int64_t n : {1, 3, 8, 9, 40})
        for (DType dt : {DType::F32, DType::BF16, DType::F16})
          for (bool with_bias : {false, true}) {
            INFO(k.name << " rows=" << rows << " n=" << n << " dtype=" << dtype_name(dt) << " bias=" << with_bias);
            const int64_t cols = 45;  // not a multiple of 16: masked tails
            auto wf = randn(size_t(rows * cols), 1), x = randn(size_t(n * cols), 2), b = randn(size_t(rows), 3);
            std::vector<uint16_t> w16(wf.size());
            for (size_t i = 0; i < wf.size(); ++i) {
              if (dt == DType::BF16) w16[i] = f32_to_bf16(wf[i]), wf[i] = bf16_to_f32(w16[i]);
              if (dt == DType::F16) w16[i] = f32_to_f16(wf[i]), wf[i] = f16_to_f32(w16[i]);
            }
            DenseMatrix m{dt, dt == DType::F32 ? static_cast<const void*>(wf.data()) : w16.data(), rows, cols};
            std::vector<float> y(size_t(n * rows));
            k.dense(m, with_bias ? b.data() : nullptr, x.data(), n, y.data());
            std::vector<double> ref(y.size());
            for (int64_t i = 0; i < n; ++i)
              for (int64_t r = 0; r < rows; ++r) {
                double s = with_bias ? b[r] : 0.0;
                for (int64_t c = 0; c < cols; ++c) s += double(x[i * cols + c]) * wf[r * cols + c];
                ref[i * rows + r] = s;
              }
            check_close(y, ref);
          }
}

TEST_CASE("cpu variants: matmul_quant and dequant_rows against a double loop") {
  set_num_threads(2);
  const int64_t rows = 70, cols = 96, gs = 32, G = cols / gs;
  for (const Kernels& k : all_kernels())
    for (int bits : {2, 3, 4, 8})
      for (bool act_order : {false, true})
        for (bool w8a8 : {false, true}) {
          if (w8a8 && (bits != 8 || act_order)) continue;
          QuantMatrix w;
          w.bits = bits, w.rows = rows, w.cols = cols, w.n_groups = G, w.int8_activations = w8a8;
          std::mt19937 g{uint32_t(bits)};
          std::vector<uint8_t> codes(size_t(rows * w.row_bytes()), 0), zeros(size_t(rows * G));
          std::vector<float> scales(size_t(rows * G));
          std::vector<int64_t> groups;
          for (int64_t i = 0; i <= G; ++i) groups.push_back(i * gs);
          std::vector<int32_t> perm(static_cast<size_t>(cols));
          for (int64_t j = 0; j < cols; ++j) perm[j] = int32_t((j * 7) % cols);  // 7 is coprime to 96
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t j = 0; j < cols; ++j)
              put_code(codes.data() + r * w.row_bytes(), w.storage_bits(), j, uint8_t(g() % (1u << bits)));
            for (int64_t i = 0; i < G; ++i) {
              scales[r * G + i] = 0.01f + float(g() % 100) / 1000.0f;
              zeros[r * G + i] = w8a8 ? uint8_t(128) : uint8_t(g() % (1u << bits));
            }
          }
          w.codes = codes.data(), w.groups = groups.data(), w.scales = scales.data(), w.zeros = zeros.data();
          w.perm = act_order ? perm.data() : nullptr;
          // W[r][perm[j]] = (q - z) * s
          std::vector<double> W(size_t(rows * cols));
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < cols; ++j)
              W[r * cols + (act_order ? perm[j] : j)] =
                  (int(w.code(r, j)) - int(zeros[r * G + j / gs])) * double(scales[r * G + j / gs]);

          std::vector<float> deq(size_t(rows * cols));
          k.dequant(w, 0, rows, deq.data());
          check_close(deq, W);

          for (int64_t n : {1, 5, 8, 33}) {
            INFO(k.name << " bits=" << bits << " act_order=" << act_order << " w8a8=" << w8a8 << " n=" << n);
            auto x = randn(size_t(n * cols), 5), b = randn(size_t(rows), 6);
            std::vector<float> y(size_t(n * rows));
            k.quant(w, b.data(), x.data(), n, y.data());
            std::vector<double> ref(y.size());
            for (int64_t i = 0; i < n; ++i) {
              // W8A8 multiplies the per-token int8 rounding of x (s = max|x| / 127), as the kernel documents.
              double s = 0;
              for (int64_t c = 0; c < cols; ++c) s = std::max(s, std::fabs(double(x[i * cols + c])));
              s /= 127.0;
              for (int64_t r = 0; r < rows; ++r) {
                double acc = b[r];
                for (int64_t c = 0; c < cols; ++c) {
                  double xv = x[i * cols + c];
                  if (w8a8) xv = std::nearbyint(xv / s) * s;
                  acc += xv * W[r * cols + c];
                }
                ref[i * rows + r] = acc;
              }
            }
            check_close(y, ref);
          }
        }
}
