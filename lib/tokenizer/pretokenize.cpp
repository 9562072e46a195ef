// Pre-tokenizers: Split (regex via PCRE2 with JIT and Unicode properties, or a literal string), ByteLevel
// (add_prefix_space, use_regex), Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation,
// CharDelimiterSplit, BertPreTokenizer, Sequence. All but Metaspace and ByteLevel's prefix are Split steps
// with the character classes of HF's Rust code written as Unicode properties.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <deque>
#include <stdexcept>

#include "lib/tokenizer/internal.h"

namespace llmopt::tok::detail {

// The GPT-2 pattern ByteLevel uses when use_regex is true.
static const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Rust's Unicode \w (Alphabetic, marks, decimal digits, connector punctuation, joiners) and \s (White_Space),
// as HF's Whitespace pre-tokenizer sees them.
#define RUST_W R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control})"
static const char* kWhitespacePattern = "[" RUST_W "]+|[^" RUST_W R"(\p{White_Space}]+)";
static const char* kWhiteSpaceRun = R"(\p{White_Space}+)";
// char::is_ascii_punctuation() || Unicode punctuation (Pc Pd Pe Pf Pi Po Ps): HF's Punctuation and Bert.
static const char* kPunctuation = R"([\p{P}!-/:-@\[-`{-~])";

struct Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  Regex(const std::string& pattern, bool literal) {
    int err;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);  // UCP is not allowed with LITERAL
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

std::shared_ptr<Regex> make_regex(const std::string& pattern, bool literal) {
  return std::make_shared<Regex>(pattern, literal);
}

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

void find_matches(const Regex& re, std::string_view s, std::vector<Segment>& segs) {
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

namespace {

struct Piece { std::string_view s; bool start; };  // start: begins at offset 0 of the input

// The segments of one Split step after its behavior is applied (as HF's NormalizedString::split).
void apply_behavior(PreStep::Behavior behavior, std::vector<Segment>& segs, std::vector<Segment>& merged) {
  merged.clear();
  bool prev_match = false;
  switch (behavior) {
    case PreStep::Isolated: merged = segs; break;
    case PreStep::Removed:
      for (auto& g : segs) if (!g.match) merged.push_back(g);
      break;
    case PreStep::MergedWithPrevious:  // a match joins the piece before it
      for (auto& g : segs) {
        if (g.match && !prev_match && !merged.empty()) merged.back().end = g.end;
        else merged.push_back(g);
        prev_match = g.match;
      }
      break;
    case PreStep::MergedWithNext:  // a match joins the piece after it
      for (size_t i = segs.size(); i-- > 0;) {
        auto& g = segs[i];
        if (g.match && !prev_match && !merged.empty()) merged.back().begin = g.begin;
        else merged.push_back(g);
        prev_match = g.match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    case PreStep::Contiguous:  // a run of adjacent matches becomes one piece
      for (auto& g : segs) {
        if (g.match && prev_match) merged.back().end = g.end;
        else merged.push_back(g);
        prev_match = g.match;
      }
      break;
  }
}

void split_piece(const Regex& re, PreStep::Behavior behavior, bool invert, Piece piece, std::vector<Piece>& next) {
  thread_local std::vector<Segment> segs, merged;
  find_matches(re, piece.s, segs);
  if (invert)
    for (auto& g : segs) g.match = !g.match;
  apply_behavior(behavior, segs, merged);
  for (auto& g : merged)
    if (g.end > g.begin) next.push_back({piece.s.substr(g.begin, g.end - g.begin), piece.start && g.begin == 0});
}

}  // namespace

void PreTokenizer::split(std::string_view s, bool at_start, std::vector<std::string_view>& words) const {
  if (s.empty()) return;
  thread_local std::deque<std::string> storage;  // transformed pieces (stable addresses)
  thread_local std::vector<Piece> cur, next;
  storage.clear();
  cur.assign(1, Piece{s, at_start});
  for (const auto& st : steps) {
    next.clear();
    for (Piece piece : cur) {
      if (st.kind == PreStep::Split) {
        split_piece(*st.re, st.behavior, st.invert, piece, next);
        continue;
      }
      std::string t;
      if (st.kind == PreStep::Prefix) {
        t = piece.s.starts_with(st.text) ? std::string(piece.s) : st.text + std::string(piece.s);
      } else {  // Metaspace
        for (char c : piece.s) c == ' ' ? t += st.text : t += c;
        bool prepend = st.prepend == PreStep::Always || (st.prepend == PreStep::First && piece.start);
        if (prepend && !std::string_view(t).starts_with(st.text)) t.insert(0, st.text);
      }
      Piece out{storage.emplace_back(std::move(t)), piece.start};
      if (st.kind == PreStep::Metaspace && st.meta_split) split_piece(*st.re, PreStep::MergedWithNext, false, out, next);
      else next.push_back(out);
    }
    std::swap(cur, next);
  }
  for (const Piece& p : cur) words.push_back(p.s);
}

static PreStep split_step(const std::string& pattern, bool literal, PreStep::Behavior behavior, bool invert = false) {
  PreStep st;
  st.re = make_regex(pattern, literal);
  st.behavior = behavior;
  st.invert = invert;
  return st;
}

static PreStep::Behavior parse_behavior(const std::string& b, const std::string& what) {
  if (b == "Isolated") return PreStep::Isolated;
  if (b == "Removed") return PreStep::Removed;
  if (b == "MergedWithPrevious") return PreStep::MergedWithPrevious;
  if (b == "MergedWithNext") return PreStep::MergedWithNext;
  if (b == "Contiguous") return PreStep::Contiguous;
  fail("{}: split behavior \"{}\" is not known", what, b);
}

static PreStep metaspace_step(const JsonObject& f, const std::string& what) {
  PreStep st;
  st.kind = PreStep::Metaspace;
  st.text = f.string_or("replacement", "\xE2\x96\x81");
  if (st.text.empty() || size_t(utf8_char_len((unsigned char)st.text[0])) != st.text.size())
    fail("{}: Metaspace replacement \"{}\" is not one character", what, st.text);
  // Older files: add_prefix_space instead of prepend_scheme.
  std::string scheme = f.has("prepend_scheme") ? f.string("prepend_scheme")
                                               : (f.boolean_or("add_prefix_space", true) ? "always" : "never");
  if (scheme == "always") st.prepend = PreStep::Always;
  else if (scheme == "first") st.prepend = PreStep::First;
  else if (scheme == "never") st.prepend = PreStep::Never;
  else fail("{}: Metaspace prepend_scheme \"{}\" is not known (always, first, never)", what, scheme);
  st.meta_split = f.boolean_or("split", true);
  st.re = make_regex(st.text, true);
  return st;
}

static void parse_into(const json& j, const std::string& what, PreTokenizer& p) {
  if (j.is_null()) return;
  const JsonObject f(j, what);
  const std::string type = f.string("type");
  auto& steps = p.steps;
  if (type == "Sequence") {
    const json& qs = f.array("pretokenizers");
    for (size_t i = 0; i < qs.size(); ++i) parse_into(qs[i], fmt::format("{}: pretokenizers[{}]", what, i), p);
  } else if (type == "Split") {
    const JsonObject pat = f.object("pattern");
    const bool literal = !pat.has("Regex");
    try {
      steps.push_back(split_step(literal ? pat.string("String") : pat.string("Regex"), literal,
                                 parse_behavior(f.string("behavior"), what), f.boolean_or("invert", false)));
    } catch (const Error& e) {
      fail("{}: {}", what, e.what());
    }
  } else if (type == "ByteLevel") {
    if (f.boolean_or("add_prefix_space", false)) steps.push_back({PreStep::Prefix, nullptr, PreStep::Isolated, false, " "});
    if (f.boolean_or("use_regex", true)) steps.push_back(split_step(kGpt2Pattern, false, PreStep::Isolated));
    p.byte_level = true;
  } else if (type == "Metaspace") {
    steps.push_back(metaspace_step(f, what));
  } else if (type == "Digits") {  // char::is_numeric = \p{N}; one piece per digit or per run
    steps.push_back(split_step(f.boolean_or("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)", false, PreStep::Isolated));
  } else if (type == "Whitespace") {  // keep the \w+ and [^\w\s]+ runs
    steps.push_back(split_step(kWhitespacePattern, false, PreStep::Removed, /*invert=*/true));
  } else if (type == "WhitespaceSplit") {
    steps.push_back(split_step(kWhiteSpaceRun, false, PreStep::Removed));
  } else if (type == "Punctuation") {
    steps.push_back(split_step(kPunctuation, false, parse_behavior(f.string_or("behavior", "Isolated"), what)));
  } else if (type == "CharDelimiterSplit") {
    const std::string d = f.string("delimiter");
    if (d.empty() || size_t(utf8_char_len((unsigned char)d[0])) != d.size())
      fail("{}: CharDelimiterSplit delimiter \"{}\" is not one character", what, d);
    steps.push_back(split_step(d, true, PreStep::Removed));
  } else if (type == "BertPreTokenizer") {  // whitespace removed, then each punctuation char isolated
    steps.push_back(split_step(kWhiteSpaceRun, false, PreStep::Removed));
    steps.push_back(split_step(kPunctuation, false, PreStep::Isolated));
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
