#!/usr/bin/env bash
# plan_test.sh - `grok plan`'s cost model on Grok-1's shapes and on a model
# file: the pipeline split (--split layers) reads per token what one
# machine reads (same compute time as --ranks 1), sends one d_model vector
# per rank per token and spreads the layers; the tensor splits send two
# sums per layer; too many ranks for a split is a clear error.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
fails=0
ok() { echo "ok   $*"; }
bad() { fails=$((fails + 1)); echo "FAIL $*"; }
plan() { "$GROK" plan --grok1 --type q4_0 --mem-bw 50 --bandwidth 25 --latency 20 --ctx 4096 --pos 256 "$@"; }
compute_ms() { grep -o 'compute [0-9.]* ms' | awk '{print $2}'; }
toks() { grep -o '= [0-9.]* tok/s' | awk '{print $2}'; }

one=$(plan --ranks 1) && pipe=$(plan --ranks 4 --split layers) && ffn=$(plan --ranks 4 --split ffn) \
  || bad "grok plan failed"
[ "$(echo "$one" | compute_ms)" = "$(echo "$pipe" | compute_ms)" ] \
  && ok "pipeline over 4 ranks reads what one machine reads ($(echo "$pipe" | compute_ms) ms)" \
  || bad "pipeline compute $(echo "$pipe" | compute_ms) ms vs one machine $(echo "$one" | compute_ms) ms"
echo "$pipe" | grep -q "sent by each rank: 24.00 KiB (one vector of 6144 floats" \
  && ok "pipeline sends one vector of d_model floats per rank per token" || bad "pipeline traffic: $pipe"
[ "$(echo "$pipe" | grep -c 'layers \[[0-9]*,[0-9]*) kv heads \[0,8)')" = 4 ] \
  && echo "$pipe" | grep -q "rank 3: layers \[48,64)" \
  && ok "pipeline: 16 of Grok-1's 64 layers per rank, all heads" || bad "pipeline placement: $pipe"
echo "$ffn" | grep -q "sent by each rank: 72.00 KiB per layer" \
  && ok "ffn split: 2 sums per layer (72 KiB at 4 ranks)" || bad "ffn traffic: $ffn"
awk -v a="$(echo "$ffn" | toks)" -v b="$(echo "$pipe" | toks)" 'BEGIN{exit !(a > 2 * b)}' \
  && ok "for one sequence ffn ($(echo "$ffn" | toks) tok/s) beats the pipeline ($(echo "$pipe" | toks) tok/s)" \
  || bad "ffn $(echo "$ffn" | toks) vs pipeline $(echo "$pipe" | toks) tok/s"
"$GROK" new -o m.gguf --force --layers 2 --vocab 300 2>/dev/null || bad "grok new"
out=$("$GROK" plan m.gguf --ranks 3 --split layers 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "3 ranks but only 2 layers" && ok "more ranks than layers: clear error" \
  || bad "3 ranks, 2 layers: $out"
out=$("$GROK" plan m.gguf --ranks 2 --split rows 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "not ffn, experts or layers" && ok "a bad --split is refused" || bad "bad --split: $out"
# k-quants: Grok-1's narrowest slice (one KV group of attn_output, 768 columns) takes 256-blocks
kq=$("$GROK" plan --grok1 --type q4_K --ranks 4 2>&1)
[ $? -eq 0 ] && echo "$kq" | grep -q "weights q4_K (attention)" && ok "grok plan --grok1 --type q4_K" \
  || bad "plan q4_K: $kq"
[ $fails -eq 0 ]
