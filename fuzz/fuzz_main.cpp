// One libFuzzer binary per harness of fuzz/targets: built with -DLLMOPT_FUZZ_TARGET=<name>.
#include <cstddef>
#include <cstdint>

#include "fuzz/targets/targets.h"

#ifdef LLMOPT_FUZZ_WARM_UP
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  llmopt::fuzz::warm_up();
  return 0;
}
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return llmopt::fuzz::LLMOPT_FUZZ_TARGET(data, size);
}
