#!/usr/bin/env bash
# iq_quantize_test.sh - grok quantize to the i-quants end to end: a small
# f32 model whose rows divide into 256, an imatrix from grok imatrix, then
# `grok quantize --pure --imatrix` to each of IQ1_S, IQ1_M, IQ2_XXS,
# IQ2_XS, IQ2_M (llama.cpp's mix of type iq2_s), IQ3_XXS and IQ3_S. Every matrix has the type, its values
# decoded by the independent NumPy decoder (tests/ref/iq_ref.py) lie within
# a per-type bound of the f32 source under the imatrix's weights, the
# error falls as the bits rise, the same bytes decode in grok (perplexity
# and KL against f32 finite, KL of IQ1_S above IQ3_S's), and the IQ1/IQ2
# types are refused without an imatrix.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }
. "${GROK_SRC:?}/tests/lib.sh"

"$GROK" new -o f32.gguf --d-model 256 --layers 2 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 \
  --ffn 256 --vocab 300 --untied --seed 7 2>/dev/null || { bad "grok new"; exit 1; }
T="$GROK_SRC/tests/fixtures/lora-text.txt"
"$GROK" imatrix -m f32.gguf -f "$T" --ctx 64 --chunks 4 -o im.gguf 2>/dev/null && ok "imatrix" || { bad "imatrix"; exit 1; }
TYPES="IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_M IQ3_XXS IQ3_S" # IQ2_M is the mix whose type is iq2_s
for t in $TYPES; do
  "$GROK" quantize --pure --imatrix im.gguf --threads 2 f32.gguf "$t.gguf" "$t" >/dev/null 2>err.txt \
    && ok "quantize --pure --imatrix $t" || bad "quantize $t: $(tail -2 err.txt)"
done
for t in IQ1_S IQ2_XXS; do
  "$GROK" quantize --pure f32.gguf "no-$t.gguf" "$t" >/dev/null 2>err.txt
  rc=$?
  [ $rc -ne 0 ] && grep -qi imatrix err.txt && [ ! -e "no-$t.gguf" ] && ok "$t refused without an imatrix" \
    || bad "$t without an imatrix: rc $rc, $(tail -1 err.txt)"
done

r=$("$PY" - "$GROK_SRC/tests/ref" $TYPES <<'PYEOF' 2>&1
import struct, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from gguf_reader import GGUFFile
src, im = GGUFFile("f32.gguf"), GGUFFile("im.gguf")
# bounds on sum w (x - y)^2 / sum w x^2 over all matrices, ~15 % above what the
# encoders give here (IQ1_S 0.190, IQ1_M 0.161, IQ2_XXS 0.101, IQ2_XS 0.077,
# IQ2_M 0.055, IQ3_XXS 0.030, IQ3_S 0.016)
bound = {"IQ1_S": 0.22, "IQ1_M": 0.185, "IQ2_XXS": 0.115, "IQ2_XS": 0.09, "IQ2_M": 0.063,
         "IQ3_XXS": 0.034, "IQ3_S": 0.019}
errs = []
for tn in sys.argv[2:]:
    q = GGUFFile(tn + ".gguf")
    e = s = 0.0
    for name in src.tensor_order:
        t = src.tensors[name]
        if len(t.ne) < 2 or "norm" in name or "ffn_gate_inp" in name:
            continue
        want = {"IQ2_M": "IQ2_S"}.get(tn, tn)
        assert q.tensors[name].type_name.upper() == want, "%s: %s is %s" % (tn, name, q.tensors[name].type_name)
        x, y = src.tensor(name).astype(np.float64), q.tensor(name).astype(np.float64)
        w = np.ones(x.shape[-1])
        if name + ".in_sum2" in im.tensors:
            s2 = im.tensor(name + ".in_sum2").astype(np.float64)
            s2 = s2.reshape(-1, x.shape[-1]) if x.ndim == 3 else s2.reshape(1, -1)
            w = s2[:, None, :] if x.ndim == 3 else s2[0]
            w = w + 1e-12
        e += float((w * (x - y) ** 2).sum()); s += float((w * x ** 2).sum())
    errs.append(e / s)
order = dict(zip(sys.argv[2:], errs))
print(" ".join("%s %.4f" % kv for kv in order.items()))
for tn, e in order.items():
    assert e < bound[tn], "%s: weighted error %.4f above %.4f" % (tn, e, bound[tn])
chain = ["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_M", "IQ3_XXS", "IQ3_S"]
for a, b in zip(chain, chain[1:]):
    assert order[a] > order[b], "error of %s %.4f not above %s's %.4f" % (a, order[a], b, order[b])
PYEOF
)
[ $? -eq 0 ] && ok "NumPy decodes every matrix within its bound, errors fall with the bits: $r" || bad "NumPy check: $r"

kl() { "$GROK" perplexity -m "$1.gguf" -f "$T" --ctx 64 --chunks 2 --kl-base f32.gguf --json 2>/dev/null | tail -1 \
  | sed -n 's/.*"kl_mean": \([0-9.e+-]*\).*/\1/p'; }
k1=$(kl IQ1_S) k3=$(kl IQ3_S)
"$PY" -c "import sys, math; a, b = float('$k1'), float('$k3'); sys.exit(0 if math.isfinite(a) and math.isfinite(b) and a > b > 0 else 1)" 2>/dev/null \
  && ok "grok decodes them: KL vs f32 IQ1_S $k1 > IQ3_S $k3" || bad "KL: IQ1_S '$k1' IQ3_S '$k3'"

summary iq_quantize_test
