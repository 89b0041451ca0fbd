#!/usr/bin/env bash
# nonfinite_test.sh - weights holding NaN or Inf (written by
# tests/corrupt_gguf.py, which finds the tensor with the independent NumPy
# reader): `grok info --check` names the tensor, the element and the byte
# offset of the bad block (the offset the NumPy reader computes) and exits
# 1, for a NaN q8_0 scale, an Inf q4_K super-block scale, a -Inf q6_K scale,
# a NaN bf16 weight and an Inf f32 norm; a clean file passes.
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
PY=/usr/bin/python3
mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
rm -f ./*.gguf ./*.log
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
corrupt() { "$PY" "$GROK_SRC/tests/corrupt_gguf.py" "$@"; }

shape=(--layers 2 --heads 2 --kv-heads 1 --experts 2 --experts-used 1 --vocab 300)
"$GROK" new -o q8.gguf "${shape[@]}" --d-model 64 --ffn 64 --type q8_0 2>/dev/null || fail "grok new q8_0"
"$GROK" new -o bf.gguf "${shape[@]}" --d-model 64 --ffn 64 --type bf16 2>/dev/null || fail "grok new bf16"
"$GROK" new -o q4k.gguf "${shape[@]}" --d-model 256 --ffn 256 --type q4_K 2>/dev/null || fail "grok new q4_K"
"$GROK" new -o q6k.gguf "${shape[@]}" --d-model 256 --ffn 256 --type q6_K 2>/dev/null || fail "grok new q6_K"

"$GROK" info --check q8.gguf > clean.log 2>&1 || fail "a clean file fails the check: $(grep check clean.log)"
grep -q "check: .* all finite" clean.log || fail "no summary for a clean file"
ok "$(grep 'check:' clean.log)"

# check FILE TENSOR BLOCK VALUE ELEMENT: corrupts, expects the report
check() {
  local in=$1 t=$2 b=$3 v=$4 el=$5 out=bad-$2-$4.gguf off
  off=$(corrupt "$in" "$out" "$t" "$b" "$v") || fail "corrupt $in $t"
  "$GROK" info --check --threads 2 "$out" > "$out.log" 2>&1 && fail "$t $v: the check passed"
  grep -q "check: $out: tensor '$t' .* the first is element $el .* block at byte $off\$" "$out.log" ||
    fail "$t $v: the report does not name element $el and byte $off: $(grep "check:" "$out.log")"
  ok "$(grep "tensor '$t'" "$out.log")"
}
check q8.gguf blk.1.ffn_up_exps.weight 5 nan 160
check q4k.gguf blk.0.attn_q.weight 3 inf 768
check q6k.gguf blk.1.ffn_down_exps.weight 2 -inf 512
check bf.gguf blk.0.attn_k.weight 77 nan 77
check q8.gguf output_norm.weight 9 inf 9
