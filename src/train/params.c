/*
 * params.c - the trainable model's parameters: their layout in one flat
 * f32 array, random initialisation, reading them from a GGUF model or
 * checkpoint, and writing them back as a GGUF that the inference engine
 * loads (with the metadata code grok_model_write_random uses). A
 * checkpoint is a model file with extra tensors (the Adam moments) and
 * keys (step, sampler state): one format, one writer, atomic by rename.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/model.h"
#include "model/quantize.h"
#include "train/train.h"
#include "util/rng.h"

#define KEY_STEP GROK_TRAIN_KEY_STEP
#define KEY_RNG GROK_TRAIN_KEY_RNG
#define KEY_SEED GROK_TRAIN_KEY_SEED

static void add_tensor(grok_train_model *m, const char *name, int64_t rows, int64_t cols, int64_t n_mats,
                       int64_t *off) {
    grok_train_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->off = m->n_params;
    t->rows = rows, t->cols = cols, t->n_mats = n_mats;
    t->n_dims = strstr(name, "_exps") ? 3 : strstr(name, "norm") ? 1 : 2;
    t->is_norm = strstr(name, "norm") != NULL;
    t->is_router = strstr(name, "ffn_gate_inp") != NULL;
    *off = m->n_params;
    m->n_params += rows * cols * n_mats;
}

grok_train_model *grok_train_model_create(const grok_hparams *hp, char *err, size_t err_size) {
    if (grok_hparams_validate(hp, "train", err, err_size)) return NULL;
    grok_train_model *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->hp = *hp;
    const int64_t d = hp->d_model, L = hp->n_layers, E = hp->n_experts, ff = hp->n_ff;
    const int64_t qd = hp->n_heads * hp->head_dim, kvd = hp->n_kv_heads * hp->head_dim;
    m->tensors = calloc((size_t)(2 + 12 * L), sizeof *m->tensors);
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->tensors || !m->layers) goto oom;
    add_tensor(m, GROK_TN_TOKEN_EMBD, hp->n_vocab, d, 1, &m->embd);
    add_tensor(m, GROK_TN_OUTPUT_NORM, 1, d, 1, &m->output_norm);
    for (int64_t il = 0; il < L; il++) {
        grok_train_layer_off *lo = &m->layers[il];
        char n[96];
#define T(what, r, c, k, field) \
    (grok_tensor_name(n, sizeof n, il, what), add_tensor(m, n, r, c, k, &lo->field))
        T("attn_norm", 1, d, 1, attn_norm);
        T("attn_q", qd, d, 1, wq);
        T("attn_k", kvd, d, 1, wk);
        T("attn_v", kvd, d, 1, wv);
        T("attn_output", d, qd, 1, wo);
        T("attn_output_norm", 1, d, 1, attn_out_norm);
        T("ffn_norm", 1, d, 1, ffn_norm);
        T("ffn_gate_inp", E, d, 1, router);
        T("ffn_gate_exps", ff, d, E, gate);
        T("ffn_up_exps", ff, d, E, up);
        T("ffn_down_exps", d, ff, E, down);
        T("layer_output_norm", 1, d, 1, layer_out_norm);
#undef T
    }
    m->w = calloc((size_t)m->n_params, sizeof(float));
    if (!m->w) goto oom;
    return m;
oom:
    snprintf(err, err_size, "train: out of memory for the model's parameters");
    grok_train_model_free(m);
    return NULL;
}

void grok_train_model_free(grok_train_model *m) {
    if (!m) return;
    free(m->w);
    free(m->tensors);
    free(m->layers);
    free(m);
}

void grok_train_model_init_random(grok_train_model *m, uint64_t seed) {
    const grok_hparams *hp = &m->hp;
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const grok_train_tensor *t = &m->tensors[i];
        float *p = m->w + t->off;
        int64_t n = t->rows * t->cols * t->n_mats;
        if (t->is_norm) {
            for (int64_t j = 0; j < n; j++) p[j] = 1.0f;
            continue;
        }
        /* Each tensor draws from its own stream, as in random.c. */
        grok_rng r = grok_rng_named(seed, GROK_RNG_WEIGHTS, (uint64_t)i);
        float std = 1.0f / sqrtf((float)t->cols);
        if (t->off == m->embd) std = 1.0f / hp->embedding_scale;
        for (int64_t j = 0; j < n; j++) p[j] = std * grok_rng_normal(&r);
    }
}

