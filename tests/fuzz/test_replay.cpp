// Replays every fuzz seed (testdata/fuzz/seeds/TARGET, from scripts/golden/fuzz_seeds.py) and every input a
// fuzzer once crashed on (testdata/fuzz/TARGET, committed with the fix) through the harnesses of fuzz/targets,
// without libFuzzer. A crash, an abort on a broken invariant, or any exception other than llmopt::Error (the
// CLI's exit code 3) fails the test; in the sanitizer build (build-asan) so does any ASan/UBSan report.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>

#include "fuzz/targets/targets.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {
std::vector<fs::path> inputs_in(const fs::path& dir) {
  std::vector<fs::path> v;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

void replay(llmopt::fuzz::Harness run, const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  const std::string s{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  INFO("input: " << p.string());
  CHECK_NOTHROW(run(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}
}  // namespace

TEST_CASE("every seed and every former crash input runs clean through its harness") {
  const fs::path root = llmopt::test::testdata_dir() / "fuzz";
  for (const auto& t : llmopt::fuzz::targets()) {
    SUBCASE(t.name) {
      const auto seeds = inputs_in(root / "seeds" / t.name);
      CHECK(seeds.size() >= 3);
      for (const auto& p : seeds) replay(t.run, p);
      for (const auto& p : inputs_in(root / t.name)) replay(t.run, p);
    }
  }
}

TEST_CASE("every regression input belongs to a known target") {
  const fs::path root = llmopt::test::testdata_dir() / "fuzz";
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (name == "seeds" || name == "README.md") continue;
    const bool known = llmopt::fuzz::find(name) != nullptr;
    CHECK_MESSAGE(known, name);
  }
}
