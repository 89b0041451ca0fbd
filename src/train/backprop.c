/*
 * backprop.c - forward and backward passes of the Grok architecture
 * (GROK1.md) for training, in f32, one sequence at a time per thread.
 *
 * The forward pass keeps every activation the backward pass needs; the
 * backward pass is written out by hand, operation by operation, in reverse.
 * A step runs in three phases over the thread pool: forward for every
 * sequence (the load-balancing loss needs the routing fractions of the
 * whole batch before any router gradient exists), backward for every
 * sequence into per-thread gradient buffers, then a reduction that adds the
 * thread buffers in thread order, so that a step's result depends only on
 * its inputs and the thread count, never on scheduling.
 *
 * Losses: cross-entropy (mean over all tokens of the batch), the
 * Switch/Mixtral load-balancing loss n_experts * sum_e f_e * P_e per layer
 * (f_e: share of the batch's top-k routing slots that went to e, so 1 means
 * perfectly balanced; P_e: mean router probability) and the router z-loss
 * mean_t logsumexp(router logits)^2, each averaged over layers. f_e has no
 * gradient (it is a count); P_e carries it to the router. Gates are the raw
 * softmax probabilities of the chosen experts, so the router also learns
 * through them, via the softmax Jacobian. Padding keys are not masked:
 * training text never contains PAD.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "train/train.h"

/* Activations of one sequence, kept from forward to backward. */
typedef struct {
    float *h;          /* [L+1][T][d] residual stream entering each layer; h[L] the last */
    float *xa;         /* [L][T][d] attention input after its norm */
    float *rs_a;       /* [L][T] 1/rms of h for that norm */
    float *q;          /* [L][T][qd] after RoPE */
    float *k, *v;      /* [L][T][kvd] (k after RoPE) */
    float *cc;         /* [L][H][T][T] capped scores cap*tanh(s/cap) */
    float *pp;         /* [L][H][T][T] attention probabilities */
    float *ao;         /* [L][T][qd] attention output before Wo */
    float *a;          /* [L][T][d] after Wo */
    float *rs_ao;      /* [L][T] */
    float *hm;         /* [L][T][d] after the attention residual add */
    float *xf;         /* [L][T][d] MoE input after its norm */
    float *rs_f;       /* [L][T] */
    float *rp;         /* [L][T][E] router probabilities */
    float *lse;        /* [L][T] logsumexp of the router logits */
    int32_t *sel;      /* [L][T][K] chosen experts */
    int32_t *ord;      /* [L][T*K] routing slots (t*K+k) sorted by expert */
    int32_t *slot_pos; /* [L][T*K] position of slot t*K+k in ord */
    int32_t *eoff;     /* [L][E+1] start of each expert's slots in ord */
    float *g, *u;      /* [L][T*K][ff] expert pre-activations, in ord order */
    float *act;        /* [L][T*K][ff] gelu(g) * u */
    float *eo;         /* [L][T*K][d] expert outputs */
    float *mo;         /* [L][T][d] gated sum of the expert outputs */
    float *rs_m;       /* [L][T] */
    float *rs_o;       /* [T] final norm */
    float *hf;         /* [T][d] after the final norm */
    float *dhf;        /* [T][d] gradient of the loss at hf (from the output head) */
    int64_t *cnt;      /* [L][E] routing slots per expert */
    double *psum;      /* [L][E] sum over tokens of router probabilities */
    double *zsum;      /* [L] sum over tokens of lse^2 */
    double ce_sum;
} seq_ws;

/* Per-thread scratch and gradient accumulator. */
typedef struct {
    float *grad;                                           /* [n_params] */
    float *logit;                                          /* [T][V] */
    float *dh, *dtmp, *dxf, *dm, *da, *dao, *dq, *dk, *dv; /* [T][max(d,qd)] */
    float *xg;                                             /* [T*K][d] gathered inputs */
    float *dxg;                                            /* [T*K][d] */
    float *deo;                                            /* [T*K][d] */
    float *dact;                                           /* [T*K][ff] */
    float *dp;                                             /* [T][E] */
    float *row;                                            /* [T] */
} thr_ws;

struct grok_trainer {
    const grok_train_model *m;
    grok_threadpool *pool;
    int nth;
    int64_t max_b, max_t;
    seq_ws *ws;
    thr_ws *tw;
    int64_t *counts; /* [L][E] cumulative */
    double *fe;      /* [L][E] routing share of the current batch */
    /* the current job */
    const int32_t *tokens;
    int64_t n_b, n_t;
    grok_train_loss_cfg cfg;
    bool want_grad;
    float *grad_out;
    float *logits_out;
};

/* ---------------------------------------------------------------- kernels */

