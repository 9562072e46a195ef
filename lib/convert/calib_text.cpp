// Calibration windows for --grouping similarity. Kept in its own file: it is the only part of
// lib/convert that needs the tokenizer.
#include "lib/convert/gqa.h"
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/tokenizer/tokenizer.h"

namespace llmopt::convert {

std::vector<std::vector<int32_t>> calibration_windows(const tok::Tokenizer& tk, std::string_view text, int64_t n,
                                                      int64_t L, const std::string& source_name) {
  if (n <= 0) fail("--nsamples must be positive, got {}", n);
  if (L <= 0) fail("--seqlen must be positive, got {}", L);
  const int64_t need = n * L;
  // Tokenize a prefix that grows until it holds enough tokens (the cut may split a word at the end,
  // which only affects tokens past the last window).
  size_t chars = size_t(std::min<int64_t>(int64_t(text.size()), need * 8 + 1024));
  std::vector<int32_t> ids;
  for (;;) {
    size_t cut = chars;
    while (cut < text.size() && cut > 0 && text[cut] != '\n') ++cut;  // end at a line break
    ids = tk.encode(text.substr(0, cut), false);
    if (int64_t(ids.size()) >= need || cut >= text.size()) break;
    chars = std::min(text.size(), chars * 2);
  }
  const int64_t have = int64_t(ids.size()) / L;
  if (have == 0) fail("calibration text {} has {} tokens, fewer than --seqlen {}", source_name, ids.size(), L);
  if (have < n) log::warn("calibration text {} gives only {} windows of {} tokens (asked for {})", source_name, have, L, n);
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < std::min(n, have); ++i) out.emplace_back(ids.begin() + i * L, ids.begin() + (i + 1) * L);
  return out;
}

}  // namespace llmopt::convert
