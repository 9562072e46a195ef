// A pruned checkpoint given to `llmopt quantize` keeps exactly its zeros: GPTQ's error updates would otherwise
// fill them in. Measured independently of the quantizer, by `llmopt inspect` counting zeros per linear.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/support/test_paths.h"

namespace fs = std::filesystem;
using llmopt::test::run_llmopt;

namespace {
nlohmann::json inspect_sparsity(const fs::path& dir) {
  auto r = run_llmopt({"inspect", dir.string(), "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out)["sparsity"];
}
}  // namespace

TEST_CASE("2:4 magnitude-pruned stories260K survives GPTQ 4-bit with its pattern") {
  const fs::path shared = llmopt::test::shared_dir();
  const std::string model = (shared / "models/stories260K").string();
  const std::string calib = (shared / "data/tinystories/tinystories_train_excerpt.txt").string();
  const fs::path tmp = llmopt::test::temp_dir("prune_quant");
  const std::string pruned = (tmp / "pruned").string(), quant = (tmp / "gptq").string();

  auto p = run_llmopt({"-q", "prune", model, "-o", pruned, "--method", "magnitude", "--pattern", "2:4"});
  INFO(p.err);
  REQUIRE(p.exit_code == 0);
  auto q = run_llmopt({"-q", "quantize", pruned, "-o", quant, "--method", "gptq", "--bits", "4", "--group-size",
                       "4", "--asym", "--format", "dense", "--calib", calib, "--nsamples", "8", "--seqlen", "128"});
  INFO(q.err);
  REQUIRE(q.exit_code == 0);

  auto before = inspect_sparsity(pruned), after = inspect_sparsity(quant);
  REQUIRE(before["linears"].size() == 35);
  REQUIRE(after["linears"].size() == 35);
  for (size_t i = 0; i < 35; i++) {
    const auto &b = before["linears"][i], &a = after["linears"][i];
    CAPTURE(a["name"].get<std::string>());
    CHECK(b["nm_2_4"].get<bool>());
    CHECK(a["nm_2_4"].get<bool>());
    // GPTQ may round a kept weight to 0 as well, but never revives a pruned one
    CHECK(a["zeros"].get<int64_t>() >= b["zeros"].get<int64_t>());
  }
}
