#!/usr/bin/env bash
# bench_test.sh - grok bench on tiny models: the --json object has every
# documented field with a sane value, bytes per token equals the active
# weight bytes computed independently from the file's tensor table (by the
# Python GGUF reader, not the C loader), the built-in reference check runs
# and passes, the reference kernels agree with themselves exactly, --batch
# reports the bytes and experts a batched step reads, and bad flags are
# refused with status 2.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy (apt-get install python3-numpy)"; exit 77; }
. "${GROK_SRC:?}/tests/lib.sh"

# validate.py JSON MODEL [KERNELS]: field checks; bytes_per_token from the tensor table
cat > validate.py <<'PYEOF'
import json, sys
sys.path.insert(0, sys.argv[3])
from gguf_reader import GGUFFile
text = open(sys.argv[1]).read()
lines = [l for l in text.splitlines() if l.strip()]
assert len(lines) == 1, "expected one JSON line, got %d" % len(lines)
j = json.loads(lines[0])
for k in ("prompt_tok_s", "gen_tok_s", "bytes_per_token", "bandwidth_gb_s", "efficiency", "peak_rss_mb"):
    assert isinstance(j[k], (int, float)), "%s is not a number: %r" % (k, j.get(k))
assert j["prompt_tok_s"] > 0 and j["gen_tok_s"] > 0, "speeds must be positive"
if j["bandwidth_gb_s"] == 0:  # --no-stream
    assert j["efficiency"] == 0, "efficiency without a bandwidth: %r" % j["efficiency"]
else:
    assert j["bandwidth_gb_s"] > 0.1, "bandwidth %r" % j["bandwidth_gb_s"]
    assert 0 < j["efficiency"] <= 1, "efficiency %r" % j["efficiency"]
eff = j["gen_tok_s"] * j["bytes_per_token"] / (j["bandwidth_gb_s"] * 1e9) if j["bandwidth_gb_s"] else 0
assert abs(eff - j["efficiency"]) <= 1e-3 * max(eff, 1e-3) + 1e-4, "efficiency %r != %r" % (j["efficiency"], eff)
assert j["peak_rss_mb"] > 0.5, "peak rss %r" % j["peak_rss_mb"]
assert j["check_ok"] is True and j["check_positions"] == 4, "check %r" % j
assert 0 <= j["check_kernel_max_rel_err"] <= 1e-4, "kernel check %r" % j["check_kernel_max_rel_err"]
assert j["n_prompt"] == 16 and j["n_gen"] == 8
# bytes per token: output head (or tied embedding), one embedding row, attention,
# router, and n_experts_used of the n_experts expert matrices, per layer
f = GGUFFile(sys.argv[2])
used = f.get("grok.expert_used_count")
total = 0
emb = f.tensors["token_embd.weight"]
total += emb.n_bytes() // emb.ne[1]
total += f.tensors.get("output.weight", emb).n_bytes()
for name, t in f.tensors.items():
    if name.startswith("blk.") and "norm" not in name:
        nb = t.n_bytes()
        if "_exps" in name:
            nb = nb // t.ne[2] * used
        total += nb
assert j["bytes_per_token"] == total, "bytes_per_token %d, tensor table says %d" % (j["bytes_per_token"], total)
if len(sys.argv) > 4:
    assert j["kernels"] == sys.argv[4], j["kernels"]
    if sys.argv[4] == "reference":
        assert j["check_max_rel_err"] == 0, "reference vs itself must be exact: %r" % j["check_max_rel_err"]
        assert j["check_kernel_max_rel_err"] == 0, "reference kernels vs themselves: %r" % j["check_kernel_max_rel_err"]
print("fields ok; bytes/token %d; %.1f/%.1f tok/s; check err %.3g" % (total, j["prompt_tok_s"], j["gen_tok_s"], j["check_max_rel_err"]))
PYEOF

for type in q8_0 f16; do
  stream="--stream-mib 96"; [ $type = f16 ] && stream="--no-stream --kv-type f16"   # one small bandwidth probe is enough here
  m=m_$type.gguf
  "$GROK" new -o $m --force --d-model 64 --layers 2 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 \
    --ffn 96 --vocab 300 --type $type --untied --seed 3 2>/dev/null || { bad "grok new $type"; continue; }
  if "$GROK" bench -m $m -p 16 -n 8 --threads 2 $stream --json > out_$type.json 2> err_$type.txt; then
    r=$("$PY" validate.py out_$type.json $m "$GROK_SRC/tests/ref" 2>&1) && ok "$type bench --json: $r" || bad "$type bench --json: $r"
    kv=f32; [ $type = f16 ] && kv=f16
    grep -q "\"kv_type\": \"$kv\"" out_$type.json && ok "$type bench: $kv KV cache reported" || bad "$type bench: kv_type not $kv"
  else
    bad "$type bench exited $?: $(cat err_$type.txt)"
  fi
