#!/usr/bin/env bash
# bench/quant_quality.sh - docs/quantization.md's quality table: one source
# model written as each mix by grok quantize and by llama-quantize (when
# present), with the same imatrix, then per file its size and grok
# perplexity's KL(source || file) and top-1 agreement over a text. Both
# tools' files are scored by the same grok perplexity, so only the
# quantizers differ.
#
#   bash bench/quant_quality.sh SOURCE.gguf IMATRIX TEXT [DIR]
# Environment: BUILD (build), GROK (the grok binary, default BUILD/grok), THREADS (2), CTX (128), CHUNKS (0 = all),
# MIXES (default: the mixes with grok encoders for every type they use),
# LLAMA_QUANTIZE (default /work/llama/build/bin/llama-quantize; "none" to
# skip), GROK_KERNELS (exact by default here: f32 activations, so only the
# weights' rounding is measured). IMATRIX "none" quantizes without one.
# VS=expert-aware: the right-hand file is grok quantize --expert-aware's
# instead of llama-quantize's (the same imatrix; docs/quantization.md's
# --expert-aware table), with the count of stacked expert tensors whose
# experts got more than one type.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$1 IMX=$2 TEXT=$3 DIR=${4:-/tmp/grok-quant-quality}
BUILD=${BUILD:-build} THREADS=${THREADS:-2} CTX=${CTX:-128} CHUNKS=${CHUNKS:-0}
MIXES=${MIXES:-"Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L IQ4_NL IQ4_XS Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_S Q4_K_M Q5_K_M Q6_K"}
LQ=${LLAMA_QUANTIZE:-/work/llama/build/bin/llama-quantize}
export GROK_KERNELS=${GROK_KERNELS:-exact}
G=${GROK:-$PWD/$BUILD/grok}
mkdir -p "$DIR"
imx=()
[ "$IMX" != none ] && imx=(--imatrix "$IMX")
chunks=()
[ "$CHUNKS" != 0 ] && chunks=(--chunks "$CHUNKS")
score() { # FILE -> "bytes kl top1"
  local j
  j=$("$G" perplexity -m "$1" -f "$TEXT" --ctx "$CTX" "${chunks[@]}" --kl-base "$SRC" --threads "$THREADS" --json 2>/dev/null)
  printf '%s %s %s' "$(stat -c %s "$1")" "$(echo "$j" | sed 's/.*"kl_mean": \([^,]*\),.*/\1/')" \
    "$(echo "$j" | sed 's/.*"top1_agree": \([^,]*\),.*/\1/')"
}
echo "source $SRC, imatrix $IMX, text $TEXT, ctx $CTX, kernels $GROK_KERNELS"
VS=${VS:-llama}
right=llama
[ "$VS" = expert-aware ] && right=xa
printf '%-8s %12s %10s %8s | %12s %10s %8s\n' mix grok_bytes grok_kl top1 ${right}_bytes ${right}_kl top1
for m in $MIXES; do
  g="$DIR/g_$m.gguf" l="$DIR/l_$m.gguf"
  "$G" quantize "$SRC" "$g" "$m" "${imx[@]}" --threads "$THREADS" --force >/dev/null 2>"$DIR/g_$m.err" \
    || { echo "$m: grok quantize failed: $(tail -1 "$DIR/g_$m.err")"; continue; }
  gs=$(score "$g")
  ls_="- - -" shared=""
  if [ "$VS" = expert-aware ]; then
    "$G" quantize "$SRC" "$l" "$m" "${imx[@]}" --expert-aware --threads "$THREADS" --force >/dev/null \
      2>"$DIR/l_$m.err" && ls_=$(score "$l") || ls_="failed - -"
    # stacked expert tensors whose experts got more than one type, of those considered
    shared=" $(grep "experts (share" "$DIR/l_$m.err" | awk '{n=0; delete s; for (i=1;i<=NF;i++) if ($i ~ /%$/) {
      t=$(i+1); sub(/,$/, "", t); s[t]=1 }; for (k in s) n++; if (n>1) c++; a++} END {printf "%d/%d", c, a}')"
  elif [ "$LQ" != none ] && [ -x "$LQ" ]; then
    "$LQ" "${imx[@]}" "$SRC" "$l" "$m" "$THREADS" >"$DIR/l_$m.log" 2>&1 && ls_=$(score "$l") || ls_="failed - -"
  fi
  read -r gb gk gt <<< "$gs"; read -r lb lk lt <<< "$ls_"
  printf '%-8s %12s %10s %8s | %12s %10s %8s%s\n' "$m" "$gb" "$gk" "$gt" "$lb" "$lk" "$lt" "$shared"
done
