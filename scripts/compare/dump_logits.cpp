// Prints FNV-1a hashes of the fp32 logits one source tree's forward pass gives for a golden model
// (testdata/forward/<name>.json): a prefill of all ids, a 20-token prefill then token-by-token decode, and a
// ragged batch of three sequences decoded together. compare.sh builds it against an old and a new tree and
// diffs the output, so "identical logits" means bit for bit. LLMOPT_OLD_API: the pre-engine-core API.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "lib/model/forward.h"

using namespace llmopt;

namespace {

uint64_t fnv(const std::vector<float>& v, uint64_t h = 0xcbf29ce484222325ull) {
  auto* b = reinterpret_cast<const uint8_t*>(v.data());
  for (size_t i = 0; i < v.size() * 4; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

using Batch = std::vector<model::Model::SeqInput>;
#ifdef LLMOPT_OLD_API
std::vector<float> step(model::Model& m, kv::KVCache& kv, const Batch& b) { return m.forward(b, kv); }
#else
std::vector<float> step(model::Model& m, kv::PagedCache& kv, const Batch& b) { return model::run_step(m, kv, b); }
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: dump_logits SOURCE_DIR NAME\n"), 2;
  const std::string src = argv[1];
  std::ifstream f(src + "/testdata/forward/" + argv[2] + ".json");
  const auto j = nlohmann::json::parse(f);
  const std::string dir = j["model"].get<std::string>();
  const auto ids = j["ids"].get<std::vector<int32_t>>();
  auto m = model::Model::load(dir.rfind("../", 0) == 0 || dir[0] == '/' ? dir : src + "/" + dir);
  {
    auto kv = m->make_cache(1);
    std::printf("%s prefill %016llx\n", argv[2], (unsigned long long)fnv(step(*m, *kv, {{0, ids, true}})));
  }
  {
    auto kv = m->make_cache(1);
    uint64_t h = fnv(step(*m, *kv, {{0, std::span(ids).first(20), true}}));
    for (size_t t = 20; t < ids.size(); ++t) h = fnv(step(*m, *kv, {{0, std::span(ids).subspan(t, 1), false}}), h);
    std::printf("%s decode %016llx\n", argv[2], (unsigned long long)fnv({}, h));
  }
  {
    auto kv = m->make_cache(3);
    const std::span<const int32_t> all(ids);
    uint64_t h = fnv(step(*m, *kv, {{0, all.first(5), false}, {1, all.subspan(7, 19), true}, {2, all.subspan(3, 2), false}}));
    for (size_t t = 0; t < 24; ++t)
      h = fnv(step(*m, *kv, {{0, all.subspan(5 + t, 1), false}, {1, all.subspan(26 + t, 1), false},
                             {2, all.subspan(30 + t, 1), false}}), h);
    std::printf("%s ragged %016llx\n", argv[2], (unsigned long long)fnv({}, h));
  }
  return 0;
}
