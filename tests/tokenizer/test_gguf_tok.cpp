// Tokenizers from GGUF metadata (Tokenizer::from_gguf) against llama.cpp's own llama-tokenize on the same files
// (scripts/golden/gguf_tokenizer_golden.py): SmolLM2-135M-Instruct (gpt2, pre "smollm": digits split one by one)
// and stories260K exported by our GGUF writer (llama: SentencePiece BPE by scores, byte fallback), and vocabulary-only
// GGUFs of the llama3 (pre llama-bpe), qwen3 (qwen2) and deepseek-v3 tokenizers (and llama3 / qwen3 with the pre
// types gpt-2 / default). Every line of
// wikitext-2 test and the TinyStories excerpt, hand-picked strings; the tokenizer.json written by
// write_hf_tokenizer gives the same ids; unknown tokenizer models and pre types are one clear error.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>

#include "formats/gguf.h"
#include "formats/gguf_read.h"
#include "golden.h"
#include "lib/core/error.h"
#include "lib/tokenizer/tokenizer.h"

using namespace llmopt::test;
using namespace llmopt::test::tokgold;
using llmopt::tok::Tokenizer;
using Ids = std::vector<int32_t>;
namespace fs = std::filesystem;
namespace gguf = llmopt::gguf;

namespace {

const char* kSmolLM = "models/smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf";

// A vocabulary-only GGUF of ../shared/models/tokenizers/<name>/tokenizer.json, as the golden script's
// gguf_from_hf makes it: tokens in id order, added special tokens control (3), other added ones user-defined (4).
fs::path gguf_from_hf(const std::string& name, const std::string& tok_dir, const std::string& pre) {
  auto j = nlohmann::json::parse(llmopt::read_file(shared_dir() / "models/tokenizers" / tok_dir / "tokenizer.json"));
  std::map<int64_t, std::pair<std::string, int32_t>> pieces;
  for (const auto& [p, id] : j["model"]["vocab"].items()) pieces[id.get<int64_t>()] = {p, 1};
  for (const auto& a : j["added_tokens"]) pieces[a["id"].get<int64_t>()] = {a["content"], a["special"].get<bool>() ? 3 : 4};
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  for (int64_t i = 0; i <= pieces.rbegin()->first; i++) {
    auto it = pieces.find(i);
    tokens.push_back(it == pieces.end() ? fmt::format("[PAD{}]", i) : it->second.first);
    types.push_back(it == pieces.end() ? 5 : it->second.second);
  }
  for (const auto& m : j["model"]["merges"])
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  gguf::Metadata m;
  m.set_str("general.architecture", "llama");
  m.set_str("tokenizer.ggml.model", "gpt2");
  m.set_str("tokenizer.ggml.pre", pre);
  m.set_str_array("tokenizer.ggml.tokens", tokens);
  m.set_i32_array("tokenizer.ggml.token_type", types);
  m.set_str_array("tokenizer.ggml.merges", merges);
  m.set_bool("tokenizer.ggml.add_bos_token", false);
  fs::path p = temp_dir("tok-gguf-" + name) / (name + ".gguf");
  gguf::Writer w(p, m, {});
  w.finish();
  return p;
}

// The GGUF files of the golden script: the shared SmolLM2 file, stories260K exported by our writer, and
// vocabulary-only files of HF tokenizers (made once per run).
fs::path gguf_path(const std::string& name) {
  if (name == "smollm2") return shared_dir() / kSmolLM;
  static std::map<std::string, fs::path> made;
  if (auto it = made.find(name); it != made.end()) return it->second;
  fs::path p;
  if (name == "stories260K") {
    p = temp_dir("tok-gguf-stories") / "stories260K.gguf";
    gguf::export_llama(shared_dir() / "models/stories260K", p, gguf::Type::Q8_0);
  } else {
    // name: (tokenizer dir, pre type), as the golden script's FROM_HF
    static const std::map<std::string, std::pair<std::string, std::string>> from_hf = {
        {"llama3", {"llama3", "llama-bpe"}}, {"qwen3", {"qwen3", "qwen2"}}, {"deepseek-v3", {"deepseek-v3", "deepseek-v3"}},
        {"llama3-gpt2", {"llama3", "gpt-2"}}, {"qwen3-default", {"qwen3", "default"}}};
    const auto& [dir, pre] = from_hf.at(name);
    p = gguf_from_hf(name, dir, pre);
  }
  return made[name] = p;
}

const char* const kFiles[] = {"smollm2", "stories260K", "llama3", "qwen3", "deepseek-v3", "llama3-gpt2", "qwen3-default"};

const std::pair<const char*, const char*> kCorpora[] = {
    {"wiki", "data/wikitext-2-raw/wiki.test.raw"},
    {"tinystories", "data/tinystories/tinystories_valid_excerpt.txt"},
};

const nlohmann::json& cases() {
  static nlohmann::json j = nlohmann::json::parse(llmopt::read_file(testdata_dir() / "tokenizer/gguf/cases.json"));
  return j;
}

// A metadata-only GGUF with a tiny gpt2 vocabulary and the given overrides.
fs::path tiny_gguf(const fs::path& dir, const std::string& model, const std::string& pre, size_t n_types = 3) {
  gguf::Metadata m;
  m.set_str("general.architecture", "llama");
  m.set_str("tokenizer.ggml.model", model);
  m.set_str("tokenizer.ggml.pre", pre);
  m.set_str_array("tokenizer.ggml.tokens", {"a", "b", "ab"});
  m.set_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(n_types, 1));
  m.set_f32_array("tokenizer.ggml.scores", {0, 0, 1});
  m.set_str_array("tokenizer.ggml.merges", {"a b"});
  fs::path p = dir / (model + "-" + pre + ".gguf");
  gguf::Writer w(p, m, {});
  w.finish();
  return p;
}

}  // namespace

