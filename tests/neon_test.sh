#!/usr/bin/env bash
# neon_test.sh - the aarch64 NEON kernels (src/kernels/arm_neon.c), which
# this x86 machine cannot run natively: the kernels and the thread pool are
# cross-compiled with aarch64-linux-gnu-gcc (warnings are errors), and when
# qemu-aarch64 is installed (Debian: qemu-user) test_kernels_simd is linked
# statically and run under it, so every NEON dot is checked against its
# scalar reference as on x86, and test_qtypes checks the reference
# decoders against ggml's digests there. scripts/setup.sh installs all it
# needs (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user). Without
# the cross compiler the test skips;
# without qemu, or in the sanitizer build (the run takes ~45 s under
# emulation and is the same code), it compile-checks only and says so.
set -uo pipefail
: "${GROK_SRC:?}" "${GROK_TMP:?}"
CC=aarch64-linux-gnu-gcc
command -v "$CC" >/dev/null 2>&1 || { echo "SKIP: no $CC (apt-get install gcc-aarch64-linux-gnu)"; exit 77; }
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
flags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror
       -I"$GROK_SRC/include" -I"$GROK_SRC/src" -I"$GROK_SRC/tests")
objs=()
for f in "$GROK_SRC"/src/kernels/*.c "$GROK_SRC"/src/util/*.c; do
    o="$(basename "$(dirname "$f")")_$(basename "$f" .c).o"
    "$CC" "${flags[@]}" -O2 -c "$f" -o "$o" || { echo "FAIL: $CC cannot compile $f"; exit 1; }
    objs+=("$o")
done
echo "ok   kernels compile for aarch64 (NEON) without warnings"
if ! command -v qemu-aarch64 >/dev/null 2>&1 || [ "${GROK_ASAN:-0}" = 1 ]; then
    echo "compile-checked only (no qemu-aarch64, or the sanitizer build)"
    exit 0
fi
# -O1: gcc 12's aarch64 vectorizer fails internally on this test at -O2
"$CC" "${flags[@]}" -O1 -static "$GROK_SRC/tests/test_kernels_simd.c" "${objs[@]}" -o test_kernels_simd -lm -lpthread \
    2>link.log || { cat link.log; echo "FAIL: link"; exit 1; }
# the reference decoders too (ggml's digests), as aarch64 compiles them
"$CC" "${flags[@]}" -O1 -static "$GROK_SRC/tests/test_qtypes.c" "${objs[@]}" -o test_qtypes -lm -lpthread \
    2>link.log || { cat link.log; echo "FAIL: link test_qtypes"; exit 1; }
qemu-aarch64 ./test_qtypes || { echo "FAIL: test_qtypes under qemu-aarch64"; exit 1; }
echo "ok   test_qtypes passes under qemu-aarch64"
out=$(qemu-aarch64 ./test_kernels_simd 2>&1)
rc=$?
echo "$out" | tail -n 20
echo "$out" | grep -q "isa neon" || { echo "FAIL: the emulated run did not select NEON"; exit 1; }
echo "$out" | grep -qE "neon: [1-9][0-9]* checks \([1-9][0-9]* of packed" || { echo "FAIL: no NEON (packed) checks ran"; exit 1; }
echo "$out" | grep -qE "quantize_q8a neon: [1-9][0-9]* checks" || { echo "FAIL: the NEON quantizer was not checked"; exit 1; }
[ $rc -eq 0 ] && echo "ok   test_kernels_simd passes under qemu-aarch64" || echo "FAIL: test_kernels_simd under qemu-aarch64"
exit $rc