static inline float dotf(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

/* y[t][o] = x[t] . W[o] for t < n; W is [out][in]. Blocks of W rows stay
 * in cache while the tokens pass. */
static void mm_fwd(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t n, const float *W, int64_t out,
                   int64_t in) {
    for (int64_t o0 = 0; o0 < out; o0 += 16) {
        int64_t o1 = o0 + 16 < out ? o0 + 16 : out;
        for (int64_t t = 0; t < n; t++)
            for (int64_t o = o0; o < o1; o++) y[t * ldy + o] = dotf(x + t * ldx, W + o * in, in);
    }
}

/* dx[t] += sum_o dy[t][o] W[o] */
static void mm_bwd_x(float *dx, int64_t lddx, const float *dy, int64_t lddy, int64_t n, const float *W,
                     int64_t out, int64_t in) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t o = 0; o < out; o++) {
            float g = dy[t * lddy + o];
            if (g != 0.0f) axpy(dx + t * lddx, g, W + o * in, in);
        }
}

/* dW[o] += sum_t dy[t][o] x[t] */
static void mm_bwd_w(float *dW, const float *dy, int64_t lddy, const float *x, int64_t ldx, int64_t n,
                     int64_t out, int64_t in) {
    for (int64_t o = 0; o < out; o++)
        for (int64_t t = 0; t < n; t++) {
            float g = dy[t * lddy + o];
            if (g != 0.0f) axpy(dW + o * in, g, x + t * ldx, in);
        }
}

static void rmsnorm_fwd(float *y, float *rs, const float *x, const float *w, int64_t n, int64_t d,
                        float eps) {
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * d;
        float r = 1.0f / sqrtf(dotf(xt, xt, d) / (float)d + eps);
        rs[t] = r;
        for (int64_t i = 0; i < d; i++) y[t * d + i] = w[i] * xt[i] * r;
    }
}

/* dx += d(norm)/dx . dy ; dw += d(norm)/dw . dy */
static void rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                        const float *rs, int64_t n, int64_t d) {
    for (int64_t t = 0; t < n; t++) {
        const float *xt = x + t * d, *gt = dy + t * d;
        float r = rs[t], s = 0.0f;
        for (int64_t i = 0; i < d; i++) s += w[i] * gt[i] * xt[i];
        float c = r * r * s / (float)d;
        for (int64_t i = 0; i < d; i++) {
            dx[t * d + i] += r * (w[i] * gt[i] - xt[i] * c);
            dw[i] += gt[i] * xt[i] * r;
        }
    }
}

static inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654f;
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static inline float gelu_tanh_grad(float x) {
    const float k = 0.7978845608028654f;
    float th = tanhf(k * (x + 0.044715f * x * x * x));
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * k * (1.0f + 3.0f * 0.044715f * x * x);
}

/* Half-split rotation of each head vector of x [n][n_heads*D] at positions
 * 0..n-1; inverse = rotation by the negative angle (for backward). */
static void rope(float *x, int64_t n, int64_t n_heads, int64_t D, float base, bool inverse) {
    const int64_t h2 = D / 2;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < h2; i++) {
            double theta = (double)t / pow((double)base, (double)(2 * i) / (double)D);
            float c = (float)cos(theta), s = (float)sin(theta);
            if (inverse) s = -s;
            for (int64_t h = 0; h < n_heads; h++) {
                float *v = x + t * n_heads * D + h * D;
                float a = v[i], b = v[i + h2];
                v[i] = a * c - b * s;
                v[i + h2] = b * c + a * s;
            }
        }
}

/* ---------------------------------------------------------------- setup */

#define SZ(x) ((size_t)(x))

static void *zalloc(size_t n, size_t sz, bool *ok) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) *ok = false;
    return p;
}

