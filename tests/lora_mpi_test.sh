#!/usr/bin/env bash
# lora_mpi_test.sh - LoRA fine-tuning split over MPI ranks (mpirun
# --oversubscribe on loopback): with the same global batch and seed, the
# adapter written by -np 2 and by -np 3 (3 ranks over 4 sequences: uneven
# shares, several gradient subtrees per rank) equals the one-process
# adapter byte for byte, on text with dropout and on chat data; a run
# stopped at a checkpoint under -np 2 and resumed under -np 2 writes the
# same bytes too; full training and a batch smaller than the ranks are
# refused under mpirun; and `grok run --lora` with the model split over the
# ranks prints the one-process text. Skips without mpirun or an MPI build.
set -uo pipefail
: "${GROK:?}" "${GROK_TMP:?}" "${GROK_SRC:?}"
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
. "$GROK_SRC/tests/mpi_lib.sh"
. "${GROK_SRC:?}/tests/lib.sh"
mpi() { local np=$1; shift; timeout 300 "${MPIRUN[@]}" -np "$np" "$GROK" "$@"; }

"$GROK" new -o base.gguf --force --d-model 64 --layers 2 --heads 4 --kv-heads 2 --experts 4 --ffn 64 \
  --vocab 300 --type q8_0 --seed 5 2>/dev/null || bad "grok new"
head -c 6000 "$GROK_SRC/tests/fixtures/kjv-heldout.txt" > text.txt
T=(train --init base.gguf --lora 4 --lora-targets all --lora-dropout 0.1 --data text.txt --holdout 0.2
   --steps 4 --batch 4 --seq 16 --lr 1e-2 --warmup 1 --threads 1 --eval-every 2 --seed 3)
"$GROK" "${T[@]}" -o one.gguf 2> one.log || { bad "one process: $(tail -3 one.log)"; }
for np in 2 3; do
  mpi $np "${T[@]}" -o np$np.gguf 2> np$np.log
  cmp -s one.gguf np$np.gguf && ok "text, dropout: -np $np writes the one-process adapter byte for byte" \
    || bad "text: -np $np adapter differs: $(tail -3 np$np.log)"
done
# the held-out losses printed agree as well
diff <(grep "held-out loss" one.log) <(grep "held-out loss" np2.log) > /dev/null \
  && ok "the held-out losses printed under -np 2 are the one-process ones" || bad "held-out losses differ"
# checkpoint under -np 2, resumed under -np 2
mpi 2 "${T[@]}" --stop-at 2 --checkpoint ck.gguf -o part.gguf 2> part.log
mpi 2 "${T[@]}" --resume ck.gguf -o resumed.gguf 2> resumed.log
cmp -s one.gguf resumed.gguf && ok "stopped and resumed under -np 2: the uninterrupted adapter" \
  || bad "resume under MPI differs: $(tail -3 resumed.log)"

# chat data (assistant tokens only), every target
C=(train --init base.gguf --lora 2 --lora-targets all --data-format chat
   --data "$GROK_SRC/tests/fixtures/chat-capitals.jsonl" --holdout 0.1 --steps 3 --batch 4 --seq 160
   --lr 1e-2 --warmup 1 --threads 1 --eval-every 3 --sample-tokens 4 --seed 4)
"$GROK" "${C[@]}" -o chat1.gguf 2> chat1.log || bad "chat, one process: $(tail -3 chat1.log)"
mpi 2 "${C[@]}" -o chat2.gguf 2> chat2.log
cmp -s chat1.gguf chat2.gguf && ok "chat: -np 2 writes the one-process adapter byte for byte" \
  || bad "chat: -np 2 differs: $(tail -3 chat2.log)"
[ "$(grep -c "sample answer" chat2.log)" = 1 ] && ok "chat: one sample answer per evaluation, from rank 0" \
  || bad "chat: sample answers: $(grep -c "sample answer" chat2.log)"

# the adapter applied at load (not merged) under a model split over the ranks
a=$("$GROK" run -m base.gguf --lora one.gguf -p "And the" -n 12 --temp 0 2>/dev/null)
for split in ffn experts layers; do
  b=$(mpi 2 run -m base.gguf --lora one.gguf -p "And the" -n 12 --temp 0 --mpi-split $split 2>err.txt)
  [ -n "$a" ] && [ "$a" = "$b" ] && ok "run --lora under -np 2 --mpi-split $split: the one-process text" \
    || bad "run --lora, split $split: '$a' vs '$b' $(head -c 300 err.txt)"
done

# refusals
out=$(mpi 2 train --data text.txt --vocab-size 300 -o full.gguf 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "only LoRA fine-tuning" && ok "full training under mpirun is refused" \
  || bad "full training under mpirun: rc $rc: $(echo "$out" | head -c 300)"
out=$(mpi 3 "${T[@]}" --batch 2 -o x.gguf 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "smaller than the 3 ranks" && ok "a batch smaller than the ranks is refused" \
  || bad "batch < ranks: rc $rc: $(echo "$out" | head -c 300)"

summary
