#!/usr/bin/env bash
# bigger_than_ram.sh - a model larger than its memory: generation speed in a
# memory cgroup limited to 75 %, 50 % and 25 % of the model's file, each run
# with a cold page cache (the model's and its packed file's pages dropped
# with POSIX_FADV_DONTNEED first), side by side in interleaved rounds:
#   grok      grok.c with no memory flag (it finds the cgroup's limit and
#             plans: the expert cache when the dense weights fit)
#   grok-mmap grok.c reading the mapped file only (--mem-plan mmap)
#   llama     llama.cpp's llama-bench, its default mmap load (-lm mmap), when
#             LLAMA_BENCH (default /work/llama/build/bin/llama-bench) exists
#   grok-ram  grok.c with no limit and a warm page cache (--mem-limit none,
#             no cgroup), in every round: the compute ceiling at the
#             machine's load of the moment, which no limited run can beat
# For grok, the expert cache's own figures too: hit rate, disk MB and I/O
# wait per token, the disk's O_DIRECT read rate and the I/O bound (that
# rate over the bytes read per token) with the fraction of it reached, and
# the fraction of the lower of that bound and the ceiling (what overlapping
# the reads with compute perfectly would reach).
# Needs root and a memory cgroup controller (scripts/memcg.sh).
#
#   bench/bigger_than_ram.sh MODEL [--rounds R] [--fracs "75 50 25"]
#       [--threads N] [--gen N] [--prompt N] [--pack] [--out DIR]
#       [--variants "NAME=FLAGS;NAME=FLAGS"] [--no-llama] [--no-mmap] [--no-ram]
#
# --variants adds grok runs with extra flags (e.g. "lru=--cache-policy lru;
# pf0=--prefetch 0"), interleaved with the others, to compare settings.
# --pack writes MODEL.grokpack first (grok pack) when it is missing, so
# the default run maps and reads the packed layout. Prints one line per run
# and a markdown table of medians; DIR (default bench-btr-out) keeps every
# run's JSON.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
GROK=${GROK:-$HERE/build/grok}
LLAMA_BENCH=${LLAMA_BENCH:-/work/llama/build/bin/llama-bench}
MEMCG=$HERE/scripts/memcg.sh
model= rounds=3 fracs="75 50 25" threads=2 gen=32 prompt=16 pack=0 out=bench-btr-out variants= llama=1 mmap=1 ram=1
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift ;;
    --fracs) fracs=$2; shift ;;
    --threads) threads=$2; shift ;;
    --gen) gen=$2; shift ;;
    --prompt) prompt=$2; shift ;;
    --pack) pack=1 ;;
    --variants) variants=$2; shift ;;
    --no-llama) llama=0 ;;
    --no-mmap) mmap=0 ;;
    --no-ram) ram=0 ;;
    --out) out=$2; shift ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 0 ;;
    -*) echo "bigger_than_ram.sh: unknown flag $1" >&2; exit 2 ;;
    *) model=$1 ;;
    esac
    shift
done
[ -n "$model" ] && [ -f "$model" ] || { echo "usage: bigger_than_ram.sh MODEL [flags] (see --help)" >&2; exit 2; }
why=$("$MEMCG" check) || { echo "bigger_than_ram.sh: $why" >&2; exit 1; }
mkdir -p "$out"
if [ $pack = 1 ] && [ ! -f "$model.grokpack" ]; then
    "$GROK" pack "$model" --threads "$threads" || exit 1
