#!/usr/bin/env bash
# demo.sh - the project's main job on a fresh machine: install, build, make
# a small Grok-architecture model with `grok new` (random weights: the text
# it writes is noise; the point is the whole path from file to tokens), show
# what the file holds, and generate from it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
mkdir -p build/demo
MODEL=build/demo/random-grok.gguf
TOKENIZER=../shared/tokenizers/grok-1.model
if [ -f "$TOKENIZER" ]; then
  VOCAB=(--tokenizer "$TOKENIZER")   # Grok-1's real 131072-piece vocabulary
else
  echo "demo: $TOKENIZER not found; using a placeholder vocabulary"
  VOCAB=(--vocab 512)
fi
./build/grok new -o "$MODEL" --force --d-model 128 --layers 4 --heads 8 --kv-heads 2 \
  --experts 8 --experts-used 2 --ffn 256 --type q8_0 --seed 42 "${VOCAB[@]}"
./build/grok info "$MODEL" --no-tensors | tail -n 6
echo "--- grok run (random weights, so the completion is noise):"
./build/grok run -m "$MODEL" -p "The answer to life the universe and everything is of course" \
  -n 32 --seed 1
