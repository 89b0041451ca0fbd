"""grok: Python bindings for libgrok, the C engine of grok.c.

A thin ctypes layer over ``libgrok.so`` (no compiled extension): load a
Grok-architecture GGUF model, tokenize and detokenize with its SentencePiece
tokenizer, get logits as NumPy arrays, and generate text as an iterator of
pieces. The numbers are the C library's, bit for bit.

    import grok
    with grok.Model("models/grok-mini.gguf") as m:
        ids = m.tokenize("And God said")
        print(m.logits(ids).shape)                   # (3, n_vocab)
        for piece in m.generate("And God said", max_tokens=32, seed=1):
            print(piece, end="", flush=True)

The library is found through ``GROK_LIB`` (a path to libgrok.so), then a
``build/`` directory beside this package's repository, then the system's
library path (after ``cmake --install``).
"""

import ctypes
import ctypes.util
import json
import os

import numpy as np

__all__ = ["GrokError", "Model", "SamplerParams", "library", "version"]

ERR_SIZE = 512
_KERNELS = {"default": -1, "fast": 0, "exact": 1, "reference": 2}
_KV_TYPES = {"f32": 0, "f16": 1}
_PLANS = {"auto": 0, "packed": 1, "cache": 2, "mmap": 3}
_POLICIES = {"lru": 0, "lfu": 1, "arc": 2}


class GrokError(RuntimeError):
    """An error reported by libgrok; ``code`` is its GROK_ERR_ value (or -1)."""

    def __init__(self, message, code=-1):
        super().__init__(message)
        self.code = code


# ---- the C structures (their layout is checked against grok.h by tests/python_test.sh)

class _MemoryParams(ctypes.Structure):
    _fields_ = [("limit", ctypes.c_int64), ("plan", ctypes.c_int), ("cache_slots", ctypes.c_int64),
                ("policy", ctypes.c_int), ("prefetch", ctypes.c_int), ("io_threads", ctypes.c_int),
                ("buffered_io", ctypes.c_bool), ("n_contexts", ctypes.c_int64), ("pack_file", ctypes.c_char_p)]


class _ModelParams(ctypes.Structure):
    _fields_ = [("pack", ctypes.c_bool), ("kernels", ctypes.c_int), ("isa", ctypes.c_char_p),
                ("memory", _MemoryParams)]


class _ContextParams(ctypes.Structure):
    _fields_ = [("n_ctx", ctypes.c_int64), ("kv_type", ctypes.c_int), ("n_threads", ctypes.c_int),
                ("pool", ctypes.c_void_p), ("n_batch", ctypes.c_int64)]


class _SamplerParams(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_k", ctypes.c_int32), ("top_p", ctypes.c_float),
                ("min_p", ctypes.c_float), ("repeat_penalty", ctypes.c_float),
                ("repeat_last_n", ctypes.c_int32), ("presence_penalty", ctypes.c_float),
                ("frequency_penalty", ctypes.c_float), ("seed", ctypes.c_uint64)]


class _HParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int64) for n in ("n_vocab", "d_model", "n_layers", "n_heads", "n_kv_heads",
                                             "head_dim", "n_ff", "n_experts", "n_experts_used",
                                             "n_ctx_train")] + \
               [(n, ctypes.c_float) for n in ("rope_base", "norm_eps", "embedding_scale", "logit_scale",
                                             "attn_scale", "attn_softcap")] + [("pad_id", ctypes.c_int32)]


class _DetokStream(ctypes.Structure):
    _fields_ = [("pending", ctypes.c_char * 8), ("n_pending", ctypes.c_size_t), ("at_start", ctypes.c_bool)]


STRUCT_SIZES = {"grok_model_params": _ModelParams, "grok_memory_params": _MemoryParams, "grok_context_params": _ContextParams,
                "grok_sampler_params": _SamplerParams, "grok_hparams": _HParams,
                "grok_detok_stream": _DetokStream}

_lib = None


