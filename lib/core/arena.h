#pragma once
// The workspace arena: every activation of a forward step is carved out of one buffer, and reset()
// hands it all back at the start of the next step. A step that needs more than the buffer holds is
// served from overflow blocks and grows the buffer at the next reset(), so after one warm-up step of
// each shape a forward pass allocates nothing. Memory comes from an allocator (the backend's), so the
// same arena serves host and device activations.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "lib/core/tensor.h"

namespace llmopt {

class Arena {
 public:
  using AllocFn = std::function<void*(size_t)>;
  using FreeFn = std::function<void(void*)>;

  Arena(Device device, AllocFn alloc, FreeFn free) : device_(device), alloc_(std::move(alloc)), free_(std::move(free)) {}
  explicit Arena(size_t reserve = 0);  // host memory
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Uninitialised storage for `bytes`, 64-byte aligned, valid until reset().
  void* alloc(size_t bytes);
  Tensor matrix(DType t, int64_t rows, int64_t cols) {
    return Tensor::matrix(alloc(size_t(rows * cols) * dtype_size(t)), t, rows, cols, cols, device_);
  }
  Tensor f32(int64_t rows, int64_t cols) { return matrix(DType::F32, rows, cols); }
  template <typename T> T* array(size_t n) { return static_cast<T*>(alloc(n * sizeof(T))); }

  // Frees everything handed out; grows the buffer to the last step's high-water mark if it overflowed.
  void reset();

  // Scoped reuse inside a step: everything allocated after mark() is handed back by rewind(m), so each
  // layer of a forward pass reuses the same bytes.
  struct Mark { size_t used, live; };
  Mark mark() const { return {used_, live_}; }
  void rewind(Mark m) {
    if (m.used <= used_) used_ = m.used;
    live_ = m.live;
  }

  size_t capacity() const { return cap_; }
  size_t high_water() const { return high_; }
  int64_t system_allocations() const { return sys_allocs_; }  // buffer (re)allocations so far

 private:
  void* sys_alloc(size_t bytes);
  Device device_ = Device::CPU;
  AllocFn alloc_;
  FreeFn free_;
  std::byte* buf_ = nullptr;
  size_t cap_ = 0, used_ = 0, high_ = 0, live_ = 0;
  std::vector<void*> overflow_;
  int64_t sys_allocs_ = 0;
};

}  // namespace llmopt
