"""gguf_reader.py - a small GGUF (v2/v3) reader in pure Python + NumPy.

It exists so the test oracle (grok_ref.py) reads model files without
sharing a line with the C loader it checks: a bug in the C parser cannot
hide behind the same bug here. It reads every metadata value type
(arrays of strings included), the tensor infos, honours general.alignment,
follows llama.cpp's split layout (NAME-00001-of-0000N.gguf), and turns
F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, Q2_K,
Q3_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, MXFP4, NVFP4, Q1_0 and Q2_0 tensors (and,
through iq_ref.py, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M)
into float32 arrays
whose NumPy shape is ggml's ne reversed (ne[0] varies fastest, so it is the
last NumPy axis). The k-quant decoders are written from the GGUF block
layouts with whole-array NumPy operations, sharing nothing with the C
decoders, and form each value in ggml's order of float operations so that
the results are the same floats.

Run as a script it prints a file's metadata and tensor list.
"""

import re
import struct
import sys

import numpy as np

from iq_ref import IQ_TYPES, dequantize_iq

GGUF_MAGIC = b"GGUF"

# Metadata value types (gguf_type in the format description).
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 8, 9, 10, 11, 12

_SCALAR = {
    T_UINT8: "<u1", T_INT8: "<i1", T_UINT16: "<u2", T_INT16: "<i2",
    T_UINT32: "<u4", T_INT32: "<i4", T_FLOAT32: "<f4", T_BOOL: "<u1",
    T_UINT64: "<u8", T_INT64: "<i8", T_FLOAT64: "<f8",
}

# ggml tensor types: number -> (name, elements per block, bytes per block).
# Only the sizes matter for types we cannot dequantize; they let the reader
# check that every tensor lies inside its file.
GGML_TYPES = {
    0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20),
    6: ("q5_0", 32, 22), 7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 9: ("q8_1", 32, 36),
    10: ("q2_K", 256, 84), 11: ("q3_K", 256, 110), 12: ("q4_K", 256, 144),
    13: ("q5_K", 256, 176), 14: ("q6_K", 256, 210), 15: ("q8_K", 256, 292),
    24: ("i8", 1, 1), 25: ("i16", 1, 2), 26: ("i32", 1, 4), 27: ("i64", 1, 8),
    28: ("f64", 1, 8), 30: ("bf16", 1, 2),
    20: ("iq4_nl", 32, 18), 23: ("iq4_xs", 256, 136), 34: ("tq1_0", 256, 54), 35: ("tq2_0", 256, 66),
    39: ("mxfp4", 32, 17), 40: ("nvfp4", 64, 36), 41: ("q1_0", 128, 18), 42: ("q2_0", 64, 18),
}
GGML_TYPES.update(IQ_TYPES)  # the i-quants, decoded by iq_ref.py
TYPE_F32, TYPE_F16, TYPE_Q4_0, TYPE_Q8_0, TYPE_BF16 = 0, 1, 2, 8, 30
TYPE_Q4_K, TYPE_Q5_K, TYPE_Q6_K = 12, 13, 14

SPLIT_RE = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$")


class GGUFError(Exception):
    pass


class TensorInfo:
    """One tensor: name, ggml ne (fastest first), type, and where its bytes are."""

    def __init__(self, name, ne, ttype, offset, path, data_start):
        self.name = name
        self.ne = ne
        self.type = ttype
        self.offset = offset          # relative to its file's data section
        self.path = path
        self.data_start = data_start  # absolute offset of that data section
        self.n_elements = int(np.prod(ne, dtype=np.int64)) if ne else 1

    @property
    def type_name(self):
        return GGML_TYPES.get(self.type, ("type%d" % self.type, 0, 0))[0]

    def n_bytes(self):
        if self.type not in GGML_TYPES:
            return None
        _, bs, ts = GGML_TYPES[self.type]
        if self.ne[0] % bs:
            raise GGUFError("%s: tensor %s: ne[0]=%d is not a multiple of the %s block (%d)"
                            % (self.path, self.name, self.ne[0], self.type_name, bs))
        return self.n_elements // bs * ts


