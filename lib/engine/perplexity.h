#pragma once
// Perplexity over a token stream, and KL(base ‖ model) on the same scored positions.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "lib/model/forward.h"

namespace llmopt::engine {

enum class PplProtocol {
  // Consecutive non-overlapping windows of ctx tokens (ids tokenized without BOS), each run from position 0;
  // every next-token prediction inside the window is scored (ctx - 1 per window). GPTQ/AutoGPTQ's eval.
  Gptq,
  // llama-perplexity: ids tokenized with BOS (when the tokenizer adds one); window i = ids[i·ctx, (i+1)·ctx)
  // with its first token replaced by BOS; only predictions from position ctx/2 to ctx-2 are scored
  // (ctx - 1 - ctx/2 per window); needs at least 2·ctx tokens.
  LlamaCpp,
};
PplProtocol parse_ppl_protocol(const std::string& s);  // "gptq" | "llamacpp"; Error names --protocol

struct PplOptions {
  int64_t ctx = 512;
  PplProtocol protocol = PplProtocol::Gptq;
  int64_t max_windows = 0;  // 0 = all
  int32_t bos_id = -1;      // llamacpp: the BOS written at each window start (-1: none)
};

struct PplResult {
  double ppl = 0, mean_nll = 0;
  int64_t tokens_scored = 0, windows = 0;
  std::optional<double> kl, top1_agreement;  // with a base model
};

PplResult perplexity(model::Model& model, std::span<const int32_t> ids, const PplOptions& opts,
                     model::Model* base = nullptr);

}  // namespace llmopt::engine
