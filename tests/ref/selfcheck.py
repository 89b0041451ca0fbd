"""selfcheck.py - checks the Python reference pieces against each other,
before they are trusted as the oracle for the C engine.

  * make_model.py -> gguf_reader.py round trip for f32/f16/bf16/q8_0:
    metadata of every kind written comes back unchanged, and each stored
    weight decodes to within its type's rounding of the value written.
  * Q8_0 and BF16 decoding of hand-built bytes with known values.
  * A split model (two files) reads as the one file it came from.
  * RoPE: identity at position 0, keeps norms, and q.k after rotation
    depends only on the distance between the two positions.
  * The batched forward pass in grok_ref.py equals an incremental one
    written here separately (one token at a time, with a KV cache,
    per-head loops): the batched masks, GQA indexing and positions are
    checked by code that shares none of them.
  * PAD handling: a PAD at position 0 attends to itself only; PAD keys
    never influence other positions; --pad-router only changes PAD rows.
  * Top-k ties go to the lower expert index.
  * Sensitivity: erf GELU, interleaved RoPE, renormalised gates, unmasked
    PAD keys, no soft cap, a recomputed attention scale or another eps each
    change the logits of a suitably scaled model by more than the C test's
    tolerance, so that test can catch them.
Exits 0 when all pass; prints each check.
"""

import math
import os
import struct
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gguf_reader  # noqa: E402
import grok_ref  # noqa: E402
import make_model  # noqa: E402

failures = []


def check(name, ok, detail=""):
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail else ""))
    if not ok:
        failures.append(name)


def make(tmp, name, *args):
    path = os.path.join(tmp, name)
    rc = make_model.main(["make_model.py", "-o", path] + [str(a) for a in args])
    assert rc == 0, "make_model failed for %s" % (args,)
    return path


def roundtrip(tmp):
    # The same seed gives the same float32 weights for every type, so the
    # f32 file is the exact original the others were rounded from.
    args = ["--seed", 11, "--d-model", 64, "--heads", 4, "--kv-heads", 2, "--ffn", 96,
            "--vocab", 270, "--experts", 4, "--experts-used", 2, "--untied",
            "--attn-scale", 0.25, "--softcap", 20, "--pad-id", 0]
    ref = gguf_reader.GGUFFile(make(tmp, "rt_f32.gguf", *args, "--type", "f32"))
    check("kv strings", ref.get("general.architecture") == "grok"
          and ref.get("tokenizer.ggml.tokens")[:5] == ["[PAD]", "[BOS]", "[EOS]", "[UNK]", "<0x00>"]
          and ref.get("tokenizer.ggml.tokens")[-1] == "t269")
    check("kv numbers", ref.get("grok.embedding_length") == 64 and ref.get("grok.expert_count") == 4
          and abs(ref.get("grok.attention.output_scale") - 0.25) < 1e-7
          and ref.get("tokenizer.ggml.add_bos_token") is False
          and list(ref.get("tokenizer.ggml.token_type")[:5]) == [3, 3, 3, 2, 6])
    check("tensor count", len(ref.tensors) == 2 + 2 * 12 + 1, str(len(ref.tensors)))
    check("shape reversed", ref.tensor("blk.0.ffn_down_exps.weight").shape == (4, 64, 96)
          and ref.tensors["blk.0.ffn_down_exps.weight"].ne == [96, 64, 4])
    tol = {"f16": 2.0 ** -11, "bf16": 2.0 ** -8}
    for t in ("f16", "bf16", "q8_0"):
        g = gguf_reader.GGUFFile(make(tmp, "rt_%s.gguf" % t, *args, "--type", t))
        worst = 0.0
        for name in ref.tensor_order:
            a = ref.tensor(name)
            b = g.tensor(name)
            if g.tensors[name].type == 0:
                worst = max(worst, float(np.max(np.abs(a - b))))
                continue
            if t == "q8_0":
                # Within half a quantization step (+ the f16 rounding of d).
                blocks = a.reshape(-1, 32)
                step = np.max(np.abs(blocks), axis=1, keepdims=True) / 127.0
                err = np.abs(blocks - b.reshape(-1, 32)) / np.maximum(step, 1e-30)
                worst = max(worst, float(np.max(err)) - (0.5 + 127 * 2.0 ** -11))
            else:
                # Relative rounding for normal numbers; f16 subnormals
                # (below 2^-14) are spaced 2^-24 apart.
                err = np.abs(a - b) - np.maximum(np.abs(a) * tol[t], 2.0 ** -25)
                worst = max(worst, float(np.max(err)))
        check("round trip %s" % t, worst <= 1e-9, "excess error %.2e" % worst)


