#!/usr/bin/env bash
# Fresh machine to the main job on the bundled real model (stories260K): install, build, run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
M=../shared/models/stories260K
bin=build/llmopt
echo "== llmopt inspect $M"
$bin inspect "$M"
D=../shared/data/tinystories
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "== llmopt generate (greedy)"
$bin generate "$M" --prompt "Once upon a time" --max-new-tokens 64
echo
echo "== llmopt eval: perplexity on the TinyStories validation excerpt (reference: 4.03)"
$bin eval "$M" --ppl $D/tinystories_valid_excerpt.txt --ctx 512 --max-windows 64
echo "== llmopt quantize: GPTQ 4-bit, group 32, calibrated on the TinyStories train excerpt"
$bin quantize "$M" -o "$OUT/gptq4" --method gptq --bits 4 --group-size 32 --format dense \
  --calib $D/tinystories_train_excerpt.txt --nsamples 64 --seqlen 256
$bin eval "$OUT/gptq4" --ppl $D/tinystories_valid_excerpt.txt --ctx 512 --max-windows 64 --kl-base "$M"
echo "== llmopt prune: SparseGPT 2:4"
$bin prune "$M" -o "$OUT/sgpt24" --method sparsegpt --pattern 2:4 \
  --calib $D/tinystories_train_excerpt.txt --nsamples 64 --seqlen 256
$bin eval "$OUT/sgpt24" --ppl $D/tinystories_valid_excerpt.txt --ctx 512 --max-windows 64 --kl-base "$M"
