"""trace_check.py - checks a `grok trace -o` JSON against an independent
computation: the router's probabilities of every token and layer from the
float64 NumPy reference (tests/ref/grok_ref.py, written from GROK1.md and
the official code), the chosen experts and gates, and every statistic
recomputed here from the choices (entropy, margin, shares, imbalance, CV,
co-activation, reuse, and the LRU and optimal cache hit rates, simulated
with Python's own data structures).

Usage: trace_check.py MODEL.gguf TRACE.json
"""

import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))
import grok_ref as R  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def close(a, b, tol, what):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    check(a.shape == b.shape and err <= tol, "%s: max difference %.3g > %g" % (what, err, tol))


def router_probs(m, ids):
    """[layers][T][E] softmax of the router, the reference's forward pass."""
    pos = np.arange(len(ids))
    h = m.embd[ids] * m.emb_scale
    out = []
    for L in m.layers:
        a = R.attention(m, L, R.rmsnorm(h, L["attn_norm"], m.eps), ids, pos)
        h = h + R.rmsnorm(a, L["attn_output_norm"], m.eps)
        x = R.rmsnorm(h, L["ffn_norm"], m.eps)
        out.append(R.softmax(x @ L["ffn_gate_inp"].T))
        mo = R.moe(m, L, x, ids, "keep")
        h = h + R.rmsnorm(mo, L["layer_output_norm"], m.eps)
    return out


def lru_rate(sets, k):
    cache, hits = OrderedDict(), 0
    for s in sets:
        hits += sum(e in cache for e in s)
        for e in s:
            if e in cache:
                cache.move_to_end(e)
        for e in s:
            if e not in cache:
                if len(cache) >= k:
                    old = [x for x in cache if x not in s] or list(cache)
                    del cache[old[0]]
                cache[e] = True
            cache.move_to_end(e)
    return hits / (len(sets) * len(sets[0]))


def opt_rate(sets, k):
    cache, hits = set(), 0
    for t, s in enumerate(sets):
        hits += sum(e in cache for e in s)
        for e in s:
            if e in cache:
                continue
            if len(cache) >= k:
                def next_use(x):
                    for u in range(t, len(sets)):
                        if x in sets[u] and u > t:
                            return u
                    return math.inf
                cand = [x for x in cache if x not in s] or list(cache)
                # furthest next use; equal ones: any gives the same count
                del_x = max(cand, key=next_use)
                cache.remove(del_x)
            cache.add(e)
    return hits / (len(sets) * len(sets[0]))


def main():
    model_path, trace_path = sys.argv[1], sys.argv[2]
    tr = json.load(open(trace_path))
    m = R.Model(model_path)
    T, Lc, E, K = tr["n_tokens"], tr["n_layers"], tr["n_experts"], tr["n_experts_used"]
    ids = [t["id"] for t in tr["tokens"]]
    check(len(ids) == T, "tokens: %d entries, n_tokens %d" % (len(ids), T))
    ref = router_probs(m, ids)
    n_sel_checked = 0
    for l in range(Lc):
        got = np.array([t["layers"][l]["probs"] for t in tr["tokens"]])
        close(got, ref[l], 2e-5, "layer %d router probabilities" % l)
        for i, t in enumerate(tr["tokens"]):
            c = t["layers"][l]
            order = np.argsort(-ref[l][i], kind="stable")
            p = ref[l][i][order]
            if K < E and p[K - 1] - p[K] < 1e-5:
                continue  # a near tie: either choice is f32 rounding
            n_sel_checked += 1
            check(list(c["experts"]) == [int(x) for x in order[:K]],
                  "token %d layer %d: experts %s, reference %s" % (i, l, c["experts"], list(order[:K])))
            close(c["gates"], p[:K], 2e-5, "token %d layer %d gates" % (i, l))
            pr = np.array(c["probs"])
            close(c["entropy"], -np.sum(pr * np.log2(pr)), 1e-4, "token %d layer %d entropy" % (i, l))
            q = np.sort(pr)[::-1]
            close(c["margin"], q[0] - q[1], 1e-5, "token %d layer %d margin" % (i, l))
    check(n_sel_checked > T * Lc * 0.9, "only %d of %d selections checked" % (n_sel_checked, T * Lc))
    pooled_lru = np.zeros(E)
    for l in range(Lc):
        st = tr["layers"][l]
        sets = [t["layers"][l]["experts"] for t in tr["tokens"]]
        cnt = np.zeros(E)
        co = np.zeros((E, E))
        for s in sets:
            for a in s:
                cnt[a] += 1
                for b in s:
                    co[a, b] += 1
        close(st["count"], cnt, 0, "layer %d counts" % l)
        close(st["share"], cnt / (T * K), 1e-6, "layer %d shares" % l)
        close(st["imbalance"], cnt.max() / cnt.mean(), 1e-5, "layer %d imbalance" % l)
        close(st["cv"], cnt.std() / cnt.mean(), 1e-5, "layer %d cv" % l)
        close(st["coactivation"], co, 0, "layer %d co-activation" % l)
        reuse = np.mean([len(set(a) & set(b)) / K for a, b in zip(sets[1:], sets[:-1])])
        close(st["reuse"], reuse, 1e-5, "layer %d reuse" % l)
        lru = [lru_rate(sets, k) for k in range(1, E + 1)]
        opt = [opt_rate(sets, k) for k in range(1, E + 1)]
        close(st["lru_hit_rate"], lru, 1e-5, "layer %d LRU hit rates" % l)
        close(st["optimal_hit_rate"], opt, 1e-5, "layer %d optimal hit rates" % l)
        check(all(o >= u - 1e-9 for o, u in zip(opt, lru)), "layer %d: LRU beats the optimum" % l)
        # a cache of K holds the previous token's set: its hits are the reuse (the first token misses)
        close(st["lru_hit_rate"][K - 1] * T, reuse * (T - 1), 1e-4, "layer %d: LRU of K experts is the reuse" % l)
        pooled_lru += np.array(lru) / Lc
    close(tr["all_layers"]["lru_hit_rate"], pooled_lru, 1e-5, "all layers' LRU hit rates")
    if failures:
        for f in failures[:20]:
            print("FAIL:", f)
        return 1
    print("trace_check: %d tokens x %d layers: probabilities, %d selections, statistics agree"
          % (T, Lc, n_sel_checked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
