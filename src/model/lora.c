/*
 * lora.c - LoRA adapters at inference time: checking an adapter file
 * against a model, applying it without merging (A and a scaled B^T ride on
 * each adapted matrix and every product adds their low-rank product, so
 * the base keeps its type and its memory map and the adapter costs only
 * its own size), and folding it into a new GGUF. Every tensor of an adapter must name an
 * adaptable weight of the base and come with its partner, with shapes
 * that fit, before any weight is touched: a bad adapter leaves the model
 * as it was.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"
#include "model/model.h"

#define ERRF(...) (snprintf(err, err_size, __VA_ARGS__), -1)

const char *const grok_lora_target_names[GROK_LORA_N_TARGETS] = {
    "attn_q",        "attn_k",      "attn_v",        "attn_output",
    "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps", "ffn_gate_inp"};
const char *const grok_lora_target_short[GROK_LORA_N_TARGETS] = {"q",    "k",  "v",    "o",
                                                                 "gate", "up", "down", "router"};

uint64_t grok_lora_base_hash(const grok_hparams *hp) {
    const int64_t v[] = {hp->n_vocab,    hp->d_model,  hp->n_layers, hp->n_heads,
                         hp->n_kv_heads, hp->head_dim, hp->n_ff,     hp->n_experts};
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the little-endian bytes */
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (int b = 0; b < 8; b++) {
            h ^= (uint64_t)((uint64_t)v[i] >> (8 * b)) & 0xffu;
            h *= 0x100000001b3ull;
        }
    return h;
}

void grok_lora_base_shape(const grok_hparams *hp, char *buf, size_t size) {
    snprintf(buf, size,
             "vocab %" PRId64 ", d_model %" PRId64 ", %" PRId64 " layers, %" PRId64 "/%" PRId64
             " heads of %" PRId64 ", %" PRId64 " experts of ffn %" PRId64,
             hp->n_vocab, hp->d_model, hp->n_layers, hp->n_heads, hp->n_kv_heads, hp->head_dim, hp->n_experts,
             hp->n_ff);
}

int grok_lora_write_meta(grok_gguf_writer *w, const grok_hparams *hp, const char *base_name, int64_t rank,
                         float alpha) {
    char shape[256];
    grok_lora_base_shape(hp, shape, sizeof shape);
    int rc = 0;
    rc |= grok_gguf_writer_set_str(w, "general.architecture", "grok");
    rc |= grok_gguf_writer_set_str(w, "general.type", "adapter");
    rc |= grok_gguf_writer_set_str(w, "adapter.type", "lora");
    rc |= grok_gguf_writer_set_f32(w, GROK_LORA_KEY_ALPHA, alpha);
    rc |= grok_gguf_writer_set_u32(w, GROK_LORA_KEY_RANK, (uint32_t)rank);
    rc |= grok_gguf_writer_set_u64(w, GROK_LORA_KEY_BASE_HASH, grok_lora_base_hash(hp));
    rc |= grok_gguf_writer_set_str(w, GROK_LORA_KEY_BASE_SHAPE, shape);
    if (base_name) rc |= grok_gguf_writer_set_str(w, GROK_LORA_KEY_BASE_NAME, base_name);
    return rc ? -1 : 0;
}

void grok_lora_add(float *w, const float *a, const float *b, int64_t rows, int64_t cols, int64_t rank,
                   float s) {
    for (int64_t o = 0; o < rows; o++) {
        float *wo = w + o * cols;
        for (int64_t r = 0; r < rank; r++) {
            float c = s * b[o * rank + r];
            const float *ar = a + r * cols;
            for (int64_t i = 0; i < cols; i++) wo[i] += c * ar[i];
        }
    }
}

/* ---- reading an adapter against a model ---- */

typedef struct {
    const grok_gguf_tensor *a, *b;
    grok_mat *mat;          /* the model's weight */
    size_t *stride;         /* bytes between experts (NULL for attention and the router) */
    const uint8_t ***xdata; /* where each expert lies (grok_layer.xdata; NULL for attention and the router) */
    int64_t n_mats;
    int64_t rank; /* this weight's rank (A's rows) */
} slot;

