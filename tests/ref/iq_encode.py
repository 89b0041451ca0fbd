"""iq_encode.py - a plain NumPy encoder of the i-quant types (IQ2_XXS, IQ2_XS,
IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) for make_model.py, so that the logits
tests meet i-quant bytes written by something other than llama-quantize.

Deliberately simple (llama.cpp's quantizers search far harder and use an
importance matrix): per super-block d = the largest block scale / the
largest odd multiplier; per 32 (or 16) weights the odd scale nearest to
max|x| / the grid's top level; per group of 8 (IQ3: 4) weights the grid
point nearest to |x| (IQ1: to x, with the better of the two offsets), the
signs from x, and where the format stores only 7 signs (IQ2_XXS, IQ2_XS,
IQ3_XXS) the smallest weight of an odd group takes the sign parity asks
for. The bytes follow the layouts in src/kernels/iquants.h; iq_ref.py
decodes them independently.
"""

import numpy as np

from iq_ref import grids

F32 = np.float32
# type -> (grid name, grid point length, odd-scale multiplier max, 1/F, top grid level, scale per 16)
SPEC = {
    "iq2_xxs": ("iq2xxs", 8, 31, 0.125, 43, False),
    "iq2_xs": ("iq2xs", 8, 31, 0.125, 43, True),
    "iq2_s": ("iq2s", 8, 31, 0.125, 43, True),
    "iq3_xxs": ("iq3xxs", 4, 31, 0.25, 62, False),
    "iq3_s": ("iq3s", 4, 31, 1.0, 15, False),
    "iq1_s": ("iq1s", 8, 15, 1.0, 1.125, False),
    "iq1_m": ("iq1s", 8, 15, 1.0, 1.125, True),
}


def _nearest(t, g):
    """t [m, k] targets, g [n, k] points -> index [m] of the nearest point (L2)."""
    g = g.astype(F32)
    out = np.empty(t.shape[0], dtype=np.int64)
    for s in range(0, t.shape[0], 4096):
        c = t[s:s + 4096]
        d = (g * g).sum(axis=1)[None, :] - 2 * c @ g.T
        out[s:s + 4096] = np.argmin(d, axis=1)
    return out


def _pack_bits(bits):
    """[..., 8] of 0/1 -> [...] bytes (bit j = element j)."""
    return (bits.astype(np.int64) << np.arange(8)).sum(axis=-1)


