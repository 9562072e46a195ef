// Heap allocations inside Model::forward, counted by replacing the global operator new in this test
// binary: after a warm-up step of each shape, a decode step (one sequence, and a ragged batch of three
// with scattered blocks) and a repeated prefill chunk allocate nothing. The planning of a step
// (PagedCache::plan, the scheduler's side) is measured and reported, not required to be zero.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "lib/core/threads.h"
#include "lib/model/forward.h"
#include "tests/support/test_paths.h"

namespace {
std::atomic<int64_t> g_allocs{0};
}

void* operator new(size_t n) {
  ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, std::align_val_t a) {
  ++g_allocs;
  if (void* p = std::aligned_alloc(size_t(a), (n + size_t(a) - 1) / size_t(a) * size_t(a))) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }

using namespace llmopt;

namespace {

// Runs one step of `chunks` (tokens taken from `ids`) and returns the allocations inside forward().
int64_t step_allocs(model::Model& m, kv::PagedCache& cache, std::span<const kv::PagedCache::Chunk> chunks,
                    std::span<const int32_t> ids, std::span<const int32_t> rows, int64_t* plan_allocs = nullptr) {
  backend::AttentionBatch b;
  const int64_t a0 = g_allocs;
  REQUIRE(cache.plan(chunks, b));
  const int64_t a1 = g_allocs;
  const Tensor logits = m.forward({ids, &b, rows}, cache.storage());
  const int64_t a2 = g_allocs;
  REQUIRE(logits.rows() == int64_t(rows.size()));
  if (plan_allocs) *plan_allocs += a1 - a0;
  return a2 - a1;
}

}  // namespace

TEST_CASE("a decode step allocates nothing in the forward pass after warm-up") {
  set_num_threads(2);
  for (std::string name : {"stories260K", "stories260K-mha"}) {
    CAPTURE(name);
    auto m = model::Model::load(test::shared_dir() / "models" / name);
    auto cache = m->make_cache(3, 256);
    const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298};
    const int32_t row0[] = {0}, rows3[] = {0, 1, 2};
    // prefill sequence 0, then decode it alone
    kv::PagedCache::Chunk pre[] = {{0, int64_t(prompt.size())}};
    const int32_t last[] = {int32_t(prompt.size() - 1)};
    step_allocs(*m, *cache, pre, prompt, last);
    kv::PagedCache::Chunk one[] = {{0, 1}};
    const int32_t tok[] = {415};
    step_allocs(*m, *cache, one, tok, row0);  // warm-up
    int64_t decode = 0, plan = 0;
    for (int i = 0; i < 40; ++i) decode += step_allocs(*m, *cache, one, tok, row0, &plan);
    CHECK(decode == 0);
    MESSAGE(name << ": 40 decode steps: " << decode << " allocations in forward, " << plan << " in planning");

    // three sequences decoding together over interleaved blocks (the gathering path of attention)
    kv::PagedCache::Chunk p1[] = {{1, 5}}, p2[] = {{2, 3}};
    const int32_t l1[] = {4}, l2[] = {2};
    step_allocs(*m, *cache, p1, std::span(prompt).first(5), l1);
    step_allocs(*m, *cache, p2, std::span(prompt).first(3), l2);
    kv::PagedCache::Chunk three[] = {{0, 1}, {1, 1}, {2, 1}};
    const int32_t toks[] = {415, 416, 417};
    step_allocs(*m, *cache, three, toks, rows3);
    int64_t ragged = 0;
    for (int i = 0; i < 40; ++i) ragged += step_allocs(*m, *cache, three, toks, rows3);
    CHECK(ragged == 0);

    // a repeated 8-token prefill chunk (chunked prefill) once its shape has been seen
    kv::PagedCache::Chunk chunk[] = {{0, 8}};
    const int32_t crow[] = {7};
    step_allocs(*m, *cache, chunk, std::span(prompt).first(8), crow);
    int64_t chunks = 0;
    for (int i = 0; i < 5; ++i) chunks += step_allocs(*m, *cache, chunk, std::span(prompt).first(8), crow);
    CHECK(chunks == 0);
  }
}
