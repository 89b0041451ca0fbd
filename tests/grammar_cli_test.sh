#!/usr/bin/env bash
# grammar_cli_test.sh - the command-line side of structured output with the
# bundled model (models/grok-mini.gguf): `grok run --grammar` texts that
# `grok grammar --test` accepts, `grok run --json-schema` texts that
# python3-jsonschema validates against the schema (Draft 2020-12, formats
# checked), `grok bench --grammar/--json-schema` reporting both passes, and
# the errors: a malformed grammar names FILE:LINE:COLUMN, an unsupported
# schema keyword its JSON pointer, invalid JSON its byte, a missing file its
# name (all exit 1); the two flags together and a flag without its value
# exit 2.
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
PY=/usr/bin/python3
"$PY" -c 'import jsonschema' 2>/dev/null || { echo "SKIP: $PY has no jsonschema (apt-get install python3-jsonschema)"; exit 77; }
MODEL="$GROK_SRC/models/grok-mini.gguf"
[ -f "$MODEL" ] || { echo "SKIP: no $MODEL"; exit 77; }
mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
fails=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# ---- run --grammar: every text is in the grammar, and it ends where the grammar does
printf 'root ::= "(" expr ")"\nexpr ::= [a-z]{1,3} | "(" expr ")" | [0-9] ("+" [0-9]){0,2}\n' > g.gbnf
n_ok=0
for seed in 1 2 3 4 5 6 7 8; do
  t=$("$GROK" run -m "$MODEL" -p "And God said" --grammar g.gbnf -n 60 --seed "$seed" --threads 1 2>run.err)
  rc=$?
  if [ $rc != 0 ]; then fail "run --grammar seed $seed: exit $rc: $(cat run.err)"; continue; fi
  if "$GROK" grammar g.gbnf --test "$t" >/dev/null; then n_ok=$((n_ok + 1)); else fail "run --grammar seed $seed: '$t' is not in the grammar"; fi
done
[ $n_ok = 8 ] && ok "run --grammar: 8 seeded texts, each a whole sentence of the grammar"

# ---- run --json-schema: every text validates
cp "$GROK_SRC/tests/fixtures/structured/nested_schema.json" s.json
rm -f texts.txt
for seed in 1 2 3 4 5 6; do
  "$GROK" run -m "$MODEL" -p "And the LORD spake" --json-schema s.json -n 1300 --seed "$seed" --threads 1 \
    > "out$seed.json" 2>run.err || fail "run --json-schema seed $seed: $(cat run.err)"
done
"$PY" - out1.json out2.json out3.json out4.json out5.json out6.json <<'EOF' && ok "run --json-schema: 6 seeded texts parse and validate (python3-jsonschema)" || fail "run --json-schema texts do not validate"
import json, sys, jsonschema
schema = json.load(open("s.json"))
v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
for p in sys.argv[1:]:
    text = open(p, encoding="utf-8").read()
    v.validate(json.loads(text))
EOF

# ---- bench --grammar: both passes reported
"$GROK" bench -m "$MODEL" -p 8 -n 12 --check 0 --threads 1 --json-schema s.json > bench.out 2>&1 || fail "bench --json-schema: $(cat bench.out)"
grep -q '^grammar cold .*12 tokens' bench.out && grep -q '^grammar warm .*12 tokens' bench.out &&
  ok "bench --json-schema reports the cold and warm passes" || fail "bench output: $(cat bench.out)"
"$GROK" bench -m "$MODEL" -p 8 -n 12 --check 0 --threads 1 --grammar g.gbnf --json > bench.json 2>/dev/null
"$PY" -c 'import json,sys; d=json.load(open("bench.json"))["grammar"]; assert d["warm"]["tokens"] == 12 and d["cold"]["mask_ms"] >= 0, d' &&
  ok "bench --grammar --json carries the grammar passes" || fail "bench --json: $(cat bench.json)"

# ---- errors: exit 1 naming the place; 2 for bad flags
expect() { # RC TEXT COMMAND...
  local want=$1 text=$2
  shift 2
  "$@" > err.out 2>&1
  local rc=$? shown="grok ${*:2}"
  shown=${shown//$MODEL/MODEL}
  if [ $rc != "$want" ]; then fail "$shown: exit $rc, want $want: $(cat err.out)"; return; fi
  grep -qF -- "$text" err.out || { fail "$shown: '$(cat err.out)' lacks '$text'"; return; }
  ok "$shown -> exit $want, '$text'"
}
printf 'root ::= "a" (\n"b"\n' > bad.gbnf
printf 'root ::= x\nx ::= [a-z] y\n' > undef.gbnf
echo '{"type":"object","properties":{"a":{"type":"array","items":{"pattern":"x"}}}}' > pattern.json
printf '{"type":\n' > trunc.json
expect 1 "bad.gbnf:3:1: expecting ')' to close the group opened at 1:14" "$GROK" run -m "$MODEL" -p x --grammar bad.gbnf
expect 1 "undef.gbnf:2:13: undefined rule 'y'" "$GROK" run -m "$MODEL" -p x --grammar undef.gbnf
expect 1 "pattern.json: #/properties/a/items: 'pattern' is not supported" "$GROK" run -m "$MODEL" -p x --json-schema pattern.json
expect 1 "trunc.json: the schema is not valid JSON (at byte" "$GROK" run -m "$MODEL" -p x --json-schema trunc.json
expect 1 "nope.gbnf" "$GROK" run -m "$MODEL" -p x --grammar nope.gbnf
expect 2 "--grammar and --json-schema exclude each other" "$GROK" run -m "$MODEL" -p x --grammar g.gbnf --json-schema s.json
expect 2 "--grammar needs a value" "$GROK" run -m "$MODEL" -p x --grammar
expect 1 "bad.gbnf:3:1:" "$GROK" bench -m "$MODEL" -p 8 -n 4 --check 0 --grammar bad.gbnf
expect 1 "does not match: the grammar reads 6 of 9 bytes, stopping at 1:7" "$GROK" grammar g.gbnf --test "(1+2+3+4)"
expect 0 "usage: grok grammar" "$GROK" grammar --help

[ $fails = 0 ] || { echo "$fails failed"; exit 1; }
echo "grammar_cli_test: passed"
