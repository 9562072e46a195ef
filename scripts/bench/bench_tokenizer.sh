#!/usr/bin/env bash
# Tokenizer speed: encode all of wikitext-2 wiki.test.raw with the Llama-3 and Qwen3 tokenizers, single-threaded,
# with `llmopt -t 1 tokenize` and with HF `tokenizers` (RAYON_NUM_THREADS=1, encode_batch and per-line encode),
# same machine, same run; prints a markdown table (times, ratio, load times) for BENCHMARKS.md.
# Usage: scripts/bench/bench_tokenizer.sh [REPEAT]
#   env BUILD: build directory (default build-bench-tokenizer, configured Release); SKIP_BUILD=1: use $BUILD/llmopt as is
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-bench-tokenizer}
REPEAT=${1:-5}
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLLMOPT_CUDA=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target llmopt >/dev/null
fi
grep -q 'CMAKE_BUILD_TYPE:STRING=Release' "$BUILD/CMakeCache.txt" || { echo "$BUILD is not a Release build" >&2; exit 1; }
export RAYON_NUM_THREADS=1
python3 scripts/bench/bench_tokenizer.py "$BUILD/llmopt" ../shared/data/wikitext-2-raw/wiki.test.raw "$REPEAT" \
  ../shared/models/tokenizers/llama3 ../shared/models/tokenizers/qwen3
