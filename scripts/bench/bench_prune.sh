#!/usr/bin/env bash
# Pruning quality and time on stories260K: magnitude / Wanda / SparseGPT at 50% unstructured and 2:4, and SparseGPT
# 2:4 + 4-bit (group 32, asymmetric, stored dequantized), calibrated on the TinyStories train excerpt (128 windows
# of 512 tokens, seed 0), scored with `llmopt eval` (gptq protocol, ctx 512) on the validation excerpt with
# --kl-base the fp32 model. With LLMCOMPRESSOR=1 also llm-compressor's SparseGPT and Wanda (its oneshot pipeline,
# scripts/bench/bench_prune_llmcompressor.py) on the same model and text, scored the same way.
# Prints a markdown table for BENCHMARKS.md.
# Usage: scripts/bench/bench_prune.sh
#   env MAX_WINDOWS: score only the first W windows of 512 tokens (default 0 = all of the excerpt)
#   env BUILD: build directory (default build-bench-prune, configured Release); SKIP_BUILD=1: use $BUILD/llmopt as is
#   env LLMCOMPRESSOR=1: add llm-compressor's rows (needs PYTHONPATH with llmcompressor, see the .py's docstring);
#   env LC_DIR: reuse llm-compressor outputs already in $LC_DIR/{sparsegpt,wanda}-{50,24} instead of running it
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-bench-prune}
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
CAL=(--calib "$CALIB" --nsamples 128 --seqlen 512 --seed 0)

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
row() {  # name dir linear_sparsity prune_seconds
  local j
  j=$("$BIN" -q eval "$2" --ppl "$VALID" --ctx 512 --max-windows "${MAX_WINDOWS:-0}" --kl-base "$MODEL" --json)
  printf '| %s | %s | %.4f | %.5f | %.4f | %s |\n' "$1" "$3" "$(field ppl <<<"$j")" "$(field kl <<<"$j")" \
    "$(field top1_agreement <<<"$j")" "$4"
}
ours() {  # name dir flags...
  local name=$1 dir=$2 j
  shift 2
  j=$("$BIN" -q prune "$MODEL" -o "$dir" "$@" --json)
  row "$name" "$dir" "$(printf '%.4f' "$(field linear_sparsity <<<"$j")")" "$(printf '%.2f' "$(field seconds <<<"$j")")"
}

echo "| model | linear sparsity | ppl | KL(fp32‖pruned) | top-1 agreement | prune time (s) |"
echo "|---|---|---|---|---|---|"
row "fp32" "$MODEL" "0" "-"
for pat in "50%:--sparsity 0.5" "2:4:--pattern 2:4"; do
  name=${pat%%:--*}
  read -r -a p <<<"--${pat#*:--}"
  tag=${name/\%/}; tag=${tag/:/}
  ours "magnitude $name" "$OUT/mag-$tag" --method magnitude "${p[@]}"
  ours "wanda $name" "$OUT/wanda-$tag" --method wanda "${p[@]}" "${CAL[@]}"
  ours "sparsegpt $name" "$OUT/sgpt-$tag" --method sparsegpt "${p[@]}" "${CAL[@]}"
done
ours "sparsegpt 2:4 + w4g32" "$OUT/sgpt-24-w4" --method sparsegpt --pattern 2:4 --bits 4 --group-size 32 --asym "${CAL[@]}"

if [[ "${LLMCOMPRESSOR:-0}" == 1 ]]; then
  for m in sparsegpt wanda; do
    for pat in 0.5 2:4; do
      tag=$([[ $pat == 2:4 ]] && echo 24 || echo 50)
      dir=${LC_DIR:-$OUT}/$m-$tag
      if [[ -z "${LC_DIR:-}" ]]; then
        j=$(python3 scripts/bench/bench_prune_llmcompressor.py "$MODEL" "$CALIB" "$dir" "$m" "$pat" 2>/dev/null | tail -1)
        printf '%s\n' "$j" >"$dir.json"
      fi
      j=$(cat "$dir.json")
      row "llm-compressor $m $([[ $pat == 2:4 ]] && echo 2:4 || echo 50%)" "$dir" \
        "$(printf '%.4f' "$(field linear_sparsity <<<"$j")")" "$(printf '%.2f' "$(field seconds <<<"$j")")"
    done
  done
fi
