#!/usr/bin/env bash
# mpi_bench.sh - decode speed and traffic of grok under mpirun on this
# machine (loopback, shared-memory transport) for np = 1, 2, 4, both MoE
# splits, next to what `grok plan` predicts for the same model and ranks.
# np 4 on a 2-core machine is oversubscribed: ranks share cores.
#   bash bench/mpi_bench.sh [build dir]     (default: build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GROK=${1:-build}/grok
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm_rsh_agent=
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
M=$TMP/bench.gguf
# 8 KV heads and 8 experts like Grok-1, scaled down: 0.23 GB of q8_0
"$GROK" new -o "$M" --force --d-model 1024 --layers 4 --heads 16 --kv-heads 8 --head-dim 64 \
  --experts 8 --experts-used 2 --ffn 2048 --vocab 8000 --type q8_0 --seed 1 2>/dev/null
N_GEN=${N_GEN:-48}
speed() { grep -o 'generation: [0-9]* tokens, [0-9.]* tok/s' | awk '{print $4}'; }
echo "model: $(du -m "$M" | cut -f1) MB, $N_GEN generated tokens, greedy"
"$GROK" run -m "$M" -p "hello" -n 4 --temp 0 --ignore-eos >/dev/null 2>&1 # warm the page cache
for np in 1 2 4; do
  for split in ffn experts; do
    [ $np = 1 ] && [ $split = experts ] && continue
    if [ $np = 1 ]; then
      s=$("$GROK" run -m "$M" -p "hello" -n $N_GEN --temp 0 --ignore-eos --threads 2 2>&1 >/dev/null | speed)
      echo "np 1 (2 threads):           $s tok/s"
      continue
    fi
    out=$(mpirun --allow-run-as-root --oversubscribe --bind-to none -np $np "$GROK" run -m "$M" \
      -p "hello" -n $N_GEN --temp 0 --ignore-eos --threads 1 --mpi-split $split --mpi-stats 2>&1 >/dev/null)
    s=$(echo "$out" | speed)
    kib=$(echo "$out" | grep "rank 0:" | grep -o '([0-9.]* KiB/token)' | tr -d '()')
    rss=$(echo "$out" | grep -o 'RSS weights [0-9.]* MiB' | awk '{printf "%s ", $3}')
    echo "np $np split $split (1 thread each): $s tok/s, sent per rank $kib (prompt included), weights RSS per rank MiB: $rss"
  done
done
echo "--- grok plan for the same model (mem-bw from the np 1 run: set MEM_BW; loopback ~40 Gbit/s, 1 us)"
for np in 1 2 4; do
  for split in ffn experts; do
    "$GROK" plan "$M" --ranks $np --split $split --mem-bw "${MEM_BW:-10}" --bandwidth 40 --latency 1 \
      --ctx 64 --pos 8 | grep -E "tok/s" | sed "s/^/np $np $split: /"
  done
done
