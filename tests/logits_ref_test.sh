#!/bin/bash
# logits_ref_test.sh - the C engine's logits against the independent float64
# NumPy reference (tests/ref/grok_ref.py) on random tiny Grok models.
#
# Every configuration is made twice, by the C writer (`grok new`) and by the
# Python writer (tests/ref/make_model.py), so the loader is also tested on
# files it did not write. The matrix covers GQA ratios 1/2/4, 4..8 experts
# with 1..3 used, 1..3 layers, f32/f16/bf16/q8_0 weights, q4_K/q5_K/q6_K
# ones re-encoded by grok quantize or encoded by the Python writer, every
# type grok.c only decodes (q2_K, q3_K, iq4_xs, ... with llama-quantize's
# 32-block fallbacks mixed in) encoded by the Python writer (most also
# decoded to f32 by grok quantize), the i-quants IQ2_XXS ... IQ1_M encoded
# by the Python writer (and decoded to f32 by grok quantize), a head
# size other than d_model/heads, a separate output head, PAD tokens inside
# the ids (and at position 0), non-default scale keys, and one model scaled so that the
# known near-misses (erf GELU, renormalised gates, no soft cap) show.
# Weights of every type are dequantized from the same stored bytes on both
# sides, so all must agree to 1e-4 (row error max|c - ref| / max|ref|, maximum over positions). The f16
# KV cache must stay within 1e-2, and prompt batch sizes must not change the
# result beyond 1e-5.
set -u
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "SKIP: $PY has no numpy"
    exit 77
fi
: "${GROK:?GROK not set}" "${GROK_SRC:?GROK_SRC not set}" "${GROK_TMP:?GROK_TMP not set}"
REF="$GROK_SRC/tests/ref"
T="$GROK_TMP"
rm -rf "$T" && mkdir -p "$T"
fails=0

fail() {
    echo "FAIL $*"
    fails=$((fails + 1))
}

# cmp_c LABEL A B TOL: two C outputs agree (same error measure as grok_ref.py).
cmp_c() {
    "$PY" - "$@" <<'EOF'
import sys
import numpy as np
label, fa, fb, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
a = np.fromfile(fa, dtype="<f4").astype(np.float64)
b = np.fromfile(fb, dtype="<f4").astype(np.float64)
if a.size != b.size or a.size == 0:
    print("FAIL %s: sizes %d vs %d" % (label, a.size, b.size))
    sys.exit(1)
# Rows are positions; the vocab is the size of the first row that a
# header-less file cannot tell, so compare per-row on the known count.
n = int(sys.argv[5])
a = a.reshape(n, -1)
b = b.reshape(n, -1)
err = np.max(np.abs(a - b), axis=1) / np.maximum(np.max(np.abs(a), axis=1), 1e-30)
w = int(np.argmax(err))
ok = err[w] <= tol
print("%s %s: max rel err %.3e (tol %.1e) at position %d" % ("ok  " if ok else "FAIL", label, err[w], tol, w))
sys.exit(0 if ok else 1)
EOF
}

# run_config NAME "IDS" WRITER-ARGS...: C-written and Python-written models.
run_config() {
    local name="$1" ids="$2"
    shift 2
    local n_ids
    n_ids=$(echo "$ids" | tr ',' '\n' | wc -l)
    for writer in ${WRITERS:-c py}; do
        local m="$T/$name.$writer.gguf" out="$T/$name.$writer.f32" label="$name [$writer writer]"
        local args=("$@")
        if [ "$writer" = c ]; then
            # The C writer has no flags for the scale keys; drop them.
            local cargs=() skip=0
            for a in "${args[@]}"; do
                if [ $skip = 1 ]; then skip=0; continue; fi
                case "$a" in
                    --attn-scale|--softcap|--qk-gain|--logit-scale|--embedding-scale|--gelu-gain|--expert-gain) skip=1 ;;
                    *) cargs+=("$a") ;;
                esac
            done
            if ! "$GROK" new -o "$m" "${cargs[@]}" >"$T/new.log" 2>&1; then
                fail "$label: grok new ${cargs[*]}"; cat "$T/new.log"; continue
            fi
        else
            if ! "$PY" "$REF/make_model.py" -o "$m" "${args[@]}" >"$T/new.log" 2>&1; then
                fail "$label: make_model.py ${args[*]}"; cat "$T/new.log"; continue
            fi
        fi
        if [ -n "${QUANT:-}" ]; then
            # re-encoded by grok quantize: the reference decodes the stored
            # k-quant bytes with its own NumPy decoders
            if ! "$GROK" quantize "$m" "$m.$QUANT" "$QUANT" --pure --force >"$T/quant.log" 2>&1; then
                fail "$label: grok quantize $QUANT"; cat "$T/quant.log"; continue
            fi
            m="$m.$QUANT" label="$label $QUANT"
        fi
        if ! "$GROK" logits -m "$m" --ids "$ids" -o "$out" >"$T/logits.log" 2>&1; then
            fail "$label: grok logits"; cat "$T/logits.log"; continue
        fi
        "$PY" "$REF/grok_ref.py" "$m" --ids "$ids" --compare "$out" --tol 1e-4 --label "$label" \
            || fails=$((fails + 1))
        if [ -n "${DEQUANT:-}" ]; then
            # grok quantize's decoder: the file re-encoded as f32 must give
            # the stored type's reference logits
            if "$GROK" quantize "$m" "$m.f32" f32 --pure --force >"$T/quant.log" 2>&1 &&
                "$GROK" logits -m "$m.f32" --ids "$ids" -o "$out.f32" >"$T/logits.log" 2>&1; then
                "$PY" "$REF/grok_ref.py" "$m" --ids "$ids" --compare "$out.f32" --tol 1e-4 \
                    --label "$label decoded to f32 by grok quantize" || fails=$((fails + 1))
            else
                fail "$label: grok quantize to f32 or its logits"; cat "$T/quant.log" "$T/logits.log"
            fi
        fi
        if [ -n "${KVF16:-}" ]; then
            if "$GROK" logits -m "$m" --ids "$ids" --kv-type f16 -o "$out.kv16" >"$T/logits.log" 2>&1; then
                "$PY" "$REF/grok_ref.py" "$m" --ids "$ids" --compare "$out.kv16" --tol 1e-2 \
                    --label "$label kv f16" || fails=$((fails + 1))
            else
                fail "$label: grok logits --kv-type f16"; cat "$T/logits.log"
            fi
        fi
        if [ -n "${BATCHES:-}" ]; then
            for b in $BATCHES; do
                if "$GROK" logits -m "$m" --ids "$ids" --batch "$b" -o "$out.b$b" >"$T/logits.log" 2>&1; then
                    cmp_c "$label batch $b vs full" "$out" "$out.b$b" 1e-5 "$n_ids" || fails=$((fails + 1))
                else
                    fail "$label: grok logits --batch $b"; cat "$T/logits.log"
                fi
            done
        fi
    done
}