class _Cursor:
    """Bounds-checked little-endian reads over a bytes-like buffer."""

    def __init__(self, buf, path):
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError("%s: %s at byte %d: file ends (needs %d bytes, has %d)"
                            % (self.path, what, self.pos, n, len(self.buf) - self.pos))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self, what):
        return struct.unpack("<I", self.take(4, what))[0]

    def u64(self, what):
        return struct.unpack("<Q", self.take(8, what))[0]

    def string(self, what):
        n = self.u64(what + " length")
        raw = self.take(n, what)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError("%s: %s at byte %d: not UTF-8" % (self.path, what, self.pos - n))

    def value(self, vtype, what):
        if vtype in _SCALAR:
            dt = np.dtype(_SCALAR[vtype])
            v = np.frombuffer(self.take(dt.itemsize, what), dtype=dt)[0]
            return bool(v) if vtype == T_BOOL else v.item()
        if vtype == T_STRING:
            return self.string(what)
        if vtype == T_ARRAY:
            etype = self.u32(what + " element type")
            n = self.u64(what + " element count")
            if etype in _SCALAR:
                dt = np.dtype(_SCALAR[etype])
                arr = np.frombuffer(self.take(n * dt.itemsize, what), dtype=dt).copy()
                return arr.astype(bool) if etype == T_BOOL else arr
            if etype == T_STRING:
                return [self.string(what + "[%d]" % i) for i in range(n)]
            if etype == T_ARRAY:
                return [self.value(T_ARRAY, what + "[%d]" % i) for i in range(n)]
            raise GGUFError("%s: %s: unknown array element type %d at byte %d"
                            % (self.path, what, etype, self.pos))
        raise GGUFError("%s: %s: unknown value type %d at byte %d"
                        % (self.path, what, vtype, self.pos))


def _read_one(path):
    with open(path, "rb") as fh:
        buf = fh.read()
    c = _Cursor(buf, path)
    if bytes(c.take(4, "magic")) != GGUF_MAGIC:
        raise GGUFError("%s: magic at byte 0: not a GGUF file" % path)
    version = c.u32("version")
    if version not in (2, 3):
        raise GGUFError("%s: version at byte 4: %d not supported (2 or 3)" % (path, version))
    n_tensors = c.u64("tensor count")
    n_kv = c.u64("kv count")
    kvs = {}
    kv_types = {}
    for i in range(n_kv):
        key = c.string("kv %d key" % i)
        vtype = c.u32("kv %s type" % key)
        kvs[key] = c.value(vtype, "kv " + key)
        kv_types[key] = vtype
    align = kvs.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise GGUFError("%s: general.alignment %r is not a power of two" % (path, align))
    infos = []
    for i in range(n_tensors):
        name = c.string("tensor %d name" % i)
        n_dims = c.u32("tensor %s n_dims" % name)
        if n_dims > 4:
            raise GGUFError("%s: tensor %s: n_dims %d > 4 at byte %d" % (path, name, n_dims, c.pos))
        ne = [c.u64("tensor %s ne" % name) for _ in range(n_dims)]
        ttype = c.u32("tensor %s type" % name)
        off = c.u64("tensor %s offset" % name)
        if off % align:
            raise GGUFError("%s: tensor %s: offset %d not aligned to %d" % (path, name, off, align))
        infos.append((name, ne, ttype, off))
    data_start = (c.pos + align - 1) // align * align
    out = []
    for name, ne, ttype, off in infos:
        t = TensorInfo(name, ne, ttype, off, path, data_start)
        nb = t.n_bytes()
        if nb is not None and data_start + off + nb > len(buf):
            raise GGUFError("%s: tensor %s: data [%d, %d) lies past the end of the file (%d)"
                            % (path, name, data_start + off, data_start + off + nb, len(buf)))
        out.append(t)
    return version, kvs, kv_types, out