typedef struct {
    grok_gguf_file *f;
    slot *slots;  /* [n_layers][GROK_LORA_N_TARGETS] */
    int64_t rank; /* adapter.lora.rank: the largest of the weights' ranks */
    float alpha;
} adapter;

static void adapter_close(adapter *ad) {
    grok_gguf_close(ad->f);
    free(ad->slots);
    memset(ad, 0, sizeof *ad);
}

/* "blk.N.<target>.weight.lora_a|b": layer, target and which; false if the
 * name is anything else. */
static bool parse_name(const char *name, int64_t n_layers, int64_t *il, int *ti, bool *is_b) {
    if (strncmp(name, "blk.", 4) != 0) return false;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') return false;
    int64_t l = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((l = l * 10 + (*p - '0')) >= n_layers) return false;
    if (*p++ != '.') return false;
    for (int t = 0; t < GROK_LORA_N_TARGETS; t++) {
        size_t n = strlen(grok_lora_target_names[t]);
        if (strncmp(p, grok_lora_target_names[t], n) != 0) continue;
        if (strcmp(p + n, ".weight.lora_a") == 0 || strcmp(p + n, ".weight.lora_b") == 0) {
            *il = l, *ti = t, *is_b = p[n + strlen(".weight.lora_")] == 'b';
            return true;
        }
    }
    return false;
}

static grok_mat *target_mat(grok_model *m, int64_t il, int t, size_t **stride, const uint8_t ****xdata) {
    grok_layer *L = &m->layers[il];
    *stride = NULL;
    *xdata = NULL;
    switch (t) {
    case 0: return &L->wq;
    case 1: return &L->wk;
    case 2: return &L->wv;
    case 3: return &L->wo;
    case GROK_LORA_T_GATE: *stride = &L->gate_stride, *xdata = &L->xdata[0]; return &L->gate;
    case GROK_LORA_T_UP: *stride = &L->up_stride, *xdata = &L->xdata[1]; return &L->up;
    case GROK_LORA_T_DOWN: *stride = &L->down_stride, *xdata = &L->xdata[2]; return &L->down;
    default: return &L->router;
    }
}

/* Where matrix e of a slot's weight lies. */
static const uint8_t *slot_mat(const slot *sl, int64_t e) {
    return grok_expert_data(sl->mat, sl->stride ? *sl->stride : 0,
                            sl->xdata ? (const uint8_t *const *)*sl->xdata : NULL, e);
}

static int check_ab(const grok_gguf_tensor *t, const char *path, int64_t ne0, int64_t ne1, int64_t ne2,
                    char *err, size_t err_size) {
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != 1)
        return ERRF("%s: tensor '%s' has shape [%" PRId64 ", %" PRId64 ", %" PRId64
                    "], the model needs [%" PRId64 ", %" PRId64 ", %" PRId64 "]",
                    path, t->name, t->ne[0], t->ne[1], t->ne[2], ne0, ne1, ne2);
    if (!grok_kernels_get(t->type) || grok_type_row_size(t->type, ne0) < 0)
        return ERRF("%s: tensor '%s' has type %s, which cannot be read as numbers", path, t->name,
                    grok_type_get_traits(t->type)->name ? grok_type_get_traits(t->type)->name : "?");
    return 0;
}

