// Every op of the Backend op set, on every backend this binary holds, against plain double-precision
// reference loops written here: dense and quantized matmul, rmsnorm, partial RoPE, swiglu, add, get_rows,
// set_rows, paged attention (ragged batch, GQA, scattered blocks, separate key/value widths with head
// offsets as MLA needs, log-sum-exp) and the merge of two partial attentions. A new backend (cuda) passes
// when it computes what these loops compute.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "lib/backend/backend.h"
#include "lib/backend/cpu/qmatmul.h"
#include "lib/core/threads.h"
#include "tests/support/random.h"

using namespace llmopt;
using namespace llmopt::backend;

namespace {

using test::randn;

// Host data mirrored on a backend: upload on construction, download() to read results back.
struct Buf {
  Backend& b;
  size_t bytes;
  void* dev;
  Buf(Backend& be, const void* host, size_t n) : b(be), bytes(n), dev(be.alloc(n)) { b.upload(dev, host, n); }
  template <typename T> explicit Buf(Backend& be, const std::vector<T>& v) : Buf(be, v.data(), v.size() * sizeof(T)) {}
  ~Buf() { b.free(dev); }
  Tensor t(DType dt, int64_t rows, int64_t cols) const { return Tensor::matrix(dev, dt, rows, cols, 0, b.device()); }
  Tensor v(DType dt, int64_t n) const { return Tensor::vector(dev, dt, n, b.device()); }
  std::vector<float> f32() const {
    std::vector<float> h(bytes / 4);
    b.download(h.data(), dev, bytes);
    return h;
  }
};

double worst(const std::vector<float>& got, const std::vector<double>& ref) {
  REQUIRE(got.size() == ref.size());
  double w = 0;
  for (size_t i = 0; i < ref.size(); ++i) w = std::max(w, std::abs(got[i] - ref[i]));
  return w;
}

std::vector<std::string> backends() {
  std::vector<std::string> v;
  std::stringstream ss(available());
  for (std::string s; std::getline(ss, s, ',');) v.push_back(s.substr(s.find_first_not_of(' ')));
  return v;
}

}  // namespace

TEST_CASE("matmul: dense f32/bf16/f16 with bias, and a 4-bit grouped weight with act-order") {
  set_num_threads(2);
  for (const auto& name : backends()) {
    CAPTURE(name);
    Backend& B = get(name);
    const int64_t R = 37, C = 48;
    for (int64_t n : {1, 3, 20}) {
      auto wf = randn(size_t(R * C), 1), x = randn(size_t(n * C), 2), bias = randn(size_t(R), 3);
      std::vector<uint16_t> w16(wf.size());
      for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
        std::vector<float> wq = wf;
        for (size_t i = 0; i < wf.size(); ++i) {
          if (dt == DType::BF16) w16[i] = f32_to_bf16(wf[i]), wq[i] = bf16_to_f32(w16[i]);
          if (dt == DType::F16) w16[i] = f32_to_f16(wf[i]), wq[i] = f16_to_f32(w16[i]);
        }
        std::vector<double> ref(size_t(n * R));
        for (int64_t i = 0; i < n; ++i)
          for (int64_t r = 0; r < R; ++r) {
            double s = bias[size_t(r)];
            for (int64_t c = 0; c < C; ++c) s += double(x[size_t(i * C + c)]) * wq[size_t(r * C + c)];
            ref[size_t(i * R + r)] = s;
          }
        Buf W = dt == DType::F32 ? Buf(B, wf) : Buf(B, w16), X(B, x), Bi(B, bias), Y(B, std::vector<float>(size_t(n * R)));
        const Tensor bt = Bi.v(DType::F32, R);
        B.matmul(W.t(dt, R, C), &bt, X.t(DType::F32, n, C), Y.t(DType::F32, n, R));
        CHECK(worst(Y.f32(), ref) < 1e-4);
      }
      // 4-bit codes, groups of 16 stored columns, a permutation of the input columns
      std::mt19937 g(5);
      const int64_t G = 16, ng = C / G;
      std::vector<int32_t> perm(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; ++c) perm[size_t(c)] = int32_t((c * 7) % C);
      std::vector<uint8_t> codes(size_t(R * C / 2), 0), zeros(size_t(R * ng));
      std::vector<float> scales(size_t(R * ng));
      std::vector<int64_t> groups;
      for (int64_t k = 0; k <= ng; ++k) groups.push_back(k * G);
      std::vector<double> wd(size_t(R * C));
      for (int64_t r = 0; r < R; ++r)
        for (int64_t j = 0; j < C; ++j) {
          const int64_t gi = j / G;
          if (j % G == 0) scales[size_t(r * ng + gi)] = 0.01f * float(1 + g() % 50), zeros[size_t(r * ng + gi)] = uint8_t(g() % 16);
          const uint8_t q = uint8_t(g() % 16);
          put_code(codes.data() + r * (C / 2), 4, j, q);
          wd[size_t(r * C + perm[size_t(j)])] = (double(q) - zeros[size_t(r * ng + gi)]) * scales[size_t(r * ng + gi)];
        }
      QuantMatrix qm{4, R, C, ng, codes.data(), groups.data(), scales.data(), zeros.data(), nullptr, perm.data(), false};
      std::vector<double> ref(size_t(n * R));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < R; ++r) {
          double s = 0;
          for (int64_t c = 0; c < C; ++c) s += double(x[size_t(i * C + c)]) * wd[size_t(r * C + c)];
          ref[size_t(i * R + r)] = s;
        }
      if (name == "cpu") {  // the prepared form is the CPU's; another backend prepares its own from it
        Buf X(B, x), Y(B, std::vector<float>(size_t(n * R)));
        B.matmul_quant(qm, nullptr, X.t(DType::F32, n, C), Y.t(DType::F32, n, R));
        CHECK(worst(Y.f32(), ref) < 1e-4);
      }
    }
  }
}