class GGUFFile:
    """All metadata and tensors of a model, one file or a set of splits."""

    def __init__(self, path):
        m = SPLIT_RE.match(path)
        paths = [path]
        if m:
            count = int(m.group(3))
            paths = ["%s-%05d-of-%05d.gguf" % (m.group(1), i + 1, count) for i in range(count)]
        self.paths = paths
        self.kvs = {}
        self.kv_types = {}
        self.tensors = {}
        self.tensor_order = []
        self.version = None
        for i, p in enumerate(paths):
            version, kvs, kv_types, infos = _read_one(p)
            if i == 0:
                self.version = version
                self.kvs, self.kv_types = kvs, kv_types
            for t in infos:
                if t.name in self.tensors:
                    raise GGUFError("%s: tensor %s appears twice" % (p, t.name))
                self.tensors[t.name] = t
                self.tensor_order.append(t.name)
        if m:
            want = self.kvs.get("split.tensors.count")
            if want is not None and want != len(self.tensors):
                raise GGUFError("%s: split.tensors.count %d but %d tensors found"
                                % (paths[0], want, len(self.tensors)))
        self._maps = {}

    def get(self, key, default=None):
        return self.kvs.get(key, default)

    def raw(self, name):
        """The tensor's bytes as a uint8 array (memory-mapped)."""
        t = self.tensors[name]
        if t.path not in self._maps:
            self._maps[t.path] = np.memmap(t.path, dtype=np.uint8, mode="r")
        nb = t.n_bytes()
        if nb is None:
            raise GGUFError("%s: tensor %s: unknown type %d" % (t.path, name, t.type))
        start = t.data_start + t.offset
        return self._maps[t.path][start:start + nb]

    def tensor(self, name):
        """Dequantized float32 array, NumPy shape = ne reversed."""
        t = self.tensors[name]
        raw = self.raw(name)
        shape = tuple(int(x) for x in reversed(t.ne))
        return dequantize(raw, t.type, t.n_elements, "%s: tensor %s" % (t.path, name)).reshape(shape)


def dequantize(raw, ttype, n, what="tensor"):
    raw = np.asarray(raw, dtype=np.uint8)
    if ttype == TYPE_F32:
        return raw.view("<f4").astype(np.float32)
    if ttype == TYPE_F16:
        return raw.view("<f2").astype(np.float32)
    if ttype == TYPE_BF16:
        # bf16 is the top half of an f32: shift its bits back into place.
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    if ttype == TYPE_Q8_0:
        blocks = raw.reshape(-1, 34)
        d = blocks[:, 0:2].copy().view("<f2").astype(np.float32)    # [nb, 1]
        q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)   # [nb, 32]
        return (d * q).reshape(-1)[:n]
    if ttype == TYPE_Q4_0:
        # 2-byte f16 scale, then 16 bytes: element j in the low nibble of
        # byte j, element j+16 in its high nibble; value = d * (nibble - 8).
        blocks = raw.reshape(-1, 18)
        d = blocks[:, 0:2].copy().view("<f2").astype(np.float32)
        qs = blocks[:, 2:]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
        return (d * q).reshape(-1)[:n]
    if ttype in (TYPE_Q4_K, TYPE_Q5_K):
        return _dequant_q45_k(raw, ttype == TYPE_Q5_K).reshape(-1)[:n]
    if ttype == TYPE_Q6_K:
        return _dequant_q6_k(raw).reshape(-1)[:n]
    if ttype in _QTYPES:
        return _QTYPES[ttype](raw).reshape(-1)[:n]
    if ttype in IQ_TYPES:
        return dequantize_iq(raw, ttype)[:n]
    raise GGUFError("%s: type %s cannot be dequantized by this reader"
                    % (what, GGML_TYPES.get(ttype, ("type%d" % ttype,))[0]))


def _f16(b):
    """[nb, 2] bytes -> [nb, 1] float32."""
    return np.ascontiguousarray(b).view("<f2").astype(np.float32)


