#!/bin/bash
# convert_bench.sh - `grok convert` throughput against a plain sequential
# read (cat) of the same checkpoint files, both with the files in the page
# cache (dropping it needs root), and the peak RSS of the conversion. As a
# second yardstick it times a copy of the same files into one file followed
# by fdatasync: the least any program must spend that reads the checkpoint
# and durably writes as much (the converter writes ~5% more for q8_0, and
# must fsync for its atomic rename). The three are run side by side REPS
# times, interleaved, and the medians reported: on a shared machine single
# runs vary by 2x.
# COLD=1 evicts the checkpoint from the page cache (posix_fadvise
# DONTNEED, no root needed) before each cat and each conversion, so both
# read from the disk: the case of the real 296 GiB checkpoint, which no
# ordinary machine's page cache holds.
# usage: bench/convert_bench.sh [LAYERS] [D_MODEL] [FFN] [TYPE]
#   default 24 layers of d_model 512, ffn 1024 (~320 MB of checkpoint)
#   env: GROK (binary), GROK_TMP (scratch), REPS (5), CONVERT_ARGS (extra
#   flags for grok convert, e.g. "-t 1")
set -eu
GROK=${GROK:-build/grok}
SRC=$(cd "$(dirname "$0")/.." && pwd)
L=${1:-24} D=${2:-512} F=${3:-1024} T=${4:-q8_0}
REPS=${REPS:-5}
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
now() { date +%s.%N; }
evict() {
    if [ "${COLD:-0}" = 1 ]; then
        /usr/bin/python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$CK"/*
    fi
}
: > "$TMP/times.txt"
for r in $(seq "$REPS"); do
    rm -f "$TMP/out.gguf" "$TMP/copy.bin"
    evict; t0=$(now); cat "$CK"/* > /dev/null; t1=$(now)
    evict; t2=$(now); cat "$CK"/* > "$TMP/copy.bin"; sync --data "$TMP/copy.bin"; t3=$(now)
    rm -f "$TMP/copy.bin"
    evict; t4=$(now)
    # shellcheck disable=SC2086
    /usr/bin/time -f "%M %U %S" -o "$TMP/rss.txt" "$GROK" convert "$CK" --tokenizer "$TMP/tok.model" \
        -o "$TMP/out.gguf" --type "$T" --heads "$H" --kv-heads 2 --head-dim $HD ${CONVERT_ARGS:-} \
        2>/dev/null
    t5=$(now)
    echo "$t0 $t1 $t2 $t3 $t4 $t5 $(cat "$TMP/rss.txt")" >> "$TMP/times.txt"
    rm -f "$TMP/out.gguf"
done
/usr/bin/python3 - "$BYTES" "$T" "$TMP/times.txt" <<'PYEOF'
import os, statistics, sys
b, ty = int(sys.argv[1]), sys.argv[2]
rows = [list(map(float, l.split())) for l in open(sys.argv[3])]
cat = [b / (r[1] - r[0]) for r in rows]
copy = [b / (r[3] - r[2]) for r in rows]
conv = [b / (r[5] - r[4]) for r in rows]
for i, r in enumerate(rows):
    print("  run %d: cat %4.0f MB/s, copy+fdatasync %4.0f MB/s, convert %4.0f MB/s (%3.0f%% of cat), "
          "CPU %.2f s" % (i + 1, cat[i] / 1e6, copy[i] / 1e6, conv[i] / 1e6, 100 * conv[i] / cat[i],
                          r[7] + r[8]))
m = statistics.median
rss = max(r[6] for r in rows)
print("page cache: %s" % ("cold (evicted before each read)" if os.environ.get("COLD") == "1" else "warm"))
print("checkpoint %.1f MB, medians of %d: cat %.0f MB/s, copy+fdatasync %.0f MB/s, grok convert --type %s "
      "%.0f MB/s (%.0f%% of cat, %.0f%% of copy; median of the per-run ratios to cat %.0f%%), "
      "peak RSS %.1f MB"
      % (b / 1e6, len(rows), m(cat) / 1e6, m(copy) / 1e6, ty, m(conv) / 1e6,
         100 * m(conv) / m(cat), 100 * m(conv) / m(copy),
         100 * m([v / c for v, c in zip(conv, cat)]), rss / 1024))
full = 296 * 2**30
print("full Grok-1 (296 GiB) at this rate: %.1f min (cat: %.1f min)"
      % (full / m(conv) / 60, full / m(cat) / 60))
PYEOF
