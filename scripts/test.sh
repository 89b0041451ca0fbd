#!/usr/bin/env bash
# test.sh - the project's one test command: installs what is missing, builds
# the normal and the AddressSanitizer + UndefinedBehaviorSanitizer trees,
# runs every test in both with ctest, and ends with one summary line.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GROK_BUILD_ASAN=1 bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

JOBS=$(nproc 2>/dev/null || echo 2)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
total_pass=0 total_fail=0 rc=0
for tree in build build-asan; do
  echo "=== tests in $tree"
  log=$(mktemp)
  (cd "$tree" && ctest --output-on-failure -j"$JOBS" --timeout 900) 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  # ctest: "NN% tests passed, F tests failed out of T"
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  fail=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
  all=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
  skipped=$(grep -cE '\*\*\*Skipped|Not Run' "$log" || true)
  if [ -z "$line" ]; then rc=1; fail=1; all=1; fi
  # each skipped test's reason (its first SKIP line), which ctest keeps only in its log
  for t in $(sed -nE 's/^[[:space:]]+[0-9]+ - ([A-Za-z0-9_]+) \(Skipped\)$/\1/p' "$log"); do
    why=$(awk -v t="$t" '$0 ~ "^[0-9]+/[0-9]+ Test: " { cur = $3 } cur == t && /^SKIP/ { print; exit }' \
      "$tree/Testing/Temporary/LastTest.log" 2>/dev/null)
    echo "skipped in $tree: $t: ${why:-(no reason printed)}"
  done
  total_fail=$((total_fail + fail))
  total_pass=$((total_pass + all - fail - skipped))
  rm -f "$log"
done
echo "${total_pass} passed, ${total_fail} failed"
exit $rc
