#pragma once
// The requests of `--prompts-file`: one per line, either plain text (the whole line is the prompt; an
// empty line is BOS alone) or a JSON object with `prompt` (text) or `ids` (token ids) and optionally
// `id`, `max_new_tokens`, `temperature`, `top_k`, `top_p`, `seed`, `stop` (a string, or an array of
// strings and token ids) and `n`. Fields not given take the command line's values.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/engine/generate.h"

namespace llmopt::engine {

struct PromptLine {
  nlohmann::json id;     // the line's `id`, else its index among the lines (from 0)
  std::string prompt;    // the prompt text (decoded from `ids` when given as ids)
  Request request;
  std::string error;     // non-empty: the line is not a valid request (it is not served)
};

// One PromptLine per line of text. `defaults` gives every field a line leaves out (its prompt unused);
// stop ids of the model are added to every request's. Without a tokenizer (tk null) only `ids` lines are
// requests; text lines are errors.
std::vector<PromptLine> parse_prompts(std::string_view text, const Request& defaults, const tok::Tokenizer* tk,
                                      const model::ModelConfig& c);

}  // namespace llmopt::engine
