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
loader and kernels meet k-quant bytes that its encoder did not choose.

  /usr/bin/python3 tests/ref/make_model.py -o m.gguf --d-model 64 --layers 2 \
      --heads 4 --kv-heads 2 --experts 8 --experts-used 2 --ffn 128 --vocab 300 \
      --type q8_0 --seed 1
"""

import argparse
import os
import struct
import sys

import numpy as np

# GGUF metadata value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
# ggml tensor types written here.
GGML = {"f32": 0, "f16": 1, "q8_0": 8, "bf16": 30, "q4_K": 12, "q5_K": 13, "q6_K": 14}
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
    raise ValueError(tname)


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
        self.tensors.append((name, ne, GGML[tname], encode_tensor(arr, tname)))

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
            offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
        head = b"".join(head)
        tmp = path + ".tmp%d" % os.getpid()
        with open(tmp, "wb") as fh:
            fh.write(head)
            fh.write(b"\0" * ((-len(head)) % ALIGN))
            for (name, ne, tt, data) in self.tensors:
                fh.write(data)
                fh.write(b"\0" * ((-len(data)) % ALIGN))
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
        return (rng.standard_normal((*lead, out_dim, in_dim)) / np.sqrt(in_dim)).astype(np.float32)

    def norm():
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

    t = a.type
    w.tensor("token_embd.weight", mat(a.vocab, d), t)
    for i in range(a.layers):
        p = "blk.%d." % i
        w.tensor(p + "attn_norm.weight", norm(), "f32")
        w.tensor(p + "attn_q.weight", mat(nh * hd, d) * a.qk_gain, t)
        w.tensor(p + "attn_k.weight", mat(nkv * hd, d) * a.qk_gain, t)
        w.tensor(p + "attn_v.weight", mat(nkv * hd, d), t)
        w.tensor(p + "attn_output.weight", mat(d, nh * hd), t)
        w.tensor(p + "attn_output_norm.weight", norm(), "f32")
        w.tensor(p + "ffn_norm.weight", norm(), "f32")
        w.tensor(p + "ffn_gate_inp.weight", mat(ne, d) * a.router_gain, "f32")
        w.tensor(p + "ffn_gate_exps.weight", mat(ff, d, ne) * a.gelu_gain, t)
        w.tensor(p + "ffn_up_exps.weight", mat(ff, d, ne), t)
        w.tensor(p + "ffn_down_exps.weight", mat(d, ff, ne) * a.expert_gain, t)
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
    ap.add_argument("--seed", type=int, default=1)
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
    if a.type.endswith("_K") and (a.d_model % 256 or a.ffn % 256 or (a.heads * hd) % 256):
        errs.append("%s needs d_model, ffn and heads*head_dim multiples of 256" % a.type)
    if errs:
        for e in errs:
            sys.stderr.write("make_model.py: %s\n" % e)
        return 2
    build(a)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
