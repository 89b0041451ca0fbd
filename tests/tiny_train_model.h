/*
 * tiny_train_model.h - the model the training tests differentiate: small
 * enough for finite differences over every tensor (d_model 16, 2 layers,
 * 4 experts with 2 used), with the norm weights moved off 1 so their
 * gradients are generic (drawn from *r, which the caller goes on using).
 * Returns NULL with err on failure.
 */
#ifndef GROK_TEST_TINY_TRAIN_MODEL_H
#define GROK_TEST_TINY_TRAIN_MODEL_H

#include "train/train.h"
#include "util/rng.h"

static inline gt_model *tiny_train_model(uint64_t init_seed, grok_rng *r, char *err,
                                         size_t err_size) {
    grok_hparams hp = grok_hparams_grok1();
    hp.n_vocab = 40, hp.d_model = 16, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2;
    hp.head_dim = 4, hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 12, hp.n_ctx_train = 64;
    gt_model *m = gt_model_create(&hp, err, err_size);
    if (!m) return NULL;
    gt_model_init_random(m, init_seed);
    for (int64_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].is_norm)
            for (int64_t j = 0; j < m->tensors[i].cols; j++)
                m->w[m->tensors[i].off + j] += 0.2f * grok_rng_normal(r);
    return m;
}

#endif
