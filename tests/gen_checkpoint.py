"""gen_checkpoint.py - writes small checkpoints in the exact format of the
official Grok-1 release (ckpt-0/tensorNNNNN_000), and checks conversions
of them.

The files are pickled by Python's own pickler with protocol 4, pickle.dump's
default on Python 3.8-3.13, which the official checkpoint.py's fast_pickle
uses. The
dataclass `QuantizedWeight8bit` is a real dataclass living in module
__main__ (NEWOBJ + a state dict). ml_dtypes is not in Debian, so by default
a stand-in `ml_dtypes.bfloat16` is pickled the way numpy pickles a
user-defined dtype: numpy.dtype(<the scalar type>, False, True) with state
(3, '<', None, None, None, 2, 2, 80): numpy writes the element size and
alignment of every extended type (PyTypeNum_ISEXTENDED: flexible or
user-defined), -1, -1 only for its own types; flags 80 are NPY_NEEDS_PYAPI
| NPY_USE_SETITEM, as ml_dtypes 0.2-0.3 register bfloat16. `check-standin`
checks that rule against numpy itself, on the user-defined dtype Debian's
numpy ships (numpy.core._rational_tests.rational). With --dtypes real the
scales are real numpy arrays of an importable ml_dtypes.bfloat16 (the real
package, or tests/pickle/ml_dtypes.c built by pickle_real_test.sh), and the
files must come out byte for byte the same.

Layout (xai-org/grok-1 checkpoint.py: files follow the sorted parameter
paths): 0 embeddings f32 [V, D]; 1 final rms_norm; then per layer, layers
in lexicographic order of their index, 12 files: moe/linear,
moe/linear_1, moe/linear_v, attention key, linear, query, value,
rms_norm, rms_norm_1, rms_norm_2, rms_norm_3, router/w. Matrices are int8
[in, out] (experts [E, in, out]) with bf16 scales [.., 1, out], or
[.., 8, out] for the attention output and moe/linear_1.

Commands:
  gen_checkpoint.py write DIR --vocab N [--layers 11 ...] [--ref-ids 1,2,3 --ref-out F]
          [--dtypes standin|real] [--protocol 4]
      writes the checkpoint; with --ref-ids, also the float64 reference
      logits (tests/ref/grok_ref.py's forward pass over weights dequantized
      here from the int8 values and bf16 scales, independent of the C code)
  gen_checkpoint.py check-standin
      checks that the bf16 stand-in pickles the way numpy pickles a real
      user-defined dtype (numpy.core._rational_tests.rational)
  gen_checkpoint.py check-q8 DIR MODEL.gguf
      checks that every Q8_0 block of the converted file holds the official
      int8 values and the f16 of the official scale where that is exact,
      and prints how many blocks are not exact
  gen_checkpoint.py check-bf16 DIR MODEL.gguf
      checks that every bf16 weight equals the bf16 product int8 * scale
"""

import argparse
import dataclasses
import os
import pickle
import pickletools
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "ref"))

# ---- stand-ins that pickle like the official objects ----
class bfloat16:  # noqa: N801 - the name is what gets pickled
    pass


bfloat16.__module__ = "ml_dtypes"
bfloat16.__qualname__ = "bfloat16"

# What numpy writes for ml_dtypes' bfloat16 descriptor: element size and
# alignment (an extended type), NPY_NEEDS_PYAPI | NPY_USE_SETITEM.
BF16_ITEMSIZE, BF16_ALIGNMENT, BF16_FLAGS = 2, 2, 80


def install_standin():
    """Makes the stand-in importable as ml_dtypes.bfloat16 (pickle checks
    that a class is reachable under the name it pickles)."""
    m = types.ModuleType("ml_dtypes")
    m.bfloat16 = bfloat16
    sys.modules["ml_dtypes"] = m


class _BF16Dtype:
    def __reduce__(self):
        order = "<" if sys.byteorder == "little" else ">"
        return (np.dtype, (bfloat16, False, True),
                (3, order, None, None, None, BF16_ITEMSIZE, BF16_ALIGNMENT, BF16_FLAGS))


