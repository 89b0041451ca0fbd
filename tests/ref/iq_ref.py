"""iq_ref.py - NumPy decoders of ggml's i-quant weight types (IQ2_XXS, IQ2_XS,
IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) for the test oracle (gguf_reader.py's
dequantize calls dequantize_iq).

Written from the GGUF block layouts with whole-array NumPy operations; they
share no code with the C decoders (src/kernels/iquants.c) and form each value
with ggml's float32 operations in ggml's order, so the results are the same
floats. The codebooks are not re-typed here: they are read from the C file
that scripts/gen_iq_tables.py generated from ggml's published tables
(src/kernels/iq_tables.c). That is not circular: the grids are format data,
like a CRC table, which both sides must take from the format's definition;
what is tested is the decoding logic (bit fields, index and sign assembly,
scales, float order), which is written twice, independently. The sign bytes
of IQ2_XXS / IQ2_XS / IQ3_XXS are rebuilt here from the format's rule (the
eighth sign makes the count of minus signs even), not read from the C table.
"""

import os
import re

import numpy as np

TYPE_IQ2_XXS, TYPE_IQ2_XS, TYPE_IQ3_XXS, TYPE_IQ1_S = 16, 17, 18, 19
TYPE_IQ3_S, TYPE_IQ2_S, TYPE_IQ1_M = 21, 22, 29
IQ_TYPES = {
    TYPE_IQ2_XXS: ("iq2_xxs", 256, 66), TYPE_IQ2_XS: ("iq2_xs", 256, 74), TYPE_IQ2_S: ("iq2_s", 256, 82),
    TYPE_IQ3_XXS: ("iq3_xxs", 256, 98), TYPE_IQ3_S: ("iq3_s", 256, 110), TYPE_IQ1_S: ("iq1_s", 256, 50),
    TYPE_IQ1_M: ("iq1_m", 256, 56),
}

_TABLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "kernels", "iq_tables.c")
_grids = None

F32 = np.float32


def grids():
    """name -> array [entries, entry length] of the grid's values (int16)."""
    global _grids
    if _grids is None:
        src = open(_TABLES).read()
        out = {}
        for m in re.finditer(r"const\s+u?int8_t\s+grok_(\w+)_grid\[(\d+)\]\[(\d+)\]\s*=\s*\{(.*?)\};", src, re.S):
            name, n, k, body = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
            vals = np.array([int(v) for v in re.findall(r"-?\d+", body)], dtype=np.int16)
            if vals.size != n * k:
                raise ValueError("%s: grid %s has %d values, expected %d" % (_TABLES, name, vals.size, n * k))
            out[name] = vals.reshape(n, k)
        _grids = out
    return _grids


def _sign_bits8(b):
    """[...] uint8 sign bytes -> [..., 8] float32 +1 / -1 (bit j set: element j negative)."""
    bits = (b[..., None].astype(np.int32) >> np.arange(8)) & 1
    return (1 - 2 * bits).astype(F32)


def _signs7(s7):
    """7 stored sign bits -> the full sign byte: the 8th bit makes the number of ones even."""
    s7 = s7.astype(np.int32)
    par = np.zeros_like(s7)
    for j in range(7):
        par ^= (s7 >> j) & 1
    return (s7 | (par << 7)).astype(np.uint8)


def _f16(b):
    return np.ascontiguousarray(b).view("<f2").astype(F32)


def _u16(b):
    return np.ascontiguousarray(b).view("<u2").astype(np.int32)


def _u32(b):
    return np.ascontiguousarray(b).view("<u4").astype(np.int64)


