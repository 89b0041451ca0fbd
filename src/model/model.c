/*
 * model.c - binds a Grok-architecture GGUF file to the model structure.
 *
 * Hyperparameters come from the grok.* keys (Grok-1's constants where the
 * optional multiplier keys are absent, as llama.cpp does); every required
 * tensor is looked up by llama.cpp's name and checked for shape and type
 * before any math runs, so a bad file fails here with a message and never
 * inside the forward pass. Weights are used where they lie in the memory
 * map; only the small norm vectors are copied to f32.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gguf/gguf_internal.h"
#include "model/model.h"

#define ERRF(...) (snprintf(err, err_size, __VA_ARGS__), -1)

grok_hparams grok_hparams_grok1(void) {
    grok_hparams hp = {
        .n_vocab = 131072,
        .d_model = 6144,
        .n_layers = 64,
        .n_heads = 48,
        .n_kv_heads = 8,
        .head_dim = 128,
        .n_ff = 32768,
        .n_experts = 8,
        .n_experts_used = 2,
        .n_ctx_train = 8192,
        .rope_base = 10000.0f,
        .norm_eps = 1e-5f,
        .embedding_scale = 78.38367176906169f,
        .logit_scale = 0.5773502691896257f,
        .attn_scale = 0.08838834764831845f,
        .attn_softcap = 30.0f,
        .pad_id = 0,
    };
    return hp;
}

/* Parameters of one layer's attention (q, k, v, o) and its four norms. */
static int64_t attn_params(const grok_hparams *hp) {
    int64_t q = hp->n_heads * hp->head_dim, kv = hp->n_kv_heads * hp->head_dim;
    return hp->d_model * (2 * q + 2 * kv);
}
static int64_t expert_params(const grok_hparams *hp) { return 3 * hp->d_model * hp->n_ff; }

int64_t grok_hparams_n_params(const grok_hparams *hp) {
    int64_t layer =
        attn_params(hp) + 4 * hp->d_model + hp->d_model * hp->n_experts + hp->n_experts * expert_params(hp);
    return hp->n_vocab * hp->d_model + hp->n_layers * layer + hp->d_model;
}

int64_t grok_hparams_n_params_active(const grok_hparams *hp) {
    int64_t layer = attn_params(hp) + 4 * hp->d_model + hp->d_model * hp->n_experts +
                    hp->n_experts_used * expert_params(hp);
    /* the output head: every logit reads the whole (tied) matrix */
    return hp->n_vocab * hp->d_model + hp->n_layers * layer + hp->d_model;
}

/* ---- hyperparameters <-> GGUF ---- */

static int get_i64_req(const grok_gguf_file *f, const char *key, int64_t *out, char *err, size_t err_size) {
    int rc = grok_gguf_get_i64(f, key, out);
    if (rc == -1) return ERRF("%s: required key '%s' is missing", grok_gguf_path(f), key);
    if (rc != 0) return ERRF("%s: key '%s' is not an integer", grok_gguf_path(f), key);
    return 0;
}

static int get_f32_opt(const grok_gguf_file *f, const char *key, float *out, char *err, size_t err_size) {
    double v;
    int rc = grok_gguf_get_f64(f, key, &v);
    if (rc == -1) return 0; /* keep the default */
    if (rc != 0 || !isfinite(v)) return ERRF("%s: key '%s' is not a finite number", grok_gguf_path(f), key);
    *out = (float)v;
    return 0;
}

