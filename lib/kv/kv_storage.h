#pragma once
// Per-layer K/V storage owned by a backend: for every layer one K and one V tensor of
// num_blocks · block_size rows, laid out as the format says. Block ids come from a BlockPool; this class
// knows nothing of sequences.
#include <cstdint>
#include <vector>

#include "lib/backend/backend.h"
#include "lib/kv/kv_format.h"

namespace llmopt::kv {

class KVStorage {
 public:
  KVStorage(backend::Backend& b, const KVFormat& f, int n_layers, int64_t num_blocks);
  ~KVStorage();
  KVStorage(const KVStorage&) = delete;
  KVStorage& operator=(const KVStorage&) = delete;

  const KVFormat& format() const { return f_; }
  int n_layers() const { return int(k_.size()); }
  int64_t num_blocks() const { return num_blocks_; }
  backend::Backend& backend() const { return *b_; }

  backend::KVLayer layer(int l) const;
  // Copies block src's rows to block dst in every layer (copy-on-write).
  void copy_block(int32_t src, int32_t dst);

 private:
  backend::Backend* b_;
  KVFormat f_;
  int64_t num_blocks_;
  std::vector<void*> k_, v_;
};

}  // namespace llmopt::kv
