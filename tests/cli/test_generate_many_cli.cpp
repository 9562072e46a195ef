// `llmopt generate --prompts-file` on the scheduler and `llmopt bench`, end to end on stories260K: JSON
// lines with per-request fields and errors, results equal to each prompt run alone, the summary object,
// preemption under a tiny pool, n samples, and the bench's two shapes.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "tests/support/test_paths.h"

using llmopt::test::count_lines;
using llmopt::test::run_llmopt;
using nlohmann::json;

namespace {
std::string model() { return (llmopt::test::shared_dir() / "models/stories260K").string(); }

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(json::parse(line));
  return v;
}

std::map<std::string, json> by_id(const std::vector<json>& js) {
  std::map<std::string, json> m;
  for (const auto& j : js)
    if (j.contains("id")) m[j["id"].dump()] = j;
  return m;
}

std::vector<int> alone_ids(const std::string& prompt, int max_new) {
  auto r = run_llmopt({"-q", "generate", model(), "--prompt", prompt, "--max-new-tokens", std::to_string(max_new), "--json"});
  REQUIRE(r.exit_code == 0);
  return json_lines(r.out)[0]["ids"].get<std::vector<int>>();
}
}  // namespace

TEST_CASE("generate: JSON lines with their own fields; bad lines fail alone with an error object") {
  std::string too_long = "{\"ids\": [1";
  for (int i = 0; i < 599; ++i) too_long += ", 5";
  too_long += "]}\n";
  const std::string lines =
      "Once upon a time\n"
      "{\"prompt\": \"The little dog\", \"id\": \"dog\", \"max_new_tokens\": 12}\n"
      "{\"ids\": [1, 403, 407], \"id\": 70, \"stop\": [\".\"]}\n"
      "{\"prompt\": \"x\", \"colour\": 3}\n"
      "{\"prompt\": \"unterminated\n"
      "{\"ids\": []}\n"
      "{\"prompt\": \"x\", \"temperature\": -2}\n" +
      too_long;
  auto r = run_llmopt({"-q", "generate", model(), "--prompts-file", "-", "--max-new-tokens", "20", "--json"}, lines);
  CHECK(r.exit_code == 1);
  CHECK(r.signal == 0);
  const auto js = json_lines(r.out);
  REQUIRE(js.size() == 9);
  const json summary = js.back()["summary"];
  auto m = by_id(js);
  // failures: unknown field, malformed JSON, empty ids, bad temperature, longer than the context
  std::set<std::string> failed;
  for (const auto& [id, j] : m)
    if (j.contains("error")) failed.insert(id);
  CHECK(failed == std::set<std::string>{"3", "4", "5", "6", "7"});
  CHECK(m["3"]["error"].get<std::string>().find("colour") != std::string::npos);
  CHECK(m["6"]["error"].get<std::string>().find("temperature") != std::string::npos);
  CHECK(m["7"]["error"].get<std::string>().find("context") != std::string::npos);
  CHECK(count_lines(r.err) == 5);  // one stderr line per failed request
  CHECK(r.err.find("request 3:") != std::string::npos);
  // the served ones: same output as alone, their own max_new_tokens and stop strings
  CHECK(m["0"]["ids"].get<std::vector<int>>() == alone_ids("Once upon a time", 20));
  CHECK(m["\"dog\""]["ids"].get<std::vector<int>>() == alone_ids("The little dog", 12));
  CHECK(m["70"]["finish_reason"] == "stop");
  CHECK(m["70"]["text"].get<std::string>().find('.') == std::string::npos);
  for (const char* id : {"0", "\"dog\"", "70"})
    for (const char* k : {"queue_s", "ttft_s", "decode_s"}) CHECK(m[id]["timings"][k].is_number());
  for (const char* k : {"requests", "failed", "output_tokens", "peak_running", "peak_blocks", "prefix_hit_tokens",
                        "preemptions", "blocks_in_use_at_end"})
    CHECK(summary[k].is_number_integer());
  CHECK(summary["tokens_per_s"].is_number());
  CHECK(summary["requests"] == 8);
  CHECK(summary["failed"] == 5);
  CHECK(summary["blocks_in_use_at_end"] == 0);
}

