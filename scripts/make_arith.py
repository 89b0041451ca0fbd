#!/usr/bin/python3
"""make_arith.py - the synthetic reasoning task that docs/think.md measures
answer-time compute on: chains of additions and subtractions worked left to
right, one step per line (the first operation done, the rest of the chain
copied), the final answer on an "A:" line:

    Q: 47+38-9+21
    =85-9+21
    =76+21
    =97
    A: 97

Each step is a sum of up to three digits done in one go (no carries
written), so a small model makes occasional slips whose digits vary from
sample to sample: the setting where drawing several solutions and voting
pays. Problems are separated by a blank line (grok train --doc-sep '\n\n').

Writes into OUT_DIR (default build/arith):
  train.txt     N_TRAIN problems, blank-line separated (grok train --data)
  test.jsonl    N_TEST held-out problems: {"prompt", "answer", "question"}
  verifier.txt  worked solutions, half of them with one wrong step (the later
                steps computed from the wrong value, as a model that slipped
                would go on), each ending in "V: yes" or "V: no" (grok train
                --data for the verifier model)
No question of the test set occurs in either training file. The output is a
pure function of the arguments (Python's random with a fixed seed).

usage: /usr/bin/python3 scripts/make_arith.py [OUT_DIR] [--train N] [--test N]
       [--verifier N] [--seed S] [--terms LO-HI] [--digits LO-HI]
"""
import argparse
import json
import os
import random


def question(rng, terms, digits):
    """A chain whose running total stays in [0, 999]: a subtraction that
    would go below zero becomes an addition, an addition above 999 a
    subtraction."""
    def number():
        d = rng.randint(*digits)
        return rng.randint(10 ** (d - 1), 10 ** d - 1)

    n = rng.randint(*terms)
    nums = [number()]
    ops = []
    total = nums[0]
    while len(nums) < n:
        x = number()
        op = rng.choice("+-")
        if op == "-" and total - x < 0:
            op = "+"
        if op == "+" and total + x > 999:
            op = "-"
        if op == "-" and total - x < 0:
            continue
        total = total + x if op == "+" else total - x
        nums.append(x)
        ops.append(op)
    return nums, ops


def qtext(nums, ops):
    return str(nums[0]) + "".join(o + str(x) for o, x in zip(ops, nums[1:]))


def solve(nums, ops, slip=None):
    """The worked steps; slip = (step index, wrong value) makes that step's
    result wrong and carries it on. Returns (lines, results, answer)."""
    lines, results, acc = [], [], nums[0]
    for i, (o, x) in enumerate(zip(ops, nums[1:])):
        r = acc + x if o == "+" else acc - x
        if slip and slip[0] == i:
            r = slip[1]
        rest = "".join(o2 + str(x2) for o2, x2 in zip(ops[i + 1:], nums[i + 2:]))
        lines.append(f"={r}{rest}")
        results.append(r)
        acc = r
    return lines, results, acc


def wrong_value(rng, right):
    """A slip a model makes: a carry missed or doubled (±10, ±100), a last
    digit off by one, or one digit replaced."""
    for _ in range(100):
        kind = rng.randrange(4)
        if kind == 0:
            v = right + rng.choice([-10, 10])
        elif kind == 1:
            v = right + rng.choice([-100, 100])
        elif kind == 2:
            v = right + rng.choice([-1, 1])
        else:
            s = list(str(right))
            i = rng.randrange(len(s))
            s[i] = str(rng.choice([d for d in range(10) if str(d) != s[i]]))
            v = int("".join(s))
        if v >= 0 and v != right:
            return v
    return right + 1


def problem_text(nums, ops, slip=None):
    lines, _, ans = solve(nums, ops, slip)
    return "Q: " + qtext(nums, ops) + "\n" + "\n".join(lines) + "\nA: " + str(ans) + "\n", ans


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", default="build/arith")
    ap.add_argument("--train", type=int, default=60000)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--verifier", type=int, default=60000)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--terms", default="3-4")
    ap.add_argument("--digits", default="1-2")
    a = ap.parse_args()
    terms = tuple(int(v) for v in a.terms.split("-"))
    digits = tuple(int(v) for v in a.digits.split("-"))
    rng = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)

    # the test set first, so the training sets can avoid its questions
    test, seen = [], set()
    while len(test) < a.test:
        nums, ops = question(rng, terms, digits)
        q = qtext(nums, ops)
        if q in seen:
            continue
        seen.add(q)
        _, _, ans = solve(nums, ops)
        test.append({"question": q, "prompt": "Q: " + q + "\n", "answer": str(ans)})

    def fresh():
        while True:
            nums, ops = question(rng, terms, digits)
            if qtext(nums, ops) not in seen:
                return nums, ops

    def write(name, text):
        tmp = os.path.join(a.out_dir, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(a.out_dir, name))

    write("test.jsonl", "".join(json.dumps(t) + "\n" for t in test))
    write("train.txt", "\n".join(problem_text(*fresh())[0] for _ in range(a.train)))
    ver = []
    for i in range(a.verifier):
        nums, ops = fresh()
        slip = None
        if i % 2:
            step = rng.randrange(len(ops))
            _, results, _ = solve(nums, ops)
            right = results[step]
            slip = (step, wrong_value(rng, right))
        text, _ = problem_text(nums, ops, slip)
        ver.append(text + "V: " + ("no" if slip else "yes") + "\n")
    write("verifier.txt", "\n".join(ver))
    print(f"{a.out_dir}: {len(test)} test, {a.train} training, {a.verifier} verifier problems")


if __name__ == "__main__":
    main()
