#!/usr/bin/env bash
# bench/dot_speed.sh - the single-token decode kernels in isolation
# (bench/dot_speed.c): builds the driver against BUILD/libgrokcore.a, then
# R interleaved rounds of it per ISA setting (default: the CPU's best, and
# GROK_ISA=avx512vnni, which keeps the VBMI kernels out); medians and
# maxima of the packed dot's weights/ns per type.
#
#   bash bench/dot_speed.sh [TYPES]     (default: the types of the community
#                                        Grok-1 files: IQ3_XS, IQ2, Q2_K, Q3_K, IQ4_XS, IQ1)
# Environment: BUILD (build), R (rounds, 5), ISAS (space list; "best" = unset).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
TYPES=${1:-iq3_xxs,iq3_s,iq2_xxs,iq2_xs,iq2_s,q2_K,q3_K,iq4_xs,iq1_s,iq1_m}
R=${R:-5}
ISAS=${ISAS:-"best avx512vnni"}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target grokcore >/dev/null
EXE="$BUILD/dot_speed"
cc -O2 -std=c11 -D_GNU_SOURCE -Isrc -Iinclude -Itests bench/dot_speed.c "$BUILD/libgrokcore.a" -lm -lpthread -o "$EXE"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
for r in $(seq "$R"); do
  for isa in $ISAS; do
    if [ "$isa" = best ]; then "$EXE" "$TYPES"; else GROK_ISA=$isa "$EXE" "$TYPES"; fi | sed "s/^/$isa /"
  done
done | /usr/bin/python3 -c '
import collections, statistics, sys
d = collections.defaultdict(list)
for line in sys.stdin:
    f = line.split()
    if "packed" in f:
        d[(f[1], f[0])].append(float(f[f.index("packed") + 1]))
print("packed dot, weights/ns: type, setting, median, max")
for (t, isa), v in sorted(d.items()):
    print("%-8s %-12s %6.1f %6.1f" % (t, isa, statistics.median(v), max(v)))
'
