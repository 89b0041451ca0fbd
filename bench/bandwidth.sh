#!/usr/bin/env bash
# bench/bandwidth.sh - issue #5's bandwidth target: generation on models
# that read at least 1 GB of weights per token (d_model 2048, 8 experts of
# FFN 5632, top-2: 12 layers in q8_0, 24 in q4_0, ~1.1 GB per token each),
# with the weights packed (the default) and unpacked (GROK_PACK=0), 1 and 2
# threads, every configuration in each of R interleaved rounds. grok bench
# measures the STREAM triad in the same process and prints efficiency =
# gen tok/s x bytes per token / triad bandwidth. One JSON line per run,
# prefixed by a label; a summary of medians at the end.
#
#   bash bench/bandwidth.sh [MODEL_DIR]    (models made there once: ~7.5 GB)
# Environment: BUILD (default build), R (rounds, 3), P and N (prompt and
# generated tokens, 64 and 64).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=${1:-/tmp/grok-bench}
BUILD=${BUILD:-build}
R=${R:-3}
P=${P:-64}
N=${N:-64}
BASE="--d-model 2048 --heads 16 --kv-heads 4 --experts 8 --ffn 5632 --vocab 32000 --seed 1"
mkdir -p "$DIR"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
G="$BUILD/grok"
Q8="$DIR/bw12_q8_0.gguf" Q4="$DIR/bw24_q4_0.gguf"
[ -f "$Q8" ] || "$G" new -o "$Q8" $BASE --layers 12 --type q8_0 2>&1 | tail -1
[ -f "$Q4" ] || "$G" new -o "$Q4" $BASE --layers 24 --type q4_0 2>&1 | tail -1
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for r in $(seq "$R"); do
  for m in "$Q8" "$Q4"; do
    for t in 2 1; do
      for pack in 1 0; do
        label="$(basename "$m" .gguf) t$t pack$pack"
        js=$(GROK_PACK=$pack "$G" bench -m "$m" -p "$P" -n "$N" --threads $t --check 2 --json 2>/dev/null) ||
          js='{"failed": true}'
        printf '%-26s %s\n' "$label" "$js"
        printf '%s\t%s\n' "$label" "$js" >> "$OUT"
      done
    done
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, _, js = line.rstrip("\n").partition("\t")
    try:
        d = json.loads(js)
    except ValueError:
        continue
    runs.setdefault(label, []).append(d)
print("\nmedians over rounds: label, gen tok/s, GB/token, triad GB/s, efficiency, prompt tok/s, peak RSS MB, packed MB")
for label, ds in runs.items():
    med = lambda k: statistics.median(d[k] for d in ds)
    print("%-26s %7.2f %6.3f %6.1f %5.0f %% %7.2f %7.0f %7.0f" % (label, med("gen_tok_s"), ds[0]["bytes_per_token"] / 1e9,
          med("bandwidth_gb_s"), 100 * med("efficiency"), med("prompt_tok_s"), med("peak_rss_mb"), med("packed_mb")))
PY
