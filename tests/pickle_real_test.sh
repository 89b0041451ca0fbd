#!/bin/bash
# pickle_real_test.sh - the checkpoint reader and the checkpoint generator
# against what Debian's python3 and numpy really write, not against each
# other:
#  - the generator's bf16 stand-in pickles as numpy pickles the user-defined
#    dtype Debian's numpy ships (numpy.core._rational_tests.rational);
#  - with a real numpy user-defined dtype ml_dtypes.bfloat16
#    (tests/pickle/ml_dtypes.c, built here against numpy's C API), the
#    generator's files are byte for byte what pickle.dump writes for a real
#    dataclass holding real numpy arrays, and numpy loads them back;
#  - test_pickle.c's embedded pickles are still what pickle.dump writes;
#  - grok convert converts a checkpoint of real objects (protocol 4, and 3
#    to the same bytes) to logits matching the float64 reference, and
#    refuses real pickles of other kinds (protocols 2 and 5, float64,
#    float16, big-endian, Fortran order, object arrays, other user dtypes,
#    float32 scales, ...) naming the file and byte offset.
set -u
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
PY=/usr/bin/python3
$PY -c "import numpy" 2>/dev/null || { echo "SKIP: python3-numpy not installed"; exit 77; }
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
GEN="$PY $GROK_SRC/tests/gen_checkpoint.py"
REAL="$PY $GROK_SRC/tests/pickle/real_pickles.py"
fail() { echo "FAIL: $*"; exit 1; }

$GEN check-standin || fail "the generator's bf16 stand-in disagrees with numpy"

# a real user-defined numpy dtype named ml_dtypes.bfloat16
INC=$($PY -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$($PY -c "import numpy; print(numpy.get_include())")
SUF=$($PY -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
CC=${CC:-cc}
command -v "$CC" >/dev/null || { echo "SKIP: no C compiler ($CC) to build the bfloat16 dtype"; exit 77; }
[ -f "$INC/Python.h" ] || { echo "SKIP: python3-dev not installed ($INC/Python.h)"; exit 77; }
mkdir -p ext
# not sanitized: it is loaded by python3, not by the code under test
"$CC" -shared -fPIC -O1 -I"$INC" -I"$NPINC" "$GROK_SRC/tests/pickle/ml_dtypes.c" \
    -o "ext/ml_dtypes$SUF" 2> ext/build.log || { cat ext/build.log; fail "building ml_dtypes.c"; }
export PYTHONPATH="$GROK_TMP/ext"
$PY -c "
import ml_dtypes, numpy as np
r = np.dtype(ml_dtypes.bfloat16).__reduce__()
assert r[2][5:7] == (2, 2), r
print('ok   numpy pickles ml_dtypes.bfloat16 as np.dtype%r, state %r' % (r[1], r[2]))
" || fail "the bfloat16 dtype"

$REAL check-fixtures "$GROK_SRC/tests/test_pickle.c" || exit 1

# the generator's stand-in files are the files of real objects (heads x
# head size and ffn of 256 keep the 8 scale groups of attn_output and
# moe/linear_1 32 rows tall, so q8_0 holds the official values exactly)
IDS=5,17,200,3,42,399,100,0,7
DIMS="--vocab 400 --layers 3 --d-model 64 --heads 2 --kv-heads 1 --head-dim 128 --ffn 256 --experts 4"
$GEN write standin $DIMS --dtypes standin > /dev/null || fail "generator (stand-in)"
$GEN write real $DIMS --dtypes real --ref-ids $IDS --ref-out ref.f32 > /dev/null || fail "generator (real)"
$GEN write real3 $DIMS --dtypes real --protocol 3 > /dev/null || fail "generator (real, protocol 3)"
diff -r standin real > /dev/null || fail "the stand-in's files differ from the files of real numpy arrays"
echo "ok   $(ls real | wc -l) checkpoint files from the stand-in are byte for byte those of real numpy arrays"
$PY - <<'PYEOF' || fail "numpy cannot load the generator's files"
import dataclasses, os, pickle, sys
import numpy as np, ml_dtypes
@dataclasses.dataclass
class QuantizedWeight8bit:
    weight: object
    scales: object
n = q = 0
for f in sorted(os.listdir("standin")):
    o = pickle.load(open(os.path.join("standin", f), "rb"))
    n += 1
    if isinstance(o, QuantizedWeight8bit):
        assert o.weight.dtype == np.int8 and o.scales.dtype == np.dtype(ml_dtypes.bfloat16), f
        assert o.scales.dtype.itemsize == 2 and np.all(o.scales.view("<u2") & 0x7F80 != 0x7F80), f
        q += 1
    else:
        assert o.dtype == np.float32, f
print("ok   pickle.load reads all %d files back as numpy arrays (%d QuantizedWeight8bit)" % (n, q))
PYEOF

# grok convert on real objects
. "$GROK_SRC/tests/ckpt_lib.sh"
make_tokenizer 400
HP="--heads 2 --kv-heads 1"
$GROK convert real --tokenizer tok.model -o real.gguf --type q8_0 $HP 2> log.txt \
    || { cat log.txt; fail "convert of real pickles"; }
$GROK convert real3 --tokenizer tok.model -o real3.gguf --type q8_0 $HP 2> log3.txt \
    || { cat log3.txt; fail "convert of real protocol 3 pickles"; }
cmp real.gguf real3.gguf || fail "protocol 3 converts to other bytes than protocol 4"
$GROK logits -m real.gguf --ids $IDS -o l.f32 || fail "logits"
$PY - <<'PYEOF' || exit 1
import numpy as np
r = np.load("ref.f32.f64.npy")
g = np.fromfile("l.f32", dtype="<f4").astype(np.float64).reshape(r.shape)
e = (np.abs(g - r).max(axis=1) / np.abs(r).max(axis=1)).max()
print("%s real pickles -> q8_0 logits vs float64 reference: max rel err %.3e (tol 1e-4)" % (
    "ok  " if e <= 1e-4 else "FAIL", e))
raise SystemExit(0 if e <= 1e-4 else 1)
PYEOF
echo "ok   protocol 3 and 4 convert to the same file"

# real pickles the reader refuses, each in place of tensor00002_000
$REAL bad bad > cases.txt || fail "writing the refused pickles"
n=0
while IFS=$'\t' read -r name want; do
    rm -rf case && cp -r real case && cp "bad/$name" case/tensor00002_000
    $GROK convert case --tokenizer tok.model -o case.gguf $HP 2> err.txt
    rc=$?
    [ $rc -eq 1 ] || { cat err.txt; fail "$name: exit $rc, 1 expected"; }
    grep -q "case/tensor00002_000: byte [0-9]*: " err.txt || { cat err.txt; fail "$name: no file and byte offset"; }
    grep -qF -- "$want" err.txt || { cat err.txt; fail "$name: message lacks '$want'"; }
    [ ! -e case.gguf ] || fail "$name: output written"
    n=$((n + 1))
    echo "ok   $name refused: $(sed 's/^grok convert: //' err.txt)"
done < cases.txt
[ $n -ge 10 ] || fail "only $n refused cases"
echo "PASS"