def handmade_blocks():
    d = np.float16(0.5)
    q = np.arange(-128, 128, 8, dtype=np.int8)  # 32 values
    raw = np.frombuffer(d.tobytes() + q.tobytes(), dtype=np.uint8)
    got = gguf_reader.dequantize(raw, gguf_reader.TYPE_Q8_0, 32)
    check("q8_0 block", np.array_equal(got, 0.5 * q.astype(np.float32)))
    vals = np.array([1.0, -2.5, 3.140625, 65504.0, 1e-20], dtype=np.float32)
    bits = make_model.f32_to_bf16_bits(vals)
    back = gguf_reader.dequantize(bits.view(np.uint8), gguf_reader.TYPE_BF16, 5)
    check("bf16 values", list(bits[:3]) == [0x3F80, 0xC020, 0x4049]
          and np.all(np.abs(back - vals) <= np.abs(vals) * 2 ** -8), str(back))
    # Round to nearest even at the exact halfway point.
    half = np.array([struct.unpack("<f", struct.pack("<I", 0x3F808000))[0],
                     struct.unpack("<f", struct.pack("<I", 0x3F818000))[0]], dtype=np.float32)
    check("bf16 ties to even", list(make_model.f32_to_bf16_bits(half)) == [0x3F80, 0x3F82])


def split_files(tmp):
    src = gguf_reader.GGUFFile(make(tmp, "whole.gguf", "--seed", 5, "--layers", 1, "--vocab", 40))
    names = src.tensor_order
    cut = len(names) // 2
    base = os.path.join(tmp, "sp")
    for part, chunk in enumerate((names[:cut], names[cut:])):
        w = make_model.Writer()
        if part == 0:
            for k, v in src.kvs.items():
                vt = src.kv_types[k]
                if vt == gguf_reader.T_ARRAY:
                    et = make_model.STR if isinstance(v, list) else {
                        np.dtype("float32"): make_model.F32, np.dtype("int32"): make_model.I32}[v.dtype]
                    w.kv(k, vt, list(v) if et == make_model.STR else v.tolist(), et)
                else:
                    w.kv(k, vt, v)
        w.kv("split.no", make_model.U16, part)
        w.kv("split.count", make_model.U16, 2)
        w.kv("split.tensors.count", make_model.I32, len(names))
        for n in chunk:
            w.tensor(n, src.tensor(n), "f32")
        w.write("%s-%05d-of-00002.gguf" % (base, part + 1))
    sp = gguf_reader.GGUFFile(base + "-00001-of-00002.gguf")
    same = sp.tensor_order == names and all(
        np.array_equal(sp.tensor(n), src.tensor(n)) for n in names)
    check("split model", same and sp.get("grok.block_count") == 1)
    a = grok_ref.forward(grok_ref.Model(base + "-00001-of-00002.gguf"), [4, 9, 4])
    b = grok_ref.forward(grok_ref.Model(os.path.join(tmp, "whole.gguf")), [4, 9, 4])
    check("split model logits", np.array_equal(a, b))


