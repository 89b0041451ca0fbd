"""make_model.py - writes small random Grok models as GGUF v3 files.

A second, independent GGUF writer (the C engine has its own in
src/gguf/): models made here test that the C loader reads files it did
not write itself, with the tensor names, shapes and metadata keys that
llama.cpp uses for architecture "grok". Weights are random but scaled so
that activations stay near unit size and the logits are spread out (not
saturated), which keeps a logits comparison meaningful.

Matrices (embedding, output, attention, experts) use --type; norms and
the router stay f32, as in converted Grok-1 files. The k-quants (q4_K,
q5_K, q6_K) are encoded here by a plain NumPy rule of their own, so the C
loader and kernels meet k-quant bytes that its encoder did not choose; so
are the types grok.c only decodes (q4_1, q5_0, q5_1, q2_K, q3_K, iq4_nl,
iq4_xs, tq1_0, tq2_0, mxfp4, nvfp4, q1_0, q2_0), and --fallback gives the
matrices whose rows do not divide into the type's blocks another type, as
llama-quantize does (ffn_down and attn_output read ffn and heads*head_dim
columns). The i-quants (iq2_xxs ... iq1_m), which grok.c does not encode
at all, get iq_encode.py's NumPy rule.

  /usr/bin/python3 tests/ref/make_model.py -o m.gguf --d-model 64 --layers 2 \
      --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 128 --vocab 300 \
      --type q8_0 --seed 1

--sparse writes the header only and leaves the tensor data a hole of the
right size (a sparse file: no disk, no RAM), for tools that read shapes
and not values, such as grok quantize --dry-run on Grok-1's real shapes
(bench/grok1_mixes.sh).
"""

import argparse
import os
import struct
import sys

import numpy as np

from iq_encode import quantize_iq

# GGUF metadata value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
# ggml tensor types written here.
GGML = {"f32": 0, "f16": 1, "q8_0": 8, "bf16": 30, "q4_K": 12, "q5_K": 13, "q6_K": 14,
        "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q2_K": 10, "q3_K": 11, "iq4_nl": 20, "iq4_xs": 23,
        "tq1_0": 34, "tq2_0": 35, "mxfp4": 39, "nvfp4": 40, "q1_0": 41, "q2_0": 42,
        "iq2_xxs": 16, "iq2_xs": 17, "iq3_xxs": 18, "iq1_s": 19, "iq3_s": 21, "iq2_s": 22, "iq1_m": 29}
# elements per block of each type
BLOCK = {"f32": 1, "f16": 1, "bf16": 1, "q8_0": 32, "q4_0": 32, "q4_1": 32, "q5_0": 32, "q5_1": 32, "iq4_nl": 32,
         "mxfp4": 32, "nvfp4": 64, "q2_0": 64, "q1_0": 128}
ALIGN = 32