def _scales_mins_k4(sc12):
    """Q4_K / Q5_K: [nb, 12] packed bytes -> 6-bit scales and mins, [nb, 8] each.
    Sub-blocks 0-3: low 6 bits of bytes 0-3 (scale) and 4-7 (min); 4-7: low
    and high nibbles of bytes 8-11, with bits 4-5 from the top two bits of
    bytes 0-3 (scale) and 4-7 (min)."""
    a, b, c = sc12[:, 0:4], sc12[:, 4:8], sc12[:, 8:12]
    scale = np.concatenate([a & 63, (c & 15) | ((a >> 6) << 4)], axis=1)
    mn = np.concatenate([b & 63, (c >> 4) | ((b >> 6) << 4)], axis=1)
    return scale.astype(np.float32), mn.astype(np.float32)


def _dequant_q45_k(raw, five):
    # d f16, dmin f16, scales[12], (Q5_K: qh[32],) qs[128]; value = (d*sc)*q - dmin*m
    blocks = raw.reshape(-1, 176 if five else 144)
    d, dmin = _f16(blocks[:, 0:2]), _f16(blocks[:, 2:4])
    scale, mn = _scales_mins_k4(blocks[:, 4:16])
    qs = blocks[:, 48:176] if five else blocks[:, 16:144]
    # 4 chunks of 64 values: 32 low nibbles, then 32 high nibbles
    qs = qs.reshape(-1, 4, 1, 32)
    q = np.concatenate([qs & 15, qs >> 4], axis=2).reshape(-1, 8, 32).astype(np.int32)
    if five:  # value l of sub-block s has its 5th bit in bit s of qh[l]
        qh = blocks[:, 16:48].astype(np.int32)
        q = q + (((qh[:, None, :] >> np.arange(8)[None, :, None]) & 1) << 4)
    ds = (d * scale)[:, :, None]          # float32 products, as ggml forms them
    dm = (dmin * mn)[:, :, None]
    return ds * q.astype(np.float32) - dm


def _dequant_q6_k(raw):
    # ql[128], qh[64], scales int8[16], d f16; value = (d*sc)*(q-32) over 16-value sub-blocks.
    blocks = raw.reshape(-1, 210)
    ql = blocks[:, 0:128].reshape(-1, 2, 2, 32)     # [nb, half, ql[0:32] / ql[32:64], l]
    qh = blocks[:, 128:192].reshape(-1, 2, 1, 32)   # [nb, half, 1, l]
    sc = blocks[:, 192:208].copy().view(np.int8).astype(np.float32)
    d = _f16(blocks[:, 208:210])
    # values 32g + l of a half, g = 0..3: nibble g>>1 of ql[32(g&1) + l], bits 2g..2g+1 of qh[l]
    low = np.concatenate([ql & 15, ql >> 4], axis=2).astype(np.int32)   # g order: 0, 1, 2, 3
    high = (qh.astype(np.int32) >> (2 * np.arange(4))[None, None, :, None]) & 3
    q = (low | (high << 4)).reshape(-1, 16, 16) - 32
    return (d * sc)[:, :, None] * q.astype(np.float32)


# ---- Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, MXFP4,
# NVFP4, Q1_0, Q2_0: layouts of ggml-common.h, each value formed as ggml
# forms it (a float32 multiplier times the integer code, then any offset).

# The non-linear 4-bit codes of IQ4_NL / IQ4_XS, and the E2M1 values
# doubled (MXFP4, NVFP4); both tables from ggml-common.h.
KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                         dtype=np.float32)
KVALUES_FP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float32)


def _nib(qs):
    """[nb, 16] bytes -> [nb, 32] codes: low nibbles (elements 0-15), then high."""
    return np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int32)


def _bits_le(b, nbits):
    """[nb, k] bytes -> [nb, nbits] bits, bit j of the little-endian number."""
    return np.unpackbits(np.ascontiguousarray(b), axis=1, bitorder="little")[:, :nbits].astype(np.int32)


def _dequant_q4_1(raw):
    b = raw.reshape(-1, 20)
    return _f16(b[:, 0:2]) * _nib(b[:, 4:20]).astype(np.float32) + _f16(b[:, 2:4])


