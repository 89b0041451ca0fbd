# serve_lib.sh - sourced by the tests that start `grok serve` (not a test
# itself): failure reporting, cleanup of the servers started, and start().
# The caller sets GROK, has cd'ed into its scratch dir and made tiny.gguf.
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in ./*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }
ok() { echo "ok (${SECONDS}s): $*"; }

# start NAME ARGS...: starts `${LAUNCH[@]} grok serve -m tiny.gguf ... ARGS`
# (LAUNCH: e.g. an mpirun command line; empty by default), sets PORT_NAME
# and PID_NAME, waits (up to 30 s) for /health
LAUNCH=()
start() {
  local name=$1; shift
  "${LAUNCH[@]}" "$GROK" serve -m tiny.gguf --port 0 --port-file "$name.port" "$@" >"$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  eval "PID_$name=$pid"
  for _ in $(seq 1 300); do
    if [ -s "$name.port" ]; then
      local port; port=$(cat "$name.port")
      if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ]; then
        eval "PORT_$name=$port"
        return 0
      fi
    fi
    kill -0 "$pid" 2>/dev/null || fail "server $name exited early"
    sleep 0.1
  done
  fail "server $name did not become healthy"
}
