#!/bin/bash
# python_test.sh - the Python package (python/grok) over libgrok.so with
# Debian's python3 and numpy: its ctypes structures have grok.h's sizes
# (a C program prints sizeof), tokenize/detokenize give grok tokenize's ids
# and round-trip, logits equal `grok logits` bit for bit (a model capped at
# scalar: those of GROK_ISA=scalar), a seeded
# generation prints what `grok run` prints (with --grammar and --json-schema
# too), stop strings, errors (bad grammars and schemas with their places) raise.
set -u
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy"; exit 77; }
: "${GROK:?GROK not set}" "${GROK_SRC:?GROK_SRC not set}" "${GROK_TMP:?GROK_TMP not set}"
T="$GROK_TMP"
rm -rf "$T" && mkdir -p "$T"
BUILD=$(dirname "$GROK")
export GROK_LIB="$BUILD/libgrok.so" PYTHONPATH="$GROK_SRC/python"
[ -f "$GROK_LIB" ] || { echo "FAIL: $GROK_LIB was not built"; exit 1; }
if [ "${GROK_ASAN:-0}" = 1 ]; then
    # the library is instrumented: the runtime must come first in the process
    LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
    export LD_PRELOAD ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
fi
MODEL="$GROK_SRC/models/grok-mini.gguf"

cat >"$T/sizes.c" <<'C'
#include <stdio.h>
#include "grok.h"
int main(void) {
    printf("grok_model_params %zu\ngrok_context_params %zu\ngrok_sampler_params %zu\n", sizeof(grok_model_params),
           sizeof(grok_context_params), sizeof(grok_sampler_params));
    printf("grok_hparams %zu\ngrok_detok_stream %zu\n", sizeof(grok_hparams), sizeof(grok_detok_stream));
    printf("grok_memory_params %zu\n", sizeof(grok_memory_params));
    return 0;
}
C
cc -I"$GROK_SRC/include" -o "$T/sizes" "$T/sizes.c" || { echo "FAIL: sizes.c"; exit 1; }
env -u LD_PRELOAD "$T/sizes" >"$T/sizes.txt"

"$GROK" tokenize -m "$MODEL" --ids "In the beginning God created the heaven and the earth." >"$T/ids.txt" 2>/dev/null
"$GROK" logits -m "$MODEL" --ids "$(tr ' ' ',' <"$T/ids.txt")" -o "$T/logits.f32" >/dev/null 2>&1
"$GROK" logits -m "$MODEL" --ids "$(tr ' ' ',' <"$T/ids.txt")" --kernels fast --mem-limit none \
    -o "$T/logits_fast.f32" >/dev/null 2>&1
GROK_ISA=scalar "$GROK" logits -m "$MODEL" --ids "$(tr ' ' ',' <"$T/ids.txt")" --kernels fast --mem-limit none \
    -o "$T/logits_scalar.f32" >/dev/null 2>&1
"$GROK" run -m "$MODEL" -p "And God said" -n 24 --temp 0.9 --top-p 0.95 --seed 7 --threads 2 \
    >"$T/run.txt" 2>/dev/null
"$GROK" run -m "$MODEL" -p "And God said" -n 48 --temp 0 --stop "LORD" --threads 2 >"$T/run_stop.txt" 2>/dev/null
GBNF="$GROK_SRC/tests/fixtures/grammar/recursion.gbnf" SCHEMA="$GROK_SRC/tests/fixtures/structured/nested_schema.json"
"$GROK" run -m "$MODEL" -p "And God said" -n 200 --temp 0.9 --seed 3 --threads 2 --grammar "$GBNF" \
    >"$T/run_gbnf.txt" 2>/dev/null
"$GROK" run -m "$MODEL" -p "The record: " -n 600 --temp 1 --seed 5 --threads 2 --json-schema "$SCHEMA" \
    >"$T/run_schema.txt" 2>/dev/null

"$PY" - "$T" "$MODEL" "$GBNF" "$SCHEMA" <<'PYEOF'
import ctypes, json, os, sys
import numpy as np
import grok

T, MODEL, GBNF, SCHEMA = sys.argv[1:5]
fails = 0
def check(ok, what):
    global fails
    print(("ok   " if ok else "FAIL ") + what)
    fails += not ok

want = dict(l.split() for l in open(f"{T}/sizes.txt"))
for name, cls in grok.STRUCT_SIZES.items():
    check(ctypes.sizeof(cls) == int(want[name]), f"{name}: ctypes {ctypes.sizeof(cls)} bytes, grok.h {want[name]}")
check(grok.version() == open(os.environ["GROK_SRC"] + "/include/grok.h").read().split('#define GROK_VERSION "')[1].split('"')[0],
      f"version {grok.version()}")

