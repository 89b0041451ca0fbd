#!/bin/bash
# gguf_layouts_test.sh - model files in the layouts people download, each
# of which must give bit-identical `grok logits` to the plain file:
#  - raw pieces meant to be concatenated (NAME.gguf.part1of3,
#    part01of12, NAME.gguf-split-a / -aa), cut by coreutils `split`, both
#    at page multiples (mapped at consecutive addresses, in place) and not
#    (tensors crossing a boundary read into memory); a missing, short or
#    later piece is an error that names the piece;
#  - gguf-split shards written by llama.cpp's llama-gguf-split, when built;
#  - experts as one tensor per expert (blk.N.ffn_gate.E.weight), as
#    llama.cpp wrote MoE files before it merged them (Arki05's Grok-1
#    GGUFs), back to back and interleaved;
#  - each memory plan (expert cache, packed, mmap) on those layouts;
#  - `grok info`: llama.cpp's name of general.file_type (a llama-quantize
#    Q3_K_M file, when built), counts and bytes per type, a type nothing
#    computes naming itself and its tensor, a type number this build does
#    not know named in the error.
set -u
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
PY=/usr/bin/python3
$PY -c "import numpy" 2>/dev/null || { echo "SKIP: python3-numpy not installed"; exit 77; }
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
RW="$PY $GROK_SRC/tests/gguf_rewrite.py"
LLAMA=${LLAMA_BIN:-/work/llama/build/bin}
IDS=5,17,200,3,42,299,100,0,7
fail() { echo "FAIL: $*"; exit 1; }
PAGE=$(getconf PAGESIZE)

"$GROK" new -o m.gguf --force --vocab 300 --d-model 128 --layers 2 --heads 4 --kv-heads 2 --experts 4 \
    --experts-used 2 --ffn 128 --type q8_0 --seed 3 2>/dev/null || fail "grok new"
"$GROK" logits -m m.gguf --ids $IDS -o ref.f32 || fail "logits of the whole file"
SIZE=$(stat -c %s m.gguf)

same() { # LABEL MODEL
    "$GROK" logits -m "$2" --ids $IDS -o got.f32 2> err.txt || { cat err.txt; fail "$1: logits"; }
    cmp -s ref.f32 got.f32 || fail "$1: logits differ from the whole file's"
}

# pieces: cut NAME into pieces of BYTES named by a function of (index, count)
cut() { # BYTES PREFIX_FOR_split
    rm -rf p && mkdir p && split -b "$1" -d -a 3 m.gguf p/x || fail "split"
}
name_parts() { # WIDTH: p/x000.. -> p/m.gguf.partKofN
    local n i=1 f
    n=$(ls p | wc -l)
    for f in $(ls p | sort); do mv "p/$f" "$(printf "p/m.gguf.part%0${1}dof%d" $i "$n")"; i=$((i + 1)); done
    echo "$n"
}

cut $((PAGE * 8)); n=$(name_parts 1)
[ "$n" -ge 3 ] || fail "only $n pieces"
same "$n pieces of $((PAGE * 8)) bytes" p/m.gguf.part1of$n
"$GROK" info p/m.gguf.part1of$n --no-tensors > info.txt || fail "info on pieces"
grep -q "^pieces: $n raw pieces mapped as one file, in place" info.txt || { head -3 info.txt; fail "info: pieces"; }
echo "ok   $n page-multiple pieces (.partKofN): mapped in place, same logits"

cut 10007; n=$(name_parts 1)
same "$n pieces of 10007 bytes" p/m.gguf.part1of$n
"$GROK" info p/m.gguf.part1of$n --no-tensors > info.txt || fail "info on unaligned pieces"
grep -q "^pieces: $n raw pieces read as one file; .* MiB of tensors crossing piece boundaries were read" info.txt \
    || { head -3 info.txt; fail "info: unaligned pieces"; }
echo "ok   $n pieces of 10007 bytes: same logits ($(sed -n 's/.*, so \(.* MiB\) of.*/\1/p' info.txt) copied)"

