#!/bin/bash
# lora_layouts_test.sh - LoRA over the model layouts and memory plans of
# bigger-than-RAM inference (docs/memory.md): a file whose experts are one
# tensor each, interleaved (blk.N.ffn_gate.E.weight, Arki05's Grok-1
# GGUFs), must train the same adapter bytes as the plain file (the trainer
# reads each expert where it lies), give the same logits with --lora
# unmerged (exact kernels; and fast kernels under the expert cache and the
# packed plan, against the plain file's packed run), and merge into a file
# with the same logits as the plain file's merge. Every adapter target is
# trained, the router and the experts included, and each result is checked
# to differ from the base's, so an adapter left out cannot pass.
set -u
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
PY=/usr/bin/python3
$PY -c "import numpy" 2>/dev/null || { echo "SKIP: python3-numpy not installed"; exit 77; }
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP/plain" "$GROK_TMP/old" && cd "$GROK_TMP" || exit 1
IDS=5,17,200,3,42,299,100,0,7
fail() { echo "FAIL: $*"; exit 1; }

# the same file name in two folders: the adapter records its base's name
"$GROK" new -o plain/m.gguf --force --vocab 300 --d-model 128 --layers 2 --heads 4 --kv-heads 2 --experts 4 \
    --experts-used 2 --ffn 128 --type q8_0 --seed 3 2>/dev/null || fail "grok new"
$PY "$GROK_SRC/tests/gguf_rewrite.py" old-experts plain/m.gguf old/m.gguf --order interleaved > /dev/null ||
    fail "rewrite to per-expert tensors"
"$GROK" info old/m.gguf | grep -q "blk.1.ffn_down.3.weight" || fail "the rewrite has no per-expert tensors"
head -c 3000 "$GROK_SRC/tests/fixtures/lora-text.txt" > text.txt || fail "training text"
TRAIN=(--lora 2 --lora-targets all,router --data ../text.txt --steps 2 --batch 2 --seq 16 --threads 2
    --seed 1)
for d in plain old; do
    (cd $d && "$GROK" train --init m.gguf "${TRAIN[@]}" -o ../$d.lora.gguf 2> ../train_$d.log) ||
        { cat train_$d.log; fail "grok train --lora on the $d file"; }
done
cmp -s plain.lora.gguf old.lora.gguf || fail "the per-expert file trains another adapter than the plain file"
echo "ok   the per-expert file trains the plain file's adapter, byte for byte"

logits() { # OUT MODEL FLAGS...
    local out=$1 model=$2
    shift 2
    "$GROK" logits -m "$model" --ids $IDS -o "$out" "$@" 2> err.txt || { cat err.txt; fail "logits $model $*"; }
}
logits base.f32 plain/m.gguf
logits plain.f32 plain/m.gguf --lora plain.lora.gguf
logits old.f32 old/m.gguf --lora plain.lora.gguf
cmp -s base.f32 plain.f32 && fail "--lora does not change the logits"
cmp -s plain.f32 old.f32 || fail "--lora: the per-expert file's logits differ from the plain file's"
echo "ok   --lora (unmerged, exact kernels): the per-expert file gives the plain file's logits"

FAST=(--kernels fast --threads 2)
logits base_fast.f32 plain/m.gguf "${FAST[@]}" --mem-plan packed --pack-file none
logits ref_fast.f32 plain/m.gguf --lora plain.lora.gguf "${FAST[@]}" --mem-plan packed --pack-file none
cmp -s base_fast.f32 ref_fast.f32 && fail "--lora does not change the fast logits"
logits got.f32 old/m.gguf --lora plain.lora.gguf "${FAST[@]}" --mem-plan cache --cache-slots 3
grep -q "memory plan: expert-cache; .* experts in 3 of 8 slots" err.txt || { cat err.txt; fail "cache plan"; }
cmp -s ref_fast.f32 got.f32 || fail "--lora under the expert cache differs from the packed run"
logits got.f32 old/m.gguf --lora plain.lora.gguf "${FAST[@]}" --mem-plan packed --pack-file none
cmp -s ref_fast.f32 got.f32 || fail "--lora on the per-expert file's packed plan differs from the plain file's"
echo "ok   --lora under the expert cache (3 of 8 slots) and the packed plan: the plain file's packed logits"

for d in plain old; do
    "$GROK" merge $d/m.gguf plain.lora.gguf --type f32 -o merged_$d.gguf 2> err.txt ||
        { cat err.txt; fail "grok merge into the $d file"; }
    logits merged_$d.f32 merged_$d.gguf
done
cmp -s base.f32 merged_plain.f32 && fail "the merge did not change the logits"
cmp -s merged_plain.f32 merged_old.f32 || fail "merged into the per-expert file: logits differ from the plain merge"
"$GROK" info merged_old.gguf | grep -q "blk.1.ffn_down.3.weight" || fail "the merge lost the per-expert layout"
echo "ok   grok merge into the per-expert file: its tensors, the plain merge's logits"
echo "PASS"
