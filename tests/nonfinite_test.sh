#!/usr/bin/env bash
# nonfinite_test.sh - weights holding NaN or Inf (written by
# tests/corrupt_gguf.py, which finds the tensor with the independent NumPy
# reader): `grok info --check` names the tensor, the element and the byte
# offset of the bad block (the offset the NumPy reader computes) and exits
# 1, for a NaN q8_0 scale, an Inf q4_K super-block scale, a -Inf q6_K scale,
# a NaN bf16 weight, an Inf f32 norm, a -Inf q2_K scale, a NaN iq2_xxs scale
# and an MXFP4 exponent of 0xFF; a clean file passes. At run time
# grok logits, run and perplexity end with the error naming the layer and
# the tensor (exit 1), grok quantize refuses the file, and grok serve
# answers 500 with it while requests batched with the bad one succeed.
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
# types the C writer does not write (main's community types and i-quants):
# bytes from the NumPy encoders of tests/ref/make_model.py
"$PY" "$GROK_SRC/tests/ref/make_model.py" -o q2k.gguf "${shape[@]}" --d-model 256 --ffn 256 --type q2_K --seed 3 \
  > /dev/null || fail "make_model q2_K"
"$PY" "$GROK_SRC/tests/ref/make_model.py" -o iq2.gguf "${shape[@]}" --d-model 256 --ffn 256 --type iq2_xxs --seed 3 \
  > /dev/null || fail "make_model iq2_xxs"
"$PY" "$GROK_SRC/tests/ref/make_model.py" -o mx.gguf "${shape[@]}" --d-model 64 --ffn 64 --type mxfp4 --seed 3 \
  > /dev/null || fail "make_model mxfp4"

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
check q2k.gguf blk.1.ffn_gate_exps.weight 4 -inf 1024
check iq2.gguf blk.0.attn_v.weight 1 nan 256
check mx.gguf blk.0.attn_output.weight 7 nan 224

# ---- at run time: every command that decodes ends with the message, exit 1
B=bad-blk.0.attn_q.weight-inf.gguf
printf 'In the beginning was the word, and the word was with the model. %.0s' $(seq 1 20) > text.txt
want="NaN or Inf at layer 0, in attention: the output of blk.0.attn_q.weight"
"$GROK" logits -m "$B" --ids 1,2,3 -o logits.f32 2> logits.log && fail "grok logits exited 0"
grep -q "$want" logits.log || fail "grok logits: $(cat logits.log)"
[ -e logits.f32 ] && fail "grok logits left an output file"
"$GROK" run -m "$B" -p "hello" -n 4 > run.out 2> run.log && fail "grok run exited 0"
grep -q "$want" run.log || fail "grok run: $(cat run.log)"
"$GROK" perplexity -m "$B" -f text.txt --ctx 32 > ppl.out 2> ppl.log && fail "grok perplexity exited 0"
grep -q "$want" ppl.log || fail "grok perplexity: $(cat ppl.log)"
"$GROK" perplexity -m q4k.gguf -f text.txt --ctx 32 --kl-base "$B" > kl.out 2> kl.log && fail "perplexity --kl-base exited 0"
grep -q "$want" kl.log || fail "perplexity --kl-base: $(cat kl.log)"
ok "logits, run, perplexity (and its base model) exit 1: $(cat logits.log)"
"$GROK" quantize bad-blk.0.attn_k.weight-nan.gguf requant.gguf q8_0 --pure 2> quant.log && fail "grok quantize exited 0"
grep -q "tensor blk.0.attn_k.weight: row 1 holds NaN or Inf" quant.log || fail "grok quantize: $(cat quant.log)"
ls requant.gguf* > /dev/null 2>&1 && fail "grok quantize left a file"
ok "$(cat quant.log)"

# ---- the server: a 500 naming the layer; other requests, and the server, go on
command -v curl >/dev/null || { echo "SKIP (server part): curl is not installed"; exit 0; }
. "$GROK_SRC/tests/serve_lib.sh"
# one bad row of an untied embedding: only prompts holding token 77 meet it
"$GROK" new -o emb.gguf "${shape[@]}" --d-model 1024 --ffn 1024 --type q8_0 --untied --ctx 256 2>/dev/null || fail "grok new"
corrupt emb.gguf tiny.gguf token_embd.weight $((77 * 1024 / 32)) nan > /dev/null || fail "corrupt"
start nf --threads 1 --parallel 2 --ctx 256 --chunk 1
U="http://127.0.0.1:$PORT_nf"
code=$(curl -s -o bad.json -w '%{http_code}' "$U/v1/completions" -d '{"prompt":[5,77,9],"max_tokens":4}')
[ "$code" = 500 ] || fail "a prompt with the bad token: $code $(cat bad.json)"
"$PY" -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["type"]=="server_error" and "NaN or Inf in the embedding: row 77 of token_embd.weight" in e["message"], e' \
  bad.json || fail "the 500 does not name it: $(cat bad.json)"
ok "a 500 names it: $(cat bad.json)"
s=$(curl -s -N "$U/v1/completions" -d '{"prompt":[77],"max_tokens":1,"stream":true}')
echo "$s" | grep -q '"error":{"message":"decode: NaN or Inf' && echo "$s" | grep -q 'data: \[DONE\]' ||
  fail "the stream does not end with the error: $s"
# batched with it (a long prompt read one token a step keeps the good
# request in the steps the bad one joins), the good request gets its answer
good=$(seq -s, 100 250)
for k in 1 2 3; do
  curl -s -o "g$k.json" -w '%{http_code}' "$U/v1/completions" -d "{\"prompt\":[$good],\"max_tokens\":40,\"temperature\":0}" > "g$k.code" &
  c1=$!
  sleep 0.1
  curl -s -o "b$k.json" -w '%{http_code}' "$U/v1/completions" -d '{"prompt":[77],"max_tokens":4}' > "b$k.code"
  wait $c1
  [ "$(cat "g$k.code")" = 200 ] && [ "$(cat "b$k.code")" = 500 ] ||
    fail "batched: good prompt $(cat "g$k.code") $(cat "g$k.json"), bad prompt $(cat "b$k.code")"
done
grep -q "a step of 2 sequences went non-finite: each runs alone" nf.log || fail "the two requests were never batched"
cmp -s <("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["choices"][0]["text"])' g1.json) \
  <("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["choices"][0]["text"])' g3.json) ||
  fail "the good request's text changed from round to round"
[ "$(curl -s "$U/health")" = '{"status":"ok"}' ] || fail "/health after the failures"
ok "batched with a failing request, the good one gets its 200 and the same text (3 rounds); the server stays up"
