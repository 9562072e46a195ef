#include "lib/core/threads.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LLMOPT_PAUSE() _mm_pause()
#else
#define LLMOPT_PAUSE() std::this_thread::yield()
#endif

namespace llmopt {
namespace {

// The pool publishes one job at a time in a single atomic word, so a worker that wakes late can never mix
// two jobs up:  [ generation : 32 | broadcast : 1 | chunks : 15 | next : 16 ].
// A range job's chunks are claimed by compare-and-swap on `next`, by the workers and by the caller alike:
// the caller never waits for a chunk nobody has started (a worker that is not scheduled, because another
// process holds its core, costs nothing). A broadcast job runs fn once on every thread (per-thread setup).
// Chunk boundaries depend only on (n, chunks), never on which thread runs a chunk, so results do not
// depend on timing.
struct Word {
  uint64_t gen, bcast, chunks, next;
  static Word of(uint64_t w) { return {w >> 32, (w >> 31) & 1, (w >> 16) & 0x7fff, w & 0xffff}; }
  uint64_t pack() const { return gen << 32 | bcast << 31 | chunks << 16 | next; }
};
constexpr int kMaxThreads = 0x7fff;
constexpr int kSpin = 1 << 12;  // pause iterations (about 0.1 ms) before a worker sleeps

class Pool {
 public:
  explicit Pool(int n) : size_(std::clamp(n, 1, kMaxThreads)) {
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    stop_.store(true);
    word_.fetch_add(uint64_t(1) << 32);  // a new generation wakes everyone to see stop_
    word_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return size_; }

  void run(int64_t n, const RangeFn& fn, int64_t grain) {
    const int64_t chunks = std::min<int64_t>(size_, (n + grain - 1) / grain);
    if (chunks <= 1 || in_worker_) return fn(0, n);
    fn_ = &fn;
    n_ = n;
    publish(false, chunks);
    in_worker_ = true;
    claim_chunks(gen_);
    in_worker_ = false;
    finish(chunks);
  }

  void broadcast(const ThreadFn& fn) {
    if (size_ == 1 || in_worker_) return fn(0);
    tfn_ = &fn;
    publish(true, size_ - 1);
    in_worker_ = true;
    guarded([&] { fn(0); });
    in_worker_ = false;
    finish(size_ - 1);
  }

 private:
  void publish(bool bcast, int64_t chunks) {
    done_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    ++gen_;
    word_.store(Word{gen_ & 0xffffffff, bcast, uint64_t(chunks), 0}.pack(), std::memory_order_seq_cst);
    if (bcast || sleepers_.load(std::memory_order_seq_cst) > 0) word_.notify_all();  // a broadcast waits for all
  }

  // Waits until `expected` chunks are done (each is a claimed one running on some thread), then rethrows
  // the first exception any chunk threw.
  void finish(int64_t expected) {
    for (int i = 0; done_.load(std::memory_order_acquire) < expected; ++i) {
      if (i < kSpin) LLMOPT_PAUSE();
      else std::this_thread::yield();
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  template <typename F> void guarded(F&& f) {
    try {
      f();
    } catch (...) {
      std::lock_guard l(err_mu_);
      if (!error_) error_ = std::current_exception();
    }
  }

  // Claims and runs chunks of generation `gen` until none is left.
  void claim_chunks(uint64_t gen) {
    uint64_t w = word_.load(std::memory_order_acquire);
    for (;;) {
      Word x = Word::of(w);
      if (x.gen != (gen & 0xffffffff) || x.bcast || x.next >= x.chunks) return;
      Word y = x;
      ++y.next;
      if (!word_.compare_exchange_weak(w, y.pack(), std::memory_order_acq_rel)) continue;
      const int64_t c = int64_t(x.next), k = int64_t(x.chunks);  // the job stays live until chunk c is done
      guarded([&] { (*fn_)(n_ * c / k, n_ * (c + 1) / k); });
      done_.fetch_add(1, std::memory_order_acq_rel);
      w = word_.load(std::memory_order_acquire);
    }
  }

  void loop(int idx) {
    in_worker_ = true;
    uint64_t seen = 0;  // the generation at construction: a job published before this thread ran is still seen
    for (;;) {
      uint64_t w = word_.load(std::memory_order_acquire);
      for (int i = 0; (w >> 32) == seen && i < kSpin; ++i) {
        LLMOPT_PAUSE();
        w = word_.load(std::memory_order_acquire);
      }
      while ((w >> 32) == seen) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        word_.wait(w, std::memory_order_seq_cst);  // returns once the word changed
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        w = word_.load(std::memory_order_acquire);
      }
      if (stop_.load()) return;
      const Word x = Word::of(w);
      seen = x.gen;
      if (x.bcast) {  // the caller waits for every worker, so this job is still the live one
        guarded([&] { (*tfn_)(idx); });
        done_.fetch_add(1, std::memory_order_acq_rel);
      } else {
        claim_chunks(x.gen);
      }
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> word_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  uint64_t gen_ = 0;  // the caller's count of published jobs
  const RangeFn* fn_ = nullptr;
  const ThreadFn* tfn_ = nullptr;
  int64_t n_ = 0;
  std::mutex err_mu_;
  std::exception_ptr error_;  // the first exception a chunk threw in this job
  static thread_local bool in_worker_;
};
thread_local bool Pool::in_worker_ = false;

int g_requested = 0;
std::unique_ptr<Pool> g_pool;
std::mutex g_pool_mu;

Pool& pool() {
  std::lock_guard l(g_pool_mu);
  if (!g_pool) {
    int n = g_requested > 0 ? g_requested : int(std::max(1u, std::thread::hardware_concurrency()));
    g_pool = std::make_unique<Pool>(n);
  }
  return *g_pool;
}
}  // namespace

void set_num_threads(int n) {
  std::lock_guard l(g_pool_mu);
  g_requested = n;
  g_pool.reset();
}
int num_threads() { return pool().size(); }

void parallel_for(int64_t n, RangeFn fn, int64_t grain) {
  if (n <= 0) return;
  pool().run(n, fn, std::max<int64_t>(1, grain));
}

void on_every_thread(ThreadFn fn) { pool().broadcast(fn); }

}  // namespace llmopt