int grok_hparams_from_gguf(const grok_gguf_file *f, grok_hparams *hp, char *err, size_t err_size) {
    const char *arch;
    size_t arch_len;
    if (grok_gguf_get_str(f, "general.architecture", &arch, &arch_len) != 0)
        return ERRF("%s: key 'general.architecture' is missing or not a string", grok_gguf_path(f));
    if (strcmp(arch, "grok") != 0)
        return ERRF("%s: general.architecture is '%s'; only 'grok' models are supported", grok_gguf_path(f),
                    arch);
    *hp = grok_hparams_grok1();
    if (get_i64_req(f, "grok.embedding_length", &hp->d_model, err, err_size) ||
        get_i64_req(f, "grok.block_count", &hp->n_layers, err, err_size) ||
        get_i64_req(f, "grok.feed_forward_length", &hp->n_ff, err, err_size) ||
        get_i64_req(f, "grok.attention.head_count", &hp->n_heads, err, err_size) ||
        get_i64_req(f, "grok.expert_count", &hp->n_experts, err, err_size) ||
        get_i64_req(f, "grok.expert_used_count", &hp->n_experts_used, err, err_size) ||
        get_i64_req(f, "grok.context_length", &hp->n_ctx_train, err, err_size))
        return -1;
    hp->n_kv_heads = hp->n_heads;
    if (grok_gguf_get_i64(f, "grok.attention.head_count_kv", &hp->n_kv_heads) == -2)
        return ERRF("%s: key 'grok.attention.head_count_kv' is not an integer", grok_gguf_path(f));
    hp->head_dim = hp->n_heads > 0 ? hp->d_model / hp->n_heads : 0;
    if (grok_gguf_get_i64(f, "grok.attention.key_length", &hp->head_dim) == -2)
        return ERRF("%s: key 'grok.attention.key_length' is not an integer", grok_gguf_path(f));
    if (get_f32_opt(f, "grok.attention.layer_norm_rms_epsilon", &hp->norm_eps, err, err_size) ||
        get_f32_opt(f, "grok.rope.freq_base", &hp->rope_base, err, err_size) ||
        get_f32_opt(f, "grok.embedding_scale", &hp->embedding_scale, err, err_size) ||
        get_f32_opt(f, "grok.logit_scale", &hp->logit_scale, err, err_size) ||
        get_f32_opt(f, "grok.attention.output_scale", &hp->attn_scale, err, err_size) ||
        get_f32_opt(f, "grok.attn_logit_softcapping", &hp->attn_softcap, err, err_size))
        return -1;
    /* The vocabulary size is the embedding's row count (checked at binding). */
    const grok_gguf_tensor *te = grok_gguf_find_tensor(f, GROK_TN_TOKEN_EMBD);
    hp->n_vocab = te ? te->ne[1] : 0;
    int64_t pad = -1;
    hp->pad_id = -1;
    if (grok_gguf_get_i64(f, "tokenizer.ggml.padding_token_id", &pad) == 0 && pad >= 0 && pad < hp->n_vocab)
        hp->pad_id = (int32_t)pad;
    return grok_hparams_validate(hp, grok_gguf_path(f), err, err_size);
}

int grok_hparams_validate(const grok_hparams *hp, const char *where, char *err, size_t err_size) {
    const int64_t LIM = (int64_t)1 << 24; /* no dimension of a real model comes near */
#define CHECK_DIM(field, lo)                                                                            \
    if (hp->field < (lo) || hp->field > LIM)                                                            \
        return ERRF("%s: %s = %" PRId64 " is out of range [%d, %" PRId64 "]", where, #field, hp->field, \
                    (int)(lo), LIM);
    CHECK_DIM(n_vocab, 1)
    CHECK_DIM(d_model, 1)
    CHECK_DIM(n_layers, 1)
    CHECK_DIM(n_heads, 1)
    CHECK_DIM(n_kv_heads, 1)
    CHECK_DIM(head_dim, 2)
    CHECK_DIM(n_ff, 1)
    CHECK_DIM(n_experts, 1)
    CHECK_DIM(n_experts_used, 1)
    CHECK_DIM(n_ctx_train, 1)
#undef CHECK_DIM
    if (hp->n_heads % hp->n_kv_heads != 0)
        return ERRF("%s: head_count %" PRId64 " is not a multiple of head_count_kv %" PRId64, where,
                    hp->n_heads, hp->n_kv_heads);
    if (hp->head_dim % 2 != 0)
        return ERRF("%s: head dimension %" PRId64 " must be even for RoPE", where, hp->head_dim);
    if (hp->n_experts_used > hp->n_experts)
        return ERRF("%s: expert_used_count %" PRId64 " exceeds expert_count %" PRId64, where,
                    hp->n_experts_used, hp->n_experts);
    if (!(hp->norm_eps > 0) || !(hp->rope_base > 0) || !(hp->attn_softcap > 0) ||
        !isfinite(hp->embedding_scale) || !isfinite(hp->logit_scale) || !isfinite(hp->attn_scale))
        return ERRF("%s: eps, rope base and softcap must be positive and the multipliers finite", where);
    return 0;
}

