#!/usr/bin/env bash
# Quantization quality and time on stories260K: fp32 / RTN / GPTQ / GPTQ+act-order at 4 and 3 bits (group 32,
# asymmetric, --format dense so `llmopt eval` runs them), calibrated on the TinyStories train excerpt
# (128 windows of 512 tokens, seed 0), scored with `llmopt eval` (gptq protocol, ctx 512) on the validation
# excerpt with --kl-base the fp32 model. Prints a markdown table for BENCHMARKS-quant.md.
# Usage: scripts/bench/bench_quant.sh
#   env MAX_WINDOWS: score only the first W windows of 512 tokens (default 0 = all of the excerpt)
#   env BUILD: build directory (default build-bench-quant, configured Release); SKIP_BUILD=1: use $BUILD/llmopt as is
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-bench-quant}
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLLMOPT_CUDA=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target llmopt >/dev/null
fi
grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$BUILD/CMakeCache.txt" || { echo "$BUILD is not a Release build" >&2; exit 1; }
BIN="$BUILD/llmopt"
MODEL=../shared/models/stories260K
CALIB=../shared/data/tinystories/tinystories_train_excerpt.txt
VALID=../shared/data/tinystories/tinystories_valid_excerpt.txt
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
COMMON=(--group-size 32 --asym --format dense --calib "$CALIB" --nsamples 128 --seqlen 512 --seed 0)

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
row() {  # name dir quantize_seconds
  local j
  j=$("$BIN" -q eval "$2" --ppl "$VALID" --ctx 512 --max-windows "${MAX_WINDOWS:-0}" --kl-base "$MODEL" --json)
  printf '| %s | %.4f | %.5f | %.4f | %s |\n' "$1" "$(field ppl <<<"$j")" "$(field kl <<<"$j")" \
    "$(field top1_agreement <<<"$j")" "$3"
}

echo "| model | ppl | KL(fp32‖q) | top-1 agreement | quantize time (s) |"
echo "|---|---|---|---|---|"
row "fp32" "$MODEL" "-"
for bits in 4 3; do
  for cfg in "rtn:--method rtn" "gptq:--method gptq" "gptq+act-order:--method gptq --act-order"; do
    name=${cfg%%:*}
    read -r -a flags <<<"${cfg#*:}"
    dir="$OUT/$name-$bits"
    secs=$("$BIN" -q quantize "$MODEL" -o "$dir" "${flags[@]}" --bits "$bits" "${COMMON[@]}" --json | field seconds)
    row "$name w${bits}g32" "$dir" "$(printf '%.2f' "$secs")"
  done
done
