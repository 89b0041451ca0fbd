/*
 * tiny_train_model.h - the model the training tests differentiate: small
 * enough for finite differences over every tensor (d_model 16, 2 layers,
 * 4 experts with 2 used), with the norm weights moved off 1 so their
 * gradients are generic (drawn from *r, which the caller goes on using).
 * Returns NULL with err on failure. Also the batch the checks differentiate
 * and the loss they take finite differences of.
 */
#ifndef GROK_TEST_TINY_TRAIN_MODEL_H
#define GROK_TEST_TINY_TRAIN_MODEL_H

#include <stdio.h>
#include <stdlib.h>

#include "train/train.h"
#include "util/rng.h"

static inline grok_train_model *tiny_train_model(uint64_t init_seed, grok_rng *r, char *err,
                                                 size_t err_size) {
    grok_hparams hp = grok_hparams_grok1();
    hp.n_vocab = 40, hp.d_model = 16, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2;
    hp.head_dim = 4, hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 12, hp.n_ctx_train = 64;
    grok_train_model *m = grok_train_model_create(&hp, err, err_size);
    if (!m) return NULL;
    grok_train_model_init_random(m, init_seed);
    for (int64_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].is_norm)
            for (int64_t j = 0; j < m->tensors[i].cols; j++)
                m->w[m->tensors[i].off + j] += 0.2f * grok_rng_normal(r);
    return m;
}

/* B = 2 sequences of T = 6 tokens (plus their targets) drawn from *r, and
 * a trainer for them on a 2-thread pool (*pool; the caller frees both).
 * Returns NULL with err on failure. */
#define TINY_B 2
#define TINY_T 6
static inline grok_trainer *tiny_train_batch(grok_train_model *m, grok_rng *r,
                                             int32_t tok[TINY_B * (TINY_T + 1)], grok_threadpool **pool,
                                             char *err, size_t err_size) {
    for (int i = 0; i < TINY_B * (TINY_T + 1); i++) tok[i] = 4 + (int32_t)(grok_rng_next(r) % 36);
    *pool = grok_threadpool_create(2);
    return grok_trainer_create(m, TINY_B, TINY_T, *pool, err, err_size);
}

/* The total loss of one step (no gradient); a failed step ends the test. */
static inline double tiny_total_loss(grok_trainer *tr, const int32_t *tok, const grok_train_loss_cfg *cfg) {
    grok_train_losses l;
    if (grok_trainer_step(tr, tok, TINY_B, TINY_T, cfg, &l, NULL)) {
        fprintf(stderr, "step failed\n");
        exit(1);
    }
    return l.total;
}

#endif
