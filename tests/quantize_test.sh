#!/usr/bin/env bash
# quantize_test.sh - grok quantize end to end. f32 -> q8_0 gives tensor
# bytes identical to `grok new --type q8_0` of the same seed (both encode
# the same f32 values with ggml's rounding), norms and router stay f32,
# metadata is copied and general.file_type is llama.cpp's number; f32 ->
# q4_0 loads and its logits (exact mode) match the independent NumPy
# reference, whose q4_0 decoder is written from the GGUF block layout, at
# 1e-4; q4_0 values decoded by NumPy lie within half a step (max|x|/8)
# of the f32 source, one step where ggml's rule clamps; q4_K / q5_K / q6_K
# files (--pure) have the expected types and errors and q4_K's logits
# match NumPy; llama.cpp's mixes (Q4_K_M, Q4_K_S, Q6_K, Q4_0, --pure and
# the type overrides) give every tensor the type llama.cpp's rules give
# it, on layers the rules pick and layers they do not, and with 8 experts;
# the summary line counts them; mixed files' logits match NumPy and the
# packed kernels pass bench's check; bad names and flag values exit 2
# naming them; and existing outputs are not overwritten without --force.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }
REF="$GROK_SRC/tests/ref"
. "${GROK_SRC:?}/tests/lib.sh"

shape="--d-model 64 --layers 2 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 --ffn 96 --vocab 300 --untied --seed 11"
"$GROK" new -o f32.gguf $shape 2>/dev/null || { bad "grok new f32"; exit 1; }
"$GROK" new -o q8_new.gguf $shape --type q8_0 2>/dev/null || { bad "grok new q8_0"; exit 1; }
"$GROK" quantize f32.gguf q8.gguf q8_0 --threads 2 2>/dev/null && ok "quantize to q8_0" || bad "quantize to q8_0"
"$GROK" quantize f32.gguf q4.gguf q4_0 --pure 2>/dev/null && ok "quantize to q4_0 --pure" || bad "quantize to q4_0 --pure"

r=$("$PY" - "$REF" <<'PYEOF' 2>&1
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from gguf_reader import GGUFFile
src, q8, q8new, q4 = GGUFFile("f32.gguf"), GGUFFile("q8.gguf"), GGUFFile("q8_new.gguf"), GGUFFile("q4.gguf")
assert q8.get("general.file_type") == 7 and q4.get("general.file_type") == 2, "file types"
for k, v in src.kvs.items():
    if k != "general.file_type":
        assert k in q8.kvs and (np.array_equal(q8.kvs[k], v) if isinstance(v, np.ndarray) else q8.kvs[k] == v), "kv " + k
assert src.tensor_order == q8.tensor_order == q4.tensor_order
for name in src.tensor_order:
    t8, tn, t4 = q8.tensors[name], q8new.tensors[name], q4.tensors[name]
    keep = "norm" in name or "ffn_gate_inp" in name
    assert t8.type == (0 if keep else 8) and t4.type == (0 if keep else 2), "%s types %d %d" % (name, t8.type, t4.type)
    assert np.array_equal(np.asarray(q8.raw(name)), np.asarray(q8new.raw(name))), name + ": q8_0 bytes differ from grok new"
    if not keep:  # q4_0: within half a step of the f32 source, except at the
        # clamped end (the value opposite the extreme may round to 16 -> 15: one step)
        x = src.tensor(name).reshape(-1, 32).astype(np.float64)
        y = q4.tensor(name).reshape(-1, 32).astype(np.float64)
        step = np.abs(x).max(axis=1, keepdims=True) / 8
        e = np.abs(x - y)
        clamped = np.abs(y - 7 * step * np.sign(x)) < 1e-2 * step  # the top code 15: 7 steps, same sign as x
        assert np.all(e <= step * (1 + 8 * 2**-11) + 1e-7), name + ": q4_0 error beyond one step"
        # half a step, plus up to 8 steps times the f16 rounding of d (2^-11)
        assert np.all((e <= step * (0.5 + 8 * 2**-11) + 1e-7) | clamped), name + ": q4_0 error beyond half a step"
print("q8_0 tensors identical to grok new; q4_0 within half a step; metadata copied")
PYEOF
) && ok "$r" || bad "file checks: $r"

