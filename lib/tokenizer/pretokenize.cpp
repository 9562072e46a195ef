// Pre-tokenizers: Split (regex via PCRE2 with JIT and Unicode properties), ByteLevel, Sequence.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <stdexcept>

#include "lib/tokenizer/internal.h"

namespace llmopt::tok::detail {

// The GPT-2 pattern ByteLevel uses when use_regex is true.
static const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  Regex(const std::string& pattern, bool literal) {
    int err;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts, &err, &off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("bad Split regex at offset {}: {}", off, reinterpret_cast<const char*>(msg));
    }
    jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
};

// Per-thread match state (match data is not shareable between threads).
struct MatchScratch {
  pcre2_match_data* md = pcre2_match_data_create(4, nullptr);
  pcre2_match_context* mc = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  MatchScratch() { pcre2_jit_stack_assign(mc, nullptr, js); }
  ~MatchScratch() {
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
  }
};

struct Segment { size_t begin, end; bool match; };

// All matches of re in s, with the gaps between them (as HF's Pattern::find_matches).
static void find_matches(const Regex& re, std::string_view s, std::vector<Segment>& segs) {
  thread_local MatchScratch scratch;
  segs.clear();
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t prev = 0, at = 0;
  while (at <= s.size()) {
    int rc = re.jit ? pcre2_jit_match(re.code, subject, s.size(), at, PCRE2_NO_UTF_CHECK, scratch.md, scratch.mc)
                    : pcre2_match(re.code, subject, s.size(), at, PCRE2_NO_UTF_CHECK, scratch.md, scratch.mc);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("tokenizer: Split regex match failed (PCRE2 error {})", rc);
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(scratch.md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // empty match: skip one char
      if (b >= s.size()) break;
      at = b + utf8_char_len((unsigned char)s[b]);
      continue;
    }
    if (b != prev) segs.push_back({prev, b, false});
    segs.push_back({b, e, true});
    prev = at = e;
  }
  if (prev != s.size()) segs.push_back({prev, s.size(), false});
}

void PreTokenizer::split(std::string_view s, std::vector<std::string_view>& words) const {
  size_t first = words.size();
  if (s.empty()) return;
  words.push_back(s);
  std::vector<std::string_view> next;
  std::vector<Segment> segs, merged;
  for (const auto& st : steps) {
    next.clear();
    for (size_t w = first; w < words.size(); w++) {
      std::string_view piece = words[w];
      find_matches(*st.re, piece, segs);
      if (st.invert)
        for (auto& g : segs) g.match = !g.match;
      merged.clear();
      bool prev_match = false;
      switch (st.behavior) {
        case SplitStep::Isolated: merged = segs; break;
        case SplitStep::Removed:
          for (auto& g : segs) if (!g.match) merged.push_back(g);
          break;
        case SplitStep::MergedWithPrevious:  // a match joins the piece before it
          for (auto& g : segs) {
            if (g.match && !prev_match && !merged.empty()) merged.back().end = g.end;
            else merged.push_back(g);
            prev_match = g.match;
          }
          break;
        case SplitStep::MergedWithNext:  // a match joins the piece after it
          for (size_t i = segs.size(); i-- > 0;) {
            auto& g = segs[i];
            if (g.match && !prev_match && !merged.empty()) merged.back().begin = g.begin;
            else merged.push_back(g);
            prev_match = g.match;
          }
          std::reverse(merged.begin(), merged.end());
          break;
      }
      for (auto& g : merged)
        if (g.end > g.begin) next.push_back(piece.substr(g.begin, g.end - g.begin));
    }
    words.resize(first);
    words.insert(words.end(), next.begin(), next.end());
  }
}

static void parse_into(const json& j, const std::string& what, PreTokenizer& p) {
  if (j.is_null()) return;
  const JsonObject f(j, what);
  const std::string type = f.string("type");
  if (type == "Sequence") {
    const json& qs = f.array("pretokenizers");
    for (size_t i = 0; i < qs.size(); ++i) parse_into(qs[i], fmt::format("{}: pretokenizers[{}]", what, i), p);
  } else if (type == "Split") {
    SplitStep st;
    const JsonObject pat = f.object("pattern");
    const bool literal = !pat.has("Regex");
    const std::string pattern = literal ? pat.string("String") : pat.string("Regex");
    try {
      st.re = std::make_shared<Regex>(pattern, literal);
    } catch (const Error& e) {
      fail("{}: {}", what, e.what());
    }
    const std::string b = f.string("behavior");
    if (b == "Isolated") st.behavior = SplitStep::Isolated;
    else if (b == "Removed") st.behavior = SplitStep::Removed;
    else if (b == "MergedWithPrevious") st.behavior = SplitStep::MergedWithPrevious;
    else if (b == "MergedWithNext") st.behavior = SplitStep::MergedWithNext;
    else fail("{}: Split behavior \"{}\" is not supported", what, b);
    st.invert = f.boolean_or("invert", false);
    p.steps.push_back(std::move(st));
  } else if (type == "ByteLevel") {
    if (f.boolean_or("add_prefix_space", false)) fail("{}: ByteLevel add_prefix_space=true is not supported", what);
    if (f.boolean_or("use_regex", true)) p.steps.push_back({std::make_shared<Regex>(kGpt2Pattern, false)});
    p.byte_level = true;
  } else {
    fail("{}: pre_tokenizer type \"{}\" is not supported", what, type);
  }
}

PreTokenizer parse_pre_tokenizer(const json& j, const std::string& what) {
  PreTokenizer p;
  parse_into(j, what, p);
  return p;
}

}  // namespace llmopt::tok::detail
