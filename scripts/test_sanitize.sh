#!/usr/bin/env bash
# The test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (Debug, -fno-sanitize-recover=all)
# into build-asan/, then run with ctest: any leak, out-of-bounds access or undefined behaviour fails its test.
# The CLI tests run the sanitized llmopt of that build. CUDA is left out (its test is skipped anyway: no GPU,
# and the CUDA runtime does not run under ASan). Extra args go to cmake configure.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLLMOPT_NATIVE=ON -DLLMOPT_SANITIZE=address,undefined \
      -DLLMOPT_CUDA=OFF "$@" >/dev/null
cmake --build build-asan -j"$(nproc)"
# abort on the first report: a sanitized llmopt then dies by SIGABRT, which the CLI tests see as a crash
# (the default exit code 1 would pass for a bad-input error)
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_init_order=1:check_initialization_order=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
# The two tests that only re-run SmolLM2-sized work already covered by the Release suite (the 135M-parameter
# GGUF export to a Hugging Face directory and its logits; quantize/prune of the whole model) are left to the
# Release build: unoptimised and sanitized, they alone would take most of CI's time.
cd build-asan && ctest --output-on-failure -j"$(nproc)" -E '^(convert\.test_gguf_hf|cli\.test_gguf_export_cli)$'