TEST_CASE("rmsnorm, partial rope with an offset, swiglu, add") {
  for (const auto& name : backends()) {
    CAPTURE(name);
    Backend& B = get(name);
    const int64_t n = 5, d = 24;
    auto x = randn(size_t(n * d), 7), w = randn(size_t(d), 8), y = randn(size_t(n * d), 9);
    std::vector<double> ref(size_t(n * d));
    for (int64_t i = 0; i < n; ++i) {
      double ss = 0;
      for (int64_t j = 0; j < d; ++j) ss += double(x[size_t(i * d + j)]) * x[size_t(i * d + j)];
      for (int64_t j = 0; j < d; ++j) ref[size_t(i * d + j)] = w[size_t(j)] * x[size_t(i * d + j)] / std::sqrt(ss / d + 1e-5);
    }
    {
      Buf X(B, x), W(B, w), Y(B, std::vector<float>(x.size()));
      B.rmsnorm(X.t(DType::F32, n, d), W.v(DType::F32, d), 1e-5f, Y.t(DType::F32, n, d));
      CHECK(worst(Y.f32(), ref) < 1e-5);
    }
    {  // two heads of 12, rotate dims [4, 12) of each (rot_dim 8: pairs (j, j + 4))
      const int64_t heads = 2, hs = 12, off = 4, rd = 8;
      std::vector<int64_t> pos = {0, 3, 7, 100, 5};
      std::vector<float> inv = {1.0f, 0.3f, 0.01f, 0.001f};
      for (int64_t i = 0; i < n; ++i)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t j = 0; j < hs; ++j) {
            const int64_t e = i * d + h * hs + j, k = j - off;
            double r = x[size_t(e)];
            if (k >= 0 && k < rd) {
              const int64_t jj = k % (rd / 2);
              const double a = double(float(pos[size_t(i)]) * inv[size_t(jj)]);
              const double lo = x[size_t(i * d + h * hs + off + jj)], hi = x[size_t(i * d + h * hs + off + jj + rd / 2)];
              r = k < rd / 2 ? lo * std::cos(a) - hi * std::sin(a) : hi * std::cos(a) + lo * std::sin(a);
            }
            ref[size_t(e)] = r;
          }
      Buf X(B, x), P(B, pos), F(B, inv);
      B.rope(X.t(DType::F32, n, d), heads, hs, off, rd, P.v(DType::I64, n), F.v(DType::F32, rd / 2));
      CHECK(worst(X.f32(), ref) < 1e-5);
    }
    {
      for (size_t i = 0; i < ref.size(); ++i) ref[i] = x[i] / (1 + std::exp(-double(x[i]))) * y[i];
      Buf G(B, x), U(B, y), O(B, std::vector<float>(x.size()));
      B.swiglu(G.t(DType::F32, n, d), U.t(DType::F32, n, d), O.t(DType::F32, n, d));
      CHECK(worst(O.f32(), ref) < 1e-5);
      for (size_t i = 0; i < ref.size(); ++i) ref[i] = double(x[i]) + y[i];
      B.add(G.t(DType::F32, n, d), U.t(DType::F32, n, d));
      CHECK(worst(G.f32(), ref) < 1e-6);
    }
  }
}