# errors: a later piece, a missing piece, a short last piece
"$GROK" logits -m p/m.gguf.part2of$n --ids 5 -o x.f32 2> err.txt && fail "a later piece accepted"
grep -q "a piece after the first; give the first, p/m.gguf.part1of$n" err.txt || { cat err.txt; fail "later piece message"; }
mv p/m.gguf.part3of$n p/gone
"$GROK" logits -m p/m.gguf.part1of$n --ids 5 -o x.f32 2> err.txt
[ $? -eq 1 ] || fail "a missing piece: exit 1 expected"
grep -q "p/m.gguf.part3of$n: piece 3 of $n is missing" err.txt || { cat err.txt; fail "missing piece message"; }
mv p/gone p/m.gguf.part3of$n
truncate -s -100 p/m.gguf.part${n}of$n
"$GROK" logits -m p/m.gguf.part1of$n --ids 5 -o x.f32 2> err.txt && fail "a short last piece accepted"
grep -q "runs past the end of the file .* in all pieces, up to p/m.gguf.part${n}of$n: a piece is missing or short" \
    err.txt || { cat err.txt; fail "short piece message"; }
echo "ok   a later, a missing and a short piece are refused, naming the piece"

# zero-padded numbers, and the -split-a / -split-aa letter styles
cut $(( (SIZE + 11) / 12 )); n=$(name_parts 2)
[ "$n" -ge 10 ] || fail "only $n pieces for two-digit names"
same "part01of$n" "p/m.gguf.part01of$n"
rm -rf p && mkdir p && split -b $((PAGE * 8)) -a 1 m.gguf p/m.gguf-split- || fail "split -a 1"
same "-split-a" p/m.gguf-split-a
rm -rf p && mkdir p && split -b 9999 m.gguf p/m.gguf-split- || fail "split"
same "-split-aa" p/m.gguf-split-aa
echo "ok   .part01ofN, -split-a and -split-aa pieces: same logits"

# gguf-split shards from llama.cpp's own tool
if [ -x "$LLAMA/llama-gguf-split" ]; then
    "$LLAMA/llama-gguf-split" --split --split-max-tensors 8 m.gguf sh > split.log 2>&1 \
        || { cat split.log; fail "llama-gguf-split"; }
    shards=$(ls sh-000*-of-*.gguf | wc -l)
    same "$shards llama-gguf-split shards" "$(ls sh-00001-of-*.gguf)"
    echo "ok   $shards shards from llama-gguf-split: same logits"
else
    echo "skip llama-gguf-split not built at $LLAMA"
fi

# experts one tensor per expert, as before llama.cpp's merge (PR #6387)
$RW old-experts m.gguf old_kind.gguf --order bykind > /dev/null || fail "rewrite bykind"
$RW old-experts m.gguf old_inter.gguf --order interleaved > /dev/null || fail "rewrite interleaved"
"$GROK" info old_inter.gguf | grep -q "blk.1.ffn_down.3.weight" || fail "the rewrite has no per-expert tensors"
same "per-expert tensors back to back" old_kind.gguf
same "per-expert tensors interleaved" old_inter.gguf
echo "ok   per-expert tensor names (blk.N.ffn_gate.E.weight), back to back and interleaved: same logits"

# the memory plans (docs/memory.md) on these layouts: the expert cache reads
# each expert from the file it lies in (a piece, a shard; a read crossing
# into the next piece; the tensors copied across unaligned pieces from
# memory; per-expert tensors through their table), and the packed file of
# an interleaved per-expert file: the bits of the plain file's packed run
FAST="--kernels fast --threads 2"
"$GROK" logits -m m.gguf --ids $IDS -o ref_fast.f32 $FAST --mem-plan packed --pack-file none 2>/dev/null ||
    fail "packed logits"
