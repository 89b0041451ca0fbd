#!/usr/bin/env bash
# fuzz.sh - runs every libFuzzer target of tests/fuzz for SECONDS each
# (default 60), one after another (JOBS=N: N at once), nice'd, under ASan
# and UBSan, and prints per target the executions, the speed, the corpus
# size and the findings (crash-, leak-, timeout-, oom- files).
#   bash bench/fuzz.sh [SECONDS]
#   TARGETS="fuzz_gguf fuzz_api" JOBS=2 bash bench/fuzz.sh 3600
# Builds the fuzzers with clang into build-fuzz/. Each target's working
# corpus (build-fuzz/corpus/<target>, grown from tests/fuzz/corpus) is kept
# between runs, so a later run goes on where the last one stopped; every
# run appends its figures to build-fuzz/fuzz-log.tsv, and the totals per
# target over all runs are printed at the end, and over the runs of the
# code as it is now (the log's last columns: commit, hash of the sources). Findings land in
# build-fuzz/findings/; reproduce one with build-fuzz/<target> FILE, and
# commit a fixed one as tests/fuzz/corpus/<target>/regress-<what>.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${1:-60}
JOBS=${JOBS:-1}
B=$ROOT/build-fuzz
command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (scripts/setup.sh installs it)"; exit 1; }
cmake -S "$ROOT/tests/fuzz" -B "$B" -DCMAKE_C_COMPILER=clang > /dev/null
nice -n 10 cmake --build "$B" -j2 > /dev/null
mkdir -p "$B/findings" "$B/logs"
[ -f "$B/fuzz-log.tsv" ] || printf 'date\ttarget\tseconds\texecutions\texec_per_s\tcorpus\tfindings\tcommit\tcode\n' > "$B/fuzz-log.tsv"
# the code fuzzed: the commit (-dirty when the library or the targets differ
# from it), and a hash of the sources the fuzzers are built from, which a
# rebase that changes none of them leaves as it is
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$ROOT" status --porcelain -- src include tests/fuzz 2>/dev/null)" ] || COMMIT=$COMMIT-dirty
# (tests/fuzz/CMakeLists.txt leaves out the CLI but for fuzz_chat_jsonl's
# train_data.c and common.c, MPI and the HTTP front)
CODE=$(cd "$ROOT" && { find src include tests/fuzz -maxdepth 2 -type f \( -name '*.c' -o -name '*.h' -o -name CMakeLists.txt \) |
  grep -Ev '^src/cli/|^src/dist/mpi\.c$|^src/server/(http|sched|metrics|follow)\.c$'
  printf '%s\n' src/cli/cli.h src/cli/common.c src/cli/options.h src/cli/options.c src/cli/train_cli.h src/cli/train_data.c; } | LC_ALL=C sort | xargs cat |
  sha1sum | cut -c1-10)
ALL=$(cd "$ROOT/tests/fuzz/corpus" && ls -d fuzz_* | tr '\n' ' ')
TARGETS=${TARGETS:-$ALL}

one() {
  local t=$1 log=$B/logs/$1.log
  mkdir -p "$B/corpus/$t"
  local before; before=$(ls "$B/findings" | grep -c "^$t-" || true)
  # exit status ignored: a finding stops the target and is counted below
  nice -n 10 "$B/$t" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1 \
    -artifact_prefix="$B/findings/$t-" "$B/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" > "$log" 2>&1 || true
  local n rate corp after
  n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  corp=$(ls "$B/corpus/$t" | wc -l)
  after=$(ls "$B/findings" | grep -c "^$t-" || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M)" "$t" "$SECONDS_EACH" "${n:-0}" "${rate:-0}" \
    "$corp" "$((after - before))" "$COMMIT" "$CODE" >> "$B/fuzz-log.tsv"
  printf '%-20s %10s executions %8s/s  corpus %5s  findings %s\n' "$t" "${n:-0}" "${rate:-0}" "$corp" \
    "$((after - before))"
  [ "$after" -eq "$before" ] || grep -E "FUZZ FINDING|ERROR:|runtime error|SUMMARY" "$log" | head -n 4 | sed 's/^/    /'
}

running=0
for t in $TARGETS; do
  one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

echo "totals over every run in $B/fuzz-log.tsv:"
awk -F'\t' 'NR > 1 { n[$2] += $4; s[$2] += $3; f[$2] += $7 }
  END { for (t in n) printf "  %-20s %12d executions in %7d s, %d findings\n", t, n[t], s[t], f[t] }' \
  "$B/fuzz-log.tsv" | sort
echo "totals over the runs of this code (sources $CODE, commit $COMMIT):"
awk -F'\t' -v c="$CODE" 'NR > 1 && $9 == c { n[$2] += $4; s[$2] += $3; f[$2] += $7 }
  END { for (t in n) printf "  %-20s %12d executions in %7d s, %d findings\n", t, n[t], s[t], f[t] }' \
  "$B/fuzz-log.tsv" | sort
