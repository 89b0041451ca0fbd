#!/usr/bin/env bash
# setup.sh - installs the Debian packages grok.c needs (only those missing)
# and builds it. Sourced by demo.sh and test.sh; safe to run again.
#   GROK_BUILD_ASAN=1  also build the AddressSanitizer + UBSan tree (build-asan)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(gcc make cmake pkg-config python3 python3-dev python3-numpy python3-sentencepiece sentencepiece
  python3-jsonschema openmpi-bin libopenmpi-dev libmicrohttpd-dev libcjson-dev curl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# node and npm run the openai client test; a node that brings its own npm is kept
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS" >/dev/null
if [ "${GROK_BUILD_ASAN:-0}" = 1 ]; then
  cmake -S . -B build-asan -DGROK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$JOBS" >/dev/null
fi
