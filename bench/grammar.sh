#!/usr/bin/env bash
# bench/grammar.sh - the token mask's cost against a decode step
# (docs/structured-output.md): the bench model of docs/kernels.md (grok new:
# d_model 2048, 8 layers, 16/4 heads, 8 experts of FFN 5632) with Grok-1's
# 131072-token vocabulary, in q8_0 and its q4_0 re-encoding, generating
# N tokens under each grammar with `grok bench --grammar/--json-schema`
# (the grammar's caches cold, then warm). Prints one line per run: mask,
# taking the token, masked and plain sampling per token, and the overhead
# as a share of the decode step.
#
#   bash bench/grammar.sh [MODEL_DIR]      (models are made there once: ~4.2 GB)
# Environment: BUILD (build dir, default build), N (generated tokens, 128),
# T (threads, 2), TOKENIZER (default ../shared/tokenizers/grok-1.model).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=${1:-/tmp/grok-bench}
BUILD=${BUILD:-build}
N=${N:-128}
T=${T:-2}
TOKENIZER=${TOKENIZER:-../shared/tokenizers/grok-1.model}
[ -f "$TOKENIZER" ] || { echo "no $TOKENIZER (the Grok-1 tokenizer gives the 131072-token vocabulary)"; exit 1; }
mkdir -p "$DIR"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
G="$BUILD/grok"
Q8="$DIR/grammar_q8_0.gguf" Q4="$DIR/grammar_q4_0.gguf"
[ -f "$Q8" ] || "$G" new -o "$Q8" --d-model 2048 --layers 8 --heads 16 --kv-heads 4 --experts 8 --ffn 5632 \
  --tokenizer "$TOKENIZER" --type q8_0 --seed 1 2>&1 | tail -1
[ -f "$Q4" ] || "$G" quantize "$Q8" "$Q4" q4_0 --pure 2>&1 | tail -1
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $T threads, $N tokens"
for m in "$Q8" "$Q4"; do
  for g in "--grammar tests/fixtures/grammar/json_like.gbnf" \
           "--json-schema tests/fixtures/structured/nested_schema.json" \
           "--grammar tests/fixtures/grammar/unicode.gbnf"; do
    echo "== $(basename "$m") $g"
    # shellcheck disable=SC2086
    "$G" bench -m "$m" -p 32 -n "$N" --threads "$T" --check 0 --no-stream $g 2>/dev/null | grep -E '^(generation|grammar)'
  done
done