TEST_CASE("get_rows from a bf16 table and set_rows through a slot mapping") {
  for (const auto& name : backends()) {
    CAPTURE(name);
    Backend& B = get(name);
    const int64_t V = 11, d = 6;
    auto tf = randn(size_t(V * d), 10);
    std::vector<uint16_t> tb(tf.size());
    for (size_t i = 0; i < tf.size(); ++i) tb[i] = f32_to_bf16(tf[i]);
    std::vector<int32_t> ids = {3, 0, 10, 3};
    std::vector<double> ref;
    for (int32_t id : ids)
      for (int64_t j = 0; j < d; ++j) ref.push_back(bf16_to_f32(tb[size_t(id * d + j)]));
    Buf T(B, tb), I(B, ids), O(B, std::vector<float>(ids.size() * size_t(d)));
    B.get_rows(T.t(DType::BF16, V, d), I.v(DType::I32, 4), O.t(DType::F32, 4, d));
    CHECK(worst(O.f32(), ref) == 0);

    std::vector<int64_t> slots = {7, 2, 9, 0};
    auto src = randn(size_t(4 * d), 11);
    std::vector<float> dst0(size_t(V * d), -1.0f);
    std::vector<double> want(dst0.begin(), dst0.end());
    for (size_t i = 0; i < slots.size(); ++i)
      for (int64_t j = 0; j < d; ++j) want[size_t(slots[i] * d + j)] = src[i * size_t(d) + size_t(j)];
    Buf S(B, src), L(B, slots), D(B, dst0);
    B.set_rows(S.t(DType::F32, 4, d), L.v(DType::I64, 4), D.t(DType::F32, V, d));
    CHECK(worst(D.f32(), want) == 0);
  }
}

namespace {

// A ragged paged batch: per sequence its tokens' K/V rows (kw / vw floats) placed in scattered blocks of
// one storage, its queries the last n tokens; the reference is computed from the per-sequence rows.
struct PagedCase {
  int64_t bs = 4, nblocks = 16, kw = 0, vw = 0;
  std::vector<int64_t> len, nq;
  std::vector<std::vector<float>> k, v;  // per sequence [len, kw] / [len, vw]
  std::vector<int32_t> table, qs, sl;
  int64_t max_blocks = 0, T = 0;
  std::vector<float> kstore, vstore;