def dequantize_iq(raw, ttype):
    """The raw bytes of whole blocks -> float32 values in storage order."""
    name, _, bs = IQ_TYPES[ttype]
    b = np.asarray(raw, dtype=np.uint8).reshape(-1, bs)
    g = grids()
    if ttype == TYPE_IQ2_XXS:
        d = _f16(b[:, 0:2])[:, :, None]                               # [nb, 1, 1]
        q = b[:, 2:66].reshape(-1, 8, 8)                              # per ib: 4 indices, then a u32
        aux = _u32(q[:, :, 4:8]).reshape(-1, 8)                       # [nb, 8]
        db = (d[:, :, 0] * (F32(0.5) + (aux >> 28).astype(F32))) * F32(0.25)
        mag = g["iq2xxs"][q[:, :, 0:4]].astype(F32)                   # [nb, 8, 4, 8]
        sgn = _sign_bits8(_signs7((aux[:, :, None] >> (7 * np.arange(4))) & 127))
        return ((db[:, :, None, None] * mag) * sgn).reshape(-1)
    if ttype in (TYPE_IQ2_XS, TYPE_IQ2_S):
        d = _f16(b[:, 0:2])                                           # [nb, 1]
        if ttype == TYPE_IQ2_XS:
            qs = _u16(b[:, 2:66]).reshape(-1, 8, 4)
            mag = g["iq2xs"][qs & 511].astype(F32)                    # [nb, 8, 4, 8]
            sgn = _sign_bits8(_signs7(qs >> 9))
            sc = b[:, 66:74]
        else:
            lo = b[:, 2:34].reshape(-1, 8, 4).astype(np.int32)
            qh = b[:, 66:74].astype(np.int32)
            hi = (qh[:, :, None] >> (2 * np.arange(4))) & 3
            mag = g["iq2s"][lo | (hi << 8)].astype(F32)
            sgn = _sign_bits8(b[:, 34:66].reshape(-1, 8, 4))
            sc = b[:, 74:82]
        s = np.stack([sc & 15, sc >> 4], axis=2).astype(F32)          # [nb, 8, 2]: groups 0-1, 2-3
        db = (d[:, :, None] * (F32(0.5) + s)) * F32(0.25)
        db = np.repeat(db, 2, axis=2)                                 # [nb, 8, 4]
        return ((db[:, :, :, None] * mag) * sgn).reshape(-1)
    if ttype == TYPE_IQ3_XXS:
        d = _f16(b[:, 0:2])
        qs = b[:, 2:66].reshape(-1, 8, 8)                             # 8 indices of 4 per ib
        aux = _u32(b[:, 66:98]).reshape(-1, 8)
        db = (d * (F32(0.5) + (aux >> 28).astype(F32))) * F32(0.5)    # [nb, 8]
        mag = g["iq3xxs"][qs].astype(F32).reshape(-1, 8, 4, 8)        # groups of 8 = two indices
        sgn = _sign_bits8(_signs7((aux[:, :, None] >> (7 * np.arange(4))) & 127))
        return ((db[:, :, None, None] * mag) * sgn).reshape(-1)
    if ttype == TYPE_IQ3_S:
        d = _f16(b[:, 0:2])
        lo = b[:, 2:66].reshape(-1, 8, 8).astype(np.int32)
        qh = b[:, 66:74].astype(np.int32)
        hi = (qh[:, :, None] >> np.arange(8)) & 1
        mag = g["iq3s"][lo | (hi << 8)].astype(F32).reshape(-1, 8, 4, 8)
        sgn = _sign_bits8(b[:, 74:106].reshape(-1, 8, 4))
        sc = b[:, 106:110]
        s = np.stack([sc & 15, sc >> 4], axis=2).reshape(-1, 8).astype(np.int32)   # ib order
        db = d * (1 + 2 * s).astype(F32)
        return ((db[:, :, None, None] * mag) * sgn).reshape(-1)
    if ttype == TYPE_IQ1_S:
        d = _f16(b[:, 0:2])
        lo = b[:, 2:34].reshape(-1, 8, 4).astype(np.int32)
        qh = _u16(b[:, 34:50])                                        # [nb, 8]
        hi = (qh[:, :, None] >> (3 * np.arange(4))) & 7
        grid = g["iq1s"][lo | (hi << 8)].astype(F32)                  # [nb, 8, 4, 8]
        dl = d * (2 * ((qh >> 12) & 7) + 1).astype(F32)
        delta = np.where(qh & 0x8000, F32(-0.125), F32(0.125)).astype(F32)
        return (dl[:, :, None, None] * (grid + delta[:, :, None, None])).reshape(-1)
    if ttype == TYPE_IQ1_M:
        lo = b[:, 0:32].reshape(-1, 8, 4).astype(np.int32)
        qh = b[:, 32:48].reshape(-1, 8, 2).astype(np.int32)
        sc = _u16(b[:, 48:56])                                        # [nb, 4]
        dbits = ((sc[:, 0] >> 12) | ((sc[:, 1] >> 8) & 0xF0) | ((sc[:, 2] >> 4) & 0xF00) | (sc[:, 3] & 0xF000))
        d = dbits.astype(np.uint16).view("<f2").astype(F32)[:, None]  # [nb, 1]
        nib = np.stack([qh & 15, qh >> 4], axis=3).reshape(-1, 8, 4)  # per group: 3 index bits, offset sign
        grid = g["iq1s"][lo | ((nib & 7) << 8)].astype(F32)
        delta = np.where(nib & 8, F32(-0.125), F32(0.125)).astype(F32)
        s16 = sc[:, np.arange(8) // 2] >> (6 * (np.arange(8) % 2))    # [nb, 8]
        s = np.stack([s16 & 7, (s16 >> 3) & 7], axis=2)               # [nb, 8, 2]: groups 0-1, 2-3
        dl = np.repeat(d[:, :, None] * (2 * s + 1).astype(F32), 2, axis=2)
        return (dl[:, :, :, None] * (grid + delta[:, :, :, None])).reshape(-1)
    raise ValueError("not an i-quant type: %d" % ttype)
