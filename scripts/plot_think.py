#!/usr/bin/python3
"""plot_think.py - draws bench/think.sh's CSV (method, k, ..., accuracy,
sec_per_question, tokens_per_question) as a self-contained SVG: held-out
accuracy against the compute spent per question (generated tokens of all
samples, log scale), one line per way of choosing (majority vote, best-of-k
by mean log-probability, best-of-k by the verifier; dotted, the share
where some sample is right), each point labelled
with its k, and greedy decoding as a dashed reference line.

usage: /usr/bin/python3 scripts/plot_think.py think.csv docs/think.svg [title]
"""
import csv
import math
import os
import sys

COLORS = {"vote": "#1f77b4", "logprob": "#d62728", "verifier": "#2ca02c", "any": "#999999"}
LABELS = {"vote": "majority vote (maj@k)", "logprob": "best-of-k, mean log-prob", "verifier": "best-of-k, verifier",
          "any": "some sample right (pass@k, the ceiling)"}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    title = sys.argv[3] if len(sys.argv) > 3 else "accuracy against answer-time compute"
    pts = {}
    greedy = None
    for r in rows:
        m, k = r["method"], int(r["k"])
        acc, tok = float(r["accuracy"]), float(r["tokens_per_question"])
        if m == "greedy":
            greedy = (acc, tok)
        else:
            pts.setdefault(m, []).append((tok, acc, k))
    W, H, L, R, T, B = 720, 440, 64, 24, 40, 56
    toks = [t for v in pts.values() for t, _, _ in v] + ([greedy[1]] if greedy else [])
    accs = [a for v in pts.values() for _, a, _ in v] + ([greedy[0]] if greedy else [])
    x0, x1 = math.log10(min(toks)) - 0.1, math.log10(max(toks)) + 0.1
    y0 = max(0.0, math.floor(min(accs) * 10 - 0.5) / 10)
    y1 = min(1.0, math.ceil(max(accs) * 10 + 0.5) / 10)
    sx = lambda t: L + (math.log10(t) - x0) / (x1 - x0) * (W - L - R)
    sy = lambda a: T + (y1 - a) / max(1e-9, y1 - y0) * (H - T - B)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    k = y0
    while k <= y1 + 1e-9:
        y = sy(k)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 8}" y="{y + 4:.1f}" text-anchor="end">{k * 100:.0f} %</text>')
        k += 0.1
    for e in range(math.floor(x0), math.ceil(x1) + 1):
        for mult in (1, 2, 5):
            t = mult * 10 ** e
            if x0 <= math.log10(t) <= x1:
                x = sx(t)
                out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>')
                out.append(f'<text x="{x:.1f}" y="{H - B + 16}" text-anchor="middle">{t:g}</text>')
    out.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>')
    out.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 16}" text-anchor="middle">'
               f'generated tokens per question (all samples, log scale)</text>')
    out.append(f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(T + H - B) / 2})">held-out accuracy</text>')
    if greedy:
        y = sy(greedy[0])
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#555" '
                   f'stroke-dasharray="6 4"/>')
        out.append(f'<text x="{W - R - 4}" y="{y - 5:.1f}" text-anchor="end" fill="#555">'
                   f'greedy {greedy[0] * 100:.1f} %</text>')
    ly = T + 14
    for m in ("vote", "logprob", "verifier", "any"):
        if m not in pts:
            continue
        p = sorted(pts[m])
        c = COLORS[m]
        dash = ' stroke-dasharray="2 3"' if m == "any" else ""
        out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>'
                   % (c, dash, " ".join(f"{sx(t):.1f},{sy(a):.1f}" for t, a, _ in p)))
        for t, a, kk in p:
            out.append(f'<circle cx="{sx(t):.1f}" cy="{sy(a):.1f}" r="3.5" fill="{c}"/>')
            out.append(f'<text x="{sx(t) + 5:.1f}" y="{sy(a) + 14:.1f}" fill="{c}" font-size="10">k={kk}</text>')
        out.append(f'<line x1="{L + 12}" y1="{ly - 4}" x2="{L + 36}" y2="{ly - 4}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{L + 42}" y="{ly}">{LABELS[m]}</text>')
        ly += 16
    out.append("</svg>")
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, sys.argv[2])


if __name__ == "__main__":
    main()
