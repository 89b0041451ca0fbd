/*
 * lora.c - LoRA fine-tuning: the adapter's parameters laid out as a small
 * grok_train_model (so AdamW, clipping and checkpoints need no second copy), the
 * merged weights the forward pass uses, the projection of the full weight
 * gradient onto A and B, and reading and writing adapter files in the
 * format of src/model/lora.h.
 *
 * Training through merged weights costs a full-model gradient per step,
 * which the existing backward pass computes anyway; what LoRA saves here
 * is optimizer state and output size, and it keeps the base frozen. The
 * frozen values of the adapted weights are kept in w0 (f32, dequantized
 * from whatever type the base file has).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"
#include "model/model.h"
#include "train/train.h"
#include "util/rng.h"

#define ERRF(...) (snprintf(err, err_size, __VA_ARGS__), -1)

static const grok_train_tensor *find_base(const grok_train_model *m, const char *name) {
    for (int64_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

static int64_t add_param(grok_train_model *p, const char *name, int64_t rows, int64_t cols, int64_t n_mats,
                         bool experts) {
    grok_train_tensor *t = &p->tensors[p->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->off = p->n_params;
    t->rows = rows, t->cols = cols, t->n_mats = n_mats;
    t->n_dims = experts ? 3 : 2;
    p->n_params += rows * cols * n_mats;
    return t->off;
}

void grok_train_lora_free(grok_train_lora *l) {
    if (!l) return;
    grok_train_model_free(l->p);
    free(l->t);
    free(l->w0);
    free(l);
}

grok_train_lora *grok_train_lora_create(const grok_train_model *base, int64_t rank, float alpha,
                                        unsigned targets, uint64_t seed, char *err, size_t err_size) {
    const grok_hparams *hp = &base->hp;
    if (!(targets & (GROK_TRAIN_LORA_ATTN | GROK_TRAIN_LORA_EXPERTS))) {
        snprintf(err, err_size, "lora: no target weights chosen");
        return NULL;
    }
    if (!(alpha > 0) || !isfinite(alpha)) {
        snprintf(err, err_size, "lora: alpha %g must be positive", (double)alpha);
        return NULL;
    }
    grok_train_lora *l = calloc(1, sizeof *l);
    const int64_t max_t = hp->n_layers * GROK_LORA_N_TARGETS;
    if (!l || !(l->p = calloc(1, sizeof *l->p)) ||
        !(l->p->tensors = calloc((size_t)(2 * max_t), sizeof *l->p->tensors)) ||
        !(l->t = calloc((size_t)max_t, sizeof *l->t)))
        goto oom;
    l->rank = rank, l->alpha = alpha, l->targets = targets;
    l->p->hp = *hp;
    int64_t n_w0 = 0, min_dim = INT64_MAX;
    for (int64_t il = 0; il < hp->n_layers; il++)
        for (int ti = 0; ti < GROK_LORA_N_TARGETS; ti++) {
            bool experts = ti >= GROK_LORA_N_ATTN;
            if (!(targets & (experts ? GROK_TRAIN_LORA_EXPERTS : GROK_TRAIN_LORA_ATTN))) continue;
            char n[48], ln[64];
            grok_tensor_name(n, sizeof n, il, grok_lora_target_names[ti]);
            const grok_train_tensor *bt = find_base(base, n);
            if (!bt) {
                snprintf(err, err_size, "lora: the base has no tensor %s", n);
                grok_train_lora_free(l);
                return NULL;
            }
            grok_train_lora_target *t = &l->t[l->n_t++];
            t->w = bt->off, t->rows = bt->rows, t->cols = bt->cols, t->n_mats = bt->n_mats;
            t->w0 = n_w0;
            n_w0 += bt->rows * bt->cols * bt->n_mats;
            if (bt->rows < min_dim) min_dim = bt->rows;
            if (bt->cols < min_dim) min_dim = bt->cols;
            snprintf(ln, sizeof ln, "%s.lora_a", n);
            t->a = add_param(l->p, ln, rank, bt->cols, bt->n_mats, experts);
            snprintf(ln, sizeof ln, "%s.lora_b", n);
            t->b = add_param(l->p, ln, bt->rows, rank, bt->n_mats, experts);
        }
    if (rank < 1 || rank > min_dim) {
        snprintf(err, err_size,
                 "lora: rank %" PRId64 " must lie in [1, %" PRId64
                 "] (the smallest dimension of an adapted weight)",
                 rank, min_dim);
        grok_train_lora_free(l);
        return NULL;
    }
    if (!(l->p->w = calloc((size_t)l->p->n_params, sizeof(float))) ||
        !(l->w0 = malloc(sizeof(float) * (size_t)n_w0)))
        goto oom;
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        memcpy(l->w0 + t->w0, base->w + t->w, sizeof(float) * (size_t)(t->rows * t->cols * t->n_mats));
        /* A ~ N(0, 1/in), one stream per target; B stays 0 */
        grok_rng r = {seed * 0x100000001B3ull + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull};
        float std = 1.0f / sqrtf((float)t->cols);
        for (int64_t j = 0; j < rank * t->cols * t->n_mats; j++)
            l->p->w[t->a + j] = std * grok_rng_normal(&r);
    }
    return l;
