// Normalizers: Sequence, Prepend, Replace (string or regex pattern), NFC/NFD/NFKC/NFKD (utf8proc), Lowercase,
// Strip, StripAccents, BertNormalizer. Character classes follow HF's Rust code (char::to_lowercase,
// char::is_whitespace, unicode categories).
#include <utf8proc.h>

#include <cstdlib>
#include <stdexcept>

#include "lib/tokenizer/internal.h"

namespace llmopt::tok::detail {

static bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

static void unicode_normalize(std::string& s, int options) {
  if (is_ascii(s)) return;  // ASCII is invariant under every normalization form
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

static void replace_regex(std::string& s, const Regex& re, const std::string& to) {
  thread_local std::vector<Segment> segs;
  find_matches(re, s, segs);
  std::string out;
  for (const auto& g : segs) g.match ? out += to : out.append(s, g.begin, g.end - g.begin);
  s.swap(out);
}

// Rewrites s one code point at a time: f(cp, out) appends the replacement (nothing = drop it).
template <class F>
static void map_chars(std::string& s, F&& f) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) f(utf8_decode(s, i), out);
  s.swap(out);
}

static int category(uint32_t cp) { return utf8proc_category(utf8proc_int32_t(cp)); }
static bool is_mark(uint32_t cp) {
  int c = category(cp);
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}

// char::to_lowercase: the simple mapping, plus SpecialCasing's one unconditional multi-char entry.
static void lowercase(std::string& s) {
  map_chars(s, [](uint32_t cp, std::string& out) {
    if (cp == 0x130) out += "i\xCC\x87";  // İ → i + combining dot above
    else utf8_append(out, uint32_t(utf8proc_tolower(utf8proc_int32_t(cp))));
  });
}

static void strip(std::string& s, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left)
    for (size_t i = 0; i < e && is_white_space(utf8_decode(s, i));) b = i;
  if (right)
    while (e > b) {
      size_t p = e - 1;
      while (p > b && (s[p] & 0xC0) == 0x80) p--;
      size_t q = p;
      if (!is_white_space(utf8_decode(s, q))) break;
      e = p;
    }
  s = s.substr(b, e - b);
}

static bool is_chinese_char(uint32_t c) {  // the CJK ideograph blocks, as HF's BertNormalizer
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static void bert(std::string& s, const NormStep& st) {
  if (st.clean)  // drop NUL, U+FFFD and "other" chars (Cc Cf Cn Co Cs) but \t\n\r; every whitespace → ' '
    map_chars(s, [](uint32_t cp, std::string& out) {
      const bool tnr = cp == '\t' || cp == '\n' || cp == '\r';
      const int c = category(cp);
      const bool other = c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CN ||
                         c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CS;
      if (cp == 0 || cp == 0xFFFD || (other && !tnr)) return;
      if (tnr || is_white_space(cp)) out += ' ';
      else utf8_append(out, cp);
    });
  if (st.chinese)
    map_chars(s, [](uint32_t cp, std::string& out) {
      if (!is_chinese_char(cp)) return utf8_append(out, cp);
      out += ' ';
      utf8_append(out, cp);
      out += ' ';
    });
  if (st.accents) {  // NFD, then drop nonspacing marks
    unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
    map_chars(s, [](uint32_t cp, std::string& out) { if (category(cp) != UTF8PROC_CATEGORY_MN) utf8_append(out, cp); });
  }
  if (st.lower) lowercase(s);
}

void Normalizer::apply(std::string& s) const {
  for (const auto& st : steps) {
    switch (st.kind) {
      case NormStep::Prepend: if (!s.empty()) s.insert(0, st.a); break;
      case NormStep::Replace: replace_all(s, st.a, st.b); break;
      case NormStep::ReplaceRegex: replace_regex(s, *st.re, st.b); break;
      case NormStep::NFC: unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE); break;
      case NormStep::NFD: unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE); break;
      case NormStep::NFKC: unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT); break;
      case NormStep::NFKD: unicode_normalize(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT); break;
      case NormStep::Lowercase: lowercase(s); break;
      case NormStep::Strip: strip(s, st.left, st.right); break;
      case NormStep::StripAccents:
        if (!is_ascii(s)) map_chars(s, [](uint32_t cp, std::string& out) { if (!is_mark(cp)) utf8_append(out, cp); });
        break;
      case NormStep::Bert: bert(s, st); break;
    }
  }
}

static NormStep step(NormStep::Kind kind, std::string a = {}, std::string b = {}) {
  NormStep st;
  st.kind = kind;
  st.a = std::move(a);
  st.b = std::move(b);
  return st;
}

static void parse_into(const json& j, const std::string& what, std::vector<NormStep>& steps) {
  if (j.is_null()) return;
  const JsonObject f(j, what);
  const std::string type = f.string("type");
  if (type == "Sequence") {
    const json& ns = f.array("normalizers");
    for (size_t i = 0; i < ns.size(); ++i) parse_into(ns[i], fmt::format("{}: normalizers[{}]", what, i), steps);
  } else if (type == "Prepend") {
    steps.push_back(step(NormStep::Prepend, f.string("prepend")));
  } else if (type == "Replace") {
    const JsonObject pat = f.object("pattern");
    if (pat.has("String")) return steps.push_back(step(NormStep::Replace, pat.string("String"), f.string("content")));
    NormStep st = step(NormStep::ReplaceRegex, pat.string("Regex"), f.string("content"));
    try {
      st.re = make_regex(st.a, false);
    } catch (const Error& e) {
      fail("{}: {}", what, e.what());
    }
    steps.push_back(std::move(st));
  } else if (type == "NFC") { steps.push_back(step(NormStep::NFC));
  } else if (type == "NFD") { steps.push_back(step(NormStep::NFD));
  } else if (type == "NFKC") { steps.push_back(step(NormStep::NFKC));
  } else if (type == "NFKD") { steps.push_back(step(NormStep::NFKD));
  } else if (type == "Lowercase") { steps.push_back(step(NormStep::Lowercase));
  } else if (type == "StripAccents") { steps.push_back(step(NormStep::StripAccents));
  } else if (type == "Strip") {
    NormStep st = step(NormStep::Strip);
    st.left = f.boolean_or("strip_left", true);
    st.right = f.boolean_or("strip_right", true);
    steps.push_back(st);
  } else if (type == "BertNormalizer") {
    NormStep st = step(NormStep::Bert);
    st.clean = f.boolean_or("clean_text", true);
    st.chinese = f.boolean_or("handle_chinese_chars", true);
    st.lower = f.boolean_or("lowercase", true);
    // strip_accents null: follows lowercase (as HF's BertNormalizer).
    st.accents = f.has("strip_accents") && !f.get("strip_accents").is_null() ? f.boolean("strip_accents") : st.lower;
    steps.push_back(st);
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