ids=5,17,42,42,7,299,0,1,2,3,100,200
"$GROK" logits -m q4.gguf --ids $ids -o q4.f32 2>/dev/null || bad "logits q4_0"
r=$("$PY" "$REF/grok_ref.py" q4.gguf --ids $ids --compare q4.f32 --tol 1e-4 --label q4_0 2>&1) \
  && ok "q4_0 logits vs NumPy reference: $r" || bad "q4_0 logits vs NumPy reference: $r"

# k-quants: d_model 256, ffn 96, so the expert down matrices (96 columns)
# cannot take 256-blocks and must come out as llama.cpp's fallbacks
# (q5_0 for q4_K, q5_1 for q5_K, q8_0 for q6_K); the others are the
# k-quant, norms and router f32. NumPy decodes the k-quant bytes (its own
# decoders) and the error against the f32 source must be what the bit
# width gives (relative RMS per matrix; ggml's quantizer gives 0.067 /
# 0.034 / 0.017 on Gaussian data); llama.cpp's file types 15 / 17 / 18
# (with --pure too: q4_K and q5_K name the Q4_K_M and Q5_K_M mixes).
kshape="--d-model 256 --layers 1 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 --ffn 96 --vocab 300 --seed 12"
"$GROK" new -o kf32.gguf $kshape 2>/dev/null || bad "grok new (d_model 256)"
for t in q4_K q5_K q6_K; do
    case $t in q4_K) fb=q5_0 ;; q5_K) fb=q5_1 ;; *) fb=q8_0 ;; esac
    "$GROK" quantize kf32.gguf "k_$t.gguf" "$t" --pure --threads 2 2>err.txt && grep -q "ffn_down_exps.*written as $fb" err.txt \
      && ok "quantize to $t (down matrices to $fb, said so)" || bad "quantize to $t: $(cat err.txt)"
done
# grok new writes k-quants directly: widths that do not divide by 256 are
# refused by name; otherwise the bytes equal grok quantize of the f32 model
# of the same seed (one encoder for both)
"$GROK" new -o kn_bad.gguf $kshape --type q4_K 2>err.txt
[ $? -ne 0 ] && grep -q "multiples of 256" err.txt && [ ! -e kn_bad.gguf ] \
  && ok "grok new --type q4_K refuses ffn 96" || bad "grok new --type q4_K, ffn 96: $(cat err.txt)"
kshape2="--d-model 256 --layers 1 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 --ffn 256 --vocab 300 --seed 13"
if "$GROK" new -o kn_f32.gguf $kshape2 2>/dev/null && "$GROK" new -o kn_q4k.gguf $kshape2 --type q4_K 2>/dev/null \
   && "$GROK" quantize kn_f32.gguf kn_q.gguf q4_K --pure 2>/dev/null; then
    r=$("$PY" - "$REF" <<'PYEOF' 2>&1
import sys
sys.path.insert(0, sys.argv[1])
from gguf_reader import GGUFFile
a, b = GGUFFile("kn_q4k.gguf"), GGUFFile("kn_q.gguf")
n = 0
for name in a.tensor_order:
    assert a.tensors[name].type == b.tensors[name].type, name
    assert bytes(a.raw(name)) == bytes(b.raw(name)), name + " differs"
    n += a.tensors[name].type == 12
assert n >= 5, "only %d q4_K tensors" % n
print("%d tensors equal, %d of them q4_K" % (len(a.tensor_order), n))
PYEOF
)
    [ $? -eq 0 ] && ok "grok new --type q4_K equals grok quantize of the f32 model: $r" || bad "grok new q4_K vs quantize: $r"
else
    bad "grok new --type q4_K (ffn 256) or its quantize failed"
