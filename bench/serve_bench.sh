#!/usr/bin/env bash
# serve_bench.sh - aggregate generation throughput of `grok serve` with 1, 4
# and 8 concurrent streams on a bandwidth-bound model (q8_0 weights, 8 experts
# of width 2816), measured side by side in one run (rounds interleave the
# three levels, so a noisy shared machine hurts them alike). Each stream asks
# for N_TOK tokens of a short prompt; aggregate tok/s = all completion tokens
# / wall time of the round. Prints a table and the 8-vs-1 ratio.
#   GROK=build/grok  BENCH_DIR=/tmp/grok_serve_bench  N_TOK=32  ROUNDS=2  THREADS=all cores
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GROK=${GROK:-build/grok}
DIR=${BENCH_DIR:-/tmp/grok_serve_bench}
N_TOK=${N_TOK:-32}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-0}
PY=/usr/bin/python3
mkdir -p "$DIR"
MODEL="$DIR/bench-q8.gguf"
TOK=../shared/tokenizers/grok-1.model
if [ ! -f "$MODEL" ]; then
  vocab=(--vocab 32000)
  [ -f "$TOK" ] && vocab=(--tokenizer "$TOK")
  "$GROK" new -o "$MODEL" --d-model 1024 --layers 8 --heads 16 --kv-heads 4 --experts 8 \
    --experts-used 2 --ffn 2816 --type q8_0 --ctx 1024 "${vocab[@]}"
fi
rm -f "$DIR/port"
"$GROK" serve -m "$MODEL" --port 0 --port-file "$DIR/port" --parallel 8 --queue 8 --ctx 256 \
  --threads "$THREADS" >"$DIR/serve.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 600); do
  [ -s "$DIR/port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat "$DIR/port")/health")" = 200 ] && break
  sleep 0.1
done
U="http://127.0.0.1:$(cat "$DIR/port")/v1/completions"

M="http://127.0.0.1:$(cat "$DIR/port")/metrics"
# scheduler counters: steps, step tokens, forward seconds, sampling seconds
counters() {
  curl -s "$M" | awk '/^grok_steps_total/ {a=$2} /^grok_step_tokens_total/ {b=$2}
    /^grok_forward_seconds_total/ {c=$2} /^grok_sample_seconds_total/ {d=$2} END {print a, b, c, d}'
}

# one round of C concurrent streams; prints "tokens seconds steps step_tokens fwd_s sample_s"
round() {
  local c=$1 i pids=()
  local m0; m0=$(counters)
  local t0; t0=$(date +%s.%N)
  for i in $(seq 1 "$c"); do
    curl -s "$U" -d "{\"prompt\":\"Stream $i says\",\"max_tokens\":$N_TOK,\"seed\":$i,\"temperature\":1}" \
      > "$DIR/out_$i.json" & pids+=($!)
  done
  wait "${pids[@]}"
  local t1; t1=$(date +%s.%N)
  local m1; m1=$(counters)
  local toks=0 n
  for i in $(seq 1 "$c"); do
    n=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["usage"]["completion_tokens"])' "$DIR/out_$i.json")
    toks=$((toks + n))
  done
  "$PY" -c "import sys; a=sys.argv[1].split(); b=sys.argv[2].split(); d=[float(y)-float(x) for x,y in zip(a,b)]; print($toks, $t1 - $t0, int(d[0]), int(d[1]), d[2], d[3])" "$m0" "$m1"
}

round 1 >/dev/null # warm-up: page the weights in
declare -A best
for r in $(seq 1 "$ROUNDS"); do
  for c in 1 4 8; do
    read -r toks secs steps stoks fwd smp < <(round "$c")
    tps=$("$PY" -c "print('%.2f' % ($toks / $secs))")
    "$PY" -c "print('round $r: $c streams: $toks tokens in %.2f s = $tps tok/s; %d steps of %.1f tokens, forward %.1f ms/step, sampling %.1f ms/step' % ($secs, $steps, $stoks / $steps, 1000 * $fwd / $steps, 1000 * $smp / $steps))"
    if [ -z "${best[$c]:-}" ] || "$PY" -c "import sys; sys.exit(0 if $tps > ${best[$c]} else 1)"; then best[$c]=$tps; fi
  done
done
echo
echo "| concurrent streams | aggregate generation tok/s (best of $ROUNDS) | vs 1 stream |"
echo "|---|---|---|"
for c in 1 4 8; do
  echo "| $c | ${best[$c]} | $("$PY" -c "print('%.2fx' % (${best[$c]} / ${best[1]}))") |"
done
