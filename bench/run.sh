#!/usr/bin/env bash
# bench/run.sh - the measurements of docs/kernels.md's "Speed" section, in one
# run so that the ratios between them are taken under the same conditions:
# a medium, bandwidth-bound model (grok new: d_model 2048, 8 layers, 16/4
# heads, 8 experts of FFN 5632, q8_0; and its q4_0 re-encoding), benched
# with 1 and 2 threads, then the kernel variants side by side (8-bit
# activations with AVX-512 VNNI / AVX2 / scalar dots, f32 activations,
# the scalar reference). Prints one JSON line per run (grok bench --json)
# prefixed by a label.
#
#   bash bench/run.sh [MODEL_DIR]      (models are made there once: ~3.4 GB)
# Environment: BUILD (build dir, default build), P and N (prompt and
# generated tokens, 512 and 64), SHAPE (grok new flags, for a smaller try).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=${1:-/tmp/grok-bench}
BUILD=${BUILD:-build}
P=${P:-512}
N=${N:-64}
SHAPE=${SHAPE:---d-model 2048 --layers 8 --heads 16 --kv-heads 4 --experts 8 --ffn 5632 --vocab 32000}
mkdir -p "$DIR"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
G="$BUILD/grok"
Q8="$DIR/medium_q8_0.gguf" Q4="$DIR/medium_q4_0.gguf"
[ -f "$Q8" ] || "$G" new -o "$Q8" $SHAPE --type q8_0 --seed 1 2>&1 | tail -1
[ -f "$Q4" ] || "$G" quantize "$Q8" "$Q4" q4_0 --pure 2>&1 | tail -1
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
run() { # LABEL ARGS...
  local label=$1
  shift
  printf '%-28s ' "$label"
  "$G" bench "$@" --json 2>/dev/null || echo "{\"failed\": $?}"
}
for t in 2 1; do
  run "q8_0 fast t$t" -m "$Q8" -p "$P" -n "$N" --threads $t
  run "q4_0 fast t$t" -m "$Q4" -p "$P" -n "$N" --threads $t
done
# kernel variants, 2 threads, shorter runs (the scalar ones are slow)
run "q8_0 fast avx512vnni t2" -m "$Q8" -p 64 -n 32 --threads 2
GROK_ISA=avx2 run "q8_0 fast avx2 t2" -m "$Q8" -p 64 -n 32 --threads 2
GROK_ISA=scalar run "q8_0 fast scalar t2" -m "$Q8" -p 16 -n 8 --threads 2
run "q8_0 exact t2" -m "$Q8" -p 64 -n 32 --threads 2 --kernels exact
run "q8_0 reference t2" -m "$Q8" -p 16 -n 8 --threads 2 --kernels reference