text = "In the beginning God created the heaven and the earth."
with grok.Model(MODEL, threads=2) as m:
    hp = m.hparams
    check(hp["n_vocab"] == m.n_vocab and hp["n_layers"] > 0, f"hparams: {hp['n_layers']} layers, {hp['n_vocab']} vocab")
    ids = m.tokenize(text)
    want_ids = [int(x) for x in open(f"{T}/ids.txt").read().split()]
    check(ids == want_ids, f"tokenize: {len(ids)} ids as grok tokenize")
    check(m.detokenize(ids) == text, "detokenize round-trips")
    long = "word " * 5000
    check(m.detokenize(m.tokenize(long)) == long, "a 25 KB text round-trips (buffers grow)")
    pieces = list(m.generate("And God said", max_tokens=24, temperature=0.9, top_p=0.95, seed=7))
    got = "".join(pieces)
    run = open(f"{T}/run.txt").read()
    check(got + "\n" == run, f"seeded generate prints grok run's text ({len(pieces)} pieces)")
    stop = "".join(m.generate("And God said", max_tokens=48, temperature=0, stop="LORD"))
    check(stop + "\n" == open(f"{T}/run_stop.txt").read() and "LORD" not in stop, "stop string as grok run")
    # grammars: the same seeded text as grok run --grammar / --json-schema
    gbnf = "".join(m.generate("And God said", max_tokens=200, temperature=0.9, seed=3, grammar=open(GBNF).read()))
    check(gbnf + "\n" == open(f"{T}/run_gbnf.txt").read() and len(gbnf) > 0,
          f"generate(grammar=) prints grok run --grammar's text ({len(gbnf)} bytes)")
    schema = json.load(open(SCHEMA))
    rec = "".join(m.generate("The record: ", max_tokens=600, temperature=1, seed=5, json_schema=schema))
    check(rec + "\n" == open(f"{T}/run_schema.txt").read() and isinstance(json.loads(rec), dict),
          f"generate(json_schema=) prints grok run --json-schema's text, a JSON object ({len(rec)} bytes)")
    check("".join(m.generate("x", max_tokens=20, grammar='root ::= "yes" | "no"')) in ("yes", "no"),
          "a two-word grammar gives one of its words")
    for kw, want in ((dict(grammar='root ::= ("a"'), "1:10"),
                     (dict(json_schema={"type": "string", "pattern": "x"}), "'pattern' is not supported"),
                     (dict(json_schema="{nope"), "json_schema")):
        try:
            next(m.generate("x", max_tokens=1, **kw))
            check(False, f"{kw} raises")
        except grok.GrokError as e:
            check(want in str(e), f"{kw} raises GrokError naming it: {e}")
    try:
        next(m.generate("x", max_tokens=1, grammar="root ::= \"a\"", json_schema={}))
        check(False, "grammar and json_schema together raise")
    except TypeError as e:
        check("not both" in str(e), f"grammar and json_schema together raise: {e}")
    try:
        m.generate("x", max_tokens=1, nonsense=1).__next__()
        check(False, "an unknown sampler setting raises")
    except TypeError as e:
        check("nonsense" in str(e), "an unknown sampler setting raises: " + str(e))
    try:
        m.logits([0, 10 ** 9])
        check(False, "an id out of range raises")
    except grok.GrokError as e:
        check(e.code == -1 and "outside" in str(e), f"an id out of range raises GrokError (code {e.code}): {e}")

with grok.Model(MODEL, kernels="exact", threads=2) as m:
    lg = m.logits(want_ids)
    ref = np.fromfile(f"{T}/logits.f32", dtype="<f4").reshape(len(want_ids), m.n_vocab)
    check(lg.dtype == np.float32 and np.array_equal(lg, ref), f"logits {lg.shape} equal grok logits bit for bit")
# the expert cache at one slot: the fast kernels' logits of the packed run, bit for bit
with grok.Model(MODEL, kernels="fast", threads=2, mem_plan="cache", cache_slots=1, cache_policy="lru") as m:
    check(m.memory_plan() is None, "no memory plan before the first context")
    lg = m.logits(want_ids)
    ref = np.fromfile(f"{T}/logits_fast.f32", dtype="<f4").reshape(len(want_ids), m.n_vocab)
    plan = m.memory_plan() or ""
    check("plan: expert-cache;" in plan and " 1 of " in plan and "lru" in plan, f"memory plan: {plan}")
    check(np.array_equal(lg, ref), "logits through a 1-slot expert cache equal grok logits --kernels fast")
with grok.Model(MODEL, threads=2, mem_limit="none") as m:
    m.logits(want_ids[:2])
    check("plan: packed;" in (m.memory_plan() or ""), f"mem_limit='none': {m.memory_plan()}")
# a model capped at scalar gives a GROK_ISA=scalar process's logits, bit for bit
if "GROK_ISA" not in os.environ:
    with grok.Model(MODEL, kernels="fast", isa="scalar", threads=2, mem_limit="none") as m:
        check(m.isa == "scalar", f"isa='scalar': the model uses {m.isa}")
        lg = m.logits(want_ids)
        ref = np.fromfile(f"{T}/logits_scalar.f32", dtype="<f4").reshape(len(want_ids), m.n_vocab)
        check(np.array_equal(lg, ref), "isa='scalar' logits equal GROK_ISA=scalar grok logits --kernels fast")
    try:
        grok.Model(MODEL, isa="sse9")
        check(False, "an unknown isa raises")
    except grok.GrokError as e:
        check("'sse9'" in str(e), f"an unknown isa raises: {e}")
for bad in ({"mem_plan": "swap"}, {"isa": 2}, {"cache_policy": "mru"}, {"mem_limit": "lots"}, {"mem_limit": -5},
            {"cache_slots": -1}):
    try:
        grok.Model(MODEL, **bad)
        check(False, f"{bad} raises")
    except ValueError as e:
        check(str(list(bad.values())[0]) in str(e), f"{bad} raises: {e}")
try:
    grok.Model(f"{T}/missing.gguf")
    check(False, "a missing file raises")
except grok.GrokError as e:
    check("missing.gguf" in str(e), f"a missing file raises: {e}")
try:
    grok.Model(MODEL, kernels="turbo")
    check(False, "a bad kernel mode raises")
except ValueError as e:
    check("turbo" in str(e), f"a bad kernel mode raises: {e}")
sys.exit(1 if fails else 0)
PYEOF
rc=$?
[ $rc -eq 0 ] && echo "python_test: ok"
exit $rc