grok_trainer *grok_trainer_create(const grok_train_model *m, int64_t max_b, int64_t max_t,
                                  grok_threadpool *pool, char *err, size_t err_size) {
    const grok_hparams *hp = &m->hp;
    if (max_b < 1 || max_t < 1 || max_t > hp->n_ctx_train) {
        snprintf(err, err_size, "train: batch %lld x sequence %lld does not fit the context %lld",
                 (long long)max_b, (long long)max_t, (long long)hp->n_ctx_train);
        return NULL;
    }
    grok_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    tr->m = m, tr->pool = pool, tr->nth = grok_threadpool_size(pool);
    tr->max_b = max_b, tr->max_t = max_t;
    const int64_t T = max_t, d = hp->d_model, L = hp->n_layers, E = hp->n_experts;
    const int64_t K = hp->n_experts_used, ff = hp->n_ff, H = hp->n_heads;
    const int64_t qd = H * hp->head_dim, kvd = hp->n_kv_heads * hp->head_dim;
    const int64_t wd = d > qd ? d : qd;
    bool ok = true;
    tr->ws = zalloc(SZ(max_b), sizeof *tr->ws, &ok);
    tr->tw = zalloc(SZ(tr->nth), sizeof *tr->tw, &ok);
    tr->counts = zalloc(SZ(L * E), sizeof(int64_t), &ok);
    tr->fe = zalloc(SZ(L * E), sizeof(double), &ok);
    for (int64_t b = 0; ok && b < max_b; b++) {
        seq_ws *s = &tr->ws[b];
        s->h = zalloc(SZ((L + 1) * T * d), sizeof(float), &ok);
        s->xa = zalloc(SZ(L * T * d), sizeof(float), &ok);
        s->rs_a = zalloc(SZ(L * T), sizeof(float), &ok);
        s->q = zalloc(SZ(L * T * qd), sizeof(float), &ok);
        s->k = zalloc(SZ(L * T * kvd), sizeof(float), &ok);
        s->v = zalloc(SZ(L * T * kvd), sizeof(float), &ok);
        s->cc = zalloc(SZ(L * H * T * T), sizeof(float), &ok);
        s->pp = zalloc(SZ(L * H * T * T), sizeof(float), &ok);
        s->ao = zalloc(SZ(L * T * qd), sizeof(float), &ok);
        s->a = zalloc(SZ(L * T * d), sizeof(float), &ok);
        s->rs_ao = zalloc(SZ(L * T), sizeof(float), &ok);
        s->hm = zalloc(SZ(L * T * d), sizeof(float), &ok);
        s->xf = zalloc(SZ(L * T * d), sizeof(float), &ok);
        s->rs_f = zalloc(SZ(L * T), sizeof(float), &ok);
        s->rp = zalloc(SZ(L * T * E), sizeof(float), &ok);
        s->lse = zalloc(SZ(L * T), sizeof(float), &ok);
        s->sel = zalloc(SZ(L * T * K), sizeof(int32_t), &ok);
        s->ord = zalloc(SZ(L * T * K), sizeof(int32_t), &ok);
        s->slot_pos = zalloc(SZ(L * T * K), sizeof(int32_t), &ok);
        s->eoff = zalloc(SZ(L * (E + 1)), sizeof(int32_t), &ok);
        s->g = zalloc(SZ(L * T * K * ff), sizeof(float), &ok);
        s->u = zalloc(SZ(L * T * K * ff), sizeof(float), &ok);
        s->act = zalloc(SZ(L * T * K * ff), sizeof(float), &ok);
        s->eo = zalloc(SZ(L * T * K * d), sizeof(float), &ok);
        s->mo = zalloc(SZ(L * T * d), sizeof(float), &ok);
        s->rs_m = zalloc(SZ(L * T), sizeof(float), &ok);
        s->rs_o = zalloc(SZ(T), sizeof(float), &ok);
        s->hf = zalloc(SZ(T * d), sizeof(float), &ok);
        s->dhf = zalloc(SZ(T * d), sizeof(float), &ok);
        s->cnt = zalloc(SZ(L * E), sizeof(int64_t), &ok);
        s->psum = zalloc(SZ(L * E), sizeof(double), &ok);
        s->zsum = zalloc(SZ(L), sizeof(double), &ok);
    }
    for (int j = 0; ok && j < tr->nth; j++) {
        thr_ws *w = &tr->tw[j];
        w->grad = zalloc(SZ(m->n_params), sizeof(float), &ok);
        w->logit = zalloc(SZ(T * hp->n_vocab), sizeof(float), &ok);
        float **bufs[] = {&w->dh, &w->dtmp, &w->dxf, &w->dm, &w->da, &w->dao, &w->dq, &w->dk, &w->dv};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            *bufs[i] = zalloc(SZ(T * wd), sizeof(float), &ok);
        w->xg = zalloc(SZ(T * K * d), sizeof(float), &ok);
        w->dxg = zalloc(SZ(T * K * d), sizeof(float), &ok);
        w->deo = zalloc(SZ(T * K * d), sizeof(float), &ok);
        w->dact = zalloc(SZ(T * K * ff), sizeof(float), &ok);
        w->dp = zalloc(SZ(T * E), sizeof(float), &ok);
        w->row = zalloc(SZ(T), sizeof(float), &ok);
    }
    if (!ok) {
        snprintf(err, err_size, "train: out of memory for a batch of %lld x %lld tokens", (long long)max_b,
                 (long long)max_t);
        grok_trainer_free(tr);
        return NULL;
    }
    return tr;
}

