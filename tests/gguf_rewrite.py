"""gguf_rewrite.py - rewrites a GGUF file into the layouts seen in files in
the wild, with its own GGUF writer (tests/ref/make_model.py's), copying
every tensor's bytes unchanged, so the C loader must give the same logits
on the result as on the original.

  gguf_rewrite.py old-experts IN.gguf OUT.gguf [--order interleaved|bykind]
      each ffn_{gate,up,down}_exps tensor [E, rows, cols] becomes one 2-D
      tensor per expert, blk.N.ffn_gate.E.weight, as llama.cpp wrote MoE
      files before its PR #6387 (April 2024) merged them, and as Arki05's
      Grok-1 GGUFs of March 2024 hold them. bykind writes the experts of
      one kind back to back (gate.0 .. gate.7, then down, then up);
      interleaved writes gate.0, down.0, up.0, gate.1, ... as a converter
      walking a checkpoint expert by expert does.
  gguf_rewrite.py add-tensor IN.gguf OUT.gguf NAME TYPE_NUMBER NE0
      appends one 1-D tensor of raw zero bytes of a ggml type (e.g. 26 =
      i32), to see how a type that nothing computes is reported.
"""

import os
import re
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "ref"))
from gguf_reader import GGUFFile  # noqa: E402
import make_model  # noqa: E402

NP_TYPE = {np.dtype("uint8"): make_model.U8, np.dtype("int8"): make_model.I8,
           np.dtype("uint16"): make_model.U16, np.dtype("int16"): make_model.I16,
           np.dtype("uint32"): make_model.U32, np.dtype("int32"): make_model.I32,
           np.dtype("float32"): make_model.F32, np.dtype("bool"): make_model.BOOL,
           np.dtype("uint64"): make_model.U64, np.dtype("int64"): make_model.I64,
           np.dtype("float64"): make_model.F64}


def copy_kvs(g, w):
    for key, value in g.kvs.items():
        vt = g.kv_types[key]
        if vt == make_model.ARR:
            if isinstance(value, np.ndarray):
                w.kv(key, vt, value.tolist(), NP_TYPE[value.dtype])
            else:
                w.kv(key, vt, value, make_model.STR)
        else:
            w.kv(key, vt, value)


def raw_tensor(w, name, ne, ttype, data):
    w.tensors.append((name, list(ne), ttype, bytes(data)))


def cmd_old_experts(a_in, a_out, order):
    g = GGUFFile(a_in)
    w = make_model.Writer()
    copy_kvs(g, w)
    exps = re.compile(r"^blk\.(\d+)\.(ffn_gate|ffn_up|ffn_down)_exps\.weight$")
    pending = {}
    for name in g.tensor_order:
        t = g.tensors[name]
        m = exps.match(name)
        if not m:
            raw_tensor(w, name, t.ne, t.type, g.raw(name))
            continue
        il, kind = m.group(1), m.group(2)
        E = t.ne[2]
        raw = np.asarray(g.raw(name))
        per = raw.size // E
        parts = [(("blk.%s.%s.%d.weight" % (il, kind, e)), t.ne[:2], t.type, raw[e * per:(e + 1) * per])
                 for e in range(E)]
        if order == "bykind":
            for p in parts:
                raw_tensor(w, *p)
        else:
            pending.setdefault(il, []).append(parts)
            if len(pending[il]) == 3:
                for e in range(E):
                    for kinds in pending[il]:
                        raw_tensor(w, *kinds[e])
                del pending[il]
    if pending:
        raise SystemExit("layer %s lacks some of ffn_gate/up/down_exps" % list(pending))
    w.write(a_out)
    n = sum(1 for t in w.tensors if re.match(r"^blk\.\d+\.ffn_(gate|up|down)\.\d+\.weight$", t[0]))
    print("wrote %s: %d tensors, %d per-expert (%s)" % (a_out, len(w.tensors), n, order))


def cmd_add_tensor(a_in, a_out, name, ttype, ne0):
    g = GGUFFile(a_in)
    w = make_model.Writer()
    copy_kvs(g, w)
    for n in g.tensor_order:
        t = g.tensors[n]
        raw_tensor(w, n, t.ne, t.type, g.raw(n))
    size = {24: 1, 25: 2, 26: 4, 27: 8, 28: 8}.get(ttype, 1)  # any bytes for types the reader refuses
    raw_tensor(w, name, [ne0], ttype, b"\0" * (size * ne0))
    w.write(a_out)


def main(argv):
    if len(argv) >= 4 and argv[1] == "old-experts":
        order = "interleaved"
        if len(argv) == 6 and argv[4] == "--order":
            order = argv[5]
        cmd_old_experts(argv[2], argv[3], order)
        return 0
    if len(argv) == 7 and argv[1] == "add-tensor":
        cmd_add_tensor(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
