#!/usr/bin/env bash
# bundled_model_test.sh - the model that ships in models/grok-mini.gguf has
# learned its corpus: its perplexity on tests/fixtures/kjv-heldout.txt (the
# tail of the training text, held out from training) must stay below the
# bound docs/training.md states, and plain `grok run -p` (no -m) must use it.
set -euo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
mkdir -p "$GROK_TMP"
cd "$GROK_TMP"
MODEL="$GROK_SRC/models/grok-mini.gguf"
BOUND=30  # measured 24.47 (q8_0 file); docs/training.md states "below 30"
[ -f "$MODEL" ] || { echo "FAIL: $MODEL is missing"; exit 1; }
"$GROK" train --eval-only "$MODEL" --data "$GROK_SRC/tests/fixtures/kjv-heldout.txt" --seq 128 \
  --batch 8 --expert-stats --threads 2 | tee eval.txt
ppl=$(sed -n 's/.*perplexity \([0-9.]*\),.*/\1/p' eval.txt)
awk -v p="$ppl" -v b="$BOUND" 'BEGIN { exit !(p > 1 && p < b) }' || {
  echo "FAIL: held-out perplexity '$ppl' is not below $BOUND"; exit 1; }
# The binary finds the bundled model beside itself when -m is absent.
if [ "$(readlink -f "$(dirname "$GROK")/../models/grok-mini.gguf")" = "$(readlink -f "$MODEL")" ]; then
  GROK_DEFAULT_MODEL= "$GROK" run -p "And God said" -n 8 --temp 0 > run.txt 2> run.log || {
    echo "FAIL: grok run without -m"; cat run.log; exit 1; }
  [ -s run.txt ] || { echo "FAIL: grok run without -m wrote nothing"; exit 1; }
  echo "grok run -p (default model): $(cat run.txt)"
fi
echo "PASS: held-out perplexity $ppl < $BOUND"
