// One libFuzzer binary per harness of fuzz/targets: built with -DLLMOPT_FUZZ_TARGET=<name>.
#include <cstddef>
#include <cstdint>

#include "fuzz/targets/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return llmopt::fuzz::LLMOPT_FUZZ_TARGET(data, size);
}