void grok_trainer_free(grok_trainer *tr) {
    if (!tr) return;
    for (int64_t b = 0; tr->ws && b < tr->max_b; b++) {
        seq_ws *s = &tr->ws[b];
        void *p[] = {s->h,   s->xa,   s->rs_a,     s->q,    s->k,   s->v,    s->cc,   s->pp,
                     s->ao,  s->a,    s->rs_ao,    s->hm,   s->xf,  s->rs_f, s->rp,   s->lse,
                     s->sel, s->ord,  s->slot_pos, s->eoff, s->g,   s->u,    s->act,  s->eo,
                     s->mo,  s->rs_m, s->rs_o,     s->hf,   s->dhf, s->cnt,  s->psum, s->zsum};
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    }
    for (int j = 0; tr->tw && j < tr->nth; j++) {
        thr_ws *w = &tr->tw[j];
        void *p[] = {w->grad, w->logit, w->dh, w->dtmp, w->dxf, w->dm,   w->da, w->dao, w->dq,
                     w->dk,   w->dv,    w->xg, w->dxg,  w->deo, w->dact, w->dp, w->row};
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    }
    free(tr->ws);
    free(tr->tw);
    free(tr->counts);
    free(tr->fe);
    free(tr);
}

const int64_t *grok_trainer_expert_counts(const grok_trainer *t) { return t->counts; }

void grok_trainer_reset_expert_counts(grok_trainer *t) {
    memset(t->counts, 0, SZ(t->m->hp.n_layers * t->m->hp.n_experts) * sizeof(int64_t));
}

/* ---------------------------------------------------------------- forward */

/* Forward pass of one sequence (tok: T inputs then, if targets, the T
 * targets are tok[1..T]). Fills s; with want_grad, also the output head's
 * gradient (dhf in s, the embedding part in grad). logits_out, if not
 * NULL, receives the raw logits. */
