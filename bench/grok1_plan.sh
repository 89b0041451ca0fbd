#!/usr/bin/env bash
# bench/grok1_plan.sh - what every mix weighs for Grok-1 itself, from grok
# quantize's own rules: tests/ref/make_model.py --sparse writes the header of
# a GGUF with Grok-1's tensors (64 layers, d_model 6144, 48 query / 8 KV
# heads, 8 experts of 32768, vocab 131072, tied head; q8_0 matrices as grok
# convert writes them) with the data a hole of its full 335 GB (no disk is
# used), then prints
# `grok quantize --dry-run`'s total for each mix. Needs a file system with
# sparse files.
#
#   bash bench/grok1_plan.sh [DIR]     (default /tmp/grok1-plan)
# Environment: BUILD (build), MIXES (default all quantized mixes), IMATRIX
# (1, default: plan as with an imatrix, which the rules only ask the
# presence of: one from the bundled model stands in; 0: without).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=${1:-/tmp/grok1-plan}
G="$PWD/${BUILD:-build}/grok"
mkdir -p "$DIR"
F="$DIR/grok1-shape.gguf"
/usr/bin/python3 tests/ref/make_model.py -o "$F" --sparse --type q8_0 --d-model 6144 --layers 64 --heads 48 \
  --kv-heads 8 --head-dim 128 --experts 8 --experts-used 2 --ffn 32768 --vocab 131072 --ctx 8192
MIXES=${MIXES:-"IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M Q2_K_S Q2_K IQ3_XXS IQ3_XS IQ3_S Q3_K_S IQ3_M Q3_K_M Q3_K_L IQ4_XS IQ4_NL Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M Q6_K Q8_0"}
imx=()
if [ "${IMATRIX:-1}" = 1 ]; then
  imx=(--imatrix "$DIR/stand-in.imatrix.gguf")
  [ -f "$DIR/stand-in.imatrix.gguf" ] || "$G" imatrix -m models/grok-mini.gguf -f tests/fixtures/kjv-heldout.txt \
    --ctx 64 --chunks 1 -o "$DIR/stand-in.imatrix.gguf" >/dev/null 2>&1
fi
printf '%-8s %10s %8s  %s\n' mix GB bits/w types
for m in $MIXES; do
  plan=$("$G" quantize --dry-run "${imx[@]}" "$F" "$m" 2>"$DIR/err.txt") || { echo "$m: $(cat "$DIR/err.txt")"; continue; }
  echo "$plan" | awk -v m="$m" '{b += $5; if ($4 != "f32") c[$4]++} END {
    n = 316.49e9; s = ""; for (t in c) s = s t ":" c[t] " ";
    printf "%-8s %10.1f %8.2f  %s\n", m, b / 1e9, 8 * b / n, s }'
done
rm -f "$F"
