#!/usr/bin/env bash
# MHA/GQA → fewer KV heads: convert stories260K (4 KV heads) to 2 and to 1 KV head with adjacent and with
# similarity grouping, then report KV bytes per token (`llmopt inspect --json`) and perplexity + KL from the
# original (`llmopt eval --json`) on the TinyStories validation excerpt. Prints a markdown table for
# BENCHMARKS.md, preceded by the commands, machine and date.
# Usage: scripts/bench/bench_convert.sh
#   env BUILD: build directory (default build-conv); SKIP_BUILD=1: use $BUILD/llmopt as is
#   env NSAMPLES/SEQLEN: calibration windows for similarity grouping (default 64 × 256 tokens)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-conv}
NSAMPLES=${NSAMPLES:-64}
SEQLEN=${SEQLEN:-256}
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLLMOPT_CUDA=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target llmopt >/dev/null
fi
LLMOPT="$BUILD/llmopt"
MODEL=../shared/models/stories260K
CALIB=../shared/data/tinystories/tinystories_train_excerpt.txt
VALID=../shared/data/tinystories/tinystories_valid_excerpt.txt
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
eval_json() { "$LLMOPT" -q eval "$1" --ppl "$VALID" --ctx 512 --max-windows 64 --kl-base "$MODEL" --json; }

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "commands:"
echo "  $LLMOPT convert $MODEL -o OUT --kv-heads G --grouping adjacent"
echo "  $LLMOPT convert $MODEL -o OUT --kv-heads G --grouping similarity --calib $CALIB --nsamples $NSAMPLES --seqlen $SEQLEN"
echo "  $LLMOPT inspect OUT --json   # kv_bytes_per_token"
echo "  $LLMOPT eval OUT --ppl $VALID --ctx 512 --max-windows 64 --kl-base $MODEL --json"
echo
echo "| KV heads | grouping | KV bytes/token | relative pooling error (calib) | PPL | KL(orig ‖ conv) | top-1 agreement | convert time (s) |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
base=$(eval_json "$MODEL")
kv=$("$LLMOPT" inspect "$MODEL" --json | jget '["kv_bytes_per_token"]')
printf "| 4 (original) | – | %s | – | %.4f | – | – | – |\n" "$kv" "$(echo "$base" | jget '["ppl"]')"
for G in 2 1; do
  for grouping in adjacent similarity; do
    out="$WORK/g$G-$grouping"
    extra=()
    [[ $grouping == similarity ]] && extra=(--calib "$CALIB" --nsamples "$NSAMPLES" --seqlen "$SEQLEN")
    t0=$(date +%s.%N)
    conv=$("$LLMOPT" -q convert "$MODEL" -o "$out" --kv-heads "$G" --grouping "$grouping" "${extra[@]}" --json)
    t1=$(date +%s.%N)
    # the pooling error of the chosen grouping on the calibration text (similarity only reports it; for
    # adjacent the similarity run's "adjacent" figure is the same grouping's error)
    err=$(echo "$conv" | python3 -c "import json,sys; d=json.load(sys.stdin); print('%.4f (adjacent %.4f)' % (d['mean_pooling_error_similarity'], d['mean_pooling_error_adjacent']) if 'mean_pooling_error_similarity' in d else '–')")
    kv=$("$LLMOPT" inspect "$out" --json | jget '["kv_bytes_per_token"]')
    ev=$(eval_json "$out")
    printf "| %s | %s | %s | %s | %.4f | %.5f | %.4f | %.2f |\n" "$G" "$grouping" "$kv" "$err" \
      "$(echo "$ev" | jget '["ppl"]')" "$(echo "$ev" | jget '["kl"]')" "$(echo "$ev" | jget '["top1_agreement"]')" \
      "$(echo "$t1 - $t0" | bc -l)"
  done
done
