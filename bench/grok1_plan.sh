#!/usr/bin/env bash
# bench/grok1_plan.sh - what every mix weighs for Grok-1 itself, from grok
# quantize's own rules: writes the header of a GGUF with Grok-1's tensors
# (64 layers, d_model 6144, 48 query / 8 KV heads, 8 experts of 32768, vocab
# 131072, tied head; q8_0 matrices as grok convert writes them) and extends
# the file sparsely to its full 335 GB (no disk is used), then prints
# `grok quantize --dry-run`'s total for each mix. Needs a file system with
# sparse files.
#
#   bash bench/grok1_plan.sh [DIR]     (default /tmp/grok1-plan)
# Environment: BUILD (build), MIXES (default all quantized mixes), IMATRIX
# (1, default: plan as with an imatrix, which the rules only ask the
# presence of: one from the bundled model stands in; 0: without).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DIR=${1:-/tmp/grok1-plan}
G="$PWD/${BUILD:-build}/grok"
mkdir -p "$DIR"
F="$DIR/grok1-shape.gguf"
/usr/bin/python3 - "$F" <<'PYEOF'
import struct, sys
path = sys.argv[1]
d, ff, nl, nh, nkv, hd, ne, vocab = 6144, 32768, 64, 48, 8, 128, 8, 131072
F32, Q8_0 = 0, 8
tensors = [("token_embd.weight", [d, vocab], Q8_0), ("output_norm.weight", [d], F32)]
for i in range(nl):
    b = "blk.%d." % i
    tensors += [(b + "attn_norm.weight", [d], F32), (b + "attn_q.weight", [d, nh * hd], Q8_0),
                (b + "attn_k.weight", [d, nkv * hd], Q8_0), (b + "attn_v.weight", [d, nkv * hd], Q8_0),
                (b + "attn_output.weight", [nh * hd, d], Q8_0), (b + "attn_output_norm.weight", [d], F32),
                (b + "ffn_norm.weight", [d], F32), (b + "ffn_gate_inp.weight", [d, ne], F32),
                (b + "ffn_gate_exps.weight", [d, ff, ne], Q8_0), (b + "ffn_up_exps.weight", [d, ff, ne], Q8_0),
                (b + "ffn_down_exps.weight", [ff, d, ne], Q8_0), (b + "layer_output_norm.weight", [d], F32)]
def s(x):
    x = x.encode(); return struct.pack("<Q", len(x)) + x
kvs = [("general.architecture", 8, s("grok")), ("general.alignment", 4, struct.pack("<I", 32))]
for k, v in (("block_count", nl), ("embedding_length", d), ("feed_forward_length", ff),
             ("attention.head_count", nh), ("attention.head_count_kv", nkv), ("expert_count", ne),
             ("expert_used_count", 2), ("context_length", 8192)):
    kvs.append(("grok." + k, 4, struct.pack("<I", v)))
out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
for k, t, v in kvs:
    out += s(k) + struct.pack("<I", t) + v
off = 0
for name, shape, t in tensors:
    out += s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", x) for x in shape)
    out += struct.pack("<IQ", t, off)
    n = 1
    for x in shape: n *= x
    off += n * 4 if t == F32 else n // 32 * 34
    off = (off + 31) // 32 * 32
out += b"\0" * ((-len(out)) % 32)
with open(path, "wb") as f:
    f.write(out)
    f.truncate(len(out) + off)
PYEOF
MIXES=${MIXES:-"IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M Q2_K_S Q2_K IQ3_XXS IQ3_XS IQ3_S Q3_K_S IQ3_M Q3_K_M Q3_K_L IQ4_XS IQ4_NL Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M Q6_K Q8_0"}
imx=()
if [ "${IMATRIX:-1}" = 1 ]; then
  imx=(--imatrix "$DIR/stand-in.imatrix.gguf")
  [ -f "$DIR/stand-in.imatrix.gguf" ] || "$G" imatrix -m models/grok-mini.gguf -f tests/fixtures/kjv-heldout.txt \
    --ctx 64 --chunks 1 -o "$DIR/stand-in.imatrix.gguf" >/dev/null 2>&1
fi
printf '%-8s %10s %8s  %s\n' mix GB bits/w types
for m in $MIXES; do
  plan=$("$G" quantize --dry-run "${imx[@]}" "$F" "$m" 2>"$DIR/err.txt") || { echo "$m: $(cat "$DIR/err.txt")"; continue; }
  echo "$plan" | awk -v m="$m" '{b += $5; if ($4 != "f32") c[$4]++} END {
    n = 316.49e9; s = ""; for (t in c) s = s t ":" c[t] " ";
    printf "%-8s %10.1f %8.2f  %s\n", m, b / 1e9, 8 * b / n, s }'
done
rm -f "$F"
