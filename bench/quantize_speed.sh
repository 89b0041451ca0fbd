#!/usr/bin/env bash
# bench/quantize_speed.sh - encoding speed of grok quantize per type (--pure,
# so one encoder does nearly all the work), and of llama-quantize where
# present, run in turn type by type (A B A B: drift hits both alike): CPU
# seconds, wall seconds and peak RSS from /usr/bin/time, and values encoded
# per CPU second.
#
#   bash bench/quantize_speed.sh SOURCE.gguf [DIR]
# Environment: BUILD (build), GROK (binary), THREADS (all cores), TYPES
# (default "Q2_K Q3_K_S Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL IQ4_XS Q4_K_S Q5_K_S Q6_K"),
# IMATRIX (a file: both tools use it), LLAMA_QUANTIZE (default
# /work/llama/build/bin/llama-quantize; none to skip), ROUNDS (1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$1 DIR=${2:-/tmp/grok-quantize-speed}
G=${GROK:-$PWD/${BUILD:-build}/grok}
THREADS=${THREADS:-$(nproc)} ROUNDS=${ROUNDS:-1}
TYPES=${TYPES:-"Q2_K Q3_K_S Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL IQ4_XS Q4_K_S Q5_K_S Q6_K"}
LQ=${LLAMA_QUANTIZE:-/work/llama/build/bin/llama-quantize}
mkdir -p "$DIR"
imx=()
[ -n "${IMATRIX:-}" ] && imx=(--imatrix "$IMATRIX")
# the values re-encoded: every tensor of 2 or more dimensions but the router
nvals=$(/usr/bin/python3 - "$SRC" <<'PYEOF'
import sys
sys.path.insert(0, "tests/ref")
from gguf_reader import GGUFFile
g = GGUFFile(sys.argv[1])
n = 0
for name, t in g.tensors.items():
    shape = [int(x) for x in t.ne if int(x) > 1]
    if len(shape) >= 2 and "ffn_gate_inp" not in name:
        p = 1
        for x in shape: p *= x
        n += p
print(n)
PYEOF
)
echo "source $SRC: $nvals values in matrices; $THREADS threads; $(nproc) cores"
printf '%-7s %-6s %8s %8s %9s %14s\n' type tool cpu_s wall_s peak_MiB Mvalues/cpu_s
run() { # LABEL TYPE CMD...
  local label=$1 type=$2; shift 2
  /usr/bin/time -f '%U %S %e %M' -o "$DIR/time.txt" "$@" >/dev/null 2>"$DIR/err.txt" || { echo "$type $label failed: $(tail -1 "$DIR/err.txt")"; return; }
  read -r u s e m < "$DIR/time.txt"
  awk -v t="$type" -v l="$label" -v u="$u" -v s="$s" -v e="$e" -v m="$m" -v n="$nvals" \
    'BEGIN {printf "%-7s %-6s %8.2f %8.2f %9.1f %14.2f\n", t, l, u + s, e, m / 1024, n / (u + s) / 1e6}'
}
for r in $(seq "$ROUNDS"); do
  for t in $TYPES; do
    run grok "$t" "$G" quantize "$SRC" "$DIR/g.gguf" "$t" --pure "${imx[@]}" --threads "$THREADS" --force
    [ "$LQ" != none ] && [ -x "$LQ" ] && run llama "$t" "$LQ" --pure "${imx[@]}" "$SRC" "$DIR/l.gguf" "$t" "$THREADS"
  done
done
rm -f "$DIR/g.gguf" "$DIR/l.gguf"
