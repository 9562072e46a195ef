#pragma once
// Wall-clock seconds on a steady clock, for timings in reports and progress bars.
#include <chrono>

namespace llmopt {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace llmopt