def _find_library():
    env = os.environ.get("GROK_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    local = os.path.join(here, "..", "..", "build", "libgrok.so")
    if os.path.exists(local):
        return local
    return ctypes.util.find_library("grok") or "libgrok.so"


def library():
    """The loaded libgrok (a ctypes.CDLL), loading it on first use."""
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(_find_library())
    P, I64, SZ = ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t
    ERR = (ctypes.c_char_p, SZ)
    sig = {
        "grok_version": (ctypes.c_char_p, ()),
        "grok_model_default_params": (_ModelParams, ()),
        "grok_model_load_params": (P, (ctypes.c_char_p, ctypes.POINTER(_ModelParams)) + ERR),
        "grok_model_free": (None, (P,)),
        "grok_model_isa": (ctypes.c_char_p, (P,)),
        "grok_model_memory_plan": (P, (P,)),
        "grok_memory_plan_describe": (None, (P, ctypes.c_char_p, SZ)),
        "grok_parse_size": (I64, (ctypes.c_char_p,)),
        "grok_model_hparams": (ctypes.POINTER(_HParams), (P,)),
        "grok_model_tokenizer": (P, (P,)),
        "grok_context_default_params": (_ContextParams, ()),
        "grok_context_create": (P, (P, ctypes.POINTER(_ContextParams)) + ERR),
        "grok_context_free": (None, (P,)),
        "grok_context_pos": (I64, (P,)),
        "grok_context_n_ctx": (I64, (P,)),
        "grok_context_truncate": (None, (P, I64)),
        "grok_context_logits": (ctypes.POINTER(ctypes.c_float), (P,)),
        "grok_decode": (ctypes.c_int, (P, ctypes.POINTER(ctypes.c_int32), I64, ctypes.POINTER(ctypes.c_float))
                        + ERR),
        "grok_tokenize_into": (I64, (P, ctypes.c_char_p, SZ, ctypes.c_bool, ctypes.POINTER(ctypes.c_int32), I64)),
        "grok_detokenize_into": (I64, (P, ctypes.POINTER(ctypes.c_int32), SZ, ctypes.c_char_p, SZ)),
        "grok_tokenizer_eos": (ctypes.c_int32, (P,)),
        "grok_tokenizer_bos": (ctypes.c_int32, (P,)),
        "grok_tokenizer_add_bos": (ctypes.c_bool, (P,)),
        "grok_sampler_default_params": (_SamplerParams, ()),
        "grok_sampler_create": (P, (ctypes.POINTER(_SamplerParams), I64)),
        "grok_sampler_free": (None, (P,)),
        "grok_sampler_sample": (ctypes.c_int32, (P, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int32),
                                                 SZ)),
        "grok_detok_stream_init": (None, (ctypes.POINTER(_DetokStream), ctypes.c_bool)),
        "grok_detok_stream_push": (SZ, (ctypes.POINTER(_DetokStream), P, ctypes.c_int32, ctypes.c_char_p, SZ)),
        "grok_detok_stream_flush": (SZ, (ctypes.POINTER(_DetokStream), ctypes.c_char_p, SZ)),
        "grok_find_stop": (I64, (ctypes.c_char_p, SZ, ctypes.POINTER(ctypes.c_char_p), SZ,
                                 ctypes.POINTER(ctypes.c_size_t))),
        "grok_sampler_sample_masked": (ctypes.c_int32, (P, ctypes.POINTER(ctypes.c_float),
                                                        ctypes.POINTER(ctypes.c_uint64),
                                                        ctypes.POINTER(ctypes.c_int32), SZ)),
        "grok_grammar_vocab_create": (P, (P,) + ERR),
        "grok_grammar_vocab_free": (None, (P,)),
        "grok_grammar_parse": (P, (ctypes.c_char_p, SZ, ctypes.c_char_p, P) + ERR),
        "grok_grammar_free": (None, (P,)),
        # a malloc'd string, freed with the C library's free
        "grok_json_schema_to_gbnf": (P, (ctypes.c_char_p, SZ) + ERR),
        "grok_matcher_create": (P, (P,)),
        "grok_matcher_free": (None, (P,)),
        "grok_matcher_fill_mask": (I64, (P, ctypes.POINTER(ctypes.c_uint64))),
        "grok_matcher_accept_token": (ctypes.c_int, (P, ctypes.c_int32)),
        "grok_matcher_is_done": (ctypes.c_bool, (P,)),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, list(args)
    libc = ctypes.CDLL(None)
    lib.c_free = libc.free
    lib.c_free.restype, lib.c_free.argtypes = None, [P]
    _lib = lib
    return lib


def version():
    """The version of the loaded libgrok ("0.2.0")."""
    return library().grok_version().decode()


class SamplerParams:
    """How ``Model.generate`` picks tokens; the fields and defaults are grok_sampler_params'.

    temperature (<= 0: greedy), top_k (<= 0: off), top_p (1: off; the official
    runner's nucleus, ties kept), min_p (0: off), repeat_penalty (1: off),
    repeat_last_n (-1: all), presence_penalty, frequency_penalty, seed.
    """

    FIELDS = [f for f, _ in _SamplerParams._fields_]

    def __init__(self, **kw):
        d = library().grok_sampler_default_params()
        for f in self.FIELDS:
            setattr(self, f, getattr(d, f))
        for k, v in kw.items():
            if k not in self.FIELDS:
                raise TypeError(f"unknown sampler setting {k!r} (one of {', '.join(self.FIELDS)})")
            setattr(self, k, v)

    def _c(self):
        c = _SamplerParams()
        for f in self.FIELDS:
            setattr(c, f, getattr(self, f))
        return c

    def __repr__(self):
        return "SamplerParams(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self.FIELDS) + ")"


