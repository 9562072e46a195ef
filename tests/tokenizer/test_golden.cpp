// Every line of wikitext-2 test and the TinyStories excerpt, for five real tokenizers: ids identical to
// Hugging Face `tokenizers` (count + FNV-1a hash per line, full ids for the first 100 lines), and
// decode(ids) == the line (or HF's decode, by hash, where HF itself does not round-trip).
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <chrono>

#include "golden.h"
#include "lib/tokenizer/tokenizer.h"

using namespace llmopt::test;
using namespace llmopt::test::tokgold;

TEST_CASE("tokenizers match HF tokenizers on wikitext-2 and TinyStories, line by line") {
  const std::pair<const char*, const char*> corpora[] = {
      {"wiki", "data/wikitext-2-raw/wiki.test.raw"},
      {"tinystories", "data/tinystories/tinystories_valid_excerpt.txt"},
  };
  for (const auto& [name, dir] : tokenizers()) {
    CAPTURE(name);
    auto t0 = std::chrono::steady_clock::now();
    auto tok = llmopt::tok::Tokenizer::load(shared_dir() / dir);
    double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE(fmt::format("{}: loaded in {:.0f} ms", name, load_ms));
    auto head = nlohmann::json::parse(llmopt::read_file(testdata_dir() / "tokenizer" / (std::string(name) + ".head.json")));
    for (const auto& [corpus, path] : corpora) {
      CAPTURE(corpus);
      auto lines = read_lines(shared_dir() / path);
      auto recs = read_records(testdata_dir() / "tokenizer" / fmt::format("{}.{}.bin", name, corpus));
      REQUIRE(lines.size() == recs.size());
      const auto& head_ids = head.at(corpus);
      int bad_ids = 0, bad_decode = 0, non_rt = 0;
      for (size_t i = 0; i < lines.size(); i++) {
        auto ids = tok.encode(lines[i]);
        bool same = ids.size() == recs[i].count && hash_ids(ids) == recs[i].ids_hash;
        if (!same && ++bad_ids <= 3) {
          std::string want = i < head_ids.size() ? fmt::format("{}", head_ids[i].get<std::vector<int32_t>>()) : "(hash only)";
          FAIL_CHECK(fmt::format("line {} \"{}\": got {} ids {}, HF {} ids {}", i + 1, lines[i].substr(0, 120), ids.size(),
                                 fmt::join(ids, " "), recs[i].count, want));
        }
        if (i < head_ids.size()) CHECK(ids == head_ids[i].get<std::vector<int32_t>>());
        std::string text = tok.decode(ids);
        bool dec_ok = recs[i].roundtrip ? text == lines[i]
                                        : llmopt::test::tokgold::fnv1a(text.data(), text.size()) == recs[i].decode_hash;
        non_rt += !recs[i].roundtrip;
        if (!dec_ok && ++bad_decode <= 3) FAIL_CHECK(fmt::format("line {}: decode gave \"{}\"", i + 1, text.substr(0, 200)));
      }
      MESSAGE(fmt::format("{} {}: {} lines, {} with different ids, {} with different decode, {} where HF does not round-trip",
                          name, corpus, lines.size(), bad_ids, bad_decode, non_rt));
      CHECK(bad_ids == 0);
      CHECK(bad_decode == 0);
    }
  }
}
