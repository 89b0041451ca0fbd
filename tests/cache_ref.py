#!/usr/bin/env python3
# cache_ref.py - reference replacement policies for test_xcache.c, written
# from their papers' pseudo-code independently of src/model/xcache.c:
# LRU, ARC (Megiddo & Modha, FAST 2003, Fig. 4) and Belady's MIN.
# usage: cache_ref.py TRACE_FILE SLOTS  (one key per line) -> "lru arc min" hits
import sys
from collections import OrderedDict


def lru(trace, c):
    d, hits = OrderedDict(), 0
    for x in trace:
        if x in d:
            d.move_to_end(x)
            hits += 1
            continue
        if len(d) == c:
            d.popitem(last=False)
        d[x] = 1
    return hits


def arc(trace, c):
    t1, t2, b1, b2 = OrderedDict(), OrderedDict(), OrderedDict(), OrderedDict()
    p, hits = 0.0, 0

    def replace(x):
        if t1 and ((x in b2 and len(t1) == p) or len(t1) > p):
            k, _ = t1.popitem(last=False)
            b1[k] = 1
        else:
            k, _ = t2.popitem(last=False)
            b2[k] = 1

    for x in trace:
        if x in t1:
            del t1[x]
            t2[x] = 1
            hits += 1
        elif x in t2:
            t2.move_to_end(x)
            hits += 1
        elif x in b1:
            p = min(c, p + max(len(b2) / len(b1), 1))
            replace(x)
            del b1[x]
            t2[x] = 1
        elif x in b2:
            p = max(0, p - max(len(b1) / len(b2), 1))
            replace(x)
            del b2[x]
            t2[x] = 1
        else:
            l1, total = len(t1) + len(b1), len(t1) + len(t2) + len(b1) + len(b2)
            if l1 == c:
                if len(t1) < c:
                    b1.popitem(last=False)
                    replace(x)
                else:
                    t1.popitem(last=False)
            elif total >= c:
                if total == 2 * c:
                    b2.popitem(last=False)
                replace(x)
            t1[x] = 1
    return hits


def belady(trace, c):
    nxt, seen = [0] * len(trace), {}
    for i in range(len(trace) - 1, -1, -1):
        nxt[i] = seen.get(trace[i], float("inf"))
        seen[trace[i]] = i
    res, hits = {}, 0
    for i, x in enumerate(trace):
        if x in res:
            hits += 1
        elif len(res) == c:
            del res[max(res, key=res.get)]
        res[x] = nxt[i]
    return hits


trace = [int(l) for l in open(sys.argv[1])]
c = int(sys.argv[2])
print(lru(trace, c), arc(trace, c), belady(trace, c))
