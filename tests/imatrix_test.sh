#!/usr/bin/env bash
# imatrix_test.sh - grok imatrix against an independent computation: the
# float64 NumPy forward pass (tests/ref/grok_ref.py) records every product's
# input rows and tests/ref/imatrix_ref.py sums their squares per column and
# expert, then reads grok's file with its own readers (GGUF through
# gguf_reader.py, the legacy .dat by hand). With --exact (f32 activations)
# the routing and so the per-expert row counts must be equal and the sums
# agree to f32 rounding. Also: .dat <-> GGUF conversion, merging, the output
# head on request, and hostile files and flags refused with the place named.
# (The cross-check against llama-imatrix itself is in docs/quantization.md.)
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }
. "${GROK_SRC:?}/tests/lib.sh"
REF="$GROK_SRC/tests/ref/imatrix_ref.py"

# the bundled model: trained, so its routing is far from uniform
M="$GROK_SRC/models/grok-mini.gguf"
T="$GROK_SRC/tests/fixtures/kjv-heldout.txt"
CTX=64 CH=3
"$GROK" tokenize -m "$M" -f "$T" --ids > ids.txt || bad "tokenize"
"$GROK" imatrix -m "$M" -f "$T" --ctx $CTX --chunks $CH --exact -o im.gguf 2>err.txt \
  && grep -q "chunk 3/3" err.txt && grep -q "ETA" err.txt && ok "imatrix: progress with an ETA, file written" \
  || bad "imatrix: $(tail -3 err.txt)"
"$PY" "$REF" "$M" --ids-file ids.txt --ctx $CTX --chunks $CH --compare im.gguf --tol 1e-5 --label "GGUF vs float64 reference" \
  && passes=$((passes + 1)) || fails=$((fails + 1))

# legacy .dat, both ways
"$GROK" imatrix --in-file im.gguf -o im.dat 2>err.txt || bad "gguf -> dat: $(cat err.txt)"
"$PY" "$REF" "$M" --ids-file ids.txt --ctx $CTX --chunks $CH --compare im.dat --tol 1e-5 --label ".dat vs float64 reference" \
  && passes=$((passes + 1)) || fails=$((fails + 1))
"$GROK" imatrix --in-file im.dat --ctx $CTX -o back.gguf 2>err.txt || bad "dat -> gguf: $(cat err.txt)"
"$GROK" imatrix -m "$M" -f "$T" --ctx $CTX --chunks $CH --exact --output-format dat -o direct.bin 2>/dev/null \
  && "$PY" "$REF" "$M" --ids-file ids.txt --ctx $CTX --chunks $CH --compare direct.bin --tol 1e-5 --label "--output-format dat (any name)" \
  && passes=$((passes + 1)) || bad "--output-format dat"

# merging adds: the same run twice is twice the sums and counts; the model's own tokens counted per expert
"$GROK" imatrix --in-file im.gguf --in-file im.gguf -o twice.gguf 2>err.txt || bad "merge: $(cat err.txt)"
"$PY" - <<'PYEOF' && ok "merge of a file with itself doubles sums and counts; expert rows = K x tokens per layer" || bad "merge"
import os, sys
sys.path.insert(0, os.path.join(os.environ["GROK_SRC"], "tests", "ref"))
import numpy as np
from gguf_reader import GGUFFile
a, b = GGUFFile("im.gguf"), GGUFFile("twice.gguf")
assert sorted(a.tensors) == sorted(b.tensors)
for n in a.tensors:
    x, y = a.tensor(n).astype(np.float64), b.tensor(n).astype(np.float64)
    assert np.allclose(2 * x, y, rtol=1e-6, atol=0), n
