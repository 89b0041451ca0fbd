/*
 * test_train_gradcheck.c - the training backward pass against finite
 * differences, and the training forward pass against the inference engine.
 *
 * On a tiny model (d_model 16, 2 layers, 4 experts with 2 used, 6 tokens,
 * 2 sequences) with the load-balancing and z losses switched on, several
 * entries of EVERY parameter tensor are perturbed both ways and the
 * central difference of the total loss is compared with the analytic
 * gradient. A perturbation that flips a top-k choice makes the loss jump;
 * such samples are recognised (the two half-step estimates disagree) and
 * skipped, and the test fails if too many are. Then the model is written
 * as GGUF, loaded by grok_model_load, and grok_decode's logits must equal
 * the training forward's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tiny_train_model.h"
#include "train/train.h"
#include "util/rng.h"

int main(void) {
    char err[GROK_ERR_SIZE];
    grok_rng r = {99}; /* norms, then the test's own draws */
    grok_train_model *m = tiny_train_model(7, &r, err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const grok_hparams hp = m->hp;

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
    grok_train_losses l0;
    grok_trainer_step(tr, tok, B, T, &cfg, &l0, grad);
    printf("loss: ce %.5f aux %.5f z %.5f total %.5f\n", l0.ce, l0.aux, l0.z, l0.total);
    int fails = 0, checked = 0, skipped = 0;
    for (int64_t ti = 0; ti < m->n_tensors; ti++) {
        const grok_train_tensor *t = &m->tensors[ti];
        int64_t n = t->rows * t->cols * t->n_mats;
        double worst = 0, ss = 0;
        int n_checked = 0, n_strong = 0;
        for (int64_t j = 0; j < n; j++) ss += (double)m->w[t->off + j] * m->w[t->off + j];
        double rms = sqrt(ss / (double)n);
        /* 10 random entries, then the 4 largest gradients of the tensor (so
         * every tensor has entries well above the f32 noise floor). */
        int64_t top[4] = {-1, -1, -1, -1};
        for (int64_t j = 0; j < n; j++) {
            float g = fabsf(grad[t->off + j]);
            for (int q = 0; q < 4; q++)
                if (top[q] < 0 || g > fabsf(grad[t->off + top[q]])) {
                    for (int z = 3; z > q; z--) top[z] = top[z - 1];
                    top[q] = j;
                    break;
                }
        }
        for (int s = 0; s < 14; s++) {
            int64_t j = s < 10 ? (int64_t)(grok_rng_next(&r) % (uint64_t)n) : top[s - 10];
            if (j < 0) continue;
            float *p = &m->w[t->off + j], orig = *p;
            double eps = 0.05 * (rms > 0.1 ? rms : 0.1); /* relative to the tensor's scale */
            *p = (float)(orig + eps);
            double lp = tiny_total_loss(tr, tok, &cfg);
            *p = (float)(orig - eps);
            double lm = tiny_total_loss(tr, tok, &cfg);
            *p = (float)(orig + eps / 2);
            double lp2 = tiny_total_loss(tr, tok, &cfg);
            *p = (float)(orig - eps / 2);
            double lm2 = tiny_total_loss(tr, tok, &cfg);
            *p = orig;
            double e1 = ((double)(float)(orig + eps) - (double)(float)(orig - eps));
            double e2 = ((double)(float)(orig + eps / 2) - (double)(float)(orig - eps / 2));
            double num = (lp - lm) / e1, num2 = (lp2 - lm2) / e2, ana = grad[t->off + j];
            double scale = fabs(num) > fabs(ana) ? fabs(num) : fabs(ana);
            /* Two step sizes: their disagreement beyond the O(eps^2) term
             * means a kink (a top-k flip) inside the interval. */
            if (fabs(num - num2) > 0.2 * scale + 2e-4) {
                skipped++; /* a routing choice flipped inside the step */
                continue;
            }
            /* Richardson extrapolation removes the eps^2 error term; the
             * absolute floor covers the f32 rounding of the loss. */
            double rich = (4.0 * num2 - num) / 3.0;
            double rel = fabs(rich - ana) / (scale + 1e-4);
            if (rel > worst) worst = rel;
            /* atol: the f32 rounding noise of the loss (~1e-6) over the step */
            double atol = 1.5e-6 / (2.0 * eps);
            if (rel > 0.02 && fabs(rich - ana) > atol) {
                fprintf(stderr, "MISMATCH %s[%lld]: analytic %.6g numeric %.6g\n", t->name, (long long)j, ana,
                        rich);
                fails++;
            }
            checked++, n_checked++;
            n_strong += scale > 10.0 * atol;
        }
        printf("%-30s checked %2d (%2d with |grad| > 10 x noise), worst rel err %.2e\n", t->name, n_checked,
               n_strong, worst);
        if (n_strong == 0) {
            fprintf(stderr, "no usable sample for %s\n", t->name);
            fails++;
        }
    }
    printf("gradcheck: %d entries checked, %d skipped at routing flips, %d mismatches\n", checked, skipped,
           fails);
    if (skipped * 5 > checked) fails++;

    /* The training forward equals the inference engine. */
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char path[1024];
    snprintf(path, sizeof path, "%s/gradcheck.gguf", tmp);
    grok_tokenizer *tk = grok_tokenizer_placeholder(hp.n_vocab, err, sizeof err);
    if (!tk || grok_train_save(path, m, tk, GROK_TYPE_F32, NULL, "gradcheck", err, sizeof err)) {
        fprintf(stderr, "save: %s\n", err);
        return 1;
    }
    grok_model *im = grok_model_load(path, err, sizeof err);
    if (!im) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    grok_context_params cp = grok_context_default_params();
    cp.pool = pool;
    grok_context *ctx = grok_context_create(im, &cp, err, sizeof err);
    float *li = malloc(sizeof(float) * (size_t)(T * hp.n_vocab));
    float *lt = malloc(sizeof(float) * (size_t)(T * hp.n_vocab));
    if (!ctx || grok_decode(ctx, tok, T, li, err, sizeof err) || grok_trainer_logits(tr, tok, T, lt)) {
        fprintf(stderr, "decode: %s\n", err);
        return 1;
    }
    double maxrel = 0;
    for (int64_t i = 0; i < T * hp.n_vocab; i++) {
        double rel = fabs((double)li[i] - lt[i]) / (fabs((double)li[i]) + 1e-2);
        if (rel > maxrel) maxrel = rel;
    }
    printf("training vs inference logits: max rel diff %.2e\n", maxrel);
    if (maxrel > 1e-4) fails++;

    /* A checkpoint round trip keeps every bit. */
    grok_train_optim_state st = {0}, st2 = {0};
    grok_train_optim_alloc(&st, m->n_params);
    for (int64_t i = 0; i < m->n_params; i++) st.m[i] = grad[i], st.v[i] = grad[i] * grad[i];
    st.step = 17, st.rng = 0x123456789abcdefull, st.seed = 5;
    snprintf(path, sizeof path, "%s/gradcheck-ckpt.gguf", tmp);
    grok_train_model *m2 = NULL;
    if (grok_train_save(path, m, tk, GROK_TYPE_F32, &st, "ckpt", err, sizeof err) ||
        grok_train_load(path, &m2, NULL, &st2, err, sizeof err)) {
        fprintf(stderr, "checkpoint: %s\n", err);
        return 1;
    }
    if (memcmp(m2->w, m->w, sizeof(float) * (size_t)m->n_params) ||
        memcmp(st2.m, st.m, sizeof(float) * (size_t)m->n_params) ||
        memcmp(st2.v, st.v, sizeof(float) * (size_t)m->n_params) || st2.step != 17 || st2.rng != st.rng ||
        st2.seed != 5) {
        fprintf(stderr, "checkpoint round trip differs\n");
        fails++;
    }
    grok_train_optim_free(&st);
    grok_train_optim_free(&st2);
    grok_train_model_free(m2);
    free(li);
    free(lt);
    grok_context_free(ctx);
    grok_model_free(im);
    grok_tokenizer_free(tk);
    free(grad);
    grok_trainer_free(tr);
    grok_train_model_free(m);
    grok_threadpool_free(pool);
    printf(fails ? "FAIL\n" : "PASS\n");
    return fails ? 1 : 0;
}