def quantize_iq(x, tname):
    gname, glen, lsmax, fac, top, per16 = SPEC[tname]
    grid = grids()[gname]
    x = np.ascontiguousarray(x, dtype=F32).reshape(-1, 16, 16)          # [nb, half, 16]
    nb = x.shape[0]
    unit = 16 if per16 else 32
    xb = x.reshape(nb, 256 // unit, unit)
    a = np.abs(xb).max(axis=2) / F32(top)                                # wanted step per unit
    d = (a.max(axis=1) / F32(lsmax * fac)).astype("<f2").astype(F32)   # [nb]
    dd = np.where(d > 0, d, F32(1))[:, None]
    s = np.clip(np.rint((a / (dd * F32(fac)) - 1) / 2), 0, (lsmax - 1) // 2).astype(np.int64)  # ls = 2s + 1
    step = (dd * F32(fac)) * (2 * s + 1).astype(F32)                    # [nb, units]
    step16 = np.repeat(step, unit // 16, axis=1)                        # [nb, 16]
    t = x / step16[:, :, None]                                          # in grid units
    groups = t.reshape(nb, 32, 8)
    iq1 = tname.startswith("iq1")
    if iq1:
        # value = grid + off, off = +-1/8 (per 32 weights for IQ1_S, per group for IQ1_M)
        best = {}
        for sgn in (0, 1):
            off = F32(-0.125 if sgn else 0.125)
            idx = _nearest((groups - off).reshape(-1, 8), grid).reshape(nb, 32)
            err = ((grid[idx].astype(F32) + off - groups) ** 2).sum(axis=2)  # [nb, 32]
            best[sgn] = (idx, err)
        if tname == "iq1_s":
            e0 = best[0][1].reshape(nb, 8, 4).sum(axis=2)
            e1 = best[1][1].reshape(nb, 8, 4).sum(axis=2)
            offb = np.repeat((e1 < e0).astype(np.int64), 4, axis=1)     # [nb, 32]
        else:
            offb = (best[1][1] < best[0][1]).astype(np.int64)
        idx = np.where(offb == 1, best[1][0], best[0][0])
        neg = None
    else:
        mags = np.abs(groups)
        neg = (groups < 0).astype(np.int64)                             # [nb, 32, 8]
        if tname in ("iq2_xxs", "iq2_xs", "iq3_xxs"):                  # 7 stored signs: even count
            odd = neg.sum(axis=2) % 2 == 1
            j = np.argmin(mags, axis=2)
            flip = np.zeros_like(neg)
            np.put_along_axis(flip, j[:, :, None], 1, axis=2)
            neg = np.where(odd[:, :, None], neg ^ flip, neg)
        idx = _nearest(mags.reshape(-1, glen), grid).reshape(nb, 256 // glen)
    sbytes = None if neg is None else _pack_bits(neg)                   # [nb, 32]
    d16 = d.astype("<f2").view(np.uint16).astype(np.int64)
    out = []
    if tname == "iq2_xxs":
        q = idx.reshape(nb, 8, 4)
        aux = (sbytes.reshape(nb, 8, 4) & 127) << (7 * np.arange(4))
        aux = aux.sum(axis=2) | (s << 28)
        blk = np.zeros((nb, 66), dtype=np.uint8)
        blk[:, 0:2] = d16.astype("<u2").view(np.uint8).reshape(nb, 2)
        words = np.zeros((nb, 8, 8), dtype=np.uint8)
        words[:, :, 0:4] = q
        words[:, :, 4:8] = aux.astype("<u4").view(np.uint8).reshape(nb, 8, 4)
        blk[:, 2:] = words.reshape(nb, 64)
        return blk.reshape(-1)
    if tname == "iq2_xs":
        code = idx | ((sbytes & 127) << 9)
        blk = np.zeros((nb, 74), dtype=np.uint8)
        blk[:, 0:2] = d16.astype("<u2").view(np.uint8).reshape(nb, 2)
        blk[:, 2:66] = code.astype("<u2").view(np.uint8).reshape(nb, 64)
        sc = s.reshape(nb, 8, 2)
        blk[:, 66:74] = sc[:, :, 0] | (sc[:, :, 1] << 4)
        return blk.reshape(-1)
    if tname == "iq2_s":
        blk = np.zeros((nb, 82), dtype=np.uint8)
        blk[:, 0:2] = d16.astype("<u2").view(np.uint8).reshape(nb, 2)
        blk[:, 2:34] = idx & 255
        blk[:, 34:66] = sbytes
        blk[:, 66:74] = ((idx.reshape(nb, 8, 4) >> 8) << (2 * np.arange(4))).sum(axis=2)
        sc = s.reshape(nb, 8, 2)
        blk[:, 74:82] = sc[:, :, 0] | (sc[:, :, 1] << 4)
        return blk.reshape(-1)
    if tname == "iq3_xxs":
        blk = np.zeros((nb, 98), dtype=np.uint8)
        blk[:, 0:2] = d16.astype("<u2").view(np.uint8).reshape(nb, 2)
        blk[:, 2:66] = idx
        aux = ((sbytes.reshape(nb, 8, 4) & 127) << (7 * np.arange(4))).sum(axis=2) | (s << 28)
        blk[:, 66:98] = aux.astype("<u4").view(np.uint8).reshape(nb, 32)
        return blk.reshape(-1)
    if tname == "iq3_s":
        blk = np.zeros((nb, 110), dtype=np.uint8)
        blk[:, 0:2] = d16.astype("<u2").view(np.uint8).reshape(nb, 2)
        blk[:, 2:66] = idx & 255
        blk[:, 66:74] = ((idx.reshape(nb, 8, 8) >> 8) << np.arange(8)).sum(axis=2)
        blk[:, 74:106] = sbytes
        sc = s.reshape(nb, 4, 2)
        blk[:, 106:110] = sc[:, :, 0] | (sc[:, :, 1] << 4)
        return blk.reshape(-1)
    if tname == "iq1_s":
        blk = np.zeros((nb, 50), dtype=np.uint8)
        blk[:, 0:2] = d16.astype("<u2").view(np.uint8).reshape(nb, 2)
        blk[:, 2:34] = idx & 255
        hi = ((idx.reshape(nb, 8, 4) >> 8) << (3 * np.arange(4))).sum(axis=2)
        qh = hi | (s << 12) | (offb.reshape(nb, 8, 4)[:, :, 0] << 15)
        blk[:, 34:50] = qh.astype("<u2").view(np.uint8).reshape(nb, 16)
        return blk.reshape(-1)
    # iq1_m
    blk = np.zeros((nb, 56), dtype=np.uint8)
    blk[:, 0:32] = idx & 255
    nib = (idx >> 8) | (offb << 3)                                      # [nb, 32]
    blk[:, 32:48] = (nib.reshape(nb, 16, 2) << np.array([0, 4])).sum(axis=2)
    sc = s.reshape(nb, 4, 4)                                            # u16 k: ib 2k (halves), ib 2k+1
    words = (sc << (3 * np.arange(4))).sum(axis=2) | (((d16[:, None] >> (4 * np.arange(4))) & 15) << 12)
    blk[:, 48:56] = words.astype("<u2").view(np.uint8).reshape(nb, 8)
    return blk.reshape(-1)