def _dequant_q5(raw, one):
    # d, (m,) qh[4] (bit j: 5th bit of element j), qs[16]
    b = raw.reshape(-1, 24 if one else 22)
    o = 4 if one else 2
    q = _nib(b[:, o + 4:o + 20]) | (_bits_le(b[:, o:o + 4], 32) << 4)
    if one:
        return _f16(b[:, 0:2]) * q.astype(np.float32) + _f16(b[:, 2:4])
    return _f16(b[:, 0:2]) * (q - 16).astype(np.float32)


def _k_low2(qs):
    """[nb, 64] bytes -> [nb, 256] 2-bit fields: value 128h + 32j + l is bits 2j.. of qs[32h + l]."""
    q = qs.reshape(-1, 2, 1, 32).astype(np.int32) >> (2 * np.arange(4))[None, None, :, None]
    return (q & 3).reshape(-1, 256)


def _dequant_q2_k(raw):
    # scales[16] (low nibble scale, high min), qs[64], d, dmin; (d*sc)*q - dmin*m per 16 values
    b = raw.reshape(-1, 84)
    sc = b[:, 0:16]
    dl = _f16(b[:, 80:82]) * (sc & 15).astype(np.float32)
    ml = _f16(b[:, 82:84]) * (sc >> 4).astype(np.float32)
    q = _k_low2(b[:, 16:80]).reshape(-1, 16, 16).astype(np.float32)
    return dl[:, :, None] * q - ml[:, :, None]


