#!/usr/bin/env bash
# structured_output_test.sh - constrained generation end to end with the
# bundled model (models/grok-mini.gguf) behind `grok serve`: 1000 generations
# under a nested JSON Schema (tests/fixtures/structured/nested_schema.json),
# each parsed and validated by python3-jsonschema (100 under ASan:
# GROK_ASAN=1), tool calls (required, named, one or several) whose arguments
# validate against their parameters, streamed tool-call deltas that add up
# to the whole answer, json_object, a GBNF grammar whose outputs `grok
# grammar` accepts, tool and assistant tool_calls messages in the chat
# template, and malformed grammars, schemas and tools refused with a 400
# that names the place (LINE:COLUMN, JSON pointer, field).
set -uo pipefail
: "${GROK:?}" "${GROK_SRC:?}" "${GROK_TMP:?}"
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
PY=/usr/bin/python3
"$PY" -c 'import jsonschema' 2>/dev/null || { echo "SKIP: $PY has no jsonschema (apt-get install python3-jsonschema)"; exit 77; }
MODEL="$GROK_SRC/models/grok-mini.gguf"
[ -f "$MODEL" ] || { echo "SKIP: no $MODEL"; exit 77; }
mkdir -p "$GROK_TMP" && cd "$GROK_TMP" || exit 1
rm -f ./*.port ./*.log ./*.out
. "$GROK_SRC/tests/serve_lib.sh"
ln -sf "$MODEL" tiny.gguf

json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1"; }
N=1000
if [ "${GROK_ASAN:-0}" = 1 ]; then N=100; echo "note: ASan build: $N generations instead of 1000"; fi

# one thread: a model this small spends a step's time in thread hand-offs otherwise
start main --threads 1 --parallel 8 --queue 64 --ctx 1536
U="http://127.0.0.1:$PORT_main"
post() { curl -s -H 'Content-Type: application/json' "$@"; }

# ---- N generations under the nested schema, and tool calls (python3-jsonschema)
"$PY" "$GROK_SRC/tests/structured_output_check.py" "$PORT_main" "$GROK_SRC/tests/fixtures/structured/nested_schema.json" "$N" ||
  fail "generations or tool calls do not validate"
ok "$N schema generations and 20 tool-call answers validate"

# ---- json_object, and a GBNF grammar on both endpoints
# an object may run past max_tokens; those that complete must be objects, and some must complete
done_json=0
for i in 1 2 3; do
  r=$(post "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"JSON please"}],"max_tokens":300,"seed":'$i',"response_format":{"type":"json_object"}}')
  t=$(echo "$r" | json 'd["choices"][0]["message"]["content"]')
  f=$(echo "$r" | json 'd["choices"][0]["finish_reason"]')
  case "$f" in stop|length) ;; *) fail "json_object: finish_reason '$f': $r" ;; esac
  if [ "$f" = stop ]; then
    done_json=$((done_json + 1))
    echo "$t" | "$PY" -c 'import json,sys; assert isinstance(json.load(sys.stdin), dict)' || fail "json_object is not an object: $t"
  fi
done
[ $done_json -gt 0 ] || fail "no json_object answer completed within max_tokens"
printf 'root ::= "(" expr ")"\nexpr ::= [a-z]{1,3} | "(" expr ")" | expr2\nexpr2 ::= [0-9] ("+" [0-9]){0,2}\n' > g.gbnf
G=$("$PY" -c 'import json; print(json.dumps(open("g.gbnf").read()))')
for i in 1 2 3 4 5 6; do
  if [ $((i % 2)) = 0 ]; then
    r=$(post "$U/v1/completions" -d '{"prompt":"x","max_tokens":60,"seed":'$i',"grammar":'"$G"'}')
    t=$(echo "$r" | json 'd["choices"][0]["text"]')
  else
    r=$(post "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":60,"seed":'$i',"grammar":'"$G"'}')
    t=$(echo "$r" | json 'd["choices"][0]["message"]["content"]')
  fi
  [ "$(echo "$r" | json 'd["choices"][0]["finish_reason"]')" = stop ] || fail "grammar output did not complete: $r"
  "$GROK" grammar g.gbnf --test "$t" >/dev/null || fail "grammar output '$t' is not in the grammar"
done
ok "json_object and GBNF outputs keep to their grammars"

# ---- streamed tool calls add up to the whole answer
TOOLS='"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":6}},"required":["city"]}}},{"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}}}]'
B='{"messages":[{"role":"user","content":"weather?"}],"max_tokens":400,"seed":11,'"$TOOLS"',"tool_choice":"required"'
whole=$(post "$U/v1/chat/completions" -d "$B}")
post -N "$U/v1/chat/completions" -d "$B"',"stream":true}' > stream.out
"$PY" - "$whole" <<'EOF' || fail "streamed tool calls differ from the whole answer"
import json, sys
whole = json.loads(sys.argv[1])["choices"][0]
events = [e.strip() for e in open("stream.out").read().split("\n\n") if e.strip()]
assert events[-1] == "data: [DONE]", events[-1]
calls, finish = {}, None
for e in events[:-1]:
    c = json.loads(e[6:])["choices"][0]
    finish = c["finish_reason"] or finish
    for d in c["delta"].get("tool_calls") or []:
        k = calls.setdefault(d["index"], {"id": None, "name": None, "arguments": ""})
        if "id" in d:
            assert k["id"] is None and d["type"] == "function" and d["function"]["name"], d  # id and name first, once
            k["id"], k["name"] = d["id"], d["function"]["name"]
        k["arguments"] += d["function"].get("arguments", "")
want = [(k["type"], k["function"]["name"], k["function"]["arguments"]) for k in whole["message"]["tool_calls"]]
got = [("function", calls[i]["name"], calls[i]["arguments"]) for i in sorted(calls)]
assert got == want, (got, want)  # the ids differ: each request has its own
ids = [calls[i]["id"] for i in sorted(calls)]
assert all(i.startswith("call_") for i in ids) and len(set(ids)) == len(ids), ids
assert finish == whole["finish_reason"] == "tool_calls", (finish, whole["finish_reason"])
EOF
ok "streamed tool-call deltas (index, id and name first, arguments in pieces) equal the whole answer"

# ---- auto: text without the tag, or calls; none: no tools at all
for i in 1 2 3 4; do
  r=$(post "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":40,"seed":'$i','"$TOOLS"'}')
  echo "$r" | json 'd["choices"][0]["message"]["content"] or ""' | grep -q '<tool_call>' && fail "auto: a tag in the content: $r"
done
r=$(post "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"seed":1,'"$TOOLS"',"tool_choice":"none"}')
p_none=$(echo "$r" | json 'd["usage"]["prompt_tokens"]')
r=$(post "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"seed":1}')
[ "$(echo "$r" | json 'd["usage"]["prompt_tokens"]')" = "$p_none" ] || fail "tool_choice none should leave the tools out of the prompt"
ok "auto answers carry no stray tag; tool_choice none leaves the tools out"

# ---- the chat template with tool results and assistant tool_calls
MSGS='[{"role":"user","content":"Weather in Oslo?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"-3 C"}]'
r=$(post "$U/v1/chat/completions" -d '{"messages":'"$MSGS"',"max_tokens":1,"seed":1}')
want='User: Weather in Oslo?\n\nAssistant: <tool_call>{"name": "get_weather", "arguments": {"city":"Oslo"}}</tool_call>\n\nTool (get_weather): -3 C\n\nAssistant:'
n_want=$(post "$U/tokenize" -d "$("$PY" -c 'import json,sys; print(json.dumps({"content": sys.argv[1].encode().decode("unicode_escape"), "add_special": True}))' "$want")" | json 'len(d["tokens"])')
[ "$(echo "$r" | json 'd["usage"]["prompt_tokens"]')" = "$n_want" ] || fail "tool messages in the template: $r (want $n_want prompt tokens)"
ok "tool results and assistant tool_calls rendered in the chat template"

# ---- malformed grammars, schemas and tools: 400 naming the place
bad() { # ENDPOINT BODY PARAM TEXT
  local code
  code=$(curl -s -o bad.out -w '%{http_code}' -H 'Content-Type: application/json' "$U$1" -d "$2")
  [ "$code" = 400 ] || fail "$2: status $code, want 400"
  [ "$(json 'd["error"]["param"]' < bad.out)" = "$3" ] || fail "$2: param $(cat bad.out), want $3"
  grep -qF -- "$4" bad.out || fail "$2: message $(cat bad.out) lacks '$4'"
}
C='/v1/completions'
H='/v1/chat/completions'
M='"messages":[{"role":"user","content":"x"}]'
bad $C '{"prompt":"x","grammar":"root ::= (\"a\"\n"}' grammar 'grammar: 2:1: expecting'
bad $H '{'"$M"',"grammar":"root ::= [b-a]"}' grammar '1:11: range end'
bad $C '{"prompt":"x","grammar":"root ::= foo"}' grammar "1:10: undefined rule 'foo'"
bad $C '{"prompt":"x","grammar":5}' grammar "'grammar' must be a string"
bad $C '{"prompt":"x","json_schema":{"type":"object","properties":{"a":{"type":"string","pattern":"x"}}}}' json_schema "#/properties/a: 'pattern' is not supported"
bad $H '{'"$M"',"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"array","items":{"uniqueItems":true}}}}}' response_format "#/items: 'uniqueItems' is not supported"
bad $H '{'"$M"',"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}' response_format 'of type json_schema needs'
bad $H '{'"$M"',"response_format":{"type":"xml"}}' response_format 'must be text, json_object or json_schema'
bad $H '{'"$M"',"grammar":"root ::= \"a\"","json_schema":{}}' json_schema 'at most one of'
bad $H '{'"$M"',"tools":[{"type":"function","function":{"name":"a b"}}]}' tools 'tools[0].function.name'
bad $H '{'"$M"',"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"not":{}}}}}}]}' tools "tools[0].function.parameters: #/properties/x: 'not' is not supported"
bad $H '{'"$M"',"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}' tool_choice "'g', which is not among the tools"
bad $H '{'"$M"',"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}' tool_choice "'tool_choice' must be"
bad $H '{'"$M"',"tool_choice":"required"}' tool_choice "needs 'tools'"
bad $C '{"prompt":"x","tools":[{"type":"function","function":{"name":"f"}}]}' tools 'chat/completions only'
bad $H '{"messages":[{"role":"robot","content":"x"}]}' messages 'system, user, assistant or tool'
bad $H '{"messages":[{"role":"assistant","tool_calls":[{"function":{}}]}]}' messages 'tool_calls[0] must have function.name'
[ "$(curl -s "$U/health" | json 'd["status"]')" = ok ] || fail "the server is not healthy after the malformed requests"
ok "malformed grammars, schemas and tools get a 400 naming the place"

m=$(curl -s "$U/metrics" | awk '/^grok_grammar_masks_total/ {print $2}')
[ "${m:-0}" -gt 1000 ] || fail "/metrics counts $m masks"
kill -TERM "$PID_main"
wait "$PID_main" || fail "server exit status"
ok "structured_output_test: passed"