TEST_CASE("GGUF tokenizers give llama.cpp's ids on every line of wikitext-2 and TinyStories") {
  for (const char* name : kFiles) {
    CAPTURE(std::string(name));
    auto tok = Tokenizer::from_gguf(*gguf::File::open(gguf_path(name)));
    fs::path head_file = testdata_dir() / "tokenizer/gguf" / (std::string(name) + ".head.json");
    auto head = fs::exists(head_file) ? nlohmann::json::parse(llmopt::read_file(head_file)) : nlohmann::json::object();
    for (const auto& [corpus, path] : kCorpora) {
      CAPTURE(std::string(corpus));
      auto lines = read_lines(shared_dir() / path);
      auto recs = read_records(testdata_dir() / "tokenizer/gguf" / fmt::format("{}.{}.bin", name, corpus));
      REQUIRE(lines.size() == recs.size());
      int bad_ids = 0, bad_decode = 0;
      for (size_t i = 0; i < lines.size(); i++) {
        Ids ids = tok.encode(lines[i]);
        if ((ids.size() != recs[i].count || hash_ids(ids) != recs[i].ids_hash) && ++bad_ids <= 3) {
          std::string want = head.contains(corpus) && i < head[corpus].size() ? fmt::format("{}", fmt::join(head[corpus][i].get<Ids>(), " ")) : "(hash only)";
          FAIL_CHECK(fmt::format("line {} \"{}\": got {} ids {}, llama.cpp {} ids {}", i + 1, lines[i].substr(0, 120),
                                 ids.size(), fmt::join(ids, " "), recs[i].count, want));
        }
        if (tok.decode(ids) != lines[i] && ++bad_decode <= 3)
          FAIL_CHECK(fmt::format("line {}: decode gave \"{}\"", i + 1, tok.decode(ids).substr(0, 200)));
      }
      MESSAGE(fmt::format("{} {}: {} lines, {} with ids different from llama.cpp, {} that do not decode back",
                          name, corpus, lines.size(), bad_ids, bad_decode));
      CHECK(bad_ids == 0);
      CHECK(bad_decode == 0);
    }
  }
}

TEST_CASE("GGUF tokenizers match llama.cpp on hand-picked strings: special tokens parsed or not, BOS") {
  const auto& strings = cases().at("strings");
  for (const char* name : kFiles) {
    CAPTURE(std::string(name));
    const auto& want = cases().at("files").at(name);
    auto tok = Tokenizer::from_gguf(*gguf::File::open(gguf_path(name)));
    for (size_t i = 0; i < strings.size(); i++) {
      std::string s = strings[i];
      CAPTURE(s);
      auto same = [](const Ids& got, const Ids& ref) {
        return fmt::format("got {}, llama.cpp {}", fmt::join(got, " "), fmt::join(ref, " "));
      };
      Ids a = tok.encode(s), b = tok.encode(s, false, false), c = tok.encode(s, true);
      Ids wa = want["encode"][i].get<Ids>(), wb = want["encode_no_parse_special"][i].get<Ids>(), wc = want["encode_bos"][i].get<Ids>();
      CHECK_MESSAGE(a == wa, same(a, wa));
      CHECK_MESSAGE(b == wb, same(b, wb));
      CHECK_MESSAGE(c == wc, same(c, wc));
    }
  }
}