static void fwd_seq(grok_trainer *tr, seq_ws *s, thr_ws *w, const int32_t *tok, int64_t T, bool targets,
                    double n_tok_total, float *grad, float *logits_out) {
    const grok_train_model *m = tr->m;
    const grok_hparams *hp = &m->hp;
    const float *W = m->w;
    const int64_t d = hp->d_model, L = hp->n_layers, E = hp->n_experts, K = hp->n_experts_used;
    const int64_t ff = hp->n_ff, H = hp->n_heads, KVH = hp->n_kv_heads, D = hp->head_dim;
    const int64_t qd = H * D, kvd = KVH * D, V = hp->n_vocab, grp = H / KVH;
    const float eps = hp->norm_eps, cap = hp->attn_softcap, scale = hp->attn_scale;

    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < d; i++) s->h[t * d + i] = W[m->embd + tok[t] * d + i] * hp->embedding_scale;
    memset(s->cnt, 0, SZ(L * E) * sizeof(int64_t));
    memset(s->psum, 0, SZ(L * E) * sizeof(double));
    memset(s->zsum, 0, SZ(L) * sizeof(double));
    s->ce_sum = 0;

    for (int64_t l = 0; l < L; l++) {
        const grok_train_layer_off *lo = &m->layers[l];
        float *h = s->h + l * T * d, *hn = s->h + (l + 1) * T * d;
        float *xa = s->xa + l * T * d, *q = s->q + l * T * qd, *k = s->k + l * T * kvd;
        float *v = s->v + l * T * kvd, *ao = s->ao + l * T * qd, *a = s->a + l * T * d;
        float *hm = s->hm + l * T * d, *xf = s->xf + l * T * d, *mo = s->mo + l * T * d;
        float *cc = s->cc + l * H * T * T, *pp = s->pp + l * H * T * T;

        rmsnorm_fwd(xa, s->rs_a + l * T, h, W + lo->attn_norm, T, d, eps);
        mm_fwd(q, qd, xa, d, T, W + lo->wq, qd, d);
        mm_fwd(k, kvd, xa, d, T, W + lo->wk, kvd, d);
        mm_fwd(v, kvd, xa, d, T, W + lo->wv, kvd, d);
        rope(q, T, H, D, hp->rope_base, false);
        rope(k, T, KVH, D, hp->rope_base, false);
        memset(ao, 0, SZ(T * qd) * sizeof(float));
        for (int64_t hh = 0; hh < H; hh++) {
            int64_t g = hh / grp;
            for (int64_t t = 0; t < T; t++) {
                float *c = cc + (hh * T + t) * T, *p = pp + (hh * T + t) * T;
                float mx = -INFINITY;
                for (int64_t u = 0; u <= t; u++) {
                    float sc = dotf(q + t * qd + hh * D, k + u * kvd + g * D, D) * scale;
                    c[u] = cap * tanhf(sc / cap);
                    if (c[u] > mx) mx = c[u];
                }
                float sum = 0.0f;
                for (int64_t u = 0; u <= t; u++) sum += (p[u] = expf(c[u] - mx));
                float inv = 1.0f / sum;
                for (int64_t u = 0; u <= t; u++) {
                    p[u] *= inv;
                    axpy(ao + t * qd + hh * D, p[u], v + u * kvd + g * D, D);
                }
            }
        }
        mm_fwd(a, d, ao, qd, T, W + lo->wo, d, qd);
        float *rs_ao = s->rs_ao + l * T;
        rmsnorm_fwd(hm, rs_ao, a, W + lo->attn_out_norm, T, d, eps);
        for (int64_t i = 0; i < T * d; i++) hm[i] += h[i];
        rmsnorm_fwd(xf, s->rs_f + l * T, hm, W + lo->ffn_norm, T, d, eps);

        /* router */
        float *rp = s->rp + l * T * E, *lse = s->lse + l * T;
        int32_t *sel = s->sel + l * T * K;
        mm_fwd(rp, E, xf, d, T, W + lo->router, E, d);
        for (int64_t t = 0; t < T; t++) {
            const float *p = rp + t * E;
            lse[t] = (float)grok_route_token(rp + t * E, E, K, sel + t * K, NULL);
            s->zsum[l] += (double)lse[t] * lse[t];
            for (int64_t e = 0; e < E; e++) s->psum[l * E + e] += p[e];
            for (int64_t kk = 0; kk < K; kk++) s->cnt[l * E + sel[t * K + kk]]++;
        }
        /* slots grouped by expert */
        int32_t *ord = s->ord + l * T * K, *pos = s->slot_pos + l * T * K, *eoff = s->eoff + l * (E + 1);
        eoff[0] = 0;
        for (int64_t e = 0; e < E; e++) eoff[e + 1] = eoff[e] + (int32_t)s->cnt[l * E + e];
        for (int64_t e = 0, n = 0; e < E; e++)
            for (int64_t sl = 0; sl < T * K; sl++)
                if (sel[sl] == e) pos[sl] = (int32_t)n, ord[n++] = (int32_t)sl;
        float *G = s->g + l * T * K * ff, *U = s->u + l * T * K * ff, *A = s->act + l * T * K * ff;
        float *EO = s->eo + l * T * K * d;
        for (int64_t e = 0; e < E; e++) {
            int64_t j0 = eoff[e], n = eoff[e + 1] - eoff[e];
            if (n == 0) continue;
            for (int64_t j = 0; j < n; j++)
                memcpy(w->xg + j * d, xf + (ord[j0 + j] / K) * d, SZ(d) * sizeof(float));
            mm_fwd(G + j0 * ff, ff, w->xg, d, n, W + lo->gate + e * ff * d, ff, d);
            mm_fwd(U + j0 * ff, ff, w->xg, d, n, W + lo->up + e * ff * d, ff, d);
            for (int64_t i = j0 * ff; i < (j0 + n) * ff; i++) A[i] = gelu_tanh(G[i]) * U[i];
            mm_fwd(EO + j0 * d, d, A + j0 * ff, ff, n, W + lo->down + e * d * ff, d, ff);
        }
        memset(mo, 0, SZ(T * d) * sizeof(float));
        for (int64_t sl = 0; sl < T * K; sl++)
            axpy(mo + (sl / K) * d, rp[(sl / K) * E + sel[sl]], EO + pos[sl] * d, d);
        rmsnorm_fwd(hn, s->rs_m + l * T, mo, W + lo->layer_out_norm, T, d, eps);
        for (int64_t i = 0; i < T * d; i++) hn[i] += hm[i];
    }
    rmsnorm_fwd(s->hf, s->rs_o, s->h + L * T * d, W + m->output_norm, T, d, eps);

    /* output head, cross-entropy, and its gradient */
    float *lg = w->logit;
    mm_fwd(lg, V, s->hf, d, T, W + m->embd, V, d);
    for (int64_t i = 0; i < T * V; i++) lg[i] *= hp->logit_scale;
    if (logits_out) memcpy(logits_out, lg, SZ(T * V) * sizeof(float));
    if (!targets) return;
    for (int64_t t = 0; t < T; t++) {
        float *z = lg + t * V, mx = -INFINITY, sum = 0.0f;
        for (int64_t i = 0; i < V; i++) mx = z[i] > mx ? z[i] : mx;
        for (int64_t i = 0; i < V; i++) sum += expf(z[i] - mx);
        float lz = mx + logf(sum);
        int32_t y = tok[t + 1];
        s->ce_sum += (double)(lz - z[y]);
        if (!grad) continue;
        /* d loss / d logit, then through the output multiplier */
        float c = hp->logit_scale / (float)n_tok_total;
        for (int64_t i = 0; i < V; i++) z[i] = expf(z[i] - lz) * c;
        z[y] -= c;
    }
    if (!grad) return;
    memset(s->dhf, 0, SZ(T * d) * sizeof(float));
    mm_bwd_x(s->dhf, d, lg, V, T, W + m->embd, V, d);
    mm_bwd_w(grad + m->embd, lg, V, s->hf, d, T, V, d);
}