done

# a k-quant model (d_model 256; its 96-column down matrices fall back to
# q8_0): the bench's own check of the fast kernels against the reference
"$GROK" new -o kf32.gguf --force --d-model 256 --layers 1 --heads 4 --kv-heads 2 --experts 4 --experts-used 2 \
  --ffn 96 --vocab 300 --seed 5 2>/dev/null && "$GROK" quantize kf32.gguf m_q4_K.gguf q4_K --pure --force 2>/dev/null \
  || bad "q4_K model"
if "$GROK" bench -m m_q4_K.gguf -p 16 -n 8 --threads 2 --no-stream --json > out_q4_K.json 2> err_q4_K.txt; then
  r=$("$PY" validate.py out_q4_K.json m_q4_K.gguf "$GROK_SRC/tests/ref" 2>&1) && ok "q4_K bench --json: $r" || bad "q4_K bench --json: $r"
else
  bad "q4_K bench exited $?: $(cat err_q4_K.txt)"
fi

"$GROK" new -o tied.gguf --force --vocab 300 --type q8_0 --seed 4 2>/dev/null
"$GROK" bench -m tied.gguf -p 16 -n 8 --threads 1 --kernels reference --no-stream --json > ref.json 2> ref_err.txt \
  && r=$("$PY" validate.py ref.json tied.gguf "$GROK_SRC/tests/ref" reference 2>&1) \
  && ok "reference kernels, tied head: $r" || bad "reference bench: $(cat ref_err.txt) ${r:-}"

# --batch: N sequences per step; one sequence reads exactly bytes_per_token, three read the
# shared weights once, three embedding rows and experts_per_layer distinct experts per layer
"$GROK" bench -m m_q8_0.gguf -p 16 -n 4 --threads 2 --no-stream --batch 1,3 --rounds 1 --json > batch.json 2> batch_err.txt \
  && r=$("$PY" - m_q8_0.gguf "$GROK_SRC/tests/ref" <<'PYEOF' 2>&1
import json, sys
sys.path.insert(0, sys.argv[2])
from gguf_reader import GGUFFile
j = json.load(open("batch.json"))
b = j["batch"]
assert [x["n"] for x in b] == [1, 3], b
for x in b:
    assert x["tok_s"] > 0 and 0 < x["step_ms_min"] <= x["step_ms"] + 1e-9, x
f = GGUFFile(sys.argv[1])
L, E = f.get("grok.block_count"), f.get("grok.expert_count")
emb = f.tensors["token_embd.weight"]
row = emb.n_bytes() // emb.ne[1]
expert = sum(t.n_bytes() // t.ne[2] for n, t in f.tensors.items() if n.startswith("blk.0.") and "_exps" in n)
assert b[0]["bytes_per_step"] == j["bytes_per_token"] and b[0]["experts_per_layer"] == 2, (b[0], j["bytes_per_token"])
u = b[1]["experts_per_layer"]
assert 2 <= u <= min(E, 6), u
want = j["bytes_per_token"] + 2 * row + (u - 2) * L * expert
assert abs(b[1]["bytes_per_step"] - want) <= 1, (b[1]["bytes_per_step"], want)
print("batch 1 reads %d bytes a step, batch 3 %d (%.2f experts per layer)" % (b[0]["bytes_per_step"], b[1]["bytes_per_step"], u))
PYEOF
) && ok "--batch: $r" || bad "--batch: $(cat batch_err.txt) ${r:-}"

# text output names the efficiency and the check
"$GROK" bench -m tied.gguf -p 16 -n 8 --no-stream > text.txt 2>/dev/null \
  && grep -q '^efficiency' text.txt && grep -q '^check *ok' text.txt \
  && ok "text report" || bad "text report: $(cat text.txt)"

for args in "-p 0" "-n x" "--kernels turbo" "--kv-type q8" "--bogus" "--batch 0" "--batch 1,x" "--batch 1,2,3,4,5,6,7,8,9" ""; do
  "$GROK" bench -m tied.gguf $args >/dev/null 2>&1
  rc=$?
  if [ -z "$args" ]; then "$GROK" bench >/dev/null 2>&1; rc=$?; fi
  [ $rc -eq 2 ] && ok "bad flags '$args' -> 2" || bad "bad flags '$args' -> $rc"
done
"$GROK" bench -m nonexistent.gguf -p 4 -n 2 >/dev/null 2>err.txt
[ $? -eq 1 ] && grep -q nonexistent err.txt && ok "missing model named" || bad "missing model: $(cat err.txt)"

summary