fi
r=$("$PY" - "$REF" <<'PYEOF' 2>&1
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from gguf_reader import GGUFFile
src = GGUFFile("kf32.gguf")
out = []
for tname, tid, ftype, limit in (("q4_K", 12, 15, 0.075), ("q5_K", 13, 17, 0.038), ("q6_K", 14, 18, 0.019)):
    q = GGUFFile("k_%s.gguf" % tname)
    assert q.get("general.file_type") == ftype, "%s file type %r" % (tname, q.get("general.file_type"))
    worst = 0.0
    for name in src.tensor_order:
        t = q.tensors[name]
        keep = "norm" in name or "ffn_gate_inp" in name
        want = 0 if keep else {12: 6, 13: 7, 14: 8}[tid] if "ffn_down" in name else tid
        assert t.type == want, "%s %s: type %d, want %d" % (tname, name, t.type, want)
        if t.type == tid:
            x = src.tensor(name).astype(np.float64)
            y = q.tensor(name).astype(np.float64)
            rel = np.sqrt(np.mean((x - y) ** 2) / np.mean(x ** 2))
            assert rel <= limit, "%s %s: relative RMS error %.4f > %.3f" % (tname, name, rel, limit)
            worst = max(worst, rel)
    out.append("%s worst %.4f" % (tname, worst))
print("k-quant types, file types and errors: " + ", ".join(out))
PYEOF
) && ok "$r" || bad "k-quant file checks: $r"
"$GROK" logits -m k_q4_K.gguf --ids $ids -o kq4.f32 2>/dev/null || bad "logits q4_K"
r=$("$PY" "$REF/grok_ref.py" k_q4_K.gguf --ids $ids --compare kq4.f32 --tol 1e-4 --label q4_K 2>&1) \
  && ok "q4_K logits vs NumPy reference: $r" || bad "q4_K logits vs NumPy reference: $r"

# llama.cpp's mixes. M: 8 layers (so the layer rules pick some layers and
# not others), 2 experts, tied head; E: 8 experts (Grok-1's count, which
# has rules of its own), untied, its 96-column down matrices falling back
# to q5_0 (from q4_K) or q8_0 (from q6_K). The expected types are written out per tensor from llama.cpp's
# llama_tensor_get_type; use_more_bits(i, 8) is i < 1, i >= 7 or
# (i - 1) % 3 == 2: layers 0, 3, 6, 7.
mshape="--d-model 256 --layers 8 --heads 4 --kv-heads 2 --experts 2 --experts-used 1 --ffn 256 --vocab 300 --seed 14"
eshape="--d-model 256 --layers 2 --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 96 --vocab 300 --untied --seed 15"
"$GROK" new -o m.gguf $mshape 2>/dev/null || bad "grok new (8 layers)"
"$GROK" new -o e.gguf $eshape 2>/dev/null || bad "grok new (8 experts)"
mix() { # IN OUT TYPE [flags]: quantize, keep the summary line
    local in=$1 out=$2; shift 2
    "$GROK" quantize "$in" "$out" "$@" --threads 2 2>"$out.err" || bad "quantize $in $*: $(cat "$out.err")"
}
mix m.gguf m_q4km.gguf Q4_K_M
mix m.gguf m_q4ks.gguf q4_k_s
mix m.gguf m_pure.gguf Q4_K_M --pure
mix m.gguf m_15.gguf 15
mix m.gguf m_alias.gguf q4_K
mix m.gguf m_over.gguf Q4_K_M --output-type q8_0
mix e.gguf e_q4km.gguf Q4_K_M
mix e.gguf e_q6k.gguf Q6_K
mix e.gguf e_q40.gguf Q4_0
mix e.gguf e_over.gguf Q4_K_M --output-tensor-type q5_K --token-embedding-type f16
cmp -s m_q4km.gguf m_15.gguf && cmp -s m_q4km.gguf m_alias.gguf \
  && ok "Q4_K_M, 15 and q4_K (llama-quantize's alias) write the same file" || bad "Q4_K_M / 15 / q4_K differ"
