/*
 * test_lora.c - LoRA over a frozen base (src/train/qlora.c): the gradient
 * of A and B, and the adapters at inference.
 *
 * A model of d_model 256 (whole q4_K super-blocks) with 2 layers and 4
 * experts is written as f32, q8_0 and q4_K. For each file, rank-2 adapters
 * on every target (q, k, v, o, gate, up, down, router) with B made
 * non-zero (at B = 0 the gradient of A vanishes) are differentiated:
 *  - entries of every lora_a / lora_b are perturbed both ways and the
 *    central difference of the total loss (ce + aux + z, through the same
 *    quantized base on both sides, EXACT kernels) is compared with the
 *    analytic gradient, two step sizes telling routing flips from errors;
 *  - with FAST (8-bit activation) kernels the gradient stays within 5 %
 *    of the EXACT one (finite differences do not apply there: the 8-bit
 *    rounding makes the loss a staircase at their scale);
 *  - on the f32 base, the gradient equals the full-model trainer's
 *    (backprop.c, written independently) gradient of the merged weights
 *    projected onto A and B (dA = s B^T G, dB = s G A^T);
 *  - the gradient is bit-identical for 1 and 3 threads, and for the batch
 *    split over 2 and 3 in-process "ranks" (threads exchanging through a
 *    fake communicator), with dropout on;
 *  - a target whose loss mask is 0 changes neither loss nor gradient;
 *  - the trainer's logits equal the engine's with the adapter applied
 *    (grok_model_apply_lora) and the merged file's (grok_lora_merge).
 * Then an adapter checkpoint round-trips bit for bit, and adapters of other
 * shapes and model files posing as adapters are refused.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/kernels.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/train.h"
#include "util/rng.h"

static int fails = 0;

static void expect(bool ok, const char *what) {
    printf("%-72s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) fails++;
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "%s: %s\n", what, err);
    exit(1);
}

static grok_hparams test_hparams(void) {
    grok_hparams hp = grok_hparams_grok1();
    hp.n_vocab = 48, hp.d_model = 256, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2;
    hp.head_dim = 64, hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 256, hp.n_ctx_train = 64;
    return hp;
}

/* The batch: 5 sequences of 3..8 tokens, the second with some targets masked. */
#define NSEQ 5
static int32_t g_tok[NSEQ][9];
static uint8_t g_mask[NSEQ][8];
static grok_train_seq g_seqs[NSEQ];

static void make_batch(grok_rng *r) {
    static const int64_t len[NSEQ] = {6, 8, 3, 7, 5};
    for (int s = 0; s < NSEQ; s++) {
        for (int i = 0; i < 9; i++) g_tok[s][i] = 4 + (int32_t)(grok_rng_next(r) % 44);
        for (int i = 0; i < 8; i++) g_mask[s][i] = s != 1 || i % 3 != 0;
        g_seqs[s] = (grok_train_seq){g_tok[s], s == 1 ? g_mask[s] : NULL, len[s]};
    }
}

static double total_loss(grok_qlora *q, const grok_qlora_step_cfg *c, int nseq) {
    char err[GROK_ERR_SIZE];
    grok_train_losses l;
    grok_qlora_step_cfg cc = *c;
    cc.batch = nseq;
    if (grok_qlora_step(q, g_seqs, &cc, &l, NULL, err, sizeof err)) die("step", err);
    return l.total;
}

/* ---- an in-process communicator: threads as ranks ---- */

typedef struct {
    int n;
    pthread_barrier_t bar;
    const void *send[4];
    const size_t *counts[4];
} fake_net;

typedef struct {
    fake_net *net;
    int rank;
} fake_ud;

static int fake_allgatherv(void *ud, const void *mine, void *all, const size_t *counts, char *err,
                           size_t es) {
    (void)err, (void)es;
    fake_ud *u = ud;
    fake_net *n = u->net;
    n->send[u->rank] = mine;
    pthread_barrier_wait(&n->bar);
    size_t off = 0;
    for (int r = 0; r < n->n; r++) {
        memcpy((char *)all + off, n->send[r], counts[r]);
        off += counts[r];
    }
    pthread_barrier_wait(&n->bar);
    return 0;
}

