// The normalizers and pre-tokenizers of tokenizer.json (Digits, Whitespace, WhitespaceSplit, Punctuation,
// Metaspace, ByteLevel add_prefix_space / use_regex, BertPreTokenizer, CharDelimiterSplit, Split with a string;
// Lowercase, Strip, StripAccents, BertNormalizer, NFKC/NFKD, Replace with a regex) against HF `tokenizers`, on small
// BPEs trained by scripts/golden/tokenizer_pretok_golden.py: every line of wikitext-2 test and the TinyStories
// excerpt (a 32-bit hash of the ids per line), and hand-picked strings (ids and decode).
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

#include "golden.h"
#include "lib/core/error.h"
#include "lib/tokenizer/tokenizer.h"

using namespace llmopt::test;
using llmopt::tok::Tokenizer;
using Ids = std::vector<int32_t>;

static const nlohmann::json& cases() {
  static nlohmann::json j = nlohmann::json::parse(llmopt::read_file(testdata_dir() / "tokenizer/pretok/cases.json"));
  return j;
}

TEST_CASE("pre-tokenizers and normalizers match HF tokenizers on every corpus line") {
  std::vector<std::string> lines = tokgold::read_lines(shared_dir() / "data/wikitext-2-raw/wiki.test.raw");
  for (auto& l : tokgold::read_lines(shared_dir() / "data/tinystories/tinystories_valid_excerpt.txt")) lines.push_back(l);
  for (const auto& [name, entry] : cases().at("configs").items()) {
    CAPTURE(name);
    auto dir = testdata_dir() / "tokenizer/pretok" / name;
    auto tok = Tokenizer::load(dir);
    std::string rec = llmopt::read_file(dir / "lines.bin");
    REQUIRE(rec.size() == 4 * lines.size());
    int bad = 0;
    for (size_t i = 0; i < lines.size(); i++) {
      Ids ids = tok.encode(lines[i]);
      uint32_t want;
      std::memcpy(&want, rec.data() + 4 * i, 4);
      if (uint32_t(tokgold::hash_ids(ids)) != want && ++bad <= 3)
        FAIL_CHECK(fmt::format("line {} \"{}\": got {}", i + 1, lines[i].substr(0, 120), fmt::join(ids, " ")));
    }
    MESSAGE(fmt::format("{}: {} lines, {} with ids different from HF", name, lines.size(), bad));
    CHECK(bad == 0);
  }
}

TEST_CASE("pre-tokenizers and normalizers match HF tokenizers on hand-picked strings: encode and decode") {
  const auto& strings = cases().at("strings");
  for (const auto& [name, entry] : cases().at("configs").items()) {
    CAPTURE(name);
    auto tok = Tokenizer::load(testdata_dir() / "tokenizer/pretok" / name);
    for (size_t i = 0; i < strings.size(); i++) {
      std::string s = strings[i];
      CAPTURE(s);
      Ids ids = tok.encode(s), want = entry["encode"][i].get<Ids>();
      CHECK_MESSAGE(ids == want, fmt::format("got {}, HF {}", fmt::join(ids, " "), fmt::join(want, " ")));
      CHECK(tok.decode(ids) == entry["decode"][i].get<std::string>());
    }
  }
}

TEST_CASE("bad pre-tokenizer and normalizer settings are one clear error naming the section") {
  auto dir = temp_dir("tok-pretok-bad");
  const std::string model = R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": []})";
  struct Bad { const char* section; const char* needle; };
  for (auto [section, needle] : {
           Bad{R"("pre_tokenizer": {"type": "Metaspace", "replacement": "ab"})", "not one character"},
           Bad{R"("pre_tokenizer": {"type": "Metaspace", "prepend_scheme": "sometimes"})", "sometimes"},
           Bad{R"("pre_tokenizer": {"type": "Punctuation", "behavior": "Sideways"})", "Sideways"},
           Bad{R"("pre_tokenizer": {"type": "CharDelimiterSplit", "delimiter": ""})", "delimiter"},
           Bad{R"("pre_tokenizer": {"type": "UnicodeScripts"})", "UnicodeScripts"},
           Bad{R"("normalizer": {"type": "Replace", "pattern": {"Regex": "(["}, "content": ""})", "regex"},
           Bad{R"("normalizer": {"type": "Precompiled", "precompiled_charsmap": ""})", "Precompiled"},
       }) {
    CAPTURE(section);
    std::ofstream(dir / "tokenizer.json") << "{" << section << ", " << model << "}";
    try {
      (void)Tokenizer::load(dir);
      FAIL("no error");
    } catch (const llmopt::Error& e) {
      std::string msg = e.what();
      CHECK(msg.find("tokenizer.json") != std::string::npos);
      CHECK(msg.find(needle) != std::string::npos);
      CHECK(msg.find('\n') == std::string::npos);
    }
  }
}
