#!/usr/bin/env bash
# bench/quant_quality.sh - docs/quantization.md's quality table: one source
# model written as each mix by grok quantize and by llama-quantize (when
# present), with the same imatrix, then per file its size and grok
# perplexity's KL(source || file) and top-1 agreement over a text. Both
# tools' files are scored by the same grok perplexity, so only the
# quantizers differ.
#
#   bash bench/quant_quality.sh SOURCE.gguf IMATRIX[,IMATRIX...] TEXT [DIR]
#
# With several imatrices (from different calibration texts) each mix is
# made and scored once per imatrix and a "mean" row follows: on a small
# model one file's KL depends on which way a few thousand roundings fell
# (docs/quantization.md measured +-10-15 %), so a comparison of two
# encoders needs the mean over several such draws.
# Environment: BUILD (build), GROK (the grok binary, default BUILD/grok), THREADS (2), CTX (128), CHUNKS (0 = all),
# MIXES (default: every mix of llama-quantize that grok quantize makes),
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
MIXES=${MIXES:-"IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M Q2_K_S Q2_K Q3_K_S Q3_K_M Q3_K_L
IQ4_NL IQ4_XS Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K"}
LQ=${LLAMA_QUANTIZE:-/work/llama/build/bin/llama-quantize}
export GROK_KERNELS=${GROK_KERNELS:-exact}
G=${GROK:-$PWD/$BUILD/grok}
mkdir -p "$DIR"
IFS=, read -r -a imxs <<< "$IMX"
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
printf '%-10s %12s %10s %8s | %12s %10s %8s\n' mix grok_bytes grok_kl top1 ${right}_bytes ${right}_kl top1
for m in $MIXES; do
  sums="0 0 0 0" lfail=0
  for k in "${!imxs[@]}"; do
    imx=()
    [ "${imxs[$k]}" != none ] && imx=(--imatrix "${imxs[$k]}")
    g="$DIR/g_$m.$k.gguf" l="$DIR/l_$m.$k.gguf"
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
    label=$m
    [ "${#imxs[@]}" -gt 1 ] && label="$m.$k"
    printf '%-10s %12s %10s %8s | %12s %10s %8s%s\n' "$label" "$gb" "$gk" "$gt" "$lb" "$lk" "$lt" "$shared"
    sums=$(awk -v s="$sums" -v a="$gk" -v b="$gt" -v c="$lk" -v d="$lt" \
      'BEGIN { split(s, x, " "); printf "%.9g %.9g %.9g %.9g", x[1] + a, x[2] + b, x[3] + c, x[4] + d }')
    case $lk in [0-9]*) ;; *) lfail=1 ;; esac
    [ "${#imxs[@]}" -gt 1 ] && rm -f "$g" "$l" # one draw of many: not kept
  done
  if [ "${#imxs[@]}" -gt 1 ]; then
    awk -v s="$sums" -v n="${#imxs[@]}" -v m="$m" -v lf="$lfail" -v r="$right" 'BEGIN { split(s, x, " ");
      if (lf) printf "%-10s %12s %10.6g %8.6f | %12s %10s %8s\n", m ".mean", "", x[1] / n, x[2] / n, "", "-", "-";
      else printf "%-10s %12s %10.6g %8.6f | %12s %10.6g %8.6f  (grok/%s %.3f)\n", m ".mean", "", x[1] / n,
        x[2] / n, "", x[3] / n, x[4] / n, r, x[1] / x[3] }'
  fi
done
