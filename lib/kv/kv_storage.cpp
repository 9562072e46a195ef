#include "lib/kv/kv_storage.h"

#include "lib/core/error.h"

namespace llmopt::kv {

KVFormat make_format(DType dtype, int64_t block_size, int64_t kv_heads, int64_t k_dim, int64_t v_dim) {
  if (dtype != DType::F32) fail("kv cache: dtype {} is not supported (F32)", dtype_name(dtype));
  if (block_size <= 0 || block_size > 4096) fail("kv cache: block size {} outside [1, 4096]", block_size);
  if (kv_heads <= 0 || k_dim <= 0 || v_dim <= 0)
    fail("kv cache: {} kv heads of widths {} / {} is not a valid layout", kv_heads, k_dim, v_dim);
  return {dtype, block_size, kv_heads, k_dim, v_dim};
}

KVStorage::KVStorage(backend::Backend& b, const KVFormat& f, int n_layers, int64_t num_blocks)
    : b_(&b), f_(f), num_blocks_(num_blocks) {
  if (num_blocks <= 0) fail("kv cache: needs at least one block, got {}", num_blocks);
  const size_t rows = size_t(num_blocks * f.block_size), es = dtype_size(f.dtype);
  for (int l = 0; l < n_layers; ++l) {
    k_.push_back(b.alloc(rows * size_t(f.k_row()) * es));
    v_.push_back(b.alloc(rows * size_t(f.v_row()) * es));
  }
}

KVStorage::~KVStorage() {
  for (void* p : k_) b_->free(p);
  for (void* p : v_) b_->free(p);
}

backend::KVLayer KVStorage::layer(int l) const {
  const int64_t rows = num_blocks_ * f_.block_size;
  const Device d = b_->device();
  return {Tensor::matrix(k_[size_t(l)], f_.dtype, rows, f_.k_row(), 0, d),
          Tensor::matrix(v_[size_t(l)], f_.dtype, rows, f_.v_row(), 0, d), f_.block_size};
}

void KVStorage::copy_block(int32_t src, int32_t dst) {
  const size_t es = dtype_size(f_.dtype), bs = size_t(f_.block_size);
  for (size_t l = 0; l < k_.size(); ++l) {
    const size_t kb = bs * size_t(f_.k_row()) * es, vb = bs * size_t(f_.v_row()) * es;
    b_->copy(static_cast<std::byte*>(k_[l]) + size_t(dst) * kb, static_cast<std::byte*>(k_[l]) + size_t(src) * kb, kb);
    b_->copy(static_cast<std::byte*>(v_[l]) + size_t(dst) * vb, static_cast<std::byte*>(v_[l]) + size_t(src) * vb, vb);
  }
}

}  // namespace llmopt::kv
