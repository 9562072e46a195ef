#include "lib/engine/generate.h"

#include <algorithm>
#include <chrono>

#include "lib/core/clock.h"
#include "lib/core/error.h"

namespace llmopt::engine {
namespace {

uint64_t mix_seed(uint64_t seed, uint64_t i) {  // splitmix64 of (seed, index)
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<Generation> generate(model::Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerateOptions& opts, GenerateStats* stats) {
  check_sampling(opts.sampling);
  if (opts.max_new_tokens < 0) fail("--max-new-tokens must be >= 0, got {}", opts.max_new_tokens);
  const size_t B = prompts.size();
  std::vector<Generation> out(B);
  if (B == 0) return out;
  const int64_t V = model.config().vocab_size;
  int64_t longest = 0;
  for (const auto& p : prompts) {
    if (p.empty()) fail("generate: empty prompt (no tokens)");
    longest = std::max<int64_t>(longest, int64_t(p.size()));
  }
  auto kv = model.make_cache(int(B), longest + opts.max_new_tokens + 1);
  std::vector<Sampler> samplers;
  for (size_t i = 0; i < B; ++i) samplers.emplace_back(opts.sampling, mix_seed(opts.seed, i));
  GenerateStats st;
  if (opts.max_new_tokens == 0) {
    for (auto& g : out) g.finish_reason = "length";
    if (stats) *stats = st;
    return out;
  }

  std::vector<int32_t> next(B);  // each live sequence's latest token
  std::vector<bool> live(B, true);
  auto accept = [&](size_t i, int32_t tok) {
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), tok) != opts.stop_ids.end()) {
      live[i] = false;
      out[i].finish_reason = "stop";
      return;
    }
    out[i].ids.push_back(tok);
    next[i] = tok;
    if (opts.on_token) opts.on_token(i, tok);
    if (int64_t(out[i].ids.size()) >= opts.max_new_tokens) {
      live[i] = false;
      out[i].finish_reason = "length";
    }
  };

  // prefill: every prompt in one forward
  double t0 = now_s();
  std::vector<model::Model::SeqInput> batch;
  for (size_t i = 0; i < B; ++i) {
    batch.push_back({int(i), prompts[i], false});
    st.prefill_tokens += int64_t(prompts[i].size());
  }
  auto logits = model::run_step(model, *kv, batch);
  st.prefill_s = now_s() - t0;
  for (size_t i = 0; i < B; ++i) accept(i, samplers[i].sample(std::span(logits).subspan(i * size_t(V), size_t(V))));

  // decode: one token per live sequence per step
  t0 = now_s();
  for (;;) {
    batch.clear();
    std::vector<size_t> who;
    for (size_t i = 0; i < B; ++i)
      if (live[i]) {
        batch.push_back({int(i), std::span(&next[i], 1), false});
        who.push_back(i);
      }
    if (batch.empty()) break;
    logits = model::run_step(model, *kv, batch);
    st.decode_tokens += int64_t(batch.size());
    for (size_t j = 0; j < who.size(); ++j)
      accept(who[j], samplers[who[j]].sample(std::span(logits).subspan(j * size_t(V), size_t(V))));
  }
  st.decode_s = now_s() - t0;
  if (stats) *stats = st;
  return out;
}

std::vector<int32_t> prompt_ids(const tok::Tokenizer& tk, const model::ModelConfig& c, const std::string& prompt) {
  if (!prompt.empty()) {
    auto ids = tk.encode(prompt, true);
    if (!ids.empty()) return ids;
  }
  int32_t bos = tk.bos_id() >= 0 ? tk.bos_id() : int32_t(c.bos_id());
  if (bos < 0) fail("empty prompt: the model has no BOS token to start from");
  return {bos};
}

std::vector<int32_t> default_stop_ids(const tok::Tokenizer& tk, const model::ModelConfig& c) {
  std::vector<int32_t> s;
  for (int64_t e : c.eos_token_ids) s.push_back(int32_t(e));
  if (tk.eos_id() >= 0 && std::find(s.begin(), s.end(), tk.eos_id()) == s.end()) s.push_back(tk.eos_id());
  return s;
}

std::vector<TextGeneration> generate_text(model::Model& model, const tok::Tokenizer& tk,
                                          const std::vector<std::string>& prompts, GenerateOptions opts,
                                          GenerateStats* stats) {
  std::vector<std::vector<int32_t>> ids;
  for (const auto& p : prompts) ids.push_back(prompt_ids(tk, model.config(), p));
  for (int32_t s : default_stop_ids(tk, model.config()))
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), s) == opts.stop_ids.end()) opts.stop_ids.push_back(s);
  auto gens = generate(model, ids, opts, stats);
  std::vector<TextGeneration> out(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    TextStream ts(tk, ids[i]);
    for (int32_t t : gens[i].ids) ts.push(t);
    out[i] = {prompts[i], ts.text(), ids[i], gens[i].ids, gens[i].finish_reason};
  }
  return out;
}

TextStream::TextStream(const tok::Tokenizer& tk, std::vector<int32_t> prompt_ids)
    : tk_(&tk), ids_(std::move(prompt_ids)), n_prompt_(ids_.size()) {
  prompt_text_ = tk.decode(ids_, true);
}

std::string TextStream::text() const {
  const std::string all = tk_->decode(ids_, true);
  if (all.compare(0, prompt_text_.size(), prompt_text_) == 0) return all.substr(prompt_text_.size());
  return tk_->decode(std::span(ids_).subspan(n_prompt_), true);  // the prompt's text changed in context
}

std::string TextStream::push(int32_t id) {
  ids_.push_back(id);
  std::string t = text();
  // hold back an incomplete UTF-8 character (decoded as U+FFFD "\xEF\xBF\xBD" at the end)
  if (t.size() >= 3 && t.compare(t.size() - 3, 3, "\xEF\xBF\xBD") == 0) return {};
  if (t.size() <= emitted_) return {};
  std::string add = t.substr(emitted_);
  emitted_ = t.size();
  return add;
}

}  // namespace llmopt::engine
