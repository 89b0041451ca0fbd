#!/usr/bin/env bash
# finetune.sh - throughput and memory of LoRA fine-tuning over a frozen
# quantized base, against full training in f32, and a Grok-1 projection.
#
# 1. The d_model 2048 bench model of docs/kernels.md (8 layers, 8 experts
#    of 5632, vocab 32000, 2.4 B parameters) at q8_0, and the same
#    re-encoded as pure q4_K: rank-16 LoRA on every attention projection
#    and expert, with the exact (f32 activation) and the fast (8-bit) base
#    products. Peak RSS against the bound of docs/finetune.md (base file +
#    adapter state + the trainer's buffers, as grok train prints them).
# 2. Full training in f32 does not fit that model on a small machine (16
#    bytes a parameter for weights, gradient and AdamW, plus activations:
#    over 40 GB), so a d_model 512 model of the same layout (8 layers, 8
#    experts of 1408, 160 M parameters) is trained both ways: full f32
#    training against LoRA over its q8_0 and q4_K files.
# Configurations alternate within each round (ROUNDS), so a drifting
# machine hurts them alike; medians are printed. Throughput is the
# trainer's own count over its steps (set-up and output excluded): tokens
# per wall second and tokens per CPU-second (all threads), which a shared
# machine's load moves less. Peak RSS is the kernel's (/usr/bin/time -v).
# Then the cost of one token is scaled by floating-point work to Grok-1,
# and its memory by the bound: a prediction, printed as such.
#   GROK=build/grok DIR=/tmp/grok-finetune-bench THREADS=all STEPS=3 BATCH=4 SEQ=64 ROUNDS=1
#   GROK1_CORES=64 (the projected machine's cores) GROK1_BATCH=2 GROK1_SEQ=2048
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GROK=${GROK:-build/grok}
DIR=${DIR:-/tmp/grok-finetune-bench}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-3} BATCH=${BATCH:-4} SEQ=${SEQ:-64} ROUNDS=${ROUNDS:-1} CORES=${GROK1_CORES:-64}
G1_BATCH=${GROK1_BATCH:-2} G1_SEQ=${GROK1_SEQ:-2048}
PY=/usr/bin/python3
mkdir -p "$DIR"
big=(--d-model 2048 --layers 8 --heads 16 --kv-heads 4 --experts 8 --ffn 5632 --vocab 32000)
small=(--d-model 512 --layers 8 --heads 8 --kv-heads 2 --experts 8 --ffn 1408 --vocab 32000)
[ -f "$DIR/big-q8_0.gguf" ] || "$GROK" new -o "$DIR/big-q8_0.gguf" "${big[@]}" --type q8_0 --seed 1
[ -f "$DIR/big-q4_K.gguf" ] || "$GROK" quantize "$DIR/big-q8_0.gguf" "$DIR/big-q4_K.gguf" Q4_K --pure
[ -f "$DIR/small-f32.gguf" ] || "$GROK" new -o "$DIR/small-f32.gguf" "${small[@]}" --type f32 --seed 1
[ -f "$DIR/small-q8_0.gguf" ] || "$GROK" new -o "$DIR/small-q8_0.gguf" "${small[@]}" --type q8_0 --seed 1
[ -f "$DIR/small-q4_K.gguf" ] || "$GROK" quantize "$DIR/small-f32.gguf" "$DIR/small-q4_K.gguf" Q4_K --pure
[ -f "$DIR/text.txt" ] || { for f in /usr/share/common-licenses/*; do cat "$f"; done | head -c 400000 > "$DIR/text.txt"; }

common=(--data "$DIR/text.txt" --holdout 0 --steps "$STEPS" --batch "$BATCH" --seq "$SEQ" --threads "$THREADS"
        --eval-every 1000000 --seed 1)
lora=(--lora 16 --lora-targets attn,experts)
# name | command line (after grok train)
configs=(
  "q8_0 LoRA exact|--init $DIR/big-q8_0.gguf ${lora[*]} --kernels exact"
  "q4_K LoRA exact|--init $DIR/big-q4_K.gguf ${lora[*]} --kernels exact"
  "q8_0 LoRA fast|--init $DIR/big-q8_0.gguf ${lora[*]} --kernels fast"
  "q4_K LoRA fast|--init $DIR/big-q4_K.gguf ${lora[*]} --kernels fast"
  "small q8_0 LoRA exact|--init $DIR/small-q8_0.gguf ${lora[*]} --kernels exact"
  "small q4_K LoRA exact|--init $DIR/small-q4_K.gguf ${lora[*]} --kernels exact"
  "small f32 full|--init $DIR/small-f32.gguf"
)
: > "$DIR/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  for c in "${configs[@]}"; do
    name=${c%%|*} args=${c#*|}
    log="$DIR/run.log"
    # shellcheck disable=SC2086
    /usr/bin/time -v "$GROK" train $args "${common[@]}" -o "$DIR/out.gguf" > "$log" 2>&1 || { cat "$log"; exit 1; }
    # "grok train: steps: N tokens in W s, C CPU-s: X tok/s, Y tokens per CPU-second"
    rate=$(sed -n 's/^grok train: steps: .*: \([0-9.]*\) tok\/s, \([0-9.]*\) tokens per CPU-second$/\1|\2/p' "$log")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/\1/p' "$log")
    # "grok train: peak RSS A MB (base file B MB, mapped; adapters with AdamW C MB; trainer D MB)"
    terms=$(sed -n 's/^grok train: peak RSS .* (base file \([0-9.]*\) MB, mapped; adapters with AdamW \([0-9.]*\) MB; trainer \([0-9.]*\) MB)$/\1|\2|\3/p' "$log")
    [ -n "$rate" ] && [ -n "$rss" ] || { cat "$log"; echo "finetune.sh: no rate or RSS in the output of $name" >&2; exit 1; }
    echo "$name|$rate|$rss|${terms:-||}" | tee -a "$DIR/results.txt"
  done
done

"$PY" - "$DIR/results.txt" "$THREADS" "$CORES" "$STEPS" "$BATCH" "$SEQ" "$G1_BATCH" "$G1_SEQ" <<'EOF'
import sys, statistics
rows = [l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip()]
threads, cores, steps, batch, seq, g1_batch, g1_seq = map(int, sys.argv[2:9])
by = {}
for name, tps, cps, rss, f, ad, tr in rows:
    by.setdefault(name, []).append((float(tps), float(cps), int(rss) * 1024 / 1e6,
                                    *(float(x) if x else None for x in (f, ad, tr))))
med = {k: [statistics.median(v[i] for v in vs) if vs[0][i] is not None else None for i in range(6)]
       for k, vs in by.items()}
print(f"\n{len(rows) // len(by)} round(s), {threads} threads, {steps} steps x {batch} x {seq} tokens, medians\n")
print("| configuration | tokens/s | tokens per CPU-second | peak RSS | bound: file + adapter state + trainer |")
print("|---|---|---|---|---|")
for k, (t, c, r, f, ad, tr) in med.items():
    bound = f"{f + ad + tr:.0f} MB = {f:.0f} + {ad:.0f} + {tr:.0f}" if f is not None else "(full training)"
    print(f"| {k} | {t:.2f} | {c:.2f} | {r:.0f} MB | {bound} |")
def ratio(a, b, i=1):
    return med[a][i] / med[b][i] if a in med and b in med else float("nan")
for q in ("q8_0", "q4_K"):
    a = f"small {q} LoRA exact"
    print(f"\nsmall model: LoRA over {q} / full f32 training: {ratio(a, 'small f32 full'):.2f}x tokens per CPU-second "
          f"({ratio(a, 'small f32 full', 0):.2f}x tokens/s), {ratio(a, 'small f32 full', 2):.3f}x the peak RSS", end="")
print(f"\nbench model, tokens per CPU-second: fast / exact kernels: q8_0 {ratio('q8_0 LoRA fast', 'q8_0 LoRA exact'):.2f}x, "
      f"q4_K {ratio('q4_K LoRA fast', 'q4_K LoRA exact'):.2f}x; q4_K / q8_0 (exact) {ratio('q4_K LoRA exact', 'q8_0 LoRA exact'):.2f}x")

# Floating-point work of one training token with per-layer recomputation:
# three passes over the active weights (forward, recomputed forward, dX),
# two over the output head (forward, dX), 2 flops a multiply-add; the
# LoRA products and attention are small beside them at these lengths.
def flops(d, L, qd, kvd, ff, K, V):
    body, head = L * (2 * d * qd + 2 * d * kvd + K * 3 * d * ff), d * V
    return 2 * (3 * body + 2 * head)
bench = flops(2048, 8, 2048, 512, 5632, 2, 32000)
G = dict(d=6144, L=64, qd=6144, kvd=1024, ff=32768, K=2, V=131072, E=8)
grok1 = flops(G["d"], G["L"], G["qd"], G["kvd"], G["ff"], G["K"], G["V"])
print(f"\nwork per token: bench model {bench / 1e9:.1f} GFLOP, Grok-1 {grok1 / 1e9:.1f} GFLOP ({grok1 / bench:.0f}x)")
print("PREDICTION (not measured): Grok-1 LoRA fine-tuning on one machine of "
      f"{cores} cores like these, at this run's work per CPU-second, scaling perfectly over the cores:")
for k in ("q8_0 LoRA exact", "q8_0 LoRA fast", "q4_K LoRA exact", "q4_K LoRA fast"):
    if k not in med:
        continue
    gflops_per_core = med[k][1] * bench / 1e9
    tps = gflops_per_core * 1e9 * cores / grok1
    print(f"  {k.replace(' LoRA', ' base,')}: {gflops_per_core:.1f} GFLOP/s per core -> {tps:.2f} tokens/s, "
          f"{1e7 / tps / 3600:.0f} hours per 10 M tokens")

# Memory: the bound of docs/finetune.md at Grok-1's shapes, rank 16.
def adapter_params(r, targets):
    d, qd, kvd, ff, E, L = G["d"], G["qd"], G["kvd"], G["ff"], G["E"], G["L"]
    per = {"attn": r * (d + qd) * 2 + r * (d + kvd) * 2, "experts": E * 3 * r * (d + ff)}
    return L * sum(per[t] for t in targets)
N = g1_batch * g1_seq
d, L, qd, kvd, ff, K, V = (G[x] for x in ("d", "L", "qd", "kvd", "ff", "K", "V"))
act = 4 * N * ((L + 14 + 3 * K) * d + 4 * qd + 4 * kvd + (3 * K + 1) * ff)
C = min(N, (1 << 25) // V)
head = 4 * C * (V + 2 * d)
print(f"\nPREDICTION (the bound, not measured): Grok-1, rank 16, {N} tokens a step ({g1_batch} x {g1_seq}): "
      f"activations {act / 1e9:.1f} GB, head {head / 1e9:.2f} GB")
print("| base | file | adapter state, attn / attn+experts | peak, attn / attn+experts |")
print("|---|---|---|---|")
for base, size in (("Q4_K_M", 191.8e9), ("Q8_0", 335.4e9)):
    pa, pe = adapter_params(16, ["attn"]), adapter_params(16, ["attn", "experts"])
    print(f"| {base} | {size / 1e9:.1f} GB | {20 * pa / 1e9:.1f} / {20 * pe / 1e9:.1f} GB | "
          f"{(size + 20 * pa + act + head) / 1e9:.0f} / {(size + 20 * pe + act + head) / 1e9:.0f} GB |")
EOF
