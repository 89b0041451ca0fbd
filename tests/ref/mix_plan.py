"""mix_plan.py - a quantization plan (per-tensor "NAME TYPE" lines on stdin,
as grok quantize --dry-run or llama-quantize --dry-run give them) in one
compact line: per tensor role (the name without its "blk.N." prefix) the
types of layers 0, 1, ... run-length encoded, e.g. "attn_v.weight=q5_K*2,q4_K*14".
bench/mix_rules.sh stores llama-quantize's plans this way in
tests/fixtures/mix_rules.txt; tests/mix_rules_test.sh encodes grok's the same
way and compares the strings."""
import re
import sys


def encode(pairs):
    roles = {}
    for name, typ in pairs:
        m = re.match(r"blk\.(\d+)\.(.*)$", name)
        layer, role = (int(m.group(1)), m.group(2)) if m else (-1, name)
        roles.setdefault(role, {})[layer] = typ
    out = []
    for role in sorted(roles):
        by = roles[role]
        seq = [by[k] for k in sorted(by)]
        if sorted(by) != list(range(len(by))) and sorted(by) != [-1]:
            raise SystemExit("mix_plan: %s: layers %s are not 0..n-1" % (role, sorted(by)))
        runs = []
        for t in seq:
            if runs and runs[-1][0] == t:
                runs[-1][1] += 1
            else:
                runs.append([t, 1])
        out.append(role + "=" + ",".join(t if n == 1 else "%s*%d" % (t, n) for t, n in runs))
    return " ".join(out)


if __name__ == "__main__":
    pairs = [l.split()[:2] for l in sys.stdin if l.strip()]
    print(encode(pairs))