int grok_hparams_to_gguf(const grok_hparams *hp, grok_gguf_writer *w) {
    int rc = 0;
    rc |= grok_gguf_writer_set_str(w, "general.architecture", "grok");
    rc |= grok_gguf_writer_set_u32(w, "grok.context_length", (uint32_t)hp->n_ctx_train);
    rc |= grok_gguf_writer_set_u32(w, "grok.embedding_length", (uint32_t)hp->d_model);
    rc |= grok_gguf_writer_set_u32(w, "grok.block_count", (uint32_t)hp->n_layers);
    rc |= grok_gguf_writer_set_u32(w, "grok.feed_forward_length", (uint32_t)hp->n_ff);
    rc |= grok_gguf_writer_set_u32(w, "grok.attention.head_count", (uint32_t)hp->n_heads);
    rc |= grok_gguf_writer_set_u32(w, "grok.attention.head_count_kv", (uint32_t)hp->n_kv_heads);
    rc |= grok_gguf_writer_set_u32(w, "grok.attention.key_length", (uint32_t)hp->head_dim);
    rc |= grok_gguf_writer_set_u32(w, "grok.attention.value_length", (uint32_t)hp->head_dim);
    rc |= grok_gguf_writer_set_f32(w, "grok.attention.layer_norm_rms_epsilon", hp->norm_eps);
    rc |= grok_gguf_writer_set_f32(w, "grok.rope.freq_base", hp->rope_base);
    rc |= grok_gguf_writer_set_u32(w, "grok.expert_count", (uint32_t)hp->n_experts);
    rc |= grok_gguf_writer_set_u32(w, "grok.expert_used_count", (uint32_t)hp->n_experts_used);
    rc |= grok_gguf_writer_set_u32(w, "grok.vocab_size", (uint32_t)hp->n_vocab);
    rc |= grok_gguf_writer_set_f32(w, "grok.embedding_scale", hp->embedding_scale);
    rc |= grok_gguf_writer_set_f32(w, "grok.logit_scale", hp->logit_scale);
    rc |= grok_gguf_writer_set_f32(w, "grok.attention.output_scale", hp->attn_scale);
    rc |= grok_gguf_writer_set_f32(w, "grok.attn_logit_softcapping", hp->attn_softcap);
    return rc ? -1 : 0;
}

void grok_tensor_name(char *buf, size_t size, int64_t il, const char *what) {
    snprintf(buf, size, "blk.%" PRId64 ".%s.weight", il, what);
}

/* ---- binding tensors ---- */

/* Finds name and checks its shape is exactly ne[0..n_dims) and its type
 * computable. */