/* ---------------------------------------------------------------- backward */

static void bwd_seq(grok_trainer *tr, seq_ws *s, thr_ws *w, const int32_t *tok, int64_t T, double n_tok_total,
                    float *grad) {
    const grok_train_model *m = tr->m;
    const grok_hparams *hp = &m->hp;
    const float *W = m->w;
    const int64_t d = hp->d_model, L = hp->n_layers, E = hp->n_experts, K = hp->n_experts_used;
    const int64_t ff = hp->n_ff, H = hp->n_heads, KVH = hp->n_kv_heads, D = hp->head_dim;
    const int64_t qd = H * D, kvd = KVH * D, grp = H / KVH;
    const float cap = hp->attn_softcap, scale = hp->attn_scale;
    const float aux_c = tr->cfg.aux_coef / (float)L, z_c = tr->cfg.z_coef / (float)L;
    float *dh = w->dh;

    memset(dh, 0, SZ(T * d) * sizeof(float));
    rmsnorm_bwd(dh, grad + m->output_norm, s->dhf, s->h + L * T * d, W + m->output_norm, s->rs_o, T, d);

    for (int64_t l = L - 1; l >= 0; l--) {
        const grok_train_layer_off *lo = &m->layers[l];
        float *h = s->h + l * T * d, *xa = s->xa + l * T * d, *q = s->q + l * T * qd;
        float *k = s->k + l * T * kvd, *v = s->v + l * T * kvd, *ao = s->ao + l * T * qd;
        float *a = s->a + l * T * d, *hm = s->hm + l * T * d, *xf = s->xf + l * T * d;
        float *mo = s->mo + l * T * d, *cc = s->cc + l * H * T * T, *pp = s->pp + l * H * T * T;
        float *rp = s->rp + l * T * E, *lse = s->lse + l * T;
        int32_t *sel = s->sel + l * T * K, *ord = s->ord + l * T * K;
        int32_t *pos = s->slot_pos + l * T * K, *eoff = s->eoff + l * (E + 1);
        float *G = s->g + l * T * K * ff, *U = s->u + l * T * K * ff, *A = s->act + l * T * K * ff;
        float *EO = s->eo + l * T * K * d;

        /* h_next = hm + norm(mo): dh flows on to hm unchanged */
        float *dm = w->dm;
        memset(dm, 0, SZ(T * d) * sizeof(float));
        rmsnorm_bwd(dm, grad + lo->layer_out_norm, dh, mo, W + lo->layer_out_norm, s->rs_m + l * T, T, d);

        /* mo = sum_k p[sel_k] * EO_k */
        float *dp = w->dp;
        for (int64_t t = 0; t < T; t++)
            for (int64_t e = 0; e < E; e++)
                dp[t * E + e] = aux_c * (float)E * (float)tr->fe[l * E + e] / (float)n_tok_total;
        for (int64_t sl = 0; sl < T * K; sl++) {
            int64_t t = sl / K, e = sel[sl], j = pos[sl];
            dp[t * E + e] += dotf(dm + t * d, EO + j * d, d);
            float p = rp[t * E + e];
            for (int64_t i = 0; i < d; i++) w->deo[j * d + i] = p * dm[t * d + i];
        }
        /* router softmax (and z-loss) to its logits; reuse dp as d logits */
        float *dxf = w->dxf;
        memset(dxf, 0, SZ(T * d) * sizeof(float));
        for (int64_t t = 0; t < T; t++) {
            float *p = rp + t * E, *g = dp + t * E, dot = 0.0f;
            for (int64_t e = 0; e < E; e++) dot += p[e] * g[e];
            float zc = z_c * 2.0f * lse[t] / (float)n_tok_total;
            for (int64_t e = 0; e < E; e++) g[e] = p[e] * (g[e] - dot) + zc * p[e];
        }
        mm_bwd_w(grad + lo->router, dp, E, xf, d, T, E, d);
        mm_bwd_x(dxf, d, dp, E, T, W + lo->router, E, d);

        /* experts */
        for (int64_t e = 0; e < E; e++) {
            int64_t j0 = eoff[e], n = eoff[e + 1] - eoff[e];
            if (n == 0) continue;
            for (int64_t j = 0; j < n; j++)
                memcpy(w->xg + j * d, xf + (ord[j0 + j] / K) * d, SZ(d) * sizeof(float));
            float *dact = w->dact, *deo = w->deo + j0 * d;
            memset(dact, 0, SZ(n * ff) * sizeof(float));
            mm_bwd_x(dact, ff, deo, d, n, W + lo->down + e * d * ff, d, ff);
            mm_bwd_w(grad + lo->down + e * d * ff, deo, d, A + j0 * ff, ff, n, d, ff);
            /* dact -> dG (in place) and dU (over G, which backward no longer needs) */
            for (int64_t j = 0; j < n; j++)
                for (int64_t i = 0; i < ff; i++) {
                    float gg = G[(j0 + j) * ff + i], uu = U[(j0 + j) * ff + i];
                    float da = dact[j * ff + i];
                    dact[j * ff + i] = da * uu * gelu_tanh_grad(gg); /* dG */
                    G[(j0 + j) * ff + i] = da * gelu_tanh(gg);       /* dU, G no longer needed */
                }
            float *dG = dact, *dU = G + j0 * ff;
            mm_bwd_w(grad + lo->gate + e * ff * d, dG, ff, w->xg, d, n, ff, d);
            mm_bwd_w(grad + lo->up + e * ff * d, dU, ff, w->xg, d, n, ff, d);
            float *dxg = w->dxg;
            memset(dxg, 0, SZ(n * d) * sizeof(float));
            mm_bwd_x(dxg, d, dG, ff, n, W + lo->gate + e * ff * d, ff, d);
            mm_bwd_x(dxg, d, dU, ff, n, W + lo->up + e * ff * d, ff, d);
            for (int64_t j = 0; j < n; j++) axpy(dxf + (ord[j0 + j] / K) * d, 1.0f, dxg + j * d, d);
        }
        /* xf = norm(hm): dh (which is now d hm) gets the MoE branch */
        rmsnorm_bwd(dh, grad + lo->ffn_norm, dxf, hm, W + lo->ffn_norm, s->rs_f + l * T, T, d);

        /* hm = h + norm(a) */
        float *da = w->da;
        memset(da, 0, SZ(T * d) * sizeof(float));
        rmsnorm_bwd(da, grad + lo->attn_out_norm, dh, a, W + lo->attn_out_norm, s->rs_ao + l * T, T, d);
        float *dao = w->dao;
        memset(dao, 0, SZ(T * qd) * sizeof(float));
        mm_bwd_w(grad + lo->wo, da, d, ao, qd, T, d, qd);
        mm_bwd_x(dao, qd, da, d, T, W + lo->wo, d, qd);

        /* attention */
        float *dq = w->dq, *dk = w->dk, *dv = w->dv, *dP = w->row;
        memset(dq, 0, SZ(T * qd) * sizeof(float));
        memset(dk, 0, SZ(T * kvd) * sizeof(float));
        memset(dv, 0, SZ(T * kvd) * sizeof(float));
        for (int64_t hh = 0; hh < H; hh++) {
            int64_t g = hh / grp;
            for (int64_t t = 0; t < T; t++) {
                const float *p = pp + (hh * T + t) * T, *c = cc + (hh * T + t) * T;
                const float *go = dao + t * qd + hh * D;
                float sum = 0.0f;
                for (int64_t u = 0; u <= t; u++) {
                    dP[u] = dotf(go, v + u * kvd + g * D, D);
                    sum += p[u] * dP[u];
                    axpy(dv + u * kvd + g * D, p[u], go, D);
                }
                for (int64_t u = 0; u <= t; u++) {
                    float tv = c[u] / cap;
                    float ds = p[u] * (dP[u] - sum) * (1.0f - tv * tv) * scale;
                    axpy(dq + t * qd + hh * D, ds, k + u * kvd + g * D, D);
                    axpy(dk + u * kvd + g * D, ds, q + t * qd + hh * D, D);
                }
            }
        }
        rope(dq, T, H, D, hp->rope_base, true);
        rope(dk, T, KVH, D, hp->rope_base, true);
        mm_bwd_w(grad + lo->wq, dq, qd, xa, d, T, qd, d);
        mm_bwd_w(grad + lo->wk, dk, kvd, xa, d, T, kvd, d);
        mm_bwd_w(grad + lo->wv, dv, kvd, xa, d, T, kvd, d);
        float *dxa = w->dtmp;
        memset(dxa, 0, SZ(T * d) * sizeof(float));
        mm_bwd_x(dxa, d, dq, qd, T, W + lo->wq, qd, d);
        mm_bwd_x(dxa, d, dk, kvd, T, W + lo->wk, kvd, d);
        mm_bwd_x(dxa, d, dv, kvd, T, W + lo->wv, kvd, d);
        rmsnorm_bwd(dh, grad + lo->attn_norm, dxa, h, W + lo->attn_norm, s->rs_a + l * T, T, d);
    }
    for (int64_t t = 0; t < T; t++) axpy(grad + m->embd + tok[t] * d, hp->embedding_scale, dh + t * d, d);
}

