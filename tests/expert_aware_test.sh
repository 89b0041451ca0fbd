#!/usr/bin/env bash
# expert_aware_test.sh - grok quantize --expert-aware end to end. A small
# f32 model gets an imatrix from grok imatrix, which is then rewritten so
# that the router's use is skewed (expert 0 takes 70 % of the tokens,
# expert 3 1 %: counts and sums scaled together, as a real skew would give
# them). The mix must then give the busy experts richer types and the idle
# ones cheaper ones than the uniform mix, keep the tensor bytes at most the
# uniform file's and within 0.5 % of it, and write one tensor per expert
# that `grok info` lists; the file must load and its logits match the
# float64 NumPy reference (tests/ref/grok_ref.py), which decodes each
# expert's bytes with its own type, within 1e-4. Also: refused without
# --imatrix (exit 2), and --dry-run prints the assignment and writes
# nothing.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }
fails=0
ok() { echo "ok   $*"; }
bad() { fails=$((fails + 1)); echo "FAIL $*"; }

# every expert matrix 256 wide, so each takes the k-quants (no fallbacks)
"$GROK" new -o f32.gguf --d-model 256 --layers 2 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 \
  --ffn 256 --vocab 300 --seed 11 2>/dev/null || { bad "grok new"; exit 1; }
"$GROK" imatrix -m f32.gguf -f "$GROK_SRC/tests/fixtures/lora-text.txt" --ctx 64 --chunks 4 -o im.gguf \
  2>/dev/null || { bad "grok imatrix"; exit 1; }
"$PY" - "$GROK_SRC/tests/ref" <<'PYEOF' || { bad "rewriting the imatrix's counts"; exit 1; }
import shutil, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from gguf_reader import GGUFFile
share = np.array([0.70, 0.25, 0.04, 0.01])
g = GGUFFile("im.gguf")
shutil.copy("im.gguf", "skewed.gguf")
with open("skewed.gguf", "r+b") as f:
    for name, t in g.tensors.items():
        if not name.endswith("_exps.weight.counts"):
            continue
        c = g.tensor(name).astype(np.float64).reshape(-1)
        s = g.tensor(name[:-len(".counts")] + ".in_sum2").astype(np.float64).reshape(len(c), -1)
        assert t.type_name == "f32" and len(c) == 4
        k = np.maximum(np.round(share * c.sum()), 1) / c  # expert e's tokens become share[e] of them
        for arr, tn in ((c * k, name), ((s * k[:, None]).reshape(-1), name[:-len(".counts")] + ".in_sum2")):
            tt = g.tensors[tn]
            f.seek(tt.data_start + tt.offset)
            f.write(arr.astype("<f4").tobytes())
PYEOF

"$GROK" quantize --expert-aware f32.gguf x.gguf Q3_K_M >/dev/null 2>err.txt
rc=$?
[ $rc -eq 2 ] && [ ! -e x.gguf ] && grep -q imatrix err.txt && ok "--expert-aware without --imatrix: exit 2" ||
  bad "--expert-aware without --imatrix: rc $rc, $(tail -1 err.txt)"
"$GROK" quantize --dry-run --expert-aware --imatrix skewed.gguf f32.gguf Q3_K_M >plan.txt 2>dry.txt
rc=$?
[ $rc -eq 0 ] && grep -q "blk.1.ffn_down.0.weight" plan.txt && grep -Eq "experts \(share of tokens, type\): 0 70\.[0-9]%" dry.txt &&
  [ ! -e x.gguf ] && ok "--dry-run prints each expert's type" || bad "--dry-run: rc $rc, $(tail -2 dry.txt)"

