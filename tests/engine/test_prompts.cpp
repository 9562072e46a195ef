// engine::parse_prompts: plain and JSON lines, per-line fields over the defaults, stop strings and ids,
// one error per bad line (the others parse), and ids-only parsing without a tokenizer.
#include "lib/engine/prompts.h"

#include <doctest/doctest.h>

#include "tests/support/test_paths.h"

using namespace llmopt;
using namespace llmopt::engine;

namespace {
const std::filesystem::path& dir() {
  static const auto d = test::shared_dir() / "models/stories260K";
  return d;
}
}  // namespace

TEST_CASE("parse_prompts: plain and JSON lines, fields over the defaults, errors per line") {
  const auto tk = tok::Tokenizer::load(dir());
  const auto c = model::load_config(dir());
  Request d;
  d.max_new_tokens = 9;
  d.seed = 4;
  const std::string text =
      "Once upon a time\r\n"
      "\n"
      "  {\"prompt\": \"The cat\", \"id\": \"c\", \"temperature\": 0.5, \"top_k\": 3, \"top_p\": 0.9, \"seed\": 11, "
      "\"n\": 2, \"max_new_tokens\": 5, \"stop\": [\"dog\", 13]}\n"
      "{\"ids\": [1, 403], \"stop\": \".\"}\n"
      "{\"ids\": [1, 403], \"prompt\": \"x\"}\n"
      "{\"ids\": [1, 4000]}\n"
      "{\"prompt\": 5}\n"
      "{\"prompt\": \"x\", \"n\": 0}\n"
      "{\"prompt\": \"x\", \"id\": [1]}\n"
      "{\"prompt\": \"x\", \"max_tokens\": 3}\n"
      "[1, 2]";
  const auto lines = parse_prompts(text, d, &tk, c);
  REQUIRE(lines.size() == 11);
  CHECK(lines[0].prompt == "Once upon a time");
  CHECK(lines[0].request.prompt == tk.encode("Once upon a time", true));
  CHECK(lines[0].request.max_new_tokens == 9);
  CHECK(lines[0].request.seed == 4);
  CHECK(lines[0].request.stop_ids == std::vector<int32_t>{2});  // the model's EOS
  CHECK(lines[0].id == 0);
  CHECK(lines[1].request.prompt == std::vector<int32_t>{1});  // empty line: BOS alone
  const Request& r = lines[2].request;
  CHECK(lines[2].error.empty());
  CHECK(lines[2].id == "c");
  CHECK(r.sampling.temperature == 0.5f);
  CHECK(r.sampling.top_k == 3);
  CHECK(r.sampling.top_p == 0.9f);
  CHECK(r.seed == 11);
  CHECK(r.n == 2);
  CHECK(r.max_new_tokens == 5);
  CHECK(r.stop == std::vector<std::string>{"dog"});
  CHECK(r.stop_ids == std::vector<int32_t>{13, 2});
  CHECK(lines[3].request.prompt == std::vector<int32_t>{1, 403});
  CHECK(lines[3].prompt == tk.decode(std::vector<int32_t>{1, 403}, true));
  CHECK(lines[3].request.stop == std::vector<std::string>{"."});
  CHECK(lines[4].error.find("exactly one") != std::string::npos);
  CHECK(lines[5].error.find("vocabulary") != std::string::npos);
  CHECK(lines[6].error.find("prompt") != std::string::npos);
  CHECK(lines[7].error.find("\"n\" must be positive") != std::string::npos);
  CHECK(lines[8].error.find("id must be a string or an integer") != std::string::npos);
  CHECK(lines[9].error.find("unknown field 'max_tokens'") != std::string::npos);
  CHECK(lines[10].error.empty());  // not an object: a plain text prompt
  CHECK(lines[10].prompt == "[1, 2]");
  for (size_t i : {4, 5, 6, 7, 8, 9}) CHECK(lines[i].id == i);
}

TEST_CASE("parse_prompts without a tokenizer: ids lines only") {
  const auto c = model::load_config(dir());
  const auto lines = parse_prompts("{\"ids\": [1, 5, 6]}\nplain text\n", Request{}, nullptr, c);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].error.empty());
  CHECK(lines[0].request.prompt == std::vector<int32_t>{1, 5, 6});
  CHECK(lines[0].request.stop_ids == std::vector<int32_t>{2});
  CHECK(lines[1].error.find("tokenizer") != std::string::npos);
}
