#include "lib/model/forward.h"

#include <algorithm>
#include <cmath>
#include <numbers>

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

backend::Backend& be(const LayerContext& ctx) { return ctx.backend ? *ctx.backend : backend::cpu(); }

Tensor vec(const std::vector<float>& v) { return Tensor::vector(const_cast<float*>(v.data()), DType::F32, int64_t(v.size())); }

// The attention batch of self-contained sequences (no cache): sequence i is one block of the K/V just
// computed when every sequence starts at a multiple of the longest one, else they are copied into a
// scratch storage of one block per sequence.
struct SelfBatch {
  backend::AttentionBatch batch;
  bool in_place = false;
};

SelfBatch self_batch(std::span<const SeqRows> seqs, int64_t T, Arena& A) {
  int64_t bs = 1;
  for (const auto& s : seqs) {
    if (s.pos0 != 0) fail("attention without a KV cache needs sequences starting at position 0");
    bs = std::max(bs, s.n);
  }
  SelfBatch sb;
  sb.in_place = true;
  for (const auto& s : seqs) sb.in_place = sb.in_place && s.row % bs == 0;
  const int64_t S = int64_t(seqs.size());
  auto* qs = A.array<int32_t>(size_t(S + 1));
  auto* len = A.array<int32_t>(size_t(S));
  auto* table = A.array<int32_t>(size_t(S));
  auto* slots = A.array<int64_t>(size_t(T));
  auto* pos = A.array<int64_t>(size_t(T));
  for (int64_t i = 0; i < S; ++i) {
    const SeqRows& s = seqs[size_t(i)];
    qs[i] = int32_t(s.row), len[i] = int32_t(s.n);
    table[i] = int32_t(sb.in_place ? s.row / bs : i);
    for (int64_t t = 0; t < s.n; ++t) slots[s.row + t] = table[i] * bs + t, pos[s.row + t] = t;
  }
  // query_start[S] closes the last sequence; rows between sequences (none in practice) are not queried
  qs[S] = int32_t(S ? seqs.back().row + seqs.back().n : 0);
  backend::AttentionBatch& b = sb.batch;
  b.num_seqs = S, b.num_tokens = T, b.max_blocks = 1, b.block_size = bs;
  b.query_start = Tensor::vector(qs, DType::I32, S + 1);
  b.seq_len = Tensor::vector(len, DType::I32, S);
  b.block_table = Tensor::matrix(table, DType::I32, S, 1);
  b.slot_mapping = Tensor::vector(slots, DType::I64, T);
  b.positions = Tensor::vector(pos, DType::I64, T);
  return sb;
}

}  // namespace

void attention_block(const LayerContext& ctx, const LayerWeights& w, float* xp) {
  const ModelConfig& c = *ctx.config;
  backend::Backend& B = be(ctx);
  Arena local;
  Arena& A = ctx.arena ? *ctx.arena : local;
  const Arena::Mark mark = A.mark();
  const int64_t T = ctx.batch ? ctx.batch->num_tokens : total_rows(ctx.seqs), H = c.hidden_size, D = c.head_dim;
  const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, qd = nh * D, kvd = nkv * D;
  const float eps = float(c.rms_norm_eps);
  const Tensor x = Tensor::f32(xp, T, H);

  Tensor h = A.f32(T, H), q = A.f32(T, qd), k = A.f32(T, kvd), v = A.f32(T, kvd), o = A.f32(T, qd);
  B.rmsnorm(x, vec(w.input_norm), eps, h);
  if (ctx.observe)
    for (const Linear* l : {&w.q, &w.k, &w.v}) (*ctx.observe)(w.index, *l, h.f32(), T, H);
  linear_forward(B, w.q, h, q);
  linear_forward(B, w.k, h, k);
  linear_forward(B, w.v, h, v);
  if (!w.q_norm.empty()) {  // qwen3: RMSNorm over each head before RoPE
    B.rmsnorm(Tensor::f32(q.f32(), T * nh, D), vec(w.q_norm), eps, Tensor::f32(q.f32(), T * nh, D));
    B.rmsnorm(Tensor::f32(k.f32(), T * nkv, D), vec(w.k_norm), eps, Tensor::f32(k.f32(), T * nkv, D));
  }

  // K/V: appended to the paged cache through the slot mapping, or (no cache) attended where they are
  SelfBatch sb;
  backend::KVLayer layer;
  if (ctx.kv) {
    if (!ctx.batch) fail("attention with a KV cache needs the step's attention batch");
    sb.batch = *ctx.batch;
    layer = ctx.kv->layer(w.index);
  } else {
    sb = self_batch(ctx.seqs, T, A);
    if (sb.in_place) layer = {k, v, sb.batch.block_size};
    else layer = {A.f32(sb.batch.num_seqs * sb.batch.block_size, kvd), A.f32(sb.batch.num_seqs * sb.batch.block_size, kvd), sb.batch.block_size};
  }
  const Tensor inv = vec(*ctx.inv_freq);
  B.rope(q, nh, D, 0, D, sb.batch.positions, inv);
  B.rope(k, nkv, D, 0, D, sb.batch.positions, inv);
  if (!sb.in_place) {
    B.set_rows(k, sb.batch.slot_mapping, layer.k);
    B.set_rows(v, sb.batch.slot_mapping, layer.v);
  }
  B.attention(sb.batch, q, layer, backend::AttnDims::uniform(nh, nkv, D, float(1.0 / std::sqrt(double(D)))), o, nullptr);

  if (ctx.observe) (*ctx.observe)(w.index, w.o, o.f32(), T, qd);
  linear_forward(B, w.o, o, h);
  B.add(x, h);
  A.rewind(mark);
}