  PagedCase(std::vector<int64_t> lens, std::vector<int64_t> nqs, int64_t kw_, int64_t vw_, uint32_t seed)
      : kw(kw_), vw(vw_), len(std::move(lens)), nq(std::move(nqs)) {
    for (int64_t L : len) max_blocks = std::max(max_blocks, (L + bs - 1) / bs);
    kstore.assign(size_t(nblocks * bs * kw), NAN);
    vstore.assign(size_t(nblocks * bs * vw), NAN);
    table.assign(len.size() * size_t(max_blocks), 0);
    int32_t next = int32_t(nblocks) - 1;  // hand blocks out from the top, interleaving sequences
    qs.push_back(0);
    for (size_t s = 0; s < len.size(); ++s) {
      k.push_back(randn(size_t(len[s] * kw), seed + uint32_t(s)));
      v.push_back(randn(size_t(len[s] * vw), seed + 100 + uint32_t(s)));
      for (int64_t b = 0; b < (len[s] + bs - 1) / bs; ++b) table[s * size_t(max_blocks) + size_t(b)] = next, next -= 2;
      if (next < 0) next = int32_t(nblocks) - 2;
      for (int64_t t = 0; t < len[s]; ++t) {
        const int64_t slot = table[s * size_t(max_blocks) + size_t(t / bs)] * bs + t % bs;
        std::copy_n(&k[s][size_t(t * kw)], kw, &kstore[size_t(slot * kw)]);
        std::copy_n(&v[s][size_t(t * vw)], vw, &vstore[size_t(slot * vw)]);
      }
      qs.push_back(int32_t(qs.back() + nq[s]));
      sl.push_back(int32_t(len[s]));
    }
    T = qs.back();
  }
  // the value rows are the key rows (MLA: one cached latent serves both)
  void share_v_with_k() { v = k, vstore = kstore, vw = kw; }
  AttentionBatch batch(const Buf& Q, const Buf& L, const Buf& Tb) const {
    AttentionBatch b;
    b.num_seqs = int64_t(len.size()), b.num_tokens = T, b.max_blocks = max_blocks, b.block_size = bs;
    b.query_start = Q.v(DType::I32, b.num_seqs + 1);
    b.seq_len = L.v(DType::I32, b.num_seqs);
    b.block_table = Tb.t(DType::I32, b.num_seqs, max_blocks);
    return b;
  }
  // reference output [T, heads·v_dim] and lse [T, heads]
  void reference(const std::vector<float>& q, int64_t qrow, const AttnDims& d, std::vector<double>& out,
                 std::vector<double>& lse) const {
    out.assign(size_t(T * d.heads * d.v_dim), 0);
    lse.assign(size_t(T * d.heads), 0);
    for (size_t s = 0; s < len.size(); ++s)
      for (int64_t j = 0; j < nq[s]; ++j) {
        const int64_t row = qs[s] + j, n = len[s] - nq[s] + j + 1;
        for (int64_t h = 0; h < d.heads; ++h) {
          const int64_t g = h / (d.heads / d.kv_heads);
          std::vector<double> p(static_cast<size_t>(n));
          double mx = -1e300, z = 0;
          for (int64_t t = 0; t < n; ++t) {
            double dot = 0;
            for (int64_t e = 0; e < d.qk_dim; ++e)
              dot += double(q[size_t(row * qrow + h * d.q_head_stride + e)]) * k[s][size_t(t * kw + d.k_offset + g * d.k_head_stride + e)];
            mx = std::max(mx, p[size_t(t)] = dot * d.scale);
          }
          for (auto& x : p) z += x = std::exp(x - mx);
          lse[size_t(row * d.heads + h)] = mx + std::log(z);
          for (int64_t e = 0; e < d.v_dim; ++e) {
            double o = 0;
            for (int64_t t = 0; t < n; ++t) o += p[size_t(t)] / z * v[s][size_t(t * vw + d.v_offset + g * d.v_head_stride + e)];
            out[size_t(row * d.heads * d.v_dim + h * d.v_dim + e)] = o;
          }
        }
      }
  }
};

void check_attention(Backend& B, const PagedCase& pc, const AttnDims& d, int64_t qrow, bool v_in_k) {
  auto q = randn(size_t(pc.T * qrow), 77);
  std::vector<double> ref, ref_lse;
  pc.reference(q, qrow, d, ref, ref_lse);
  Buf Q(B, pc.qs), L(B, pc.sl), Tb(B, pc.table), Qx(B, q), Ks(B, pc.kstore), Vs(B, pc.vstore);
  Buf O(B, std::vector<float>(size_t(pc.T * d.heads * d.v_dim))), Ls(B, std::vector<float>(size_t(pc.T * d.heads)));
  const Tensor kst = Ks.t(DType::F32, pc.nblocks * pc.bs, pc.kw);
  const KVLayer kv{kst, v_in_k ? kst : Vs.t(DType::F32, pc.nblocks * pc.bs, pc.vw), pc.bs};
  const Tensor lse = Ls.t(DType::F32, pc.T, d.heads);
  B.attention(pc.batch(Q, L, Tb), Qx.t(DType::F32, pc.T, qrow), kv, d, O.t(DType::F32, pc.T, d.heads * d.v_dim), &lse);
  CHECK(worst(O.f32(), ref) < 1e-5);
  CHECK(worst(Ls.f32(), ref_lse) < 1e-4);
}

}  // namespace

