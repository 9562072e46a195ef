#include "lib/core/threads.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace llmopt {
namespace {

class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
    size_ = n;
  }
  ~Pool() {
    {
      std::lock_guard l(mu_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return size_; }

  void run(int64_t n, const RangeFn& fn, int64_t grain) {
    int64_t chunks = std::min<int64_t>(size_, (n + grain - 1) / grain);
    if (chunks <= 1 || in_worker_) {
      fn(0, n);
      return;
    }
    std::unique_lock l(mu_);
    fn_ = &fn;
    n_ = n;
    chunks_ = chunks;
    pending_ = int(chunks - 1);
    error_ = nullptr;
    ++generation_;
    l.unlock();
    cv_.notify_all();
    in_worker_ = true;
    std::exception_ptr mine;
    try {
      fn(0, n / chunks);  // chunk 0 on the caller
    } catch (...) {
      mine = std::current_exception();
    }
    in_worker_ = false;
    l.lock();
    done_cv_.wait(l, [&] { return pending_ == 0; });  // every chunk is done with fn before anything returns
    fn_ = nullptr;
    if (!mine) mine = error_;
    error_ = nullptr;
    l.unlock();
    if (mine) std::rethrow_exception(mine);  // the first error (an Error from bad input) reaches the caller
  }

 private:
  void loop(int idx) {
    in_worker_ = true;
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return generation_ != seen; });
      seen = generation_;
      if (stop_) return;
      if (idx >= chunks_ || !fn_) continue;
      auto* fn = fn_;
      int64_t b = n_ * idx / chunks_, e = n_ * (idx + 1) / chunks_;
      l.unlock();
      std::exception_ptr err;
      try {
        (*fn)(b, e);
      } catch (...) {
        err = std::current_exception();
      }
      l.lock();
      if (err && !error_) error_ = err;
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  int size_ = 1;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0, chunks_ = 0;
  int pending_ = 0;
  std::exception_ptr error_;  // the first exception a worker's chunk threw in this run
  uint64_t generation_ = 0;
  bool stop_ = false;
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

}  // namespace llmopt
