#!/usr/bin/env bash
# sft_test.sh - chat fine-tuning end to end: malformed JSONL lines are
# refused naming the file and line (exit 1); rank-4 adapters trained on
# tests/fixtures/chat-capitals.jsonl (through the template grok serve uses,
# the assistant's tokens only) lower the held-out loss by more than 2 nats
# and print a sample answer at each evaluation; `grok serve --lora` then
# answers a held-out question in the trained form and stops at the end of
# the turn (finish_reason "stop"), so training and serving render alike.
set -euo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
BASE="$GROK_SRC/models/grok-mini.gguf"
[ -f "$BASE" ] || { echo "SKIP: $BASE (the bundled model) is absent"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
rm -rf "$GROK_TMP" && mkdir -p "$GROK_TMP" && cd "$GROK_TMP"
DATA="$GROK_SRC/tests/fixtures/chat-capitals.jsonl"

# Malformed lines: each refused with its file and line.
good='{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}]}'
i=0
while IFS='|' read -r bad want; do
  i=$((i + 1))
  printf '%s\n\n%s\n' "$good" "$bad" > bad$i.jsonl
  set +e
  "$GROK" train --init "$BASE" --lora 2 --data-format chat --data bad$i.jsonl -o x.gguf --steps 1 2> bad$i.log
  rc=$?
  set -e
  { [ $rc -eq 1 ] && grep -q "bad$i.jsonl:3: .*$want" bad$i.log; } || {
    echo "FAIL: '$bad' (rc $rc): $(cat bad$i.log)"; exit 1; }
done <<'EOF'
{"messages":[{"role":"user","content":"Hi"}|not valid JSON
{"msgs":[]}|non-empty array "messages"
{"messages":[]}|non-empty array "messages"
{"messages":[{"role":"robot","content":"Hi"},{"role":"assistant","content":"x"}]}|role 'robot' is not system, user, assistant or tool
{"tools":[],"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"x"}]}|"tools" is not supported in training data
{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":null,"tool_calls":{}}]}|messages\[1\].tool_calls must be an array
{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c"}]}]}|messages\[1\].tool_calls\[0\] must have function.name
{"messages":[{"role":"user","content":7},{"role":"assistant","content":"x"}]}|content must be a string
{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]},{"role":"assistant","content":"x"}]}|messages\[0\].content: only {"type":"text","text":...} parts are supported
{"messages":[{"role":"user"},{"role":"assistant","content":"x"}]}|has no "content"
{"messages":[{"role":"user","content":"Hi"}]}|no assistant message
{"messages":[{"content":"Hi"},{"role":"assistant","content":"x"}]}|must be an object with a string "role"
EOF
printf '%s\n{"messages":[{"role":"user","content":"\xff"},{"role":"assistant","content":"x"}]}\n' "$good" > bad-utf8.jsonl
set +e
"$GROK" train --init "$BASE" --lora 2 --data-format chat --data bad-utf8.jsonl -o x.gguf 2> bad-utf8.log; rc=$?
"$GROK" train --data-format chat --data "$DATA" --vocab-size 300 -o x.gguf 2> bad-nolora.log; rc2=$?
set -e
[ $rc -eq 1 ] && grep -q "bad-utf8.jsonl:2: not valid UTF-8" bad-utf8.log || { echo "FAIL: invalid UTF-8: $(cat bad-utf8.log)"; exit 1; }
[ $rc2 -eq 2 ] && grep -q -- "--lora" bad-nolora.log || { echo "FAIL: chat without --lora: $(cat bad-nolora.log)"; exit 1; }
echo "ok: $((i + 1)) malformed files refused with file and line; chat data needs --lora"

# Tool use as grok serve renders it: an assistant's tool_calls (content null)
# and the tool's answer are training text; a step runs on them.
printf '%s\n' '{"messages":[{"role":"user","content":"Weather in Oslo?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\": \"Oslo\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"3C"},{"role":"assistant","content":"3C in Oslo."}]}' > tools.jsonl
"$GROK" train --init "$BASE" --lora 2 --data-format chat --data tools.jsonl --steps 1 --seq 96 -o tools.gguf 2> tools.log \
  || { echo "FAIL: tool messages in chat data: $(cat tools.log)"; exit 1; }
echo "ok: tool calls and tool messages train"

# Fine-tune: the held-out loss falls, a sample answer is printed.
"$GROK" train --init "$BASE" --lora 4 --lora-alpha 16 --data-format chat --data "$DATA" --holdout 0.1 \
  --steps 24 --batch 4 --seq 96 --lr 2e-2 --warmup 2 --threads 2 --eval-every 12 --seed 1 -o chat.gguf 2> train.log \
  || { cat train.log; exit 1; }
before=$(sed -n 's/.*held-out loss before fine-tuning \([0-9.]*\).*/\1/p' train.log)
after=$(grep "^  held-out loss [0-9]" train.log | tail -1 | sed 's/.*held-out loss \([0-9.]*\).*/\1/')
echo "held-out loss on the assistant's tokens: $before -> $after"
awk -v a="$before" -v b="$after" 'BEGIN { exit !(b < a - 2.0) }' || { echo "FAIL: the loss did not fall by 2 nats"; exit 1; }
[ "$(grep -c '^  sample answer: "' train.log)" = 2 ] || { echo "FAIL: no sample answer per evaluation"; cat train.log; exit 1; }
grep '^  sample answer' train.log | tail -1

# Served with the adapter (unmerged): the trained form, and the turn ends.
cp "$BASE" tiny.gguf
source "$GROK_SRC/tests/serve_lib.sh"
start s --lora chat.gguf --threads 2 --parallel 1
body='{"messages":[{"role":"user","content":"What is the capital of Nepal?"}],"temperature":0,"max_tokens":40}'
out=$(curl -s "http://127.0.0.1:$PORT_s/v1/chat/completions" -H 'Content-Type: application/json' -d "$body")
reply=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); c=d["choices"][0]; print(c["finish_reason"]); print(c["message"]["content"])')
echo "grok serve --lora: $(echo "$reply" | tr '\n' ' ')"
[ "$(echo "$reply" | head -1)" = stop ] || fail "the answer did not end at the turn's end: $out"
echo "$reply" | sed -n 2p | grep -q "The capital of" || fail "the answer is not in the trained form: $out"
kill -TERM "$PID_s"; wait "$PID_s" 2>/dev/null || true
PIDS=()
echo "PASS"
