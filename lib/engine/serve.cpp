// serve(): the one generation loop. Each iteration the scheduler forms a ragged batch, the model runs it,
// and every sequence whose last pending token was fed samples its next token with its own sampler.
#include <algorithm>
#include <optional>

#include "lib/core/clock.h"
#include "lib/core/error.h"
#include "lib/engine/generate.h"

namespace llmopt::engine {
namespace {

uint64_t mix_seed(uint64_t seed, uint64_t i) {  // splitmix64 of (seed, index)
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int64_t context_len(const model::ModelConfig& c) {
  return c.max_position_embeddings > 0 ? c.max_position_embeddings : 4096;
}

// Tokens one sample keeps in the cache at most: the last generated token is never fed, and a sample
// stops at the context length.
int64_t kept_tokens(const Request& r, int64_t ctx) {
  return std::min<int64_t>(int64_t(r.prompt.size()) + r.max_new_tokens - 1, ctx - 1);
}

struct Live {  // one running sample
  size_t req;
  int64_t sample;
  Sampler sampler;
  std::optional<TextStream> ts;
  Sample out;
};

struct Open {  // one request still being served
  int64_t samples_left = 0;
  double first_sched = -1, first_token = -1;
  std::vector<Sample> samples;
};

class Loop {
 public:
  Loop(model::Model& m, const std::vector<Request>& rq, Scheduler& s, const Callbacks& cb, const tok::Tokenizer* tk,
       double t0)
      : m_(m), rq_(rq), s_(s), cb_(cb), tk_(tk), t0_(t0), ctx_(context_len(m.config())), open_(rq.size()) {}

  int64_t output_tokens = 0;

  void add(size_t i) {
    const Request& r = rq_[i];
    const int64_t seq = s_.add(r.prompt, r.n);
    start_sample(seq, i, 0);
    open_[i].samples_left = r.n;
    open_[i].samples.resize(size_t(r.n));
  }

  // One step; false when nothing is left.
  bool step(RunStats& st) {
    if (s_.idle()) return false;
    const Scheduler::Batch& b = s_.schedule();
    const double t = now_s();
    bool prefill = false;
    for (const auto& e : b.entries) {
      Open& o = open_[live(e.seq).req];
      if (o.first_sched < 0) o.first_sched = t - t0_;
      const bool decode = e.n == 1 && e.start >= s_.prompt_len(e.seq);
      (decode ? st.decode_tokens : st.prefill_tokens) += e.n;
      prefill |= !decode;
    }
    const Tensor logits = m_.forward({b.tokens, &b.attention, b.logit_rows}, s_.cache().storage());
    s_.computed();
    const int64_t V = m_.config().vocab_size;
    int64_t row = 0;
    for (const auto& e : b.entries) {
      if (e.logits() == 0) continue;
      const std::span<const float> lg(logits.f32() + (row + e.logits() - 1) * V, size_t(V));
      row += e.logits();
      const size_t req = live(e.seq).req;
      std::vector<int64_t> seqs = {e.seq};
      if (live(e.seq).out.ids.empty() && int64_t(s_.tokens(e.seq).size()) == s_.prompt_len(e.seq))
        for (int64_t j = 1; j < rq_[req].n; ++j) {  // the prompt is computed: fork the other samples
          seqs.push_back(s_.fork(e.seq));
          start_sample(seqs.back(), req, j);
        }
      for (int64_t q : seqs) accept(q, lg);
    }
    (prefill ? st.prefill_s : st.decode_s) += now_s() - t;
    return true;
  }

 private:
  Live& live(int64_t seq) { return *live_[size_t(seq)]; }

  void start_sample(int64_t seq, size_t i, int64_t j) {
    if (int64_t(live_.size()) <= seq) live_.resize(size_t(seq + 1));
    const Request& r = rq_[i];
    live_[size_t(seq)].emplace(Live{i, j, Sampler(r.sampling, mix_seed(r.seed, uint64_t(j))), std::nullopt, {}});
    if (tk_) live_[size_t(seq)]->ts.emplace(*tk_, r.prompt);
  }

  void accept(int64_t seq, std::span<const float> logits) {
    Live& l = live(seq);
    const Request& r = rq_[l.req];
    const int32_t tok = l.sampler.sample(logits);
    if (std::find(r.stop_ids.begin(), r.stop_ids.end(), tok) != r.stop_ids.end()) return done(seq, "stop");
    const double t = now_s() - t0_;
    ++output_tokens;
    l.out.ids.push_back(tok);
    l.out.token_s.push_back(t);
    Open& o = open_[l.req];
    if (o.first_token < 0) o.first_token = t;
    if (cb_.on_token) cb_.on_token(l.req, l.sample, tok);
    if (l.ts) {
      l.ts->push(tok);
      if (!r.stop.empty()) {
        const std::string text = l.ts->text();
        for (const auto& s : r.stop)
          if (auto p = text.find(s); p != std::string::npos) {
            l.out.text = text.substr(0, p);
            l.ts.reset();
            return done(seq, "stop");
          }
      }
    }
    if (int64_t(l.out.ids.size()) >= r.max_new_tokens || int64_t(s_.tokens(seq).size()) + 1 >= ctx_)
      return done(seq, "length");
    s_.append(seq, tok);
  }

  void done(int64_t seq, const char* reason) {
    Live& l = *live_[size_t(seq)];
    l.out.finish_reason = reason;
    if (l.ts) l.out.text = l.ts->text();
    s_.finish(seq);
    Open& o = open_[l.req];
    o.samples[size_t(l.sample)] = std::move(l.out);
    const size_t req = l.req;
    live_[size_t(seq)].reset();
    if (--o.samples_left > 0) return;
    Result res;
    res.request = req;
    res.samples = std::move(o.samples);
    double last = o.first_token;
    for (const auto& s : res.samples)
      if (!s.token_s.empty()) last = std::max(last, s.token_s.back());
    const double end = now_s() - t0_;
    res.queue_s = o.first_sched;
    res.ttft_s = o.first_token >= 0 ? o.first_token : end;
    res.decode_s = o.first_token >= 0 ? last - o.first_token : 0;
    if (cb_.on_result) cb_.on_result(std::move(res));
  }

  model::Model& m_;
  const std::vector<Request>& rq_;
  Scheduler& s_;
  const Callbacks& cb_;
  const tok::Tokenizer* tk_;
  double t0_;
  int64_t ctx_;
  std::vector<Open> open_;
  std::vector<std::optional<Live>> live_;  // by scheduler sequence id
};

}  // namespace

std::string check_request(const model::ModelConfig& c, const Request& r, const EngineOptions& o, bool have_tokenizer) {
  const int64_t ctx = context_len(c), P = int64_t(r.prompt.size());
  if (P == 0) return "empty prompt (no tokens)";
  if (P >= ctx) return fmt::format("prompt of {} tokens does not fit the context of {} (one must be left to generate)", P, ctx);
  for (int32_t t : r.prompt)
    if (t < 0 || t >= c.vocab_size) return fmt::format("token id {} outside the vocabulary [0, {})", t, c.vocab_size);
  if (r.max_new_tokens < 0) return fmt::format("max_new_tokens must be >= 0, got {}", r.max_new_tokens);
  if (r.n < 1 || r.n > o.scheduler.max_seqs)
    return fmt::format("n = {} samples outside [1, --max-seqs = {}]", r.n, o.scheduler.max_seqs);
  if (!r.stop.empty() && !have_tokenizer) return "stop strings need a tokenizer";
  try {
    check_sampling(r.sampling);
  } catch (const Error& e) {
    return e.what();
  }
  const int64_t bs = o.block_size, need = (kept_tokens(r, ctx) + bs - 1) / bs;
  if (o.kv_blocks > 0 && need > o.kv_blocks)
    return fmt::format("needs {} KV blocks of {} tokens, the pool has {} (raise --kv-blocks or --kv-memory)", need, bs,
                       o.kv_blocks);
  return "";
}

RunStats serve(model::Model& model, const std::vector<Request>& requests, const EngineOptions& o, const Callbacks& cb,
               const tok::Tokenizer* tk) {
  const double t0 = now_s();
  const model::ModelConfig& c = model.config();
  const int64_t ctx = context_len(c), bs = o.block_size;
  RunStats st;
  st.requests = int64_t(requests.size());
  std::vector<size_t> todo;
  int64_t longest = 1, samples = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    Result res;
    res.request = i;
    res.error = check_request(c, r, o, tk != nullptr);
    if (res.error.empty() && r.max_new_tokens > 0) {
      todo.push_back(i);
      longest = std::max(longest, kept_tokens(r, ctx));
      samples += r.n;
      continue;
    }
    if (!res.error.empty()) ++st.failed;
    else res.samples.assign(size_t(r.n), Sample{{}, "", "length", {}});  // max_new_tokens 0
    if (cb.on_result) cb.on_result(std::move(res));
  }
  EngineOptions eo = o;
  if (eo.kv_blocks <= 0) eo.kv_blocks = std::min(samples, eo.scheduler.max_seqs) * ((longest + bs - 1) / bs);
  st.kv_blocks = eo.kv_blocks = std::max<int64_t>(eo.kv_blocks, 1);
  st.block_size = bs;
  if (!todo.empty()) {
    kv::PagedCache cache(model.backend(), model.kv_format(bs), int(c.num_hidden_layers), eo.kv_blocks, ctx, eo.hash_seed);
    Scheduler sched(cache, eo.scheduler);
    Loop loop(model, requests, sched, cb, tk, t0);
    for (size_t i : todo) loop.add(i);
    while (loop.step(st)) {}
    st.output_tokens = loop.output_tokens;
    st.scheduler = sched.stats();
    st.blocks_in_use_at_end = cache.pool().num_blocks() - cache.pool().num_free();
    const auto& ss = st.scheduler;
    st.kv_waste = ss.allocated_slot_steps > 0 ? 1.0 - double(ss.used_slot_steps) / double(ss.allocated_slot_steps) : 0;
  }
  st.wall_s = now_s() - t0;
  st.tokens_per_s = st.wall_s > 0 ? double(st.output_tokens) / st.wall_s : 0;
  return st;
}

}  // namespace llmopt::engine