static const grok_gguf_tensor *need_tensor(const grok_gguf_file *f, const char *name, int32_t n_dims,
                                           const int64_t *ne, char *err, size_t err_size) {
    const grok_gguf_tensor *t = grok_gguf_find_tensor(f, name);
    if (!t) {
        snprintf(err, err_size, "%s: required tensor '%s' is missing", grok_gguf_path(f), name);
        return NULL;
    }
    bool ok = t->n_dims <= n_dims || (t->n_dims == n_dims + 1 && t->ne[n_dims] == 1);
    for (int d = 0; d < GROK_GGUF_MAX_DIMS && ok; d++) ok = t->ne[d] == (d < n_dims ? ne[d] : 1);
    if (!ok) {
        char want[96] = "", got[96] = "";
        for (int d = 0; d < n_dims; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%" PRId64, d ? ", " : "", ne[d]);
        for (int d = 0; d < t->n_dims; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRId64, d ? ", " : "", t->ne[d]);
        snprintf(err, err_size, "%s: tensor '%s' has shape [%s], the hyperparameters need [%s]",
                 grok_gguf_path(f), name, got, want);
        return NULL;
    }
    if (!grok_kernels_get(t->type)) {
        const grok_type_traits *tr = grok_type_get_traits(t->type);
        snprintf(err, err_size, "%s: tensor '%s' has type %s, which this build cannot compute with",
                 grok_gguf_path(f), name, tr ? tr->name : "?");
        return NULL;
    }
    return t;
}

static int bind_mat(const grok_gguf_file *f, const char *name, int64_t rows, int64_t cols, int64_t n_mats,
                    grok_mat *m, size_t *stride, char *err, size_t err_size) {
    int64_t ne[3] = {cols, rows, n_mats};
    const grok_gguf_tensor *t = need_tensor(f, name, n_mats > 1 || stride ? 3 : 2, ne, err, err_size);
    if (!t) return -1;
    m->data = t->data;
    m->type = (grok_type)t->type;
    m->rows = rows;
    m->cols = cols;
    m->row_bytes = (size_t)grok_type_row_size(t->type, cols);
    if (stride) *stride = m->row_bytes * (size_t)rows;
    return 0;
}

/* The name of the first per-layer tensor the file lacks, searched only as
 * far as the file's tensors could reach (a short file lacks one early). */
static const char *first_missing_layer_tensor(const grok_gguf_file *f, int64_t n_layers, char *n,
                                              size_t size) {
    static const char *const plain[] = {"attn_norm",   "attn_output_norm", "ffn_norm", "layer_output_norm",
                                        "attn_q",      "attn_k",           "attn_v",   "attn_output",
                                        "ffn_gate_inp"};
    static const char *const experts[] = {"ffn_gate", "ffn_up", "ffn_down"};
    char old[96];
    for (int64_t il = 0; il < n_layers; il++) {
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
            grok_tensor_name(n, size, il, plain[i]);
            if (!grok_gguf_find_tensor(f, n)) return n;
        }
        for (size_t i = 0; i < sizeof experts / sizeof experts[0]; i++) {
            snprintf(n, size, "blk.%" PRId64 ".%s_exps.weight", il, experts[i]);
            snprintf(old, sizeof old, "blk.%" PRId64 ".%s.0.weight", il, experts[i]);
            if (!grok_gguf_find_tensor(f, n) && !grok_gguf_find_tensor(f, old)) return n;
        }
    }
    return "?"; /* cannot be: fewer tensors than 12 a layer leave a layer short */
}

/* The experts of one layer: one 3-D tensor blk.N.WHAT_exps.weight, or, in
 * files written before llama.cpp merged the experts (its PR #6387, April
 * 2024; Arki05's Grok-1 GGUFs of March 2024), one 2-D tensor per expert,
 * blk.N.WHAT.E.weight. Those are used in place: as the merged tensor when
 * they lie back to back in the map, else through a table of where each one
 * lies (*xdata). Not copied (llama.cpp copies them into one buffer): a copy
 * would be anonymous memory the size of the experts, which the memory plan
 * could neither evict nor leave out. Such tensors may differ in type from
 * expert to expert (grok quantize --expert-aware writes them so; llama.cpp
 * cannot read that): *xtype then lists each one's, and w carries the
 * largest one's type and size. */
