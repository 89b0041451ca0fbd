#!/usr/bin/env bash
# trace_test.sh - `grok trace` on the bundled model: every router
# probability, choice and statistic of its JSON against the NumPy reference
# and an independent recomputation (trace_check.py), texts longer than the
# context read in windows, the pictures (an SVG that parses as XML and a PNG
# whose header says its size; or, in a build without cairo, the JSON still
# written and a message naming cairo), and the errors (bad flags exit 2,
# bad files 1, no partial outputs).
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: python3-numpy is needed"; exit 77; }
mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
rm -rf ./*
MODEL="$GROK_SRC/models/grok-mini.gguf"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# 1. exact kernels: the probabilities are the reference's to f32 rounding
TEXT="And God said, Let there be light: and there was light. And God saw the light, that it was good."
GROK_KERNELS=exact "$GROK" trace -m "$MODEL" -p "$TEXT" -n 24 -o t.json >table.txt 2>err.txt || bad "trace exited $?: $(cat err.txt)"
$PY "$GROK_SRC/tests/trace_check.py" "$MODEL" t.json || bad "trace_check on the bundled model"
grep -q '^all ' table.txt || bad "no summary table: $(head -3 table.txt)"

# 2. a text longer than the context: windows of --ctx tokens, every token traced
"$GROK" trace -m "$MODEL" -p "$TEXT $TEXT $TEXT" --ctx 32 -q -o w.json 2>werr.txt || bad "windowed trace exited $?"
grep -q 'windows of 32 tokens' werr.txt || bad "no windows reported: $(cat werr.txt)"
$PY - w.json <<'PY' || bad "windowed trace JSON"
import json, sys
t = json.load(open(sys.argv[1]))
assert t["n_tokens"] > 64 and len(t["tokens"]) == t["n_tokens"], t["n_tokens"]
assert all(len(x["layers"]) == t["n_layers"] for x in t["tokens"])
PY

# 3. pictures
if "$GROK" trace --help | grep -q 'with cairo'; then
  "$GROK" trace -m "$MODEL" -p "$TEXT" --svg t.svg --png t.png -q || bad "pictures: exit $?"
  $PY - t.svg t.png <<'PY' || bad "pictures are not a valid SVG and PNG"
import struct, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag.endswith("svg"), root.tag
b = open(sys.argv[2], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR", b[:16]
w, h = struct.unpack(">II", b[16:24])
assert 600 <= w <= 4000 and 600 <= h <= 8000, (w, h)
PY
else
  "$GROK" trace -m "$MODEL" -p "$TEXT" -o nc.json --png nc.png -q 2>nc.txt
  [ $? = 1 ] || bad "without cairo, --png should exit 1"
  grep -q cairo nc.txt || bad "without cairo, the message should name cairo: $(cat nc.txt)"
  [ -s nc.json ] && [ ! -e nc.png ] || bad "without cairo the JSON is written and no picture"
  echo "note: this build has no cairo; pictures not drawn"
fi

# 4. errors
"$GROK" trace --help >/dev/null || bad "--help"
"$GROK" trace -m "$MODEL" >/dev/null 2>&1; [ $? = 2 ] || bad "no text: want exit 2"
"$GROK" trace -m "$MODEL" -p x -f y >/dev/null 2>&1; [ $? = 2 ] || bad "-p and -f: want exit 2"
"$GROK" trace -m "$MODEL" -p x --rows 0 >/dev/null 2>&1; [ $? = 2 ] || bad "--rows 0: want exit 2"
"$GROK" trace -m "$MODEL" -p x --bogus >/dev/null 2>&1; [ $? = 2 ] || bad "unknown flag: want exit 2"
"$GROK" trace -m missing.gguf -p x >/dev/null 2>e1.txt; [ $? = 1 ] || bad "missing model: want exit 1"
"$GROK" trace -m "$MODEL" -f missing.txt >/dev/null 2>&1; [ $? = 1 ] || bad "missing text file: want exit 1"
"$GROK" trace -m "$MODEL" -p x -q -o nodir/t.json 2>e2.txt; [ $? = 1 ] || bad "unwritable -o: want exit 1"
grep -q 'nodir/t.json' e2.txt || bad "the message should name the file: $(cat e2.txt)"
ls ./*.tmp* >/dev/null 2>&1 && bad "temporary files left: $(ls ./*.tmp*)"
[ $fail = 0 ] && echo "trace_test: passed"
exit $fail