/* ---- reading ---- */

int grok_train_read_tensor(const grok_gguf_file *f, const char *path, const char *name, float *dst,
                           const grok_train_tensor *t, char *err, size_t err_size) {
    const grok_gguf_tensor *g = grok_gguf_find_tensor(f, name);
    if (!g) {
        snprintf(err, err_size, "%s: tensor %s is missing", path, name);
        return -1;
    }
    if (g->ne[0] != t->cols || g->ne[1] != (t->n_dims >= 2 ? t->rows : 1) || g->ne[2] != t->n_mats) {
        snprintf(err, err_size,
                 "%s: tensor %s has shape [%" PRId64 ", %" PRId64 ", %" PRId64 "], expected [%" PRId64
                 ", %" PRId64 ", %" PRId64 "]",
                 path, name, g->ne[0], g->ne[1], g->ne[2], t->cols, t->rows, t->n_mats);
        return -1;
    }
    const grok_type_kernels *k = grok_kernels_get(g->type);
    int64_t rb = grok_type_row_size(g->type, t->cols);
    int64_t n_rows = t->rows * t->n_mats;
    if (!k || rb <= 0 || (uint64_t)rb * (uint64_t)n_rows != g->nbytes) {
        snprintf(err, err_size, "%s: tensor %s: type %u cannot be read as f32 training weights", path, name,
                 (unsigned)g->type);
        return -1;
    }
    for (int64_t r = 0; r < n_rows; r++)
        k->to_f32((const uint8_t *)g->data + (size_t)r * (size_t)rb, dst + r * t->cols, t->cols);
    return 0;
}