static int bind_experts(grok_model *m, const grok_gguf_file *f, int64_t il, const char *what, int64_t rows,
                        int64_t cols, grok_mat *w, size_t *stride, const uint8_t ***xdata,
                        const grok_type **xtype, char *err, size_t err_size) {
    const int64_t E = m->hp.n_experts;
    char n[96];
    snprintf(n, sizeof n, "blk.%" PRId64 ".%s_exps.weight", il, what);
    char old[96];
    snprintf(old, sizeof old, "blk.%" PRId64 ".%s.0.weight", il, what);
    *xdata = NULL;
    *xtype = NULL;
    if (grok_gguf_find_tensor(f, n) || !grok_gguf_find_tensor(f, old))
        return bind_mat(f, n, rows, cols, E, w, stride, err, err_size);
    const grok_gguf_tensor *t0 = NULL, *big = NULL;
    bool in_place = true, mixed = false;
    for (int64_t e = 0; e < E; e++) {
        snprintf(old, sizeof old, "blk.%" PRId64 ".%s.%" PRId64 ".weight", il, what, e);
        const grok_gguf_tensor *t = need_tensor(f, old, 2, (int64_t[]){cols, rows}, err, err_size);
        if (!t) return -1;
        if (!t0) t0 = big = t;
        if (t->nbytes > big->nbytes) big = t;
        mixed = mixed || t->type != t0->type;
        in_place = in_place && (const uint8_t *)t->data == (const uint8_t *)t0->data + (size_t)e * t0->nbytes;
    }
    in_place = in_place && !mixed;
    w->type = (grok_type)big->type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = (size_t)grok_type_row_size(big->type, cols);
    w->data = t0->data;
    *stride = big->nbytes;
    if (in_place) return 0;
    void **owned = realloc(m->owned, sizeof(void *) * (size_t)(m->n_owned + 2));
    if (owned) m->owned = owned;
    const uint8_t **tab = owned ? malloc(sizeof *tab * (size_t)E) : NULL;
    grok_type *types = tab && mixed ? malloc(sizeof *types * (size_t)E) : NULL;
    if (!tab || (mixed && !types)) {
        free(tab);
        snprintf(err, err_size,
                 "%s: out of memory for the table of the %" PRId64 " experts of blk.%" PRId64 ".%s",
                 grok_gguf_path(f), E, il, what);
        return -1;
    }
    m->owned[m->n_owned++] = (void *)tab;
    if (types) m->owned[m->n_owned++] = (void *)types;
    for (int64_t e = 0; e < E; e++) {
        snprintf(old, sizeof old, "blk.%" PRId64 ".%s.%" PRId64 ".weight", il, what, e);
        const grok_gguf_tensor *t = grok_gguf_find_tensor(f, old);
        tab[e] = t->data;
        if (types) types[e] = (grok_type)t->type;
    }
    *xdata = tab;
    *xtype = types;
    return 0;
}

static float *bind_norm(const grok_gguf_file *f, const char *name, int64_t n, char *err, size_t err_size) {
    const grok_gguf_tensor *t = need_tensor(f, name, 1, &n, err, err_size);
    if (!t) return NULL;
    float *v = malloc((size_t)n * sizeof(float));
    if (!v) {
        snprintf(err, err_size, "%s: out of memory for '%s'", grok_gguf_path(f), name);
        return NULL;
    }
    grok_kernels_get(t->type)->to_f32(t->data, v, n);
    return v;
}

void grok_model_free(grok_model *m) {
    if (!m) return;
    /* first: the expert cache's reader threads read the layers */
    grok_xcache_free(m->xc);
    m->xc = NULL;
    if (m->layers) {
        for (int64_t il = 0; il < m->hp.n_layers; il++) {
            grok_layer *L = &m->layers[il];
            free(L->attn_norm);
            free(L->attn_out_norm);
            free(L->ffn_norm);
            free(L->layer_out_norm);
        }
        free(m->layers);
    }
    free(m->output_norm);
    grok_route_trace_free(m);
    grok_model_unpack(m);
    grok_packfile_close(m->pf);
    for (int64_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    grok_tokenizer_free(m->tok);
    grok_gguf_close(m->file);
    free(m);
}

grok_model_params grok_model_default_params(void) {
    grok_model_params p = {
        .pack = true, .kernels = GROK_KERNELS_DEFAULT, .memory = grok_memory_default_params()};
    return p;
}

grok_dist grok_model_share(const grok_model *m) {
    if (m->dist) return *m->dist;
    const grok_hparams *hp = &m->hp;
    grok_dist d = {.rank = 0,
                   .n_ranks = 1,
                   .l0 = 0,
                   .l1 = hp->n_layers,
                   .kvh0 = 0,
                   .kvh1 = hp->n_kv_heads,
                   .e0 = 0,
                   .e1 = hp->n_experts,
                   .f0 = 0,
                   .f1 = hp->n_ff,
                   .v0 = 0,
                   .v1 = hp->n_vocab};
    return d;
}

grok_kernel_mode grok_model_kernel_mode(const grok_model *m) {
    const grok_kernel_mode env = grok_kernels_env_mode();
    return env != GROK_KERNELS_DEFAULT ? env : m->params.kernels;
}

const char *grok_model_isa(const grok_model *m) { return grok_isa_name(m->isa); }

/* Every weight matrix takes the model's level, so each product, packing
 * decision and tile chosen for it (kernels read w->isa) is the model's,
 * whatever other models of the process use. */
static void stamp_isa(grok_model *m) {
    m->token_embd.isa = m->output.isa = m->isa;
    for (int64_t il = 0; il < m->hp.n_layers; il++) {
        grok_layer *L = &m->layers[il];
        grok_mat *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->router, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) w[i]->isa = m->isa;
    }
}