class BF16Array:
    """A bf16 array given by its uint16 bit patterns."""

    def __init__(self, bits):
        self.bits = np.ascontiguousarray(bits, dtype="=u2")

    def __reduce__(self):
        return (np.core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                (1, self.bits.shape, _BF16Dtype(), False, self.bits.tobytes()))


def bf16_array(bits, real):
    """The scales array: the stand-in, or a real numpy array of an importable
    ml_dtypes.bfloat16 holding the same bits."""
    if not real:
        return BF16Array(bits)
    import ml_dtypes
    return np.ascontiguousarray(bits, dtype="=u2").view(ml_dtypes.bfloat16)


@dataclasses.dataclass
class QuantizedWeight8bit:
    weight: object
    scales: object


QuantizedWeight8bit.__module__ = "__main__"
QuantizedWeight8bit.__qualname__ = "QuantizedWeight8bit"
sys.modules["__main__"].QuantizedWeight8bit = QuantizedWeight8bit

SLOTS = ["moe/linear", "moe/linear_1", "moe/linear_v", "key", "linear", "query", "value",
         "rms_norm", "rms_norm_1", "rms_norm_2", "rms_norm_3", "router"]


def bf16_bits(x):
    """Round float32 values to bf16 (nearest even), as bit patterns."""
    u = np.atleast_1d(np.asarray(x, dtype=np.float32)).view(np.uint32).astype(np.uint64)
    u = (u + np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
    return u.astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def quantized(rng, shape, n_blocks, tiny=0):
    """int8 weight [.., in, out] and bf16 scales [.., n_blocks, out]."""
    w = rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
    sshape = list(shape)
    sshape[-2] = n_blocks
    fan_in = shape[-2]
    s = rng.uniform(0.5, 1.5, size=sshape) / (127.0 * np.sqrt(fan_in))
    bits = bf16_bits(s.astype(np.float32))
    if tiny:
        # a few scales below f16's range, so q8_0 must requantize those blocks
        flat = bits.reshape(-1)
        idx = rng.choice(flat.size, size=tiny, replace=False)
        flat[idx] = bf16_bits(np.float32(2.0 ** -30))
    return w, bits


def dequant(w, bits):
    """Exact float64 of int8 * bf16 scale, broadcasting the scale blocks."""
    s = bf16_value(bits).astype(np.float64)
    nb, n_in = s.shape[-2], w.shape[-2]
    s = np.repeat(s, n_in // nb, axis=-2)
    return w.astype(np.float64) * s


def dump(path, obj, protocol=4):
    """pickle.dump, as the official fast_pickle calls it; 4 is its default
    protocol on Python 3.8-3.13, named so that a newer Python (default 5)
    writes the same files."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def cmd_write(a):
    real = a.dtypes == "real"
    if not real:
        install_standin()
    rng = np.random.default_rng(a.seed)
    D, H, KV, HD, FF, E, V, NL = (a.d_model, a.heads, a.kv_heads, a.head_dim, a.ffn, a.experts,
                                  a.vocab, a.layers)
    os.makedirs(a.dir, exist_ok=True)
    emb = rng.normal(0, 0.02, size=(V, D)).astype(np.float32)
    out_norm = rng.uniform(0.5, 1.5, size=D).astype(np.float32)
    dump(os.path.join(a.dir, "tensor00000_000"), emb, a.protocol)
    dump(os.path.join(a.dir, "tensor00001_000"), out_norm, a.protocol)
    layers = [None] * NL
    order = sorted(range(NL), key=str)  # lexicographic, like the sorted parameter paths
    k = 2
    tiny_left = a.tiny_scales
    for li in order:
        L = {}
        for slot in SLOTS:
            if slot in ("moe/linear", "moe/linear_v"):
                obj = quantized(rng, (E, D, FF), 1, tiny=tiny_left)
                tiny_left = 0
            elif slot == "moe/linear_1":
                obj = quantized(rng, (E, FF, D), 8)
            elif slot in ("key", "value"):
                obj = quantized(rng, (D, KV * HD), 1)
            elif slot == "query":
                obj = quantized(rng, (D, H * HD), 1)
            elif slot == "linear":
                obj = quantized(rng, (H * HD, D), 8)
            elif slot == "router":
                obj = rng.normal(0, 1.0 / np.sqrt(D), size=(D, E)).astype(np.float32)
            else:
                obj = rng.uniform(0.5, 1.5, size=D).astype(np.float32)
            L[slot] = obj
            if isinstance(obj, tuple):
                payload = QuantizedWeight8bit(obj[0], bf16_array(obj[1], real))
            else:
                payload = obj
            dump(os.path.join(a.dir, "tensor%05d_000" % k), payload, a.protocol)
            k += 1
        layers[li] = L
    print("wrote %d files (%d layers) to %s" % (k, NL, a.dir))
    if a.ref_ids:
        import grok_ref
        m = grok_ref.Model.__new__(grok_ref.Model)
        m.d_model, m.n_layers, m.n_ff, m.n_heads, m.n_kv = D, NL, FF, H, KV
        m.eps, m.rope_base, m.n_experts, m.n_used, m.head_dim = 1e-5, 10000.0, E, 2, HD
        m.emb_scale = 78.38367176906169
        m.logit_scale = 0.5773502691896257
        m.attn_scale = 0.08838834764831845
        m.softcap = 30.0
        m.pad_id = 0
        m.embd = emb.astype(np.float64)
        m.n_vocab = V
        m.output = None
        m.output_norm = out_norm.astype(np.float64)
        m.layers = []
        for L in layers:
            T = lambda q: np.swapaxes(dequant(*q), -1, -2)  # noqa: E731 [.., out, in]
            m.layers.append({
                "attn_norm": L["rms_norm"].astype(np.float64),
                "attn_q": T(L["query"]), "attn_k": T(L["key"]), "attn_v": T(L["value"]),
                "attn_output": T(L["linear"]),
                "attn_output_norm": L["rms_norm_1"].astype(np.float64),
                "ffn_norm": L["rms_norm_2"].astype(np.float64),
                "ffn_gate_inp": L["router"].astype(np.float64).T,
                "ffn_gate_exps": T(L["moe/linear"]), "ffn_up_exps": T(L["moe/linear_v"]),
                "ffn_down_exps": T(L["moe/linear_1"]),
                "layer_output_norm": L["rms_norm_3"].astype(np.float64),
            })
        ids = [int(x) for x in a.ref_ids.split(",")]
        logits = grok_ref.forward(m, ids)
        logits.astype("<f4").tofile(a.ref_out)
        np.save(a.ref_out + ".f64.npy", logits)
        print("reference logits [%d x %d] -> %s" % (len(ids), V, a.ref_out))


def load(path):
    class U(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("__main__", "QuantizedWeight8bit"):
                return QuantizedWeight8bit
            if (module, name) == ("ml_dtypes", "bfloat16"):
                return np.uint16  # bits are what we compare
            return super().find_class(module, name)
    with open(path, "rb") as f:
        return U(f).load()


GGUF_SLOTS = ["ffn_gate_exps", "ffn_down_exps", "ffn_up_exps", "attn_k", "attn_output", "attn_q",
              "attn_v"]


def each_matrix(ckpt, gguf_path):
    from gguf_reader import GGUFFile
    g = GGUFFile(gguf_path)
    n_files = len([f for f in os.listdir(ckpt) if f.startswith("tensor")])
    NL = (n_files - 2) // 12
    order = sorted(range(NL), key=str)
    for r, li in enumerate(order):
        for s, name in enumerate(GGUF_SLOTS):
            q = load(os.path.join(ckpt, "tensor%05d_000" % (2 + 12 * r + s)))
            w = np.asarray(q.weight)
            bits = np.frombuffer(np.asarray(q.scales).tobytes(), dtype="<u2").reshape(
                np.asarray(q.scales).shape)
            yield g, "blk.%d.%s.weight" % (li, name), w, bits


def cmd_check_q8(a):
    blocks = inexact = 0
    for g, name, w, bits in each_matrix(a.dir, a.gguf):
        t = g.tensors[name]
        if t.type != 8:
            print("FAIL %s: type %d, not q8_0" % (name, t.type))
            return 1
        raw = np.asarray(g.raw(name)).reshape(-1, 34)
        d = raw[:, :2].copy().view("<f2").reshape(-1)
        qs = raw[:, 2:].view(np.int8)
        # official, transposed to GGUF rows: [.., out, in] -> blocks of 32
        wt = np.swapaxes(w, -1, -2)
        n_in = w.shape[-2]
        s = np.repeat(bf16_value(bits), n_in // bits.shape[-2], axis=-2)
        st = np.swapaxes(s, -1, -2).reshape(-1, 32)
        want_q = wt.reshape(-1, 32)
        s0 = st[:, 0]
        exact = (s0.astype(np.float16).astype(np.float32) == s0) & np.all(st == s0[:, None], axis=1)
        blocks += want_q.shape[0]
        inexact += int(np.sum(~exact))
        bad = exact & (np.any(qs != want_q, axis=1) | (d.astype(np.float32) != s0))
        if np.any(bad):
            i = int(np.argmax(bad))
            print("FAIL %s: block %d differs from the official int8 values/scale" % (name, i))
            return 1
    print("ok   q8_0 blocks bit-exact: %d blocks, %d not exact in f16" % (blocks, inexact))
    print("inexact=%d" % inexact)
    return 0


def cmd_check_bf16(a):
    n = 0
    for g, name, w, bits in each_matrix(a.dir, a.gguf):
        t = g.tensors[name]
        if t.type != 30:
            print("FAIL %s: type %d, not bf16" % (name, t.type))
            return 1
        got = np.asarray(g.raw(name)).view("<u2")
        prod = dequant(w, bits).astype(np.float32)  # exact in f32
        want = bf16_bits(np.swapaxes(prod, -1, -2)).reshape(-1)
        if not np.array_equal(got, want):
            i = int(np.argmax(got != want))
            print("FAIL %s: element %d is %04x, the bf16 product is %04x" % (name, i, got[i], want[i]))
            return 1
        n += got.size
    print("ok   bf16 weights equal the official bf16 products (%d values)" % n)
    return 0


def _rational():
    try:
        from numpy.core._rational_tests import rational
    except ImportError:  # numpy >= 2
        from numpy._core._rational_tests import rational
    return rational


def cmd_check_standin(_a):
    """The bf16 stand-in against numpy's own pickling of a user-defined
    dtype: numpy.core._rational_tests.rational, which Debian's numpy ships."""
    rational = _rational()
    order = "<" if sys.byteorder == "little" else ">"
    rd = np.dtype(rational)
    fn, args, state = rd.__reduce__()
    print("numpy %s: np.dtype(rational).__reduce__() = (%s, %r, %r)" % (np.__version__, fn.__name__,
                                                                     args, state))
    # numpy's rule, seen on numpy itself: an extended (user-defined) type
    # carries its element size and alignment; numpy's own types -1, -1
    want = (3, order, None, None, None, rd.itemsize, rd.alignment, rd.flags)
    if fn is not np.dtype or args != (rational, False, True) or state != want:
        print("FAIL numpy pickles a user-defined dtype as %r, the stand-in assumes %r" % (state, want))
        return 1
    f4 = np.dtype("<f4").__reduce__()[2]
    if f4[5:7] != (-1, -1):
        print("FAIL numpy's own float32 state is %r, the reader assumes -1, -1" % (f4,))
        return 1
    sfn, sargs, sstate = _BF16Dtype().__reduce__()
    swant = (3, order, None, None, None, BF16_ITEMSIZE, BF16_ALIGNMENT, BF16_FLAGS)
    if sfn is not np.dtype or sargs != (bfloat16, False, True) or sstate != swant or \
            [type(x) for x in sstate] != [type(x) for x in state]:
        print("FAIL the stand-in reduces to (%r, %r, %r), numpy's rule gives (np.dtype, %r, %r)" % (
            sfn, sargs, sstate, (bfloat16, False, True), swant))
        return 1
    # whole byte streams, opcode by opcode: a real dataclass holding a real
    # int8 array and a real rational array, and the same with the stand-in
    install_standin()
    w = np.arange(-6, 6, dtype=np.int8).reshape(4, 3)
    bits = np.array([[0x3F80, 0x4000, 0x4040]], dtype="<u2")
    ra = np.zeros((1, 3), dtype=rational)
    real = pickle.dumps(QuantizedWeight8bit(w, ra), protocol=4)
    stand = pickle.dumps(QuantizedWeight8bit(w, BF16Array(bits)), protocol=4)
    a_ops = [(op.name, arg) for op, arg, _ in pickletools.genops(real)]
    b_ops = [(op.name, arg) for op, arg, _ in pickletools.genops(stand)]
    if [n for n, _ in a_ops] != [n for n, _ in b_ops]:
        print("FAIL opcodes differ:\n  numpy    %s\n  stand-in %s" % (
            " ".join(n for n, _ in a_ops), " ".join(n for n, _ in b_ops)))
        return 1
    # where the two may differ: the dtype's names, its state's size,
    # alignment and flags (the three ints after the state's three Nones),
    # the payload (the last bytes), FRAME lengths
    allowed = {rational.__module__: "ml_dtypes", rational.__qualname__: "bfloat16"}
    sized = {}
    for i in range(3, len(a_ops) - 3):
        if [n for n, _ in a_ops[i - 3:i]] == ["NONE"] * 3 and \
                [x for _, x in a_ops[i:i + 3]] == [rd.itemsize, rd.alignment, rd.flags]:
            sized.update({i: BF16_ITEMSIZE, i + 1: BF16_ALIGNMENT, i + 2: BF16_FLAGS})
    if len(sized) != 3:
        print("FAIL the rational dtype state was not found in numpy's stream")
        return 1
    last = max(i for i, (n, _) in enumerate(a_ops) if "BYTES" in n)
    for i, ((an, aa), (_, ba)) in enumerate(zip(a_ops, b_ops)):
        if an == "FRAME" or i == last:
            continue
        want = sized.get(i, allowed.get(aa, aa) if isinstance(aa, str) else aa)
        if ba != want:
            print("FAIL opcode %d %s: numpy writes %r, so the stand-in must write %r, not %r" % (
                i, an, aa, want, ba))
            return 1
    print("ok   the bf16 stand-in pickles as numpy pickles a user-defined dtype: %d opcodes alike, "
          "state (3, %r, None, None, None, itemsize, alignment, flags)" % (len(a_ops), order))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("dir")
    w.add_argument("--vocab", type=int, required=True)
    w.add_argument("--layers", type=int, default=11)
    w.add_argument("--d-model", type=int, default=256)
    w.add_argument("--heads", type=int, default=4)
    w.add_argument("--kv-heads", type=int, default=2)
    w.add_argument("--head-dim", type=int, default=64)
    w.add_argument("--ffn", type=int, default=256)
    w.add_argument("--experts", type=int, default=8)
    w.add_argument("--tiny-scales", type=int, default=0,
                   help="scales set below f16's range (q8_0 must requantize these blocks)")
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--ref-ids")
    w.add_argument("--ref-out")
    w.add_argument("--dtypes", choices=("standin", "real"), default="standin",
                   help="real: scales are numpy arrays of an importable ml_dtypes.bfloat16")
    w.add_argument("--protocol", type=int, default=4)
    sub.add_parser("check-standin")
    for name in ("check-q8", "check-bf16"):
        c = sub.add_parser(name)
        c.add_argument("dir")
        c.add_argument("gguf")
    a = ap.parse_args(argv[1:])
    if a.cmd == "write":
        cmd_write(a)
        return 0
    if a.cmd == "check-standin":
        return cmd_check_standin(a)
    return cmd_check_q8(a) if a.cmd == "check-q8" else cmd_check_bf16(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
