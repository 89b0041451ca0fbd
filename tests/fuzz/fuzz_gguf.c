/*
 * fuzz_gguf.c - GGUF files: open (header, every key and value, tensor
 * table, offsets and sizes against the file), then the model loader (hyper-
 * parameters, shapes and types, the tokenizer keys) and, for a model small
 * enough, a context and a decode of two tokens through every kernel the
 * file's types select. Whatever the reader accepts must be safe to read in
 * full: every key through every getter, every tensor's bytes.
 */
#include "fuzz.h"
#include "grok.h"

static grok_threadpool *g_pool;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_pool = grok_threadpool_create(1);
    return 0;
}

/* Reads every key through the getters meant for it and the others. */
static void walk_kvs(const grok_gguf_file *f) {
    for (int64_t i = 0; i < grok_gguf_n_kv(f); i++) {
        const char *key = grok_gguf_kv_key(f, i);
        FUZZ_CHECK(key != NULL, "kv %lld has no key", (long long)i);
        FUZZ_CHECK(grok_gguf_find_kv(f, key) >= 0, "key '%s' not found by name", key);
        uint64_t u;
        int64_t s;
        double d;
        bool b;
        const char *str;
        size_t len;
        (void)grok_gguf_get_u64(f, key, &u);
        (void)grok_gguf_get_i64(f, key, &s);
        (void)grok_gguf_get_f64(f, key, &d);
        (void)grok_gguf_get_bool(f, key, &b);
        if (grok_gguf_get_str(f, key, &str, &len) == 0) FUZZ_CHECK(strlen(str) <= len, "string length");
        grok_gguf_value_type et;
        uint64_t n;
        if (grok_gguf_get_arr(f, key, &et, &n) == 0) {
            if (et == GROK_GGUF_TYPE_STRING) {
                for (uint64_t k = 0; k < n && k < 64; k++) (void)grok_gguf_get_arr_str(f, key, k, &len);
                if (n) (void)grok_gguf_get_arr_str(f, key, n - 1, &len);
                (void)grok_gguf_get_arr_str(f, key, n, &len); /* one past the end: NULL */
            } else {
                const uint8_t *a = grok_gguf_get_arr_data(f, key);
                size_t el =
                    et == GROK_GGUF_TYPE_UINT8 || et == GROK_GGUF_TYPE_INT8 || et == GROK_GGUF_TYPE_BOOL ? 1
                    : et == GROK_GGUF_TYPE_UINT16 || et == GROK_GGUF_TYPE_INT16                          ? 2
                    : et == GROK_GGUF_TYPE_UINT32 || et == GROK_GGUF_TYPE_INT32 ||
                            et == GROK_GGUF_TYPE_FLOAT32
                        ? 4
                        : 8;
                volatile uint8_t sink = 0;
                if (a && n) sink ^= a[0], sink ^= a[n * el - 1];
                (void)sink;
            }
        }
        (void)grok_gguf_value_type_name(grok_gguf_kv_type(f, i));
    }
}

static void walk_tensors(const grok_gguf_file *f) {
    for (int64_t i = 0; i < grok_gguf_n_tensors(f); i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        FUZZ_CHECK(t && t->name && strlen(t->name) <= GROK_GGUF_MAX_NAME, "tensor %lld", (long long)i);
        FUZZ_CHECK(grok_gguf_find_tensor(f, t->name) == t, "tensor '%s' not found by name", t->name);
        const grok_type_traits *tr = grok_type_get_traits(t->type);
        FUZZ_CHECK(tr && tr->block_size > 0, "tensor '%s' has unknown type %u", t->name, t->type);
        /* the bytes must lie in the map: touch the first and last */
        const volatile uint8_t *p = t->data;
        if (t->nbytes) {
            volatile uint8_t sink = p[0];
            sink ^= p[t->nbytes - 1];
            (void)sink;
        }
    }
}

static void decode(const grok_model *m) {
    const grok_hparams *hp = grok_model_hparams(m);
    /* a few milliseconds at most: small shapes only (the file's size
     * already bounds the weights; these bound the scratch) */
    if (hp->d_model > 1024 || hp->n_layers > 8 || hp->n_vocab > 8192 || hp->n_ff > 2048 ||
        hp->n_heads * hp->head_dim > 2048 || hp->n_experts > 64)
        return;
    char err[GROK_ERR_SIZE] = "";
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = 4;
    cp.pool = g_pool;
    cp.n_batch = 2;
    grok_context *ctx = grok_context_create(m, &cp, err, sizeof err);
    if (!ctx) {
        fuzz_note("context", err);
        FUZZ_CHECK(err[0], "context refused without a message");
        return;
    }
    int32_t toks[3] = {0, (int32_t)(hp->n_vocab - 1), (int32_t)(hp->n_vocab / 2)};
    err[0] = '\0';
    int rc = grok_decode(ctx, toks, 2, NULL, err, sizeof err);
    if (rc != 0) FUZZ_CHECK(err[0], "decode failed (%d) without a message", rc);
    if (rc == 0) {
        err[0] = '\0';
        rc = grok_decode(ctx, toks + 2, 1, NULL, err, sizeof err);
        if (rc != 0) FUZZ_CHECK(err[0], "decode failed (%d) without a message", rc);
    }
    grok_context_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    char err[GROK_ERR_SIZE] = "";
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    if (!f) {
        fuzz_note("open", err);
        FUZZ_CHECK(err[0], "open refused the file without a message");
        return 0;
    }
    walk_kvs(f);
    walk_tensors(f);
    grok_gguf_close(f);

    err[0] = '\0';
    grok_model *m = grok_model_load(path, err, sizeof err);
    if (!m) {
        fuzz_note("load", err);
        FUZZ_CHECK(err[0], "model load refused the file without a message");
        return 0;
    }
    const grok_tokenizer *tok = grok_model_tokenizer(m);
    if (tok) {
        static const char text[] = "Hello  world\n\t 12345 \xe2\x96\x81 \xf0\x9f\x98\x80 \xff";
        size_t n = 0, len = 0;
        int32_t *ids = grok_tokenize(tok, text, sizeof text - 1, true, &n);
        FUZZ_CHECK(ids != NULL, "tokenize failed");
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(ids[i] >= 0 && ids[i] < grok_tokenizer_n_vocab(tok), "id %d out of range", ids[i]);
        free(grok_detokenize(tok, ids, n, &len));
        free(ids);
    }
    decode(m);
    grok_model_free(m);
    return 0;
}
