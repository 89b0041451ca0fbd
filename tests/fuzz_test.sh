#!/usr/bin/env bash
# fuzz_test.sh - every libFuzzer target of tests/fuzz (docs/reliability.md)
# as a regression: each runs over its committed seed corpus, regression
# seeds included, then a fixed number of mutated inputs from a fixed seed,
# under ASan and UBSan; any crash, sanitizer report or broken invariant
# fails the test. The fuzzers need clang: a clang tree builds them as its
# own targets (GROK_FUZZ_BIN names where); under gcc this script builds
# tests/fuzz as a separate CMake project with clang into its scratch dir
# (kept, so later runs rebuild only what changed), and skips when clang
# or its libFuzzer runtime is missing.
set -euo pipefail
: "${GROK_SRC:?}" "${GROK_TMP:?}"
RUNS=${GROK_FUZZ_RUNS:-10000}
mkdir -p "$GROK_TMP"
cd "$GROK_TMP"

if [ -n "${GROK_FUZZ_BIN:-}" ]; then
  BIN=$GROK_FUZZ_BIN
else
  command -v clang >/dev/null 2>&1 || {
    echo "SKIP: clang is not installed (scripts/setup.sh installs clang and libclang-rt-14-dev)"; exit 77; }
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n; }\n' > probe.c
  clang -fsanitize=fuzzer,address,undefined probe.c -o probe 2> probe.log || {
    echo "SKIP: clang cannot link libFuzzer (libclang-rt-14-dev missing?): $(head -n 1 probe.log)"; exit 77; }
  BIN=$GROK_TMP/build
  cmake -S "$GROK_SRC/tests/fuzz" -B "$BIN" -DCMAKE_C_COMPILER=clang > cmake.log 2>&1 || { cat cmake.log; exit 1; }
  cmake --build "$BIN" -j2 > build.log 2>&1 || { tail -n 40 build.log; exit 1; }
fi

fails=0
for corpus in "$GROK_SRC"/tests/fuzz/corpus/*/; do
  t=$(basename "$corpus")
  [ -x "$BIN/$t" ] || { echo "FAIL: $t has a corpus but no fuzzer in $BIN"; fails=$((fails + 1)); continue; }
  rm -rf "new-$t" && mkdir "new-$t"
  # new inputs go to new-$t, never into the committed corpus
  if "$BIN/$t" -runs="$RUNS" -seed=1 -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1 \
      -artifact_prefix="$GROK_TMP/$t-" "new-$t" "$corpus" > "$t.log" 2>&1; then
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$t.log")
    s=$(ls "$corpus" | wc -l)
    echo "ok   $t: $s seeds, $n executions"
  else
    echo "FAIL: $t"
    grep -E "FUZZ FINDING|ERROR:|runtime error|SUMMARY|Test unit written" "$t.log" | head -n 8
    fails=$((fails + 1))
  fi
done
[ "$fails" -eq 0 ] || exit 1
