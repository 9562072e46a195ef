#!/usr/bin/env bash
# Build llama.cpp's tools from the llama-cpp-python source package (PyPI) into a directory outside the repo.
# Usage: scripts/bench/build_llamacpp.sh [PREFIX]   (default /work/llama.cpp). Idempotent; prints the bin dir.
# Env: LLAMACPP_VERSION pins the llama-cpp-python version (default: the newest), JOBS (default 2).
set -euo pipefail
prefix=${1:-/work/llama.cpp}
jobs=${JOBS:-2}
targets=(llama-tokenize llama-perplexity llama-bench llama-quantize llama-simple llama-cli)
mkdir -p "$prefix"
src="$prefix/src"
if [ ! -f "$src/CMakeLists.txt" ]; then
  dl="$prefix/download"
  mkdir -p "$dl"
  spec=llama-cpp-python${LLAMACPP_VERSION:+==$LLAMACPP_VERSION}
  # Only the sdist itself is wanted; --no-binary names the package so that its build tools may be wheels
  # (with :all: pip would build scikit-build-core and its whole tool chain from source just to read metadata).
  ls "$dl"/llama_cpp_python-*.tar.gz >/dev/null 2>&1 ||
    python3 -m pip download "$spec" --no-binary llama-cpp-python --no-deps -d "$dl" >&2
  tarball=$(ls "$dl"/llama_cpp_python-*.tar.gz | head -n1)
  tmp="$prefix/unpack.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  tar -xzf "$tarball" -C "$tmp"
  rm -rf "$src"
  mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$src"
  rm -rf "$tmp"
fi
build="$prefix/build"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
fi
have=$(cmake --build "$build" --target help)
for t in "${targets[@]}"; do
  # Some trees lack some targets (llama-cli, llama-simple); build what exists.
  if grep -qx "\.\.\. $t" <<<"$have"; then
    cmake --build "$build" -j"$jobs" --target "$t" >&2
  else
    echo "build_llamacpp.sh: target $t not in this llama.cpp tree, skipped" >&2
  fi
done
test -x "$build/bin/llama-tokenize" || { echo "build_llamacpp.sh: llama-tokenize was not built" >&2; exit 1; }
echo "$build/bin"