static int adapter_open(adapter *ad, grok_model *m, const char *path, char *err, size_t err_size) {
    memset(ad, 0, sizeof *ad);
    const grok_hparams *hp = &m->hp;
    grok_gguf_file *f = ad->f = grok_gguf_open(path, err, err_size);
    if (!f) return -1;
    const char *s;
    size_t len;
    if (grok_gguf_get_str(f, "general.type", &s, &len) != 0 || strcmp(s, "adapter") != 0 ||
        grok_gguf_get_str(f, "adapter.type", &s, &len) != 0 || strcmp(s, "lora") != 0) {
        adapter_close(ad);
        return ERRF("%s: not a LoRA adapter (general.type must be 'adapter', adapter.type 'lora')", path);
    }
    if (grok_gguf_get_str(f, "general.architecture", &s, &len) != 0 || strcmp(s, "grok") != 0) {
        adapter_close(ad);
        return ERRF("%s: the adapter is not for architecture 'grok'", path);
    }
    uint64_t hash;
    if (grok_gguf_get_u64(f, GROK_LORA_KEY_BASE_HASH, &hash) != 0) {
        adapter_close(ad);
        return ERRF("%s: key '%s' is missing: cannot tell which base model the adapter is for", path,
                    GROK_LORA_KEY_BASE_HASH);
    }
    if (hash != grok_lora_base_hash(hp)) {
        char mine[256];
        grok_lora_base_shape(hp, mine, sizeof mine);
        const char *theirs = "unknown shapes";
        if (grok_gguf_get_str(f, GROK_LORA_KEY_BASE_SHAPE, &s, &len) == 0) theirs = s;
        snprintf(err, err_size, "%s: the adapter was made for a different base model (%s); %s has %s", path,
                 theirs, grok_gguf_path(m->file), mine);
        adapter_close(ad);
        return -1;
    }
    int64_t rank = 0;
    double alpha = 0;
    if (grok_gguf_get_i64(f, GROK_LORA_KEY_RANK, &rank) != 0 || rank < 1 || rank > (1 << 20)) {
        adapter_close(ad);
        return ERRF("%s: key '%s' is missing or out of range", path, GROK_LORA_KEY_RANK);
    }
    int arc = grok_gguf_get_f64(f, GROK_LORA_KEY_ALPHA, &alpha);
    if (arc == -1)
        alpha = 0;
    else if (arc != 0 || !(alpha >= 0 && alpha < 1e9)) {
        adapter_close(ad);
        return ERRF("%s: key '%s' is not a non-negative number", path, GROK_LORA_KEY_ALPHA);
    }
    ad->rank = rank;
    ad->alpha = alpha > 0 ? (float)alpha : (float)rank; /* absent: scale 1, as llama.cpp */
    ad->slots = calloc((size_t)(hp->n_layers * GROK_LORA_N_TARGETS), sizeof *ad->slots);
    if (!ad->slots) {
        adapter_close(ad);
        return ERRF("%s: out of memory", path);
    }
    int64_t nt = grok_gguf_n_tensors(f);
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < nt; i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        int64_t il;
        int ti;
        bool is_b;
        if (strncmp(t->name, "adam_", 5) == 0) continue; /* a training checkpoint's optimizer state */
        if (!parse_name(t->name, hp->n_layers, &il, &ti, &is_b)) {
            rc = ERRF("%s: tensor '%s' is not the lora_a or lora_b of an adaptable weight "
                      "(blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate_exps,ffn_up_exps,"
                      "ffn_down_exps,ffn_gate_inp}.weight, N < %" PRId64 ")",
                      path, t->name, hp->n_layers);
            break;
        }
        slot *sl = &ad->slots[il * GROK_LORA_N_TARGETS + ti];
        if (is_b)
            sl->b = t;
        else
            sl->a = t;
    }
    int64_t n_pairs = 0;
    for (int64_t il = 0; rc == 0 && il < hp->n_layers; il++)
        for (int t = 0; rc == 0 && t < GROK_LORA_N_TARGETS; t++) {
            slot *sl = &ad->slots[il * GROK_LORA_N_TARGETS + t];
            if (!sl->a && !sl->b) continue;
            if (!sl->a || !sl->b) {
                rc = ERRF("%s: tensor '%s' has no partner %s", path, (sl->a ? sl->a : sl->b)->name,
                          sl->a ? "lora_b" : "lora_a");
                break;
            }
            sl->mat = target_mat(m, il, t, &sl->stride, &sl->xdata);
            if (grok_lora_target_is_expert(t) && m->layers[il].xtype[t - GROK_LORA_T_GATE]) {
                rc = ERRF("%s: tensor '%s': the model's experts of layer %" PRId64
                          " differ in type (grok quantize --expert-aware); LoRA needs one type per layer",
                          path, sl->a->name, il);
                break;
            }
            sl->n_mats = grok_lora_target_is_expert(t) ? hp->n_experts : 1;
            sl->rank = sl->a->ne[1];
            if (sl->rank < 1 || sl->rank > rank) {
                rc = ERRF("%s: tensor '%s' has rank %" PRId64 ", outside [1, %s = %" PRId64 "]", path,
                          sl->a->name, sl->rank, GROK_LORA_KEY_RANK, rank);
                break;
            }
            if (check_ab(sl->a, path, sl->mat->cols, sl->rank, sl->n_mats, err, err_size) ||
                check_ab(sl->b, path, sl->rank, sl->mat->rows, sl->n_mats, err, err_size))
                rc = -1;
            n_pairs++;
        }
    if (rc == 0 && n_pairs == 0) rc = ERRF("%s: the adapter holds no lora_a/lora_b tensors", path);
    if (rc) adapter_close(ad);
    return rc;
}

