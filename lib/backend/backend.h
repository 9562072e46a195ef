#pragma once
// The Backend: where tensors live and the op set the forward pass is written against. One binary holds
// every backend that was built (cpu always; cuda when nvcc was found) and picks one at run time
// (--device). Ops take tensor views on the backend's device; activations are fp32 rows, weights stay in
// their stored dtype or their prepared quantized form. Ops never allocate device memory: the caller
// passes views into its workspace arena and the KV storage.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "lib/core/tensor.h"

namespace llmopt::backend {

struct QuantMatrix;  // a quantized linear in the backend's prepared form (lib/backend/cpu/qmatmul.h)

// One step's attention batch, built by the caller (the scheduler) over the paged KV cache. Sequence s owns
// query rows [query_start[s], query_start[s+1]); after this step it holds seq_len[s] tokens, the new ones
// last, so query j of s sees the first seq_len[s] − n_s + j + 1 tokens (causal). Token t of s is cache
// row block_table[s·max_blocks + t / block_size]·block_size + t % block_size. New token i is written to
// cache row slot_mapping[i]; positions[i] is its RoPE position. All I32 except slot_mapping/positions (I64).
struct AttentionBatch {
  int64_t num_seqs = 0, num_tokens = 0;
  int64_t max_blocks = 0, block_size = 16;
  Tensor query_start;   // [num_seqs + 1]
  Tensor seq_len;       // [num_seqs]
  Tensor block_table;   // [num_seqs, max_blocks]
  Tensor slot_mapping;  // [num_tokens]
  Tensor positions;     // [num_tokens]
};

// One layer's paged K/V: rows of storage tensors [num_blocks·block_size, row]. v may view the same
// storage as k (MLA: the value is a prefix of the cached latent).
struct KVLayer {
  Tensor k, v;
  int64_t block_size = 16;
};

// Head geometry of attention: query head h reads kv head h / (heads / kv_heads) (GQA without copies).
// Query head h is q[:, h·q_head_stride .. + qk_dim]; kv head g's key is k[:, k_offset + g·k_head_stride .. +
// qk_dim] and its value v[:, v_offset + g·v_head_stride .. + v_dim]; the output of head h is
// out[:, h·v_dim .. + v_dim].
struct AttnDims {
  int64_t heads = 0, kv_heads = 0, qk_dim = 0, v_dim = 0;
  int64_t q_head_stride = 0, k_head_stride = 0, v_head_stride = 0;
  int64_t k_offset = 0, v_offset = 0;
  float scale = 1;

  // The usual layout: heads of head_dim, keys and values with the same width, packed head after head.
  static AttnDims uniform(int64_t heads, int64_t kv_heads, int64_t head_dim, float scale) {
    return {heads, kv_heads, head_dim, head_dim, head_dim, head_dim, head_dim, 0, 0, scale};
  }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;

  // ---- memory -----------------------------------------------------------------------------------
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p) = 0;
  virtual void upload(void* dst, const void* host, size_t bytes) = 0;
  virtual void download(void* host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  virtual void synchronize() {}
  // Sizes the attention scratch for sequences of up to max_seq_len tokens with key/value rows up to
  // max_width floats, so that steps allocate nothing after it (a paged cache calls it when created).
  virtual void reserve_attention(int64_t max_seq_len, int64_t max_width) { (void)max_seq_len, (void)max_width; }

  // ---- the op set ---------------------------------------------------------------------------------
  // y[n, out] = x[n, in] · wᵀ (+ bias[out]); w [out, in] in F32, BF16 or F16.
  virtual void matmul(const Tensor& w, const Tensor* bias, const Tensor& x, const Tensor& y) = 0;
  // The same for a quantized weight in this backend's prepared form.
  virtual void matmul_quant(const QuantMatrix& w, const Tensor* bias, const Tensor& x, const Tensor& y) = 0;
  // y = x / sqrt(mean(x²) + eps) ⊙ w, per row of x [n, d]; y may alias x.
  virtual void rmsnorm(const Tensor& x, const Tensor& w, float eps, const Tensor& y) = 0;
  // RoPE (rotate_half pairing) in place on dims [rot_offset, rot_offset + rot_dim) of each of `heads` heads
  // (head h starts at h·head_stride in a row of x); row i at position positions[i]; inv_freq [rot_dim / 2].
  virtual void rope(const Tensor& x, int64_t heads, int64_t head_stride, int64_t rot_offset, int64_t rot_dim,
                    const Tensor& positions, const Tensor& inv_freq) = 0;
  // out[n, d] = silu(gate) ⊙ up (out may alias gate).
  virtual void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
  // x += y, elementwise over [n, d].
  virtual void add(const Tensor& x, const Tensor& y) = 0;
  // out[i] = table[ids[i]] widened to fp32 (embedding lookup, row gather). ids I32.
  virtual void get_rows(const Tensor& table, const Tensor& ids, const Tensor& out) = 0;
  // dst[slots[i]] = src[i] (KV append through the slot mapping). slots I64.
  virtual void set_rows(const Tensor& src, const Tensor& slots, const Tensor& dst) = 0;
  // Causal softmax(q·kᵀ·scale)·v over the batch's paged K/V. lse, when non-null, receives each query row's
  // log-sum-exp per head [num_tokens, heads] (scaled scores, natural log) so partial results can merge.
  virtual void attention(const AttentionBatch& batch, const Tensor& q, const KVLayer& kv, const AttnDims& dims,
                         const Tensor& out, const Tensor* lse) = 0;
  // Merges a second partial attention (over other keys) into the first: o_a ← softmax-weighted mix of o_a
  // and o_b by their log-sum-exps, lse_a ← log(e^lse_a + e^lse_b). o [n, heads·v_dim], lse [n, heads].
  virtual void attention_merge(const Tensor& o_a, const Tensor& lse_a, const Tensor& o_b, const Tensor& lse_b,
                               int64_t heads, int64_t v_dim) = 0;
};

// The process-wide CPU backend.
Backend& cpu();
// The backend models load onto unless told otherwise (--device); the CPU until select() names another.
Backend& current();
void select(std::string_view name);  // Error as get()
// "cpu" or "cuda" (Error naming the choices, or saying this binary was built without CUDA).
Backend& get(std::string_view name);
// Backends this binary holds, e.g. "cpu, cuda".
std::string available();

}  // namespace llmopt::backend