TEST_CASE("GGUF tokenizer metadata: BOS/EOS, add_bos, chat template, special tokens; load() takes a .gguf") {
  auto f = gguf::File::open(gguf_path("smollm2"));
  auto tok = Tokenizer::load(gguf_path("smollm2"));
  CHECK(tok.vocab_size() == 49152);
  CHECK(tok.bos_id() == f->integer("tokenizer.ggml.bos_token_id"));
  CHECK(tok.eos_id() == f->integer("tokenizer.ggml.eos_token_id"));
  CHECK(tok.add_bos() == f->boolean("tokenizer.ggml.add_bos_token"));
  CHECK(tok.chat_template() == f->string("tokenizer.chat_template"));
  CHECK(tok.is_special(tok.piece_to_id("<|im_start|>")));
  CHECK(tok.id_to_piece(tok.piece_to_id("Ġthe")) == "Ġthe");
  auto spm = Tokenizer::load(gguf_path("stories260K"));
  CHECK(spm.bos_id() == 1);
  CHECK(spm.eos_id() == 2);
  CHECK(spm.add_bos());
}

TEST_CASE("write_hf_tokenizer: tokenizer.json + tokenizer_config.json that load with the same ids as from_gguf") {
  const char* golden_out = std::getenv("LLMOPT_GOLDEN_HF_DIR");  // for scripts/golden/gguf_tokenizer_golden.py --hf
  for (const char* name : kFiles) {
    CAPTURE(std::string(name));
    auto f = gguf::File::open(gguf_path(name));
    fs::path dir = temp_dir("tok-gguf-hf");
    llmopt::tok::write_hf_tokenizer(*f, dir);
    if (golden_out) {
      fs::create_directories(fs::path(golden_out) / name);
      llmopt::tok::write_hf_tokenizer(*f, fs::path(golden_out) / name);
    }
    auto cfg = nlohmann::json::parse(llmopt::read_file(dir / "tokenizer_config.json"));
    CHECK(cfg.value("chat_template", "") == f->string_or("tokenizer.chat_template", ""));
    auto a = Tokenizer::from_gguf(*f), b = Tokenizer::load(dir);
    CHECK(a.bos_id() == b.bos_id());
    CHECK(a.eos_id() == b.eos_id());
    CHECK(a.add_bos() == b.add_bos());
    CHECK(a.vocab_size() == b.vocab_size());
    int bad = 0;
    size_t n = 0;
    for (const auto& [corpus, path] : kCorpora)
      for (const auto& line : read_lines(shared_dir() / path)) {
        n++;
        if (a.encode(line, true) != b.encode(line, true) && ++bad <= 3) FAIL_CHECK("line differs: " << line.substr(0, 120));
      }
    MESSAGE(fmt::format("{}: {} lines, {} with different ids from the written tokenizer.json", name, n, bad));
    CHECK(bad == 0);
  }
}

TEST_CASE("GGUF tokenizer errors name the file and what is unknown") {
  fs::path dir = temp_dir("tok-gguf-bad");
  struct Bad { fs::path file; const char* needle; };
  for (const auto& [file, needle] : {Bad{tiny_gguf(dir, "bert", "default"), "\"bert\""},
                                     Bad{tiny_gguf(dir, "gpt2", "nonesuch"), "\"nonesuch\""},
                                     Bad{tiny_gguf(dir, "gpt2", "smollm", 2), "token_type"}}) {
    CAPTURE(needle);
    try {
      (void)Tokenizer::load(file);
      FAIL("no error");
    } catch (const llmopt::Error& e) {
      std::string msg = e.what();
      CHECK(msg.find(file.string()) != std::string::npos);
      CHECK(msg.find(needle) != std::string::npos);
      CHECK(msg.find('\n') == std::string::npos);
    }
  }
  // The same tiny vocabulary with a known pre type works: "ab" merges.
  CHECK(Tokenizer::load(tiny_gguf(dir, "gpt2", "gpt-2")).encode("ab") == Ids{2});
}
