#!/bin/bash
# tokenizer_bench.sh - encoding speed of `grok tokenize` against
# sentencepiece's spm_encode on the same ~10 MB of text, side by side.
#
# Usage: bench/tokenizer_bench.sh [GROK_BINARY] [MODEL]
#   defaults: build/grok and ../shared/tokenizers/grok-1.model
#
# Fairness: spm_encode reads its input line by line and encodes every line
# as a separate sentence (its own dummy prefix, no newline tokens), while
# grok tokenize -f encodes the whole file as one text. Both get the same
# bytes and both write ids as text to /dev/null, and both times include
# loading the model (each is also timed on an empty input and reported).
# The text is built from the license and documentation texts shipped in
# /usr/share (plain text, many languages of prose and code-like lines).
set -eu
cd "$(dirname "$0")/.."
GROK=${1:-build/grok}
MODEL=${2:-../shared/tokenizers/grok-1.model}
[ -x "$GROK" ] || { echo "no grok binary at $GROK (build first)"; exit 1; }
[ -f "$MODEL" ] || { echo "no model at $MODEL"; exit 1; }
command -v spm_encode >/dev/null || { echo "spm_encode is not installed"; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SRC="$TMP/src.txt"
: > "$SRC"
for f in /usr/share/common-licenses/* $(find /usr/share/doc -name 'copyright' -size +1k 2>/dev/null | head -400); do
    [ -f "$f" ] && cat "$f" >> "$SRC"
done
[ -s "$SRC" ] || { echo "no text found under /usr/share"; exit 1; }
TEXT="$TMP/bench.txt"
: > "$TEXT"
while [ "$(stat -c %s "$TEXT")" -lt 10000000 ]; do cat "$SRC" >> "$TEXT"; done
head -c 10000000 "$TEXT" > "$TMP/t" && mv "$TMP/t" "$TEXT"
BYTES=$(stat -c %s "$TEXT")
LINES=$(wc -l < "$TEXT")
: > "$TMP/empty"

best() { # best wall time of 3 runs of "$@" (stdin from $IN)
    local b=999999 s e t
    for _ in 1 2 3; do
        s=$(date +%s.%N)
        "$@" < "$IN" > /dev/null
        e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc -l)
        if (( $(echo "$t < $b" | bc -l) )); then b=$t; fi
    done
    echo "$b"
}

IN=$TEXT
t_grok=$(best "$GROK" tokenize --tokenizer "$MODEL" --ids -f "$TEXT")
t_spm=$(best spm_encode --model "$MODEL" --output_format=id)
IN=$TMP/empty
l_grok=$(best "$GROK" tokenize --tokenizer "$MODEL" --ids -f "$TMP/empty")
l_spm=$(best spm_encode --model "$MODEL" --output_format=id)

n_grok=$("$GROK" tokenize --tokenizer "$MODEL" --ids -f "$TEXT" | wc -w)
n_spm=$(spm_encode --model "$MODEL" --output_format=id < "$TEXT" | wc -w)

mbs() { echo "scale=2; $BYTES / 1000000 / $1" | bc -l; }
printf 'input: %d bytes, %d lines (from /usr/share/common-licenses and /usr/share/doc)\n' "$BYTES" "$LINES"
printf '%-12s %10s %10s %12s %10s\n' tool "time_s" "MB/s" "load_s" "tokens"
printf '%-12s %10.3f %10s %12.3f %10d\n' "grok" "$t_grok" "$(mbs "$t_grok")" "$l_grok" "$n_grok"
printf '%-12s %10.3f %10s %12.3f %10d\n' "spm_encode" "$t_spm" "$(mbs "$t_spm")" "$l_spm" "$n_spm"
printf 'speed ratio grok/spm_encode: %s (spm_encode encodes per line: no newline tokens, a dummy prefix per line)\n' \
    "$(echo "scale=2; $t_spm / $t_grok" | bc -l)"