def rope_props():
    rng = np.random.default_rng(0)
    D = 16
    q = rng.standard_normal((1, 1, D))
    k = rng.standard_normal((1, 1, D))
    r0 = grok_ref.rope(q, np.array([0]), 10000.0)
    check("rope pos 0 = identity", np.allclose(r0, q, atol=0, rtol=1e-15))
    r = grok_ref.rope(np.repeat(q, 50, axis=0), np.arange(50), 10000.0)
    check("rope keeps norm", np.allclose(np.linalg.norm(r, axis=-1), np.linalg.norm(q), rtol=1e-12))

    def dot(p1, p2):
        a = grok_ref.rope(q, np.array([p1]), 10000.0)
        b = grok_ref.rope(k, np.array([p2]), 10000.0)
        return float(np.sum(a * b))
    check("rope relative", abs(dot(7, 3) - dot(104, 100)) < 1e-10 and abs(dot(7, 3) - dot(3, 7)) > 1e-3)
    # The pairing is (i, i + D/2): rotating a vector that is e_0 at pos p
    # gives cos in slot 0 and sin in slot D/2 with theta_0 = p.
    e = np.zeros((1, 1, D))
    e[0, 0, 0] = 1.0
    r = grok_ref.rope(e, np.array([2]), 10000.0)[0, 0]
    check("rope half split", abs(r[0] - math.cos(2)) < 1e-15 and abs(r[D // 2] - math.sin(2)) < 1e-15
          and abs(r[1]) == 0)


def incremental_forward(m, ids, pad_router="keep"):
    """Token by token with a KV cache; scalar loops over heads and experts."""
    kc = [[] for _ in m.layers]
    vc = [[] for _ in m.layers]
    out = []
    group = m.n_heads // m.n_kv
    D = m.head_dim
    half = D // 2
    inv = np.array([m.rope_base ** (-2.0 * i / D) for i in range(half)])

    def norm(x, w):
        return w * x / math.sqrt(float(np.dot(x, x)) / x.size + m.eps)

    def rot(vec, p):
        c, s = np.cos(p * inv), np.sin(p * inv)
        return np.concatenate([vec[:half] * c - vec[half:] * s, vec[half:] * c + vec[:half] * s])

    for p, tok in enumerate(ids):
        h = m.embd[tok] * m.emb_scale
        is_pad = m.pad_id is not None and tok == m.pad_id
        for li, L in enumerate(m.layers):
            x = norm(h, L["attn_norm"])
            q = L["attn_q"] @ x
            k = L["attn_k"] @ x
            v = L["attn_v"] @ x
            kc[li].append([rot(k[j * D:(j + 1) * D], p) for j in range(m.n_kv)])
            vc[li].append([v[j * D:(j + 1) * D] for j in range(m.n_kv)])
            visible = [s for s in range(p + 1) if m.pad_id is None or ids[s] != m.pad_id]
            if not visible:
                visible = list(range(p + 1))
            heads = []
            for hh in range(m.n_heads):
                qh = rot(q[hh * D:(hh + 1) * D], p)
                j = hh // group
                sc = []
                for s in visible:
                    z = float(np.dot(qh, kc[li][s][j])) * m.attn_scale
                    sc.append(m.softcap * math.tanh(z / m.softcap))
                mx = max(sc)
                wts = [math.exp(z - mx) for z in sc]
                tot = sum(wts)
                heads.append(sum(wt / tot * vc[li][s][j] for wt, s in zip(wts, visible)))
            a = L["attn_output"] @ np.concatenate(heads)
            h = h + norm(a, L["attn_output_norm"])
            x = norm(h, L["ffn_norm"])
            logits = L["ffn_gate_inp"] @ x
            ex = [math.exp(z - max(logits)) for z in logits]
            probs = [z / sum(ex) for z in ex]
            if pad_router == "zero" and is_pad:
                probs = [0.0] * len(probs)
            chosen = []
            for _ in range(m.n_used):
                best = None
                for e in range(m.n_experts):
                    if e not in chosen and (best is None or probs[e] > probs[best]):
                        best = e
                chosen.append(best)
            mo = np.zeros(m.d_model)
            for e in chosen:
                gt = L["ffn_gate_exps"][e] @ x
                g = 0.5 * gt * (1 + np.tanh(math.sqrt(2 / math.pi) * (gt + 0.044715 * gt ** 3)))
                mo += probs[e] * (L["ffn_down_exps"][e] @ (g * (L["ffn_up_exps"][e] @ x)))
            h = h + norm(mo, L["layer_output_norm"])
        h = norm(h, m.output_norm)
        W = m.output if m.output is not None else m.embd
        out.append((W @ h) * m.logit_scale)
    return np.array(out)


def forward_checks(tmp):
    configs = [
        ("gqa1", ["--heads", 4, "--kv-heads", 4, "--experts", 4, "--experts-used", 1]),
        ("gqa4 untied", ["--heads", 8, "--kv-heads", 2, "--experts", 8, "--experts-used", 3,
                         "--untied", "--layers", 3]),
        ("head_dim 24 softcap", ["--heads", 4, "--kv-heads", 2, "--head-dim", 24,
                                 "--qk-gain", 3, "--attn-scale", 0.5, "--softcap", 10]),
    ]
    ids = [7, 8, 9, 7, 8, 0, 9, 120, 7, 7, 3, 250]
    for name, extra in configs:
        m = grok_ref.Model(make(tmp, "fw.gguf", "--seed", 21, "--vocab", 260, *extra))
        a = grok_ref.forward(m, ids)
        b = incremental_forward(m, ids)
        err = float(np.max(grok_ref.rel_errors(a, b)))
        check("batched = incremental (%s)" % name, err < 1e-12, "%.1e" % err)
        az = grok_ref.forward(m, ids, "zero")
        bz = incremental_forward(m, ids, "zero")
        err = float(np.max(grok_ref.rel_errors(az, bz)))
        check("batched = incremental, pad-router zero (%s)" % name, err < 1e-12, "%.1e" % err)
        rows = [i for i, t in enumerate(ids) if t != 0]
        check("pad-router only changes PAD rows (%s)" % name,
              np.array_equal(a[rows], az[rows]) and not np.allclose(a[5], az[5]))
        check("logits spread (%s)" % name, 0.2 < float(np.std(a)) < 5.0, "std %.3f" % np.std(a))

    m = grok_ref.Model(make(tmp, "pad.gguf", "--seed", 4, "--vocab", 100, "--untied"))
    # PAD keys do not influence others: swap the PAD's own embedding for
    # another (it is only ever read as a masked key) and nothing else moves.
    base = [0, 5, 6, 0, 7, 8]
    a = grok_ref.forward(m, base)
    m.embd[0] += 1.0
    b = grok_ref.forward(m, base)
    check("PAD keys invisible", np.array_equal(a[[1, 2, 4, 5]], b[[1, 2, 4, 5]])
          and not np.allclose(a[0], b[0]))
    # Without a pad id nothing is masked: token 0 then matters.
    m.pad_id = None
    c = grok_ref.forward(m, base)
    check("no pad id: nothing masked", not np.allclose(b[1], c[1]))
    # Row 0 of a sequence starting with PAD = the PAD token alone.
    m.pad_id = 0
    check("fully masked row = its causal window", np.allclose(
        grok_ref.forward(m, [0])[0], b[0], rtol=1e-13, atol=0))


def topk_ties():
    m = type("M", (), {})()
    m.n_used, m.pad_id = 2, None
    m.n_experts = 4
    d = 4
    L = {"ffn_gate_inp": np.zeros((4, d)),
         "ffn_gate_exps": np.zeros((4, 3, d)), "ffn_up_exps": np.zeros((4, 3, d)),
         "ffn_down_exps": np.zeros((4, d, 3))}
    # Router gives all experts equal probability; make each expert's output
    # identify it: gate/up produce constants, down maps to a one-hot.
    for e in range(4):
        L["ffn_gate_exps"][e, :, 0] = 10.0
        L["ffn_up_exps"][e, :, 0] = 1.0
        L["ffn_down_exps"][e, e, 0] = 1.0
    x = np.array([[1.0, 0, 0, 0]])
    out = grok_ref.moe(m, L, x, [5], "keep")[0]
    check("top-k ties to lower index", out[0] > 0 and out[1] > 0 and out[2] == 0 and out[3] == 0
          and abs(out[0] - 0.25 * 10.0 * 1.0 * 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi)
                                                                   * (10 + 0.044715 * 1000)))) < 1e-9)


