#!/usr/bin/env bash
# serve_bench.sh - aggregate generation throughput of `grok serve` with 1, 4
# and 8 concurrent streams on a bandwidth-bound model (q8_0 weights, 8 experts
# of width 2816), measured side by side in one run (rounds interleave the
# three levels, so a noisy shared machine hurts them alike). Each stream asks
# for N_TOK tokens of a short prompt; aggregate tok/s = all completion tokens
# / wall time of the round. Prints a table and the 8-vs-1 ratio, with what the
# scheduler's steps cost and read (from /metrics): forward ms, experts per
# layer and MB of weights per step.
#   GROK=build/grok  BENCH_DIR=/tmp/grok_serve_bench  N_TOK=32  ROUNDS=2  THREADS=all cores
#   MODEL=moe (default) | dense (1 expert of width 5632: the same bytes per
#   token as moe's 2 of 2816, but a step's bytes do not grow with its tokens)
#   | a GGUF path
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GROK=${GROK:-build/grok}
DIR=${BENCH_DIR:-/tmp/grok_serve_bench}
N_TOK=${N_TOK:-32}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-0}
PY=/usr/bin/python3
mkdir -p "$DIR"
KIND=${MODEL:-moe}
TOK=../shared/tokenizers/grok-1.model
case "$KIND" in
  moe) MODEL="$DIR/bench-q8.gguf"; shape=(--experts 8 --experts-used 2 --ffn 2816) ;;
  dense) MODEL="$DIR/bench-dense-q8.gguf"; shape=(--experts 1 --experts-used 1 --ffn 5632) ;;
  *) MODEL=$KIND; shape=() ;;
esac
if [ ! -f "$MODEL" ]; then
  [ ${#shape[@]} -gt 0 ] || { echo "serve_bench: $MODEL does not exist" >&2; exit 1; }
  vocab=(--vocab 32000)
  [ -f "$TOK" ] && vocab=(--tokenizer "$TOK")
  "$GROK" new -o "$MODEL" --d-model 1024 --layers 8 --heads 16 --kv-heads 4 "${shape[@]}" \
    --type q8_0 --ctx 1024 "${vocab[@]}"
fi
LAYERS=$("$GROK" info "$MODEL" | awk '$1 == "grok.block_count" {print $2}')
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
# scheduler counters: steps, step tokens, forward seconds, sampling seconds, weight bytes, experts
counters() {
  curl -s "$M" | awk '/^grok_steps_total/ {a=$2} /^grok_step_tokens_total/ {b=$2}
    /^grok_forward_seconds_total/ {c=$2} /^grok_sample_seconds_total/ {d=$2}
    /^grok_weight_bytes_total/ {e=$2} /^grok_expert_reads_total/ {f=$2} END {print a, b, c, d, e, f}'
}

# one round of C concurrent streams; prints "tokens seconds steps step_tokens fwd_s sample_s bytes experts"
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
  "$PY" -c "import sys; a=sys.argv[1].split(); b=sys.argv[2].split(); d=[float(y)-float(x) for x,y in zip(a,b)]; print($toks, $t1 - $t0, int(d[0]), int(d[1]), d[2], d[3], d[4], d[5])" "$m0" "$m1"
}

round 1 >/dev/null # warm-up: page the weights in
declare -A best
for r in $(seq 1 "$ROUNDS"); do
  for c in 1 4 8; do
    read -r toks secs steps stoks fwd smp bytes experts < <(round "$c")
    tps=$("$PY" -c "print('%.2f' % ($toks / $secs))")
    "$PY" -c "print('round $r: $c streams: $toks tokens in %.2f s = $tps tok/s; %d steps of %.1f tokens, forward %.1f ms/step, sampling %.1f ms/step, %.2f experts per layer, %.1f MB of weights per step' % ($secs, $steps, $stoks / $steps, 1000 * $fwd / $steps, 1000 * $smp / $steps, $experts / $steps / $LAYERS, $bytes / $steps / 1e6))"
    if [ -z "${best[$c]:-}" ] || "$PY" -c "import sys; sys.exit(0 if $tps > ${best[$c]} else 1)"; then best[$c]=$tps; fi
  done
done
echo
echo "| concurrent streams | aggregate generation tok/s (best of $ROUNDS) | vs 1 stream |"
echo "|---|---|---|"
for c in 1 4 8; do
  echo "| $c | ${best[$c]} | $("$PY" -c "print('%.2fx' % (${best[$c]} / ${best[1]}))") |"
done
