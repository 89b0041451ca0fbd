#!/usr/bin/env bash
# bench/kquants.sh - docs/quantization.md's figures for the k-quants, in one run so
# that the ratios between types are taken under the same conditions.
#
# Quality: a random d_model 256, 4-layer, 8-expert f32 model (512-token
# placeholder vocabulary) re-encoded as each type with grok quantize, then
# grok perplexity --kl-base f32 --ctx 256 over README.md + docs/*.md + GROK1.md (the
# docs' quality tables were was made the same way).
# Speed: the d_model 1024 model of docs/kernels.md's batch table (grok new, q8_0)
# re-encoded as q4_0, q4_K, q5_K, q6_K; grok bench -p P -n N for every
# type, interleaved, R rounds, so a noisy stretch hits every type alike.
#
#   bash bench/kquants.sh [DIR]        (models are made there once: ~2.2 GB)
# Environment: BUILD (build dir, default build), P, N, R (64, 32, 3),
# THREADS (2), TEXT (the text file; default README.md + docs/*.md + ../shared/GROK1.md),
# ONLY (quality or speed: run that part alone).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=${1:-/tmp/grok-kquants}
BUILD=${BUILD:-build}
P=${P:-64} N=${N:-32} R=${R:-3} THREADS=${THREADS:-2}
mkdir -p "$DIR"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
G="$BUILD/grok"
TYPES="q8_0 q6_K q5_K q4_K q4_0"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"

# ---- quality ----
if [ "${ONLY:-}" != speed ]; then
. bench/text.sh && bench_text "$DIR"
SMALL="$DIR/small_f32.gguf"
[ -f "$SMALL" ] || "$G" new -o "$SMALL" --d-model 256 --layers 4 --heads 8 --kv-heads 2 --experts 8 \
  --experts-used 2 --ffn 512 --vocab 512 --seed 1 2>&1 | tail -1
for t in f16 bf16 $TYPES; do
  [ -f "$DIR/small_$t.gguf" ] || "$G" quantize "$SMALL" "$DIR/small_$t.gguf" "$t" --pure --threads "$THREADS" 2>&1 | tail -1
  printf 'quality %-6s ' "$t"
  "$G" perplexity -m "$DIR/small_$t.gguf" -f "$TEXT" --ctx 256 --kl-base "$SMALL" --threads "$THREADS" --json 2>/dev/null
done
fi
[ "${ONLY:-}" = quality ] && exit 0

# ---- speed ----
MED="$DIR/medium_q8_0.gguf"
[ -f "$MED" ] || "$G" new -o "$MED" --d-model 1024 --layers 8 --heads 16 --kv-heads 4 --experts 8 --ffn 2816 \
  --type q8_0 --vocab 32000 --seed 1 2>&1 | tail -1
for t in $TYPES; do
  [ "$t" = q8_0 ] || [ -f "$DIR/medium_$t.gguf" ] || "$G" quantize "$MED" "$DIR/medium_$t.gguf" "$t" --pure 2>&1 | tail -1
done
for r in $(seq 1 "$R"); do
  for t in $TYPES; do
    printf 'speed round %d %-6s ' "$r" "$t"
    "$G" bench -m "$DIR/medium_$t.gguf" -p "$P" -n "$N" --threads "$THREADS" --no-stream --json 2>/dev/null \
      || echo "{\"failed\": $?}"
  done
done
