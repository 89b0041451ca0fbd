#!/bin/bash
# convert_test.sh - `grok convert` end to end: a small checkpoint in the
# official format (11 layers, so lexicographic file order matters) is
# converted to q8_0, f32 and bf16; the logits of the converted files must
# match the float64 reference computed by the generator from the pickled
# int8 values and bf16 scales; q8_0 must hold the official int8 values bit
# for bit and bf16 the official bf16 products; split output, --force, a
# failed conversion and a file in the wrong slot are checked too.
set -u
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
PY=/usr/bin/python3
$PY -c "import numpy" 2>/dev/null || { echo "SKIP: python3-numpy not installed"; exit 77; }
$GROK convert --help >/dev/null 2>&1 || { echo "SKIP: this grok binary has no convert command (dispatch entry not merged)"; exit 77; }
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
GEN="$PY $GROK_SRC/tests/gen_checkpoint.py"
HP="--heads 4 --kv-heads 2 --head-dim 64"
IDS=5,17,200,3,42,399,100,0,7
fail() { echo "FAIL: $*"; exit 1; }

. "$GROK_SRC/tests/ckpt_lib.sh"
make_tokenizer 400
$GEN write ckpt-0 --vocab 400 --layers 11 --tiny-scales 3 --ref-ids $IDS --ref-out ref.f32 \
    || fail "generator"

cmp_logits() { # FILE TOL LABEL
    $PY - "$1" "$2" "$3" <<'EOF'
import sys, numpy as np
r = np.load("ref.f32.f64.npy")
g = np.fromfile(sys.argv[1], dtype="<f4").astype(np.float64).reshape(r.shape)
e = (np.abs(g - r).max(axis=1) / np.abs(r).max(axis=1)).max()
ok = np.isfinite(e) and e <= float(sys.argv[2])
print("%s %s: max rel err %.3e (tol %s)" % ("ok  " if ok else "FAIL", sys.argv[3], e, sys.argv[2]))
sys.exit(0 if ok else 1)
EOF
}

for t in q8_0 f32 bf16; do
    $GROK convert ckpt-0 --tokenizer tok.model -o m_$t.gguf --type $t $HP 2> log_$t.txt \
        || { cat log_$t.txt; fail "convert --type $t"; }
    $GROK logits -m m_$t.gguf --ids $IDS -o l_$t.f32 || fail "logits $t"
done
cmp_logits l_q8_0.f32 1e-4 "q8_0 logits vs reference from the pickles" || exit 1
cmp_logits l_f32.f32 1e-4 "f32 logits vs reference from the pickles" || exit 1
# bf16 weights are the official bf16 products; the engine on that file
# must match the reference reading the same file
$PY "$GROK_SRC/tests/ref/grok_ref.py" m_bf16.gguf --ids $IDS --compare l_bf16.f32 --tol 1e-4 \
    --label "bf16 file" || exit 1
$GEN check-bf16 ckpt-0 m_bf16.gguf || exit 1
$GEN check-q8 ckpt-0 m_q8_0.gguf > q8.txt || { cat q8.txt; exit 1; }
cat q8.txt
want=$(sed -n 's/^inexact=//p' q8.txt)
[ "$want" -gt 0 ] || fail "the generator made no inexact scales"
grep -q "$want not exact" log_q8_0.txt || { cat log_q8_0.txt; fail "summary does not report $want inexact blocks"; }

# a window smaller than one matrix: strided strip reads, same bytes
$GROK convert ckpt-0 --tokenizer tok.model -o m_win.gguf $HP --window 40K 2>/dev/null \
    || fail "convert --window 40K"
cmp m_q8_0.gguf m_win.gguf || fail "--window changes the output"
echo "ok   small window gives identical output"

# split output loads and computes the same logits
$GROK convert ckpt-0 --tokenizer tok.model -o split.gguf $HP --split-max-size 4M 2>/dev/null \
    || fail "convert --split-max-size"
n=$(ls split-000*-of-*.gguf | wc -l)
[ "$n" -ge 3 ] || fail "expected several splits, got $n"
first=$(ls split-00001-of-*.gguf)
$GROK logits -m "$first" --ids $IDS -o l_split.f32 || fail "logits on split"
cmp l_q8_0.f32 l_split.f32 || fail "split logits differ"
echo "ok   split into $n files, same logits"

# existing output: refused without --force, replaced with it
before=$(stat -c %Y.%s m_f32.gguf)
$GROK convert ckpt-0 --tokenizer tok.model -o m_f32.gguf $HP 2> err.txt && fail "overwrote without --force"
grep -q "exists" err.txt || { cat err.txt; fail "no 'exists' message"; }
[ "$(stat -c %Y.%s m_f32.gguf)" = "$before" ] || fail "existing output touched"
$GROK convert ckpt-0 --tokenizer tok.model -o m_f32.gguf $HP --force 2>/dev/null || fail "--force"
cmp m_f32.gguf m_q8_0.gguf || fail "--force output differs from the q8_0 conversion"
echo "ok   existing output refused without --force"

