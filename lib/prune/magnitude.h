#pragma once
// Magnitude pruning: zero the weights of smallest |W|, the baseline every other pruner must beat.
#include <cstdint>
#include <vector>

#include "lib/prune/pattern.h"

namespace llmopt::prune {

// W [rows, cols] row-major, pruned in place. Unstructured: the smallest |W| of each output row
// (Scope::row) or of the whole matrix (Scope::matrix, llm-compressor's MagnitudePruningModifier);
// N:M: the m − n smallest of every m consecutive inputs of a row. Returns the mask (1 = pruned).
std::vector<uint8_t> magnitude_prune(float* W, int64_t rows, int64_t cols, const SparsityPattern& pattern,
                                     Scope scope = Scope::row);

}  // namespace llmopt::prune
