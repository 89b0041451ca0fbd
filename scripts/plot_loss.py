#!/usr/bin/python3
"""plot_loss.py - draws the loss curve of a `grok train --log FILE.csv` run as
a self-contained SVG (no plotting library needed): training loss per step
(smoothed over 20 steps, raw in light grey) and held-out loss at each
evaluation, loss in nats per token on the y axis.

usage: /usr/bin/python3 scripts/plot_loss.py train-log.csv docs/train-loss.svg [title]
"""
import csv
import math
import os
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    title = sys.argv[3] if len(sys.argv) > 3 else "grok train"
    steps = [int(r["step"]) for r in rows]
    train = [float(r["train_loss"]) for r in rows]
    ev = [(int(r["step"]), float(r["eval_loss"])) for r in rows
          if r["eval_loss"] not in ("", "nan", "-nan") and not math.isnan(float(r["eval_loss"]))]
    smooth, acc = [], []
    for v in train:
        acc.append(v)
        acc = acc[-20:]
        smooth.append(sum(acc) / len(acc))
    W, H, L, R, T, B = 720, 420, 60, 20, 40, 50
    x0, x1 = min(steps), max(steps)
    ys = train + [v for _, v in ev]
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
    sx = lambda s: L + (s - x0) / max(1, x1 - x0) * (W - L - R)
    sy = lambda v: T + (y1 - v) / max(1e-9, y1 - y0) * (H - T - B)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    for k in range(y0, y1 + 1):
        y = sy(k)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 8}" y="{y + 4:.1f}" text-anchor="end">{k}</text>')
    n_ticks = 5
    for i in range(n_ticks + 1):
        s = x0 + (x1 - x0) * i / n_ticks
        out.append(f'<text x="{sx(s):.1f}" y="{H - B + 18}" text-anchor="middle">{int(s)}</text>')
    out.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>')
    out.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>')
    out.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">step</text>')
    out.append(f'<text x="16" y="{H / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {H / 2})">loss (nats/token)</text>')

    def poly(pts, color, width):
        p = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in pts)
        return f'<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{p}"/>'

    out.append(poly(list(zip(steps, train)), "#ccc", 1))
    out.append(poly(list(zip(steps, smooth)), "#1f77b4", 2))
    if ev:
        out.append(poly(ev, "#d62728", 2))
        for s, v in ev:
            out.append(f'<circle cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="3" fill="#d62728"/>')
    lx = W - R - 190
    out.append(f'<line x1="{lx}" y1="{T + 10}" x2="{lx + 25}" y2="{T + 10}" stroke="#1f77b4" stroke-width="2"/>')
    out.append(f'<text x="{lx + 30}" y="{T + 14}">training (20-step mean)</text>')
    out.append(f'<line x1="{lx}" y1="{T + 28}" x2="{lx + 25}" y2="{T + 28}" stroke="#d62728" stroke-width="2"/>')
    out.append(f'<text x="{lx + 30}" y="{T + 32}">held-out</text>')
    out.append("</svg>")
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, sys.argv[2])


if __name__ == "__main__":
    main()
