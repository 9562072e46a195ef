#pragma once
// Weights of a Llama-family model grouped by layer. Linears view the mmap'd checkpoint in their stored
// dtype; the small vectors (norm weights, biases) are widened to fp32. The Checkpoint must outlive them.
#include <cstdint>
#include <string>
#include <vector>

#include "lib/model/checkpoint.h"
#include "lib/model/linear.h"

namespace llmopt::model {

struct ArchTable;  // arch.h

// One decoder layer's weights in the slots the forward pass reads; which slots a family uses, and under
// which tensor names, is its ArchTable's business.
struct LayerWeights {
  int index = 0;
  const ArchTable* arch = nullptr;  // the table the layer was loaded by
  std::vector<float> input_norm, post_attention_norm;  // [hidden]
  std::vector<float> q_norm, k_norm;                   // [head_dim], qwen3 only (else empty)
  Linear q, k, v, o;                                   // self_attn.{q,k,v,o}_proj
  Linear gate, up, down;                               // mlp.{gate,up,down}_proj

  // The layer's linears in the table's order (the order a calibration method processes them).
  std::vector<Linear*> linears();
};

struct ModelWeights {
  Linear embed;  // model.embed_tokens.weight [vocab, hidden], rows looked up by token id
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;  // model.norm.weight
  Linear lm_head;                 // lm_head.weight, or the embedding when tie_word_embeddings
};

LayerWeights load_layer(const Checkpoint& ck, int layer);
ModelWeights load_weights(const Checkpoint& ck);

// Tensor `name` widened to fp32 with `numel` elements (Error naming it otherwise).
std::vector<float> load_vector_f32(const st::TensorSet& ts, const std::string& name, int64_t numel);

}  // namespace llmopt::model
