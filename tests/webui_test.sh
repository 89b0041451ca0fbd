#!/usr/bin/env bash
# webui_test.sh - grok serve's chat page in a real browser: Debian's headless
# Chromium (package chromium; scripts/setup.sh installs it) driven by
# playwright-core from npm (pinned in tests/webui/package-lock.json; the
# copy scripts/setup.sh put in tests/webui/node_modules with npm ci, or else
# one this test installs with npm ci into its scratch dir). The checks are
# in tests/webui/page.mjs. Skips (77), saying why, when Chromium or the npm
# package cannot be had. GROK_SHOT=FILE keeps a screenshot of the page.
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "SKIP: $CHROMIUM is not installed (apt-get install chromium; scripts/setup.sh tries)"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node and npm are needed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || { echo "SKIP: playwright-core needs node 18 or later, this is $(node --version)"; exit 77; }
mkdir -p "$GROK_TMP/webui" && cd "$GROK_TMP" || exit 1
cp "$GROK_SRC/tests/webui/package.json" "$GROK_SRC/tests/webui/package-lock.json" "$GROK_SRC/tests/webui/page.mjs" webui/
if bash "$GROK_SRC/tests/webui/installed.sh" "$GROK_SRC/tests/webui"; then
  rm -rf webui/node_modules && ln -s "$GROK_SRC/tests/webui/node_modules" webui/node_modules
elif ! bash "$GROK_SRC/tests/webui/installed.sh" webui; then
  rm -rf webui/node_modules
  if ! (cd webui && timeout 300 npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
    echo "SKIP: npm could not install playwright-core (npm ci in $GROK_TMP/webui):"; tail -n 5 webui/npm.log; exit 77
  fi
fi
echo "playwright-core $(node -p 'require("./webui/node_modules/playwright-core/package.json").version'), $("$CHROMIUM" --version 2>/dev/null), node $(node --version)"
cp "$GROK_SRC/models/grok-mini.gguf" tiny.gguf
rm -f *.port ./*.log
source "$GROK_SRC/tests/serve_lib.sh"
start page --parallel 2 --threads 2 --api-key page-key --alias bible-mini
export CHROMIUM GROK_URL="http://127.0.0.1:$PORT_page" GROK_KEY=page-key
timeout 240 node webui/page.mjs
rc=$?
kill -TERM "$PID_page"
wait "$PID_page"
st=$?
[ $rc = 0 ] || fail "the page checks (status $rc)"
[ $st = 0 ] || fail "server exit status $st"
echo "webui_test: passed"