def _dequant_q3_k(raw):
    # hmask[32], qs[64], scales[12], d; (d*(sc-32))*(low - 4 where the hmask bit is clear)
    b = raw.reshape(-1, 110)
    low = _k_low2(b[:, 32:96]).reshape(-1, 2, 4, 32)
    shift = (4 * np.arange(2))[:, None] + np.arange(4)[None, :]              # bit 4h + j of hmask[l]
    hb = (b[:, None, None, 0:32].astype(np.int32) >> shift[None, :, :, None]) & 1
    q = (low - 4 * (1 - hb)).reshape(-1, 16, 16)
    s = b[:, 96:108].astype(np.int32)
    lo = np.concatenate([s[:, 0:8] & 15, s[:, 0:8] >> 4], axis=1)           # sub-blocks 0-7, 8-15
    top = (s[:, 8 + np.arange(16) % 4] >> (2 * (np.arange(16) // 4))) & 3
    dl = _f16(b[:, 108:110]) * ((lo | (top << 4)) - 32).astype(np.float32)
    return dl[:, :, None] * q.astype(np.float32)


def _dequant_iq4_nl(raw):
    b = raw.reshape(-1, 18)
    return _f16(b[:, 0:2]) * KVALUES_IQ4NL[_nib(b[:, 2:18])]


def _dequant_iq4_xs(raw):
    # d, scales_h (u16), scales_l[4], qs[128]; sub-block s: (d*(ls-32)) * kvalue
    b = raw.reshape(-1, 136)
    sh = b[:, 2:4].copy().view("<u2").astype(np.int32)                       # [nb, 1]
    s = np.arange(8)
    ls = ((b[:, 4 + s // 2].astype(np.int32) >> (4 * (s % 2))) & 15) | (((sh >> (2 * s)) & 3) << 4)
    dl = _f16(b[:, 0:2]) * (ls - 32).astype(np.float32)
    qs = b[:, 8:136].reshape(-1, 8, 16)
    codes = np.concatenate([qs & 15, qs >> 4], axis=2)
    return dl[:, :, None] * KVALUES_IQ4NL[codes]


def _trits(byts, n):
    """The n-th base-3 digits of bytes (TQ1_0): ((b * 3^n) mod 256 * 3) >> 8, as [.., n]."""
    q = (byts[..., None].astype(np.int32) * (3 ** np.arange(n))) & 255
    return (q * 3) >> 8


def _dequant_tq1_0(raw):
    # qs[48] (5 trits a byte), qh[4] (4 trits a byte), d; (t - 1) * d
    b = raw.reshape(-1, 54)
    t0 = _trits(b[:, 0:32], 5).transpose(0, 2, 1).reshape(-1, 160)           # value 32n + m
    t1 = _trits(b[:, 32:48], 5).transpose(0, 2, 1).reshape(-1, 80)           # 160 + 16n + m
    t2 = _trits(b[:, 48:52], 4).transpose(0, 2, 1).reshape(-1, 16)           # 240 + 4n + j
    t = np.concatenate([t0, t1, t2], axis=1)
    return (t - 1).astype(np.float32) * _f16(b[:, 52:54])


def _dequant_tq2_0(raw):
    b = raw.reshape(-1, 66)
    return (_k_low2(b[:, 0:64]) - 1).astype(np.float32) * _f16(b[:, 64:66])


def _e8m0_half(e):
    e = e.astype(np.uint32)
    bits = np.where(e < 2, np.uint32(0x00200000) << e, (e - 1) << 23).astype(np.uint32)
    return bits.view(np.float32)


def _dequant_mxfp4(raw):
    b = raw.reshape(-1, 17)
    with np.errstate(over="ignore"):  # the largest scales overflow to inf, as in ggml
        return KVALUES_FP4[_nib(b[:, 1:17])] * _e8m0_half(b[:, 0:1])


def _ue4m3_half(x):
    """Unsigned E4M3 (bits 3-6 exponent, bias 7; 0-2 mantissa), halved; 0 and 0x7f give 0."""
    x = x.astype(np.int64)
    e, m = (x >> 3) & 15, x & 7
    v = np.where(e == 0, m * 2.0 ** -9, (1 + m / 8.0) * 2.0 ** (e - 7)) * 0.5
    return np.where((x == 0) | (x == 0x7f), 0.0, v).astype(np.float32)


def _dequant_nvfp4(raw):
    # d[4] UE4M3 per 16 values, qs[32]: sub-block s, value j < 8 low nibble of qs[8s+j], j+8 high
    b = raw.reshape(-1, 36)
    qs = b[:, 4:36].reshape(-1, 4, 8)
    codes = np.concatenate([qs & 15, qs >> 4], axis=2)
    return KVALUES_FP4[codes] * _ue4m3_half(b[:, 0:4])[:, :, None]


def _dequant_q1_0(raw):
    b = raw.reshape(-1, 18)
    d = _f16(b[:, 0:2])
    return np.where(_bits_le(b[:, 2:18], 128) == 1, d, -d)


def _dequant_q2_0(raw):
    b = raw.reshape(-1, 18)
    q = (b[:, 2:18, None].astype(np.int32) >> (2 * np.arange(4))) & 3       # value 4i + k
    return (q.reshape(-1, 64) - 1).astype(np.float32) * _f16(b[:, 0:2])


_QTYPES = {
    3: _dequant_q4_1, 6: lambda r: _dequant_q5(r, False), 7: lambda r: _dequant_q5(r, True),
    10: _dequant_q2_k, 11: _dequant_q3_k, 20: _dequant_iq4_nl, 23: _dequant_iq4_xs,
    34: _dequant_tq1_0, 35: _dequant_tq2_0, 39: _dequant_mxfp4, 40: _dequant_nvfp4,
    41: _dequant_q1_0, 42: _dequant_q2_0,
}


def _short(v):
    if isinstance(v, np.ndarray):
        return "array[%d] %s %s" % (len(v), v.dtype, np.array2string(v[:6], separator=","))
    if isinstance(v, list):
        return "array[%d] %r" % (len(v), v[:6])
    return repr(v)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: gguf_reader.py FILE.gguf\n")
        return 2
    g = GGUFFile(argv[1])
    print("version %d, %d file(s), %d kvs, %d tensors"
          % (g.version, len(g.paths), len(g.kvs), len(g.tensors)))
    for k, v in g.kvs.items():
        print("  %s = %s" % (k, _short(v)))
    for name in g.tensor_order:
        t = g.tensors[name]
        print("  %-36s %-6s ne=%s" % (name, t.type_name, t.ne))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
