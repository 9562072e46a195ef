#pragma once
// Batched generation: all prompts are prefilled in one forward, then every step runs one forward over all
// live sequences (one token each); a sequence finishes on a stop token or at max_new_tokens.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/engine/sampler.h"
#include "lib/model/forward.h"
#include "lib/tokenizer/tokenizer.h"

namespace llmopt::engine {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  uint64_t seed = 0;                 // sequence i samples from its own generator seeded with (seed, i)
  std::vector<int32_t> stop_ids;     // a sequence finishes when it produces one (not part of its output)
  std::function<void(size_t index, int32_t token)> on_token;  // each output token, as it is produced
};

struct GenerateStats {
  int64_t prefill_tokens = 0, decode_tokens = 0;
  double prefill_s = 0, decode_s = 0;
};

struct Generation {
  std::vector<int32_t> ids;       // generated tokens (stop token excluded)
  std::string finish_reason;      // "stop" or "length"
};

// Prompts are token ids (each non-empty).
std::vector<Generation> generate(model::Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerateOptions& opts, GenerateStats* stats = nullptr);

struct TextGeneration {
  std::string prompt, text;
  std::vector<int32_t> prompt_ids, ids;
  std::string finish_reason;
};

// Prompt ids: the tokenizer's encoding with special tokens (BOS where the model uses one); an empty
// prompt is BOS alone. Stop ids: the config's eos_token_id(s) and the tokenizer's EOS, added to opts'.
std::vector<int32_t> prompt_ids(const tok::Tokenizer& tk, const model::ModelConfig& c, const std::string& prompt);
std::vector<int32_t> default_stop_ids(const tok::Tokenizer& tk, const model::ModelConfig& c);
std::vector<TextGeneration> generate_text(model::Model& model, const tok::Tokenizer& tk,
                                          const std::vector<std::string>& prompts, GenerateOptions opts,
                                          GenerateStats* stats = nullptr);

// Incremental detokenisation for streaming: push() returns the text that the new token adds. The text is
// decoded with the prompt as context (so leading spaces survive) and held back while it ends inside a
// UTF-8 sequence.
class TextStream {
 public:
  TextStream(const tok::Tokenizer& tk, std::vector<int32_t> prompt_ids);
  std::string push(int32_t id);
  std::string text() const;  // everything generated so far

 private:
  const tok::Tokenizer* tk_;
  std::vector<int32_t> ids_;
  size_t n_prompt_;
  std::string prompt_text_;
  size_t emitted_ = 0;
};

}  // namespace llmopt::engine