def f32_to_bf16_bits(x):
    """Round-to-nearest-even f32 -> bf16, as ggml does (NaN kept quiet)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(x.astype(np.float32))
    rounded = np.where(nan, (u >> 16) | 64, rounded)
    return rounded.astype(np.uint16)


def quantize_q8_0(x):
    """ggml's reference Q8_0: per 32 values d = amax/127 (stored as f16),
    q = round-half-away(x / d) computed with the unrounded d."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.max(np.abs(x), axis=1, keepdims=True)
    d = amax / np.float32(127.0)
    inv = np.where(d != 0, np.float32(1.0) / np.where(d != 0, d, 1), np.float32(0)).astype(np.float32)
    v = x * inv
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)
    out = np.empty((x.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = d.astype("<f2").view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out.reshape(-1)


def _f16_round(v):
    return v.astype("<f2").astype(np.float32)


def _round_clip(v, lo, hi):
    return np.clip(np.rint(v), lo, hi).astype(np.int32)


def quantize_k_asym(x, nmax):
    """Q4_K (nmax 15) / Q5_K (31), simply (not the C encoder's search): per 32
    values min = min(0, min x), scale = (max - min) / nmax; the 8 scales and
    mins to 6 bits against f16 d = max scale / 63 and dmin = max min / 63;
    values rounded against the decoded parameters. Layout as documented in
    gguf_reader.py."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 8, 32)
    mn = -np.minimum(x.min(axis=2), 0)                       # [nb, 8], >= 0
    scale = (x.max(axis=2) + mn) / np.float32(nmax)
    d = _f16_round(scale.max(axis=1, keepdims=True) / np.float32(63))
    dmin = _f16_round(mn.max(axis=1, keepdims=True) / np.float32(63))
    sc = _round_clip(np.divide(scale, d, out=np.zeros_like(scale), where=d > 0), 0, 63)
    m = _round_clip(np.divide(mn, dmin, out=np.zeros_like(mn), where=dmin > 0), 0, 63)
    ds = (d * sc.astype(np.float32))[:, :, None]
    dm = (dmin * m.astype(np.float32))[:, :, None]
    q = _round_clip(np.divide(x + dm, ds, out=np.zeros_like(x), where=ds > 0), 0, nmax)
    nb = x.shape[0]
    packed = np.zeros((nb, 12), dtype=np.int32)
    packed[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    packed[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    pairs = q.reshape(nb, 4, 2, 32)                            # chunk, low/high half, l
    qs = (pairs[:, :, 0, :] & 15) | ((pairs[:, :, 1, :] & 15) << 4)
    parts = [d.astype("<f2").view(np.uint8), dmin.astype("<f2").view(np.uint8), packed.astype(np.uint8)]
    if nmax == 31:
        bits = (q >> 4) << np.arange(8)[None, :, None]          # bit s of qh[l] for sub-block s
        parts.append(bits.sum(axis=1).astype(np.uint8))
    parts.append(qs.reshape(nb, 128).astype(np.uint8))
    return np.concatenate(parts, axis=1).reshape(-1)


def quantize_q6_k(x):
    """Q6_K, simply: per 16 values scale = max|x| / 31; scales to int8
    against f16 d = max scale / 127; q = round(x / (d*sc)) + 32 in 0..63."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 16, 16)
    scale = np.abs(x).max(axis=2) / np.float32(31)
    d = _f16_round(scale.max(axis=1, keepdims=True) / np.float32(127))
    sc = _round_clip(np.divide(scale, d, out=np.zeros_like(scale), where=d > 0), -128, 127)
    ds = (d * sc.astype(np.float32))[:, :, None]
    q = _round_clip(np.divide(x, ds, out=np.zeros_like(x), where=ds != 0), -32, 31) + 32
    nb = x.shape[0]
    q = q.reshape(nb, 2, 4, 32)                                 # half, group g of 32, l
    ql = np.concatenate([(q[:, :, 0] & 15) | ((q[:, :, 2] & 15) << 4),
                         (q[:, :, 1] & 15) | ((q[:, :, 3] & 15) << 4)], axis=2)   # [nb, half, 64]
    qh = ((q >> 4) << (2 * np.arange(4))[None, None, :, None]).sum(axis=2)       # [nb, half, 32]
    return np.concatenate([ql.reshape(nb, 128).astype(np.uint8), qh.reshape(nb, 64).astype(np.uint8),
                           sc.astype(np.int8).view(np.uint8), d.astype("<f2").view(np.uint8)], axis=1).reshape(-1)


# ---- the types of src/kernels/qtypes.h, by plain rules of this file's own
# (round to nearest against per-block scales; no search). The layouts are
# those gguf_reader.py decodes.

def _f16b(v):
    return np.ascontiguousarray(v, dtype=np.float32).astype("<f2").view(np.uint8).reshape(v.shape[0], -1)


def _safe_div(a, b):
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape, dtype=np.float32), where=b != 0)


def _pack_nib(q):
    """[nb, 32] codes 0..15 -> [nb, 16] bytes: element j low nibble of byte j, j+16 high."""
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def _maxmag(x):
    """The value of largest magnitude (sign kept) along the last axis, keepdims."""
    i = np.argmax(np.abs(x), axis=-1)[..., None]
    return np.take_along_axis(x, i, axis=-1)


def quantize_q41(x, five):
    """Q4_1 / Q5_1: per 32, m = min, d = (max - min) / (15 or 31), q = round((x - m) / d)."""
    x = x.reshape(-1, 32)
    nmax = 31 if five else 15
    m = _f16_round(x.min(axis=1, keepdims=True))
    d = _f16_round((x.max(axis=1, keepdims=True) - m) / np.float32(nmax))
    q = _round_clip(_safe_div(x - m, d), 0, nmax)
    parts = [_f16b(d), _f16b(m)]
    if five:
        parts.append(np.packbits((q >> 4).astype(np.uint8), axis=1, bitorder="little"))
    parts.append(_pack_nib(q & 15))
    return np.concatenate(parts, axis=1)


