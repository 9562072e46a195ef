#pragma once
// Token ids written as text: one line of `llmopt detokenize` input.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmopt::tok {

// Decimal ids separated by spaces, tabs or '\r'. Error "<what>: not a token id: '<word>'" for a word that is
// not a decimal int32, "<what>: id N is outside the vocabulary (size V)" for one outside [0, vocab_size).
std::vector<int32_t> parse_id_line(std::string_view line, const std::string& what, int64_t vocab_size);

}  // namespace llmopt::tok
