#!/usr/bin/env bash
# bench/mix_rules.sh - grok quantize's per-tensor mix rules against
# llama-quantize's: four random models whose shapes exercise the rules'
# branches (Grok-1's 8 experts and 6 query heads per KV head with a tied
# head; 8 experts untied with 96-column down matrices, so the block-size
# fallbacks apply; 4 experts without GQA; 2 experts, 8 layers), each
# planned as every mix with `--dry-run`, without and with an imatrix (some
# rules depend on having one), and a few with --pure and the type
# overrides. Prints each difference and a count; exit 1 if any.
#
#   bash bench/mix_rules.sh [DIR]           (default /tmp/grok-mix-rules)
#   WRITE=1 bash bench/mix_rules.sh         also regenerates
#       tests/fixtures/mix_rules.txt from llama-quantize's lists, which
#       tests/mix_rules_test.sh compares grok's against without llama.cpp
# Environment: BUILD (default build), LLAMA_QUANTIZE (default
# /work/llama/build/bin/llama-quantize, or llama-quantize on PATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DIR=${1:-/tmp/grok-mix-rules}
BUILD=${BUILD:-build}
LQ=${LLAMA_QUANTIZE:-/work/llama/build/bin/llama-quantize}
[ -x "$LQ" ] || LQ=$(command -v llama-quantize || true)
[ -n "$LQ" ] || { echo "no llama-quantize (set LLAMA_QUANTIZE)"; exit 77; }
G="$ROOT/$BUILD/grok"
mkdir -p "$DIR"
. tests/mix_rules_models.sh
mix_rules_models "$G" "$DIR" "$ROOT/tests/fixtures/kjv-heldout.txt"
echo "llama-quantize: $("$LQ" --version 2>&1 | grep -m1 -o 'commit [0-9a-f]*' || echo unknown)"
out="$DIR/llama.txt"
: > "$out"
for spec in $MIX_RULES_CASES; do
  IFS=: read -r model mix imx flags <<< "$spec"
  args=()
  [ "$imx" = 1 ] && args+=(--imatrix "$DIR/$model.imatrix.gguf")
  [ -n "$flags" ] && args+=(${flags//,/ })
  # llama-quantize's --dry-run lines: "[ i/ n] NAME - [...], type = T, size = ... -> ... (NEW)"
  list=$("$LQ" --dry-run "${args[@]}" "$DIR/$model.gguf" "$mix" 2>&1 | sed -n \
    's/^\[ *[0-9]*\/ *[0-9]*\] \([^ ]*\) .*type = *\([^,]*\),.*-> .*(\([^)]*\))$/\1 \3/p; s/^\[ *[0-9]*\/ *[0-9]*\] \([^ ]*\) .*type = *\([^,]*\), size = *[0-9.]* MiB$/\1 \2/p')
  [ -n "$list" ] || { echo "llama-quantize printed no plan for $spec"; exit 1; }
  echo "$spec $(echo "$list" | /usr/bin/python3 tests/ref/mix_plan.py)" >> "$out"
done
n=0 bad=0
while read -r spec want; do
  got=$(mix_rules_grok "$G" "$DIR" "$spec" | /usr/bin/python3 tests/ref/mix_plan.py)
  n=$((n + 1))
  if [ "$want" != "$got" ]; then
    bad=$((bad + 1))
    echo "DIFF $spec:"; diff <(echo "$want" | tr ' ' '\n') <(echo "$got" | tr ' ' '\n') | grep '^[<>]' \
      | sed 's/^</  llama.cpp/; s/^>/  grok     /'
  fi
done < "$out"
echo "$n plans compared ($(echo $MIX_RULES_CASES | wc -w) cases), $bad differ"
if [ "${WRITE:-0}" = 1 ]; then
  {
    echo "# llama-quantize --dry-run's per-tensor types (llama.cpp de3ff81), written by"
    echo "# WRITE=1 bash bench/mix_rules.sh for the models of tests/mix_rules_models.sh."
    echo "# One line per case MODEL:MIX:IMATRIX:FLAGS, then the plan as tests/ref/mix_plan.py encodes it."
    cat "$out"
  } > tests/fixtures/mix_rules.txt
  echo "wrote tests/fixtures/mix_rules.txt"
fi
[ "$bad" = 0 ]