r=$("$PY" - "$REF" <<'PYEOF' 2>&1
import re, sys
sys.path.insert(0, sys.argv[1])
from gguf_reader import GGUFFile
F32, Q4_0, Q5_0, Q8_0, F16, Q4_K, Q5_K, Q6_K = 0, 2, 6, 8, 1, 12, 13, 14
NAMES = {0: "f32", 1: "f16", 2: "q4_0", 6: "q5_0", 8: "q8_0", 12: "q4_K", 13: "q5_K", 14: "q6_K"}
MORE = {0, 3, 6, 7}

def m_q4km(name, il):   # 2 experts: no 8-expert rules
    if name == "token_embd.weight": return Q6_K        # tied: the output head's q6_K
    if name.endswith(("attn_v.weight", "ffn_down_exps.weight")): return Q6_K if il in MORE else Q4_K
    return Q4_K

def m_q4ks(name, il):
    if name == "token_embd.weight": return Q6_K
    if name.endswith("attn_v.weight"): return Q5_K if il < 4 else Q4_K       # the first 4 layers
    if name.endswith("ffn_down_exps.weight"): return Q5_K if il < 1 else Q4_K  # the first 8/8 = 1
    return Q4_K

def e_rules(base, attn_out, embd, output):
    def f(name, il):
        if name == "token_embd.weight": return embd
        if name == "output.weight": return output
        if name.endswith(("attn_k.weight", "attn_v.weight")): return Q8_0   # 8 experts
        if name.endswith("attn_output.weight"): return attn_out
        if name.endswith("ffn_down_exps.weight") and base == Q6_K: return Q8_0  # 96 columns
        if name.endswith("ffn_down_exps.weight") and base == Q4_K:  # Q4_K_M: layer 1 of 2 is more-bits
            return Q8_0 if il == 1 else Q5_0
        return base
    return f

cases = [("m_q4km", 15, m_q4km), ("m_q4ks", 14, m_q4ks), ("m_pure", 15, lambda n, il: Q4_K),
         ("m_over", 15, lambda n, il: Q8_0 if n == "token_embd.weight" else m_q4km(n, il)),  # tied: --output-type
         ("e_q4km", 15, e_rules(Q4_K, Q5_K, Q4_K, Q6_K)), ("e_q6k", 18, e_rules(Q6_K, Q6_K, Q6_K, Q6_K)),
         ("e_q40", 2, e_rules(Q4_0, Q4_0, Q4_0, Q6_K)), ("e_over", 15, e_rules(Q4_K, Q5_K, F16, Q5_K))]
seen = set()
for stem, ftype, rule in cases:
    q = GGUFFile(stem + ".gguf")
    assert q.get("general.file_type") == ftype, "%s: file type %r, want %d" % (stem, q.get("general.file_type"), ftype)
    count = {}
    for name in q.tensor_order:
        t = q.tensors[name]
        m = re.match(r"blk\.(\d+)\.", name)
        il = int(m.group(1)) if m else -1
        want = F32 if ("norm" in name or "ffn_gate_inp" in name) else rule(name, il)
        assert t.type == want, "%s %s: %s, want %s" % (stem, name, NAMES.get(t.type, t.type), NAMES[want])
        count[t.type] = count.get(t.type, 0) + 1
        seen.add((stem[0], name.split(".")[-2] if il >= 0 else name, NAMES[want]))
    # the summary line: tensors per type, in type order
    summary = open(stem + ".gguf.err").read()
    want_s = "%d tensors (%s)" % (len(q.tensor_order), ", ".join("%d %s" % (count[k], NAMES[k]) for k in sorted(count)))
    assert want_s in summary, "%s: summary %r lacks %r" % (stem, summary, want_s)
    assert re.search(r"file type %d.*weights [0-9.]+ MiB .*-> [0-9.]+ MiB .*file [0-9.]+ MiB" % ftype, summary), summary
# both kinds of layer were seen for the layer rules
assert ("m", "attn_v", "q6_K") in seen and ("m", "attn_v", "q4_K") in seen and ("m", "ffn_down_exps", "q5_K") in seen
print("%d files, every tensor's type as llama.cpp's rules give it; file types and summaries right" % len(cases))
PYEOF
) && ok "$r" || bad "mix types: $r"
grep -q "ffn_down_exps.*written as q5_0" e_q4km.gguf.err && grep -q "of them in another type" e_q4km.gguf.err \
  && ok "fallbacks reported in the summary" || bad "fallback report: $(cat e_q4km.gguf.err)"
# mixed files run: logits (exact kernels) against the NumPy reference, which
# decodes each tensor by its own type; the packed fast kernels via bench's check
for f in m_q4km e_q4km; do
    "$GROK" logits -m $f.gguf --ids $ids -o $f.f32 2>/dev/null || bad "logits $f"
    r=$("$PY" "$REF/grok_ref.py" $f.gguf --ids $ids --compare $f.f32 --tol 1e-4 --label $f 2>&1) \
      && ok "$f logits vs NumPy reference: $r" || bad "$f logits vs NumPy reference: $r"
