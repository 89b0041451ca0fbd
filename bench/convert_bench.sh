#!/bin/bash
# convert_bench.sh - `grok convert` throughput against a plain sequential
# read (cat) of the same checkpoint files, both with the files in the page
# cache (dropping it needs root), and the peak RSS of the conversion.
# usage: bench/convert_bench.sh [LAYERS] [D_MODEL] [FFN] [TYPE]
#   default 24 layers of d_model 512, ffn 1024 (~300 MB of checkpoint)
set -eu
GROK=${GROK:-build/grok}
SRC=$(cd "$(dirname "$0")/.." && pwd)
L=${1:-24} D=${2:-512} F=${3:-1024} T=${4:-q8_0}
TMP=${GROK_TMP:-/tmp/grok_convert_bench}
mkdir -p "$TMP"
HD=64 H=$((D / 64))
if [ ! -f "$TMP/tok.model" ]; then
    cat "$SRC"/src/*/*.c > "$TMP/text.txt"
    spm_train --input="$TMP/text.txt" --model_prefix="$TMP/tok" --vocab_size=400 --model_type=bpe \
        --byte_fallback=true --normalization_rule_name=identity --pad_id=0 --bos_id=1 --eos_id=2 \
        --unk_id=3 --minloglevel=2 >/dev/null 2>&1
fi
CK="$TMP/ckpt-L$L-D$D-F$F"
[ -d "$CK" ] || /usr/bin/python3 "$SRC/tests/gen_checkpoint.py" write "$CK" --vocab 400 \
    --layers "$L" --d-model "$D" --heads "$H" --kv-heads 2 --head-dim $HD --ffn "$F" >/dev/null
BYTES=$(cat "$CK"/* | wc -c)
cat "$CK"/* > /dev/null # warm the page cache
t0=$(date +%s.%N); cat "$CK"/* > /dev/null; t1=$(date +%s.%N)
rm -f "$TMP/out.gguf"
/usr/bin/time -f "%M" -o "$TMP/rss.txt" "$GROK" convert "$CK" --tokenizer "$TMP/tok.model" \
    -o "$TMP/out.gguf" --type "$T" --heads "$H" --kv-heads 2 --head-dim $HD --force 2>/dev/null
t2=$(date +%s.%N)
/usr/bin/python3 - "$BYTES" "$t0" "$t1" "$t2" "$(cat "$TMP/rss.txt")" "$T" <<'PYEOF'
import sys
b, t0, t1, t2, rss, ty = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5]), sys.argv[6]
cat, conv = b / (t1 - t0), b / (t2 - t1)
full = 296 * 2**30
print("checkpoint %.1f MB: cat %.0f MB/s, grok convert --type %s %.0f MB/s (%.0f%% of cat), "
      "peak RSS %.1f MB" % (b / 1e6, cat / 1e6, ty, conv / 1e6, 100 * conv / cat, rss / 1024))
print("full Grok-1 (296 GiB) at this rate: %.1f min (cat: %.1f min)" % (full / conv / 60, full / cat / 60))
PYEOF
rm -f "$TMP/out.gguf"
