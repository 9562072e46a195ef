#pragma once
// Generation on the scheduler (continuous batching over the paged KV cache): requests join and leave the
// running batch at every step, long prompts are prefilled in chunks, `n` samples of a prompt share its
// blocks, and a request's outcome depends only on the request and its seed, never on its batch mates.
// serve() is the one loop; generate() and generate_text() are conveniences over it.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/engine/sampler.h"
#include "lib/engine/scheduler.h"
#include "lib/model/forward.h"
#include "lib/tokenizer/tokenizer.h"

namespace llmopt::engine {

struct Request {
  std::vector<int32_t> prompt;    // token ids, non-empty
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  uint64_t seed = 0;              // sample j draws from its own generator seeded with (seed, j)
  std::vector<int32_t> stop_ids;  // a sample finishes when it produces one (not part of its output)
  std::vector<std::string> stop;  // ... or when its text contains one (cut before it; needs a tokenizer)
  int64_t n = 1;                  // samples of this prompt
};

struct Sample {
  std::vector<int32_t> ids;       // generated tokens (stop token excluded)
  std::string text;               // with a tokenizer: the decoded continuation
  std::string finish_reason;      // "stop" or "length"
  std::vector<double> token_s;    // when each token was produced, seconds since the run started
};

struct Result {
  size_t request = 0;             // index into the requests
  std::string error;              // non-empty: the request was not served (no samples)
  std::vector<Sample> samples;
  // seconds: waiting until first scheduled; start of the run to the first token; first token to the last
  double queue_s = 0, ttft_s = 0, decode_s = 0;
};

struct EngineOptions {
  SchedulerOptions scheduler;
  int64_t block_size = 16;
  int64_t kv_blocks = 0;          // KV pool size; 0: room for max_seqs sequences of the longest request
  uint64_t hash_seed = 0;         // of the prefix-cache block hashes
};

struct RunStats {
  int64_t requests = 0, failed = 0, output_tokens = 0;
  double wall_s = 0, tokens_per_s = 0;  // output tokens per second of the whole run
  // Steps with any prompt (or recomputed) tokens count as prefill; steps of decode tokens only as decode.
  int64_t prefill_tokens = 0, decode_tokens = 0;
  double prefill_s = 0, decode_s = 0;
  int64_t kv_blocks = 0, block_size = 0, blocks_in_use_at_end = 0;
  double kv_waste = 0;  // allocated but unwritten KV slots over the run, as a fraction of those allocated
  SchedulerStats scheduler;
};

struct Callbacks {
  std::function<void(size_t request, int64_t sample, int32_t token)> on_token;  // each output token
  std::function<void(Result&&)> on_result;  // each request as it finishes (failed ones first)
};

// Why the request cannot be served ("" when it can): empty, longer than the context, ids outside the
// vocabulary, bad sampling values, more samples than --max-seqs, more tokens than the pool holds.
std::string check_request(const model::ModelConfig& c, const Request& r, const EngineOptions& o, bool have_tokenizer);

// Serves every request; results go to cb.on_result as they finish. tk: for texts and stop strings.
RunStats serve(model::Model& model, const std::vector<Request>& requests, const EngineOptions& o, const Callbacks& cb,
               const tok::Tokenizer* tk = nullptr);

// ---- conveniences over serve() ----

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  uint64_t seed = 0;                 // every prompt samples with this seed
  std::vector<int32_t> stop_ids;     // a sequence finishes when it produces one (not part of its output)
  std::function<void(size_t index, int32_t token)> on_token;  // each output token, as it is produced
  EngineOptions engine;
};

struct GenerateStats {
  int64_t prefill_tokens = 0, decode_tokens = 0;
  double prefill_s = 0, decode_s = 0;
};

struct Generation {
  std::vector<int32_t> ids;       // generated tokens (stop token excluded)
  std::string finish_reason;      // "stop" or "length"
};

// Prompts are token ids (each non-empty); Error on the first request that cannot be served.
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
