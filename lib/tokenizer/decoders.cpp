// Decoders: Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace — each a step over the token list,
// as HF's Decoder::decode_chain; the final strings are concatenated.
#include <stdexcept>

#include "lib/tokenizer/internal.h"

namespace llmopt::tok::detail {

static void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

// "<0xAB>" → 0xAB; -1 for anything else.
static int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static std::vector<std::string> byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string bytes;
  auto flush = [&] {
    if (bytes.empty()) return;
    if (utf8_valid(bytes)) out.push_back(bytes);
    else for (size_t i = 0; i < bytes.size(); i++) out.push_back("\xEF\xBF\xBD");  // one U+FFFD per byte
    bytes.clear();
  };
  for (auto& t : tokens) {
    int b = byte_token(t);
    if (b >= 0) { bytes += char(b); continue; }
    flush();
    out.push_back(std::move(t));
  }
  flush();
  return out;
}

// Removes up to `start` leading and `stop` trailing copies of the char c.
static void strip(std::string& t, const std::string& c, int start, int stop) {
  size_t b = 0, e = t.size();
  for (int i = 0; i < start && e - b >= c.size() && t.compare(b, c.size(), c) == 0; i++) b += c.size();
  for (int i = 0; i < stop && e - b >= c.size() && t.compare(e - c.size(), c.size(), c) == 0; i++) e -= c.size();
  t = t.substr(b, e - b);
}

std::string Decoder::run(std::vector<std::string> tokens) const {
  if (!present) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); i++) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const auto& st : steps) {
    switch (st.kind) {
      case DecStep::Replace: for (auto& t : tokens) replace_all(t, st.a, st.b); break;
      case DecStep::ByteFallback: tokens = byte_fallback(tokens); break;
      case DecStep::Strip: for (auto& t : tokens) strip(t, st.a, st.start, st.stop); break;
      case DecStep::Fuse: {
        std::string all;
        for (auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case DecStep::Metaspace:  // replacement → ' ', except in the first token, where it is dropped (as HF)
        for (size_t i = 0; i < tokens.size(); i++) replace_all(tokens[i], st.a, i == 0 && !st.b.empty() ? "" : " ");
        break;
      case DecStep::ByteLevel: {  // chars → bytes (a token with a char outside the alphabet stays as is)
        std::string bytes;
        for (auto& t : tokens)
          if (!chars_to_bytes(t, bytes)) bytes += t;
        tokens.assign(1, utf8_lossy(bytes));
        break;
      }
    }
  }
  std::string out;
  for (auto& t : tokens) out += t;
  return out;
}

static void parse_into(const json& j, const std::string& what, std::vector<DecStep>& steps) {
  const JsonObject f(j, what);
  const std::string type = f.string("type");
  if (type == "Sequence") {
    const json& ds = f.array("decoders");
    for (size_t i = 0; i < ds.size(); ++i) parse_into(ds[i], fmt::format("{}: decoders[{}]", what, i), steps);
  } else if (type == "Replace") {
    const JsonObject pat = f.object("pattern");
    if (!pat.has("String")) fail("{}: Replace decoder pattern (Regex) is not supported", what);
    steps.push_back({DecStep::Replace, pat.string("String"), f.string("content")});
  } else if (type == "ByteFallback") { steps.push_back({DecStep::ByteFallback, "", ""});
  } else if (type == "Fuse") { steps.push_back({DecStep::Fuse, "", ""});
  } else if (type == "Strip") {
    steps.push_back({DecStep::Strip, f.string("content"), "", int(f.integer_or("start", 0, 0, 1 << 20)),
                     int(f.integer_or("stop", 0, 0, 1 << 20))});
  } else if (type == "ByteLevel") { steps.push_back({DecStep::ByteLevel, "", ""});
  } else if (type == "Metaspace") {
    std::string scheme = f.has("prepend_scheme") ? f.string("prepend_scheme")
                                                 : (f.boolean_or("add_prefix_space", true) ? "always" : "never");
    if (scheme != "always" && scheme != "first" && scheme != "never")
      fail("{}: Metaspace prepend_scheme \"{}\" is not known (always, first, never)", what, scheme);
    steps.push_back({DecStep::Metaspace, f.string_or("replacement", "\xE2\x96\x81"), scheme == "never" ? "" : "first"});
  } else {
    fail("{}: decoder type \"{}\" is not supported", what, type);
  }
}

Decoder parse_decoder(const json& j, const std::string& what) {
  Decoder d;
  if (j.is_null()) return d;
  d.present = true;
  parse_into(j, what, d.steps);
  return d;
}

}  // namespace llmopt::tok::detail