fi
size=$(stat -c %s "$model")
engines=grok
[ $mmap = 1 ] && engines="$engines grok-mmap"
declare -A vflags
IFS=';' read -ra vs <<<"$variants"
for v in "${vs[@]}"; do
    [ -z "$v" ] && continue
    vflags[${v%%=*}]=${v#*=}
    engines="$engines grok-${v%%=*}"
done
[ $llama = 1 ] && [ -x "$LLAMA_BENCH" ] && engines="$engines llama"
[ $ram = 1 ] && engines="$engines grok-ram"

cold() {
    for f in "$model" "$model.grokpack"; do
        [ -f "$f" ] && dd if="$f" iflag=nocache count=0 status=none 2>/dev/null
    done
}

# one run: prints "tok/s" (and leaves its JSON in $out)
run_one() {
    local eng=$1 frac=$2 r=$3 limit=$((size * $2 / 100)) js="$out/$1-$2-$3.json"
    cold
    case $eng in
    grok-ram)
        # warm: the files' pages read first; no cgroup, no limit
        for f in "$model" "$model.grokpack"; do [ -f "$f" ] && cat "$f" >/dev/null; done
        "$GROK" bench -m "$model" -p "$prompt" -n "$gen" --threads "$threads" --json --check 0 --no-stream \
            --mem-limit none >"$js" 2>"$js.err"
        python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["gen_tok_s"])' "$js" 2>/dev/null || echo fail
        ;;
    grok*)
        local extra=()
        [ $eng = grok-mmap ] && extra=(--mem-plan mmap)
        # shellcheck disable=SC2206 # the variant's flags are words
        [ -n "${vflags[${eng#grok-}]:-}" ] && extra=(${vflags[${eng#grok-}]})
        "$MEMCG" run "$limit" "$js.cg" -- "$GROK" bench -m "$model" -p "$prompt" -n "$gen" --threads "$threads" \
            --json --check 0 --no-stream "${extra[@]}" >"$js" 2>"$js.err"
        python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["gen_tok_s"])' "$js" 2>/dev/null || echo fail
        ;;
    llama)
        "$MEMCG" run "$limit" "$js.cg" -- "$LLAMA_BENCH" -m "$model" -p 0 -n "$gen" -t "$threads" -r 1 -lm mmap \
            -o json >"$js" 2>"$js.err"
        python3 -c 'import json,sys; print("%.3f" % [t["avg_ts"] for t in json.load(open(sys.argv[1])) if t["n_gen"] > 0][0])' \
            "$js" 2>/dev/null || echo fail
        ;;
    esac
}

echo "model $model ($((size >> 20)) MiB), fractions $fracs, $rounds rounds, $threads threads, $gen generated tokens"
for frac in $fracs; do
    for r in $(seq 1 "$rounds"); do
        for eng in $engines; do
            t=$(run_one "$eng" "$frac" "$r")
            echo "$frac% round $r $eng: $t tok/s"
        done
    done
done

# the table: medians over the rounds, and the expert cache's figures
python3 - "$out" "$fracs" "$engines" "$rounds" <<'EOF'
import json, os, statistics, sys
out, fracs, engines, rounds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4])
def load(e, f, r):
    try: return json.load(open(os.path.join(out, "%s-%s-%d.json" % (e, f, r))))
    except Exception: return None
def tps(e, j):
    if j is None: return None
    if e == "llama": return [t["avg_ts"] for t in j if t["n_gen"] > 0][0]
    return j["gen_tok_s"]
def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
print()
print("| limit | " + " | ".join("%s tok/s" % e for e in engines) +
      " | grok / llama | plan | hit rate | disk MB/token | I/O wait ms/token | disk MB/s | I/O bound tok/s | of bound | of min(bound, ceiling) |")
print("|---" * (len(engines) + 10) + "|")
for f in fracs:
    runs = {e: [load(e, f, r) for r in range(1, rounds + 1)] for e in engines}
    t = {e: med([tps(e, j) for j in runs[e]]) for e in engines}
    g = [j for j in runs["grok"] if j]
    gv = {e: [j for j in runs[e] if j] for e in engines if e.startswith("grok-") and e not in ("grok-mmap", "grok-ram")}
    def gm(k, scale=1.0):
        v = med([j.get(k) for j in g if k in j])
        return "-" if v is None else "%.3g" % (v * scale)
    ratio = "%.2fx" % (t["grok"] / t["llama"]) if "llama" in t and t.get("llama") and t.get("grok") else "-"
    plan = g[0]["mem_plan"] if g else "-"
    bound = med([j.get("io_bound_tok_s") for j in g])
    both = "-"
    if bound and t.get("grok-ram") and t.get("grok"):
        both = "%.3g" % (t["grok"] / min(bound, t["grok-ram"]))
    print("| %s %% | " % f + " | ".join("-" if t[e] is None else "%.2f" % t[e] for e in engines) +
          " | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (ratio, plan, gm("cache_hit_rate"), gm("disk_bytes_per_token", 1e-6),
          gm("io_wait_s_per_token", 1e3), gm("disk_read_rate_mb_s"), gm("io_bound_tok_s"), gm("io_bound_fraction"), both))
    for e, runs_e in gv.items():
        def vm(k, scale=1.0):
            v = med([j.get(k) for j in runs_e if k in j])
            return "-" if v is None else "%.3g" % (v * scale)
        print("|   %s, %s | %s tok/s | hit rate %s | disk MB/token %s | I/O wait ms/token %s | of bound %s |" % (
            f + " %", e, vm("gen_tok_s"), vm("cache_hit_rate"), vm("disk_bytes_per_token", 1e-6),
            vm("io_wait_s_per_token", 1e3), vm("io_bound_fraction")))
EOF
