#pragma once
// A persistent worker pool; parallel_for splits [0, n) into contiguous chunks, one per thread.
#include <cstdint>
#include <type_traits>
#include <utility>

namespace llmopt {

void set_num_threads(int n);  // 0 = number of hardware threads
int num_threads();

// A non-owning reference to a callable fn(begin, end): unlike std::function it never allocates, so a
// forward step that calls parallel_for allocates nothing.
class RangeFn {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, RangeFn>>>
  RangeFn(F&& f) : obj_(const_cast<void*>(static_cast<const void*>(&f))),  // NOLINT: implicit by design
                   call_([](void* o, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(o))(b, e); }) {}
  void operator()(int64_t b, int64_t e) const { call_(obj_, b, e); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int64_t);
};

// Calls fn(begin, end) on disjoint chunks covering [0, n); blocks until all are done.
// Chunks are at least `grain` long. Nested calls run inline on the calling thread. If chunks throw, the
// call still waits for every chunk and then rethrows the first exception on the calling thread.
void parallel_for(int64_t n, RangeFn fn, int64_t grain = 1);

}  // namespace llmopt