grok_model *grok_model_load(const char *path, char *err, size_t err_size) {
    return grok_model_load_params(path, NULL, err, err_size);
}

grok_model *grok_model_load_params(const char *path, const grok_model_params *p, char *err, size_t err_size) {
    grok_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_size, "%s: out of memory", path);
        return NULL;
    }
    m->params = p ? *p : grok_model_default_params();
    if (m->params.kernels < GROK_KERNELS_DEFAULT || m->params.kernels > GROK_KERNELS_REFERENCE) {
        snprintf(err, err_size, "%s: kernel mode %d is not one of grok_kernel_mode's", path,
                 (int)m->params.kernels);
        free(m);
        return NULL;
    }
    if (grok_memory_params_check(&m->params.memory, err, err_size)) {
        free(m);
        return NULL;
    }
    char isa_err[128];
    m->isa = grok_isa_for_model(m->params.isa, isa_err, sizeof isa_err);
    if (m->isa == GROK_ISA_COUNT) {
        snprintf(err, err_size, "%s: %s", path, isa_err);
        free(m);
        return NULL;
    }
    m->params.isa = grok_isa_name(m->isa); /* static: the caller's string need not outlive the call */
    m->file = grok_gguf_open(path, err, err_size);
    if (!m->file) goto fail;
    const grok_gguf_file *f = m->file;
    /* Binding touches a few pages between large tensors (norms): without
     * this, each fault reads the device's read-ahead window around it
     * (8 MiB here), which for a model larger than memory is most of a
     * cgroup's worth of page cache read for nothing. The plan sets the
     * advice the weights get (memplan.c). */
    grok_gguf_advise(f, NULL, 0, MADV_RANDOM);
    if (grok_hparams_from_gguf(f, &m->hp, err, err_size)) goto fail;
    const grok_hparams *hp = &m->hp;
    const int64_t d = hp->d_model, q = hp->n_heads * hp->head_dim, kv = hp->n_kv_heads * hp->head_dim;

    if (bind_mat(f, GROK_TN_TOKEN_EMBD, hp->n_vocab, d, 1, &m->token_embd, NULL, err, err_size)) goto fail;
    m->tied = grok_gguf_find_tensor(f, GROK_TN_OUTPUT) == NULL;
    if (m->tied)
        m->output = m->token_embd;
    else if (bind_mat(f, GROK_TN_OUTPUT, hp->n_vocab, d, 1, &m->output, NULL, err, err_size))
        goto fail;
    if (!(m->output_norm = bind_norm(f, GROK_TN_OUTPUT_NORM, d, err, err_size))) goto fail;

    /* each layer has at least 12 tensors: a block_count the file cannot
     * back is refused before its per-layer table is allocated (a fuzzed
     * count made that table gigabytes), naming the first missing tensor */
    const int64_t need = 2 + 12 * hp->n_layers;
    if (grok_gguf_n_tensors(f) < need) {
        char name[96];
        const char *missing = first_missing_layer_tensor(f, hp->n_layers, name, sizeof name);
        snprintf(err, err_size,
                 "%s: required tensor '%s' is missing (block_count %" PRId64 " needs at least %" PRId64
                 " tensors; the file has %" PRId64 ")",
                 path, missing, hp->n_layers, need, grok_gguf_n_tensors(f));
        goto fail;
    }
    m->layers = calloc((size_t)hp->n_layers, sizeof(grok_layer));
    if (!m->layers) {
        snprintf(err, err_size, "%s: out of memory", path);
        goto fail;
    }
    for (int64_t il = 0; il < hp->n_layers; il++) {
        grok_layer *L = &m->layers[il];
        char n[96];
#define NAME(what) (grok_tensor_name(n, sizeof n, il, what), n)
        if (!(L->attn_norm = bind_norm(f, NAME("attn_norm"), d, err, err_size)) ||
            !(L->attn_out_norm = bind_norm(f, NAME("attn_output_norm"), d, err, err_size)) ||
            !(L->ffn_norm = bind_norm(f, NAME("ffn_norm"), d, err, err_size)) ||
            !(L->layer_out_norm = bind_norm(f, NAME("layer_output_norm"), d, err, err_size)))
            goto fail;
        if (bind_mat(f, NAME("attn_q"), q, d, 1, &L->wq, NULL, err, err_size) ||
            bind_mat(f, NAME("attn_k"), kv, d, 1, &L->wk, NULL, err, err_size) ||
            bind_mat(f, NAME("attn_v"), kv, d, 1, &L->wv, NULL, err, err_size) ||
            bind_mat(f, NAME("attn_output"), d, q, 1, &L->wo, NULL, err, err_size) ||
            bind_mat(f, NAME("ffn_gate_inp"), hp->n_experts, d, 1, &L->router, NULL, err, err_size) ||
            bind_experts(m, f, il, "ffn_gate", hp->n_ff, d, &L->gate, &L->gate_stride, &L->xdata[0],
                         &L->xtype[0], err, err_size) ||
            bind_experts(m, f, il, "ffn_up", hp->n_ff, d, &L->up, &L->up_stride, &L->xdata[1], &L->xtype[1],
                         err, err_size) ||
            bind_experts(m, f, il, "ffn_down", d, hp->n_ff, &L->down, &L->down_stride, &L->xdata[2],
                         &L->xtype[2], err, err_size))
            goto fail;
#undef NAME
    }
    stamp_isa(m);
    if (grok_gguf_find_kv(f, "tokenizer.ggml.tokens") >= 0) {
        m->tok = grok_tokenizer_from_gguf(f, err, err_size);
        if (!m->tok) goto fail;
        if (grok_tokenizer_n_vocab(m->tok) > hp->n_vocab) {
            snprintf(err, err_size,
                     "%s: the vocabulary has %" PRId64 " pieces but token_embd only %" PRId64 " rows", path,
                     grok_tokenizer_n_vocab(m->tok), hp->n_vocab);
            goto fail;
        }
    }
    grok_gguf_advise(f, NULL, 0, MADV_NORMAL);
    return m;
