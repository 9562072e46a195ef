// Causal attention over block-addressed K/V (contiguous or paged), GQA by index: query head h
// reads kv head h / group. Work items are (sequence, head, chunk of up to 16 queries), spread over
// threads; within an item, scores and outputs are small GEMMs per K/V block (Eigen).
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <vector>

#include "lib/backend/ops.h"
#include "lib/core/threads.h"

namespace llmopt::backend {
namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
}  // namespace

void attention(std::span<const AttnSeq> seqs, int64_t heads, int64_t kv_heads, int64_t head_dim,
               int64_t q_stride, int64_t out_stride, float scale) {
  const int64_t group = heads / kv_heads, D = head_dim;
  constexpr int64_t QB = 16;  // queries per work item
  struct Item { int64_t seq, head, q0, q1; };
  std::vector<Item> items;
  for (size_t s = 0; s < seqs.size(); ++s)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t q0 = 0; q0 < seqs[s].n; q0 += QB)
        items.push_back({int64_t(s), h, q0, std::min(seqs[s].n, q0 + QB)});

  parallel_for(int64_t(items.size()), [&](int64_t b, int64_t e) {
    RowMat S;  // scores [queries, tokens]
    for (int64_t it = b; it < e; ++it) {
      const Item& w = items[size_t(it)];
      const AttnSeq& s = seqs[size_t(w.seq)];
      const KVBlocks& kv = s.kv;
      const int64_t kvh = w.head / group, nq = w.q1 - w.q0;
      const int64_t len = s.pos0 + w.q1;  // the last query sees tokens 0 .. pos0 + q1 - 1
      Strided Q(s.q + w.q0 * q_stride + w.head * D, nq, D, Eigen::OuterStride<>(q_stride));
      S.resize(nq, len);
      for (int64_t t0 = 0; t0 < len; t0 += kv.block_size) {  // S[:, block] = Q · K_blockᵀ
        const int64_t nt = std::min(kv.block_size, len - t0), blk = t0 / kv.block_size;
        Strided K(kv.k[blk] + kvh * D, nt, D, Eigen::OuterStride<>(kv.row_stride));
        S.middleCols(t0, nt).noalias() = Q * K.transpose();
      }
      for (int64_t i = 0; i < nq; ++i) {  // causal softmax per query row
        const int64_t n = s.pos0 + w.q0 + i + 1;
        auto row = S.row(i);
        float mx = -INFINITY;
        for (int64_t t = 0; t < n; ++t) mx = std::max(mx, row(t) * scale);
        double sum = 0;
        for (int64_t t = 0; t < n; ++t) sum += row(t) = std::exp(row(t) * scale - mx);
        const float inv = float(1.0 / sum);
        for (int64_t t = 0; t < n; ++t) row(t) *= inv;
        for (int64_t t = n; t < len; ++t) row(t) = 0;
      }
      Eigen::Map<RowMat, 0, Eigen::OuterStride<>> O(s.out + w.q0 * out_stride + w.head * D, nq, D,
                                                    Eigen::OuterStride<>(out_stride));
      O.setZero();
      for (int64_t t0 = 0; t0 < len; t0 += kv.block_size) {  // O += P[:, block] · V_block
        const int64_t nt = std::min(kv.block_size, len - t0), blk = t0 / kv.block_size;
        Strided V(kv.v[blk] + kvh * D, nt, D, Eigen::OuterStride<>(kv.row_stride));
        O.noalias() += S.middleCols(t0, nt) * V;
      }
    }
  });
}

}  // namespace llmopt::backend
