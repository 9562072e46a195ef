// Normalizers: Sequence, Prepend, Replace (string pattern), NFC/NFD/NFKC/NFKD (utf8proc).
#include <utf8proc.h>

#include <cstdlib>
#include <stdexcept>

#include "lib/tokenizer/internal.h"

namespace llmopt::tok::detail {

static void unicode_normalize(std::string& s, int options) {
  bool ascii = true;
  for (unsigned char c : s) ascii &= c < 0x80;
  if (ascii) return;  // ASCII is invariant under every normalization form
  utf8proc_uint8_t* dst = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()), &dst,
                        utf8proc_option_t(options));
  if (n < 0) fail("tokenizer: unicode normalization failed: {}", utf8proc_errmsg(n));
  s.assign(reinterpret_cast<char*>(dst), size_t(n));
  std::free(dst);
}

static void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty() || s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos);
  s.swap(out);
}

void Normalizer::apply(std::string& s) const {
  for (const auto& st : steps) {
    switch (st.kind) {
      case NormStep::Prepend: if (!s.empty()) s.insert(0, st.a); break;
      case NormStep::Replace: replace_all(s, st.a, st.b); break;
      case NormStep::NFC: unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE); break;
      case NormStep::NFD: unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE); break;
      case NormStep::NFKC: unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT); break;
      case NormStep::NFKD: unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT); break;
    }
  }
}

static void parse_into(const json& j, const std::string& what, std::vector<NormStep>& steps) {
  if (j.is_null()) return;
  const JsonObject f(j, what);
  const std::string type = f.string("type");
  if (type == "Sequence") {
    const json& ns = f.array("normalizers");
    for (size_t i = 0; i < ns.size(); ++i) parse_into(ns[i], fmt::format("{}: normalizers[{}]", what, i), steps);
  } else if (type == "Prepend") {
    steps.push_back({NormStep::Prepend, f.string("prepend"), ""});
  } else if (type == "Replace") {
    const JsonObject pat = f.object("pattern");
    if (!pat.has("String")) fail("{}: Replace normalizer pattern (Regex) is not supported", what);
    steps.push_back({NormStep::Replace, pat.string("String"), f.string("content")});
  } else if (type == "NFC") { steps.push_back({NormStep::NFC, "", ""});
  } else if (type == "NFD") { steps.push_back({NormStep::NFD, "", ""});
  } else if (type == "NFKC") { steps.push_back({NormStep::NFKC, "", ""});
  } else if (type == "NFKD") { steps.push_back({NormStep::NFKD, "", ""});
  } else {
    fail("{}: normalizer type \"{}\" is not supported", what, type);
  }
}

Normalizer parse_normalizer(const json& j, const std::string& what) {
  Normalizer n;
  parse_into(j, what, n.steps);
  return n;
}

}  // namespace llmopt::tok::detail