fail:
    grok_model_free(m);
    return NULL;
}

const grok_hparams *grok_model_hparams(const grok_model *m) { return &m->hp; }
const grok_gguf_file *grok_model_gguf(const grok_model *m) { return m->file; }
const grok_tokenizer *grok_model_tokenizer(const grok_model *m) { return m->tok; }

int64_t grok_model_bytes_per_token(const grok_model *m) {
    const grok_hparams *hp = &m->hp;
    int64_t total = (int64_t)(m->output.row_bytes * (size_t)m->output.rows);
    total += (int64_t)m->token_embd.row_bytes; /* the one embedding row looked up */
    for (int64_t il = 0; il < hp->n_layers; il++) {
        const grok_layer *L = &m->layers[il];
        total += (int64_t)(L->wq.row_bytes * (size_t)L->wq.rows + L->wk.row_bytes * (size_t)L->wk.rows +
                           L->wv.row_bytes * (size_t)L->wv.rows + L->wo.row_bytes * (size_t)L->wo.rows +
                           L->router.row_bytes * (size_t)L->router.rows);
        total += hp->n_experts_used * (int64_t)(L->gate_stride + L->up_stride + L->down_stride);
    }
    return total;
}

/* ---- distribution hook ---- */

static bool range_ok(int64_t lo, int64_t hi, int64_t n) { return lo >= 0 && lo <= hi && hi <= n; }

