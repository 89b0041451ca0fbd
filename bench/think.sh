#!/usr/bin/env bash
# think.sh - what answer-time compute buys (docs/think.md): held-out accuracy
# of the bundled arithmetic model (models/grok-arith.gguf) on N questions of
# scripts/make_arith.py's test set, for greedy decoding and for K = 1, 4, 16,
# 64 samples chosen by majority vote, by mean log-probability and (when the
# verifier model is there) by the verifier, and the share where some
# sample is right; each question sent alone to `grok serve` as one think
# request per K (scripts/think_bench.py), with the wall time and generated
# tokens per question. Writes $DIR/think.csv, prints a Markdown table, and draws
# the plot (PLOT, default docs/think.svg).
#   GROK=build/grok  MODEL=models/grok-arith.gguf  VERIFIER=models/grok-arith-verifier.gguf
#   BENCH_DIR=/tmp/grok_think_bench  N=200  KS="1 4 16 64"  TEMP=0.8  THREADS=all cores
#   PLOT=docs/think.svg (empty: no plot)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GROK=${GROK:-build/grok}
MODEL=${MODEL:-models/grok-arith.gguf}
VERIFIER=${VERIFIER:-models/grok-arith-verifier.gguf}
DIR=${BENCH_DIR:-/tmp/grok_think_bench}
N=${N:-200}
KS=${KS:-"1 4 16 64"}
TEMP=${TEMP:-0.8}
THREADS=${THREADS:-0}
PLOT=${PLOT-docs/think.svg}
PY=/usr/bin/python3
mkdir -p "$DIR"
# the test set alone (the same questions whatever the training sizes)
"$PY" scripts/make_arith.py "$DIR/arith" --train 0 --verifier 0 >/dev/null
max_k=1
for k in $KS; do [ "$k" -gt "$max_k" ] && max_k=$k; done
vargs=()
bargs=()
if [ -f "$VERIFIER" ]; then
  vargs=(--verifier "$VERIFIER" --verifier-suffix '\nV:' --verifier-yes " yes")
  bargs=(--verifier)
fi
rm -f "$DIR/port"
"$GROK" serve -m "$MODEL" --port 0 --port-file "$DIR/port" --parallel "$max_k" --queue 0 --ctx 256 \
  --threads "$THREADS" "${vargs[@]}" >"$DIR/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  [ -s "$DIR/port" ] && curl -s -o /dev/null "http://127.0.0.1:$(cat "$DIR/port")/health" && break
  kill -0 $pid 2>/dev/null || { cat "$DIR/serve.log"; exit 1; }
  sleep 0.1
done
echo "think.sh: $(date -u +%F), $N questions, temperature $TEMP, $("$GROK" info "$MODEL" 2>/dev/null | head -n 1)" >&2
"$PY" scripts/think_bench.py --url "http://127.0.0.1:$(cat "$DIR/port")" --test "$DIR/arith/test.jsonl" \
  --n "$N" --temp "$TEMP" --ks "$(echo $KS | tr ' ' ,)" "${bargs[@]}" | tee "$DIR/think.csv.tmp" >&2
mv "$DIR/think.csv.tmp" "$DIR/think.csv"
"$PY" - "$DIR/think.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
g = next(float(r["accuracy"]) for r in rows if r["method"] == "greedy")
print("| method | k | accuracy | vs greedy | s / question | tokens / question |")
print("|---|---|---|---|---|---|")
for r in rows:
    a = float(r["accuracy"])
    print(f"| {r['method']} | {r['k']} | {a * 100:.1f} % ({r['correct']}/{r['questions']}) | "
          f"{(a - g) * 100:+.1f} | {float(r['sec_per_question']):.3f} | {float(r['tokens_per_question']):.0f} |")
PY
[ -n "$PLOT" ] && "$PY" scripts/plot_think.py "$DIR/think.csv" "$PLOT"
kill -TERM $pid
wait $pid || true
