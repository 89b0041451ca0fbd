#!/usr/bin/env bash
# engine_test.sh - the engine end to end through the grok command:
# incremental decoding (one token per forward, through the KV cache) equals
# the full batched recompute; seeded sampling repeats and seeds differ;
# a f16 KV cache stays close to f32; the CLI rejects bad flags, bad ids
# and malformed model files with a message and a clean exit status.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
. "${GROK_SRC:?}/tests/lib.sh"
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }

# max relative difference of two f32 files: max|a-b| / max|a| per row
cmp_f32() {
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype='<f4'); b = np.fromfile(sys.argv[2], dtype='<f4')
V = int(sys.argv[3])
if a.size != b.size or a.size % V: print("size mismatch", a.size, b.size); sys.exit(2)
a = a.reshape(-1, V).astype(np.float64); b = b.reshape(-1, V).astype(np.float64)
err = (np.abs(a - b).max(axis=1) / np.maximum(np.abs(a).max(axis=1), 1e-30)).max()
print("%.3g" % err)
PYEOF
}

for type in f32 q8_0; do
  m=model_$type.gguf
  "$GROK" new -o $m --force --d-model 64 --layers 3 --heads 4 --kv-heads 2 --experts 4 \
    --experts-used 2 --ffn 96 --vocab 300 --type $type --seed 5 2>/dev/null || { bad "grok new $type"; continue; }
  ids=5,17,42,42,7,299,0,1,2,3,100,200,5,17,42,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23
  "$GROK" logits -m $m --ids $ids -o full.f32 --batch 64 || bad "logits batch 64"
  "$GROK" logits -m $m --ids $ids -o inc.f32 --batch 1 --threads 1 || bad "logits batch 1"
  "$GROK" logits -m $m --ids $ids -o mid.f32 --batch 7 --threads 2 || bad "logits batch 7"
  e1=$(cmp_f32 full.f32 inc.f32 300); e2=$(cmp_f32 full.f32 mid.f32 300)
  "$PY" -c "import sys; sys.exit(0 if $e1 <= 1e-5 and $e2 <= 1e-5 else 1)" \
    && ok "$type: incremental (batch 1) and chunked (batch 7) equal the full batch: $e1, $e2" \
    || bad "$type: incremental vs full: $e1, chunked vs full: $e2"
  "$GROK" logits -m $m --ids $ids -o f16kv.f32 --kv-type f16 || bad "logits f16 kv"
  e3=$(cmp_f32 full.f32 f16kv.f32 300)
  "$PY" -c "import sys; sys.exit(0 if 0 < $e3 <= 2e-2 else 1)" \
    && ok "$type: f16 KV cache within 2e-2 of f32 ($e3)" || bad "$type: f16 KV cache error $e3"
done

m=model_f32.gguf
a=$("$GROK" run -m $m -p "hello world" -n 24 --seed 7 --temp 1 2>/dev/null)
b=$("$GROK" run -m $m -p "hello world" -n 24 --seed 7 --temp 1 2>/dev/null)
c=$("$GROK" run -m $m -p "hello world" -n 24 --seed 8 --temp 1 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "same seed, same text" || bad "same seed gave different text"
[ "$a" != "$c" ] && ok "another seed, other text" || bad "seeds 7 and 8 gave the same text"
g1=$("$GROK" run -m $m -p "hello" -n 16 --temp 0 --seed 1 2>/dev/null)
g2=$("$GROK" run -m $m -p "hello" -n 16 --temp 0 --seed 2 2>/dev/null)
[ "$g1" = "$g2" ] && ok "greedy ignores the seed" || bad "greedy output depends on the seed"
"$GROK" run -m $m -p "hello" -n 8 --seed 1 2>err.txt >/dev/null && grep -q "tok/s" err.txt \
  && ok "run reports speeds on stderr" || bad "run speed line missing"

expect_fail() { # expect_fail STATUS PATTERN CMD...
  local want=$1 pat=$2; shift 2
  out=$("$@" 2>&1); st=$?
  if [ $st -eq "$want" ] && echo "$out" | grep -q -- "$pat"; then ok "rejects: $* -> $(echo "$out" | head -n 1)"
  else bad "$* exited $st (want $want) with: $out"; fi
}
expect_fail 2 "unknown argument" "$GROK" run -m $m -p hi --bogus
expect_fail 2 "\-\-temp" "$GROK" run -m $m -p hi --temp abc
expect_fail 2 "\-n" "$GROK" run -m $m -p hi -n -5
expect_fail 2 "exactly one" "$GROK" run -m $m
expect_fail 1 "outside" "$GROK" logits -m $m --ids 1,300 -o x.f32
expect_fail 2 "not an integer" "$GROK" logits -m $m --ids 1,x -o x.f32
expect_fail 1 "no_such.gguf" "$GROK" run -m no_such.gguf -p hi
expect_fail 2 "unknown command" "$GROK" frobnicate
expect_fail 1 "exists" "$GROK" new -o $m
expect_fail 2 "type" "$GROK" new -o x.gguf --type q5_0
printf 'not a gguf file at all' > junk.gguf
expect_fail 1 "junk.gguf" "$GROK" run -m junk.gguf -p hi
head -c 3000 $m > trunc.gguf
expect_fail 1 "trunc.gguf" "$GROK" logits -m trunc.gguf --ids 1 -o x.f32
[ ! -e x.f32 ] && ok "failed runs leave no output file" || bad "a failed run left x.f32"
for sub in run info logits new tokenize detokenize; do
  "$GROK" $sub --help >/dev/null 2>&1 && ok "grok $sub --help" || bad "grok $sub --help"
done
"$GROK" info $m >info.txt 2>&1 && grep -q "active per token" info.txt && ok "grok info" || bad "grok info"
"$GROK" info --grok1 | grep -q "315.7 B) in all.*83.8 B) active" && ok "grok info --grok1: 315.7 B / 83.8 B" || bad "grok info --grok1"

summary engine_test
