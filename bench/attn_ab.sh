#!/bin/bash
# attn_ab.sh - generation and prompt speed at several context depths, two
# grok binaries interleaved (so a shared machine's noise hits both alike):
#   OLD=/tmp/grok-old NEW=build/grok MODEL=m.gguf bash bench/attn_ab.sh [OUT]
# Each line of OUT: round depth kv_type old|new prompt_tok_s gen_tok_s.
# ROUNDS (3), DEPTHS ("16 512 1024"), KV ("f32 f16") and THREADS (2) can be set;
# both binaries need `grok bench --kv-type`.
set -u
: "${OLD:?OLD binary}" "${NEW:?NEW binary}" "${MODEL:?MODEL file}"
out=${1:-attn_ab.txt}
: > "$out"
for r in $(seq 1 "${ROUNDS:-3}"); do
  for p in ${DEPTHS:-16 512 1024}; do
    for kv in ${KV:-f32 f16}; do
      for b in old new; do
        bin=$OLD; [ $b = new ] && bin=$NEW
        j=$("$bin" bench -m "$MODEL" -p "$p" -n 32 --threads "${THREADS:-2}" --json --check 0 --no-stream --kv-type "$kv")
        echo "$r $p $kv $b $(echo "$j" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["prompt_tok_s"], d["gen_tok_s"])')" >> "$out"
      done
    done
  done
done
# medians per (depth, kv, binary)
/usr/bin/python3 - "$out" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r, p, kv, b, pt, gt = line.split()
    d[(int(p), kv, b)].append((float(pt), float(gt)))
for (p, kv, b), v in sorted(d.items()):
    print("depth %5d %s %s: gen %.1f prompt %.1f tok/s (median of %d)" % (p, kv, b, st.median(x[1] for x in v), st.median(x[0] for x in v), len(v)))
PY