void mlp_block(const LayerContext& ctx, const LayerWeights& w, float* xp) {
  const ModelConfig& c = *ctx.config;
  backend::Backend& B = be(ctx);
  Arena local;
  Arena& A = ctx.arena ? *ctx.arena : local;
  const Arena::Mark mark = A.mark();
  const int64_t T = ctx.batch ? ctx.batch->num_tokens : total_rows(ctx.seqs), H = c.hidden_size, I = c.intermediate_size;
  const Tensor x = Tensor::f32(xp, T, H);
  Tensor h = A.f32(T, H), g = A.f32(T, I), u = A.f32(T, I);
  B.rmsnorm(x, vec(w.post_attention_norm), float(c.rms_norm_eps), h);
  if (ctx.observe)
    for (const Linear* l : {&w.gate, &w.up}) (*ctx.observe)(w.index, *l, h.f32(), T, H);
  linear_forward(B, w.gate, h, g);
  linear_forward(B, w.up, h, u);
  B.swiglu(g, u, g);
  if (ctx.observe) (*ctx.observe)(w.index, w.down, g.f32(), T, I);
  linear_forward(B, w.down, g, h);
  B.add(x, h);
  A.rewind(mark);
}

void decoder_layer_forward(const LayerContext& ctx, const LayerWeights& w, float* x) {
  attention_block(ctx, w, x);
  mlp_block(ctx, w, x);
}

namespace {

void check_ids(const ModelWeights& w, std::span<const int32_t> ids) {
  for (int32_t id : ids)
    if (id < 0 || id >= w.embed.out) fail("token id {} is outside the vocabulary (0..{})", id, w.embed.out - 1);
}

Tensor ids_tensor(std::span<const int32_t> ids) {
  return Tensor::vector(const_cast<int32_t*>(ids.data()), DType::I32, int64_t(ids.size()));
}

// x [n, hidden] ← embedding rows of ids
void embed(backend::Backend& B, const ModelWeights& w, std::span<const int32_t> ids, const Tensor& x) {
  check_ids(w, ids);
  B.get_rows(w.embed.weight(), ids_tensor(ids), x);
}

// logits [rows, vocab] = lm_head(rmsnorm(x[rows])), h [rows, hidden] as scratch
void head(backend::Backend& B, const ModelConfig& c, const ModelWeights& w, const Tensor& x,
          std::span<const int32_t> rows, const Tensor& h, const Tensor& logits) {
  B.get_rows(x, ids_tensor(rows), h);
  B.rmsnorm(h, vec(w.final_norm), float(c.rms_norm_eps), h);
  linear_forward(B, w.lm_head, h, logits);
}

}  // namespace

void embed_tokens(const ModelWeights& w, std::span<const int32_t> ids, float* x) {
  embed(backend::cpu(), w, ids, Tensor::f32(x, int64_t(ids.size()), w.embed.in));
}

