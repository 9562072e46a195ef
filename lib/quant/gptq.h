#pragma once
// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers", Algorithm 1): quantize the columns of W one at a time in a fixed
// order and spread each column's rounding error over the not-yet-quantized columns with the inverse
// Hessian (the OBS update), minimising ‖WX − ŴX‖² = tr((W − Ŵ) H (W − Ŵ)ᵀ) / 2.
//
// Follows the reference implementation (IST-DASLab/gptq fasterquant, as AutoGPTQ/GPTQModel run it):
//  - lazy batch updates: columns are swept in blocks of block_size; inside a block the update touches
//    only the block, the rest of W gets one GEMM per block;
//  - dynamic groups (default): a group's scale/zero are computed when its first column is reached, from
//    W as updated by all previous blocks (the reference reads the lazily-updated W, so columns earlier in
//    the same block have not yet pushed their error into the group when block_size > group_size);
//  - static_groups: every group's scale/zero from the original W before the sweep (llm-compressor's
//    behaviour, and AutoGPTQ's static_groups=True);
//  - act_order ("desc_act"): columns swept by decreasing diag H; with dynamic groups a group is G
//    consecutive columns in that order and g_idx maps every original column to it; with static groups
//    the groups stay the original ones (g_idx[c] = c / G; llm-compressor's actorder="weight");
//  - per channel (group_size −1): one scale/zero per row from the original W;
//  - dead inputs (diag H == 0) are zeroed in W before any scale/zero is computed (the references compute
//    per-channel / llm-compressor's static params before zeroing them); ragged last group as in grid.h.
// Deterministic: rows are processed in fixed 16-row tiles (any thread count gives the same bits).
#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "lib/quant/grid.h"

namespace llmopt::quant {

struct GptqOptions {
  QuantGrid grid;
  int block_size = 128;      // lazy-batch width B
  double damp = 0.01;        // λ = damp · mean(diag H)
  bool act_order = false;    // sweep columns by decreasing diag H
  bool static_groups = false;
  // [rows, cols] in the original column order, or empty: 1 pins that weight to exactly 0 (the zero code), its
  // value's error still spread over later columns (a pruned checkpoint keeps its sparsity pattern).
  std::span<const uint8_t> pinned_zero;
};

struct GptqResult {
  QuantizedMatrix q;
  std::vector<float> loss;  // [rows] Σ_i (w_i − q_i)² / [H⁻¹]_ii / 2 (the reference's Losses)
};

// W: [rows, cols] row-major fp32 (a linear's [out, in]); H: [cols, cols] from Hessian::matrix().
GptqResult gptq_quantize(const float* W, int64_t rows, int64_t cols, const Eigen::MatrixXf& H,
                         const GptqOptions& opt);

// The GPTQ objective tr((W − Q) H (W − Q)ᵀ) in double (W, Q [rows, cols] row-major).
double gptq_objective(const float* W, const float* Q, int64_t rows, int64_t cols, const Eigen::MatrixXf& H);

}  // namespace llmopt::quant