# a failed conversion (a truncated late file) leaves no output, and an
# existing file is untouched under --force
cp -r ckpt-0 bad && truncate -s 1000 bad/tensor00130_000
$GROK convert bad --tokenizer tok.model -o bad.gguf $HP 2> err.txt && fail "truncated file accepted"
grep -q "tensor00130_000: byte" err.txt || { cat err.txt; fail "error does not name file and byte"; }
cp m_q8_0.gguf keep.gguf
$GROK convert bad --tokenizer tok.model -o keep.gguf $HP --force 2>/dev/null && fail "accepted"
cmp keep.gguf m_q8_0.gguf || fail "failed --force conversion changed the existing file"
left=$(ls | grep -E '^(bad|keep)' | grep -v -E '^(bad|keep\.gguf)$' || true)
[ -z "$left" ] && [ ! -e bad.gguf ] || fail "partial output left: $left"
echo "ok   failed conversion leaves no output"

# a payload that fails only while streaming (NaN scale): no partial output
cp -r ckpt-0 nan
$PY - <<'EOF' || fail "making NaN scale"
import pickletools
p = "nan/tensor00100_000"
d = bytearray(open(p, "rb").read())
off = [pos for op, a, pos in pickletools.genops(bytes(d)) if op.name == "BINBYTES"][-1] + 5
d[off + 10:off + 12] = b"\xc0\x7f"
open(p, "wb").write(d)
EOF
$GROK convert nan --tokenizer tok.model -o nan.gguf $HP 2> err.txt && fail "NaN scale accepted"
grep -q "tensor00100_000: byte .*NaN" err.txt || { cat err.txt; fail "NaN message"; }
[ -z "$(ls | grep '^nan\.gguf')" ] || fail "partial output after NaN"
echo "ok   NaN scale rejected while streaming, no output"

# files in the wrong slot: moe/linear replaced by moe/linear_1 (same shape
# here, but its scales have 8 blocks), a query replaced by a key
cp -r ckpt-0 swap && cp ckpt-0/tensor00003_000 swap/tensor00002_000 && cp ckpt-0/tensor00005_000 swap/tensor00031_000
$GROK convert swap --tokenizer tok.model -o swap.gguf $HP 2> err.txt && fail "swapped file accepted"
grep -q "tensor00002_000.*slot needs" err.txt || { cat err.txt; fail "slot message"; }
echo "ok   file in the wrong slot rejected: $(cat err.txt)"

# hyperparameter flags are checked against the shapes
$GROK convert ckpt-0 --tokenizer tok.model -o x.gguf 2> err.txt && fail "Grok-1 heads accepted"
grep -q "query has 256 outputs, not a multiple of --heads 48" err.txt || { cat err.txt; fail "heads message"; }

# the head size: derived from the query's shape when --head-dim is not
# given (and said so), the same file as with the flag; a flag that
# disagrees with the shape is an error
$GROK convert ckpt-0 --tokenizer tok.model -o m_hd.gguf --type q8_0 --heads 4 --kv-heads 2 2> err.txt \
    || { cat err.txt; fail "convert without --head-dim"; }
grep -q "head size 64 = query outputs 256 / --heads 4 (derived" err.txt || { cat err.txt; fail "derived head size not printed"; }
cmp m_q8_0.gguf m_hd.gguf || fail "derived head size gives another file than --head-dim 64"
$GROK convert ckpt-0 --tokenizer tok.model -o x.gguf --heads 4 --kv-heads 2 --head-dim 32 2> err.txt
[ $? -eq 1 ] || fail "disagreeing --head-dim: exit 1 expected"
grep -q "query has 256 outputs but --heads 4 x --head-dim 32 = 128" err.txt || { cat err.txt; fail "head-dim message"; }
$GROK convert ckpt-0 --tokenizer tok.model -o x.gguf --heads 3 --kv-heads 1 2> err.txt && fail "--heads 3 accepted"
grep -q "not a multiple of --heads 3" err.txt || { cat err.txt; fail "--heads 3 message"; }
[ ! -e x.gguf ] || fail "output written by a refused conversion"
echo "ok   head size derived from the query (256 / 4 = 64), disagreeing flags refused"
# Grok-1's head layout (48 heads of 128, 8 KV heads) on a one-layer
# d_model 64 checkpoint: the command with no hyperparameter flags at all
$GEN write g1 --vocab 400 --layers 1 --d-model 64 --heads 48 --kv-heads 8 --head-dim 128 --ffn 64 \
    > /dev/null || fail "generator (Grok-1 heads)"
$GROK convert g1 --tokenizer tok.model -o g1.gguf --type q8_0 2> err.txt || { cat err.txt; fail "convert g1"; }
grep -q "head size 128 = query outputs 6144 / --heads 48" err.txt || { cat err.txt; fail "Grok-1 head size"; }
$GROK logits -m g1.gguf --ids 5,17 -o g1.f32 || fail "logits on g1"
echo "ok   Grok-1's layout: head size 128 = 6144 / 48 with no flags"
echo "PASS"
