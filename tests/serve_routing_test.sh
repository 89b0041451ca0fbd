#!/usr/bin/env bash
# serve_routing_test.sh - the chat page's side of `grok serve`: the page's
# files at / (no API key needed for them, 404 with --no-webui), and the
# "grok_routing" request field: absent by default, whole and streamed
# answers carry per generated token the experts and gates of every layer,
# equal to what `grok trace --ids` records for the same tokens (the same
# forward pass seen through the library's routing hook), with "probs" every
# expert's probability; bad values get a 400 naming the field.
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
PY=/usr/bin/python3
mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
rm -rf ./*
cp "$GROK_SRC/models/grok-mini.gguf" tiny.gguf
source "$GROK_SRC/tests/serve_lib.sh"

start main --parallel 2 --threads 2 --api-key k1
U="http://127.0.0.1:$PORT_main"
A=(-H "Authorization: Bearer k1")

# the page: served without the key, with its type; the API still wants the key
for f in / /index.html /app.js /style.css; do
  code=$(curl -s -o page.out -w '%{http_code} %{content_type}' "$U$f")
  case "$f:$code" in
    /:"200 text/html"* | /index.html:"200 text/html"* | /app.js:"200 text/javascript"* | /style.css:"200 text/css"*) ;;
    *) fail "GET $f: $code" ;;
  esac
  [ "$f" = / ] || cmp -s page.out "$GROK_SRC/src/server/webui/${f#/}" || fail "GET $f is not the file in the tree"
done
curl -s "$U/" | cmp -s - "$GROK_SRC/src/server/webui/index.html" || fail "/ is not index.html"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/nope.js")" = 404 ] || fail "unknown file: want 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/")" = 404 ] || fail "POST /: want 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/models")" = 401 ] || fail "the API without the key: want 401"
ok "page files"

# without the field: no routing
curl -s "${A[@]}" "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"And God said"}],"max_tokens":6,"seed":3}' >plain.json
grep -q grok_routing plain.json && fail "grok_routing present without being asked"

# whole answer, completions with token ids so grok trace can replay them
P='[1,300,428,383,393,363,445]'
curl -s "${A[@]}" "$U/v1/completions" -d "{\"prompt\":$P,\"max_tokens\":12,\"seed\":5,\"temperature\":0.9,\"grok_routing\":{\"probs\":true}}" >whole.json
curl -sN "${A[@]}" "$U/v1/completions" -d "{\"prompt\":$P,\"max_tokens\":12,\"seed\":5,\"temperature\":0.9,\"grok_routing\":true,\"stream\":true}" >stream.txt
$PY - whole.json stream.txt >ids.txt <<'PY' || fail "routing in the answers"
import json, sys
w = json.load(open(sys.argv[1]))
rt = w["choices"][0]["grok_routing"]
L, E, K = rt["layers"], rt["experts"], rt["k"]
assert (L, E, K) == (4, 8, 2), (L, E, K)
toks = rt["tokens"]
n_gen = w["usage"]["completion_tokens"]
assert [t["index"] for t in toks] == list(range(len(toks))), "indices"
assert len(toks) == n_gen - 1 or w["choices"][0]["finish_reason"] == "stop", (len(toks), n_gen)
text = w["choices"][0]["text"].encode()
for t in toks:
    assert len(t["experts"]) == L and all(len(x) == K for x in t["experts"])
    assert len(t["probs"]) == L and all(len(x) == E for x in t["probs"])
    for l in range(L):
        p = t["probs"][l]
        assert abs(sum(p) - 1) < 1e-3, sum(p)
        for k in range(K):
            assert abs(t["gates"][l][k] - p[t["experts"][l][k]]) < 1e-4
    assert 0 <= t["text_offset"] <= len(text)
offs = [t["text_offset"] for t in toks]
assert offs == sorted(offs), offs
# streamed: the same tokens and experts, spread over the chunks, after their text
s_toks, s_text = [], ""
for line in open(sys.argv[2]):
    if not line.startswith("data: {"):
        continue
    c = json.loads(line[6:])["choices"][0]
    s_text += c.get("text", "")
    for t in c.get("grok_routing", {}).get("tokens", []):
        assert len(s_text.encode()) > t["text_offset"], "routing before its text"
        assert "probs" not in t
        s_toks.append(t)
assert s_text.encode() == text, (s_text, text)
assert [(t["id"], t["experts"], t["gates"]) for t in s_toks] == [(t["id"], t["experts"], t["gates"]) for t in toks]
print(",".join(str(i) for i in [1, 300, 428, 383, 393, 363, 445] + [t["id"] for t in toks]))
PY
ok "whole and streamed routing agree"

# the same tokens through grok trace (exact kernels on neither side: the same code path)
"$GROK" trace -m tiny.gguf --ids "$(cat ids.txt)" -q -o trace.json || fail "grok trace --ids"
$PY - whole.json trace.json <<'PY' || fail "the server's routing is not grok trace's"
import json, sys
rt = json.load(open(sys.argv[1]))["choices"][0]["grok_routing"]
tr = json.load(open(sys.argv[2]))
n_prompt = 7
for t in rt["tokens"]:
    cell = tr["tokens"][n_prompt + t["index"]]
    assert cell["id"] == t["id"]
    for l, layer in enumerate(cell["layers"]):
        assert layer["experts"] == t["experts"][l], (t["index"], l, layer["experts"], t["experts"][l])
        assert all(abs(a - b) < 1e-4 for a, b in zip(layer["gates"], t["gates"][l]))
        assert all(abs(a - b) < 1e-4 for a, b in zip(layer["probs"], t["probs"][l]))
PY
ok "routing equals grok trace's for the same tokens"

# two requests at once, one with routing and one without, batched together
curl -s "${A[@]}" "$U/v1/completions" -d "{\"prompt\":$P,\"max_tokens\":12,\"seed\":5,\"temperature\":0.9,\"grok_routing\":true}" >b1.json &
c1=$!
curl -s "${A[@]}" "$U/v1/completions" -d '{"prompt":"In the beginning","max_tokens":12,"seed":2}' >b2.json &
c2=$!
wait $c1 $c2
$PY - whole.json b1.json b2.json <<'PY' || fail "batched routing"
import json, sys
a = json.load(open(sys.argv[1]))["choices"][0]["grok_routing"]["tokens"]
b = json.load(open(sys.argv[2]))["choices"][0]["grok_routing"]["tokens"]
assert [(t["id"], t["experts"]) for t in a] == [(t["id"], t["experts"]) for t in b]
assert "grok_routing" not in json.load(open(sys.argv[3]))["choices"][0]
PY
ok "batched with another request"

# bad values
for body in '"grok_routing":1' '"grok_routing":"yes"' '"grok_routing":{"probs":2}'; do
  out=$(curl -s -w ' %{http_code}' "${A[@]}" "$U/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],$body}")
  case "$out" in *'"param":"grok_routing'*' 400') ;; *) fail "$body: $out" ;; esac
done
ok "bad grok_routing values refused"

# --no-webui: no page, the API unchanged
start off --parallel 1 --threads 1 --no-webui
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_off/")" = 404 ] || fail "--no-webui: / should be 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_off/app.js")" = 404 ] || fail "--no-webui: app.js should be 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_off/v1/models")" = 200 ] || fail "--no-webui: the API"
ok "--no-webui"
kill -TERM "$PID_main" "$PID_off"
wait "$PID_main" || fail "server exit status $?"
echo "serve_routing_test: passed"
