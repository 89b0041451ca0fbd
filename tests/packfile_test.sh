#!/usr/bin/env bash
# packfile_test.sh - the packed file beside a model (grok pack, grok
# quantize --pack): a run that finds it maps it instead of packing, with
# logits the same bits as packing at start (fast kernels) and almost no
# anonymous memory for the weights; a packed file of another version of
# the model (touched, rewritten), a damaged one and a foreign file are
# refused with a notice naming what differs, and the run packs as before;
# grok pack refuses to replace a file without --force.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
. "${GROK_SRC:?}/tests/lib.sh"

"$GROK" new -o m.gguf --d-model 128 --layers 2 --heads 4 --kv-heads 2 --experts 4 --ffn 256 --type q8_0 \
    --vocab 300 --seed 7 2>/dev/null || { bad "grok new"; exit 1; }
ids=$(seq 3 5 120 | paste -sd,)
run() { "$GROK" logits -m m.gguf --ids "$ids" -o "$1" --kernels fast --threads 2 --mem-plan packed "${@:2}"; }

run ref.bin --pack-file none 2>ref.err || bad "logits without a packed file: $(cat ref.err)"
"$GROK" pack m.gguf 2>pack.err && [ -s m.gguf.grokpack ] && ok "grok pack writes m.gguf.grokpack" ||
    bad "grok pack: $(cat pack.err)"
"$GROK" pack m.gguf 2>again.err; [ $? = 1 ] && grep -q "exists" again.err && ok "an existing packed file is kept without --force" ||
    bad "pack over an existing file: $(cat again.err)"
run got.bin 2>got.err || bad "logits with the packed file: $(cat got.err)"
grep -q "mapped from the packed file" got.err && ok "the packed file is found and mapped" || bad "plan: $(cat got.err)"
cmp -s ref.bin got.bin && ok "mapped packed weights give the bits of packing at start" || bad "logits differ"
"$GROK" bench -m m.gguf -p 4 -n 4 --threads 2 --check 0 --no-stream --json --mem-limit none >b.json 2>/dev/null
/usr/bin/python3 -c 'import json,sys; j=json.load(open("b.json")); sys.exit(0 if j["rss_anon_mb"] < j["packed_mb"] + 64 and j["rss_file_mb"] > 0 else 1)' 2>/dev/null &&
    ok "mapped: the packed weights are file pages, not anonymous memory" || bad "rss: $(head -c 300 b.json)"

# the same model bytes, another mtime: refused, named
touch -d '2001-02-03' m.gguf
run t.bin 2>t.err || bad "logits after touch: $(cat t.err)"
grep -q "packed file not used: .*modification time" t.err && cmp -s ref.bin t.bin &&
    ok "a packed file of another mtime is refused (named) and the run packs" || bad "after touch: $(cat t.err)"
"$GROK" pack m.gguf --force 2>/dev/null
# a rewritten model (another seed, same shapes and size), even given the
# first one's mtime: the header or the sampled data differ
touch -r m.gguf stamp
"$GROK" new -o m.gguf --force --d-model 128 --layers 2 --heads 4 --kv-heads 2 --experts 4 --ffn 256 --type q8_0 \
    --vocab 300 --seed 8 2>/dev/null
touch -r stamp m.gguf
run r.bin 2>r.err
grep -q "packed file not used: .*its \(header and tensor table\|sampled data\) differs" r.err && ok "a packed file of a rewritten model is refused: $(grep -o 'its [a-z ]* differs' r.err)" ||
    bad "rewritten model: $(cat r.err)"
# damage and foreign files
"$GROK" pack m.gguf --force 2>/dev/null
printf 'XXXX' | dd of=m.gguf.grokpack bs=1 seek=0 conv=notrunc status=none
run d.bin 2>d.err
grep -q "packed file not used: .*byte 0: bad magic" d.err && ok "a damaged header is refused at byte 0" || bad "damaged: $(cat d.err)"
run e.bin --pack-file /dev/null 2>e.err
grep -q "packed file not used" e.err && ok "a foreign --pack-file is refused" || bad "foreign: $(cat e.err)"
# quantize --pack
"$GROK" quantize m.gguf q.gguf q4_0 --pack 2>q.err && [ -s q.gguf.grokpack ] && ok "quantize --pack writes q.gguf.grokpack" ||
    bad "quantize --pack: $(cat q.err)"
"$GROK" pack --help | grep -q "usage: grok pack" && ok "grok pack --help" || bad "grok pack --help"
"$GROK" pack 2>/dev/null; [ $? = 2 ] && ok "grok pack without a model exits 2" || bad "grok pack without a model"
"$GROK" pack nothere.gguf 2>/dev/null; [ $? = 1 ] && ok "grok pack of a missing file exits 1" || bad "missing file"

summary packfile_test
