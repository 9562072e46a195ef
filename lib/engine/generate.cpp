#include "lib/engine/generate.h"

#include <algorithm>

#include "lib/core/error.h"

namespace llmopt::engine {

std::vector<Generation> generate(model::Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerateOptions& opts, GenerateStats* stats) {
  check_sampling(opts.sampling);
  if (opts.max_new_tokens < 0) fail("--max-new-tokens must be >= 0, got {}", opts.max_new_tokens);
  std::vector<Request> rq(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i)
    rq[i] = {prompts[i], opts.max_new_tokens, opts.sampling, opts.seed, opts.stop_ids, {}, 1};
  std::vector<Generation> out(prompts.size());
  std::string error;
  Callbacks cb;
  if (opts.on_token) cb.on_token = [&](size_t i, int64_t, int32_t t) { opts.on_token(i, t); };
  cb.on_result = [&](Result&& r) {
    if (!r.error.empty() && error.empty()) error = fmt::format("generate: prompt {}: {}", r.request, r.error);
    if (r.error.empty()) out[r.request] = {std::move(r.samples[0].ids), r.samples[0].finish_reason};
  };
  const RunStats st = serve(model, rq, opts.engine, cb);
  if (!error.empty()) throw Error(error);
  if (stats) *stats = {st.prefill_tokens, st.decode_tokens, st.prefill_s, st.decode_s};
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
