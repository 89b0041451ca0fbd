/*
 * lora.c - the LoRA adapter's trainable parameters: their layout as a
 * small grok_train_model (so AdamW, clipping and checkpoints need no
 * second copy), the choice of target weights, and reading and writing
 * adapter files and adapter checkpoints in the format of src/model/lora.h.
 * Only shapes come from the base: the adapter never holds a copy of a
 * base weight (the trainer, src/train/qlora.c, reads the base where it
 * lies).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/train.h"
#include "util/rng.h"

#define ERRF(...) (snprintf(err, err_size, __VA_ARGS__), -1)

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
    free(l->index);
    free(l);
}

/* W's shape for a target kind: out (rows), in (cols). */
static void target_shape(const grok_hparams *hp, int kind, int64_t *rows, int64_t *cols) {
    const int64_t d = hp->d_model, qd = hp->n_heads * hp->head_dim, kvd = hp->n_kv_heads * hp->head_dim;
    switch (kind) {
    case GROK_LORA_T_Q: *rows = qd, *cols = d; break;
    case GROK_LORA_T_K:
    case GROK_LORA_T_V: *rows = kvd, *cols = d; break;
    case GROK_LORA_T_O: *rows = d, *cols = qd; break;
    case GROK_LORA_T_GATE:
    case GROK_LORA_T_UP: *rows = hp->n_ff, *cols = d; break;
    case GROK_LORA_T_DOWN: *rows = d, *cols = hp->n_ff; break;
    default: *rows = hp->n_experts, *cols = d; break;
    }
}

unsigned grok_train_lora_parse_targets(const char *s) {
    unsigned m = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        unsigned bit = 0;
        if (n == 4 && strncmp(s, "attn", 4) == 0) bit = GROK_TRAIN_LORA_ATTN;
        if (n == 7 && strncmp(s, "experts", 7) == 0) bit = GROK_TRAIN_LORA_EXPERTS;
        if (n == 3 && strncmp(s, "all", 3) == 0)
            bit = GROK_TRAIN_LORA_ATTN | GROK_TRAIN_LORA_EXPERTS | GROK_TRAIN_LORA_ROUTER;
        for (int k = 0; k < GROK_LORA_N_TARGETS; k++)
            if (strlen(grok_lora_target_short[k]) == n && strncmp(s, grok_lora_target_short[k], n) == 0)
                bit = 1u << k;
        if (!bit) return 0;
        m |= bit;
        s += n;
        if (*s == ',') s++;
    }
    return m;
}

const grok_train_lora_target *grok_train_lora_find(const grok_train_lora *l, int64_t layer, int kind) {
    int64_t i = l->index[layer * GROK_LORA_N_TARGETS + kind];
    return i < 0 ? NULL : &l->t[i];
}

