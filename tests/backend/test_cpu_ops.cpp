// CPU backend ops against naive double-precision loops: dense matmul in every stored dtype and shape
// (decode and prefill row blocks, ragged last block, bias), and attention over paged K/V blocks
// (block size 3) equal to the same K/V contiguous, with GQA.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "lib/backend/cpu/kernels.h"
#include "lib/core/threads.h"
#include "tests/support/random.h"

using namespace llmopt;
using namespace llmopt::backend;

namespace {
using test::randn;
}  // namespace

TEST_CASE("matmul_dense: f32, bf16 and f16 weights, batch 1..300, with and without bias") {
  set_num_threads(2);
  for (int64_t rows : {1, 17, 130, 300})
    for (int64_t n : {1, 5, 9, 70})
      for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
        const int64_t cols = 37;
        auto wf = randn(size_t(rows * cols), 1), x = randn(size_t(n * cols), 2), b = randn(size_t(rows), 3);
        std::vector<uint16_t> w16(wf.size());
        for (size_t i = 0; i < wf.size(); ++i) {
          if (dt == DType::BF16) w16[i] = f32_to_bf16(wf[i]), wf[i] = bf16_to_f32(w16[i]);
          if (dt == DType::F16) w16[i] = f32_to_f16(wf[i]), wf[i] = f16_to_f32(w16[i]);
        }
        DenseMatrix m{dt, dt == DType::F32 ? static_cast<const void*>(wf.data()) : w16.data(), rows, cols};
        for (bool with_bias : {false, true}) {
          std::vector<float> y(size_t(n * rows));
          matmul_dense(m, with_bias ? b.data() : nullptr, x.data(), n, y.data());
          double worst = 0;
          for (int64_t i = 0; i < n; ++i)
            for (int64_t r = 0; r < rows; ++r) {
              double s = with_bias ? b[size_t(r)] : 0;
              for (int64_t c = 0; c < cols; ++c) s += double(x[size_t(i * cols + c)]) * wf[size_t(r * cols + c)];
              worst = std::max(worst, std::abs(s - y[size_t(i * rows + r)]));
            }
          CHECK(worst < 1e-4);
        }
      }
}

TEST_CASE("attention over paged blocks equals contiguous; GQA groups read the right kv head") {
  const int64_t heads = 4, kv_heads = 2, D = 8, len = 11, row = kv_heads * D;
  auto k = randn(size_t(len * row), 4), v = randn(size_t(len * row), 5), q = randn(size_t(len * heads * D), 6);
  // naive reference for every query position i (attends 0..i)
  std::vector<double> ref(size_t(len * heads * D));
  const double scale = 1 / std::sqrt(double(D));
  for (int64_t i = 0; i < len; ++i)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kh = h / (heads / kv_heads);
      std::vector<double> p(size_t(i + 1));
      double mx = -1e300, z = 0;
      for (int64_t t = 0; t <= i; ++t) {
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += double(q[size_t(i * heads * D + h * D + d)]) * k[size_t(t * row + kh * D + d)];
        p[size_t(t)] = s * scale;
        mx = std::max(mx, p[size_t(t)]);
      }
      for (auto& x : p) z += x = std::exp(x - mx);
      for (int64_t d = 0; d < D; ++d) {
        double o = 0;
        for (int64_t t = 0; t <= i; ++t) o += p[size_t(t)] / z * v[size_t(t * row + kh * D + d)];
        ref[size_t(i * heads * D + h * D + d)] = o;
      }
    }
  // paged: blocks of 3 tokens, stored in reverse order in one storage of nb blocks (unused rows NaN)
  const int64_t bs = 3, nb = (len + bs - 1) / bs;
  std::vector<float> ks(size_t(nb * bs * row), NAN), vs(size_t(nb * bs * row), NAN);
  std::vector<int32_t> table(static_cast<size_t>(nb));
  for (int64_t blk = 0; blk < nb; ++blk) table[size_t(blk)] = int32_t(nb - 1 - blk);
  for (int64_t t = 0; t < len; ++t)
    for (int64_t e = 0; e < row; ++e) {
      const int64_t slot = table[size_t(t / bs)] * bs + t % bs;
      ks[size_t(slot * row + e)] = k[size_t(t * row + e)];
      vs[size_t(slot * row + e)] = v[size_t(t * row + e)];
    }
  std::vector<float> out_paged(q.size()), out_contig(q.size());
  const AttnDims dims = AttnDims::uniform(heads, kv_heads, D, float(scale));
  // one step's batch: sequence 0 holding `len` tokens, queries for positions [p0, p0 + n)
  auto run = [&](const Tensor& kst, const Tensor& vst, int64_t block, std::vector<int32_t> tbl, int64_t p0, int64_t n,
                 std::vector<float>& out) {
    std::vector<int32_t> qs = {0, int32_t(n)}, sl = {int32_t(p0 + n)};
    AttentionBatch b;
    b.num_seqs = 1, b.num_tokens = n, b.max_blocks = int64_t(tbl.size()), b.block_size = block;
    b.query_start = Tensor::vector(qs.data(), DType::I32, 2);
    b.seq_len = Tensor::vector(sl.data(), DType::I32, 1);
    b.block_table = Tensor::matrix(tbl.data(), DType::I32, 1, int64_t(tbl.size()));
    attention(b, Tensor::f32(q.data() + p0 * heads * D, n, heads * D), {kst, vst, block}, dims,
              Tensor::f32(out.data() + p0 * heads * D, n, heads * D), nullptr);
  };
  // prefill of positions 0..6 then 7..10 in a second step, paged; and all at once, contiguous
  run(Tensor::f32(ks.data(), nb * bs, row), Tensor::f32(vs.data(), nb * bs, row), bs, table, 0, 7, out_paged);
  run(Tensor::f32(ks.data(), nb * bs, row), Tensor::f32(vs.data(), nb * bs, row), bs, table, 7, 4, out_paged);
  run(Tensor::f32(k.data(), len, row), Tensor::f32(v.data(), len, row), len, {0}, 0, len, out_contig);
  double wp = 0, wc = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    wp = std::max(wp, std::abs(ref[i] - out_paged[i]));
    wc = std::max(wc, std::abs(ref[i] - out_contig[i]));
  }
  CHECK(wp < 1e-5);
  CHECK(wc < 1e-5);
}

TEST_CASE("rmsnorm and rope") {
  auto x = randn(2 * 8, 7), w = randn(8, 8);
  std::vector<float> y(16);
  rmsnorm(x.data(), w.data(), 2, 8, 1e-5f, y.data());
  for (int i = 0; i < 2; ++i) {
    double ss = 0;
    for (int j = 0; j < 8; ++j) ss += double(x[size_t(i * 8 + j)]) * x[size_t(i * 8 + j)];
    const double inv = 1 / std::sqrt(ss / 8 + 1e-5);
    for (int j = 0; j < 8; ++j) CHECK(y[size_t(i * 8 + j)] == doctest::Approx(w[size_t(j)] * x[size_t(i * 8 + j)] * inv).epsilon(1e-5));
  }
  // rope at position 3 with one frequency pair (D = 2): a rotation by 3·f
  float r[2] = {1.0f, 0.0f}, f = 0.5f;
  int64_t pos = 3;
  rope(r, 1, 1, 2, 0, 2, 2, &pos, &f);
  CHECK(r[0] == doctest::Approx(std::cos(1.5)));
  CHECK(r[1] == doctest::Approx(std::sin(1.5)));
}