assert b.get("imatrix.chunk_count") == 6, b.get("imatrix.chunk_count")
c = a.tensor("blk.2.ffn_up_exps.weight.counts").ravel()
assert c.sum() == 2 * 64 * 3 and c.min() != c.max(), c  # K=2 experts per token; routing not uniform
PYEOF
"$GROK" imatrix --show im.gguf > show.txt 2>err.txt && grep -q "blk.0.ffn_down_exps.weight" show.txt \
  && ok "--show lists the tensors with per-expert rows" || bad "--show: $(cat err.txt)"

# the output head only on request (the model is tied: token_embd)
"$GROK" imatrix -m "$M" -f "$T" --ctx 32 --chunks 1 -o po.gguf --process-output 2>/dev/null
"$GROK" imatrix --show po.gguf | grep -q "^token_embd.weight .* 32$" && ! "$GROK" imatrix --show im.gguf | grep -q token_embd \
  && ok "--process-output adds the output head (32 rows), the default leaves it out" || bad "--process-output"

# hostile files: each refused naming the file and what is wrong
"$PY" - <<'PYEOF'
import struct
good = open("im.dat", "rb").read()
open("trunc.dat", "wb").write(good[:1000])
n = struct.unpack_from("<i", good, 0)[0]
open("count.dat", "wb").write(struct.pack("<i", 1 << 30) + good[4:])
ln = struct.unpack_from("<i", good, 4)[0]
nan_at = 4 + 4 + ln + 8  # the first value of the first entry
open("nan.dat", "wb").write(good[:nan_at] + struct.pack("<f", float("nan")) + good[nan_at + 4:])
open("namelen.dat", "wb").write(good[:4] + struct.pack("<i", 5000) + good[8:])
PYEOF
for f in trunc:"bytes left" count:"entries cannot fit" nan:"not a finite mean square" namelen:"name length 5000"; do
  "$GROK" imatrix --in-file ${f%%:*}.dat -o x.gguf 2>err.txt; rc=$?
  [ $rc = 1 ] && grep -q "${f%%:*}.dat" err.txt && grep -q "${f#*:}" err.txt && [ ! -e x.gguf ] \
    && ok "${f%%:*}.dat refused: $(head -c 120 err.txt)" || bad "${f%%:*}.dat: rc $rc: $(cat err.txt)"
done
"$GROK" imatrix --in-file "$M" -o x.gguf 2>err.txt; rc=$?
[ $rc = 1 ] && grep -q "neither NAME.in_sum2 nor NAME.counts" err.txt && ok "a model file is not an imatrix: refused" \
  || bad "model as imatrix: rc $rc $(cat err.txt)"
"$GROK" imatrix -m "$M" -f "$T" --ctx $CTX --chunks 1 --in-file back.gguf -o y.gguf 2>err.txt \
  && ok "a legacy file's flat expert rows take the model's shape when collection continues" || bad "continue from dat: $(cat err.txt)"

# flags and inputs
"$GROK" imatrix -m "$M" -o z.gguf 2>/dev/null; [ $? = 2 ] && ok "-m without -f: exit 2" || bad "-m without -f"
"$GROK" imatrix --in-file im.gguf --output-format xml 2>/dev/null; [ $? = 2 ] && ok "bad --output-format: exit 2" || bad "--output-format"
"$GROK" imatrix -m "$M" -f "$T" --ctx 1 2>/dev/null; [ $? = 2 ] && ok "--ctx 1: exit 2" || bad "--ctx 1"
echo "too short" > short.txt
"$GROK" imatrix -m "$M" -f short.txt --ctx 64 -o s.gguf 2>err.txt; rc=$?
[ $rc = 1 ] && grep -q "fewer than one chunk" err.txt && [ ! -e s.gguf ] && ok "a text shorter than a chunk: exit 1, no file" \
  || bad "short text: rc $rc $(cat err.txt)"
"$GROK" imatrix --in-file im.gguf -o /nonexistent/dir/x.gguf 2>err.txt; [ $? = 1 ] && ok "unwritable output: exit 1" || bad "unwritable"
"$GROK" imatrix --help | grep -q "in_sum2\|importance\|imatrix" && ok "--help" || bad "--help"

summary