int grok_train_load(const char *path, grok_train_model **out, grok_tokenizer **tok,
                    grok_train_optim_state *st, char *err, size_t err_size) {
    *out = NULL;
    if (tok) *tok = NULL;
    grok_gguf_file *f = grok_gguf_open(path, err, err_size);
    if (!f) return -1;
    grok_train_model *m = NULL;
    grok_hparams hp;
    int rc = grok_hparams_from_gguf(f, &hp, err, err_size);
    if (rc == 0 && grok_gguf_find_tensor(f, GROK_TN_OUTPUT)) {
        snprintf(err, err_size, "%s: has an untied output head; training supports tied models only", path);
        rc = -1;
    }
    if (rc == 0 && !(m = grok_train_model_create(&hp, err, err_size))) rc = -1;
    for (int64_t i = 0; rc == 0 && i < m->n_tensors; i++)
        rc = grok_train_read_tensor(f, path, m->tensors[i].name, m->w + m->tensors[i].off, &m->tensors[i],
                                    err, err_size);
    if (rc == 0 && st) {
        memset(st, 0, sizeof *st);
        uint64_t step = 0;
        if (grok_gguf_get_u64(f, KEY_STEP, &step) || grok_gguf_get_u64(f, KEY_RNG, &st->rng) ||
            grok_gguf_get_u64(f, KEY_SEED, &st->seed)) {
            snprintf(err, err_size, "%s: not a training checkpoint (no %s / %s / %s keys)", path, KEY_STEP,
                     KEY_RNG, KEY_SEED);
            rc = -1;
        }
        st->step = (int64_t)step;
        if (rc == 0 && grok_train_optim_alloc(st, m->n_params)) {
            snprintf(err, err_size, "out of memory");
            rc = -1;
        }
        for (int64_t i = 0; rc == 0 && i < m->n_tensors; i++) {
            char n[128];
            snprintf(n, sizeof n, "adam_m.%s", m->tensors[i].name);
            rc = grok_train_read_tensor(f, path, n, st->m + m->tensors[i].off, &m->tensors[i], err, err_size);
            snprintf(n, sizeof n, "adam_v.%s", m->tensors[i].name);
            if (rc == 0)
                rc = grok_train_read_tensor(f, path, n, st->v + m->tensors[i].off, &m->tensors[i], err,
                                            err_size);
        }
        if (rc) grok_train_optim_free(st);
    }
    if (rc == 0 && tok) {
        *tok = grok_tokenizer_from_gguf(f, err, err_size);
        if (!*tok)
            rc = -1;
        else if (grok_tokenizer_n_vocab(*tok) != hp.n_vocab) {
            snprintf(err, err_size, "%s: vocabulary has %" PRId64 " pieces, the embedding %" PRId64, path,
                     grok_tokenizer_n_vocab(*tok), hp.n_vocab);
            grok_tokenizer_free(*tok);
            *tok = NULL;
            rc = -1;
        }
    }
    grok_gguf_close(f);
    if (rc) {
        grok_train_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

/* ---- writing ---- */

int grok_train_save(const char *path, const grok_train_model *m, const grok_tokenizer *tok, grok_type type,
                    const grok_train_optim_state *st, const char *name, char *err, size_t err_size) {
    const grok_type_kernels *k = grok_kernels_get(type);
    if (!k || !k->from_f32 || (st && type != GROK_TYPE_F32)) {
        snprintf(err, err_size, "%s: cannot write weights of type %u", path, (unsigned)type);
        return -1;
    }
    int64_t blk = grok_type_get_traits((uint32_t)type)->block_size;
    grok_gguf_writer *w = grok_gguf_writer_create();
    void **bufs = calloc((size_t)m->n_tensors, sizeof *bufs);
    if (!w || !bufs) {
        snprintf(err, err_size, "out of memory");
        grok_gguf_writer_free(w);
        free(bufs);
        return -1;
    }
    grok_hparams hp = m->hp;
    hp.pad_id = grok_tokenizer_pad(tok);
    int rc = 0;
    rc |= grok_hparams_to_gguf(&hp, w);
    rc |= grok_gguf_writer_set_str(w, "general.name", name);
    rc |= grok_gguf_writer_set_u32(w, "general.file_type", (uint32_t)grok_llama_ftype(type));
    rc |= grok_tokenizer_to_gguf(tok, w);
    if (st) {
        rc |= grok_gguf_writer_set_u64(w, KEY_STEP, (uint64_t)st->step);
        rc |= grok_gguf_writer_set_u64(w, KEY_RNG, st->rng);
        rc |= grok_gguf_writer_set_u64(w, KEY_SEED, st->seed);
    }
    for (int64_t i = 0; rc == 0 && i < m->n_tensors; i++) {
        const grok_train_tensor *t = &m->tensors[i];
        int64_t ne[3] = {t->cols, t->rows, t->n_mats};
        const float *src = m->w + t->off;
        int64_t n_rows = t->rows * t->n_mats;
        grok_type ty = (t->is_norm || t->is_router || t->cols % blk) ? GROK_TYPE_F32 : type;
        const void *data = src;
        if (ty != GROK_TYPE_F32) {
            int64_t rb = grok_type_row_size(ty, t->cols);
            uint8_t *b = malloc((size_t)(rb * n_rows));
            if (!b) {
                rc = -1;
                break;
            }
            for (int64_t r = 0; r < n_rows; r++)
                k->from_f32(src + r * t->cols, b + (size_t)(r * rb), t->cols);
            bufs[i] = b;
            data = b;
        }
        if (grok_gguf_writer_add_tensor(w, t->name, ty, t->n_dims, ne, data) < 0) rc = -1;
    }
    for (int64_t i = 0; rc == 0 && st && i < m->n_tensors; i++) {
        const grok_train_tensor *t = &m->tensors[i];
        int64_t ne[3] = {t->cols, t->rows, t->n_mats};
        char n[128];
        snprintf(n, sizeof n, "adam_m.%s", t->name);
        if (grok_gguf_writer_add_tensor(w, n, GROK_TYPE_F32, t->n_dims, ne, st->m + t->off) < 0) rc = -1;
        snprintf(n, sizeof n, "adam_v.%s", t->name);
        if (grok_gguf_writer_add_tensor(w, n, GROK_TYPE_F32, t->n_dims, ne, st->v + t->off) < 0) rc = -1;
    }
    if (rc)
        snprintf(err, err_size, "%s: could not assemble the model's metadata and tensors", path);
    else
        rc = grok_gguf_writer_write(w, path, err, err_size);
    grok_gguf_writer_free(w);
    for (int64_t i = 0; i < m->n_tensors; i++) free(bufs[i]);
    free(bufs);
    return rc ? -1 : 0;
}

/* ---- optimizer ---- */

grok_train_adamw_cfg grok_train_adamw_default(void) {
    grok_train_adamw_cfg c = {3e-3f, 0.1f, 100, 1000, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    return c;
}

float grok_train_lr_at(const grok_train_adamw_cfg *c, int64_t step) {
    if (step < c->warmup) return c->lr * (float)(step + 1) / (float)c->warmup;
    double span = (double)(c->total - c->warmup);
    double prog = span > 0 ? (double)(step - c->warmup) / span : 1.0;
    if (prog > 1.0) prog = 1.0;
    double cosv = 0.5 * (1.0 + cos(3.141592653589793 * prog));
    return (float)(c->lr * (c->min_lr_frac + (1.0 - c->min_lr_frac) * cosv));
}

int grok_train_optim_alloc(grok_train_optim_state *st, int64_t n_params) {
    st->m = calloc((size_t)n_params, sizeof(float));
    st->v = calloc((size_t)n_params, sizeof(float));
    if (!st->m || !st->v) {
        grok_train_optim_free(st);
        return -1;
    }
    return 0;
}

void grok_train_optim_free(grok_train_optim_state *st) {
    free(st->m);
    free(st->v);
    st->m = st->v = NULL;
}

double grok_train_adamw_step(grok_train_model *m, grok_train_optim_state *st, float *grad,
                             const grok_train_adamw_cfg *c) {
    /* The norm is summed in one fixed order, so it is the same on every run. */
    double ss = 0;
    for (int64_t i = 0; i < m->n_params; i++) ss += (double)grad[i] * grad[i];
    double norm = sqrt(ss);
    float scale = (c->clip > 0 && norm > c->clip) ? (float)(c->clip / norm) : 1.0f;
    float lr = grok_train_lr_at(c, st->step);
    st->step++;
    double bc1 = 1.0 - pow(c->beta1, (double)st->step), bc2 = 1.0 - pow(c->beta2, (double)st->step);
    float a = (float)(lr / bc1), ib2 = (float)(1.0 / sqrt(bc2));
    for (int64_t i = 0; i < m->n_tensors; i++) {
        const grok_train_tensor *t = &m->tensors[i];
        int64_t n = t->rows * t->cols * t->n_mats;
        float *w = m->w + t->off, *g = grad + t->off, *mm = st->m + t->off, *vv = st->v + t->off;
        float decay = t->is_norm ? 1.0f : 1.0f - lr * c->weight_decay;
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j] * scale;
            mm[j] = c->beta1 * mm[j] + (1.0f - c->beta1) * gj;
            vv[j] = c->beta2 * vv[j] + (1.0f - c->beta2) * gj * gj;
            w[j] = w[j] * decay - a * mm[j] / (sqrtf(vv[j]) * ib2 + c->eps);
        }
    }
    return norm;
}
