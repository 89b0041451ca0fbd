"""imatrix_ref.py - the importance matrix of a model over token chunks,
computed with the float64 reference forward pass (grok_ref.py), and the
check of an imatrix file against it.

An importance matrix holds, per weight matrix and per expert of a stacked
expert tensor, the sum over the rows the product read of each input
column's square, and the number of rows (llama-imatrix's definition). Here
the rows come from grok_ref.forward's record of every product's inputs, so
nothing is shared with the C engine but the definition. The two file
layouts are read independently of the C reader: llama.cpp's imatrix GGUF
through gguf_reader.py, and the legacy .dat (int32 entry count; per entry
int32 name length, name, int32 chunk count, int32 value count, f32 values
= mean * chunks; then int32 chunks and the dataset name) by hand.

Usage:
  imatrix_ref.py MODEL.gguf --ids-file IDS --ctx N --chunks N [--bos ID]
                 --compare FILE [--tol 1e-4] [--label L]
IDS holds the text's token ids (whitespace-separated), as `grok tokenize
--ids` prints them; chunk k is ids[k*ctx:(k+1)*ctx] with its first token
replaced by --bos when given. Exit status 0 when every tensor of the
reference is in FILE with equal row counts and sums within --tol (max
|diff| / max |ref| per tensor), and FILE holds nothing else.
"""

import argparse
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grok_ref  # noqa: E402
from gguf_reader import GGUFFile  # noqa: E402


def reference(model, ids, ctx, n_chunks, bos):
    m = grok_ref.Model(model)
    sums, counts = {}, {}

    def rec(weight, expert, rows):
        name = "blk.%d.%s.weight" % (rec.layer, weight)
        ncols = rows.shape[1]
        nmat = m.n_experts if expert >= 0 else 1
        s = sums.setdefault(name, np.zeros((nmat, ncols)))
        c = counts.setdefault(name, np.zeros(nmat))
        s[max(expert, 0)] += (rows * rows).sum(axis=0)
        c[max(expert, 0)] += rows.shape[0]

    for k in range(n_chunks):
        chunk = list(ids[k * ctx:(k + 1) * ctx])
        if bos is not None:
            chunk[0] = bos
        grok_ref.forward(m, chunk, rec=rec)
    return sums, counts


def read_gguf(path):
    g = GGUFFile(path)
    out = {}
    for name in g.tensors:
        if name.endswith(".in_sum2"):
            base = name[:-len(".in_sum2")]
            s = g.tensor(name).astype(np.float64)
            c = g.tensor(base + ".counts").astype(np.float64)
            out[base] = (s.reshape(c.size, -1), c.reshape(-1))
    return out


def read_dat(path):
    b = open(path, "rb").read()
    at = 0

    def i32():
        nonlocal at
        v = struct.unpack_from("<i", b, at)[0]
        at += 4
        return v
    out = {}
    for _ in range(i32()):
        n = i32()
        name = b[at:at + n].decode()
        at += n
        ncall, nval = i32(), i32()
        vals = np.frombuffer(b, dtype="<f4", count=nval, offset=at).astype(np.float64)
        at += 4 * nval
        # mean * chunks, one count in chunks: report means with count 1
        out[name] = (vals.reshape(1, -1) / ncall, None)
    return out


def main(argv):
    ap = argparse.ArgumentParser(description="reference importance matrix (float64 NumPy)")
    ap.add_argument("model")
    ap.add_argument("--ids-file", required=True)
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--chunks", type=int, required=True)
    ap.add_argument("--bos", type=int)
    ap.add_argument("--compare", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--label", default="")
    a = ap.parse_args(argv[1:])
    ids = [int(t) for t in open(a.ids_file).read().split()]
    sums, counts = reference(a.model, ids, a.ctx, a.chunks, a.bos)
    legacy = open(a.compare, "rb").read(4) != b"GGUF"
    got = read_dat(a.compare) if legacy else read_gguf(a.compare)
    bad = []
    extra = sorted(set(got) - set(sums))
    if extra:
        bad.append("not in the reference: %s" % ", ".join(extra[:4]))
    worst, total_rows = 0.0, 0
    for name in sorted(sums):
        if name not in got:
            bad.append("%s missing" % name)
            continue
        s, c = sums[name], counts[name]
        gs, gc = got[name]
        total_rows += int(c.sum())
        if legacy:
            # the means, flattened over experts (the legacy layout keeps no per-expert count)
            ref = (s / np.maximum(c, 1)[:, None]).reshape(1, -1)
            ref[:, np.repeat(c == 0, s.shape[1])] = 1.0  # no data: llama.cpp stores 1
            gs = gs.reshape(1, -1)
        else:
            ref = s
            if gc.shape != c.shape or np.any(gc != c):
                bad.append("%s: row counts %s, reference %s" % (name, gc.astype(int).tolist(), c.astype(int).tolist()))
                continue
        if gs.size != ref.size:
            bad.append("%s: %d values, reference %d" % (name, gs.size, ref.size))
            continue
        e = np.abs(gs.reshape(ref.shape) - ref).max() / max(np.abs(ref).max(), 1e-30)
        worst = max(worst, e)
        if e > a.tol:
            bad.append("%s: sums differ by %.3g (tol %.1g)" % (name, e, a.tol))
    if bad:
        print("FAIL %s: %s" % (a.label, "; ".join(bad[:6])))
        return 1
    print("ok   %s: %d tensors, %d rows, counts equal, sums within %.2g of the float64 reference"
          % (a.label, len(sums), total_rows, worst))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