oom:
    snprintf(err, err_size, "lora: out of memory for the adapter");
    grok_train_lora_free(l);
    return NULL;
}

void grok_train_lora_materialize(const grok_train_lora *l, grok_train_model *base) {
    const float s = l->alpha / (float)l->rank;
    const int64_t R = l->rank;
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        const int64_t n = t->rows * t->cols;
        memcpy(base->w + t->w, l->w0 + t->w0, sizeof(float) * (size_t)(n * t->n_mats));
        for (int64_t e = 0; e < t->n_mats; e++)
            grok_lora_add(base->w + t->w + e * n, l->p->w + t->a + e * R * t->cols,
                          l->p->w + t->b + e * t->rows * R, t->rows, t->cols, R, s);
    }
}

void grok_train_lora_grad(const grok_train_lora *l, const float *grad_full, float *grad_lora) {
    const float s = l->alpha / (float)l->rank;
    const int64_t R = l->rank;
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        for (int64_t e = 0; e < t->n_mats; e++) {
            const float *G = grad_full + t->w + e * t->rows * t->cols;
            const float *A = l->p->w + t->a + e * R * t->cols, *B = l->p->w + t->b + e * t->rows * R;
            float *dA = grad_lora + t->a + e * R * t->cols, *dB = grad_lora + t->b + e * t->rows * R;
            memset(dA, 0, sizeof(float) * (size_t)(R * t->cols));
            for (int64_t o = 0; o < t->rows; o++) {
                const float *g = G + o * t->cols;
                for (int64_t r = 0; r < R; r++) {
                    const float *ar = A + r * t->cols;
                    double acc = 0;
                    for (int64_t c = 0; c < t->cols; c++) acc += (double)g[c] * ar[c];
                    dB[o * R + r] = s * (float)acc;
                    float cb = s * B[o * R + r];
                    if (cb != 0.0f) {
                        float *dar = dA + r * t->cols;
                        for (int64_t c = 0; c < t->cols; c++) dar[c] += cb * g[c];
                    }
                }
            }
        }
    }
}

int grok_train_lora_save(const char *path, const grok_train_lora *l, const char *base_name,
                         const grok_train_optim_state *st, char *err, size_t err_size) {
    const grok_train_model *p = l->p;
    grok_gguf_writer *w = grok_gguf_writer_create();
    if (!w) return ERRF("%s: out of memory", path);
    int rc = grok_lora_write_meta(w, &p->hp, base_name, l->rank, l->alpha);
    rc |= grok_gguf_writer_set_str(w, "general.name", "grok-lora-adapter");
    if (st) {
        rc |= grok_gguf_writer_set_u64(w, GROK_TRAIN_KEY_STEP, (uint64_t)st->step);
        rc |= grok_gguf_writer_set_u64(w, GROK_TRAIN_KEY_RNG, st->rng);
        rc |= grok_gguf_writer_set_u64(w, GROK_TRAIN_KEY_SEED, st->seed);
    }
    for (int pass = 0; rc == 0 && pass < (st ? 3 : 1); pass++)
        for (int64_t i = 0; rc == 0 && i < p->n_tensors; i++) {
            const grok_train_tensor *t = &p->tensors[i];
            int64_t ne[3] = {t->cols, t->rows, t->n_mats};
            char n[128];
            snprintf(n, sizeof n, "%s%s", pass == 0 ? "" : pass == 1 ? "adam_m." : "adam_v.", t->name);
            const float *src = (pass == 0 ? p->w : pass == 1 ? st->m : st->v) + t->off;
            if (grok_gguf_writer_add_tensor(w, n, GROK_TYPE_F32, t->n_dims, ne, src) < 0) rc = -1;
        }
    if (rc)
        snprintf(err, err_size, "%s: could not assemble the adapter's metadata and tensors", path);
    else
        rc = grok_gguf_writer_write(w, path, err, err_size);
    grok_gguf_writer_free(w);
    return rc ? -1 : 0;
}

