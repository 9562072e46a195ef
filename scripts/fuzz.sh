#!/usr/bin/env bash
# scripts/fuzz.sh SECONDS [TARGET...]: builds the libFuzzer targets (fuzz/, clang, -DLLMOPT_FUZZ=ON:
# -fsanitize=fuzzer,address,undefined) into build-fuzz/ and runs each target (default: all) for SECONDS, one
# after the other, on one core. Corpora start from testdata/fuzz/seeds/TARGET, the inputs of former crashes
# (testdata/fuzz/TARGET) and the matching files of testdata/, and grow in build-fuzz/corpus/TARGET.
# A crash, leak or sanitizer report leaves its input in build-fuzz/artifacts/TARGET/ (commit it to
# testdata/fuzz/TARGET/ with the fix: tests/fuzz replays it). Prints one line per target; exit 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
all=(safetensors st_index config tokenizer_json encode detokenize)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

LLMOPT_SETUP_FUZZ=1 scripts/setup.sh >/dev/null
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DLLMOPT_FUZZ=ON \
      -DLLMOPT_TESTS=OFF -DLLMOPT_CUDA=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

# more starting points from testdata (read in place; libFuzzer writes new inputs only to the first dir)
extra_seeds() {
  case "$1" in
    safetensors) echo testdata/safetensors testdata/safetensors/py_sharded testdata/formats ;;
    config) echo testdata/configs ;;
  esac
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=0
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t art=build-fuzz/artifacts/$t log=build-fuzz/logs/$t.log
  mkdir -p "$corpus" "$art" "$(dirname "$log")"
  cp -n testdata/fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  [ -d testdata/fuzz/"$t" ] && cp -n testdata/fuzz/"$t"/* "$corpus"/ 2>/dev/null || true
  # shellcheck disable=SC2046
  if build-fuzz/fuzz/fuzz_"$t" "$corpus" $(extra_seeds "$t") -max_total_time="$secs" -timeout=30 \
       -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 -artifact_prefix="$art"/ >"$log" 2>&1; then
    result=ok
  else
    result="FAILED ($(ls "$art" | head -1))"
    failed=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  rate=$(grep -o 'exec/s: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  echo "fuzz $t: ${secs}s, $execs executions ($rate/s), coverage $cov, corpus $(ls "$corpus" | wc -l): $result"
done
exit $failed
