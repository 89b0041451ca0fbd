#!/usr/bin/env bash
# think_test.sh - think requests (docs/think.md) over real HTTP with curl, on
# the bundled arithmetic model: the response's think fields agree with its
# candidates (votes, confidence, the chosen one's text); the same seed gives
# the same answer; the samples of one request, which compute their prompt
# once and copy its KV cache, equal separate requests' (seed + i) and
# `grok run --samples` (the metric of shared prompt tokens grows); logprob
# and verifier selection pick the best candidate by their score; the stream
# carries progress chunks and ends with the chosen text; grok_routing is the
# chosen sample's; reasoning_effort maps onto samples; bad fields give 400s
# naming them; grok run's flags.
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
PY=/usr/bin/python3
MODEL="$GROK_SRC/models/grok-arith.gguf"
VERIFIER="$GROK_SRC/models/grok-arith-verifier.gguf"
# without the trained verifier the generator judges (what is checked is how
# scores choose, and test_think_verifier checks the scores themselves)
[ -f "$VERIFIER" ] || VERIFIER="$MODEL"
[ -f "$MODEL" ] || { echo "SKIP: $MODEL is absent"; exit 77; }
mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
rm -f ./*.port ./*.log ./*.out
. "$GROK_SRC/tests/serve_lib.sh"
cp "$MODEL" tiny.gguf # serve_lib's start() serves tiny.gguf

json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1"; }
post() { curl -s -H 'Content-Type: application/json' "$@"; }

vargs=(--verifier "$VERIFIER" --verifier-suffix '\nV:' --verifier-yes " yes")
start main --threads 2 --parallel 8 --queue 8 --ctx 256 "${vargs[@]}"
U="http://127.0.0.1:$PORT_main"
Q='"prompt":"Q: 47+385-96\n","max_tokens":48,"stop":["\n\n"],"temperature":0.9'

# ---- the fields agree with the candidates
r=$(post "$U/v1/completions" -d "{$Q,\"seed\":5,\"think\":{\"samples\":8,\"candidates\":true}}")
echo "$r" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
t = d["think"]
assert len(d["choices"]) == 1 and d["choices"][0]["index"] == 0, d["choices"]
assert t["samples"] == 8 and t["select"] == "vote" and t["extract"] == "last_number", t
c = t["candidates"]
assert len(c) == 8 and [x["index"] for x in c] == list(range(8)), c
assert sum(v["votes"] for v in t["votes"]) + t["no_answer"] == 8, t
assert all(t["votes"][i]["votes"] >= t["votes"][i + 1]["votes"] for i in range(len(t["votes"]) - 1)), t["votes"]
top = t["votes"][0]
assert t["answer"] == top["answer"] and abs(t["confidence"] - top["votes"] / 8) < 1e-12, t
ch = c[t["chosen"]]
assert ch["answer"] == t["answer"] and ch["text"] == d["choices"][0]["text"], (ch, d["choices"][0])
same = [x for x in c if x["answer"] == t["answer"]]
assert ch["mean_logprob"] == max(x["mean_logprob"] for x in same), same
assert d["usage"]["completion_tokens"] == sum(x["tokens"] for x in c), d["usage"]
assert all(x["mean_logprob"] < 0 and x["finish_reason"] in ("stop", "length") for x in c), c
' || fail "think fields: $r"
ok "think fields agree with the candidates"

# ---- the same seed, the same answer and samples
r2=$(post "$U/v1/completions" -d "{$Q,\"seed\":5,\"think\":{\"samples\":8,\"candidates\":true}}")
[ "$(echo "$r" | json 'd["think"]')" = "$(echo "$r2" | json 'd["think"]')" ] || fail "not deterministic: $r / $r2"
ok "same seed, same think object"

# ---- shared prefix: the samples equal separate requests with seed + i,
# and an ordinary n=4 request's choices (which share the prompt too)
shared0=$(curl -s "$U/metrics" | awk '$1 == "grok_prompt_tokens_shared_total" {print $2}')
n4=$(post "$U/v1/completions" -d "{$Q,\"seed\":40,\"n\":4}")
shared1=$(curl -s "$U/metrics" | awk '$1 == "grok_prompt_tokens_shared_total" {print $2}')
np=$(echo "$n4" | json 'd["usage"]["prompt_tokens"]')
[ "$((shared1 - shared0))" = "$((3 * np))" ] || fail "n=4 shared $((shared1 - shared0)) prompt tokens, want $((3 * np))"
t4=$(post "$U/v1/completions" -d "{$Q,\"seed\":40,\"think\":{\"samples\":4,\"candidates\":true}}")
for i in 0 1 2 3; do
  one=$(post "$U/v1/completions" -d "{$Q,\"seed\":$((40 + i))}" | json 'd["choices"][0]["text"]')
  [ "$one" = "$(echo "$t4" | json "d['think']['candidates'][$i]['text']")" ] || fail "think sample $i differs from a separate request"
  [ "$one" = "$(echo "$n4" | json "d['choices'][$i]['text']")" ] || fail "n=4 choice $i differs from a separate request"
done
ok "shared-prefix samples equal separate requests ($np prompt tokens copied 3 times)"

# ---- grok_routing on a think request: the chosen sample's, whole and
# streamed, equal to that sample's routing as a separate request's
tr=$(post "$U/v1/completions" -d "{$Q,\"seed\":40,\"grok_routing\":true,\"think\":{\"samples\":4}}")
ci=$(echo "$tr" | json 'd["think"]["chosen"]')
alone=$(post "$U/v1/completions" -d "{$Q,\"seed\":$((40 + ci)),\"grok_routing\":true}" | json 'd["choices"][0]["grok_routing"]')
[ -n "$alone" ] && [ "$(echo "$tr" | json 'd["choices"][0]["grok_routing"]')" = "$alone" ] ||
  fail "think grok_routing differs from sample $ci's own request: $tr"
post -N "$U/v1/completions" -d "{$Q,\"seed\":40,\"grok_routing\":true,\"stream\":true,\"think\":{\"samples\":4}}" >routed.out
[ "$(grep '"grok_routing"' routed.out | sed 's/^data: //' | json 'd["choices"][0]["grok_routing"]')" = "$alone" ] ||
  fail "streamed think grok_routing: $(cat routed.out)"
ok "think grok_routing: the chosen sample's, whole and streamed"

# ---- grok run --samples: the same samples and choice
"$GROK" run -m "$MODEL" -p "Q: 47+385-96
" -n 48 --stop $'\n\n' --temp 0.9 --top-k 0 --top-p 1 --min-p 0 --seed 40 --samples 4 --candidates \
  --threads 2 >run.out 2>run.log || fail "grok run --samples: $(cat run.log)"
want=$(echo "$t4" | json 'd["choices"][0]["text"]')
[ "$(head -c -1 run.out)" = "$want" ] || fail "grok run chose '$(cat run.out)', the server '$want'"
ans=$(echo "$t4" | json 'd["think"]["answer"]')
grep -q "answer $ans, confidence" run.log || fail "grok run's summary: $(cat run.log)"
for i in 0 1 2 3; do
  a=$(echo "$t4" | json "d['think']['candidates'][$i]['answer'] or '-'")
  grep -Eq "^  \[$i\] answer $a " run.log || fail "grok run's candidate $i is not '$a': $(cat run.log)"
done
ok "grok run --samples gives the server's samples and choice"

# ---- logprob selection: the highest mean log-probability
r=$(post "$U/v1/completions" -d "{$Q,\"seed\":9,\"think\":{\"samples\":6,\"select\":\"logprob\",\"candidates\":true}}")
echo "$r" | "$PY" -c '
import json, sys
t = json.load(sys.stdin)["think"]
c = t["candidates"]
best = max(range(len(c)), key=lambda i: (c[i]["mean_logprob"], -i))
assert t["chosen"] == best and t["select"] == "logprob", t
votes = sum(1 for x in c if x["answer"] == t["answer"])
assert abs(t["confidence"] - votes / 6) < 1e-12, t
' || fail "logprob selection: $r"
ok "logprob selection"

# ---- the regex and JSON extractions
r=$(post "$U/v1/completions" -d "{$Q,\"seed\":9,\"think\":{\"samples\":3,\"extract\":\"regex:A: ([0-9]+)\",\"candidates\":true}}")
echo "$r" | "$PY" -c '
import json, re, sys
t = json.load(sys.stdin)["think"]
for x in t["candidates"]:
    m = re.findall(r"A: ([0-9]+)", x["text"])
    want = str(int(m[-1])) if m else None
    assert x["answer"] == want, (x, want)
' || fail "regex extraction: $r"
ok "regex extraction"

# ---- verifier selection
r=$(post "$U/v1/completions" -d "{$Q,\"seed\":11,\"think\":{\"samples\":6,\"select\":\"verifier\",\"candidates\":true}}")
echo "$r" | "$PY" -c '
import json, sys
t = json.load(sys.stdin)["think"]
c = t["candidates"]
assert all(isinstance(x["verifier_score"], float) and x["verifier_score"] <= 0 for x in c), c
best = max(range(len(c)), key=lambda i: (c[i]["verifier_score"], c[i]["mean_logprob"], -i))
assert t["chosen"] == best and t["select"] == "verifier", t
' || fail "verifier selection: $r"
ok "verifier selection"

# ---- streaming: progress chunks, then the chosen text
whole=$(post "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Q: 12+34"}],"max_tokens":40,"seed":3,"temperature":0.9,"think":{"samples":4}}')
post -N "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Q: 12+34"}],"max_tokens":40,"seed":3,"temperature":0.9,"think":{"samples":4},"stream":true}' >stream.out
WHOLE="$whole" "$PY" -c '
import json, os, sys
raw = open("stream.out").read()
ev = [e.strip() for e in raw.split("\n\n") if e.strip()]
assert ev[-1] == "data: [DONE]", raw[-300:]
ds = [json.loads(e[6:]) for e in ev[:-1]]
assert ds[0]["choices"][0]["delta"]["role"] == "assistant", ds[0]
prog = [d for d in ds if d["choices"] == []]
assert prog and all(d["object"] == "chat.completion.chunk" for d in ds), ds
fin = [d["think"]["finished"] for d in prog]
assert fin == sorted(fin) and fin[-1] == 4 and prog[-1]["think"]["samples"] == 4, fin
last = ds[-1]
whole = json.loads(os.environ["WHOLE"])
text = "".join((d["choices"][0]["delta"].get("content") or "") for d in ds if d["choices"])
assert text == whole["choices"][0]["message"]["content"], (text, whole)
assert last["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"], last
assert last["think"]["answer"] == whole["think"]["answer"] and last["think"]["chosen"] == whole["think"]["chosen"], last
' || fail "think stream: $(tail -c 600 stream.out)"
ok "streamed think: progress chunks, then the chosen text"

# ---- reasoning_effort
r=$(post "$U/v1/completions" -d "{$Q,\"seed\":2,\"reasoning_effort\":\"low\"}")
[ "$(echo "$r" | json 'd["think"]["samples"], d["think"]["reasoning_effort"]')" = "(4, 'low')" ] || fail "effort low: $r"
r=$(post "$U/v1/completions" -d "{$Q,\"seed\":2,\"reasoning_effort\":\"high\"}")
[ "$(echo "$r" | json 'd["think"]["samples"]')" = 8 ] || fail "effort high is capped at --parallel: $r"
r=$(post "$U/v1/completions" -d "{$Q,\"seed\":2}")
[ "$(echo "$r" | json '"think" in d')" = False ] || fail "a plain request has no think object: $r"
ok "reasoning_effort maps onto samples"

# ---- bad fields
bad() { # body param
  local out; out=$(post -w '\n%{http_code}' "$U/v1/completions" -d "$1")
  [ "$(echo "$out" | tail -n1)" = 400 ] || fail "not a 400: $1 -> $out"
  [ "$(echo "$out" | head -n1 | json 'd["error"]["param"]')" = "$2" ] || fail "param of $1: $out"
}
bad "{$Q,\"think\":{\"samples\":0}}" think.samples
bad "{$Q,\"think\":{\"samples\":9}}" think.samples
bad "{$Q,\"think\":{\"samples\":2.5}}" think.samples
bad "{$Q,\"think\":{\"select\":\"best\"}}" think.select
bad "{$Q,\"think\":{\"extract\":\"regex:(\"}}" think.extract
bad "{$Q,\"think\":{\"extract\":\"first\"}}" think.extract
bad "{$Q,\"think\":{\"candidates\":1}}" think.candidates
bad "{$Q,\"think\":[]}" think
bad "{$Q,\"reasoning_effort\":\"max\"}" reasoning_effort
bad "{$Q,\"n\":2,\"think\":{\"samples\":2}}" n
[ "$(curl -s "$U/health" | json 'd["status"]')" = ok ] || fail "server down after bad requests"
ok "bad think fields give 400s naming them"

# ---- a server without a verifier refuses verifier selection
start plain --threads 1 --parallel 2 --ctx 128
out=$(post "http://127.0.0.1:$PORT_plain/v1/completions" -d "{$Q,\"think\":{\"samples\":2,\"select\":\"verifier\"}}")
echo "$out" | grep -q -- "--verifier" || fail "no verifier: $out"
kill -TERM "$PID_plain"; wait "$PID_plain" || fail "plain server exit status"
ok "verifier selection needs --verifier"

# ---- grok run's flags
"$GROK" run -m "$MODEL" -p x --samples 65 >/dev/null 2>bad.log; [ $? = 2 ] || fail "--samples 65 accepted"
"$GROK" run -m "$MODEL" -p x --select best >/dev/null 2>bad.log; [ $? = 2 ] && grep -q best bad.log || fail "--select best"
"$GROK" run -m "$MODEL" -p x --select verifier >/dev/null 2>bad.log; [ $? = 2 ] || fail "--select verifier without a model"
"$GROK" run -m "$MODEL" -p x --extract 'regex:(' >/dev/null 2>bad.log; [ $? = 2 ] && grep -q extract bad.log || fail "bad --extract"
"$GROK" run -m "$MODEL" -p x --reasoning-effort max >/dev/null 2>bad.log; [ $? = 2 ] || fail "--reasoning-effort max"
"$GROK" run -m "$MODEL" -p x --samples 2 --verifier nothere.gguf >/dev/null 2>bad.log; [ $? = 1 ] && grep -q nothere bad.log || fail "missing verifier file: $(cat bad.log)"
"$GROK" serve -m "$MODEL" --verifier-yes x >/dev/null 2>bad.log; [ $? = 2 ] || fail "serve --verifier-yes without --verifier"
ok "grok run and serve refuse bad think flags"

kill -TERM "$PID_main"; wait "$PID_main" || fail "server exit status"
echo "think_test: passed"