int grok_train_lora_load(const char *path, const grok_train_model *base, grok_train_lora **out,
                         grok_train_optim_state *st, char *err, size_t err_size) {
    *out = NULL;
    grok_gguf_file *f = grok_gguf_open(path, err, err_size);
    if (!f) return -1;
    grok_train_lora *l = NULL;
    const char *s;
    size_t len;
    uint64_t hash = 0;
    int64_t rank = 0;
    double alpha = 0;
    int rc = 0;
    if (grok_gguf_get_str(f, "general.type", &s, &len) != 0 || strcmp(s, "adapter") != 0 ||
        grok_gguf_get_u64(f, GROK_LORA_KEY_BASE_HASH, &hash) != 0 ||
        grok_gguf_get_i64(f, GROK_LORA_KEY_RANK, &rank) != 0 ||
        grok_gguf_get_f64(f, GROK_LORA_KEY_ALPHA, &alpha) != 0) {
        rc = ERRF("%s: not a LoRA adapter of grok.c (general.type, %s, %s or %s missing)", path,
                  GROK_LORA_KEY_BASE_HASH, GROK_LORA_KEY_RANK, GROK_LORA_KEY_ALPHA);
    } else if (hash != grok_lora_base_hash(&base->hp)) {
        char mine[256];
        grok_lora_base_shape(&base->hp, mine, sizeof mine);
        const char *theirs = "unknown shapes";
        if (grok_gguf_get_str(f, GROK_LORA_KEY_BASE_SHAPE, &s, &len) == 0) theirs = s;
        rc = ERRF("%s: the adapter was made for a different base model (%s); --init has %s", path, theirs,
                  mine);
    } else if (rank < 1 || rank > (1 << 20)) {
        rc = ERRF("%s: %s = %" PRId64 " is out of range", path, GROK_LORA_KEY_RANK, rank);
    }
    unsigned targets = 0;
    if (rc == 0) {
        char n[96], ln[128];
        grok_tensor_name(n, sizeof n, 0, "attn_q");
        snprintf(ln, sizeof ln, "%s.lora_a", n);
        if (grok_gguf_find_tensor(f, ln)) targets |= GROK_TRAIN_LORA_ATTN;
        grok_tensor_name(n, sizeof n, 0, "ffn_gate_exps");
        snprintf(ln, sizeof ln, "%s.lora_a", n);
        if (grok_gguf_find_tensor(f, ln)) targets |= GROK_TRAIN_LORA_EXPERTS;
        l = grok_train_lora_create(base, rank, (float)alpha, targets, 0, err, err_size);
        if (!l) rc = -1;
    }
    if (rc == 0) {
        int64_t want = l->p->n_tensors * (st ? 3 : 1);
        if (grok_gguf_n_tensors(f) != want)
            rc = ERRF("%s: holds %" PRId64 " tensors, an adapter%s of these targets has %" PRId64, path,
                      grok_gguf_n_tensors(f), st ? " checkpoint" : "", want);
    }
    for (int64_t i = 0; rc == 0 && i < l->p->n_tensors; i++)
        rc = grok_train_read_tensor(f, path, l->p->tensors[i].name, l->p->w + l->p->tensors[i].off,
                                    &l->p->tensors[i], err, err_size);
    if (rc == 0 && st) {
        memset(st, 0, sizeof *st);
        uint64_t step = 0;
        if (grok_gguf_get_u64(f, GROK_TRAIN_KEY_STEP, &step) ||
            grok_gguf_get_u64(f, GROK_TRAIN_KEY_RNG, &st->rng) ||
            grok_gguf_get_u64(f, GROK_TRAIN_KEY_SEED, &st->seed))
            rc = ERRF("%s: not a training checkpoint (no %s / %s / %s keys)", path, GROK_TRAIN_KEY_STEP,
                      GROK_TRAIN_KEY_RNG, GROK_TRAIN_KEY_SEED);
        st->step = (int64_t)step;
        if (rc == 0 && grok_train_optim_alloc(st, l->p->n_params)) rc = ERRF("out of memory");
        for (int64_t i = 0; rc == 0 && i < l->p->n_tensors; i++) {
            const grok_train_tensor *t = &l->p->tensors[i];
            char n[128];
            snprintf(n, sizeof n, "adam_m.%s", t->name);
            rc = grok_train_read_tensor(f, path, n, st->m + t->off, t, err, err_size);
            snprintf(n, sizeof n, "adam_v.%s", t->name);
            if (rc == 0) rc = grok_train_read_tensor(f, path, n, st->v + t->off, t, err, err_size);
        }
        if (rc) grok_train_optim_free(st);
    }
    grok_gguf_close(f);
    if (rc) {
        grok_train_lora_free(l);
        return -1;
    }
    *out = l;
    return 0;
}
