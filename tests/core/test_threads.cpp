// The worker pool: every index of [0, n) exactly once, chunk bounds independent of timing, per-thread
// broadcasts that reach every thread, exceptions, nesting, and many back-to-back jobs (races).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "lib/core/threads.h"

using namespace llmopt;

namespace {

// The chunks parallel_for ran, sorted.
std::vector<std::pair<int64_t, int64_t>> chunks_of(int64_t n, int64_t grain) {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> seen;
  parallel_for(n, [&](int64_t b, int64_t e) {
    std::lock_guard l(mu);
    seen.emplace_back(b, e);
  }, grain);
  std::sort(seen.begin(), seen.end());
  return seen;
}

}  // namespace

TEST_CASE("parallel_for covers [0, n) once, in chunks fixed by n, grain and the thread count") {
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    REQUIRE(num_threads() == threads);
    for (int64_t n : {1, 2, 3, 7, 64, 1000}) {
      for (int64_t grain : {1, 4, 100}) {
        const auto got = chunks_of(n, grain);
        const int64_t k = std::max<int64_t>(1, std::min<int64_t>(threads, (n + grain - 1) / grain));
        REQUIRE(int64_t(got.size()) == k);
        for (int64_t c = 0; c < k; ++c) {  // the documented split: chunk c is [n·c/k, n·(c+1)/k)
          CHECK(got[size_t(c)].first == n * c / k);
          CHECK(got[size_t(c)].second == n * (c + 1) / k);
        }
      }
    }
  }
  set_num_threads(0);
}

TEST_CASE("on_every_thread runs once on each thread, index 0 on the caller") {
  for (int threads : {1, 2, 5}) {
    set_num_threads(threads);
    for (int rep = 0; rep < 50; ++rep) {
      std::mutex mu;
      std::vector<int> idx;
      std::set<std::thread::id> ids;
      std::thread::id caller;
      on_every_thread([&](int i) {
        std::lock_guard l(mu);
        idx.push_back(i);
        ids.insert(std::this_thread::get_id());
        if (i == 0) caller = std::this_thread::get_id();
      });
      std::sort(idx.begin(), idx.end());
      std::vector<int> want(static_cast<size_t>(threads));
      for (int i = 0; i < threads; ++i) want[size_t(i)] = i;
      REQUIRE(idx == want);
      REQUIRE(int(ids.size()) == threads);
      REQUIRE(caller == std::this_thread::get_id());
    }
  }
  set_num_threads(0);
}

TEST_CASE("an exception in a chunk reaches the caller after every chunk finished; the pool still works") {
  set_num_threads(3);
  std::atomic<int> ran{0};
  CHECK_THROWS_AS(parallel_for(3, [&](int64_t b, int64_t) {
    ran.fetch_add(1);
    if (b == 1) throw std::runtime_error("chunk 1");
  }), std::runtime_error);
  CHECK(ran.load() == 3);
  CHECK_THROWS_AS(on_every_thread([&](int i) {
    if (i == 2) throw std::runtime_error("thread 2");
  }), std::runtime_error);
  CHECK(chunks_of(9, 1).size() == 3);
  set_num_threads(0);
}

TEST_CASE("nested calls run inline; many back-to-back jobs of both kinds") {
  set_num_threads(4);  // more threads than this machine may have cores: workers are often not running
  std::vector<std::atomic<int>> hits(257);
  for (int rep = 0; rep < 4000; ++rep) {
    const int64_t n = 1 + rep % 257;
    if (rep % 7 == 0) {
      std::atomic<int> count{0};
      on_every_thread([&](int) { count.fetch_add(1); });
      REQUIRE(count.load() == 4);
    }
    parallel_for(n, [&](int64_t b, int64_t e) {
      parallel_for(e - b, [&](int64_t b2, int64_t e2) {  // inline on this thread: one chunk
        for (int64_t i = b + b2; i < b + e2; ++i) hits[size_t(i)].fetch_add(1);
      });
    });
    for (int64_t i = 0; i < n; ++i) REQUIRE(hits[size_t(i)].exchange(0) == 1);
  }
  set_num_threads(0);
}

TEST_CASE("grain_for: chunks of at least kMinChunkWork") {
  CHECK(grain_for(kMinChunkWork) == 1);
  CHECK(grain_for(1e9) == 1);
  CHECK(grain_for(64) * 64 >= kMinChunkWork);
  CHECK((grain_for(64) - 1) * 64 < kMinChunkWork);
  CHECK(grain_for(0) >= 1);
}
