#include "lib/model/forward.h"

#include <cmath>
#include <numbers>
#include <set>

#include "lib/backend/ops.h"
#include "lib/core/error.h"

namespace llmopt::model {

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int64_t D = c.head_dim, half = D / 2;
  std::vector<float> f(static_cast<size_t>(half));
  // HF: 1 / base^(2j/D), computed in fp32
  for (int64_t j = 0; j < half; ++j) {
    const float e = float(2 * j) / float(D);
    const float p = float(std::pow(double(float(c.rope_theta)), double(e)));
    f[size_t(j)] = 1.0f / p;
  }
  const RopeScaling& s = c.rope_scaling;
  if (s.type.empty() || s.type == "default") return f;
  const float factor = float(s.factor);
  if (s.type == "linear") {
    for (float& v : f) v /= factor;
  } else if (s.type == "llama3") {
    // Long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
    const float old_ctx = float(s.original_max_position_embeddings);
    const float lo = float(s.low_freq_factor), hi = float(s.high_freq_factor);
    const float low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
    for (float& v : f) {
      const float wavelen = float(2 * std::numbers::pi) / v;
      float nv = wavelen > low_wavelen ? v / factor : v;
      if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
        const float smooth = (old_ctx / wavelen - lo) / (hi - lo);
        nv = (1 - smooth) * nv / factor + smooth * nv;
      }
      v = nv;
    }
  } else {
    fail("rope_scaling type '{}' is not supported by the forward pass (linear, llama3)", s.type);
  }
  return f;
}

namespace {

int64_t total_rows(std::span<const SeqRows> seqs) {
  int64_t t = 0;
  for (const auto& s : seqs) t = std::max(t, s.row + s.n);
  return t;
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

void attention_block(const LayerContext& ctx, const LayerWeights& w, float* x) {
  const ModelConfig& c = *ctx.config;
  const int64_t T = total_rows(ctx.seqs), H = c.hidden_size, D = c.head_dim;
  const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, qd = nh * D, kvd = nkv * D;
  const float eps = float(c.rms_norm_eps);

  std::vector<float> h(size_t(T * H)), q(size_t(T * qd)), k(size_t(T * kvd)), v(size_t(T * kvd));
  backend::rmsnorm(x, w.input_norm.data(), T, H, eps, h.data());
  if (ctx.observe)
    for (const Linear* l : {&w.q, &w.k, &w.v}) (*ctx.observe)(w.index, *l, h.data(), T, H);
  linear_forward(w.q, h.data(), T, q.data());
  linear_forward(w.k, h.data(), T, k.data());
  linear_forward(w.v, h.data(), T, v.data());
  if (!w.q_norm.empty()) {  // qwen3: RMSNorm over each head before RoPE
    backend::rmsnorm(q.data(), w.q_norm.data(), T * nh, D, eps, q.data());
    backend::rmsnorm(k.data(), w.k_norm.data(), T * nkv, D, eps, k.data());
  }
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (const auto& s : ctx.seqs)
    for (int64_t i = 0; i < s.n; ++i) pos[size_t(s.row + i)] = s.pos0 + i;
  backend::rope(q.data(), T, nh, D, qd, pos.data(), ctx.inv_freq->data());
  backend::rope(k.data(), T, nkv, D, kvd, pos.data(), ctx.inv_freq->data());

  // K/V: appended to the cache, or (no cache) attended in place as one block per sequence
  std::vector<backend::AttnSeq> att(ctx.seqs.size());
  std::vector<const float*> kp(ctx.seqs.size()), vp(ctx.seqs.size());
  std::vector<float> o(size_t(T * qd));
  for (size_t i = 0; i < ctx.seqs.size(); ++i) {
    const SeqRows& s = ctx.seqs[i];
    att[i].q = q.data() + s.row * qd;
    att[i].out = o.data() + s.row * qd;
    att[i].n = s.n;
    att[i].pos0 = s.pos0;
    if (ctx.kv) {
      for (int64_t t = 0; t < s.n; ++t) {
        std::copy_n(k.data() + (s.row + t) * kvd, kvd, ctx.kv->key_row(w.index, s.slot, s.pos0 + t));
        std::copy_n(v.data() + (s.row + t) * kvd, kvd, ctx.kv->value_row(w.index, s.slot, s.pos0 + t));
      }
      att[i].kv = ctx.kv->blocks(w.index, s.slot);
    } else {
      if (s.pos0 != 0) fail("attention without a KV cache needs sequences starting at position 0");
      kp[i] = k.data() + s.row * kvd;
      vp[i] = v.data() + s.row * kvd;
      att[i].kv = {&kp[i], &vp[i], std::max<int64_t>(s.n, 1), kvd};
    }
  }
  backend::attention(att, nh, nkv, D, qd, qd, float(1.0 / std::sqrt(double(D))));

  if (ctx.observe) (*ctx.observe)(w.index, w.o, o.data(), T, qd);
  linear_forward(w.o, o.data(), T, h.data());
  add_inplace(x, h.data(), T * H);
}

void mlp_block(const LayerContext& ctx, const LayerWeights& w, float* x) {
  const ModelConfig& c = *ctx.config;
  const int64_t T = total_rows(ctx.seqs), H = c.hidden_size, I = c.intermediate_size;
  std::vector<float> h(size_t(T * H)), g(size_t(T * I)), u(size_t(T * I));
  backend::rmsnorm(x, w.post_attention_norm.data(), T, H, float(c.rms_norm_eps), h.data());
  if (ctx.observe)
    for (const Linear* l : {&w.gate, &w.up}) (*ctx.observe)(w.index, *l, h.data(), T, H);
  linear_forward(w.gate, h.data(), T, g.data());
  linear_forward(w.up, h.data(), T, u.data());
  backend::swiglu(g.data(), u.data(), T, I, I, g.data());
  if (ctx.observe) (*ctx.observe)(w.index, w.down, g.data(), T, I);
  linear_forward(w.down, g.data(), T, h.data());
  add_inplace(x, h.data(), T * H);
}

void decoder_layer_forward(const LayerContext& ctx, const LayerWeights& w, float* x) {
  attention_block(ctx, w, x);
  mlp_block(ctx, w, x);
}

void embed_tokens(const ModelWeights& w, std::span<const int32_t> ids, float* x) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= w.embed.out) fail("token id {} is outside the vocabulary (0..{})", ids[i], w.embed.out - 1);
    backend::dense_row(w.embed.dense(), ids[i], x + int64_t(i) * w.embed.in);
  }
}

