#pragma once
// Per-layer reconstruction error of a compressed checkpoint against the original, shared by the quantize,
// AWQ and prune tests: err[l] = ‖layer_ref(x_l) − layer_other(x_l)‖² with x_l the ORIGINAL model's input to
// layer l, over `ids` cut into windows of `seqlen` tokens (each from position 0).
#include <span>
#include <vector>

#include "lib/model/forward.h"

namespace llmopt::test {

inline std::vector<double> layer_errors(const model::Checkpoint& ref, const model::Checkpoint& other,
                                        std::span<const int32_t> ids, int64_t seqlen = 128) {
  const int64_t H = ref.config.hidden_size, nseq = int64_t(ids.size()) / seqlen;
  std::vector<model::SeqRows> seqs;
  for (int64_t s = 0; s < nseq; ++s) seqs.push_back({int(s), s * seqlen, seqlen, 0});
  model::ModelWeights mw;
  mw.embed = model::Linear::view("model.embed_tokens", ref.tensors.get("model.embed_tokens.weight"));
  std::vector<float> x(size_t(nseq * seqlen * H));
  model::embed_tokens(mw, ids.first(size_t(nseq * seqlen)), x.data());
  const auto inv = model::rope_inv_freq(ref.config);
  model::LayerContext ctx{&ref.config, &inv, seqs, nullptr, nullptr};
  std::vector<double> err;
  for (int l = 0; l < int(ref.config.num_hidden_layers); ++l) {
    const auto wr = model::load_layer(ref, l), wo = model::load_layer(other, l);
    std::vector<float> y = x;
    model::decoder_layer_forward(ctx, wr, x.data());
    model::decoder_layer_forward(ctx, wo, y.data());
    double e = 0;
    for (size_t i = 0; i < x.size(); ++i) e += double(x[i] - y[i]) * double(x[i] - y[i]);
    err.push_back(e);
  }
  return err;
}

}  // namespace llmopt::test
