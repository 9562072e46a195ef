#pragma once
// A persistent worker pool: parallel_for splits [0, n) into contiguous chunks claimed by the threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace llmopt {

void set_num_threads(int n);  // 0 = number of hardware threads
int num_threads();

// A non-owning reference to a callable: unlike std::function it never allocates, so a forward step that
// calls parallel_for allocates nothing. The callable must outlive the call it is passed to.
template <typename Sig> class FnRef;
template <typename... A> class FnRef<void(A...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FnRef>>>
  FnRef(F&& f) : obj_(const_cast<void*>(static_cast<const void*>(&f))),  // NOLINT: implicit by design
                 call_([](void* o, A... a) { (*static_cast<std::remove_reference_t<F>*>(o))(a...); }) {}
  void operator()(A... a) const { call_(obj_, a...); }

 private:
  void* obj_;
  void (*call_)(void*, A...);
};
using RangeFn = FnRef<void(int64_t, int64_t)>;  // fn(begin, end)
using ThreadFn = FnRef<void(int)>;              // fn(thread index), 0 = the calling thread

// Calls fn(begin, end) on disjoint chunks covering [0, n); blocks until all are done.
// Chunks are at least `grain` long, at most one per thread; their bounds depend only on n, grain and the
// thread count. The calling thread works too, and runs every chunk no worker has claimed, so a worker
// that the OS has not scheduled never delays it. Nested calls run inline on the calling thread. If chunks throw, the
// call still waits for every chunk and then rethrows the first exception on the calling thread.
void parallel_for(int64_t n, RangeFn fn, int64_t grain = 1);

// The grain that gives every chunk at least kMinChunkWork units of work (multiply-adds, bytes touched)
// when one item costs `work_per_item`: below that, waking a second thread costs more than it saves.
inline constexpr double kMinChunkWork = 32768;
inline int64_t grain_for(double work_per_item) {
  return work_per_item >= kMinChunkWork ? 1 : int64_t(std::ceil(kMinChunkWork / std::max(work_per_item, 1.0)));
}

// Calls fn(i) once on each of the num_threads() threads (i = 0 on the caller), e.g. to size thread-local
// buffers up front. Blocks until all are done; rethrows like parallel_for.
void on_every_thread(ThreadFn fn);

}  // namespace llmopt
