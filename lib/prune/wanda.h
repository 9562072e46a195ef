#pragma once
// Wanda (Sun, Liu, Bair, Kolter 2023, "A Simple and Effective Pruning Approach for Large Language
// Models"): prune by |W_ij| · ‖X_j‖₂, the weight times the norm of its input feature over the
// calibration tokens, compared within each output row (the paper's per-output comparison group); no
// weight update. N:M: the m − n lowest scores of every m consecutive inputs of a row.
#include <cstdint>
#include <vector>

#include "lib/prune/pattern.h"

namespace llmopt::prune {

// W [rows, cols] row-major, pruned in place. x_sq_norm [cols]: Σ_t x_tj² over the calibration tokens
// (any positive multiple, e.g. llm-compressor's mean over samples, gives the same mask); 0 for an
// input never active (its weights are pruned first). scope = Scope::matrix is the paper's per-layer
// ablation. Returns the mask (1 = pruned). Error on a negative or NaN x_sq_norm.
std::vector<uint8_t> wanda_prune(float* W, int64_t rows, int64_t cols, const float* x_sq_norm,
                                 const SparsityPattern& pattern, Scope scope = Scope::row);

}  // namespace llmopt::prune