IDS_A="5,17,200,5,17,42,42,99,5,250,17,3"
IDS_B="9,9,9,130,131,132,9,255,7,60,61,62,63,9,130,200,1,2"
IDS_PAD="12,40,0,41,12,0,0,77,40,12"
IDS_PAD0="0,33,34,0,33,35,36"

base="--d-model 64 --vocab 260"
# shellcheck disable=SC2086
{
KVF16=1 BATCHES="1 5" run_config gqa1_f32 "$IDS_A" $base --layers 1 --heads 4 --kv-heads 4 --experts 4 --experts-used 1 --ffn 64 --type f32 --seed 1
run_config gqa2_f16 "$IDS_B" $base --layers 2 --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 96 --type f16 --seed 2
BATCHES="1" run_config gqa4_bf16 "$IDS_A" $base --layers 3 --heads 8 --kv-heads 2 --experts 8 --experts-used 3 --ffn 64 --type bf16 --seed 3
KVF16=1 run_config gqa2_q8_0 "$IDS_B" $base --layers 2 --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 128 --type q8_0 --seed 4
run_config headdim32_f32 "$IDS_A" $base --layers 2 --heads 4 --kv-heads 2 --head-dim 32 --experts 4 --experts-used 2 --ffn 64 --type f32 --seed 5
BATCHES="3" run_config untied_q8_0 "$IDS_B" $base --layers 2 --heads 8 --kv-heads 4 --head-dim 8 --experts 4 --experts-used 1 --ffn 64 --type q8_0 --untied --seed 6
run_config untied_bf16 "$IDS_A" $base --layers 1 --heads 4 --kv-heads 1 --experts 8 --experts-used 2 --ffn 64 --type bf16 --untied --seed 7
run_config pad_f32 "$IDS_PAD" $base --layers 2 --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 64 --type f32 --seed 8
BATCHES="1" run_config pad0_f16 "$IDS_PAD0" $base --layers 2 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 --ffn 64 --type f16 --seed 9
run_config scales_f32 "$IDS_B" $base --layers 2 --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 64 --type f32 --seed 10 --attn-scale 0.5 --softcap 8 --qk-gain 2 --logit-scale 1.3 --embedding-scale 3
# k-quants (grok quantize of either writer's f32 model): d_model 256 so
# the matrices take 256-blocks; ffn 160 leaves the expert down matrices
# (160 columns) to q8_0, so one file mixes k-quant, q8_0 and f32 tensors.
kq="--d-model 256 --vocab 260 --layers 2 --heads 4 --kv-heads 2 --experts 4 --experts-used 2"
QUANT=q4_K BATCHES="3" run_config kq_q4_K "$IDS_A" $kq --ffn 160 --type f32 --seed 21
QUANT=q5_K run_config kq_q5_K "$IDS_B" $kq --ffn 256 --type f32 --seed 22
QUANT=q6_K KVF16=1 run_config kq_q6_K "$IDS_PAD" $kq --ffn 256 --type f32 --untied --seed 23
# k-quant bytes from make_model.py's own NumPy encoder (the C writer has no
# k-quant flag): the loader and kernels on blocks the C encoder did not choose
WRITERS=py run_config kqpy_q4_K "$IDS_B" $kq --ffn 256 --type q4_K --seed 24
WRITERS=py run_config kqpy_q5_K "$IDS_A" $kq --ffn 256 --type q5_K --untied --seed 25
WRITERS=py run_config kqpy_q6_K "$IDS_B" $kq --ffn 256 --type q6_K --seed 26
# The types grok.c only decodes (src/kernels/qtypes.h), in bytes from the
# Python writer's own NumPy encoders: d_model 256 so every type's blocks
# divide the rows; q2_K, q3_K and iq4_xs with ffn 160 and heads*head_dim
# 128 mix in llama-quantize's 32-block fallbacks (q4_0, q4_0, iq4_nl) for
# ffn_down and attn_output. DEQUANT: also decoded to f32 by grok quantize.
qt="--d-model 256 --vocab 260 --layers 1 --heads 4 --kv-heads 2 --experts 4 --experts-used 2"
WRITERS=py DEQUANT=1 run_config qt_q2_K "$IDS_A" $qt --ffn 160 --type q2_K --fallback q4_0 --seed 41
WRITERS=py DEQUANT=1 run_config qt_q3_K "$IDS_B" $qt --ffn 256 --head-dim 32 --type q3_K --fallback q4_0 --untied --seed 42
WRITERS=py DEQUANT=1 run_config qt_iq4_xs "$IDS_PAD" $qt --ffn 160 --type iq4_xs --fallback iq4_nl --seed 43
WRITERS=py run_config qt_q4_1 "$IDS_A" $qt --ffn 96 --type q4_1 --seed 44
WRITERS=py run_config qt_q5_0 "$IDS_B" $qt --ffn 96 --type q5_0 --seed 45
WRITERS=py DEQUANT=1 run_config qt_q5_1 "$IDS_A" $qt --ffn 96 --type q5_1 --untied --seed 46
WRITERS=py run_config qt_iq4_nl "$IDS_B" $qt --ffn 96 --type iq4_nl --seed 47
WRITERS=py DEQUANT=1 run_config qt_tq1_0 "$IDS_A" $qt --ffn 256 --type tq1_0 --seed 48
WRITERS=py run_config qt_tq2_0 "$IDS_B" $qt --ffn 256 --type tq2_0 --seed 49
WRITERS=py DEQUANT=1 run_config qt_mxfp4 "$IDS_A" $qt --ffn 96 --type mxfp4 --seed 50
WRITERS=py DEQUANT=1 run_config qt_nvfp4 "$IDS_B" $qt --ffn 192 --type nvfp4 --seed 51
WRITERS=py DEQUANT=1 run_config qt_q1_0 "$IDS_A" $qt --ffn 128 --type q1_0 --seed 52
WRITERS=py BATCHES="3" run_config qt_q2_0 "$IDS_B" $qt --ffn 192 --type q2_0 --seed 53
# i-quants, which grok.c reads but does not write: bytes from make_model.py's
# NumPy encoder (tests/ref/iq_encode.py), decoded by tests/ref/iq_ref.py;
# each also decoded to f32 by grok quantize
WRITERS=py DEQUANT=1 BATCHES="3" run_config iq_iq2_xxs "$IDS_A" $kq --ffn 256 --type iq2_xxs --seed 41
WRITERS=py DEQUANT=1 run_config iq_iq2_xs "$IDS_B" $kq --ffn 256 --type iq2_xs --untied --seed 42
WRITERS=py DEQUANT=1 run_config iq_iq2_s "$IDS_PAD" $kq --ffn 512 --type iq2_s --seed 43
WRITERS=py DEQUANT=1 KVF16=1 run_config iq_iq3_xxs "$IDS_A" $kq --ffn 256 --type iq3_xxs --seed 44
WRITERS=py DEQUANT=1 run_config iq_iq3_s "$IDS_B" $kq --ffn 256 --type iq3_s --untied --seed 45
WRITERS=py DEQUANT=1 run_config iq_iq1_s "$IDS_A" $kq --ffn 256 --type iq1_s --seed 46
WRITERS=py DEQUANT=1 BATCHES="1" run_config iq_iq1_m "$IDS_PAD" $kq --ffn 256 --type iq1_m --seed 47
# Scaled so that erf GELU, renormalised gates, a missing soft cap and the
# like all move these logits by more than 1e-4 (tests/ref/selfcheck.py
# checks that on the reference); the C writer has no flags for it.
WRITERS=py run_config sensitive_f32 "$IDS_PAD" $base --layers 2 --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 64 --type f32 --seed 31 --embedding-scale 0.1 --attn-scale 0.5 --softcap 8 --qk-gain 2 --gelu-gain 2.5 --expert-gain 0.03
}

if [ "$fails" -ne 0 ]; then
    echo "$fails comparison(s) failed"
    exit 1
fi
echo "all logits comparisons passed"
