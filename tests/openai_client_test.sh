#!/usr/bin/env bash
# openai_client_test.sh - the official `openai` npm client (version pinned in
# tests/openai/package-lock.json, installed into the scratch dir) against
# `grok serve` on 127.0.0.1: completions and chat, whole and streamed,
# logprobs, n, think requests, typed errors and the API key, response_format and
# tools. Skips (77) when node/npm are missing or the package cannot be installed.
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node and npm are needed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
mkdir -p "$GROK_TMP/openai" && cd "$GROK_TMP" || exit 1
cp "$GROK_SRC/tests/openai/package.json" "$GROK_SRC/tests/openai/package-lock.json" "$GROK_SRC/tests/openai/client.mjs" openai/
if [ ! -d openai/node_modules/openai ]; then
  if ! (cd openai && timeout 300 npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
    echo "SKIP: npm could not install the openai package:"; tail -n 5 openai/npm.log; exit 77
  fi
fi

TOKFILE="$GROK_SRC/../shared/tokenizers/grok-1.model"
if [ -f "$TOKFILE" ]; then
  "$GROK" new -o tiny.gguf --force --tokenizer "$TOKFILE" --ctx 1024 2>/dev/null || exit 1
else
  "$GROK" new -o tiny.gguf --force --vocab 512 --ctx 1024 2>/dev/null || exit 1
fi
rm -f serve.port
"$GROK" serve -m tiny.gguf --port 0 --port-file serve.port --parallel 2 --ctx 1024 --threads 2 \
  --api-key test-key >serve.log 2>&1 &
pid=$!
trap 'kill -KILL $pid 2>/dev/null' EXIT
for _ in $(seq 1 200); do
  [ -s serve.port ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(cat serve.port)/health")" = 200 ] && break
  kill -0 $pid 2>/dev/null || { echo "FAIL: server exited"; cat serve.log; exit 1; }
  sleep 0.1
done
GROK_URL="http://127.0.0.1:$(cat serve.port)/v1" GROK_KEY=test-key GROK_ASAN="${GROK_ASAN:-0}" timeout 240 node openai/client.mjs
rc=$?
kill -TERM $pid
wait $pid
st=$?
[ $rc = 0 ] || { echo "FAIL: openai client checks (status $rc)"; tail -n 20 serve.log; exit 1; }
[ $st = 0 ] || { echo "FAIL: server exit status $st"; tail -n 20 serve.log; exit 1; }
echo "openai_client_test: passed"