/* ---------------------------------------------------------------- driver */

static void job_forward(void *arg, int ith, int nth) {
    grok_trainer *tr = arg;
    thr_ws *w = &tr->tw[ith];
    if (tr->want_grad) memset(w->grad, 0, SZ(tr->m->n_params) * sizeof(float));
    double n_tok = (double)(tr->n_b * tr->n_t);
    for (int64_t b = ith; b < tr->n_b; b += nth)
        fwd_seq(tr, &tr->ws[b], w, tr->tokens + b * (tr->n_t + 1), tr->n_t, true, n_tok,
                tr->want_grad ? w->grad : NULL, NULL);
}

static void job_backward(void *arg, int ith, int nth) {
    grok_trainer *tr = arg;
    double n_tok = (double)(tr->n_b * tr->n_t);
    for (int64_t b = ith; b < tr->n_b; b += nth)
        bwd_seq(tr, &tr->ws[b], &tr->tw[ith], tr->tokens + b * (tr->n_t + 1), tr->n_t, n_tok,
                tr->tw[ith].grad);
}

static void job_reduce(void *arg, int ith, int nth) {
    grok_trainer *tr = arg;
    int64_t n = tr->m->n_params, chunk = (n + nth - 1) / nth;
    int64_t i0 = ith * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
    if (i0 >= i1) return;
    float *out = tr->grad_out;
    memcpy(out + i0, tr->tw[0].grad + i0, SZ(i1 - i0) * sizeof(float));
    for (int j = 1; j < tr->nth; j++) {
        const float *g = tr->tw[j].grad;
        for (int64_t i = i0; i < i1; i++) out[i] += g[i];
    }
}