def quantize_q4_0(x):
    """Q4_0: per 32, d = (value of largest magnitude) / -8, q = round(x / d) + 8 in 0..15."""
    x = x.reshape(-1, 32)
    d = _f16_round(_maxmag(x) / np.float32(-8))
    return np.concatenate([_f16b(d), _pack_nib(_round_clip(_safe_div(x, d), -8, 7) + 8)], axis=1)


def quantize_q5_0(x):
    """Q5_0: per 32, d = (value of largest magnitude) / -16, q = round(x / d) + 16 in 0..31."""
    x = x.reshape(-1, 32)
    d = _f16_round(_maxmag(x) / np.float32(-16))
    q = _round_clip(_safe_div(x, d), -16, 15) + 16
    return np.concatenate([_f16b(d), np.packbits((q >> 4).astype(np.uint8), axis=1, bitorder="little"),
                           _pack_nib(q & 15)], axis=1)


def _k_pack2(q):
    """[nb, 256] 2-bit codes -> [nb, 64]: value 128h + 32j + l in bits 2j.. of byte 32h + l."""
    q = q.reshape(-1, 2, 4, 32)
    return (q << (2 * np.arange(4))[None, None, :, None]).sum(axis=2).reshape(-1, 64).astype(np.uint8)


def quantize_q2_k(x):
    """Q2_K: per 16, offset mn = -min(0, min x), scale = (max + mn) / 3; both to 4 bits
    against f16 d = max scale / 15, dmin = max mn / 15; q in 0..3."""
    x = x.reshape(-1, 16, 16)
    mn = -np.minimum(x.min(axis=2), 0)
    scale = (x.max(axis=2) + mn) / np.float32(3)
    d = _f16_round(scale.max(axis=1, keepdims=True) / np.float32(15))
    dmin = _f16_round(mn.max(axis=1, keepdims=True) / np.float32(15))
    sc = _round_clip(_safe_div(scale, d), 0, 15)
    m = _round_clip(_safe_div(mn, dmin), 0, 15)
    ds = (d * sc.astype(np.float32))[:, :, None]
    dm = (dmin * m.astype(np.float32))[:, :, None]
    q = _round_clip(_safe_div(x + dm, ds), 0, 3).reshape(-1, 256)
    return np.concatenate([(sc | (m << 4)).astype(np.uint8), _k_pack2(q), _f16b(d), _f16b(dmin)], axis=1)


def quantize_q3_k(x):
    """Q3_K: per 16, scale = (value of largest magnitude) / -4; scales to sc - 32 in -32..31
    against f16 d = (largest-magnitude scale) / -32; q = round(x / (d*(sc-32))) in -4..3."""
    x = x.reshape(-1, 16, 16)
    scale = _maxmag(x)[:, :, 0] / np.float32(-4)
    d = _f16_round(_maxmag(scale) / np.float32(-32))
    s = _round_clip(_safe_div(scale, d), -32, 31)
    ds = (d * s.astype(np.float32))[:, :, None]
    q = (_round_clip(_safe_div(x, ds), -4, 3) + 4).reshape(-1, 256)
    sc = s + 32
    packed = np.zeros((x.shape[0], 12), dtype=np.int32)
    packed[:, 0:8] = (sc[:, 0:8] & 15) | ((sc[:, 8:16] & 15) << 4)
    for k in range(4):  # top bits of sub-block s: bits 2(s/4) of byte 8 + s%4
        packed[:, 8 + k] = sum(((sc[:, 4 * g + k] >> 4) & 3) << (2 * g) for g in range(4))
    hb = (q >> 2).reshape(-1, 2, 4, 32)                      # bit 4h + j of hmask[l]
    hmask = (hb << (4 * np.arange(2)[:, None] + np.arange(4)[None, :])[None, :, :, None]).sum(axis=(1, 2))
    return np.concatenate([hmask.astype(np.uint8), _k_pack2(q & 3), packed.astype(np.uint8), _f16b(d)], axis=1)


def _nearest(v, table):
    return np.argmin(np.abs(v[..., None] - table), axis=-1).astype(np.int32)


IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.float32)
FP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float32)


def quantize_iq4_nl(x):
    x = x.reshape(-1, 32)
    d = _f16_round(_maxmag(x) / np.float32(-127))
    return np.concatenate([_f16b(d), _pack_nib(_nearest(_safe_div(x, d), IQ4NL))], axis=1)