def _ids(ids):
    a = np.ascontiguousarray(np.asarray(ids, dtype=np.int32).reshape(-1))
    return a, a.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))


class Model:
    """A model loaded from a GGUF file (memory-mapped).

    pack: build the packed copy of the weights the fast kernels read.
    kernels: "default" (the process's), "fast", "exact" (f32 activations) or
    "reference" (the scalar kernels). isa: a cap on the instruction set of
    this model's kernels ("scalar", "avx2", "avx512vnni", "avx512vbmi",
    "neon"; None: the process's; GROK_ISA overrides it). threads: 0 = every core. n_ctx: the
    KV cache length of the contexts it makes (0: the model's). kv_type:
    "f32" or "f16". mem_limit: the memory to plan the weights for (bytes, or
    a size such as "64G"; None: the cgroup's limit or MemAvailable, found;
    "none": no limit), mem_plan: "auto", "packed", "cache" (the expert
    cache) or "mmap", cache_slots: the expert cache's slots (0: as many as
    fit), cache_policy: "lfu", "lru" or "arc" (docs/memory.md). A Model is not safe to share between threads while one
    of its methods runs; use one per thread.
    """

    def __init__(self, path, *, pack=True, kernels="default", isa=None, threads=0, n_ctx=0, kv_type="f32",
                 n_batch=256, mem_limit=None, mem_plan="auto", cache_slots=0, cache_policy="lfu"):
        lib = library()
        if kernels not in _KERNELS:
            raise ValueError(f"kernels {kernels!r} is not one of {', '.join(_KERNELS)}")
        if isa is not None and not isinstance(isa, str):
            raise ValueError(f"isa {isa!r} is not a name (such as 'avx2') or None")
        if kv_type not in _KV_TYPES:
            raise ValueError(f"kv_type {kv_type!r} is not f32 or f16")
        if mem_plan not in _PLANS:
            raise ValueError(f"mem_plan {mem_plan!r} is not one of {', '.join(_PLANS)}")
        if cache_policy not in _POLICIES:
            raise ValueError(f"cache_policy {cache_policy!r} is not one of {', '.join(_POLICIES)}")
        if mem_limit is None:
            limit = 0
        elif mem_limit == "none":
            limit = -1
        elif isinstance(mem_limit, str):
            limit = lib.grok_parse_size(mem_limit.encode())
            if limit <= 0:
                raise ValueError(f"mem_limit {mem_limit!r} is not a size (64G, 1.5G, 512M) or 'none'")
        elif isinstance(mem_limit, int) and mem_limit > 0:
            limit = mem_limit
        else:
            raise ValueError(f"mem_limit {mem_limit!r} is not a positive number of bytes, a size or 'none'")
        if not (isinstance(cache_slots, int) and cache_slots >= 0):
            raise ValueError(f"cache_slots {cache_slots!r} is not a number of slots >= 0")
        p = lib.grok_model_default_params()
        p.pack, p.kernels = bool(pack), _KERNELS[kernels]
        p.isa = isa.encode() if isa is not None else None  # read during the load only
        p.memory.limit, p.memory.plan = limit, _PLANS[mem_plan]
        p.memory.cache_slots, p.memory.policy = cache_slots, _POLICIES[cache_policy]
        err = ctypes.create_string_buffer(ERR_SIZE)
        self._m = lib.grok_model_load_params(os.fsencode(path), ctypes.byref(p), err, ERR_SIZE)
        if not self._m:
            raise GrokError(err.value.decode(errors="replace"))
        self._tok = lib.grok_model_tokenizer(self._m)
        self._cp = lib.grok_context_default_params()
        self._cp.n_threads, self._cp.n_ctx = int(threads), int(n_ctx)
        self._cp.kv_type, self._cp.n_batch = _KV_TYPES[kv_type], int(n_batch)
        self.path = path
        self._gvocab = None  # the vocabulary as grammars see it, made on first use

    @property
    def isa(self):
        """The instruction set this model's kernels use ("avx2", ...)."""
        return library().grok_model_isa(self._live()).decode()

    def memory_plan(self):
        """The memory plan as one line (docs/memory.md), or None before the first
        context (logits or generate) made it."""
        plan = library().grok_model_memory_plan(self._m)
        if not plan:
            return None
        buf = ctypes.create_string_buffer(1024)
        library().grok_memory_plan_describe(plan, buf, 1024)
        return buf.value.decode(errors="replace")

    def close(self):
        """Frees the model (also done when it is garbage-collected)."""
        if getattr(self, "_gvocab", None):
            library().grok_grammar_vocab_free(self._gvocab)
            self._gvocab = None
        if getattr(self, "_m", None):
            library().grok_model_free(self._m)
            self._m = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if not self._m:
            raise GrokError("the model is closed")
        return self._m

    @property
    def hparams(self):
        """The hyperparameters as a dict (n_vocab, d_model, n_layers, ...)."""
        h = library().grok_model_hparams(self._live()).contents
        return {f: getattr(h, f) for f, _ in _HParams._fields_}

    @property
    def n_vocab(self):
        return library().grok_model_hparams(self._live()).contents.n_vocab

    def _tokenizer(self):
        self._live()
        if not self._tok:
            raise GrokError(f"{self.path} has no vocabulary (tokenizer.ggml.*)")
        return self._tok

    def tokenize(self, text, add_special=False):
        """Token ids of text (str or bytes), as sentencepiece encodes it. add_special adds
        BOS/EOS as the file's tokenizer asks."""
        lib, t = library(), self._tokenizer()
        b = text.encode() if isinstance(text, str) else bytes(text)
        cap = len(b) + 8
        while True:
            out = (ctypes.c_int32 * cap)()
            n = lib.grok_tokenize_into(t, b, len(b), bool(add_special), out, cap)
            if n < 0:
                raise GrokError("out of memory")
            if n <= cap:
                return list(out[:n])
            cap = n

    def detokenize(self, ids):
        """The text of ids (the inverse of tokenize on valid UTF-8)."""
        lib, t = library(), self._tokenizer()
        a, p = _ids(ids)
        cap = 4 * len(a) + 16
        while True:
            out = ctypes.create_string_buffer(cap)
            n = lib.grok_detokenize_into(t, p, len(a), out, cap)
            if n < 0:
                raise GrokError("out of memory")
            if n < cap:
                return out.raw[:n].decode(errors="replace")
            cap = n + 1

    def _context(self):
        err = ctypes.create_string_buffer(ERR_SIZE)
        c = library().grok_context_create(self._live(), ctypes.byref(self._cp), err, ERR_SIZE)
        if not c:
            raise GrokError(err.value.decode(errors="replace"))
        return c

    def logits(self, ids):
        """Logits at every position of ids (no BOS added), a float32 array [len(ids), n_vocab]."""
        lib = library()
        a, p = _ids(ids)
        if len(a) == 0:
            raise ValueError("no token ids given")
        out = np.empty((len(a), self.n_vocab), dtype=np.float32)
        c = self._context()
        try:
            err = ctypes.create_string_buffer(ERR_SIZE)
            rc = lib.grok_decode(c, p, len(a), out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), err, ERR_SIZE)
            if rc != 0:
                raise GrokError(err.value.decode(errors="replace"), rc)
        finally:
            lib.grok_context_free(c)
        return out

    def _grammar(self, grammar, json_schema):
        """A grok_grammar for GBNF text or a JSON Schema (a dict or its JSON text)."""
        lib = library()
        if grammar is not None and json_schema is not None:
            raise TypeError("give grammar or json_schema, not both")
        err = ctypes.create_string_buffer(ERR_SIZE)
        if not self._gvocab:
            self._gvocab = lib.grok_grammar_vocab_create(self._tokenizer(), err, ERR_SIZE)
            if not self._gvocab:
                raise GrokError(err.value.decode(errors="replace"))
        where = "grammar"
        if json_schema is not None:
            js = (json_schema if isinstance(json_schema, (str, bytes)) else json.dumps(json_schema))
            js = js.encode() if isinstance(js, str) else js
            p = lib.grok_json_schema_to_gbnf(js, len(js), err, ERR_SIZE)
            if not p:
                raise GrokError("json_schema: " + err.value.decode(errors="replace"))
            text = ctypes.string_at(p)
            lib.c_free(p)
            where = "the grammar made from json_schema"
        else:
            text = grammar.encode() if isinstance(grammar, str) else bytes(grammar)
        g = lib.grok_grammar_parse(text, len(text), None, self._gvocab, err, ERR_SIZE)
        if not g:
            raise GrokError(f"{where}: " + err.value.decode(errors="replace"))
        return g

    def generate(self, prompt, max_tokens=64, stop=(), sampler=None, grammar=None, json_schema=None, **sampling):
        """Yields the completion of prompt (str, or a list of ids) piece by piece, each a str of
        whole UTF-8 characters, until max_tokens, EOS, a stop string (not included) or the
        context's end. Sampling settings come as a SamplerParams or as keywords
        (temperature=0.8, top_p=0.95, seed=1, ...). grammar (GBNF text, llama.cpp's format)
        or json_schema (a dict or JSON text) constrains every token as grok run's --grammar and
        --json-schema do; the text then ends when the grammar is complete."""
        lib, t = library(), self._tokenizer()
        sp = sampler if sampler is not None else SamplerParams(**sampling)
        if sampler is not None and sampling:
            raise TypeError("give a SamplerParams or keywords, not both")
        g = None if grammar is None and json_schema is None else self._grammar(grammar, json_schema)
        try:
            yield from self._generate(prompt, max_tokens, stop, sp, g)
        finally:
            if g:
                lib.grok_grammar_free(g)

    def _generate(self, prompt, max_tokens, stop, sp, g):
        lib, t = library(), self._tokenizer()
        # as grok run: BOS/EOS as the file asks
        ids = self.tokenize(prompt, True) if isinstance(prompt, (str, bytes)) else [int(i) for i in prompt]
        if not ids:
            raise ValueError("empty prompt")
        stops = [s.encode() for s in ([stop] if isinstance(stop, str) else stop)]
        c_stops = (ctypes.c_char_p * max(1, len(stops)))(*stops)
        c = self._context()
        s = lib.grok_sampler_create(ctypes.byref(sp._c()), self.n_vocab)
        gm = lib.grok_matcher_create(g) if g else None
        mask = (ctypes.c_uint64 * ((self.n_vocab + 63) // 64))() if g else None
        try:
            if g and not gm:
                raise GrokError("out of memory")
            err = ctypes.create_string_buffer(ERR_SIZE)
            hist = (ctypes.c_int32 * (len(ids) + max_tokens + 1))(*ids)
            n_hist = len(ids)
            rc = lib.grok_decode(c, hist, n_hist, None, err, ERR_SIZE)
            if rc != 0:
                raise GrokError(err.value.decode(errors="replace"), rc)
            eos = lib.grok_tokenizer_eos(t)
            ds = _DetokStream()
            lib.grok_detok_stream_init(ctypes.byref(ds), False)
            buf = ctypes.create_string_buffer(512)
            text, sent = b"", 0  # text not yet yielded is text[sent:]
            partial = ctypes.c_size_t(0)
            for _ in range(max_tokens):
                if gm:  # as grok run: draw among the tokens the grammar allows
                    if lib.grok_matcher_is_done(gm):
                        break
                    allowed = lib.grok_matcher_fill_mask(gm, mask)
                    if allowed < 0:
                        raise GrokError("the grammar has too many ways to go on here (or out of memory)")
                    tok = lib.grok_sampler_sample_masked(s, lib.grok_context_logits(c), mask, hist, n_hist) \
                        if allowed > 0 else eos
                    if tok != eos and lib.grok_matcher_accept_token(gm, tok) != 0:
                        tok = eos
                else:
                    tok = lib.grok_sampler_sample(s, lib.grok_context_logits(c), hist, n_hist)
                if tok == eos:
                    break
                n = lib.grok_detok_stream_push(ctypes.byref(ds), t, tok, buf, len(buf))
                text += buf.raw[:n]
                if stops:
                    at = lib.grok_find_stop(text, len(text), c_stops, len(stops), ctypes.byref(partial))
                    if at >= 0:
                        if at > sent:
                            yield text[sent:at].decode(errors="replace")
                        return
                    hold = partial.value
                else:
                    hold = 0
                if len(text) - hold > sent:
                    yield text[sent:len(text) - hold].decode(errors="replace")
                    sent = len(text) - hold
                hist[n_hist] = tok
                n_hist += 1
                if lib.grok_context_pos(c) >= lib.grok_context_n_ctx(c):
                    break
                rc = lib.grok_decode(c, ctypes.byref(ctypes.c_int32(tok)), 1, None, err, ERR_SIZE)
                if rc != 0:
                    raise GrokError(err.value.decode(errors="replace"), rc)
            n = lib.grok_detok_stream_flush(ctypes.byref(ds), buf, len(buf))
            text += buf.raw[:n]
            if len(text) > sent:
                yield text[sent:].decode(errors="replace")
        finally:
            if gm:
                lib.grok_matcher_free(gm)
            lib.grok_sampler_free(s)
            lib.grok_context_free(c)
