#pragma once
// A persistent worker pool; parallel_for splits [0, n) into contiguous chunks, one per thread.
#include <cstdint>
#include <functional>

namespace llmopt {

void set_num_threads(int n);  // 0 = number of hardware threads
int num_threads();

// Calls fn(begin, end) on disjoint chunks covering [0, n); blocks until all are done.
// Chunks are at least `grain` long. Nested calls run inline on the calling thread. If chunks throw, the
// call still waits for every chunk and then rethrows the first exception on the calling thread.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

}  // namespace llmopt
