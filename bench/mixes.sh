#!/usr/bin/env bash
# bench/mixes.sh - docs/quantization.md's figures for llama.cpp's mixes in grok
# quantize: a medium random f32 model with Grok-1's expert count (so the
# 8-expert rules apply) and its tied head, `grok new --d-model 2048
# --layers 4 --heads 16 --kv-heads 4 --experts 8 --ffn 5632 --vocab 512`,
# written as each mix, then per mix the file size and `grok perplexity
# --kl-base f32 --ctx 256` over README.md + docs/*.md + GROK1.md (as bench/kquants.sh
# does for the pure types), and `grok bench -p 16 -n 8 --check 2` on the
# mixed files, whose packed kernels must agree with the reference.
#
#   bash bench/mixes.sh [DIR]     (DIR default /tmp/grok-mixes: ~4.7 GB of
#                                  f32 model + ~0.7 GB per mix, deleted at the
#                                  end unless KEEP=1)
# Environment: BUILD (build dir, default build), THREADS (2), CTX (256),
# CHUNKS (chunks of text, 0 = all; default 24), TEXT (the text file),
# MIXES (default "Q4_K_S Q4_K_M Q4_K_M:pure Q5_K_M Q6_K Q8_0"; NAME:pure adds
# --pure), GROK_KERNELS (exact: f32 activations, so only the weights' error
# is measured; default fast, as grok run computes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=${1:-/tmp/grok-mixes}
BUILD=${BUILD:-build}
THREADS=${THREADS:-2} CTX=${CTX:-256} CHUNKS=${CHUNKS:-24}
MIXES=${MIXES:-"Q4_K_S Q4_K_M Q4_K_M:pure Q5_K_M Q6_K Q8_0"}
mkdir -p "$DIR"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
G="$BUILD/grok"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
. bench/text.sh && bench_text "$DIR"
F32="$DIR/f32.gguf"
[ -f "$F32" ] || "$G" new -o "$F32" --d-model 2048 --layers 4 --heads 16 --kv-heads 4 --experts 8 \
  --experts-used 2 --ffn 5632 --vocab 512 --seed 1 2>&1 | tail -1
echo "f32: $(stat -c %s "$F32") bytes"
for m in $MIXES; do
  name=${m%:pure} flags=()
  [ "$name" != "$m" ] && flags=(--pure)
  out="$DIR/$name${flags[*]:+-pure}.gguf"
  [ -f "$out" ] || "$G" quantize "$F32" "$out" "$name" "${flags[@]}" --threads "$THREADS" 2>&1 | tail -1
  printf 'quality %-12s %s kernels, %d bytes ' "$m" "${GROK_KERNELS:-fast}" "$(stat -c %s "$out")"
  "$G" perplexity -m "$out" -f "$TEXT" --ctx "$CTX" --chunks "$CHUNKS" --kl-base "$F32" \
    --threads "$THREADS" --json 2>/dev/null
  "$G" bench -m "$out" -p 16 -n 8 --check 2 --threads "$THREADS" --no-stream >/dev/null 2>&1 \
    && echo "bench --check 2 $m: ok" || echo "bench --check 2 $m: FAILED ($?)"
done
[ "${KEEP:-0}" = 1 ] || rm -f "$F32" "$DIR"/*.gguf
