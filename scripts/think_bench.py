#!/usr/bin/python3
"""think_bench.py - the client half of bench/think.sh: asks a running
`grok serve` each held-out question of scripts/make_arith.py's test set,
one request at a time, as a think request, and scores the server's chosen
answer (its "think.answer") against the true one.

A method is NAME@K: greedy@1 (temperature 0), vote@K, logprob@K or
verifier@K (K samples at --temp). Sample seeds are --seed + the question's
index, so every method at one K sees the same samples of a question, and
a smaller K's samples are the first of a larger K's. Prints one CSV row per
method: method, k, questions, correct, accuracy, seconds per question,
generated tokens per question (all samples).

usage: /usr/bin/python3 scripts/think_bench.py --url http://127.0.0.1:PORT
       --test build/arith/test.jsonl [--n 200] [--temp 0.8] [--seed 1]
       [--max-tokens 80] METHOD...
"""
import argparse
import json
import sys
import time
import urllib.request


def ask(url, body):
    req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--temp", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=80)
    ap.add_argument("--extract", default="last_number")
    ap.add_argument("methods", nargs="+")
    a = ap.parse_args()
    qs = [json.loads(line) for line in open(a.test)][: a.n]
    print("method,k,questions,correct,accuracy,sec_per_question,tokens_per_question", flush=True)
    for m in a.methods:
        name, k = m.split("@")
        k = int(k)
        correct, tokens, t0 = 0, 0, time.monotonic()
        for i, q in enumerate(qs):
            body = {"prompt": q["prompt"], "max_tokens": a.max_tokens, "stop": ["\n\n"], "seed": a.seed + i,
                    "temperature": 0 if name == "greedy" else a.temp,
                    "think": {"samples": k, "select": "vote" if name == "greedy" else name,
                              "extract": a.extract}}
            r = ask(a.url, body)
            correct += r["think"]["answer"] == q["answer"]
            tokens += r["usage"]["completion_tokens"]
        dt = time.monotonic() - t0
        n = len(qs)
        print(f"{name},{k},{n},{correct},{correct / n:.4f},{dt / n:.4f},{tokens / n:.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