static int fake_alltoallv(void *ud, const void *send, const size_t *sc, void *recv, const size_t *rc,
                          char *err, size_t es) {
    (void)err, (void)es, (void)rc;
    fake_ud *u = ud;
    fake_net *n = u->net;
    n->send[u->rank] = send, n->counts[u->rank] = sc;
    pthread_barrier_wait(&n->bar);
    size_t at = 0;
    for (int j = 0; j < n->n; j++) { /* rank j's part for me */
        size_t off = 0;
        for (int k = 0; k < u->rank; k++) off += n->counts[j][k];
        memcpy((char *)recv + at, (const char *)n->send[j] + off, n->counts[j][u->rank]);
        at += n->counts[j][u->rank];
    }
    pthread_barrier_wait(&n->bar);
    return 0;
}

typedef struct {
    const grok_model *m;
    const grok_train_lora *l;
    grok_qlora_step_cfg cfg;
    fake_ud ud;
    float *grad;
    double loss;
    int rc;
} rank_job;

static void *rank_main(void *arg) {
    rank_job *j = arg;
    char err[GROK_ERR_SIZE];
    grok_train_comm comm = {j->ud.rank, j->ud.net->n, fake_allgatherv, fake_alltoallv, &j->ud};
    j->cfg.comm = &comm;
    int64_t lo, hi;
    grok_gradsum_share(j->cfg.batch, j->ud.rank, j->ud.net->n, &lo, &hi);
    grok_threadpool *pool = grok_threadpool_create(1);
    grok_qlora *q = grok_qlora_create(j->m, j->l, 64, 8, true, pool, err, sizeof err);
    grok_train_losses l;
    j->rc = q ? grok_qlora_step(q, g_seqs + lo, &j->cfg, &l, j->grad, err, sizeof err) : -1;
    if (j->rc) fprintf(stderr, "rank %d: %s\n", j->ud.rank, err);
    j->loss = l.total;
    grok_qlora_free(q);
    grok_threadpool_free(pool);
    return NULL;
}

/* The gradient of the batch over n in-process ranks. */
static int split_grad(const grok_model *m, const grok_train_lora *l, const grok_qlora_step_cfg *cfg, int n,
                      float *grad, double *loss) {
    fake_net net = {.n = n};
    pthread_barrier_init(&net.bar, NULL, (unsigned)n);
    rank_job jobs[4];
    pthread_t th[4];
    const size_t bytes = sizeof(float) * (size_t)l->p->n_params;
    for (int r = 0; r < n; r++) {
        jobs[r] = (rank_job){m, l, *cfg, {&net, r}, r == 0 ? grad : malloc(bytes), 0, 0};
        pthread_create(&th[r], NULL, rank_main, &jobs[r]);
    }
    int rc = 0;
    for (int r = 0; r < n; r++) {
        pthread_join(th[r], NULL);
        rc |= jobs[r].rc;
        if (r > 0 && memcmp(jobs[r].grad, grad, bytes) != 0) rc |= 2; /* every rank the same bits */
        if (jobs[r].loss != jobs[0].loss) rc |= 4;
        if (r > 0) free(jobs[r].grad);
    }
    *loss = jobs[0].loss;
    pthread_barrier_destroy(&net.bar);
    return rc;
}

/* ---- the full-model oracle ---- */