TEST_CASE("generate: a tiny KV pool preempts, outputs do not change; --n shares the prompt") {
  std::string lines;
  const char* prompts[] = {"Once upon a time", "The little dog", "Lily and Ben went to the park", "The cat", "One day"};
  for (const char* p : prompts) lines += std::string(p) + "\n";
  auto big = run_llmopt({"-q", "generate", model(), "--prompts-file", "-", "--max-new-tokens", "60", "--json"}, lines);
  auto tiny = run_llmopt({"-q", "generate", model(), "--prompts-file", "-", "--max-new-tokens", "60", "--json",
                          "--kv-blocks", "12", "--block-size", "8", "--max-batched-tokens", "9"},
                         lines);
  REQUIRE(big.exit_code == 0);
  REQUIRE(tiny.exit_code == 0);
  const auto a = json_lines(big.out), b = json_lines(tiny.out);
  CHECK(b.back()["summary"]["preemptions"].get<int>() > 0);
  CHECK(b.back()["summary"]["peak_blocks"].get<int>() <= 12);
  CHECK(a.back()["summary"]["preemptions"] == 0);
  auto ma = by_id(a), mb = by_id(b);
  for (int i = 0; i < 5; ++i) CHECK(ma[std::to_string(i)]["ids"] == mb[std::to_string(i)]["ids"]);

  auto n = run_llmopt({"-q", "generate", model(), "--prompt", "The cat", "--n", "3", "--temperature", "1", "--seed",
                       "3", "--max-new-tokens", "30", "--json"});
  REQUIRE(n.exit_code == 0);
  const auto jn = json_lines(n.out);
  REQUIRE(jn.size() == 2);
  REQUIRE(jn[0]["samples"].size() == 3);
  CHECK(jn[0]["samples"][0]["ids"] == jn[0]["ids"]);
  CHECK(jn[0]["samples"][1]["ids"] != jn[0]["samples"][2]["ids"]);
  CHECK(jn[1]["summary"]["peak_running"] == 3);

  // --kv-memory: a block of stories260K is 16 tokens x 5 layers x (K + V: 2 x 4 heads x 8) floats x 4 bytes = 20480 bytes
  auto mem = run_llmopt({"-q", "generate", model(), "--prompt", "The cat", "--max-new-tokens", "20", "--json",
                         "--kv-memory", "64KiB"});
  REQUIRE(mem.exit_code == 0);
  CHECK(json_lines(mem.out).back()["summary"]["kv_blocks"] == 65536 / 20480);
  auto frac = run_llmopt({"-q", "generate", model(), "--prompt", "The cat", "--max-new-tokens", "5", "--json",
                          "--kv-memory", "0.001"});
  REQUIRE(frac.exit_code == 0);
  CHECK(json_lines(frac.out).back()["summary"]["kv_blocks"].get<int64_t>() > 0);
}

TEST_CASE("bench: batched table rows and offline throughput") {
  auto t = run_llmopt({"-q", "bench", model(), "--npp", "16,32", "--ntg", "8", "--npl", "1,3", "--json"});
  REQUIRE(t.exit_code == 0);
  const auto rows = json_lines(t.out);
  REQUIRE(rows.size() == 4);
  CHECK(rows[1]["pp"] == 16);
  CHECK(rows[1]["pl"] == 3);
  CHECK(rows[1]["n_kv"] == 3 * (16 + 8));
  for (const auto& r : rows) {
    CHECK(r["speed_pp"].get<double>() > 0);
    CHECK(r["speed_tg"].get<double>() > 0);
    CHECK(r["t"].get<double>() == doctest::Approx(r["t_pp"].get<double>() + r["t_tg"].get<double>()));
  }
  auto table = run_llmopt({"-q", "bench", model(), "--npp", "8", "--ntg", "4", "--npl", "2"});
  REQUIRE(table.exit_code == 0);
  CHECK(table.out.rfind("|    PP |     TG |    B |", 0) == 0);
  CHECK(count_lines(table.out) == 3);

  auto tp = run_llmopt({"-q", "bench", model(), "--prompts-file", "-", "--max-new-tokens", "16", "--json"},
                       "Once upon a time\nThe little dog\n{\"prompt\": \"The cat\", \"n\": 2}\n");
  REQUIRE(tp.exit_code == 0);
  const json j = json::parse(tp.out);
  CHECK(j["requests"] == 3);
  CHECK(j["output_tokens"].get<int>() <= 4 * 16);
  for (const char* k : {"requests_per_s", "output_tokens_per_s", "total_tokens_per_s"}) CHECK(j[k].get<double>() > 0);
  for (const char* k : {"ttft_s", "itl_s"}) {
    CHECK(j[k]["p50"].get<double>() <= j[k]["p90"].get<double>());
    CHECK(j[k]["p90"].get<double>() <= j[k]["p99"].get<double>());
  }
}

TEST_CASE("serving flags: bad values exit non-zero with one line on stderr and nothing on stdout") {
  std::vector<std::vector<std::string>> bad = {
      {"generate", model(), "--prompt", "x", "--kv-memory", "lots"},
      {"generate", model(), "--prompt", "x", "--kv-memory", "1.5"},
      {"generate", model(), "--prompt", "x", "--kv-memory", "100"},
      {"generate", model(), "--prompt", "x", "--kv-blocks", "0"},
      {"generate", model(), "--prompt", "x", "--kv-blocks", "4", "--kv-memory", "0.1"},
      {"generate", model(), "--prompt", "x", "--max-seqs", "0"},
      {"generate", model(), "--prompt", "x", "--block-size", "0"},
      {"generate", model(), "--prompt", "x", "--n", "0"},
      {"bench", model(), "--npl", "0"},
      {"bench", model(), "--npp", "600", "--ntg", "8", "--npl", "1"},
      {"bench", model(), "--prompts-file", "/nonexistent/prompts.txt"},
  };
  for (const auto& args : bad) {
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    CAPTURE(cmd);
    auto r = run_llmopt(args);
    CHECK(r.exit_code != 0);
    CHECK(r.signal == 0);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.out.empty());
  }
}
