#!/usr/bin/env bash
# bench/iquants.sh - docs/types.md's side-by-side figures for the i-quant
# types: one random f32 model (grok new; default d_model 1024, 4 layers, 16
# heads, 4 KV heads, 8 experts of 2816, vocabulary 32000, 1.3 GB), an
# importance matrix from llama-imatrix over README.md + docs/*.md +
# ../shared/GROK1.md, then llama-quantize --imatrix to each file type; the
# same files for both engines.
# Per file: KL divergence and top-1 agreement against the f32 model (grok
# perplexity --kl-base, CHUNKS chunks of CTX tokens), then R interleaved
# rounds of grok bench -p 512 -n N (its generation follows the 512-token
# prompt) and llama-bench -p 512 -n 0, then -p 0 -n N -d 512 (generation
# at depth 512, as grok's), both with THREADS threads and an f16
# KV cache (llama-bench's default). Medians.
#
#   LLAMA=/path/to/llama.cpp/build/bin bash bench/iquants.sh [DIR]
# DIR (default /tmp/grok-iquants) gets the f32 model, the imatrix and one
# file per type (60-200 MB each), kept for reruns; KEEP=0 deletes them.
# Environment: MIXES (llama-quantize file types; NAME:pure writes every
# matrix as NAME's main type with --pure, the token embedding q8_0; default
# the seven i-quant types, each pure: IQ2_S:pure is iq2_xs and IQ2_M:pure
# iq2_s, as llama-quantize maps them), R (3), N (32), THREADS (2), CTX (256),
# CHUNKS (8), BUILD (build), ONLY (quality or speed), MODEL ("D LAYERS FFN"
# of the f32 model, default "1024 4 2816"), LLAMA_PRELOAD (a library
# llama.cpp's binaries run with as LD_PRELOAD: on machines where ggml's AMX
# matmul faults, a shim refusing the AMX permission request).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${LLAMA:?set LLAMA to the directory of the llama.cpp binaries (llama-quantize, llama-imatrix, llama-bench)}"
DIR=${1:-/tmp/grok-iquants}
BUILD=${BUILD:-build}
R=${R:-3} N=${N:-32} THREADS=${THREADS:-2} CTX=${CTX:-256} CHUNKS=${CHUNKS:-8}
MIXES=${MIXES:-"IQ1_S:pure IQ1_M:pure IQ2_XXS:pure IQ2_S:pure IQ2_M:pure IQ3_XXS:pure IQ3_S:pure"}
read -r MD ML MF <<<"${MODEL:-1024 4 2816}"
mkdir -p "$DIR"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
G="$BUILD/grok"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
. bench/text.sh && bench_text "$DIR"
F32="$DIR/f32.gguf" IMAT="$DIR/f32.imatrix"
[ -f "$F32" ] || "$G" new -o "$F32" --d-model "$MD" --layers "$ML" --heads 16 --kv-heads 4 --experts 8 --ffn "$MF" \
  --type f32 --vocab 32000 --seed 1 2>&1 | tail -1
[ -f "$IMAT" ] || "$LLAMA/llama-imatrix" -m "$F32" -f "$TEXT" -o "$IMAT" --chunks 8 -c 512 -t "$THREADS" \
  --process-output >"$DIR/imatrix.log" 2>&1
files=()
for m in $MIXES; do
  name=${m%:pure} flags=()
  [ "$name" != "$m" ] && flags=(--pure --token-embedding-type q8_0)
  out="$DIR/$name${flags[*]:+-pure}.gguf"
  [ -f "$out" ] || "$LLAMA/llama-quantize" "${flags[@]}" --imatrix "$IMAT" "$F32" "$out" "$name" "$THREADS" \
    >"$out.log" 2>&1 || { echo "llama-quantize $m failed: see $out.log"; exit 1; }
  files+=("$out")
done
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
if [ "${ONLY:-}" != speed ]; then
  for f in "${files[@]}"; do
    printf 'quality\t%s\t' "$(basename "$f" .gguf)" >> "$OUT"
    "$G" perplexity -m "$f" -f "$TEXT" --ctx "$CTX" --chunks "$CHUNKS" --kl-base "$F32" --threads "$THREADS" \
      --json 2>/dev/null | tr -d '\n' >> "$OUT"
    echo >> "$OUT"
    tail -1 "$OUT"
  done
fi
if [ "${ONLY:-}" != quality ]; then
  for r in $(seq "$R"); do
    for f in "${files[@]}"; do
      b=$(basename "$f" .gguf)
      js=$("$G" bench -m "$f" -p 512 -n "$N" --threads "$THREADS" --kv-type f16 --check 2 --json 2>/dev/null) || js='{"failed": true}'
      printf 'grok\t%s\t%s\n' "$b" "$js" | tee -a "$OUT"
      for args in "-p 512 -n 0" "-p 0 -n $N -d 512"; do # prompt at depth 0; generation at depth 512
        # shellcheck disable=SC2086
        js=$(env ${LLAMA_PRELOAD:+LD_PRELOAD="$LLAMA_PRELOAD"} "$LLAMA/llama-bench" -m "$f" $args -t "$THREADS" -r 1 \
          -o json 2>/dev/null | tr -d '\n') || js='[]'
        printf 'llama\t%s\t%s\n' "$b" "$js" | tee -a "$OUT" | cut -c1-120
      done
    done
  done
fi
/usr/bin/python3 - "$OUT" "${files[@]}" <<'PY'
import json, os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, name, js = line.rstrip("\n").split("\t", 2)
    try:
        d = json.loads(js)
    except ValueError:
        continue
    rows.setdefault(name, {}).setdefault(kind, []).append(d)
med = lambda v: statistics.median(v) if v else float("nan")
print("\n| file | GB | KL | top-1 | prompt 512 tok/s grok.c / llama.cpp | ratio | gen tok/s grok.c / llama.cpp | ratio | grok.c gen efficiency |")
print("|---|---|---|---|---|---|---|---|---|")
for f in sys.argv[2:]:
    name = os.path.basename(f)[:-5]
    r = rows.get(name, {})
    q = (r.get("quality") or [{}])[0]
    g = [d for d in r.get("grok", []) if not d.get("failed")]
    gp, gg = med([d["prompt_tok_s"] for d in g]), med([d["gen_tok_s"] for d in g])
    eff = med([d["efficiency"] for d in g])
    lp = med([t["avg_ts"] for ts in r.get("llama", []) for t in ts if t.get("n_prompt") == 512 and t.get("n_depth", 0) == 0])
    lg = med([t["avg_ts"] for ts in r.get("llama", []) for t in ts if t.get("n_gen", 0) > 0 and t.get("n_depth", 0) == 512])
    print("| %s | %.2f | %.4f | %.1f %% | %.1f / %.1f | %.2f× | %.1f / %.1f | %.2f× | %.0f %% |" % (
        name, os.path.getsize(f) / 1e9, q.get("kl_mean", float("nan")), 100 * q.get("top1_agree", float("nan")),
        gp, lp, gp / lp if lp else float("nan"), gg, lg, gg / lg if lg else float("nan"), 100 * eff))
PY
[ "${KEEP:-1}" = 1 ] || rm -f "$DIR"/*.gguf "$DIR"/*.gguf.log