/* out [rows][cols] = matrix e of the slot's base weight + (scale_alpha /
 * r) B_e A_e with r the slot's rank. a, b: scratch of the adapter's sizes. */
static void merged_matrix(const slot *sl, const uint8_t *base, grok_type base_type, int64_t e,
                          float scale_alpha, float *out, float *a, float *b) {
    const grok_mat *w = sl->mat;
    const int64_t rank = sl->rank;
    const float s = scale_alpha / (float)rank;
    const grok_type_kernels *k = grok_kernels_get(base_type);
    size_t rb = (size_t)grok_type_row_size(base_type, w->cols);
    for (int64_t r = 0; r < w->rows; r++) k->to_f32(base + (size_t)r * rb, out + r * w->cols, w->cols);
    const grok_gguf_tensor *ta = sl->a, *tb = sl->b;
    size_t a_rb = (size_t)grok_type_row_size(ta->type, w->cols);
    size_t b_rb = (size_t)grok_type_row_size(tb->type, rank);
    const grok_type_kernels *ka = grok_kernels_get(ta->type), *kb = grok_kernels_get(tb->type);
    for (int64_t r = 0; r < rank; r++)
        ka->to_f32((const uint8_t *)ta->data + (size_t)(e * rank + r) * a_rb, a + r * w->cols, w->cols);
    for (int64_t r = 0; r < w->rows; r++)
        kb->to_f32((const uint8_t *)tb->data + (size_t)(e * w->rows + r) * b_rb, b + r * rank, rank);
    grok_lora_add(out, a, b, w->rows, w->cols, rank, s);
}

int grok_model_apply_lora(grok_model *m, const char *path, float scale, char *err, size_t err_size) {
    adapter ad;
    if (adapter_open(&ad, m, path, err, err_size)) return -1;
    const int64_t n_slots = m->hp.n_layers * GROK_LORA_N_TARGETS;
    for (int64_t i = 0; i < n_slots; i++)
        if (ad.slots[i].a && ad.slots[i].mat->lora.a) {
            adapter_close(&ad);
            return ERRF("%s: an adapter is already applied to this model (one at a time; merge the first)",
                        path);
        }
    float **bufs = calloc((size_t)(n_slots > 0 ? 2 * n_slots : 1), sizeof *bufs);
    void **owned = NULL;
    int64_t n_new = 0;
    bool ok = bufs != NULL;
    for (int64_t i = 0; ok && i < n_slots; i++) {
        const slot *sl = &ad.slots[i];
        if (!sl->a) continue;
        const int64_t r = sl->rank, nm = sl->n_mats;
        bufs[2 * i] = malloc(sizeof(float) * (size_t)(nm * r * sl->mat->cols));
        bufs[2 * i + 1] = malloc(sizeof(float) * (size_t)(nm * r * sl->mat->rows));
        ok = bufs[2 * i] && bufs[2 * i + 1];
        n_new += 2;
    }
    if (ok) {
        owned = realloc(m->owned, sizeof(void *) * (size_t)(m->n_owned + n_new));
        if (owned) m->owned = owned;
        ok = owned != NULL;
    }
    if (!ok) {
        for (int64_t i = 0; bufs && i < 2 * n_slots; i++) free(bufs[i]);
        free(bufs);
        adapter_close(&ad);
        return ERRF("%s: out of memory for the adapter", path);
    }
    /* A as it is, B transposed and scaled: what grok_matmul adds (kernels.h) */
    for (int64_t i = 0; i < n_slots; i++) {
        slot *sl = &ad.slots[i];
        if (!sl->a) continue;
        grok_mat *w = sl->mat;
        const int64_t r = sl->rank, rows = w->rows, cols = w->cols;
        const float s = scale * ad.alpha / (float)r;
        float *a = bufs[2 * i], *bt = bufs[2 * i + 1];
        const grok_type_kernels *ka = grok_kernels_get(sl->a->type), *kb = grok_kernels_get(sl->b->type);
        const size_t a_rb = (size_t)grok_type_row_size(sl->a->type, cols),
                     b_rb = (size_t)grok_type_row_size(sl->b->type, r);
        float *brow = malloc(sizeof(float) * (size_t)(r > 0 ? r : 1));
        for (int64_t e = 0; brow && e < sl->n_mats; e++) {
            for (int64_t k = 0; k < r; k++)
                ka->to_f32((const uint8_t *)sl->a->data + (size_t)(e * r + k) * a_rb, a + (e * r + k) * cols,
                           cols);
            for (int64_t o = 0; o < rows; o++) {
                kb->to_f32((const uint8_t *)sl->b->data + (size_t)(e * rows + o) * b_rb, brow, r);
                for (int64_t k = 0; k < r; k++) bt[(e * r + k) * rows + o] = s * brow[k];
            }
        }
        free(brow);
        w->lora = (grok_mat_lora){a, bt, r, cols, rows, sl->stride ? *sl->stride : 0, r * cols, r * rows};
        m->owned[m->n_owned++] = a;
        m->owned[m->n_owned++] = bt;
    }
    free(bufs);
    adapter_close(&ad);
    return 0;
}