/* A column slice [c0, c1) of w must start and end on a block boundary. */
static bool slice_ok(const grok_mat *w, int64_t c0, int64_t c1) {
    return grok_type_row_size(w->type, c0) >= 0 && grok_type_row_size(w->type, c1 - c0) >= 0;
}

int grok_model_set_dist(grok_model *m, const grok_dist *d, char *err, size_t err_size) {
    if (!d) {
        m->dist = NULL;
        return 0;
    }
    const grok_hparams *hp = &m->hp;
    const char *path = grok_gguf_path(m->file);
    if (d->n_ranks < 1 || d->rank < 0 || d->rank >= d->n_ranks)
        return ERRF("%s: rank %d of %d is not a valid rank", path, d->rank, d->n_ranks);
    if (!range_ok(d->kvh0, d->kvh1, hp->n_kv_heads) || !range_ok(d->e0, d->e1, hp->n_experts) ||
        !range_ok(d->f0, d->f1, hp->n_ff) || !range_ok(d->v0, d->v1, hp->n_vocab) ||
        !range_ok(d->l0, d->l1, hp->n_layers))
        return ERRF("%s: rank %d's share (kv heads [%" PRId64 ", %" PRId64 "), experts [%" PRId64 ", %" PRId64
                    "), ffn rows [%" PRId64 ", %" PRId64 "), vocab [%" PRId64 ", %" PRId64
                    "), layers [%" PRId64 ", %" PRId64 ")) lies outside the model's shapes",
                    path, d->rank, d->kvh0, d->kvh1, d->e0, d->e1, d->f0, d->f1, d->v0, d->v1, d->l0, d->l1);
    if (d->pipeline && (d->l0 >= d->l1 || d->kvh0 != 0 || d->kvh1 != hp->n_kv_heads || d->e0 != 0 ||
                        d->e1 != hp->n_experts || d->f0 != 0 || d->f1 != hp->n_ff))
        return ERRF("%s: rank %d: a pipeline share is at least one whole layer", path, d->rank);
    if (!d->pipeline && (d->l0 != 0 || d->l1 != hp->n_layers))
        return ERRF("%s: rank %d: a tensor split covers every layer", path, d->rank);
    const int64_t G = hp->n_heads / hp->n_kv_heads, D = hp->head_dim;
    for (int64_t il = 0; il < hp->n_layers; il++) {
        const grok_layer *L = &m->layers[il];
        if (!slice_ok(&L->wo, d->kvh0 * G * D, d->kvh1 * G * D))
            return ERRF("%s: rank %d: heads [%" PRId64 ", %" PRId64 ") of layer %" PRId64
                        " do not start and end on a %s block of attn_output",
                        path, d->rank, d->kvh0 * G, d->kvh1 * G, il, grok_type_get_traits(L->wo.type)->name);
        bool down_ok = slice_ok(&L->down, d->f0, d->f1);
        for (int64_t e = 0; L->xtype[2] && e < hp->n_experts; e++) {
            const grok_mat x = grok_layer_expert(L, 2, e);
            down_ok = down_ok && slice_ok(&x, d->f0, d->f1);
        }
        if (!down_ok)
            return ERRF("%s: rank %d: ffn rows [%" PRId64 ", %" PRId64 ") of layer %" PRId64
                        " do not start and end on a %s block of ffn_down_exps",
                        path, d->rank, d->f0, d->f1, il, grok_type_get_traits(L->down.type)->name);
    }
    if (d->n_ranks > 1 &&
        (d->pipeline ? !d->send_to || !d->recv_from : !d->allreduce_sum || !d->gather_vocab))
        return ERRF("%s: a distribution over %d ranks needs its collectives", path, d->n_ranks);
    m->dist = d;
    return 0;
}