for m in Q3_K_M Q2_K; do
  "$GROK" quantize --imatrix skewed.gguf --threads 2 f32.gguf "u_$m.gguf" "$m" >/dev/null 2>"u_$m.err" ||
    { bad "uniform $m: $(tail -1 "u_$m.err")"; continue; }
  "$GROK" quantize --imatrix skewed.gguf --expert-aware --threads 2 f32.gguf "x_$m.gguf" "$m" >/dev/null \
    2>"x_$m.err" || { bad "--expert-aware $m: $(tail -1 "x_$m.err")"; continue; }
  # Q2_K's gate and up are q2_K, the bottom of the k-quants: only down can be shared out
  want=6
  [ $m = Q2_K ] && want=2
  r=$("$PY" - "$GROK_SRC/tests/ref" "u_$m.gguf" "x_$m.gguf" $want <<'PYEOF' 2>&1
import os, re, sys
sys.path.insert(0, sys.argv[1])
from gguf_reader import GGUFFile
u, x = GGUFFile(sys.argv[2]), GGUFFile(sys.argv[3])
data = lambda g: sum(t.n_bytes() for t in g.tensors.values())
bu, bx = data(u), data(x)
fu, fx = os.path.getsize(sys.argv[2]), os.path.getsize(sys.argv[3])
msgs, richer, cheaper, split = [], 0, 0, 0
for name, t in u.tensors.items():
    m = re.match(r"(blk\.\d+\.ffn_(?:gate|up|down))_exps\.weight$", name)
    if not m or name in x.tensors:
        continue
    split += 1
    per = [x.tensors["%s.%d.weight" % (m.group(1), e)] for e in range(4)]
    size = [p.n_bytes() for p in per]
    base = t.n_bytes() // 4
    # the busier expert never gets fewer bytes than a less used one
    if size != sorted(size, reverse=True):
        msgs.append("%s: bytes per expert %s not in the order of use" % (name, size))
    richer += size[0] > base
    cheaper += size[3] < base
    msgs.append("%s: %s" % (name, " ".join(p.type_name for p in per)))
want = int(sys.argv[4])
ok = split == want and richer == want and cheaper == want and bx <= bu and bx >= 0.995 * bu and abs(fx - fu) <= 0.005 * fu
ok = ok and not any("not in the order" in s for s in msgs)
print("%s %d of 6 expert tensors shared out, %d with expert 0 richer and %d with expert 3 cheaper than "
      "the uniform type; tensor bytes %d vs uniform %d (%+.3f %%), file %d vs %d"
      % ("ok" if ok else "FAIL", split, richer, cheaper, bx, bu, 100.0 * (bx - bu) / bu, fx, fu))
for s in msgs:
    print("    " + s)
sys.exit(0 if ok else 1)
PYEOF
)
  [ $? -eq 0 ] && ok "$m: $r" || bad "$m: $r"
  "$GROK" info "x_$m.gguf" >info.txt 2>&1 && grep -q "blk.0.ffn_down.0.weight" info.txt && ok "$m: grok info lists the per-expert tensors" ||
    bad "$m: grok info has no blk.0.ffn_down.0.weight"
  IDS=5,17,200,3,42,299,100,0,7,250,17,9
  for k in exact fast; do
    GROK_KERNELS=$k "$GROK" logits -m "x_$m.gguf" --ids $IDS -o "x_$m.$k.f32" >logits.log 2>&1 ||
      { bad "$m: grok logits ($k): $(tail -1 logits.log)"; continue; }
  done
  "$PY" "$GROK_SRC/tests/ref/grok_ref.py" "x_$m.gguf" --ids $IDS --compare "x_$m.exact.f32" --tol 1e-4 \
    --label "$m --expert-aware, exact kernels, against the NumPy reference" || fails=$((fails + 1))
  # the fast kernels quantize activations to 8 bits: a looser bound
  "$PY" "$GROK_SRC/tests/ref/grok_ref.py" "x_$m.gguf" --ids $IDS --compare "x_$m.fast.f32" --tol 2e-2 \
    --label "$m --expert-aware, fast kernels" || fails=$((fails + 1))
done
out=$("$GROK" run -m x_Q2_K.gguf -p "In the beginning" -n 4 --seed 1 2>run.err)
[ $? -eq 0 ] && ok "grok run on the per-expert file" || bad "grok run: $(tail -1 run.err)"

[ $fails -eq 0 ] && echo "all passed" || { echo "$fails failed"; exit 1; }
