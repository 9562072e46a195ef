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
if $bin --help | grep -q generate; then
  echo "== llmopt generate $M --prompt 'Once upon a time' --max-new-tokens 64"
  $bin generate "$M" --prompt "Once upon a time" --max-new-tokens 64
fi
if $bin --help | grep -q eval; then
  echo "== llmopt eval $M --ppl tinystories_valid_excerpt.txt --ctx 512 --max-windows 64"
  $bin eval "$M" --ppl ../shared/data/tinystories/tinystories_valid_excerpt.txt --ctx 512 --max-windows 64
fi