/* The projection of the full trainer's gradient of the merged weights. */
static void oracle_grad(grok_train_model *fm, const grok_train_lora *l, grok_threadpool *pool, float *out) {
    char err[GROK_ERR_SIZE];
    grok_train_model *mm = grok_train_model_create(&fm->hp, err, sizeof err);
    memcpy(mm->w, fm->w, sizeof(float) * (size_t)fm->n_params);
    int64_t *off = malloc(sizeof(int64_t) * (size_t)l->n_t);
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        char n[64];
        grok_tensor_name(n, sizeof n, t->layer, grok_lora_target_names[t->kind]);
        off[i] = -1;
        for (int64_t k = 0; k < mm->n_tensors; k++)
            if (strcmp(mm->tensors[k].name, n) == 0) off[i] = mm->tensors[k].off;
        for (int64_t e = 0; e < t->n_mats; e++)
            grok_lora_add(mm->w + off[i] + e * t->rows * t->cols, l->p->w + t->a + e * t->rank * t->cols,
                          l->p->w + t->b + e * t->rows * t->rank, t->rows, t->cols, t->rank, t->scale);
    }
    /* the first two sequences, both 6 tokens, unmasked */
    int32_t tok[2 * 7];
    memcpy(tok, g_tok[0], sizeof(int32_t) * 7);
    memcpy(tok + 7, g_tok[3], sizeof(int32_t) * 7);
    grok_trainer *tr = grok_trainer_create(mm, 2, 6, pool, err, sizeof err);
    float *G = malloc(sizeof(float) * (size_t)mm->n_params);
    grok_train_loss_cfg cfg = {0.5f, 0.1f};
    grok_train_losses ls;
    grok_trainer_step(tr, tok, 2, 6, &cfg, &ls, G);
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        const int64_t R = t->rank;
        for (int64_t e = 0; e < t->n_mats; e++) {
            const float *g = G + off[i] + e * t->rows * t->cols;
            const float *A = l->p->w + t->a + e * R * t->cols, *B = l->p->w + t->b + e * t->rows * R;
            float *dA = out + t->a + e * R * t->cols, *dB = out + t->b + e * t->rows * R;
            for (int64_t k = 0; k < R; k++)
                for (int64_t c = 0; c < t->cols; c++) {
                    double acc = 0;
                    for (int64_t o = 0; o < t->rows; o++) acc += (double)B[o * R + k] * g[o * t->cols + c];
                    dA[k * t->cols + c] = (float)(t->scale * acc);
                }
            for (int64_t o = 0; o < t->rows; o++)
                for (int64_t k = 0; k < R; k++) {
                    double acc = 0;
                    for (int64_t c = 0; c < t->cols; c++)
                        acc += (double)g[o * t->cols + c] * A[k * t->cols + c];
                    dB[o * R + k] = (float)(t->scale * acc);
                }
        }
    }
    free(G), free(off);
    grok_trainer_free(tr);
    grok_train_model_free(mm);
}

/* ---- finite differences ---- */

/* Checks 5 entries of every tensor (4 random, the largest gradient);
 * returns the median relative error of the checked entries. tol: the
 * relative error allowed. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double gradcheck(const char *what, grok_qlora *q, grok_train_lora *l, const grok_qlora_step_cfg *cfg,
                        const float *grad, grok_rng *r, double tol) {
    int checked = 0, skipped = 0, mism = 0;
    double rels[1024];
    for (int64_t ti = 0; ti < l->p->n_tensors; ti++) {
        const grok_train_tensor *t = &l->p->tensors[ti];
        const int64_t n = t->rows * t->cols * t->n_mats;
        int64_t best = 0;
        for (int64_t j = 1; j < n; j++)
            if (fabsf(grad[t->off + j]) > fabsf(grad[t->off + best])) best = j;
        int n_strong = 0;
        for (int s = 0; s < 5; s++) {
            const int64_t j = s < 4 ? (int64_t)(grok_rng_next(r) % (uint64_t)n) : best;
            float *p = &l->p->w[t->off + j], orig = *p;
            const double eps = 0.02;
            const double steps[4] = {eps, -eps, eps / 2, -eps / 2};
            double lv[4];
            for (int k = 0; k < 4; k++) {
                *p = (float)(orig + steps[k]);
                lv[k] = total_loss(q, cfg, 2);
            }
            *p = orig;
            const double e1 = (double)(float)(orig + eps) - (double)(float)(orig - eps);
            const double e2 = (double)(float)(orig + eps / 2) - (double)(float)(orig - eps / 2);
            const double num = (lv[0] - lv[1]) / e1, num2 = (lv[2] - lv[3]) / e2, ana = grad[t->off + j];
            const double scale = fabs(num) > fabs(ana) ? fabs(num) : fabs(ana);
            if (fabs(num - num2) > 0.2 * scale + 2e-4) { /* a routing choice flipped inside the step */
                skipped++;
                continue;
            }
            const double rich = (4.0 * num2 - num) / 3.0, atol = 2e-6 / (2.0 * eps);
            if (checked < 1024 && scale > 10.0 * atol) rels[checked] = fabs(rich - ana) / scale;
            if (fabs(rich - ana) > tol * (scale + 1e-4) && fabs(rich - ana) > atol) {
                fprintf(stderr, "MISMATCH %s %s[%lld]: analytic %.6g numeric %.6g\n", what, t->name,
                        (long long)j, ana, rich);
                mism++;
            }
            if (!(scale > 10.0 * atol) && checked < 1024) rels[checked] = 0;
            checked++;
            n_strong += scale > 10.0 * atol;
        }
        if (n_strong == 0) {
            fprintf(stderr, "%s: no usable sample for %s\n", what, t->name);
            mism++;
        }
    }
    const int nr = checked < 1024 ? checked : 1024;
    qsort(rels, (size_t)nr, sizeof rels[0], cmp_double);
    const double med = nr ? rels[nr / 2] : 0, p90 = nr ? rels[nr * 9 / 10] : 0;
    printf("  %s: %d tensors, %d entries checked, %d skipped at routing flips, %d beyond %.0f%%; "
           "relative error median %.2e, 90th percentile %.2e\n",
           what, (int)l->p->n_tensors, checked, skipped, mism, tol * 100, med, p90);
    char msg[128];
    snprintf(msg, sizeof msg, "%s: dA, dB equal finite differences through the base", what);
    expect(mism == 0 && skipped * 5 <= checked, msg);
    return med;
}

