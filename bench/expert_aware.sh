#!/usr/bin/env bash
# bench/expert_aware.sh - docs/quantization.md's --expert-aware table: each
# mix written by grok quantize with the same imatrix twice, uniform and
# --expert-aware, then per file its size and grok perplexity's
# KL(source || file) and top-1 agreement over a text the imatrix did not see.
#
#   bash bench/expert_aware.sh SOURCE.gguf IMATRIX TEXT [DIR]
# Environment: BUILD (build), GROK (default BUILD/grok), THREADS (2), CTX (128),
# CHUNKS (0 = all), MIXES (Q2_K Q3_K_M IQ3_XS IQ2_XXS IQ4_XS), GROK_KERNELS
# (exact by default here: f32 activations, so only the weights' rounding counts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$1 IMX=$2 TEXT=$3 DIR=${4:-/tmp/grok-expert-aware}
BUILD=${BUILD:-build} THREADS=${THREADS:-2} CTX=${CTX:-128} CHUNKS=${CHUNKS:-0}
MIXES=${MIXES:-"Q2_K Q3_K_M IQ3_XS IQ2_XXS IQ4_XS"}
export GROK_KERNELS=${GROK_KERNELS:-exact}
G=${GROK:-$PWD/$BUILD/grok}
mkdir -p "$DIR"
chunks=()
[ "$CHUNKS" != 0 ] && chunks=(--chunks "$CHUNKS")
score() { # FILE -> "bytes kl top1"
  local j
  j=$("$G" perplexity -m "$1" -f "$TEXT" --ctx "$CTX" "${chunks[@]}" --kl-base "$SRC" --threads "$THREADS" --json 2>/dev/null)
  printf '%s %s %s' "$(stat -c %s "$1")" "$(echo "$j" | sed 's/.*"kl_mean": \([^,]*\),.*/\1/')" \
    "$(echo "$j" | sed 's/.*"top1_agree": \([^,]*\),.*/\1/')"
}
echo "source $SRC, imatrix $IMX, text $TEXT, ctx $CTX, kernels $GROK_KERNELS"
printf '%-8s %10s %10s %8s | %10s %10s %8s %7s %s\n' mix uni_bytes uni_kl top1 xa_bytes xa_kl top1 size experts
for m in $MIXES; do
  u="$DIR/u_$m.gguf" x="$DIR/x_$m.gguf"
  "$G" quantize "$SRC" "$u" "$m" --imatrix "$IMX" --threads "$THREADS" --force >/dev/null 2>"$DIR/u_$m.err" \
    || { echo "$m: grok quantize failed: $(tail -1 "$DIR/u_$m.err")"; continue; }
  "$G" quantize "$SRC" "$x" "$m" --imatrix "$IMX" --expert-aware --threads "$THREADS" --force >/dev/null \
    2>"$DIR/x_$m.err" || { echo "$m: grok quantize --expert-aware failed: $(tail -1 "$DIR/x_$m.err")"; continue; }
  read -r ub uk ut <<< "$(score "$u")"; read -r xb xk xt <<< "$(score "$x")"
  # how many stacked tensors got experts of more than one type
  ns=$(grep -c "experts (share" "$DIR/x_$m.err" || true)
  nd=$(grep "experts (share" "$DIR/x_$m.err" | awk '{n=0; delete s; for(i=1;i<=NF;i++) if ($i ~ /%$/) { t=$(i+1); sub(/,$/, "", t); s[t]=1 }; for (k in s) n++; if (n>1) c++} END {print c+0}')
  printf '%-8s %10s %10s %8s | %10s %10s %8s %+6.2f%% %s/%s\n' "$m" "$ub" "$uk" "$ut" "$xb" "$xk" "$xt" \
    "$(echo "100*($xb-$ub)/$ub" | bc -l)" "$nd" "$ns"
done