done
"$GROK" bench -m m_q4km.gguf -p 16 -n 8 --check 2 --threads 2 --no-stream >/dev/null 2>err.txt \
  && ok "bench --check 2 on the Q4_K_M file (packed kernels vs reference)" || bad "bench Q4_K_M: $(cat err.txt)"

"$GROK" quantize f32.gguf q8.gguf q8_0 >/dev/null 2>err.txt
[ $? -eq 1 ] && grep -q -- --force err.txt && ok "existing output refused" || bad "overwrite without --force: $(cat err.txt)"
"$GROK" quantize f32.gguf q8.gguf q8_1 >/dev/null 2>&1; [ $? -eq 2 ] && ok "unsupported type -> 2" || bad "unsupported type"
"$GROK" quantize f32.gguf bad.gguf Q3_K_XL >/dev/null 2>err.txt
[ $? -eq 2 ] && grep -q "TYPE 'Q3_K_XL' is not one of" err.txt && grep -q IQ2_XXS err.txt && [ ! -e bad.gguf ] \
  && ok "unknown mix Q3_K_XL -> 2, named, the mixes listed" || bad "unknown mix: $(cat err.txt)"
for flag in --output-type --output-tensor-type --token-embedding-type; do
    "$GROK" quantize f32.gguf bad.gguf Q4_K_M $flag q8_1 >/dev/null 2>err.txt
    [ $? -eq 2 ] && grep -q -- "$flag: 'q8_1'" err.txt && [ ! -e bad.gguf ] \
      && ok "$flag q8_1 -> 2, flag and value named" || bad "$flag q8_1: $(cat err.txt)"
done
"$GROK" quantize f32.gguf >/dev/null 2>&1; [ $? -eq 2 ] && ok "missing args -> 2" || bad "missing args"
# llama-quantize's fourth positional, the thread count: the same file as -t
"$GROK" quantize f32.gguf q8_nt.gguf q8_0 2 2>/dev/null && cmp -s q8.gguf q8_nt.gguf \
  && ok "IN OUT TYPE NTHREADS writes what -t writes" || bad "NTHREADS positional"
"$GROK" quantize f32.gguf bad.gguf q8_0 x >/dev/null 2>err.txt
[ $? -eq 2 ] && grep -q "NTHREADS 'x' is not an integer in \[0, 1024\]" err.txt && [ ! -e bad.gguf ] \
  && ok "NTHREADS x -> 2, named" || bad "NTHREADS x: $(cat err.txt)"
"$GROK" quantize f32.gguf bad.gguf q8_0 2 -t 3 >/dev/null 2>err.txt
[ $? -eq 2 ] && grep -q "disagree" err.txt && [ ! -e bad.gguf ] && ok "NTHREADS and -t disagreeing -> 2" \
  || bad "NTHREADS 2 -t 3: $(cat err.txt)"
"$GROK" quantize f32.gguf bad.gguf q8_0 2 extra >/dev/null 2>err.txt
[ $? -eq 2 ] && grep -q "unexpected argument 'extra'" err.txt && ok "a fifth positional -> 2" || bad "fifth positional: $(cat err.txt)"
"$GROK" quantize f32.gguf bad.gguf Q4_K_M --output-type q8_0 --output-tensor-type q6_K >/dev/null 2>err.txt
[ $? -eq 2 ] && grep -q "give it once" err.txt && ok "--output-type with --output-tensor-type -> 2" \
  || bad "both output flags: $(cat err.txt)"
"$GROK" quantize --threads=2 --dry-run f32.gguf q8_0 >/dev/null 2>err.txt && ok "--threads=2 --dry-run IN TYPE" \
  || bad "--threads=2 --dry-run: $(cat err.txt)"
"$GROK" quantize f32.gguf bad.gguf q8_0 --pure=1 >/dev/null 2>err.txt
[ $? -eq 2 ] && grep -q -- "--pure takes no value" err.txt && ok "--pure=1 -> 2" || bad "--pure=1: $(cat err.txt)"
"$GROK" quantize nope.gguf x.gguf q8_0 >/dev/null 2>err.txt; [ $? -eq 1 ] && grep -q nope err.txt && [ ! -e x.gguf ] \
  && ok "missing input named, no output" || bad "missing input: $(cat err.txt)"
ls ./*.tmp* >/dev/null 2>&1 && bad "temporary files left" || ok "no temporary files left"

summary
