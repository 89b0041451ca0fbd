#!/usr/bin/env bash
# train_test.sh - `grok train` end to end on tiny models: the loss falls
# within seconds; a run stopped at a checkpoint and resumed writes the very
# same model file as an uninterrupted run (same seed, same thread count);
# the trained file loads in `grok run`; bad flags are refused with a
# message.
set -euo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
mkdir -p "$GROK_TMP"
cd "$GROK_TMP"
rm -f ./*.gguf ./*.log

# A small corpus: the held-out fixture's first 20 KB (public-domain KJV text),
# a SentencePiece vocabulary trained on it when spm_train exists, otherwise
# the fixture tokenizer of the tokenizer tests.
head -c 20000 "$GROK_SRC/tests/fixtures/kjv-heldout.txt" > corpus.txt
if command -v spm_train >/dev/null; then
  VOCAB=(--vocab-size 400)
else
  echo "SKIP: spm_train (Debian package sentencepiece) not installed"; exit 77
fi
SHAPE=(--d-model 32 --layers 2 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 --ffn 32
       --batch 4 --seq 32 --lr 1e-2 --warmup 5 --seed 3 --threads 2 --eval-every 20)

"$GROK" train --data corpus.txt "${VOCAB[@]}" "${SHAPE[@]}" --steps 60 --log full.csv \
  -o full.gguf 2> full.log
first=$(awk -F, 'NR==2 {print $2}' full.csv)
last=$(awk -F, 'END {print $2}' full.csv)
echo "loss: first step $first, last step $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1.0) }' || {
  echo "FAIL: the training loss did not fall by a nat ($first -> $last)"; cat full.log; exit 1; }
grep -q "held-out loss" full.log || { echo "FAIL: no held-out evaluation"; exit 1; }

# The written file's general.file_type is llama.cpp's number for the weight
# type (Q8_0 is 7), not grok's own type number (which llama.cpp calls Q5_0).
"$GROK" train --data corpus.txt "${VOCAB[@]}" "${SHAPE[@]}" --steps 2 --type q8_0 -o q8.gguf 2> q8.log ||
  { echo "FAIL: --type q8_0"; cat q8.log; exit 1; }
"$GROK" info q8.gguf --no-tensors | grep -q "file type: Q8_0 (general.file_type 7)" ||
  { echo "FAIL: the trained q8_0 file does not say file type Q8_0"; "$GROK" info q8.gguf --no-tensors; exit 1; }

# Stop at step 25 with a checkpoint, resume to 60: the same bytes.
"$GROK" train --data corpus.txt "${VOCAB[@]}" "${SHAPE[@]}" --steps 60 --stop-at 25 \
  --checkpoint ck.gguf -o part.gguf 2> part.log
"$GROK" train --data corpus.txt "${SHAPE[@]}" --steps 60 --resume ck.gguf -o resumed.gguf 2> resumed.log
cmp full.gguf resumed.gguf || { echo "FAIL: resumed run differs from the uninterrupted one"; exit 1; }
echo "resume: identical output ($(stat -c %s full.gguf) bytes)"
cmp -s full.gguf part.gguf && { echo "FAIL: the partial run already equals the full one"; exit 1; }

# The trained file is a model `grok run` loads, and the checkpoint is one too.
"$GROK" run -m full.gguf -p "And the" -n 8 --seed 1 > run.txt 2> run.log || {
  echo "FAIL: grok run cannot use the trained model"; cat run.log; exit 1; }
"$GROK" run -m ck.gguf -p "And the" -n 4 --seed 1 > /dev/null 2>&1 || {
  echo "FAIL: grok run cannot load the checkpoint"; exit 1; }

# --doc-sep: documents tokenized one by one (BOS ... EOS), in full training
# and over a LoRA base; an empty separator is refused.
"$GROK" train --data corpus.txt "${VOCAB[@]}" "${SHAPE[@]}" --steps 2 --doc-sep '\n' \
  -o docs.gguf 2> docs.log || { echo "FAIL: --doc-sep training"; cat docs.log; exit 1; }
"$GROK" train --data corpus.txt --init full.gguf --lora 2 --steps 2 --doc-sep '\n' \
  -o docs-lora.gguf 2> docs-lora.log || { echo "FAIL: --doc-sep with --lora"; cat docs-lora.log; exit 1; }

# Bad input is refused with a message naming it, never a crash.
set +e
"$GROK" train --data corpus.txt "${VOCAB[@]}" "${SHAPE[@]}" --steps 2 --doc-sep '' -o x.gguf 2> bad0.log; r0=$?
"$GROK" train --data corpus.txt -o x.gguf --vocab-size 400 --batch 0 2> bad1.log; r1=$?
"$GROK" train --data corpus.txt -o x.gguf --vocab-size 400 --train-batch 4097 2> bad1b.log; r1b=$?
"$GROK" train --data missing.txt --vocab-size 400 -o x.gguf 2> bad2.log; r2=$?
"$GROK" train --data corpus.txt --resume corpus.txt -o x.gguf 2> bad3.log; r3=$?
set -e
[ $r0 -ne 0 ] && grep -q -- "--doc-sep" bad0.log || { echo "FAIL: empty --doc-sep accepted"; exit 1; }
[ $r1 -eq 2 ] && grep -q -- "--batch" bad1.log || { echo "FAIL: --batch 0 accepted"; exit 1; }
[ $r1b -eq 2 ] && grep -q -- "flag --train-batch: '4097' is not an integer in \[1, 4096\]" bad1b.log ||
    { echo "FAIL: --train-batch 4097: $(cat bad1b.log)"; exit 1; }
[ $r2 -ne 0 ] && grep -q "missing.txt" bad2.log || { echo "FAIL: missing data file"; exit 1; }
[ $r3 -ne 0 ] && grep -q "corpus.txt" bad3.log || { echo "FAIL: text taken as a checkpoint"; exit 1; }

echo "PASS"