def quantize_iq4_xs(x):
    """IQ4_XS: per 32, scale = largest-magnitude value / -127; ls - 32 in -32..31 against
    f16 d = (largest-magnitude scale) / -32; codes the nearest kvalue."""
    x = x.reshape(-1, 8, 32)
    scale = _maxmag(x)[:, :, 0] / np.float32(-127)
    d = _f16_round(_maxmag(scale) / np.float32(-32))
    ls = _round_clip(_safe_div(scale, d), -32, 31)
    dl = (d * ls.astype(np.float32))[:, :, None]
    codes = _nearest(_safe_div(x, dl), IQ4NL)                # [nb, 8, 32]
    l = ls + 32
    sh = ((l >> 4) << (2 * np.arange(8))).sum(axis=1).astype("<u2")
    sl = (l[:, 0::2] & 15) | ((l[:, 1::2] & 15) << 4)
    qs = (codes[:, :, :16] | (codes[:, :, 16:] << 4)).reshape(-1, 128)
    return np.concatenate([_f16b(d), sh[:, None].view(np.uint8), sl.astype(np.uint8), qs.astype(np.uint8)],
                          axis=1)


def _trit_bytes(t, n):
    """[.., n] trits (most significant first) -> bytes whose n-th base-3 digit is t[n]: the
    fixed-point fraction sum t_k 3^(4-k) / 243, rounded up to 256ths."""
    v = (t * (3 ** (4 - np.arange(n)))).sum(axis=-1)
    return ((v * 256 + 242) // 243).astype(np.uint8)


def quantize_tq(x, one):
    """TQ1_0 / TQ2_0: d = max|x| per 256, trit round(x/d) + 1."""
    x = x.reshape(-1, 256)
    d = _f16_round(np.abs(x).max(axis=1, keepdims=True))
    t = _round_clip(_safe_div(x, d), -1, 1) + 1
    if not one:
        return np.concatenate([_k_pack2(t), _f16b(d)], axis=1)
    qs0 = _trit_bytes(t[:, 0:160].reshape(-1, 5, 32).transpose(0, 2, 1), 5)
    qs1 = _trit_bytes(t[:, 160:240].reshape(-1, 5, 16).transpose(0, 2, 1), 5)
    qh = _trit_bytes(t[:, 240:256].reshape(-1, 4, 4).transpose(0, 2, 1), 4)
    return np.concatenate([qs0, qs1, qh, _f16b(d)], axis=1)


def quantize_mxfp4(x):
    """MXFP4: E8M0 e = floor(log2 max|x|) - 2 + 127 (so the largest value is near 4-6
    times 2^(e-127)), codes the nearest doubled E2M1 value of x / 2^(e-128)."""
    x = x.reshape(-1, 32)
    amax = np.abs(x).max(axis=1, keepdims=True)
    e = np.clip(np.floor(np.log2(np.maximum(amax, 1e-30))) - 2 + 127, 1, 254).astype(np.int32)
    d = (2.0 ** (e - 128)).astype(np.float32)
    return np.concatenate([e.astype(np.uint8), _pack_nib(_nearest(x / d, FP4))], axis=1)


def quantize_nvfp4(x):
    """NVFP4: per 16 the UE4M3 scale code nearest max|x| / 6, codes the nearest E2M1 value."""
    x = x.reshape(-1, 4, 16)
    codes = np.arange(1, 0x7f)
    e, m = codes >> 3, codes & 7
    vals = (np.where(e == 0, m * 2.0 ** -9, (1 + m / 8.0) * 2.0 ** (e - 7)) * 0.5).astype(np.float32)
    amax = np.abs(x).max(axis=2)
    sc = codes[_nearest(amax / np.float32(12), vals)]       # half-scales: the table is doubled
    sv = vals[sc - 1][:, :, None]
    q = _nearest(_safe_div(x, sv), FP4)
    qs = (q[:, :, :8] | (q[:, :, 8:] << 4)).reshape(-1, 32)
    return np.concatenate([sc.astype(np.uint8), qs.astype(np.uint8)], axis=1)


def quantize_q1_0(x):
    x = x.reshape(-1, 128)
    d = _f16_round(np.abs(x).mean(axis=1, keepdims=True))
    return np.concatenate([_f16b(d), np.packbits((x >= 0).astype(np.uint8), axis=1, bitorder="little")], axis=1)


def quantize_q2_0(x):
    x = x.reshape(-1, 64)
    d = _f16_round(np.abs(x).max(axis=1, keepdims=True) / np.float32(2))
    q = (_round_clip(_safe_div(x, d), -1, 2) + 1).reshape(-1, 16, 4)
    return np.concatenate([_f16b(d), (q << (2 * np.arange(4))).sum(axis=2).astype(np.uint8)], axis=1)


QTYPE_ENCODERS = {
    "q4_0": quantize_q4_0, "q4_1": lambda x: quantize_q41(x, False), "q5_1": lambda x: quantize_q41(x, True), "q5_0": quantize_q5_0,
    "q2_K": quantize_q2_k, "q3_K": quantize_q3_k, "iq4_nl": quantize_iq4_nl, "iq4_xs": quantize_iq4_xs,
    "tq1_0": lambda x: quantize_tq(x, True), "tq2_0": lambda x: quantize_tq(x, False),
    "mxfp4": quantize_mxfp4, "nvfp4": quantize_nvfp4, "q1_0": quantize_q1_0, "q2_0": quantize_q2_0,
}


def encode_tensor(arr, tname):
    if tname == "f32":
        return np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if tname == "f16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    if tname == "bf16":
        return f32_to_bf16_bits(arr.reshape(-1)).astype("<u2").tobytes()
    if tname == "q8_0":
        return quantize_q8_0(arr.reshape(-1)).tobytes()
    if tname in ("q4_K", "q5_K"):
        return quantize_k_asym(arr.reshape(-1), 15 if tname == "q4_K" else 31).tobytes()
    if tname == "q6_K":
        return quantize_q6_k(arr.reshape(-1)).tobytes()
    if tname in QTYPE_ENCODERS:
        return QTYPE_ENCODERS[tname](np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)).tobytes()
    if tname.startswith("iq"):  # iq4_nl and iq4_xs are QTYPE_ENCODERS'
        return quantize_iq(arr.reshape(-1), tname).tobytes()
    raise ValueError(tname)