void final_logits(const ModelConfig& c, const ModelWeights& w, const float* x, std::span<const int64_t> rows,
                  float* logits) {
  const int64_t H = c.hidden_size, R = int64_t(rows.size()), T = rows.empty() ? 0 : *std::max_element(rows.begin(), rows.end()) + 1;
  const std::vector<int32_t> r(rows.begin(), rows.end());
  std::vector<float> h(size_t(R * H));
  head(backend::cpu(), c, w, Tensor::f32(x, T, H), r, Tensor::f32(h.data(), R, H), Tensor::f32(logits, R, c.vocab_size));
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& dir, backend::Backend& b) {
  return std::make_unique<Model>(Checkpoint::load(dir, /*dense=*/false), b);  // a .gguf: no fp32 copy
}

Model::Model(Checkpoint ck, backend::Backend& b)
    : ck_(std::move(ck)), b_(&b), arena_(b.device(), [&b](size_t n) { return b.alloc(n); }, [&b](void* p) { b.free(p); }) {
  if (b.device() != Device::CPU) fail("model weights can only be placed on the CPU backend so far");
  w_ = load_weights(ck_);
  inv_freq_ = rope_inv_freq(ck_.config);
}

kv::KVFormat Model::kv_format(int64_t block_size) const {
  const ModelConfig& c = config();
  return kv::make_format(DType::F32, block_size, c.num_key_value_heads, c.head_dim, c.head_dim);
}

std::unique_ptr<kv::PagedCache> Model::make_cache(int n_seqs, int64_t max_tokens, int64_t block_size) const {
  const ModelConfig& c = config();
  if (max_tokens <= 0) max_tokens = c.max_position_embeddings > 0 ? c.max_position_embeddings : 4096;
  const int64_t per_seq = (max_tokens + block_size - 1) / block_size;
  auto cache = std::make_unique<kv::PagedCache>(*b_, kv_format(block_size), int(c.num_hidden_layers),
                                                std::max<int64_t>(1, n_seqs * per_seq), max_tokens);
  for (int i = 0; i < n_seqs; ++i) cache->add_sequence();
  return cache;
}

Tensor Model::forward(const Step& step, kv::KVStorage& cache, const Observer* observe) {
  const ModelConfig& c = config();
  if (!step.batch || step.batch->num_tokens != int64_t(step.tokens.size()))
    fail("forward: the attention batch does not cover the step's {} tokens", step.tokens.size());
  const int64_t T = int64_t(step.tokens.size()), R = int64_t(step.logit_rows.size()), H = c.hidden_size;
  arena_.reset();
  Arena& A = arena_;
  backend::Backend& B = *b_;
  Tensor x = A.f32(T, H);
  embed(B, w_, step.tokens, x);
  LayerContext ctx{&c, &inv_freq_, {}, &cache, observe, step.batch, &B, &A};
  for (const auto& layer : w_.layers) decoder_layer_forward(ctx, layer, x.f32());
  const Tensor logits = A.f32(R, c.vocab_size);
  head(B, c, w_, x, step.logit_rows, A.f32(R, H), logits);
  return logits;
}

std::vector<float> run_step(Model& m, kv::PagedCache& cache, std::span<const Model::SeqInput> batch,
                            const Observer* observe) {
  std::vector<kv::PagedCache::Chunk> chunks;
  std::vector<int32_t> ids, rows;
  for (const auto& b : batch) {
    if (b.tokens.empty()) fail("forward: a sequence in the batch has no tokens");
    for (const auto& o : chunks)
      if (o.seq == b.slot) fail("forward: slot {} appears twice in one batch", b.slot);
    chunks.push_back({b.slot, int64_t(b.tokens.size())});
    const int32_t row = int32_t(ids.size()), n = int32_t(b.tokens.size());
    ids.insert(ids.end(), b.tokens.begin(), b.tokens.end());
    if (b.all_logits)
      for (int32_t i = 0; i < n; ++i) rows.push_back(row + i);
    else
      rows.push_back(row + n - 1);
  }
  backend::AttentionBatch ab;
  if (!cache.plan(chunks, ab))
    fail("kv cache: no room for {} more tokens ({} of {} blocks free)", ids.size(), cache.pool().num_free(),
         cache.pool().num_blocks());
  const Tensor logits = m.forward({ids, &ab, rows}, cache.storage(), observe);
  return {logits.f32(), logits.f32() + logits.numel()};
}

}  // namespace llmopt::model
