#include "lib/core/arena.h"

#include <cstdlib>
#include <new>

namespace llmopt {
namespace {
constexpr size_t kAlign = 64;
size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

const char* device_name(Device d) { return d == Device::CUDA ? "cuda" : "cpu"; }

Arena::Arena(size_t reserve)
    : Arena(Device::CPU, [](size_t n) { return ::operator new(n, std::align_val_t(kAlign)); },
            [](void* p) { ::operator delete(p, std::align_val_t(kAlign)); }) {
  if (reserve) {
    buf_ = static_cast<std::byte*>(sys_alloc(aligned(reserve)));
    cap_ = aligned(reserve);
  }
}

Arena::~Arena() {
  for (void* p : overflow_) free_(p);
  if (buf_) free_(buf_);
}

void* Arena::sys_alloc(size_t bytes) {
  ++sys_allocs_;
  return alloc_(bytes);
}

void* Arena::alloc(size_t bytes) {
  bytes = aligned(std::max<size_t>(bytes, 1));
  live_ += bytes;
  high_ = std::max(high_, live_);
  if (used_ + bytes <= cap_) {
    void* p = buf_ + used_;
    used_ += bytes;
    return p;
  }
  overflow_.push_back(sys_alloc(bytes));  // this step only; the buffer grows at reset()
  return overflow_.back();
}

void Arena::reset() {
  if (!overflow_.empty()) {
    for (void* p : overflow_) free_(p);
    overflow_.clear();
    if (buf_) free_(buf_);
    cap_ = high_ + high_ / 4;
    buf_ = static_cast<std::byte*>(sys_alloc(cap_));
  }
  used_ = 0;
  live_ = 0;
}

}  // namespace llmopt
