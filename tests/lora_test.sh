#!/usr/bin/env bash
# lora_test.sh - LoRA fine-tuning end to end on the bundled model: rank-4
# adapters trained for a few seconds on recipe text (far from the KJV the
# model learned) lower the held-out loss on more recipe text; a run stopped
# at a checkpoint and resumed writes the same adapter as an uninterrupted
# run; `grok run --lora` prints what `grok run` prints on the merged model
# (greedy and sampled); the merged model keeps the base's size and types
# unless --type says otherwise; a base of other shapes and bad flags are
# refused with a message. (Logits of applied vs merged: test_lora.)
set -euo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
BASE="$GROK_SRC/models/grok-mini.gguf"
[ -f "$BASE" ] || { echo "SKIP: $BASE (the bundled model) is absent"; exit 77; }
mkdir -p "$GROK_TMP"
cd "$GROK_TMP"
rm -f ./*.gguf ./*.log ./*.txt

# Training text: the fixture's first 56 lines; held out: the rest (other recipes).
head -n 56 "$GROK_SRC/tests/fixtures/lora-text.txt" > train.txt
tail -n +57 "$GROK_SRC/tests/fixtures/lora-text.txt" > heldout.txt
FT=(--init "$BASE" --lora 4 --lora-alpha 8 --data train.txt --holdout 0.1 --steps 10 --batch 2
    --seq 32 --lr 2e-2 --warmup 2 --threads 2 --eval-every 5 --seed 1)

"$GROK" train "${FT[@]}" -o adapter.gguf 2> full.log || { cat full.log; exit 1; }
grep -q "held-out loss before fine-tuning" full.log || { echo "FAIL: no initial evaluation"; exit 1; }
"$GROK" merge "$BASE" adapter.gguf --type f32 -o merged.gguf 2> merge.log || { cat merge.log; exit 1; }
before=$("$GROK" train --eval-only "$BASE" --data heldout.txt --seq 32 | sed -n 's/.*loss \([0-9.]*\) nats.*/\1/p')
after=$("$GROK" train --eval-only merged.gguf --data heldout.txt --seq 32 | sed -n 's/.*loss \([0-9.]*\) nats.*/\1/p')
echo "held-out loss on other recipes: base $before, fine-tuned $after"
awk -v a="$before" -v b="$after" 'BEGIN { exit !(b < a - 0.3) }' || {
  echo "FAIL: fine-tuning did not lower the held-out loss by 0.3 nats ($before -> $after)"; exit 1; }

# Stopped at step 5 with a checkpoint, resumed to 10: the same adapter bytes.
"$GROK" train "${FT[@]}" --stop-at 5 --checkpoint ck.gguf -o part.gguf 2> part.log
"$GROK" train "${FT[@]}" --resume ck.gguf -o resumed.gguf 2> resumed.log || { cat resumed.log; exit 1; }
cmp adapter.gguf resumed.gguf || { echo "FAIL: the resumed adapter differs"; exit 1; }
echo "resume: identical adapter ($(stat -c %s adapter.gguf) bytes)"

# run --lora == run on the merged model, greedy and sampled.
for flags in "--temp 0" "--temp 0.8 --seed 7"; do
  "$GROK" run -m "$BASE" --lora adapter.gguf -p "How to make" -n 24 $flags > a.txt 2> a.log
  "$GROK" run -m merged.gguf -p "How to make" -n 24 $flags > b.txt 2> b.log
  cmp a.txt b.txt || { echo "FAIL: run --lora differs from the merged model ($flags)"; diff a.txt b.txt; exit 1; }
  "$GROK" run -m "$BASE" -p "How to make" -n 24 $flags > c.txt 2> c.log
  cmp -s a.txt c.txt && { echo "FAIL: the adapter does not change the output ($flags)"; exit 1; }
  echo "run --lora ($flags): $(head -c 60 a.txt | tr '\n' ' ')"
done
# Default merge keeps each tensor's type: the same size as the Q8_0 base.
"$GROK" merge "$BASE" adapter.gguf -o merged-q.gguf 2> /dev/null
[ "$(stat -c %s merged-q.gguf)" = "$(stat -c %s "$BASE")" ] || {
  echo "FAIL: the default merge changed the file's size"; exit 1; }
cmp -s merged-q.gguf "$BASE" && { echo "FAIL: the merged file equals the base"; exit 1; }

# Refusals, each with a message naming the problem.
"$GROK" new -o other.gguf --d-model 32 --layers 1 --vocab 300 2> /dev/null
set +e
"$GROK" run -m other.gguf --lora adapter.gguf -p "x" -n 1 > /dev/null 2> bad1.log; r1=$?
"$GROK" train --lora 4 --data train.txt -o x.gguf 2> bad2.log; r2=$?
"$GROK" train --init "$BASE" --lora 0 --data train.txt -o x.gguf 2> bad3.log; r3=$?
"$GROK" train --init "$BASE" --lora 4 --lora-targets attn,mlp --data train.txt -o x.gguf 2> bad4.log; r4=$?
"$GROK" merge "$BASE" adapter.gguf -o merged.gguf 2> bad5.log; r5=$?
"$GROK" merge "$BASE" "$BASE" -o y.gguf 2> bad6.log; r6=$?
"$GROK" run -m "$BASE" --lora missing.gguf -p "x" -n 1 > /dev/null 2> bad7.log; r7=$?
"$GROK" train --init "$BASE" --lora 500 --data train.txt -o x.gguf 2> bad8.log; r8=$?
"$GROK" train --init other.gguf --lora 4 --resume ck.gguf --data train.txt -o x.gguf 2> bad9.log; r9=$?
set -e
[ $r1 -ne 0 ] && grep -q "different base model" bad1.log || { echo "FAIL: mismatched base accepted"; cat bad1.log; exit 1; }
[ $r2 -eq 2 ] && grep -q -- "--init" bad2.log || { echo "FAIL: --lora without --init"; exit 1; }
[ $r3 -eq 2 ] && grep -q -- "--lora" bad3.log || { echo "FAIL: --lora 0 accepted"; exit 1; }
[ $r4 -eq 2 ] && grep -q -- "--lora-targets" bad4.log || { echo "FAIL: bad --lora-targets accepted"; exit 1; }
[ $r5 -eq 1 ] && grep -q -- "--force" bad5.log || { echo "FAIL: merge overwrote a file"; exit 1; }
[ $r6 -ne 0 ] && grep -q "not a LoRA adapter" bad6.log || { echo "FAIL: a model taken as an adapter"; exit 1; }
[ $r7 -ne 0 ] && grep -q "missing.gguf" bad7.log || { echo "FAIL: missing adapter"; exit 1; }
[ $r8 -ne 0 ] && grep -q "rank 500" bad8.log || { echo "FAIL: rank beyond the weights accepted"; cat bad8.log; exit 1; }
[ $r9 -ne 0 ] && grep -q "different base model" bad9.log || { echo "FAIL: checkpoint resumed on another base"; cat bad9.log; exit 1; }
echo "PASS"