grok_train_lora *grok_train_lora_create(const grok_hparams *hp, int64_t rank, float alpha, unsigned targets,
                                        uint64_t seed, char *err, size_t err_size) {
    targets &= (1u << GROK_LORA_N_TARGETS) - 1;
    if (!targets) {
        snprintf(err, err_size, "lora: no target weights chosen");
        return NULL;
    }
    if (!(alpha > 0) || !isfinite(alpha)) {
        snprintf(err, err_size, "lora: alpha %g must be positive", (double)alpha);
        return NULL;
    }
    int64_t min_dim = INT64_MAX;
    for (int k = 0; k < GROK_LORA_N_TARGETS; k++) {
        int64_t rows, cols;
        target_shape(hp, k, &rows, &cols);
        if (!(targets & (1u << k)) || k == GROK_LORA_T_ROUTER) continue; /* the router's rank is capped */
        if (rows < min_dim) min_dim = rows;
        if (cols < min_dim) min_dim = cols;
    }
    if (min_dim == INT64_MAX) min_dim = hp->d_model;
    if (rank < 1 || rank > min_dim) {
        snprintf(err, err_size,
                 "lora: rank %" PRId64 " must lie in [1, %" PRId64
                 "] (the smallest dimension of an adapted weight)",
                 rank, min_dim);
        return NULL;
    }
    grok_train_lora *l = calloc(1, sizeof *l);
    const int64_t max_t = hp->n_layers * GROK_LORA_N_TARGETS;
    if (!l || !(l->p = calloc(1, sizeof *l->p)) ||
        !(l->p->tensors = calloc((size_t)(2 * max_t), sizeof *l->p->tensors)) ||
        !(l->t = calloc((size_t)max_t, sizeof *l->t)) ||
        !(l->index = malloc(sizeof(int64_t) * (size_t)max_t)))
        goto oom;
    l->hp = *hp, l->rank = rank, l->alpha = alpha, l->targets = targets;
    l->p->hp = *hp;
    for (int64_t il = 0; il < hp->n_layers; il++)
        for (int k = 0; k < GROK_LORA_N_TARGETS; k++) {
            l->index[il * GROK_LORA_N_TARGETS + k] = -1;
            if (!(targets & (1u << k))) continue;
            const bool experts = grok_lora_target_is_expert(k);
            grok_train_lora_target *t = &l->t[l->n_t];
            l->index[il * GROK_LORA_N_TARGETS + k] = l->n_t++;
            t->layer = il, t->kind = k, t->n_mats = experts ? hp->n_experts : 1;
            target_shape(hp, k, &t->rows, &t->cols);
            t->rank = rank < t->rows && rank < t->cols ? rank : (t->rows < t->cols ? t->rows : t->cols);
            t->scale = alpha / (float)t->rank;
            char n[48], ln[64];
            grok_tensor_name(n, sizeof n, il, grok_lora_target_names[k]);
            snprintf(ln, sizeof ln, "%s.lora_a", n);
            t->a = add_param(l->p, ln, t->rank, t->cols, t->n_mats, experts);
            snprintf(ln, sizeof ln, "%s.lora_b", n);
            t->b = add_param(l->p, ln, t->rows, t->rank, t->n_mats, experts);
        }
    if (!(l->p->w = calloc((size_t)l->p->n_params, sizeof(float)))) goto oom;
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        /* A ~ N(0, 1/in), one stream per target; B stays 0 */
        grok_rng r = grok_rng_named(seed, GROK_RNG_LORA, (uint64_t)i);
        float std = 1.0f / sqrtf((float)t->cols);
        for (int64_t j = 0; j < t->rank * t->cols * t->n_mats; j++)
            l->p->w[t->a + j] = std * grok_rng_normal(&r);
    }
    return l;
oom:
    snprintf(err, err_size, "lora: out of memory for the adapter");
    grok_train_lora_free(l);
    return NULL;
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

int grok_train_lora_load(const char *path, const grok_hparams *hp, grok_train_lora **out,
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
    } else if (hash != grok_lora_base_hash(hp)) {
        char mine[256];
        grok_lora_base_shape(hp, mine, sizeof mine);
        const char *theirs = "unknown shapes";
        if (grok_gguf_get_str(f, GROK_LORA_KEY_BASE_SHAPE, &s, &len) == 0) theirs = s;
        rc = ERRF("%s: the adapter was made for a different base model (%s); --init has %s", path, theirs,
                  mine);
    } else if (rank < 1 || rank > (1 << 20)) {
        rc = ERRF("%s: %s = %" PRId64 " is out of range", path, GROK_LORA_KEY_RANK, rank);
    }
    unsigned targets = 0;
    if (rc == 0) {
        for (int k = 0; k < GROK_LORA_N_TARGETS; k++) {
            char n[96], ln[128];
            grok_tensor_name(n, sizeof n, 0, grok_lora_target_names[k]);
            snprintf(ln, sizeof ln, "%s.lora_a", n);
            if (grok_gguf_find_tensor(f, ln)) targets |= 1u << k;
        }
        l = grok_train_lora_create(hp, rank, (float)alpha, targets, 0, err, err_size);
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