void final_logits(const ModelConfig& c, const ModelWeights& w, const float* x, std::span<const int64_t> rows,
                  float* logits) {
  const int64_t H = c.hidden_size, R = int64_t(rows.size());
  std::vector<float> h(size_t(R * H));
  for (int64_t i = 0; i < R; ++i) std::copy_n(x + rows[size_t(i)] * H, H, h.data() + i * H);
  backend::rmsnorm(h.data(), w.final_norm.data(), R, H, float(c.rms_norm_eps), h.data());
  linear_forward(w.lm_head, h.data(), R, logits);
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir) {
  return std::make_unique<Model>(Checkpoint::load(dir));
}

Model::Model(Checkpoint ck) : ck_(std::move(ck)) {
  w_ = load_weights(ck_);
  inv_freq_ = rope_inv_freq(ck_.config);
}

std::unique_ptr<kv::KVCache> Model::make_cache(int n_slots, int64_t max_tokens) const {
  const ModelConfig& c = config();
  if (max_tokens <= 0) max_tokens = c.max_position_embeddings > 0 ? c.max_position_embeddings : 4096;
  return std::make_unique<kv::ContiguousKVCache>(int(c.num_hidden_layers), c.num_key_value_heads * c.head_dim,
                                                 n_slots, max_tokens);
}

std::vector<float> Model::forward(std::span<const SeqInput> batch, kv::KVCache& kv, const Observer* observe) {
  const ModelConfig& c = config();
  std::vector<SeqRows> seqs;
  std::vector<int32_t> ids;
  std::vector<int64_t> out_rows;
  std::set<int> slots;
  for (const auto& b : batch) {
    if (b.tokens.empty()) fail("forward: a sequence in the batch has no tokens");
    if (!slots.insert(b.slot).second) fail("forward: slot {} appears twice in one batch", b.slot);
    SeqRows s{b.slot, int64_t(ids.size()), int64_t(b.tokens.size()), kv.length(b.slot)};
    kv.reserve(b.slot, s.n);
    ids.insert(ids.end(), b.tokens.begin(), b.tokens.end());
    if (b.all_logits)
      for (int64_t i = 0; i < s.n; ++i) out_rows.push_back(s.row + i);
    else
      out_rows.push_back(s.row + s.n - 1);
    seqs.push_back(s);
  }
  const int64_t T = int64_t(ids.size());
  std::vector<float> x(size_t(T * c.hidden_size));
  embed_tokens(w_, ids, x.data());
  LayerContext ctx{&c, &inv_freq_, seqs, &kv, observe};
  for (const auto& layer : w_.layers) decoder_layer_forward(ctx, layer, x.data());
  std::vector<float> logits(out_rows.size() * size_t(c.vocab_size));
  final_logits(c, w_, x.data(), out_rows, logits.data());
  for (const auto& s : seqs) kv.set_length(s.slot, s.pos0 + s.n);
  return logits;
}

}  // namespace llmopt::model
