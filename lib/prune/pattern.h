#pragma once
// Sparsity patterns and score-based masks shared by the pruners (magnitude, Wanda, SparseGPT).
//
// Convention: a weight W is a linear's [rows = out, cols = in], row-major fp32; a mask is [rows, cols]
// bytes, 1 = pruned (set to zero). Pruning keeps the HIGHEST scores.
//   unstructured: `sparsity` is the fraction zeroed, floor(count · sparsity) weights of each comparison
//                 group (a row, or the whole matrix);
//   N:M (m > 0):  in every m consecutive inputs of a row keep the n highest scores (NVIDIA's 2:4 keeps 2
//                 of 4). Note: llm-compressor / the SparseGPT and Wanda repos write "n:m" for n PRUNED of
//                 m; the two agree for 2:4 and 4:8. cols must be a multiple of m.
// Ties are broken by column index (the lower index is pruned first), like a stable ascending sort, so
// masks are deterministic.
#include <cstdint>
#include <string>
#include <vector>

namespace llmopt::prune {

struct SparsityPattern {
  double sparsity = 0.5;  // unstructured: fraction of weights set to zero, in [0, 1)
  int n = 0, m = 0;       // N:M when m > 0: keep n of every m consecutive inputs

  bool nm() const { return m > 0; }
  double target() const { return nm() ? 1.0 - double(n) / double(m) : sparsity; }  // fraction zeroed
  std::string str() const;                                                         // "50%" or "2:4"
  void validate(int64_t cols) const;  // Error on a sparsity outside [0, 1), n > m, cols % m != 0
};

// Which weights compete for the unstructured budget.
enum class Scope {
  row,     // each output row keeps its own top (1 − sparsity) (Wanda's per-output comparison group)
  matrix,  // one threshold for the whole matrix (classic layer-wise magnitude pruning)
};

// The mask keeping the highest scores under `pattern` (N:M ignores `scope`: it is per row by definition).
// Error on a NaN score.
std::vector<uint8_t> select_mask(const float* score, int64_t rows, int64_t cols, const SparsityPattern& pattern,
                                 Scope scope = Scope::row);

// W[i] = 0 where mask[i]; returns the number of masked entries.
int64_t apply_mask(float* W, const uint8_t* mask, int64_t n);

// Does every group of m consecutive entries of each row hold at most n nonzeros (W [rows, cols])?
bool is_nm_sparse(const float* W, int64_t rows, int64_t cols, int n, int m);

}  // namespace llmopt::prune
