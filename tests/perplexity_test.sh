#!/usr/bin/env bash
# perplexity_test.sh - grok perplexity against an independent computation:
# NumPy takes the logits `grok logits` writes for each chunk (first token
# replaced by BOS) and applies llama.cpp's definition itself (second half
# of each chunk scored, ppl = exp(mean NLL)); both run with f32
# activations (GROK_KERNELS=exact) so they must agree to 1e-6 relative.
# --kl-base with the model itself gives KL 0 and full top-1 agreement;
# a q8_0 copy gives a small positive KL, matched by NumPy's KL over the
# same logits; bad input is refused.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }
. "${GROK_SRC:?}/tests/lib.sh"
export GROK_KERNELS=exact

"$GROK" new -o m.gguf --d-model 64 --layers 2 --heads 4 --kv-heads 2 --experts 4 --ffn 64 --vocab 300 --seed 21 2>/dev/null || { bad "grok new"; exit 1; }
"$GROK" quantize m.gguf q8.gguf q8_0 2>/dev/null || bad "quantize"
for i in 1 2 3 4 5 6; do echo "the quick brown fox jumps over the lazy dog, round $i; pack my box with five dozen liquor jugs."; done > text.txt
CTX=24
"$GROK" perplexity -m m.gguf -f text.txt --ctx $CTX --json > ppl.json 2>err.txt || bad "perplexity: $(cat err.txt)"
"$GROK" perplexity -m q8.gguf -f text.txt --ctx $CTX --kl-base m.gguf --json > kl.json 2>err.txt || bad "perplexity --kl-base: $(cat err.txt)"
"$GROK" perplexity -m m.gguf -f text.txt --ctx $CTX --kl-base m.gguf --json > self.json 2>err.txt || bad "perplexity self: $(cat err.txt)"
"$GROK" tokenize -m m.gguf --ids -f text.txt > ids.txt || bad "tokenize"
BOS=1

# logits of every chunk, by grok logits (no BOS added by it: we put it in where the tokenizer adds one)
"$PY" - $CTX $BOS <<'PYEOF' > chunks.txt
import sys
ctx, bos = int(sys.argv[1]), int(sys.argv[2])
ids = [int(x) for x in open("ids.txt").read().split()]
add_bos = ids[0] == bos  # the tokenizer adds BOS: llama.cpp then puts BOS first in every chunk
for c in range(len(ids) // ctx):
    ch = ids[c * ctx:(c + 1) * ctx]
    if add_bos:
        ch[0] = bos
    print(",".join(map(str, ch)))
PYEOF
n=0
while read -r chunk; do
  "$GROK" logits -m m.gguf --ids "$chunk" -o base_$n.f32 2>/dev/null || bad "logits base chunk $n"
  "$GROK" logits -m q8.gguf --ids "$chunk" -o q8_$n.f32 2>/dev/null || bad "logits q8 chunk $n"
  n=$((n + 1))
done < chunks.txt

r=$("$PY" - $CTX $n <<'PYEOF' 2>&1
import sys, json
import numpy as np
ctx, n = int(sys.argv[1]), int(sys.argv[2])
chunks = [[int(x) for x in l.split(",")] for l in open("chunks.txt")]
def lsm(a):
    a = a.astype(np.float64); a = a - a.max(axis=1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=1, keepdims=True))
nll = nll_q = kl = 0.0; cnt = agree = 0
for c in range(n):
    b = lsm(np.fromfile("base_%d.f32" % c, dtype="<f4").reshape(ctx, -1))
    q = lsm(np.fromfile("q8_%d.f32" % c, dtype="<f4").reshape(ctx, -1))
    for j in range(ctx // 2, ctx - 1):
        t = chunks[c][j + 1]
        nll -= b[j, t]; nll_q -= q[j, t]
        kl += float((np.exp(b[j]) * (b[j] - q[j])).sum())
        agree += int(b[j].argmax() == q[j].argmax()); cnt += 1
ppl, pplq = np.exp(nll / cnt), np.exp(nll_q / cnt)
P = json.load(open("ppl.json")); K = json.load(open("kl.json")); S = json.load(open("self.json"))
assert P["chunks"] == n and P["scored"] == cnt, (P, n, cnt)
assert abs(P["perplexity"] - ppl) <= 1e-6 * ppl , "ppl %r vs numpy %r" % (P["perplexity"], ppl)
assert abs(K["perplexity"] - pplq) <= 1e-6 * pplq, "q8 ppl %r vs %r" % (K["perplexity"], pplq)
assert abs(K["base_perplexity"] - ppl) <= 1e-6 * ppl, (K, ppl)
assert abs(K["kl_mean"] - kl / cnt) <= 1e-3 * kl / cnt + 1e-9, "kl %r vs %r" % (K["kl_mean"], kl / cnt)
assert K["kl_mean"] > 0 and abs(K["top1_agree"] - agree / cnt) < 1e-5, (K, agree / cnt)
assert abs(S["kl_mean"]) < 1e-9 and S["top1_agree"] == 1.0
print("ppl %.4f (numpy %.4f), q8_0 ppl %.4f, KL %.3g, top-1 %.3f over %d chunks, %d scored"
      % (P["perplexity"], ppl, K["perplexity"], K["kl_mean"], K["top1_agree"], n, cnt))
PYEOF
) && ok "$r" || bad "numpy comparison: $r"

"$GROK" perplexity -m m.gguf -f text.txt --ctx 100000 >/dev/null 2>err.txt; [ $? -eq 1 ] && grep -q "fewer than one chunk" err.txt \
  && ok "text shorter than a chunk refused" || bad "short text: $(cat err.txt)"
"$GROK" perplexity -m m.gguf >/dev/null 2>&1; [ $? -eq 2 ] && ok "missing -f -> 2" || bad "missing -f"
"$GROK" perplexity -m m.gguf -f nope.txt >/dev/null 2>err.txt; [ $? -eq 1 ] && grep -q nope.txt err.txt && ok "missing text named" || bad "missing text"
summary
