// Causal attention over paged K/V. Work items are (sequence, query head, chunk of up to 16 queries),
// spread over threads. An item's keys are read straight from storage when the sequence's blocks are
// consecutive, else gathered into a per-thread buffer first; scores and outputs are then two small
// GEMMs (Eigen) over all of the sequence's keys at once, so the result does not depend on the paging.
#include <Eigen/Core>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "lib/backend/cpu/kernels.h"
#include "lib/core/error.h"
#include "lib/core/threads.h"

namespace llmopt::backend {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using Map = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
constexpr int64_t QB = 16;  // queries per work item

std::atomic<int64_t> g_reserve_len{0}, g_reserve_width{0};

// Per-thread scratch: scores [QB, len] and gathered keys / values [len, width].
struct Scratch {
  std::vector<float> s, k, v;
};
thread_local Scratch t_scratch;

// A grow-only per-thread buffer, first sized for the reserved length × `per_token` floats and grown
// geometrically past it: after warm-up, no allocation.
float* scratch(std::vector<float>& v, int64_t n, int64_t per_token) {
  if (int64_t(v.size()) < n) v.resize(size_t(std::max({n, 2 * int64_t(v.size()), g_reserve_len * per_token})));
  return v.data();
}

// Rows [0, len) of one kv head of one sequence, `width` floats at column `col` of each cache row, as a
// [len, width] matrix: a view when the blocks are consecutive, else a gathered copy in `buf`.
ConstMap kv_rows(const Tensor& store, int64_t bs, const int32_t* blocks, int64_t len, int64_t col, int64_t width,
                 std::vector<float>& buf) {
  const int64_t nb = (len + bs - 1) / bs, rs = store.row_stride();
  bool consecutive = true;
  for (int64_t i = 1; i < nb && consecutive; ++i) consecutive = blocks[i] == blocks[0] + i;
  const float* base = store.f32();
  if (consecutive) return ConstMap(base + int64_t(blocks[0]) * bs * rs + col, len, width, Eigen::OuterStride<>(rs));
  float* g = scratch(buf, len * width, std::max<int64_t>(width, g_reserve_width));
  for (int64_t t = 0; t < len; ++t)
    std::copy_n(base + (int64_t(blocks[t / bs]) * bs + t % bs) * rs + col, width, g + t * width);
  return ConstMap(g, len, width, Eigen::OuterStride<>(width));
}

}  // namespace

void reserve_attention_scratch(int64_t max_seq_len, int64_t max_width) {
  g_reserve_len = std::max<int64_t>(g_reserve_len, max_seq_len);
  g_reserve_width = std::max<int64_t>(g_reserve_width, max_width);
  on_every_thread([&](int) {  // size every thread's buffers
    scratch(t_scratch.s, QB * g_reserve_len, QB);
    scratch(t_scratch.k, g_reserve_len * g_reserve_width, g_reserve_width);
    scratch(t_scratch.v, g_reserve_len * g_reserve_width, g_reserve_width);
  });
}

void attention(const AttentionBatch& b, const Tensor& q, const KVLayer& kv, const AttnDims& d, const Tensor& out,
               const Tensor* lse) {
  if (d.heads % d.kv_heads) fail("attention: {} heads are not a multiple of {} kv heads", d.heads, d.kv_heads);
  const int32_t* qs = b.query_start.ptr<int32_t>();
  const int32_t* sl = b.seq_len.ptr<int32_t>();
  const int64_t group = d.heads / d.kv_heads, bs = kv.block_size;
  // items of sequence s are [first[s], first[s+1]): heads × query chunks
  thread_local std::vector<int64_t> first_tl;  // the caller's; workers read it through `first`
  std::vector<int64_t>& first = first_tl;
  first.resize(size_t(b.num_seqs + 1));
  first[0] = 0;
  for (int64_t s = 0; s < b.num_seqs; ++s) first[size_t(s + 1)] = first[size_t(s)] + d.heads * ((qs[s + 1] - qs[s] + QB - 1) / QB);

  double work = 0;  // multiply-adds of the whole batch, to size the chunks
  for (int64_t s = 0; s < b.num_seqs; ++s) work += double(qs[s + 1] - qs[s]) * double(sl[s]) * double(d.qk_dim + d.v_dim);
  const int64_t items = first[size_t(b.num_seqs)];
  parallel_for(items, [&](int64_t i0, int64_t i1) {
    Scratch& sc = t_scratch;
    int64_t s = std::upper_bound(first.begin(), first.end(), i0) - first.begin() - 1;
    for (int64_t it = i0; it < i1; ++it) {
      while (it >= first[size_t(s + 1)]) ++s;
      const int64_t nq_seq = qs[s + 1] - qs[s], chunks = (nq_seq + QB - 1) / QB, local = it - first[size_t(s)];
      const int64_t h = local / chunks, q0 = (local % chunks) * QB, q1 = std::min(nq_seq, q0 + QB), nq = q1 - q0;
      const int64_t pos0 = sl[s] - nq_seq, len = pos0 + q1;  // the last query sees tokens 0 .. pos0 + q1 - 1
      const int64_t g = h / group, row0 = qs[s] + q0;
      const int32_t* blocks = b.block_table.ptr<int32_t>() + s * b.max_blocks;
      ConstMap Q(q.row<float>(row0) + h * d.q_head_stride, nq, d.qk_dim, Eigen::OuterStride<>(q.row_stride()));
      ConstMap K = kv_rows(kv.k, bs, blocks, len, d.k_offset + g * d.k_head_stride, d.qk_dim, sc.k);
      Map S(scratch(sc.s, nq * len, QB), nq, len, Eigen::OuterStride<>(len));
      S.noalias() = Q * K.transpose();
      for (int64_t i = 0; i < nq; ++i) {  // causal softmax per query row
        const int64_t n = pos0 + q0 + i + 1;
        auto row = S.row(i);
        float mx = -INFINITY;
        for (int64_t t = 0; t < n; ++t) mx = std::max(mx, row(t) * d.scale);
        double sum = 0;
        for (int64_t t = 0; t < n; ++t) sum += row(t) = std::exp(row(t) * d.scale - mx);
        const float inv = float(1.0 / sum);
        for (int64_t t = 0; t < n; ++t) row(t) *= inv;
        for (int64_t t = n; t < len; ++t) row(t) = 0;
        if (lse) lse->row<float>(row0 + i)[h] = mx + float(std::log(sum));
      }
      ConstMap V = kv_rows(kv.v, bs, blocks, len, d.v_offset + g * d.v_head_stride, d.v_dim, sc.v);
      Map O(out.row<float>(row0) + h * d.v_dim, nq, d.v_dim, Eigen::OuterStride<>(out.row_stride()));
      O.setZero();
      O.noalias() += S * V;
    }
  }, grain_for(double(d.heads) * work / double(std::max<int64_t>(1, items))));
}

}  // namespace llmopt::backend
