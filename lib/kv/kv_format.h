#pragma once
// The KV storage format descriptor: how one layer's keys and values are laid out in cache blocks. One
// descriptor for every cache kind: plain dtypes now; quantized formats (KIVI, q8_0, ...) and the MLA
// latent layout become further kinds here, and storage, attention and `inspect` all read it.
#include <cstdint>

#include "lib/core/dtype.h"

namespace llmopt::kv {

struct KVFormat {
  DType dtype = DType::F32;  // element type of the stored K and V rows (F32 only so far)
  int64_t block_size = 16;   // tokens per block
  int64_t kv_heads = 0;
  int64_t k_dim = 0, v_dim = 0;  // per-head key and value widths

  int64_t k_row() const { return kv_heads * k_dim; }  // elements of one token's keys in a layer
  int64_t v_row() const { return kv_heads * v_dim; }
  int64_t bytes_per_token() const { return (k_row() + v_row()) * int64_t(dtype_size(dtype)); }  // per layer
};

// A validated format (Error on non-positive sizes or an unsupported dtype).
KVFormat make_format(DType dtype, int64_t block_size, int64_t kv_heads, int64_t k_dim, int64_t v_dim);

}  // namespace llmopt::kv
