#!/usr/bin/env bash
# lora_rss_test.sh - memory of LoRA training over a frozen quantized base:
# on a q8_0 model of 51.8 M parameters (55 MB file, 207 MB in f32), rank-8
# adapters on every attention projection and every expert are trained for
# two steps; the peak RSS (getrusage, as grok train reports it) must stay
# within the base's mapped file plus the adapters' state (weights,
# gradient, Adam moments), the trainer's activations and 48 MB of program
# and data, and below half the base's f32 size: no f32 copy of the base,
# no full-weight gradient. The full f32 trainer on the same model, for
# contrast, holds more than 4 x the f32 size (weights, gradient, moments).
# Skipped under ASan (its allocator and shadow memory change RSS).
set -euo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
[ "${GROK_ASAN:-0}" = 1 ] && { echo "SKIP: RSS is not measured under ASan"; exit 77; }
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP"
"$GROK" new -o base.gguf --d-model 512 --layers 2 --heads 8 --kv-heads 2 --experts 8 --ffn 2048 --vocab 300 \
  --type q8_0 --seed 2 2> new.log
head -c 20000 "$GROK_SRC/tests/fixtures/kjv-heldout.txt" > text.txt
"$GROK" train --init base.gguf --lora 8 --lora-targets attn,experts --data text.txt --holdout 0 --steps 2 \
  --batch 2 --seq 32 --threads 2 -o adapter.gguf 2> train.log || { cat train.log; exit 1; }
line=$(grep "peak RSS" train.log)
echo "$line"
read -r rss file state trainer <<< "$(echo "$line" | sed -E 's/.*peak RSS ([0-9.]+) MB \(base file ([0-9.]+) MB.*AdamW ([0-9.]+) MB; trainer ([0-9.]+) MB.*/\1 \2 \3 \4/')"
f32=$(awk 'BEGIN { print 51.81 * 4 }')
echo "bound: base $file + adapter state $state + trainer $trainer + 48 = $(awk -v a="$file" -v b="$state" -v c="$trainer" 'BEGIN { print a + b + c + 48 }') MB; f32 base $f32 MB"
awk -v r="$rss" -v a="$file" -v b="$state" -v c="$trainer" 'BEGIN { exit !(r <= a + b + c + 48) }' \
  || { echo "FAIL: peak RSS $rss MB above the bound"; exit 1; }
awk -v r="$rss" -v f="$f32" 'BEGIN { exit !(r < f / 2) }' || { echo "FAIL: peak RSS $rss MB not below half the f32 size"; exit 1; }
# the full trainer, for contrast (one step)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f "%M" -o full.rss "$GROK" train --init base.gguf --data text.txt --holdout 0 --steps 1 --batch 2 \
    --seq 32 --threads 2 -o full.gguf 2> full.log || { cat full.log; exit 1; }
  full=$(awk '{ print $1 / 1024 * 1.048576 }' full.rss)
  echo "full f32 fine-tuning of the same model: peak RSS $full MB"
  awk -v r="$full" -v f="$f32" 'BEGIN { exit !(r > 4 * f) }' || { echo "FAIL: the contrast did not hold ($full MB)"; exit 1; }
fi
echo "PASS"
