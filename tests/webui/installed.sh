#!/usr/bin/env bash
# installed.sh DIR - exits 0 when DIR/node_modules holds the playwright-core
# that DIR/package-lock.json pins (so scripts/setup.sh and webui_test.sh
# need not run npm ci again), 1 otherwise.
command -v node >/dev/null || exit 1
node -e '
const fs = require("fs"), d = process.argv[1];
try {
  const want = JSON.parse(fs.readFileSync(d + "/package-lock.json")).packages["node_modules/playwright-core"].version;
  const got = JSON.parse(fs.readFileSync(d + "/node_modules/playwright-core/package.json")).version;
  process.exit(want === got ? 0 : 1);
} catch { process.exit(1); }' "$1"
