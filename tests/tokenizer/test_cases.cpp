// Hand-picked strings (special tokens in text, Unicode edge cases, whitespace runs) against HF `tokenizers`
// (testdata/tokenizer/cases.json), the add_special / parse_special / skip_special options, the BOS/EOS
// metadata, concurrent encoding and load errors.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

#include "golden.h"
#include "lib/core/error.h"
#include "lib/tokenizer/tokenizer.h"

using namespace llmopt::test;
using llmopt::tok::Tokenizer;
using Ids = std::vector<int32_t>;

static const nlohmann::json& cases() {
  static nlohmann::json j = nlohmann::json::parse(llmopt::read_file(testdata_dir() / "tokenizer" / "cases.json"));
  return j;
}

TEST_CASE("special strings match HF tokenizers: encode, split-special, add-special, decode, skip-special") {
  const auto& strings = cases().at("strings");
  for (const auto& [name, dir] : tokgold::tokenizers()) {
    CAPTURE(std::string(name));
    auto tok = Tokenizer::load(shared_dir() / dir);
    const auto& want = cases().at("tokenizers").at(name);
    CHECK(tok.vocab_size() == want.at("vocab_size").get<int64_t>());
    for (size_t i = 0; i < strings.size(); i++) {
      std::string s = strings[i];
      CAPTURE(s);
      Ids ids = tok.encode(s);
      CHECK(ids == want["encode"][i].get<Ids>());
      CHECK(tok.encode(s, false, /*parse_special=*/false) == want["encode_split_special"][i].get<Ids>());
      Ids with = want["encode_add_special"][i].get<Ids>();
      // deepseek-v3: tokenizer.json has no template but tokenizer_config.json says add_bos_token (see tokenizer.h).
      if (std::string(name) == "deepseek-v3") with.insert(with.begin(), tok.bos_id());
      CHECK(tok.encode(s, true) == with);
      CHECK(tok.decode(ids) == want["decode"][i].get<std::string>());
      CHECK(tok.decode(ids, /*skip_special=*/true) == want["decode_skip_special"][i].get<std::string>());
    }
  }
}

TEST_CASE("BOS/EOS and add_bos follow tokenizer_config.json and the post-processor") {
  struct Want { const char* dir; int32_t bos, eos; bool add_bos; };
  for (auto w : {Want{"models/stories260K", 1, 2, true}, Want{"models/llama2-tokenizer-32k", 1, 2, true},
                 Want{"models/tokenizers/llama3", 128000, 128001, false}, Want{"models/tokenizers/qwen3", -1, 151645, false},
                 Want{"models/tokenizers/deepseek-v3", 0, 1, true}}) {
    CAPTURE(std::string(w.dir));
    auto tok = Tokenizer::load(shared_dir() / w.dir);
    CHECK(tok.bos_id() == w.bos);
    CHECK(tok.eos_id() == w.eos);
    CHECK(tok.add_bos() == w.add_bos);
    Ids ids = tok.encode("Hi there", true);
    CHECK((!ids.empty() && ids.front() == w.bos) == w.add_bos);
    if (w.bos >= 0) CHECK(tok.is_special(w.bos));
  }
  auto tok = Tokenizer::load(shared_dir() / "models/tokenizers/llama3");
  CHECK(tok.id_to_piece(128000) == "<|begin_of_text|>");
  CHECK(tok.id_to_piece(1820) == "the");
  CHECK(tok.id_to_piece(279) == "Ġthe");
  CHECK(tok.piece_to_id("Ġthe") == 279);
  CHECK(tok.piece_to_id("<|end_of_text|>") == 128001);
  CHECK(tok.id_to_piece(-5).empty());
  CHECK(tok.decode(Ids{279, 999999, 1820}) == " thethe");  // unknown ids are dropped, as HF
}

TEST_CASE("concurrent encode gives the same ids as sequential encode") {
  auto tok = Tokenizer::load(shared_dir() / "models/tokenizers/qwen3");
  auto lines = tokgold::read_lines(shared_dir() / "data/wikitext-2-raw/wiki.test.raw");
  lines.resize(600);
  std::vector<Ids> seq;
  for (auto& l : lines) seq.push_back(tok.encode(l));
  std::vector<Ids> a(lines.size()), b(lines.size());
  std::thread t1([&] { for (size_t i = 0; i < lines.size(); i++) a[i] = tok.encode(lines[i]); });
  std::thread t2([&] { for (size_t i = lines.size(); i-- > 0;) b[i] = tok.encode(lines[i]); });
  t1.join();
  t2.join();
  CHECK(a == seq);
  CHECK(b == seq);
}

TEST_CASE("invalid UTF-8 is encoded as U+FFFD, as a Python str would carry it") {
  auto tok = Tokenizer::load(shared_dir() / "models/tokenizers/qwen3");
  CHECK(tok.encode("a\xff" "b") == tok.encode("a\xEF\xBF\xBD" "b"));
  CHECK(tok.decode(tok.encode("\xE6\x97\xA5")) == "\xE6\x97\xA5");
}

TEST_CASE("load errors name the file") {
  auto dir = temp_dir("tok-bad");
  try {
    (void)Tokenizer::load(dir);
    FAIL("no error for a missing tokenizer.json");
  } catch (const llmopt::Error& e) {
    CHECK(std::string(e.what()).find("tokenizer.json") != std::string::npos);
  }
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "Unigram", "vocab": []}})";
  try {
    (void)Tokenizer::load(dir);
    FAIL("no error for an unsupported model");
  } catch (const llmopt::Error& e) {
    CHECK(std::string(e.what()).find("tokenizer.json") != std::string::npos);
    CHECK(std::string(e.what()).find("Unigram") != std::string::npos);
  }
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}})";
  CHECK_THROWS_AS((void)Tokenizer::load(dir), llmopt::Error);
}
