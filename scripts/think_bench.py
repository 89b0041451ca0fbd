#!/usr/bin/python3
"""think_bench.py - the client half of bench/think.sh: asks a running
`grok serve` each held-out question of scripts/make_arith.py's test set,
one request at a time, and scores the chosen answers against the true one.

For greedy decoding it sends one plain request (temperature 0, one
sample). For each K of --ks it sends one think request of K samples at
--temp with every candidate in the response, and scores from it:
  vote@K      the majority vote: the server's tally, think.votes[0]
  logprob@K   best-of-K by mean token log-probability (the candidates'
              mean_logprob, ties to the lower index, as the server ranks)
  verifier@K  best-of-K by the verifier: the server's choice, think.answer
              (only with --verifier: the request then selects "verifier",
              so its time includes the verifier's scoring)
  any@K       some sample is right (pass@K, the ceiling of any choice)
All of them see the same samples of a question, and a smaller K's samples
are the first of a larger K's (sample i draws with seed + i; the seed is
--seed + the question's index). Prints one CSV row per method and K:
method, k, questions, correct, accuracy, seconds per question (the wall
time of the K-sample request), generated tokens per question (all samples).

usage: /usr/bin/python3 scripts/think_bench.py --url http://127.0.0.1:PORT
       --test build/arith/test.jsonl [--n 200] [--temp 0.8] [--seed 1]
       [--max-tokens 80] [--ks 1,4,16,64] [--verifier]
"""
import argparse
import json
import math
import sys
import time
import urllib.request


def ask(url, body):
    req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def best_logprob(cands):
    """The answer of the candidate with the highest mean log-probability
    (NaN / null lowest, ties to the lower index)."""
    best, best_lp = None, -math.inf
    for c in cands:
        lp = c["mean_logprob"]
        if lp is not None and not math.isnan(lp) and (best is None or lp > best_lp):
            best, best_lp = c, lp
    return (best or cands[0])["answer"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--temp", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=80)
    ap.add_argument("--extract", default="last_number")
    ap.add_argument("--ks", default="1,4,16,64")
    ap.add_argument("--verifier", action="store_true", help="the server has --verifier")
    a = ap.parse_args()
    qs = [json.loads(line) for line in open(a.test)][: a.n]
    n = len(qs)
    print("method,k,questions,correct,accuracy,sec_per_question,tokens_per_question", flush=True)

    def row(name, k, correct, dt, tokens):
        print(f"{name},{k},{n},{correct},{correct / n:.4f},{dt / n:.4f},{tokens / n:.1f}", flush=True)

    base = {"max_tokens": a.max_tokens, "stop": ["\n\n"]}
    correct, tokens, t0 = 0, 0, time.monotonic()
    for q in qs:
        r = ask(a.url, dict(base, prompt=q["prompt"], temperature=0,
                            think={"samples": 1, "extract": a.extract}))
        correct += r["think"]["answer"] == q["answer"]
        tokens += r["usage"]["completion_tokens"]
    row("greedy", 1, correct, time.monotonic() - t0, tokens)

    for k in (int(x) for x in a.ks.split(",")):
        right = {"vote": 0, "logprob": 0, "verifier": 0, "any": 0}
        tokens, dt = 0, 0.0
        for i, q in enumerate(qs):
            body = dict(base, prompt=q["prompt"], temperature=a.temp, seed=a.seed + i,
                        think={"samples": k, "select": "verifier" if a.verifier else "logprob",
                               "extract": a.extract, "candidates": True})
            t0 = time.monotonic()
            r = ask(a.url, body)
            dt += time.monotonic() - t0
            t = r["think"]
            tokens += r["usage"]["completion_tokens"]
            truth = q["answer"]
            right["vote"] += bool(t["votes"]) and t["votes"][0]["answer"] == truth
            right["logprob"] += best_logprob(t["candidates"]) == truth
            right["verifier"] += a.verifier and t["answer"] == truth
            right["any"] += any(c["answer"] == truth for c in t["candidates"])
        for name in ("vote", "logprob", "verifier", "any"):
            if name != "verifier" or a.verifier:
                row(name, k, right[name], dt, tokens)


if __name__ == "__main__":
    sys.exit(main())
