#!/usr/bin/python3
"""structured_output_check.py - the checks of tests/structured_output_test.sh
that need a JSON Schema validator: N constrained generations from the bundled
model against `grok serve` (completions with json_schema, chat with
response_format json_schema, alternating), each parsed with json.loads and
validated by python3-jsonschema (Draft 2020-12, formats checked: date by
jsonschema's own checker, time and date-time by datetime.fromisoformat), and
tool calls whose arguments are validated against their function's parameters.

Usage: structured_output_check.py PORT SCHEMA.json N
"""
import concurrent.futures
import datetime
import json
import sys
import urllib.request

import jsonschema

port, schema_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
schema = json.load(open(schema_path))
fmt = jsonschema.FormatChecker()


@fmt.checks("time", raises=ValueError)
def _time(s):
    # RFC 3339 full-time: an offset is required
    if not (s.endswith("Z") or s[-6] in "+-"):
        raise ValueError("no offset")
    datetime.datetime.fromisoformat("2000-01-01T" + s.replace("Z", "+00:00"))
    return True


@fmt.checks("date-time", raises=ValueError)
def _date_time(s):
    if "T" not in s or not (s.endswith("Z") or s[-6] in "+-"):
        raise ValueError("not RFC 3339")
    datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return True


validator = jsonschema.Draft202012Validator(schema, format_checker=fmt)
jsonschema.Draft202012Validator.check_schema(schema)


def post(path, body):
    req = urllib.request.Request(
        "http://127.0.0.1:%s%s" % (port, path), data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def generate(i):
    common = {"max_tokens": 1300, "seed": i, "temperature": 1.0}
    if i % 2 == 0:
        r = post("/v1/completions", dict(common, prompt="And the LORD spake unto Moses", json_schema=schema))
        text = r["choices"][0]["text"]
    else:
        rf = {"type": "json_schema", "json_schema": {"name": "record", "schema": schema, "strict": True}}
        msgs = [{"role": "user", "content": "Give the record as JSON."}]
        r = post("/v1/chat/completions", dict(common, messages=msgs, response_format=rf))
        text = r["choices"][0]["message"]["content"]
    return i, text, r["choices"][0]["finish_reason"], r["usage"]["completion_tokens"]


failures = []
tokens = 0
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    for i, text, finish, ntok in ex.map(generate, range(n)):
        tokens += ntok
        try:
            value = json.loads(text)
        except ValueError as e:
            failures.append("generation %d (finish %s) is not JSON: %s: %r" % (i, finish, e, text))
            continue
        errs = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errs:
            failures.append("generation %d does not validate: %s: %r" % (i, errs[0].message, text))
        elif finish != "stop":
            failures.append("generation %d ended with %s" % (i, finish))
for f in failures[:10]:
    print("FAIL:", f)
if failures:
    print("FAIL: %d of %d generations" % (len(failures), n))
    sys.exit(1)
print("ok: %d generations (%d tokens) parse and validate against the schema" % (n, tokens))

# tool calls: arguments validate against their function's parameters
params = {
    "get_weather": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 8}, "unit": {"enum": ["C", "F"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "add": {
        "type": "object",
        "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 99}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
}
tools = [{"type": "function", "function": {"name": k, "description": "test", "parameters": v}} for k, v in params.items()]
msgs = [{"role": "user", "content": "What is the weather in Paris?"}]
seen = set()
for i in range(20):
    choice = "required" if i % 2 else {"type": "function", "function": {"name": "add"}}
    r = post("/v1/chat/completions", {"messages": msgs, "tools": tools, "tool_choice": choice, "seed": i, "max_tokens": 600,
                                      "parallel_tool_calls": i % 4 != 1})
    c = r["choices"][0]
    calls = c["message"].get("tool_calls") or []
    if c["finish_reason"] != "tool_calls" or not calls or c["message"]["content"] is not None:
        print("FAIL: tool request %d: %r" % (i, c))
        sys.exit(1)
    if isinstance(choice, dict) and any(k["function"]["name"] != "add" for k in calls):
        print("FAIL: tool_choice named add, got %r" % calls)
        sys.exit(1)
    for k in calls:
        if k["type"] != "function" or not k["id"].startswith("call_"):
            print("FAIL: call shape %r" % k)
            sys.exit(1)
        args = json.loads(k["function"]["arguments"])
        jsonschema.validate(args, params[k["function"]["name"]])
        seen.add(k["function"]["name"])
if seen != {"get_weather", "add"}:
    print("FAIL: only %s were called" % seen)
    sys.exit(1)
print("ok: 20 tool-call answers, every call's arguments validate against its parameters")
