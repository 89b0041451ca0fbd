#!/usr/bin/env bash
# soak.sh - grok serve under a mixed load for MINUTES (default 30): 8
# clients doing whole and streamed completions and chats, streams dropped
# after their first event, malformed bodies, connections dropped before
# their body, /health and /metrics (tests/hostile_client.py soak). Every
# 10 s the server's resident memory and open file descriptors are sampled
# (build/soak.csv); at the end they must be flat: RSS within 10 % of the
# figure two minutes in (after warm-up; 10 s in runs under 5 minutes), and
# the descriptors back to their
# count before the load once the clients are gone.
#   bash bench/soak.sh [MINUTES]      GROK=build/grok by default
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIN=${1:-30}
GROK=${GROK:-$ROOT/build/grok}
PY=/usr/bin/python3
W=$(mktemp -d)
CSV=$ROOT/build/soak.csv
trap 'kill $SRV 2>/dev/null; rm -rf "$W"' EXIT
TOK=$ROOT/../shared/tokenizers/grok-1.model
if [ -f "$TOK" ]; then tokflag=(--tokenizer "$TOK"); else tokflag=(--vocab 512); fi
"$GROK" new -o "$W/m.gguf" "${tokflag[@]}" --d-model 128 --layers 2 --ctx 512 >/dev/null 2>&1 || { echo "grok new failed"; exit 1; }
"$GROK" serve -m "$W/m.gguf" --port 0 --port-file "$W/port" --threads 1 --parallel 4 --queue 8 --ctx 512 \
  > "$W/serve.log" 2>&1 &
SRV=$!
for _ in $(seq 1 300); do [ -s "$W/port" ] && curl -sf "http://127.0.0.1:$(cat "$W/port")/health" >/dev/null && break; sleep 0.1; done
PORT=$(cat "$W/port")
sample() {
  local rss fds conns
  rss=$(awk '/^VmRSS/ {print $2}' /proc/$SRV/status)
  fds=$(ls /proc/$SRV/fd | wc -l)
  conns=$(curl -s "http://127.0.0.1:$PORT/metrics" | sed -n 's/^grok_connections //p')
  echo "$1,$rss,$fds,$conns"
}
echo "seconds,rss_kb,fds,connections" > "$CSV"
fd0=$(ls /proc/$SRV/fd | wc -l)
sample 0 >> "$CSV"
"$PY" "$ROOT/tests/hostile_client.py" "$PORT" soak $((MIN * 60)) --workers 8 > "$W/client.json" &
CL=$!
t0=$(date +%s)
while kill -0 $CL 2>/dev/null; do
  sleep 10
  sample $(($(date +%s) - t0)) >> "$CSV"
done
wait $CL; crc=$?
sleep 12 # past the header timeout: kept-alive connections are gone
after=$(sample $(($(date +%s) - t0)))
echo "$after" >> "$CSV"
kill -0 $SRV 2>/dev/null || { echo "FAIL: the server died"; tail "$W/serve.log"; exit 1; }

WARM=120
[ "$MIN" -ge 5 ] || WARM=10
awk -F, -v fd0="$fd0" -v after="$after" -v min="$MIN" -v warm="$WARM" 'NR > 1 {
    t[NR] = $1; r[NR] = $2; f[NR] = $3; n = NR
    if ($1 >= warm && !w) { w = $2 }
    if ($2 > rmax) rmax = $2
    if ($3 > fmax) fmax = $3
  }
  END {
    split(after, a, ",")
    printf "soak: %d min, RSS %.1f MB after warm-up (%d s), %.1f MB at the end, max %.1f MB\n", min, w / 1024, warm, r[n - 1] / 1024, rmax / 1024
    printf "soak: open files %d before the load, max %d during, %d after\n", fd0, fmax, a[3]
    bad = 0
    if (r[n - 1] > w * 1.10) { print "FAIL: RSS grew by more than 10 %"; bad = 1 }
    if (a[3] > fd0 + 2) { print "FAIL: file descriptors did not come back"; bad = 1 }
    exit bad
  }' "$CSV"
vrc=$?
cat "$W/client.json"
echo
[ $crc -eq 0 ] || echo "FAIL: unexpected answers (above)"
[ $crc -eq 0 ] && [ $vrc -eq 0 ] && echo "soak: flat" || exit 1
