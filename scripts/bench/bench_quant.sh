#!/usr/bin/env bash
# Quantization quality and time on stories260K: fp32 / RTN / GPTQ / GPTQ+act-order / AWQ at 4 and 3 bits (group 32,
# asymmetric, --format dense so `llmopt eval` runs them), and SmoothQuant W8A8 (int8 per-channel weights, α 0.5,
# RTN or GPTQ weights; dense fake-quant weights, so the per-token activation quantization is not simulated) next
# to plain RTN int8 per-channel, calibrated on the TinyStories train excerpt
# (128 windows of 512 tokens, seed 0), scored with `llmopt eval` (gptq protocol, ctx 512) on the validation
# excerpt with --kl-base the fp32 model. Prints a markdown table for BENCHMARKS.md.
# Usage: scripts/bench/bench_quant.sh
#   env MAX_WINDOWS: score only the first W windows of 512 tokens (default 0 = all of the excerpt)
#   env ROWS: "all" (default), "base" (fp32 + RTN/GPTQ), "scaled" (fp32 + RTN + AWQ + SmoothQuant rows) or "llmc"
#     (llmopt beside llm-compressor in llm-compressor's config: down_proj per channel, see below)
#   env LLMC_DIR (ROWS=llmc): the OUT_DIRs of scripts/bench/bench_quant_llmcompressor.py, as LLMC_DIR/llmc-<scheme>/dense
#     (gptq-w4, gptq-w3, awq-w4, w8a8; a missing one is skipped) and LLMC_DIR/llmc-w8a8/compressed;
#     llm-compressor 0.14's GPTQ default is actorder static = llmopt's --act-order --static-groups
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
ROWS=${ROWS:-all}
if [[ $ROWS == llmc ]]; then
  # llm-compressor's group strategy rejects stories260K's down_proj (172 input features, not a multiple of 32), so
  # both sides quantize q/k/v/o/gate/up with group 32 and down_proj per output channel: ours through
  # --format compressed-tensors --ragged-per-channel (llmopt eval runs the packed checkpoint), theirs
  # (bench_quant_llmcompressor.py) as dense fake-quant weights. W8A8: int8 per-channel weights + dynamic per-token
  # int8 activations, run by llmopt's W8A8 kind from compressed-tensors int-quantized checkpoints (both sides).
  # Their quantize times are the "oneshot_seconds" that bench_quant_llmcompressor.py prints ("-" here).
  ct=(--format compressed-tensors --calib "$CALIB" --nsamples 128 --seqlen 512 --seed 0 --json)
  ours() {  # name flags...
    local name=$1 dir="$OUT/$1" secs
    shift
    secs=$("$BIN" -q quantize "$MODEL" -o "$dir" "$@" "${ct[@]}" | field seconds)
    row "llmopt $name" "$dir" "$(printf '%.2f' "$secs")"
  }
  theirs() {  # name dir
    if [[ -d $2 ]]; then row "llm-compressor $1" "$2" "${3:--}"; fi
  }
  L=${LLMC_DIR:-/tmp/bq}
  for bits in 4 3; do
    ours "rtn w${bits}g32" --method rtn --bits "$bits" --group-size 32 --asym --ragged-per-channel
    ours "gptq w${bits}g32" --method gptq --bits "$bits" --group-size 32 --asym --ragged-per-channel
    ours "gptq+act-order static-groups w${bits}g32" --method gptq --act-order --static-groups --bits "$bits" \
      --group-size 32 --asym --ragged-per-channel
    theirs "gptq w${bits}g32 (actorder static)" "$L/llmc-gptq-w$bits/dense"
  done
  ours "awq w4g32" --method awq --bits 4 --group-size 32 --asym --ragged-per-channel
  theirs "awq w4g32" "$L/llmc-awq-w4/dense"
  ours "smoothquant w8a8 (α 0.5)" --method smoothquant --alpha 0.5
  ours "smoothquant+gptq w8a8 (α 0.5)" --method smoothquant --alpha 0.5 --weights gptq
  theirs "smoothquant+gptq w8a8 (α 0.5), dense weights only" "$L/llmc-w8a8/dense"
  theirs "smoothquant+gptq w8a8 (α 0.5)" "$L/llmc-w8a8/compressed"
  exit 0
fi
quantize_row() {  # name flags...
  local name=$1 dir="$OUT/$1" secs
  shift
  secs=$("$BIN" -q quantize "$MODEL" -o "$dir" "$@" --format dense --calib "$CALIB" --nsamples 128 --seqlen 512 \
    --seed 0 --json | field seconds)
  row "$name" "$dir" "$(printf '%.2f' "$secs")"
}
for bits in 4 3; do
  cfgs=()
  [[ $ROWS != scaled ]] && cfgs+=("rtn:--method rtn" "gptq:--method gptq" "gptq+act-order:--method gptq --act-order")
  [[ $ROWS == scaled ]] && cfgs+=("rtn:--method rtn")
  [[ $ROWS != base ]] && cfgs+=("awq:--method awq")
  for cfg in "${cfgs[@]}"; do
    read -r -a flags <<<"${cfg#*:}"
    quantize_row "${cfg%%:*} w${bits}g32" "${flags[@]}" --bits "$bits" --group-size 32 --asym
  done
done
if [[ $ROWS != base ]]; then  # W8A8: int8 symmetric per output channel
  quantize_row "rtn w8 per-channel" --method rtn --bits 8 --group-size -1 --sym
  quantize_row "smoothquant w8a8 (α 0.5)" --method smoothquant --alpha 0.5
  quantize_row "smoothquant+gptq w8a8 (α 0.5)" --method smoothquant --alpha 0.5 --weights gptq
fi