class Shape:
    """A matrix's shape without its values (--sparse): scaling keeps it."""

    def __init__(self, *shape):
        self.shape = shape

    def __mul__(self, _):
        return self


TYPE_BYTES = {"f32": (4, 1), "f16": (2, 1), "bf16": (2, 1), "q8_0": (34, 32)}  # bytes per block, block


class Writer:
    """Collects kvs and tensors, then writes one GGUF v3 file."""

    def __init__(self):
        self.kvs = []      # (key, type, value, elem_type)
        self.tensors = []  # (name, ne, ggml type, bytes)

    def kv(self, key, vtype, value, elem_type=None):
        self.kvs.append((key, vtype, value, elem_type))

    def tensor(self, name, arr, tname):
        # NumPy shape [.., out, in] -> ggml ne [in, out, ..].
        ne = list(reversed(arr.shape))
        if isinstance(arr, Shape):  # a hole of the tensor's size
            n = 1
            for x in ne:
                n *= x
            size, block = TYPE_BYTES[tname]
            data = n // block * size
        else:
            data = encode_tensor(arr, tname)
        self.tensors.append((name, ne, GGML[tname], data))

    @staticmethod
    def _str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value, elem_type):
        fmt = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
               F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
        if vtype in fmt:
            return struct.pack(fmt[vtype], value)
        if vtype == STR:
            return self._str(value)
        if vtype == ARR:
            out = [struct.pack("<IQ", elem_type, len(value))]
            for v in value:
                out.append(self._value(elem_type, v, None))
            return b"".join(out)
        raise ValueError(vtype)

    def write(self, path):
        head = [b"GGUF", struct.pack("<IQQ", 3, len(self.tensors), len(self.kvs))]
        for key, vtype, value, et in self.kvs:
            head.append(self._str(key) + struct.pack("<I", vtype) + self._value(vtype, value, et))
        offset = 0
        offsets = []
        for name, ne, tt, data in self.tensors:
            offsets.append(offset)
            head.append(self._str(name) + struct.pack("<I", len(ne))
                        + b"".join(struct.pack("<Q", n) for n in ne)
                        + struct.pack("<IQ", tt, offset))
            size = data if isinstance(data, int) else len(data)
            offset += (size + ALIGN - 1) // ALIGN * ALIGN
        head = b"".join(head)
        tmp = path + ".tmp%d" % os.getpid()
        with open(tmp, "wb") as fh:
            fh.write(head)
            fh.write(b"\0" * ((-len(head)) % ALIGN))
            for (name, ne, tt, data) in self.tensors:
                if isinstance(data, int):
                    fh.seek((data + ALIGN - 1) // ALIGN * ALIGN, os.SEEK_CUR)
                    continue
                fh.write(data)
                fh.write(b"\0" * ((-len(data)) % ALIGN))
            fh.truncate(fh.tell())
        os.replace(tmp, path)


def placeholder_vocab(n):
    """[PAD] [BOS] [EOS] [UNK], then byte pieces while room, then t<id> names."""
    toks = ["[PAD]", "[BOS]", "[EOS]", "[UNK]"]
    types = [3, 3, 3, 2]
    for b in range(256):
        if len(toks) >= n:
            break
        toks.append("<0x%02X>" % b)
        types.append(6)
    while len(toks) < n:
        toks.append("t%d" % len(toks))
        types.append(1)
    toks, types = toks[:n], types[:n]
    scores = [0.0 if t != 1 else -float(i) for i, t in enumerate(types)]
    return toks, scores, types


def build(a):
    rng = np.random.default_rng(a.seed)
    hd = a.head_dim or a.d_model // a.heads
    d, ff, ne, nh, nkv = a.d_model, a.ffn, a.experts, a.heads, a.kv_heads

    def mat(out_dim, in_dim, *lead):
        if a.sparse:
            return Shape(*lead, out_dim, in_dim)
        return (rng.standard_normal((*lead, out_dim, in_dim)) / np.sqrt(in_dim)).astype(np.float32)

    def norm():
        if a.sparse:
            return Shape(d)
        return (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32)

    w = Writer()
    w.kv("general.architecture", STR, "grok")
    w.kv("general.name", STR, "random-grok-py-seed%d" % a.seed)
    w.kv("general.alignment", U32, ALIGN)
    w.kv("grok.context_length", U32, a.ctx)
    w.kv("grok.embedding_length", U32, d)
    w.kv("grok.block_count", U32, a.layers)
    w.kv("grok.feed_forward_length", U32, ff)
    w.kv("grok.attention.head_count", U32, nh)
    w.kv("grok.attention.head_count_kv", U32, nkv)
    if a.head_dim:
        w.kv("grok.attention.key_length", U32, hd)
        w.kv("grok.attention.value_length", U32, hd)
    w.kv("grok.attention.layer_norm_rms_epsilon", F32, a.eps)
    w.kv("grok.rope.freq_base", F32, a.rope_base)
    w.kv("grok.expert_count", U32, ne)
    w.kv("grok.expert_used_count", U32, a.experts_used)
    for key, val in (("grok.embedding_scale", a.embedding_scale),
                     ("grok.logit_scale", a.logit_scale),
                     ("grok.attention.output_scale", a.attn_scale),
                     ("grok.attn_logit_softcapping", a.softcap)):
        if val is not None:
            w.kv(key, F32, val)
    toks, scores, types = placeholder_vocab(a.vocab)
    w.kv("tokenizer.ggml.model", STR, "llama")
    w.kv("tokenizer.ggml.tokens", ARR, toks, STR)
    w.kv("tokenizer.ggml.scores", ARR, scores, F32)
    w.kv("tokenizer.ggml.token_type", ARR, types, I32)
    w.kv("tokenizer.ggml.bos_token_id", U32, 1)
    w.kv("tokenizer.ggml.eos_token_id", U32, 2)
    w.kv("tokenizer.ggml.unknown_token_id", U32, 3)
    if a.pad_id >= 0:
        w.kv("tokenizer.ggml.padding_token_id", U32, a.pad_id)
    w.kv("tokenizer.ggml.add_bos_token", BOOL, False)
    w.kv("tokenizer.ggml.add_eos_token", BOOL, False)

    def ty(cols):
        """--type, or --fallback for rows that do not divide into its blocks (as llama.cpp does)."""
        return a.type if cols % BLOCK.get(a.type, 256) == 0 else a.fallback

    t = ty(d)
    w.tensor("token_embd.weight", mat(a.vocab, d), t)
    for i in range(a.layers):
        p = "blk.%d." % i
        w.tensor(p + "attn_norm.weight", norm(), "f32")
        w.tensor(p + "attn_q.weight", mat(nh * hd, d) * a.qk_gain, t)
        w.tensor(p + "attn_k.weight", mat(nkv * hd, d) * a.qk_gain, t)
        w.tensor(p + "attn_v.weight", mat(nkv * hd, d), t)
        w.tensor(p + "attn_output.weight", mat(d, nh * hd), ty(nh * hd))
        w.tensor(p + "attn_output_norm.weight", norm(), "f32")
        w.tensor(p + "ffn_norm.weight", norm(), "f32")
        w.tensor(p + "ffn_gate_inp.weight", mat(ne, d) * a.router_gain, "f32")
        w.tensor(p + "ffn_gate_exps.weight", mat(ff, d, ne) * a.gelu_gain, t)
        w.tensor(p + "ffn_up_exps.weight", mat(ff, d, ne), t)
        w.tensor(p + "ffn_down_exps.weight", mat(d, ff, ne) * a.expert_gain, ty(ff))
        w.tensor(p + "layer_output_norm.weight", norm(), "f32")
    w.tensor("output_norm.weight", norm(), "f32")
    if a.untied:
        w.tensor("output.weight", mat(a.vocab, d), t)
    w.write(a.output)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=0, help="key_length; 0 = d_model/heads")
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--experts-used", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=300)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--type", choices=sorted(GGML), default="f32")
    ap.add_argument("--fallback", choices=sorted(GGML), default=None,
                    help="type of the matrices whose rows do not divide into --type's blocks")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sparse", action="store_true",
                    help="header only, tensor data a file hole (f32/f16/bf16/q8_0; for --dry-run tools)")
    ap.add_argument("--untied", action="store_true", help="write a separate output.weight")
    ap.add_argument("--pad-id", type=int, default=0, help="-1: write no padding_token_id")
    ap.add_argument("--eps", type=float, default=1e-5)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--embedding-scale", type=float, default=None)
    ap.add_argument("--logit-scale", type=float, default=None)
    ap.add_argument("--attn-scale", type=float, default=None)
    ap.add_argument("--softcap", type=float, default=None)
    ap.add_argument("--qk-gain", type=float, default=1.0,
                    help="multiplies Wq and Wk (large values drive scores into the soft cap)")
    ap.add_argument("--router-gain", type=float, default=1.0)
    ap.add_argument("--gelu-gain", type=float, default=1.0,
                    help="multiplies the GELU branch (wider pre-activations)")
    ap.add_argument("--expert-gain", type=float, default=1.0,
                    help="multiplies W_down; small values make the MoE output comparable to "
                         "sqrt(eps), so the post-MoE norm no longer hides the gates' scale")
    a = ap.parse_args(argv[1:])
    hd = a.head_dim or (a.d_model // a.heads if a.heads else 0)
    errs = []
    if a.heads <= 0 or a.kv_heads <= 0 or a.heads % a.kv_heads:
        errs.append("--heads must be a positive multiple of --kv-heads")
    if hd <= 0 or hd % 2:
        errs.append("head dim must be positive and even")
    if not (1 <= a.experts_used <= a.experts):
        errs.append("--experts-used must be in [1, experts]")
    if a.vocab < 4:
        errs.append("--vocab must be >= 4")
    if a.type == "q8_0" and (a.d_model % 32 or a.ffn % 32 or (a.heads * hd) % 32):
        errs.append("q8_0 needs d_model, ffn and heads*head_dim multiples of 32")
    blk = BLOCK.get(a.type, 256)
    if a.type != "q8_0" and blk > 1 and (a.d_model % blk or a.ffn % blk or (a.heads * hd) % blk):
        if not a.fallback or a.d_model % blk:
            errs.append("%s needs d_model, ffn and heads*head_dim multiples of %d (ffn and heads*head_dim: "
                        "or --fallback)" % (a.type, blk))
        elif (a.ffn % BLOCK.get(a.fallback, 256) or (a.heads * hd) % BLOCK.get(a.fallback, 256)):
            errs.append("--fallback %s does not divide the rows either" % a.fallback)
    if a.sparse and a.type not in TYPE_BYTES:
        errs.append("--sparse writes f32, f16, bf16 or q8_0 only")
    if errs:
        for e in errs:
            sys.stderr.write("make_model.py: %s\n" % e)
        return 2
    build(a)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