"$GROK" logits -m m.gguf --ids $IDS -o ref_mmap.f32 $FAST --mem-plan mmap 2>/dev/null || fail "mmap logits"
plan_same() { # LABEL MODEL REF FLAGS...
    local label=$1 model=$2 ref=$3
    shift 3
    "$GROK" logits -m "$model" --ids $IDS -o got.f32 $FAST "$@" 2> err.txt || { cat err.txt; fail "$label: logits"; }
    cmp -s "$ref" got.f32 || { cat err.txt; fail "$label: logits differ from the plain file's"; }
}
cache_same() { # LABEL MODEL
    plan_same "$1, expert cache" "$2" ref_fast.f32 --mem-plan cache --cache-slots 3
    grep -q "memory plan: expert-cache; .* experts in 3 of 8 slots" err.txt || { cat err.txt; fail "$1: cache plan"; }
    plan_same "$1, packed" "$2" ref_fast.f32 --mem-plan packed
    plan_same "$1, mmap" "$2" ref_mmap.f32 --mem-plan mmap
}
cut $((PAGE * 8)); n=$(name_parts 1)
cache_same "$n page-multiple pieces" p/m.gguf.part1of$n
cut 10007; n=$(name_parts 1)
cache_same "$n pieces of 10007 bytes" p/m.gguf.part1of$n
if [ -x "$LLAMA/llama-gguf-split" ]; then cache_same "llama-gguf-split shards" "$(ls sh-00001-of-*.gguf)"; fi
cache_same "per-expert tensors back to back" old_kind.gguf
cache_same "per-expert tensors interleaved" old_inter.gguf
"$GROK" pack old_inter.gguf > pack.log 2>&1 || { cat pack.log; fail "grok pack of the interleaved file"; }
plan_same "the interleaved file's packed file, expert cache" old_inter.gguf ref_fast.f32 --mem-plan cache --cache-slots 3
grep -q "reads of the packed file" err.txt || { cat err.txt; fail "the cache does not read the interleaved file's packed file"; }
plan_same "the interleaved file's packed file, packed plan" old_inter.gguf ref_fast.f32 --mem-plan packed
grep -q "mapped from the packed file" err.txt || { cat err.txt; fail "packed plan: packed file not mapped"; }
echo "ok   expert cache (3 of 8 slots), packed and mmap plans on pieces, shards, per-expert tensors and a packed file: same logits"

# grok info: file type, types, a type nothing computes, an unknown number
"$GROK" info m.gguf --no-tensors > info.txt || fail "info"
grep -q "^file type: Q8_0 (general.file_type 7)" info.txt || { cat info.txt; fail "file type line"; }
grep -Eq "^  q8_0 +15 " info.txt || { cat info.txt; fail "q8_0 count"; }
grep -Eq "^  f32 +11 " info.txt || { cat info.txt; fail "f32 count"; }
$RW add-tensor m.gguf i32.gguf extra.counts 26 8 || fail "rewrite add-tensor"
"$GROK" info i32.gguf --no-tensors > info.txt || fail "info with an i32 tensor"
grep -Eq "^  i32 +1 .* not computable by this build \(first: extra.counts\)" info.txt || { cat info.txt; fail "i32 line"; }
$RW add-tensor m.gguf t43.gguf future.weight 43 64 || fail "rewrite type 43"
"$GROK" info t43.gguf > info.txt 2> err.txt && fail "type 43 accepted"
grep -q "tensor 26 'future.weight': type 43 is not one this build knows (newer than this build)" err.txt \
    || { cat err.txt; fail "type 43 message"; }
if [ -x "$LLAMA/llama-quantize" ]; then
    "$GROK" new -o f.gguf --force --vocab 300 --d-model 256 --layers 2 --heads 4 --kv-heads 2 --experts 4 \
        --experts-used 2 --ffn 256 --type f32 2>/dev/null || fail "grok new f32"
    "$LLAMA/llama-quantize" f.gguf q3.gguf Q3_K_M > q.log 2>&1 || { tail q.log; fail "llama-quantize"; }
    # every type of the mix is computed (q3_K, q4_K, ...): info loads it as a model
    "$GROK" info q3.gguf --no-tensors > info.txt 2>&1 || { cat info.txt; fail "info on the Q3_K_M file"; }
    grep -q "^file type: Q3_K_M (general.file_type 12)" info.txt || { cat info.txt; fail "Q3_K_M name"; }
    grep -Eq "^  q3_K +[0-9]+ " info.txt || { cat info.txt; fail "q3_K row"; }
    ! grep -q "not computable" info.txt || { cat info.txt; fail "Q3_K_M: a type said not computable"; }
    echo "ok   llama-quantize's Q3_K_M file: $(grep '^file type' info.txt)"
else
    echo "skip llama-quantize not built at $LLAMA"
fi
echo "ok   grok info: file type names, counts and bytes per type, uncomputable and unknown types named"
echo "PASS"
