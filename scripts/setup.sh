#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages. Idempotent.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libeigen3-dev libcli11-dev libfmt-dev doctest-dev
      nlohmann-json3-dev libpcre2-dev libutf8proc-dev)
# LLMOPT_SETUP_FUZZ=1 (scripts/fuzz.sh): also clang with libFuzzer and the sanitizer runtimes
[ "${LLMOPT_SETUP_FUZZ:-0}" = 1 ] && pkgs+=(clang libclang-rt-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all dependencies present"
