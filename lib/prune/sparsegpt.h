#pragma once
// SparseGPT (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately Pruned in
// One-Shot", Algorithm 1): sweep the columns of W left to right; a pruned weight's error is spread over
// the not-yet-visited columns with the inverse Hessian (the OBS update, as in GPTQ), so the kept weights
// reconstruct the layer's output: minimises tr((W − Ŵ) H (W − Ŵ)ᵀ) for a given pattern.
//
// Follows the reference implementation (IST-DASLab/sparsegpt fasterprune, llm-compressor's
// sparsify_weight) and shares GPTQ's machinery (lib/quant/hessian.h: dead columns, damped inverse
// Cholesky factor U with Uᵀ U = (H + λI)⁻¹):
//  - adaptive mask selection: unstructured masks are chosen per block of block_size columns when the
//    sweep reaches the block, from w²/[H⁻¹]_jj² = (w / U_jj)² of the block's already-updated weights;
//    by default over the whole block (all rows compete, the paper's Algorithm 1 and the references), or
//    per row within the block (row_mask: every row gets exactly its share). The references prune
//    floor(count·p) + 1 weights of a block (`<= threshold`); we prune exactly floor(count·p).
//  - N:M: the mask of columns [j, j+m) is chosen when the sweep reaches column j (j % m == 0), keeping
//    the n largest (w / U_jj)² of each row;
//  - joint sparsify + quantize (quant set; the paper's §3.5 joint compression, the reference's
//    quantizer branch): every kept weight is rounded to the grid inside the same sweep (GPTQ), pruned
//    ones are set to 0 (always on the grid: the zero point), and both errors are propagated together.
//    Per-channel params come from W before the sweep (as the reference); group params (dynamic, GPTQ's
//    default) when the sweep reaches a group's first column, from the group's current weights.
//  - lazy batch updates per block of block_size columns; rows in fixed 16-row tiles, so any thread
//    count gives the same bits.
#include <cstdint>
#include <optional>
#include <vector>

#include <Eigen/Core>

#include "lib/prune/pattern.h"
#include "lib/quant/grid.h"

namespace llmopt::prune {

struct SparseGptOptions {
  SparsityPattern pattern;
  int block_size = 128;   // lazy-batch width B; also the unstructured mask-selection block (m must divide it)
  double damp = 0.01;     // λ = damp · mean(diag H)
  bool row_mask = false;  // unstructured: choose the mask per row within each block (exact per-row sparsity)
  std::optional<quant::QuantGrid> quant;  // joint sparsify + quantize
};

struct SparseGptResult {
  std::vector<uint8_t> mask;                // [rows, cols], 1 = pruned
  std::vector<float> loss;                  // [rows] Σ_j (w_j − ŵ_j)² / [H⁻¹]_jj / 2 (the reference's losses)
  std::optional<quant::QuantizedMatrix> q;  // joint: codes of every weight (pruned ones at the zero point)
};

// W: [rows, cols] row-major fp32 (a linear's [out, in]), replaced in place by the pruned, reconstructed
// weight (joint: the dequantized one, == q->dequantize()); inputs never active (diag H = 0) are zeroed.
// H: [cols, cols] from quant::Hessian::matrix().
SparseGptResult sparsegpt_prune(float* W, int64_t rows, int64_t cols, const Eigen::MatrixXf& H,
                                const SparseGptOptions& opt);

}  // namespace llmopt::prune
