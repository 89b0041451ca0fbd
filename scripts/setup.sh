#!/usr/bin/env bash
# setup.sh - installs the Debian packages grok.c needs (only those missing)
# and builds it. Sourced by demo.sh and test.sh; safe to run again.
#   GROK_BUILD_ASAN=1  also build the AddressSanitizer + UBSan tree (build-asan)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(gcc make cmake pkg-config python3 python3-dev python3-numpy python3-sentencepiece sentencepiece
  python3-jsonschema openmpi-bin libopenmpi-dev libmicrohttpd-dev libcjson-dev libcairo2-dev curl
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
# (the last three: tests/neon_test.sh cross-compiles the NEON kernels and runs their tests under qemu-aarch64)
# the chat page's browser test (tests/webui_test.sh skips without it); a
# failed install of it does not stop the build. playwright-core drives it
# over its debugging pipe: no chromedriver.
BROWSER_PACKAGES=(chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# node and npm run the openai client test; a node that brings its own npm is kept
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
browser_missing=()
for p in "${BROWSER_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || browser_missing+=("$p")
done
if [ ${#browser_missing[@]} -gt 0 ]; then
  echo "setup: installing ${browser_missing[*]} (for the chat page's browser test)"
  { { [ $updated = 1 ] || $SUDO apt-get update -qq; } &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${browser_missing[@]}"; } \
    >/dev/null 2>&1 || echo "setup: could not install ${browser_missing[*]}: webui_test will be skipped"
fi
# playwright-core for that test, exactly as tests/webui/package-lock.json pins
# it (npm ci), into tests/webui/node_modules (ignored by git); the test uses
# it, or installs it itself, or skips saying why
if command -v npm >/dev/null 2>&1 && ! bash tests/webui/installed.sh tests/webui; then
  echo "setup: npm ci in tests/webui (playwright-core, for the chat page's browser test)"
  (cd tests/webui && timeout 300 npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
    echo "setup: npm could not install playwright-core: webui_test will try again, or be skipped"
fi

JOBS=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS" >/dev/null
if [ "${GROK_BUILD_ASAN:-0}" = 1 ]; then
  cmake -S . -B build-asan -DGROK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$JOBS" >/dev/null
fi