TEST_CASE("attention: ragged batch over scattered blocks, GQA, prefill chunks and decode, log-sum-exp") {
  for (const auto& name : backends()) {
    CAPTURE(name);
    Backend& B = get(name);
    // 3 sequences: a decode step (1 query of 9 tokens), a prefill chunk (5 queries after 6 cached), a prompt
    const PagedCase pc({9, 11, 7}, {1, 5, 7}, 2 * 8, 2 * 8, 20);
    check_attention(B, pc, AttnDims::uniform(4, 2, 8, 0.35f), 4 * 8, false);
  }
}

TEST_CASE("attention with separate key and value widths and offsets (MLA latent: v is a prefix of k)") {
  for (const auto& name : backends()) {
    CAPTURE(name);
    Backend& B = get(name);
    // one shared kv head; key = the whole 12-float row, value = its first 8 floats (read from the same storage)
    PagedCase pc({6, 13}, {1, 4}, 12, 12, 30);
    pc.share_v_with_k();
    AttnDims d{3, 1, 12, 8, 12, 12, 12, 0, 0, 0.2f};
    check_attention(B, pc, d, 3 * 12, true);
    // queries with padding between heads (q_head_stride > qk_dim), keys/values at offsets in wider rows
    const PagedCase pc2({10}, {3}, 2 * 7, 2 * 5, 31);
    AttnDims d2{2, 2, 6, 4, 9, 7, 5, 1, 1, 0.4f};
    check_attention(B, pc2, d2, 2 * 9, false);
  }
}

TEST_CASE("attention_merge: two halves of the keys merged by log-sum-exp equal attention over all of them") {
  for (const auto& name : backends()) {
    CAPTURE(name);
    Backend& B = get(name);
    const int64_t heads = 2, D = 8, L = 12, cut = 8, bs = 4;  // one decode query over 12 tokens: [0, 8) + [8, 12)
    auto k = randn(size_t(L * D), 40), v = randn(size_t(L * D), 41), q = randn(size_t(heads * D), 42);
    const AttnDims d = AttnDims::uniform(heads, 1, D, 0.3f);
    auto part = [&](int64_t t0, int64_t t1, std::vector<float>& o, std::vector<float>& lse) {
      std::vector<int32_t> qs = {0, 1}, sl = {int32_t(t1 - t0)}, tbl;
      for (int64_t b = 0; b < (t1 - t0 + bs - 1) / bs; ++b) tbl.push_back(int32_t(t0 / bs + b));
      Buf Q(B, qs), S(B, sl), Tb(B, tbl), Qx(B, q), K(B, k), V(B, v), O(B, o), Ls(B, lse);
      AttentionBatch b;
      b.num_seqs = 1, b.num_tokens = 1, b.max_blocks = int64_t(tbl.size()), b.block_size = bs;
      b.query_start = Q.v(DType::I32, 2), b.seq_len = S.v(DType::I32, 1), b.block_table = Tb.t(DType::I32, 1, b.max_blocks);
      const Tensor lt = Ls.t(DType::F32, 1, heads);
      B.attention(b, Qx.t(DType::F32, 1, heads * D), {K.t(DType::F32, L, D), V.t(DType::F32, L, D), bs}, d,
                  O.t(DType::F32, 1, heads * D), &lt);
      o = O.f32(), lse = Ls.f32();
    };
    std::vector<float> o_all(static_cast<size_t>(heads * D)), l_all(static_cast<size_t>(heads)), o_a = o_all, l_a = l_all, o_b = o_all, l_b = l_all;
    part(0, L, o_all, l_all);
    part(0, cut, o_a, l_a);
    part(cut, L, o_b, l_b);
    Buf OA(B, o_a), LA(B, l_a), OB(B, o_b), LB(B, l_b);
    B.attention_merge(OA.t(DType::F32, 1, heads * D), LA.t(DType::F32, 1, heads), OB.t(DType::F32, 1, heads * D),
                      LB.t(DType::F32, 1, heads), heads, D);
    CHECK(worst(OA.f32(), std::vector<double>(o_all.begin(), o_all.end())) < 1e-5);
    CHECK(worst(LA.f32(), std::vector<double>(l_all.begin(), l_all.end())) < 1e-5);
    // and neither half alone is the answer (the test can fail)
    CHECK(worst(o_a, std::vector<double>(o_all.begin(), o_all.end())) > 1e-3);
  }
}