/* ---- merge ---- */

/* Expert e if name is "blk.<il>.<kind without _exps>.<e>.weight" (files
 * of one tensor per expert, model.c's bind_experts), else -1. */
static int64_t expert_tensor(const char *name, int64_t il, int kind, int64_t n_experts) {
    const char *what = grok_lora_target_names[kind];
    char prefix[96];
    snprintf(prefix, sizeof prefix, "blk.%" PRId64 ".%.*s.", il, (int)(strlen(what) - strlen("_exps")), what);
    const size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0) return -1;
    const char *p = name + n;
    int64_t e = 0;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((e = e * 10 + (*p - '0')) >= n_experts) return -1;
    return strcmp(p, ".weight") == 0 ? e : -1;
}

int grok_lora_merge(const char *base_path, const char *adapter_path, const char *out_path, int type,
                    float scale, char *err, size_t err_size) {
    if (type >= 0) {
        const grok_type_kernels *k = grok_kernels_get((uint32_t)type);
        if (!k || !k->from_f32) return ERRF("%s: cannot write weights of type %d", out_path, type);
    }
    grok_model *m = grok_model_load(base_path, err, err_size);
    if (!m) return -1;
    adapter ad;
    if (adapter_open(&ad, m, adapter_path, err, err_size)) {
        grok_model_free(m);
        return -1;
    }
    const grok_gguf_file *f = m->file;
    const int64_t n_slots = m->hp.n_layers * GROK_LORA_N_TARGETS, nt = grok_gguf_n_tensors(f);
    const float sa_ = scale * ad.alpha;
    /* Which slot (if any) each base tensor is, and which expert of it
     * (-1: all, one 3-D tensor; else a file of one tensor per expert). */
    int64_t *which = malloc(sizeof(int64_t) * (size_t)(nt ? 2 * nt : 1)),
            *which_e = which ? which + nt : NULL;
    int64_t *found = calloc((size_t)(n_slots ? n_slots : 1), sizeof *found); /* matrices per slot */
    grok_gguf_writer *w = grok_gguf_writer_create();
    float *mat = NULL, *sa = NULL, *sb = NULL;
    uint8_t *enc = NULL;
    int rc = which && found && w ? 0 : ERRF("%s: out of memory", out_path);
    int64_t max_mat = 0, max_a = 0, max_b = 0, max_enc = 0;
    if (rc == 0 && grok_gguf_writer_copy_kvs(w, f)) rc = ERRF("%s: cannot copy the metadata", out_path);
    for (int64_t i = 0; rc == 0 && i < nt; i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        which[i] = -1;
        which_e[i] = -1;
        for (int64_t j = 0; j < n_slots && which[i] < 0; j++) {
            char n[96];
            if (!ad.slots[j].a) continue;
            const int64_t il = j / GROK_LORA_N_TARGETS;
            const int kind = (int)(j % GROK_LORA_N_TARGETS);
            grok_tensor_name(n, sizeof n, il, grok_lora_target_names[kind]);
            if (strcmp(n, t->name) == 0) which[i] = j;
            if (which[i] < 0 && grok_lora_target_is_expert(kind) &&
                (which_e[i] = expert_tensor(t->name, il, kind, m->hp.n_experts)) >= 0)
                which[i] = j;
        }
        uint32_t ty = t->type;
        if (which[i] >= 0) {
            const slot *sl = &ad.slots[which[i]];
            found[which[i]] += which_e[i] >= 0 ? 1 : sl->n_mats;
            if (type >= 0) ty = (uint32_t)type;
            int64_t rb = grok_type_row_size(ty, t->ne[0]);
            if (rb < 0 || !grok_kernels_get(ty) || !grok_kernels_get(ty)->from_f32) {
                rc = ERRF("%s: tensor '%s' (%" PRId64 " columns) cannot be written as %s", out_path, t->name,
                          t->ne[0], grok_type_get_traits(ty)->name);
                break;
            }
            int64_t n = sl->mat->rows * sl->mat->cols;
            if (n > max_mat) max_mat = n;
            if (rb * sl->mat->rows > max_enc) max_enc = rb * sl->mat->rows;
            if (ad.rank * sl->mat->cols > max_a) max_a = ad.rank * sl->mat->cols;
            if (ad.rank * sl->mat->rows > max_b) max_b = ad.rank * sl->mat->rows;
        }
        if (grok_gguf_writer_add_tensor(w, t->name, (grok_type)ty, t->n_dims, t->ne, NULL) < 0)
            rc = ERRF("%s: cannot add tensor '%s'", out_path, t->name);
    }
    /* every adapted matrix must be written merged: none silently left as it was */
    for (int64_t j = 0; rc == 0 && j < n_slots; j++)
        if (ad.slots[j].a && found[j] != ad.slots[j].n_mats)
            rc = ERRF("%s: %" PRId64 " of the %" PRId64 " matrices that '%s' adapts were found in %s",
                      out_path, found[j], ad.slots[j].n_mats, ad.slots[j].a->name, base_path);
    if (rc == 0) {
        mat = malloc(sizeof(float) * (size_t)(max_mat ? max_mat : 1));
        enc = malloc((size_t)(max_enc ? max_enc : 1));
        sa = malloc(sizeof(float) * (size_t)(max_a ? max_a : 1));
        sb = malloc(sizeof(float) * (size_t)(max_b ? max_b : 1));
        if (!mat || !enc || !sa || !sb) rc = ERRF("%s: out of memory for the merged weights", out_path);
    }
    if (rc == 0) rc = grok_gguf_writer_begin(w, out_path, err, err_size);
    for (int64_t i = 0; rc == 0 && i < nt; i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        if (which[i] < 0) {
            rc = grok_gguf_writer_write_data(w, t->data, t->nbytes, err, err_size);
            continue;
        }
        const slot *sl = &ad.slots[which[i]];
        uint32_t ty = type >= 0 ? (uint32_t)type : t->type;
        const grok_type_kernels *k = grok_kernels_get(ty);
        size_t rb = (size_t)grok_type_row_size(ty, t->ne[0]);
        const int64_t e0 = which_e[i] >= 0 ? which_e[i] : 0, e1 = which_e[i] >= 0 ? e0 + 1 : sl->n_mats;
        for (int64_t e = e0; rc == 0 && e < e1; e++) {
            merged_matrix(sl, slot_mat(sl, e), sl->mat->type, e, sa_, mat, sa, sb);
            for (int64_t r = 0; r < sl->mat->rows; r++)
                k->from_f32(mat + r * sl->mat->cols, enc + (size_t)r * rb, sl->mat->cols);
            rc = grok_gguf_writer_write_data(w, enc, rb * (size_t)sl->mat->rows, err, err_size);
        }
    }
    if (rc == 0) rc = grok_gguf_writer_finish(w, err, err_size);
    grok_gguf_writer_free(w);
    free(which), free(found), free(mat), free(enc), free(sa), free(sb);
    adapter_close(&ad);
    grok_model_free(m);
    return rc ? -1 : 0;
}
