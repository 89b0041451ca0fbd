#!/usr/bin/env bash
# hostile_serve_test.sh - `grok serve` under hostile connections on loopback
# (tests/hostile_client.py; attackers on 127.0.0.2 and up, probes from
# 127.0.0.1): 10,000 idle connections from one address (all beyond
# --conn-per-addr refused), 10,000 spread over 40 addresses (the longest
# waiting closed past --max-waiting), 300 slowloris connections trickling
# their headers one byte every 0.5 s and 300 trickling their bodies (all
# closed by the header and body timeouts, counted from when they started
# waiting, not from their last byte). Throughout, /health answers from a
# fresh connection within 100 ms (90th percentile) and a completion
# request succeeds; /metrics counts what was closed and why; the server
# then exits cleanly on SIGTERM. Needs 10,100 open files for the client:
# with a lower limit that cannot be raised the runs are scaled down (said).
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
PY=/usr/bin/python3
mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
rm -f ./*.port ./*.log
. "$GROK_SRC/tests/serve_lib.sh"
"$GROK" new -o tiny.gguf --force --vocab 512 --ctx 256 2>/dev/null || fail "grok new"

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
N=10000
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((N + 100)) ]; then
  N=$(($(ulimit -n) - 100))
  echo "note: open files limited to $(ulimit -n) (hard $(ulimit -Hn)); scaled down to $N connections"
fi

start h --threads 1 --parallel 2 --queue 4 --ctx 256 --conn-per-addr 256 --max-waiting 512 \
  --header-timeout 3 --body-timeout 3
grep -q "connections: .* 256 per address, 512 waiting" h.log || fail "the limits are not reported: $(grep connections h.log)"
ok "$(grep -o 'connections: .*' h.log)"
hc() { "$PY" "$GROK_SRC/tests/hostile_client.py" "$PORT_h" "$@"; }

out=$(hc idle "$N" --hold 1.5 --max-health-ms 100 --need-closed $((N - 256))) || fail "idle from one address: $out"
ok "$N idle connections from one address: $out"
out=$(hc idle "$N" --addrs 40 --hold 1.5 --max-health-ms 100 --need-closed $((N - 512))) ||
  fail "idle from 40 addresses: $out"
ok "$N idle connections from 40 addresses: $out"
out=$(hc slowloris 300 --addrs 2 --every 0.5 --hold 5 --max-health-ms 100 --need-closed 300) || fail "slowloris headers: $out"
ok "slowloris headers: $out"
out=$(hc slowloris 300 --addrs 2 --body --every 0.5 --hold 5 --max-health-ms 100 --need-closed 300) || fail "slowloris body: $out"
ok "slowloris body: $out"

m=$(curl -s "http://127.0.0.1:$PORT_h/metrics")
val() { echo "$m" | sed -n "s/^$1 //p"; }
ht=$(val 'grok_connections_closed_total{reason="header_timeout"}')
bt=$(val 'grok_connections_closed_total{reason="body_timeout"}')
ev=$(val 'grok_connections_closed_total{reason="evicted"}')
[ "${ht:-0}" -ge 300 ] && [ "${bt:-0}" -ge 300 ] && [ "${ev:-0}" -ge 1 ] ||
  fail "metrics: header_timeout $ht, body_timeout $bt, evicted $ev"
ok "closed by the server: header timeout $ht, body timeout $bt, evicted $ev"
# the attacks are over: nothing lingers
sleep 3.5
m=$(curl -s "http://127.0.0.1:$PORT_h/metrics")
[ "$(val grok_connections_waiting)" -le 1 ] || fail "connections still waiting: $(val grok_connections_waiting)"

kill -TERM "$PID_h"
for _ in $(seq 1 100); do kill -0 "$PID_h" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID_h" 2>/dev/null && fail "no exit after SIGTERM"
wait "$PID_h"; rc=$?
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q "grok serve: stopped" h.log || fail "no clean stop"
ok "clean exit after SIGTERM"
