#!/usr/bin/env bash
# mpi_bench.sh - decode speed and traffic of grok under mpirun on this
# machine (loopback, shared-memory transport) for np = 1, 2, 4 and each
# split (ffn, experts, layers), measured with `grok bench --json` (one
# thread per rank), next to what `grok plan` predicts for the same model and
# ranks. The plan's memory bandwidth per rank is calibrated from the np 1,
# 1-thread run (bytes per token x tok/s), so prediction and measurement
# share one unit. np 4 on a 2-core machine is oversubscribed: ranks share
# cores. Prints the load average before and after: on a shared machine the
# numbers mean little when it is high.
#   bash bench/mpi_bench.sh [build dir]     (default: build; N_GEN=48)
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
N_GEN=${N_GEN:-48} REPS=${REPS:-3}
# Open MPI spins in blocking collectives; with more busy processes than
# cores (np 4 here, or any other load) a spinning rank steals the core its
# peer needs. Yielding costs little when cores are free.
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
field() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(d.get(sys.argv[1], 0))' "$1"; }
# bench THREADS COMMAND...: grok bench --json of the model, run by COMMAND
bench() { local th=$1; shift; "$@" bench -m "$M" -p 16 -n "$N_GEN" --check 0 --no-stream --json --threads "$th" 2>"$TMP/err"; }
echo "model: $(du -m "$M" | cut -f1) MB, $N_GEN generated tokens, greedy, median of $REPS interleaved runs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
bench 1 "$GROK" >/dev/null # warm the page cache
CONFIGS="1:1:- 1:2:- 2:1:ffn 2:1:experts 2:1:layers 4:1:ffn 4:1:experts 4:1:layers"
: >"$TMP/runs"
for rep in $(seq 1 "$REPS"); do
  for cfg in $CONFIGS; do
    IFS=: read -r np th split <<<"$cfg"
    if [ "$np" = 1 ]; then
      out=$(bench "$th" "$GROK")
    else
      out=$(bench 1 mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$np" "$GROK" \
        --mpi-split "$split" --mpi-stats) || { echo "np $np $split: failed: $(head -c 300 "$TMP/err")"; continue; }
    fi
    rss=$(grep -o 'RSS weights [0-9.]* MiB' "$TMP/err" | awk '{printf "%s,", $3}' || true)
    # rank 0's mean wait per collective (seconds in them / count): the
    # loopback's effective latency on this machine, waiting for peers included
    wait=$(grep 'mpi: rank 0:' "$TMP/err" | grep -o 'in [0-9]* collectives, [0-9.]* s' | awk '{printf "%.0f", $4 / $2 * 1e6}' || true)
    echo "$cfg $(echo "$out" | field gen_tok_s) $(echo "$out" | field mpi_sent_bytes_per_token) $(echo "$out" | field bytes_per_token) ${rss:--} ${wait:--}" >>"$TMP/runs"
  done
done
median() { grep "^$1 " "$TMP/runs" | awk '{print $2}' | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
range() { grep "^$1 " "$TMP/runs" | awk '{print $2}' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END{printf "%.1f-%.1f", lo, hi}'; }
bpt=$(grep "^1:1:- " "$TMP/runs" | head -1 | awk '{print $4}')
tps1=$(median 1:1:-)
MEM_BW=$(awk -v b="$bpt" -v t="$tps1" 'BEGIN{printf "%.3f", b * t / 1e9}')
echo "np 1 (1 thread): $tps1 tok/s ($(range 1:1:-)), $bpt bytes of weights per token: $MEM_BW GB/s per thread for grok plan"
echo "np 1 (2 threads): $(median 1:2:-) tok/s ($(range 1:2:-))"
for cfg in $CONFIGS; do
  IFS=: read -r np th split <<<"$cfg"
  [ "$np" = 1 ] && continue
  line=$(grep "^$cfg " "$TMP/runs" | tail -1)
  pred=$("$GROK" plan "$M" --ranks "$np" --split "$split" --mem-bw "$MEM_BW" --bandwidth 40 --latency 1 \
    --ctx $((16 + N_GEN)) --pos $((16 + N_GEN / 2)) | grep -o '= [0-9.]* tok/s' | awk '{print $2}')
  printf "np %d %-7s (1 thread each): %6.1f tok/s (%s), rank 0 sent %5.1f KiB/token, weights RSS per rank MiB: %s wait per collective %s us | plan: %s tok/s\n" \
    "$np" "$split" "$(median "$cfg")" "$(range "$cfg")" "$(echo "$line" | awk '{print $3 / 1024}')" \
    "$(echo "$line" | awk '{print $5}')" "$(echo "$line" | awk '{print $6}')" "$pred"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
