/*
 * test_lora.c - LoRA adapters: the gradient of A and B against finite
 * differences, and the three ways of using an adapter against each other.
 *
 * On a tiny model (as in test_train_gradcheck) with rank-2 adapters on
 * every attention and expert projection and B made non-zero (at B = 0 the
 * gradient of A vanishes and would test nothing), entries of every lora_a
 * and lora_b tensor are perturbed both ways and the central difference of
 * the total loss is compared with grok_train_lora_grad's projection of the full
 * gradient. Then the adapter is written, applied to the base by
 * grok_model_apply_lora and merged by grok_lora_merge: the engine's logits
 * with the applied adapter must match the training forward on merged
 * weights, and the merged file's logits must equal the applied adapter's.
 * A scale of 0 must give the base's logits, an adapter checkpoint must
 * round-trip bit for bit, and an adapter must be refused by a base of
 * other shapes and a model file by the adapter loader.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/lora.h"
#include "tiny_train_model.h"
#include "train/train.h"
#include "util/rng.h"

static int fails = 0;

/* Logits of tok [T] under the model file at path, optionally with an adapter. */
static float *engine_logits(const char *path, const char *adapter, float scale, const int32_t *tok, int64_t T,
                            grok_threadpool *pool) {
    char err[GROK_ERR_SIZE];
    grok_model *im = grok_model_load(path, err, sizeof err);
    if (!im || (adapter && grok_model_apply_lora(im, adapter, scale, err, sizeof err))) {
        fprintf(stderr, "load %s (+ %s): %s\n", path, adapter ? adapter : "-", err);
        exit(1);
    }
    grok_context_params cp = grok_context_default_params();
    cp.pool = pool;
    grok_context *ctx = grok_context_create(im, &cp, err, sizeof err);
    float *out = malloc(sizeof(float) * (size_t)(T * grok_model_hparams(im)->n_vocab));
    if (!ctx || !out || grok_decode(ctx, tok, T, out, err, sizeof err)) {
        fprintf(stderr, "decode: %s\n", err);
        exit(1);
    }
    grok_context_free(ctx);
    grok_model_free(im);
    return out;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void expect(bool ok, const char *what) {
    printf("%-64s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) fails++;
}

int main(void) {
    char err[GROK_ERR_SIZE];
    grok_rng r = {123}; /* norms, then the test's own draws */
    grok_train_model *m = tiny_train_model(11, &r, err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const grok_hparams hp = m->hp;

    /* The base file, written before any adapter touches the weights. */
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char base_path[1024], ad_path[1024], ck_path[1024], merged_path[1024], other_path[1024];
    snprintf(base_path, sizeof base_path, "%s/lora-base.gguf", tmp);
    snprintf(ad_path, sizeof ad_path, "%s/lora-adapter.gguf", tmp);
    snprintf(ck_path, sizeof ck_path, "%s/lora-ckpt.gguf", tmp);
    snprintf(merged_path, sizeof merged_path, "%s/lora-merged.gguf", tmp);
    snprintf(other_path, sizeof other_path, "%s/lora-other.gguf", tmp);
    grok_tokenizer *tk = grok_tokenizer_placeholder(hp.n_vocab, err, sizeof err);
    if (!tk || grok_train_save(base_path, m, tk, GROK_TYPE_F32, NULL, "lora-base", err, sizeof err)) {
        fprintf(stderr, "save: %s\n", err);
        return 1;
    }

    grok_train_lora *l = grok_train_lora_create(m, 2, 3.0f, GROK_TRAIN_LORA_ATTN | GROK_TRAIN_LORA_EXPERTS, 5,
                                                err, sizeof err);
    if (!l) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        for (int64_t j = 0; j < t->rows * l->rank * t->n_mats; j++)
            l->p->w[t->b + j] = 0.3f * grok_rng_normal(&r);
    }
    grok_train_lora_materialize(l, m);

    const int64_t B = TINY_B, T = TINY_T;
    int32_t tok[TINY_B * (TINY_T + 1)];
    grok_threadpool *pool;
    grok_trainer *tr = tiny_train_batch(m, &r, tok, &pool, err, sizeof err);
    if (!tr) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    grok_train_loss_cfg cfg = {0.5f, 0.1f};
    float *grad = malloc(sizeof(float) * (size_t)m->n_params);
    float *gl = malloc(sizeof(float) * (size_t)l->p->n_params);
    grok_train_losses l0;
    grok_trainer_step(tr, tok, B, T, &cfg, &l0, grad);
    grok_train_lora_grad(l, grad, gl);
    int checked = 0, skipped = 0, mism = 0;
    for (int64_t ti = 0; ti < l->p->n_tensors; ti++) {
        const grok_train_tensor *t = &l->p->tensors[ti];
        int64_t n = t->rows * t->cols * t->n_mats, best = 0;
        for (int64_t j = 1; j < n; j++)
            if (fabsf(gl[t->off + j]) > fabsf(gl[t->off + best])) best = j;
        int n_strong = 0;
        for (int s = 0; s < 7; s++) {
            int64_t j = s < 6 ? (int64_t)(grok_rng_next(&r) % (uint64_t)n) : best;
            float *p = &l->p->w[t->off + j], orig = *p;
            const double eps = 0.02;
            double lv[4];
            const double steps[4] = {eps, -eps, eps / 2, -eps / 2};
            for (int k = 0; k < 4; k++) {
                *p = (float)(orig + steps[k]);
                grok_train_lora_materialize(l, m);
                lv[k] = tiny_total_loss(tr, tok, &cfg);
            }
            *p = orig;
            double e1 = (double)(float)(orig + eps) - (double)(float)(orig - eps);
            double e2 = (double)(float)(orig + eps / 2) - (double)(float)(orig - eps / 2);
            double num = (lv[0] - lv[1]) / e1, num2 = (lv[2] - lv[3]) / e2, ana = gl[t->off + j];
            double scale = fabs(num) > fabs(ana) ? fabs(num) : fabs(ana);
            if (fabs(num - num2) > 0.2 * scale + 2e-4) {
                skipped++; /* a routing choice flipped inside the step */
                continue;
            }
            double rich = (4.0 * num2 - num) / 3.0, atol = 1.5e-6 / (2.0 * eps);
            if (fabs(rich - ana) > 0.02 * (scale + 1e-4) && fabs(rich - ana) > atol) {
                fprintf(stderr, "MISMATCH %s[%lld]: analytic %.6g numeric %.6g\n", t->name, (long long)j, ana,
                        rich);
                mism++;
            }
            checked++;
            n_strong += scale > 10.0 * atol;
        }
        if (n_strong == 0) {
            fprintf(stderr, "no usable sample for %s\n", t->name);
            mism++;
        }
    }
    grok_train_lora_materialize(l, m);
    printf("lora gradcheck: %d tensors, %d entries checked, %d skipped at routing flips, %d mismatches\n",
           (int)l->p->n_tensors, checked, skipped, mism);
    expect(mism == 0 && skipped * 5 <= checked, "LoRA gradient equals finite differences");

    /* Applied, merged and trained-on weights agree. */
    if (grok_train_lora_save(ad_path, l, "lora-base", NULL, err, sizeof err) ||
        grok_lora_merge(base_path, ad_path, merged_path, -1, 1.0f, err, sizeof err)) {
        fprintf(stderr, "adapter: %s\n", err);
        return 1;
    }
    const int64_t nl = T * hp.n_vocab;
    float *lt = malloc(sizeof(float) * (size_t)nl);
    grok_trainer_logits(tr, tok, T, lt);
    float *la = engine_logits(base_path, ad_path, 1.0f, tok, T, pool);
    float *lm = engine_logits(merged_path, NULL, 1.0f, tok, T, pool);
    float *lb = engine_logits(base_path, NULL, 1.0f, tok, T, pool);
    float *l0s = engine_logits(base_path, ad_path, 0.0f, tok, T, pool);
    double rel = 0;
    for (int64_t i = 0; i < nl; i++) {
        double d = fabs((double)la[i] - lt[i]) / (fabs((double)lt[i]) + 1e-2);
        if (d > rel) rel = d;
    }
    printf("applied vs training forward: max rel diff %.2e; applied vs merged: max abs diff %.2e; "
           "adapter moves the logits by %.3f\n",
           rel, max_abs_diff(la, lm, nl), max_abs_diff(la, lb, nl));
    expect(rel < 1e-4, "grok_model_apply_lora matches the training forward");
    expect(max_abs_diff(la, lm, nl) <= 1e-5, "merged model equals base + adapter (within 1e-5)");
    expect(max_abs_diff(la, lb, nl) > 1e-2, "the adapter changes the logits");
    expect(max_abs_diff(l0s, lb, nl) == 0.0, "--lora-scale 0 gives the base's logits");

    /* An adapter checkpoint keeps every bit, and still applies. */
    grok_train_optim_state st = {0}, st2 = {0};
    grok_train_optim_alloc(&st, l->p->n_params);
    for (int64_t i = 0; i < l->p->n_params; i++) st.m[i] = gl[i], st.v[i] = gl[i] * gl[i];
    st.step = 9, st.rng = 0xfeedfacecafebeefull, st.seed = 3;
    grok_train_lora *l2 = NULL;
    grok_train_model *mb = NULL;
    if (grok_train_lora_save(ck_path, l, "lora-base", &st, err, sizeof err) ||
        grok_train_load(base_path, &mb, NULL, NULL, err, sizeof err) ||
        grok_train_lora_load(ck_path, mb, &l2, &st2, err, sizeof err)) {
        fprintf(stderr, "checkpoint: %s\n", err);
        return 1;
    }
    size_t np = sizeof(float) * (size_t)l->p->n_params;
    expect(l2->p->n_params == l->p->n_params && !memcmp(l2->p->w, l->p->w, np) && !memcmp(st2.m, st.m, np) &&
               !memcmp(st2.v, st.v, np) && st2.step == 9 && st2.rng == st.rng && st2.seed == 3 &&
               l2->rank == 2 && l2->alpha == 3.0f,
           "adapter checkpoint round trip is exact");
    float *lc = engine_logits(base_path, ck_path, 1.0f, tok, T, pool);
    expect(max_abs_diff(lc, la, nl) == 0.0, "an adapter checkpoint applies like the adapter");

    /* A base of other shapes and a model file posing as an adapter are refused. */
    grok_hparams ho = hp;
    ho.n_ff = 8;
    grok_train_model *mo = grok_train_model_create(&ho, err, sizeof err);
    grok_train_model_init_random(mo, 1);
    if (grok_train_save(other_path, mo, tk, GROK_TYPE_F32, NULL, "other", err, sizeof err)) {
        fprintf(stderr, "save: %s\n", err);
        return 1;
    }
    grok_model *im = grok_model_load(other_path, err, sizeof err);
    int rc = im ? grok_model_apply_lora(im, ad_path, 1.0f, err, sizeof err) : 0;
    printf("  other base: %s\n", err);
    expect(im && rc != 0 && strstr(err, "different base model"), "a base of other shapes is refused");
    grok_train_lora *l3 = NULL;
    rc = grok_train_lora_load(ad_path, mo, &l3, NULL, err, sizeof err);
    expect(rc != 0 && strstr(err, "different base model"), "the trainer refuses it too");
    rc = grok_lora_merge(other_path, ad_path, merged_path, -1, 1.0f, err, sizeof err);
    expect(rc != 0 && strstr(err, "different base model"), "and so does merge");
    grok_model_free(im);
    im = grok_model_load(base_path, err, sizeof err);
    rc = im ? grok_model_apply_lora(im, other_path, 1.0f, err, sizeof err) : 0;
    printf("  model as adapter: %s\n", err);
    expect(im && rc != 0 && strstr(err, "not a LoRA adapter"), "a model file is not an adapter");
    grok_model_free(im);

    grok_train_lora_free(l3);
    grok_train_model_free(mo);
    grok_train_lora_free(l2);
    grok_train_model_free(mb);
    grok_train_optim_free(&st);
    grok_train_optim_free(&st2);
    free(lt), free(la), free(lm), free(lb), free(l0s), free(lc);
    free(grad), free(gl);
    grok_train_lora_free(l);
    grok_trainer_free(tr);
    grok_train_model_free(m);
    grok_tokenizer_free(tk);
    grok_threadpool_free(pool);
    printf(fails ? "FAIL\n" : "PASS\n");
    return fails ? 1 : 0;
}
