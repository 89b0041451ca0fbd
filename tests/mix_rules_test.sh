#!/usr/bin/env bash
# mix_rules_test.sh - grok quantize's per-tensor types for every mix against
# llama-quantize's: tests/fixtures/mix_rules.txt holds llama-quantize
# --dry-run's plans (llama.cpp de3ff81, written by WRITE=1 bash
# bench/mix_rules.sh) for four model shapes (tests/mix_rules_models.sh:
# Grok-1's 8 experts and n_gqa 4 with a tied head over 16 layers; 8 experts
# untied with 96-column down matrices, for the fallbacks; 4 experts without
# GQA; 2 experts) x 30 mixes x without / with an imatrix, plus --pure and
# the type overrides; grok quantize --dry-run must give every tensor the
# same type. Then the refusals: a mix llama.cpp refuses without an imatrix
# (IQ2_XXS, Q2_K_S) exits 1 naming the tensor and type, and writes nothing.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: no $PY"; exit 77; }
. "${GROK_SRC:?}/tests/lib.sh"
. "$GROK_SRC/tests/mix_rules_models.sh"
mix_rules_models "$GROK" . "$GROK_SRC/tests/fixtures/kjv-heldout.txt" || { bad "models"; exit 1; }
for spec in $MIX_RULES_CASES; do
  echo "== $spec"
  mix_rules_grok "$GROK" . "$spec"
done > plans.txt
r=$("$PY" - "$GROK_SRC/tests/ref" "$GROK_SRC/tests/fixtures/mix_rules.txt" <<'PYEOF' 2>&1
import sys
sys.path.insert(0, sys.argv[1])
from mix_plan import encode
want = {}
for line in open(sys.argv[2]):
    if not line.startswith("#"):
        spec, plan = line.rstrip("\n").split(" ", 1)
        want[spec] = plan
got, cur = {}, None
for line in open("plans.txt"):
    if line.startswith("== "):
        cur = line[3:].strip(); got[cur] = []
    elif line.strip():
        got[cur].append(line.split()[:2])
assert set(got) == set(want), "cases differ from the fixture's: %s" % sorted(set(got) ^ set(want))[:4]
bad = []
for spec in sorted(want):
    g = encode(got[spec])
    if g != want[spec]:
        d = sorted(set(g.split()) ^ set(want[spec].split()))
        bad.append("%s: %s" % (spec, " | ".join(d[:4])))
assert not bad, "%d of %d plans differ: %s" % (len(bad), len(want), "; ".join(bad[:3]))
n = sum(len(v) for v in got.values())
print("%d plans, %d tensors: every type as llama-quantize's" % (len(want), n))
PYEOF
) && ok "$r" || bad "$r"

for mix in IQ2_XXS Q2_K_S IQ1_M; do
  "$GROK" quantize g8.gguf out.gguf $mix >/dev/null 2>err.txt
  rc=$?
  [ $rc -eq 1 ] && grep -q "tensor blk.0.attn_q.weight would be" err.txt && grep -q "needs an importance matrix" err.txt \
    && [ ! -e out.gguf ] && ok "$mix without --imatrix refused: $(cat err.txt)" || bad "$mix without imatrix: rc $rc $(cat err.txt)"
done
# an imatrix whose entries do not fit (another model's: 2 experts, not 8):
# refused before anything is written (llama.cpp bails out too)
"$GROK" quantize g8.gguf out.gguf Q2_K_S --imatrix e2.imatrix.gguf >/dev/null 2>err.txt
rc=$?
[ $rc -eq 1 ] && [ ! -e out.gguf ] && grep -q "ffn_gate_exps.weight would be q2_K.*entry for it does not fit" err.txt \
  && ok "Q2_K_S with another model's imatrix refused: $(tail -1 err.txt)" || bad "wrong imatrix: rc $rc $(cat err.txt)"
# mixes llama.cpp does not refuse without one still plan and run
"$GROK" quantize --dry-run g8.gguf IQ3_S >/dev/null 2>err.txt && ok "IQ3_S plans without an imatrix" \
  || bad "IQ3_S dry run: $(cat err.txt)"
ls ./*.tmp* >/dev/null 2>&1 && bad "temporary files left" || ok "no temporary files left"
summary
