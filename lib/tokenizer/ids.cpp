#include "lib/tokenizer/ids.h"

#include <charconv>

#include "lib/core/error.h"

namespace llmopt::tok {

std::vector<int32_t> parse_id_line(std::string_view l, const std::string& what, int64_t vocab_size) {
  std::vector<int32_t> ids;
  auto is_sep = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  for (size_t p = 0; p < l.size();) {
    if (is_sep(l[p])) { p++; continue; }
    size_t stop = l.find_first_of(" \t\r", p);
    if (stop == l.npos) stop = l.size();
    int32_t id;
    auto [end, ec] = std::from_chars(l.data() + p, l.data() + stop, id);
    if (ec != std::errc() || end != l.data() + stop) fail("{}: not a token id: '{}'", what, l.substr(p, stop - p));
    if (id < 0 || id >= vocab_size) fail("{}: id {} is outside the vocabulary (size {})", what, id, vocab_size);
    ids.push_back(id);
    p = stop;
  }
  return ids;
}

}  // namespace llmopt::tok