int grok_trainer_step(grok_trainer *tr, const int32_t *tokens, int64_t n_b, int64_t seq,
                      const grok_train_loss_cfg *cfg, grok_train_losses *out, float *grad) {
    const grok_hparams *hp = &tr->m->hp;
    if (n_b < 1 || n_b > tr->max_b || seq < 1 || seq > tr->max_t) return -1;
    for (int64_t i = 0; i < n_b * (seq + 1); i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab) return -1;
    const int64_t L = hp->n_layers, E = hp->n_experts, K = hp->n_experts_used;
    tr->tokens = tokens, tr->n_b = n_b, tr->n_t = seq, tr->cfg = *cfg;
    tr->want_grad = grad != NULL, tr->grad_out = grad;
    grok_threadpool_run(tr->pool, job_forward, tr);

    /* Batch statistics, summed over sequences in order. */
    double n_tok = (double)(n_b * seq), ce = 0, aux = 0, z = 0;
    for (int64_t b = 0; b < n_b; b++) ce += tr->ws[b].ce_sum;
    for (int64_t l = 0; l < L; l++) {
        double zl = 0, al = 0;
        for (int64_t e = 0; e < E; e++) {
            int64_t c = 0;
            double ps = 0;
            for (int64_t b = 0; b < n_b; b++) c += tr->ws[b].cnt[l * E + e], ps += tr->ws[b].psum[l * E + e];
            tr->counts[l * E + e] += c;
            tr->fe[l * E + e] = (double)c / (n_tok * (double)K);
            al += tr->fe[l * E + e] * ps / n_tok;
        }
        for (int64_t b = 0; b < n_b; b++) zl += tr->ws[b].zsum[l];
        aux += (double)E * al / (double)L;
        z += zl / n_tok / (double)L;
    }
    out->ce = ce / n_tok, out->aux = aux, out->z = z, out->n_scored = n_b * seq;
    out->total = out->ce + cfg->aux_coef * aux + cfg->z_coef * z;
    if (!grad) return 0;
    grok_threadpool_run(tr->pool, job_backward, tr);
    grok_threadpool_run(tr->pool, job_reduce, tr);
    return 0;
}

int grok_trainer_logits(grok_trainer *tr, const int32_t *tokens, int64_t seq, float *logits) {
    if (seq < 1 || seq > tr->max_t) return -1;
    for (int64_t i = 0; i < seq; i++)
        if (tokens[i] < 0 || tokens[i] >= tr->m->hp.n_vocab) return -1;
    fwd_seq(tr, &tr->ws[0], &tr->tw[0], tokens, seq, false, 1.0, NULL, logits);
    return 0;
}
