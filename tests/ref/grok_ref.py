"""grok_ref.py - reference Grok-1 forward pass in NumPy (float64), the oracle
the C engine's logits are tested against.

Written from the model description in ../shared/GROK1.md and xai-org's
model.py, not from the C code, and computed in float64 so that any
difference larger than f32 rounding points at a bug. Weights are read
with gguf_reader.py (dequantized exactly as stored), so a Q8_0, F16 or
BF16 model gives the same numbers here as in an engine that dequantizes
correctly.

Choices where the official code leaves room (the C engine does the same):
  * PAD keys (token id == tokenizer.ggml.padding_token_id) are masked for
    every query, as the official attention mask does. A query row whose
    every causal key is PAD (e.g. a PAD at position 0) would be all -1e30
    in the official code and softmax to a uniform average over *all* keys
    including future ones; we average over the causal window instead (the
    softmax of equal scores over keys 0..i), so results never depend on
    tokens that come later and a KV cache gives the same answer.
  * PAD query tokens and the router: by default the router is NOT masked.
    The official Router has code for `routing_probs *= padding_mask`, but
    MoELayer.__call__(inputs, padding_mask) calls
    self._inference_call(inputs) and drops the mask, so the released model
    routes PAD queries like any other token. --pad-router zero gives the
    other reading (probabilities of PAD queries multiplied by 0, so their
    MoE output is 0). Since PAD keys are masked, either choice only changes
    the PAD positions' own logits rows.
  * Top-k ties go to the lower expert index (jax.lax.top_k); the gates are
    the raw softmax probabilities, not renormalised.

Usage:
  grok_ref.py MODEL.gguf --ids 1,2,3 -o out.f32      # writes f32 [n_ids][n_vocab]
  grok_ref.py MODEL.gguf --ids 1,2,3 --compare c.f32 [--tol 1e-4]
The comparison error of a row is max|c - ref| / max|ref| over that row; the
reported error is the maximum over rows (positions). It is scale-free and
does not blow up on logits that happen to be near zero.
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_reader import GGUFFile  # noqa: E402

GROK1_EMBEDDING_SCALE = 78.38367176906169
GROK1_LOGIT_SCALE = 0.5773502691896257
GROK1_ATTN_SCALE = 0.08838834764831845
GROK1_SOFTCAP = 30.0


class Model:
    def __init__(self, path):
        g = GGUFFile(path)
        arch = g.get("general.architecture")
        if arch != "grok":
            raise ValueError("%s: general.architecture is %r, not 'grok'" % (path, arch))

        def req(key):
            v = g.get(key)
            if v is None:
                raise ValueError("%s: missing key %s" % (path, key))
            return v

        self.d_model = int(req("grok.embedding_length"))
        self.n_layers = int(req("grok.block_count"))
        self.n_ff = int(req("grok.feed_forward_length"))
        self.n_heads = int(req("grok.attention.head_count"))
        self.n_kv = int(req("grok.attention.head_count_kv"))
        self.eps = float(req("grok.attention.layer_norm_rms_epsilon"))
        self.rope_base = float(req("grok.rope.freq_base"))
        self.n_experts = int(req("grok.expert_count"))
        self.n_used = int(req("grok.expert_used_count"))
        self.head_dim = int(g.get("grok.attention.key_length", self.d_model // self.n_heads))
        self.emb_scale = float(g.get("grok.embedding_scale", GROK1_EMBEDDING_SCALE))
        self.logit_scale = float(g.get("grok.logit_scale", GROK1_LOGIT_SCALE))
        self.attn_scale = float(g.get("grok.attention.output_scale", GROK1_ATTN_SCALE))
        self.softcap = float(g.get("grok.attn_logit_softcapping", GROK1_SOFTCAP))
        pad = g.get("tokenizer.ggml.padding_token_id")
        self.pad_id = int(pad) if pad is not None else None
        if self.n_heads % self.n_kv:
            raise ValueError("%s: head_count %d not a multiple of head_count_kv %d"
                             % (path, self.n_heads, self.n_kv))

        def W(name):
            if name not in g.tensors and name.endswith("_exps.weight"):
                # one tensor per expert (llama.cpp's files before its PR
                # #6387; grok quantize --expert-aware), each of its own type
                stem = name[:-len("_exps.weight")]
                return np.stack([W("%s.%d.weight" % (stem, e)) for e in range(self.n_experts)])
            return g.tensor(name).astype(np.float64)

        self.embd = W("token_embd.weight")                        # [vocab, d]
        self.n_vocab = self.embd.shape[0]
        self.output = W("output.weight") if "output.weight" in g.tensors else None
        self.output_norm = W("output_norm.weight")                # [d]
        self.layers = []
        for i in range(self.n_layers):
            p = "blk.%d." % i
            L = {k: W(p + k + ".weight") for k in (
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_output_norm",
                "ffn_norm", "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps",
                "layer_output_norm")}
            self._check(path, p, L)
            self.layers.append(L)

    def _check(self, path, p, L):
        d, hd, ff, ne = self.d_model, self.head_dim, self.n_ff, self.n_experts
        want = {
            "attn_norm": (d,), "attn_q": (self.n_heads * hd, d), "attn_k": (self.n_kv * hd, d),
            "attn_v": (self.n_kv * hd, d), "attn_output": (d, self.n_heads * hd),
            "attn_output_norm": (d,), "ffn_norm": (d,), "ffn_gate_inp": (ne, d),
            "ffn_gate_exps": (ne, ff, d), "ffn_up_exps": (ne, ff, d),
            "ffn_down_exps": (ne, d, ff), "layer_output_norm": (d,),
        }
        for k, shape in want.items():
            if L[k].shape != shape:
                raise ValueError("%s: %s%s.weight has shape %s, expected %s"
                                 % (path, p, k, L[k].shape, shape))


def rmsnorm(x, w, eps):
    # x: [T, d]; the weight multiplies as stored (no "1 + w").
    return w * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def rope(x, pos, base):
    """Half-split rotation of x [T, H, D] at positions pos [T]."""
    D = x.shape[-1]
    half = D // 2
    i = np.arange(half, dtype=np.float64)
    theta = pos[:, None].astype(np.float64) / (base ** (2.0 * i / D))[None, :]   # [T, D/2]
    c = np.cos(theta)[:, None, :]
    s = np.sin(theta)[:, None, :]
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def attention_mask(ids, pad_id):
    """[T, T] boolean: query t may see key s. Causal, PAD keys hidden; a row
    with nothing visible falls back to its whole causal window (see top)."""
    T = len(ids)
    causal = np.tril(np.ones((T, T), dtype=bool))
    if pad_id is None:
        return causal
    keep = np.asarray(ids) != pad_id
    mask = causal & keep[None, :]
    empty = ~mask.any(axis=1)
    mask[empty] = causal[empty]
    return mask


def attention(m, L, x, ids, pos, rec=None):
    T = x.shape[0]
    H, KV, D = m.n_heads, m.n_kv, m.head_dim
    q = (x @ L["attn_q"].T).reshape(T, H, D)
    k = (x @ L["attn_k"].T).reshape(T, KV, D)
    v = (x @ L["attn_v"].T).reshape(T, KV, D)
    q = rope(q, pos, m.rope_base)
    k = rope(k, pos, m.rope_base)
    mask = attention_mask(ids, m.pad_id)
    group = H // KV
    out = np.empty((T, H, D))
    for h in range(H):
        kh = h // group
        s = (q[:, h, :] @ k[:, kh, :].T) * m.attn_scale       # [T, T]
        s = m.softcap * np.tanh(s / m.softcap)
        s = np.where(mask, s, -np.inf)
        out[:, h, :] = softmax(s) @ v[:, kh, :]
    if rec:
        for w in ("attn_q", "attn_k", "attn_v"):
            rec(w, -1, x)
        rec("attn_output", -1, out.reshape(T, H * D))
    return out.reshape(T, H * D) @ L["attn_output"].T


def moe(m, L, x, ids, pad_router, rec=None):
    T = x.shape[0]
    if rec:
        rec("ffn_gate_inp", -1, x)
    probs = softmax(x @ L["ffn_gate_inp"].T)                    # [T, n_experts]
    if pad_router == "zero" and m.pad_id is not None:
        probs = probs * (np.asarray(ids) != m.pad_id)[:, None]
    out = np.zeros_like(x)
    for t in range(T):
        # Stable sort on -p: equal probabilities keep index order (lower first).
        top = np.argsort(-probs[t], kind="stable")[:m.n_used]
        for e in top:
            g = probs[t, e]
            hidden = gelu_tanh(L["ffn_gate_exps"][e] @ x[t]) * (L["ffn_up_exps"][e] @ x[t])
            if rec:
                rec("ffn_gate_exps", e, x[t:t + 1])
                rec("ffn_up_exps", e, x[t:t + 1])
                rec("ffn_down_exps", e, hidden[None, :])
            out[t] += g * (L["ffn_down_exps"][e] @ hidden)
    return out


def forward(m, ids, pad_router="keep", rec=None):
    """rec(weight, expert, rows), when given, sees the input rows of every
    product with a weight matrix of layer i as rec.layer = i (expert -1 for
    a dense matrix): what an importance matrix sums."""
    ids = list(ids)
    for i in ids:
        if not 0 <= i < m.n_vocab:
            raise ValueError("token id %d out of range [0, %d)" % (i, m.n_vocab))
    pos = np.arange(len(ids))
    h = m.embd[ids] * m.emb_scale
    for i, L in enumerate(m.layers):
        if rec:
            rec.layer = i
        # (rec only when given: selfcheck.py swaps these functions for variants without it)
        extra = (rec,) if rec else ()
        a = attention(m, L, rmsnorm(h, L["attn_norm"], m.eps), ids, pos, *extra)
        h = h + rmsnorm(a, L["attn_output_norm"], m.eps)
        mo = moe(m, L, rmsnorm(h, L["ffn_norm"], m.eps), ids, pad_router, *extra)
        h = h + rmsnorm(mo, L["layer_output_norm"], m.eps)
    h = rmsnorm(h, m.output_norm, m.eps)
    out = m.output if m.output is not None else m.embd
    return (h @ out.T) * m.logit_scale


def rel_errors(ref, got):
    """Per row: max|got - ref| / max|ref|."""
    diff = np.max(np.abs(got - ref), axis=1)
    scale = np.maximum(np.max(np.abs(ref), axis=1), 1e-30)
    return diff / scale


def main(argv):
    ap = argparse.ArgumentParser(description="Grok-1 reference logits (float64 NumPy)")
    ap.add_argument("model")
    ap.add_argument("--ids", required=True, help="comma-separated token ids (no BOS added)")
    ap.add_argument("-o", "--output", help="write f32 [n_ids][n_vocab] logits here")
    ap.add_argument("--compare", help="f32 [n_ids][n_vocab] logits to check against the reference")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--pad-router", choices=("keep", "zero"), default="keep",
                    help="PAD query tokens: keep routing (official code) or zero their MoE")
    ap.add_argument("--label", default="", help="printed with the comparison result")
    a = ap.parse_args(argv[1:])
    try:
        ids = [int(s) for s in a.ids.split(",") if s.strip() != ""]
    except ValueError:
        sys.stderr.write("grok_ref.py: --ids %r: not a comma-separated list of integers\n" % a.ids)
        return 2
    if not ids:
        sys.stderr.write("grok_ref.py: --ids is empty\n")
        return 2
    m = Model(a.model)
    logits = forward(m, ids, a.pad_router)
    if a.output:
        tmp = a.output + ".tmp%d" % os.getpid()
        logits.astype("<f4").tofile(tmp)
        os.replace(tmp, a.output)
    if a.compare:
        got = np.fromfile(a.compare, dtype="<f4")
        if got.size != logits.size:
            print("FAIL %s: %s has %d floats, expected %d x %d = %d"
                  % (a.label, a.compare, got.size, len(ids), m.n_vocab, logits.size))
            return 1
        got = got.reshape(logits.shape).astype(np.float64)
        if not np.all(np.isfinite(got)):
            bad = np.argwhere(~np.isfinite(got))[0]
            print("FAIL %s: non-finite value at position %d, token %d" % (a.label, bad[0], bad[1]))
            return 1
        errs = rel_errors(logits, got)
        worst = int(np.argmax(errs))
        j = int(np.argmax(np.abs(got[worst] - logits[worst])))
        ok = errs[worst] <= a.tol
        print("%s %s: max rel err %.3e (tol %.1e) at position %d/%d, logit %d: ref %.6g got %.6g"
              % ("ok  " if ok else "FAIL", a.label, errs[worst], a.tol, worst, len(ids), j,
                 logits[worst, j], got[worst, j]))
        if not ok:
            print("     per-position errors: " + " ".join("%.1e" % e for e in errs))
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