static float *engine_logits(const char *path, const char *adapter, const int32_t *tok, int64_t T,
                            grok_threadpool *pool) {
    char err[GROK_ERR_SIZE];
    grok_model *im = grok_model_load(path, err, sizeof err);
    if (!im || (adapter && grok_model_apply_lora(im, adapter, 1.0f, err, sizeof err)))
        die("engine load", err);
    grok_context_params cp = grok_context_default_params();
    cp.pool = pool;
    grok_context *ctx = grok_context_create(im, &cp, err, sizeof err);
    const int64_t V = grok_model_hparams(im)->n_vocab;
    float *out = malloc(sizeof(float) * (size_t)(T * V)), *last = malloc(sizeof(float) * (size_t)V);
    if (!ctx || grok_decode(ctx, tok, T, out, err, sizeof err)) die("decode", err);
    memcpy(last, out + (T - 1) * V, sizeof(float) * (size_t)V);
    free(out);
    grok_context_free(ctx);
    grok_model_free(im);
    return last;
}

static double max_rel(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (fabs((double)b[i]) + 1e-2);
        if (d > m) m = d;
    }
    return m;
}

int main(void) {
    char err[GROK_ERR_SIZE];
    grok_kernels_set_mode(GROK_KERNELS_EXACT);
    const grok_hparams hp = test_hparams();
    grok_rng r = {123};
    grok_train_model *fm = grok_train_model_create(&hp, err, sizeof err);
    if (!fm) die("model", err);
    grok_train_model_init_random(fm, 11);
    for (int64_t i = 0; i < fm->n_tensors; i++)
        if (fm->tensors[i].is_norm)
            for (int64_t j = 0; j < fm->tensors[i].cols; j++)
                fm->w[fm->tensors[i].off + j] += 0.2f * grok_rng_normal(&r);
    make_batch(&r);

    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    const grok_type types[3] = {GROK_TYPE_F32, GROK_TYPE_Q8_0, GROK_TYPE_Q4_K};
    char paths[3][1024], ad_path[1024], ck_path[1024], merged_path[1024], other_path[1024];
    grok_tokenizer *tk = grok_tokenizer_placeholder(hp.n_vocab, err, sizeof err);
    for (int i = 0; i < 3; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/qlora-base-%s.gguf", tmp,
                 grok_type_get_traits(types[i])->name);
        if (!tk || grok_train_save(paths[i], fm, tk, types[i], NULL, "qlora-base", err, sizeof err))
            die("save", err);
    }
    snprintf(ad_path, sizeof ad_path, "%s/qlora-adapter.gguf", tmp);
    snprintf(ck_path, sizeof ck_path, "%s/qlora-ckpt.gguf", tmp);
    snprintf(merged_path, sizeof merged_path, "%s/qlora-merged.gguf", tmp);
    snprintf(other_path, sizeof other_path, "%s/qlora-other.gguf", tmp);

    const unsigned all = GROK_TRAIN_LORA_ATTN | GROK_TRAIN_LORA_EXPERTS | GROK_TRAIN_LORA_ROUTER;
    grok_train_lora *l = grok_train_lora_create(&hp, 2, 3.0f, all, 5, err, sizeof err);
    if (!l) die("lora", err);
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        for (int64_t j = 0; j < t->rows * t->rank * t->n_mats; j++)
            l->p->w[t->b + j] = 0.3f * grok_rng_normal(&r);
    }
    expect(l->n_t == 16 && grok_train_lora_find(l, 1, GROK_LORA_T_ROUTER)->rank == 2,
           "adapters on q, k, v, o, gate, up, down and the router of both layers");
    const int64_t P = l->p->n_params;
    float *grad = malloc(sizeof(float) * (size_t)P), *g2 = malloc(sizeof(float) * (size_t)P);
    grok_threadpool *pool = grok_threadpool_create(2), *pool1 = grok_threadpool_create(1),
                    *pool3 = grok_threadpool_create(3);
    grok_qlora_step_cfg cfg = {{0.5f, 0.1f}, 0, 0, 2, NULL};
    grok_train_losses ls;

    for (int ti = 0; ti < 3; ti++) {
        const char *tn = grok_type_get_traits(types[ti])->name;
        grok_model *base = grok_model_load(paths[ti], err, sizeof err);
        if (!base) die("load", err);
        expect(base->layers[0].wq.type == types[ti], "the base keeps its stored type");
        /* one thread for the many small steps of the checks (a pool's
         * wake-ups would cost more than their work); 2 and 3 below */
        grok_qlora *q = grok_qlora_create(base, l, 64, 8, true, pool1, err, sizeof err);
        if (!q) die("qlora", err);
        if (grok_qlora_step(q, g_seqs, &cfg, &ls, grad, err, sizeof err)) die("step", err);
        printf("%s base: loss ce %.5f aux %.5f z %.5f total %.5f\n", tn, ls.ce, ls.aux, ls.z, ls.total);
        gradcheck(tn, q, l, &cfg, grad, &r, 0.02);
        if (types[ti] == GROK_TYPE_Q8_0) {
            /* FAST kernels: 8-bit activations in the forward pass. Their
             * rounding makes the loss a staircase at the scale of finite
             * differences (most samples jump; docs/finetune.md), so only
             * the gradient itself is compared with the EXACT one. */
            grok_kernels_set_mode(GROK_KERNELS_FAST);
            grok_train_losses lf;
            if (grok_qlora_step(q, g_seqs, &cfg, &lf, g2, err, sizeof err)) die("step", err);
            grok_kernels_set_mode(GROK_KERNELS_EXACT);
            double dd = 0, nn = 0;
            for (int64_t i = 0; i < P; i++)
                dd += ((double)g2[i] - grad[i]) * ((double)g2[i] - grad[i]), nn += (double)grad[i] * grad[i];
            printf("  q8_0, FAST kernels: loss %.5f (EXACT %.5f), gradient differs by %.2e (relative L2)\n",
                   lf.total, ls.total, sqrt(dd / nn));
            expect(sqrt(dd / nn) < 0.05 && fabs(lf.total - ls.total) < 1e-2 * ls.total,
                   "q8_0: the FAST-kernel gradient is within 5% of the EXACT one");
        }
        if (types[ti] == GROK_TYPE_F32) {
            /* against the independent full-model trainer */
            grok_train_seq keep[2] = {g_seqs[0], g_seqs[1]};
            g_seqs[1] = g_seqs[3];
            g_seqs[0].n = g_seqs[1].n = 6;
            g_seqs[1].mask = NULL;
            if (grok_qlora_step(q, g_seqs, &cfg, &ls, grad, err, sizeof err)) die("step", err);
            g_seqs[0] = keep[0], g_seqs[1] = keep[1];
            oracle_grad(fm, l, pool, g2);
            double worst = 0, gmax = 0;
            for (int64_t i = 0; i < P; i++) gmax = fmax(gmax, fabs((double)g2[i]));
            for (int64_t i = 0; i < P; i++) worst = fmax(worst, fabs((double)grad[i] - g2[i]));
            printf("  f32 base vs the full trainer's projected gradient: max |diff| %.3g (max |g| %.3g)\n",
                   worst, gmax);
            expect(worst <= 2e-4 * gmax, "f32 base: the gradient equals the full trainer's, projected");
        }

        /* threads and in-process ranks: the same bits */
        grok_qlora_step_cfg dc = cfg;
        dc.batch = NSEQ, dc.dropout = 0.1f, dc.dropout_seed = 77;
        if (grok_qlora_step(q, g_seqs, &dc, &ls, grad, err, sizeof err)) die("step", err);
        const double loss1 = ls.total;
        grok_qlora *q1 = grok_qlora_create(base, l, 64, 8, true, pool, err, sizeof err);
        grok_qlora *q3 = grok_qlora_create(base, l, 64, 8, true, pool3, err, sizeof err);
        bool same = q1 && q3;
        for (int k = 0; same && k < 2; k++) {
            if (grok_qlora_step(k ? q3 : q1, g_seqs, &dc, &ls, g2, err, sizeof err)) die("step", err);
            same = memcmp(g2, grad, sizeof(float) * (size_t)P) == 0 && ls.total == loss1;
        }
        char msg[128];
        snprintf(msg, sizeof msg, "%s: the gradient is bit-identical for 1, 2 and 3 threads (dropout on)",
                 tn);
        expect(same, msg);
        for (int np = 2; np <= 3; np++) {
            double lr;
            int rc = split_grad(base, l, &dc, np, g2, &lr);
            snprintf(msg, sizeof msg, "%s: %d ranks give the one-process gradient and loss bit for bit", tn,
                     np);
            expect(rc == 0 && memcmp(g2, grad, sizeof(float) * (size_t)P) == 0 && lr == loss1, msg);
        }
        /* a masked target changes nothing; an unmasked one does */
        grok_qlora_step_cfg mc = cfg;
        if (grok_qlora_step(q, g_seqs, &mc, &ls, grad, err, sizeof err)) die("step", err);
        const double l0 = ls.total;
        const int32_t keep3 = g_tok[1][4], keep4 = g_tok[1][5]; /* target 3 of sequence 1 is masked */
        g_tok[1][4] = (g_tok[1][4] + 7) % 44 + 4;
        if (grok_qlora_step(q, g_seqs, &mc, &ls, g2, err, sizeof err)) die("step", err);
        (void)keep4;
        /* the token is also the input at position 4, so only the loss term of
         * target 3 may not move: compare with the input unchanged via a
         * sequence that ends right after it */
        g_tok[1][4] = keep3;
        grok_train_seq s1 = g_seqs[1];
        g_seqs[1].n = 4; /* targets 0..3: target 3 (token 4) masked */
        if (grok_qlora_step(q, g_seqs, &mc, &ls, grad, err, sizeof err)) die("step", err);
        const double lm = ls.total;
        g_tok[1][4] = (g_tok[1][4] + 7) % 44 + 4;
        if (grok_qlora_step(q, g_seqs, &mc, &ls, g2, err, sizeof err)) die("step", err);
        snprintf(msg, sizeof msg, "%s: a masked target changes neither the loss nor the gradient", tn);
        expect(ls.total == lm && memcmp(g2, grad, sizeof(float) * (size_t)P) == 0, msg);
        g_tok[1][3] = (g_tok[1][3] + 5) % 44 + 4; /* an unmasked target (2) */
        if (grok_qlora_step(q, g_seqs, &mc, &ls, g2, err, sizeof err)) die("step", err);
        snprintf(msg, sizeof msg, "%s: an unmasked target does change them", tn);
        expect(ls.total != lm, msg);
        g_tok[1][3] = (g_tok[1][3] - 5 - 4 + 44 * 2) % 44 + 4;
        g_tok[1][4] = keep3;
        g_seqs[1] = s1;
        (void)l0;

        /* the trainer's forward equals the engine with the adapter applied */
        if (grok_train_lora_save(ad_path, l, "qlora-base", NULL, err, sizeof err)) die("adapter", err);
        float *lt = malloc(sizeof(float) * (size_t)hp.n_vocab);
        if (grok_qlora_logits(q, g_tok[3], 7, lt, err, sizeof err)) die("logits", err);
        float *la = engine_logits(paths[ti], ad_path, g_tok[3], 7, pool);
        float *lb = engine_logits(paths[ti], NULL, g_tok[3], 7, pool);
        const double rel = max_rel(lt, la, hp.n_vocab), moved = max_rel(la, lb, hp.n_vocab);
        printf("  %s: trainer vs engine + adapter: max rel diff %.2e (the adapter moves them by %.3f)\n", tn,
               rel, moved);
        snprintf(msg, sizeof msg, "%s: trainer logits equal the engine's with the adapter applied", tn);
        expect(rel < 1e-4 && moved > 1e-2, msg);
        if (grok_lora_merge(paths[ti], ad_path, merged_path, GROK_TYPE_F32, 1.0f, err, sizeof err))
            die("merge", err);
        float *lm2 = engine_logits(merged_path, NULL, g_tok[3], 7, pool);
        const double mr = max_rel(lm2, la, hp.n_vocab);
        printf("  %s: merged (f32) vs applied: max rel diff %.2e\n", tn, mr);
        snprintf(msg, sizeof msg, "%s: merged (f32) equals applied (W x + s B A x) within 1e-4", tn);
        expect(mr < 1e-4, msg);
        free(lt), free(la), free(lb), free(lm2);
        grok_qlora_free(q), grok_qlora_free(q1), grok_qlora_free(q3);
        grok_model_free(base);
    }

    /* An adapter checkpoint keeps every bit. */
    grok_train_optim_state st = {0}, st2 = {0};
    grok_train_optim_alloc(&st, P);
    for (int64_t i = 0; i < P; i++) st.m[i] = grad[i], st.v[i] = grad[i] * grad[i];
    st.step = 9, st.rng = 0xfeedfacecafebeefull, st.seed = 3;
    grok_train_lora *l2 = NULL;
    if (grok_train_lora_save(ck_path, l, "qlora-base", &st, err, sizeof err) ||
        grok_train_lora_load(ck_path, &hp, &l2, &st2, err, sizeof err))
        die("checkpoint", err);
    const size_t nb = sizeof(float) * (size_t)P;
    expect(l2->p->n_params == P && !memcmp(l2->p->w, l->p->w, nb) && !memcmp(st2.m, st.m, nb) &&
               !memcmp(st2.v, st.v, nb) && st2.step == 9 && st2.rng == st.rng && st2.seed == 3 &&
               l2->rank == 2 && l2->alpha == 3.0f && l2->targets == all,
           "adapter checkpoint round trip is exact (targets included)");

    /* A base of other shapes and a model posing as an adapter are refused. */
    grok_hparams ho = hp;
    ho.n_ff = 512;
    grok_train_model *mo = grok_train_model_create(&ho, err, sizeof err);
    grok_train_model_init_random(mo, 1);
    if (grok_train_save(other_path, mo, tk, GROK_TYPE_Q8_0, NULL, "other", err, sizeof err)) die("save", err);
    grok_model *im = grok_model_load(other_path, err, sizeof err);
    int rc = im ? grok_model_apply_lora(im, ad_path, 1.0f, err, sizeof err) : 0;
    expect(im && rc != 0 && strstr(err, "different base model"), "a base of other shapes is refused");
    grok_train_lora *l3 = NULL;
    rc = grok_train_lora_load(ad_path, &ho, &l3, NULL, err, sizeof err);
    expect(rc != 0 && strstr(err, "different base model"), "the trainer refuses it too");
    grok_qlora *qo = im ? grok_qlora_create(im, l, 64, 8, false, pool, err, sizeof err) : NULL;
    expect(!qo, "and so does the trainer over that base");
    rc = grok_lora_merge(other_path, ad_path, merged_path, -1, 1.0f, err, sizeof err);
    expect(rc != 0 && strstr(err, "different base model"), "and so does merge");
    grok_model_free(im);
    im = grok_model_load(paths[0], err, sizeof err);
    rc = im ? grok_model_apply_lora(im, other_path, 1.0f, err, sizeof err) : 0;
    expect(im && rc != 0 && strstr(err, "not a LoRA adapter"), "a model file is not an adapter");
    grok_model_free(im);

    grok_train_lora_free(l2), grok_train_lora_free(l3), grok_train_lora_free(l);
    grok_train_model_free(mo), grok_train_model_free(fm);
    grok_train_optim_free(&st), grok_train_optim_free(&st2);
    free(grad), free(g2);
    grok_tokenizer_free(tk);
    grok_threadpool_free(pool), grok_threadpool_free(pool1), grok_threadpool_free(pool3);
    printf(fails ? "FAIL\n" : "PASS\n");
    return fails ? 1 : 0;
}