# A model on which every known slip shows in the logits: a small embedding
# scale lets the layers dominate the residual, a small W_down makes the MoE
# output comparable to sqrt(eps) (otherwise the post-MoE RMSNorm hides any
# per-token scaling of the gates), a wide GELU input and strong attention
# scores that reach the soft cap. logits_ref_test.sh runs the C engine on
# the same arguments.
SENSITIVE_ARGS = ["--embedding-scale", 0.1, "--attn-scale", 0.5, "--softcap", 8, "--qk-gain", 2,
                  "--gelu-gain", 2.5, "--expert-gain", 0.03]


def sensitivity(tmp):
    """Each known way to get Grok-1 slightly wrong moves the logits of the
    sensitive model by more than the 1e-4 the C comparison allows."""
    m = grok_ref.Model(make(tmp, "sens.gguf", "--seed", 31, "--vocab", 260, "--layers", 2,
                            "--experts", 8, "--experts-used", 2, "--pad-id", 0, *SENSITIVE_ARGS))
    ids = [7, 8, 9, 0, 8, 120, 7, 7, 3, 250, 9, 9]
    base = grok_ref.forward(m, ids)
    saved = {k: getattr(grok_ref, k) for k in ("gelu_tanh", "rope", "moe", "attention_mask")}

    def erf_gelu(x):
        return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))

    def interleaved_rope(x, pos, b):
        # Pairs (2i, 2i+1) instead of (i, i + D/2).
        D = x.shape[-1]
        perm = np.concatenate([np.arange(0, D, 2), np.arange(1, D, 2)])
        inv = np.argsort(perm)
        return saved["rope"](x[..., perm], pos, b)[..., inv]

    def renorm_moe(mm, L, x, tok, pr):
        # llama.cpp's reading: the used gates rescaled to sum to 1.
        probs = grok_ref.softmax(x @ L["ffn_gate_inp"].T)
        out = np.zeros_like(x)
        for t in range(x.shape[0]):
            top = np.argsort(-probs[t], kind="stable")[:mm.n_used]
            g = probs[t, top] / probs[t, top].sum()
            for ge, e in zip(g, top):
                hid = grok_ref.gelu_tanh(L["ffn_gate_exps"][e] @ x[t]) * (L["ffn_up_exps"][e] @ x[t])
                out[t] += ge * (L["ffn_down_exps"][e] @ hid)
        return out

    def no_pad_mask(tok, pad):
        return saved["attention_mask"](tok, None)

    variants = [("erf GELU", "gelu_tanh", erf_gelu), ("interleaved RoPE", "rope", interleaved_rope),
                ("renormalised gates", "moe", renorm_moe), ("PAD keys not masked", "attention_mask", no_pad_mask)]
    for name, attr, fn in variants:
        setattr(grok_ref, attr, fn)
        try:
            err = float(np.max(grok_ref.rel_errors(base, grok_ref.forward(m, ids))))
        finally:
            setattr(grok_ref, attr, saved[attr])
        # The GELU variants differ by at most ~2e-4 of a unit; the rest by far more.
        check("detects %s" % name, err > (1.5e-4 if attr == "gelu_tanh" else 1e-3), "%.1e" % err)
    for name, field, val in (("no soft cap", "softcap", 1e9), ("attn scale 1/sqrt(hd)", "attn_scale",
                              1 / math.sqrt(m.head_dim)), ("eps 1e-6", "eps", 1e-6)):
        old = getattr(m, field)
        setattr(m, field, val)
        err = float(np.max(grok_ref.rel_errors(base, grok_ref.forward(m, ids))))
        setattr(m, field, old)
        check("detects %s" % name, err > 1e-3, "%.1e" % err)


def main():
    with tempfile.TemporaryDirectory(dir=os.environ.get("GROK_TMP")) as tmp:
        roundtrip(tmp)
        handmade_blocks()
        split_files(tmp)
        rope_props()
        forward_checks(tmp)
        topk_ties()
        sensitivity(tmp)
    if failures:
        print("%d check(s) failed: %s" % (len(failures), ", ".join(failures)))
        return 1
    print("all reference self-checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
