/*
 * qlora.c - training LoRA adapters over a frozen base that stays in its
 * stored type (q8_0, q4_0, the k-quants, any type the kernels decode),
 * memory-mapped as for inference: the QLoRA recipe, on CPUs, for MoE.
 *
 * Forward. Every base product reads the base's own matrices where they
 * lie. In FAST mode it is grok_matmul, as inference computes it (8-bit
 * activations; the gradient then ignores that rounding). Otherwise (grok
 * train's default) grok_matmul_tiles: f32 activations and the rows
 * dequantized a tile at a time by the type's to_f32, so the gradient is
 * the gradient of the loss computed (docs/finetune.md compares the two).
 * An adapted weight adds s B (A x) through two small f32 products. The
 * whole batch goes through each layer at once, so each weight is read
 * once per step and pass.
 *
 * Memory: activation checkpointing per layer. The first pass keeps only
 * each layer's input; the backward pass recomputes the layer from it,
 * then runs the layer backwards. The base is never copied, the adapters
 * are the only trainable state, and the activations held are those of one
 * layer for the batch (attention probabilities are not kept even there:
 * the backward pass recomputes each row).
 *
 * Backward. dX = W^T dY comes from grok_matmul_t, which dequantizes a few
 * rows of W at a time; the adapters' gradients come from low-rank
 * products only (with u = A x and v = s B^T dY: dB = s dY u^T, dA = v x^T,
 * dX += A^T v), never from a full-weight gradient. Norms, embedding and
 * router weights are frozen unless adapted.
 *
 * Determinism. Every number a token gets is computed by the same
 * operations whatever else is in the batch (the kernels guarantee it for
 * products; attention and norms are per sequence or token), and the
 * adapter gradient is summed per sequence, then over sequences in the
 * fixed tree of gradsum.c. So a batch split over processes (mpirun) gives
 * the one-process gradient bit for bit, and so do other thread counts.
 *
 * Losses are those of backprop.c: cross-entropy over the scored targets
 * (a mask selects them, e.g. assistant tokens in chat SFT), the
 * load-balancing loss and the router z-loss over every token.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/model.h"
#include "train/train.h"
#include "util/rng.h"

#define SZ(x) ((size_t)(x))
#define MAX_NODES 160
/* Per-sequence statistics: [0] ce sum, [1] scored targets, [2] tokens,
 * then per layer and expert the routed slots and the summed router
 * probabilities, then per layer the summed squared router logsumexp. */
#define ST_CE 0
#define ST_SCORED 1
#define ST_TOK 2
#define ST_HEAD 3

struct grok_qlora {
    const grok_model *m;
    const grok_train_lora *l;
    grok_threadpool *pool;
    int nth;
    int64_t max_tok, max_seq, max_seqs;
    int64_t d, qd, kvd, E, K, ff, V, L, H, KVH, D, grp;
    grok_mat *a_mat, *b_mat, *bt_mat; /* [n_t * n_mats]: A, B and s B^T of every target and expert */
    float *bt;                        /* storage of bt_mat */
    float *rope;                      /* [max_seq][D]: cos then sin of each position */

    /* the current step */
    int64_t N, n_seq, lo, batch, alloc_bytes;
    grok_qlora_step_cfg cfg;
    bool want_grad, keep_stats;
    double inv_scored, inv_tok;
    int64_t *seq_start;        /* [max_seqs + 1] */
    int32_t *tok, *pos, *tseq; /* [N] input id, position, local sequence */
    int32_t *target;           /* [N] the target id, or -1 when not scored */
    double *stats;             /* [max_seqs][n_stat] local, then [batch][n_stat] gathered */
    double *gstats;
    int64_t n_stat;
    double *fe; /* [L][E] routing shares of the global batch */

    /* activations */
    float *ckpt; /* [L][N][d] each layer's input */
    float *h;    /* [N][d] */
    float *xa, *q, *k, *v, *ao, *a, *hm, *xf, *mo, *hf;
    float *rs_a, *rs_ao, *rs_f, *rs_m, *rs_o; /* [N] 1/rms of each norm */
    float *rp, *gates;                        /* [N][E] router probabilities, [N][K] */
    double *lse_r;                            /* [N] */
    int32_t *sel, *slot_of;                   /* [N][K] */
    int32_t *slot_tok;                        /* [N*K] token of each slot, slots grouped by expert */
    int64_t *eoff;                            /* [E+1] */
    float *xg, *G, *U, *act, *EO;             /* per slot: [d], [ff], [ff], [ff], [d] */
    float *u[GROK_LORA_N_TARGETS];            /* per target kind: A drop(x) of each row */
    /* backward */
    float *dh, *dmo, *dxf, *da, *dao, *dq, *dk, *dv, *dxa, *dhf, *dp, *deo, *dact, *dxg;
    /* LoRA scratch */
    float *xd, *lv, *ltmp, *ut, *vt, *dbt, *leaf, *stack;
    int64_t max_lin, max_lout, max_leaf, stack_levels;
    /* head */
    float *logit, *hsel, *dsel, *row_ce;
    int32_t *hrow;
    int64_t head_chunk;
    /* attention scratch per thread: [G][max_seq] probabilities, caps, and a row */
    float *att;
    int64_t att_per;
    /* gradient subtrees */
    grok_gradsum_node nodes[MAX_NODES];
    int n_nodes;
    float *node_buf[MAX_NODES];
    float *own_nodes; /* nodes beyond the first when grad holds the first */
    int64_t own_nodes_n;
    int ec; /* set when a step fails inside (out of memory) */
};

/* ------------------------------------------------------------ helpers */

/* A product with a base matrix: the 8-bit kernels of inference in FAST
 * mode, else f32 activations through dequantized tiles (grok_matmul's
 * EXACT dots are the scalar references for quantized types). */
static void base_mm(grok_qlora *q, const grok_mat *w, const float *x, int64_t ldx, float *y, int64_t ldy,
                    int64_t n) {
    if (grok_kernels_mode() == GROK_KERNELS_FAST)
        grok_matmul(q->pool, w, x, ldx, y, ldy, n);
    else
        grok_matmul_tiles(q->pool, w, x, ldx, y, ldy, n);
}

static void base_mm_ops(grok_qlora *q, const grok_matmul_op *ops, int n) {
    if (grok_kernels_mode() == GROK_KERNELS_FAST) {
        grok_matmul_ops(q->pool, ops, n);
        return;
    }
    for (int i = 0; i < n; i++)
        grok_matmul_tiles(q->pool, ops[i].w, ops[i].x, ops[i].ldx, ops[i].y, ops[i].ldy, ops[i].n_tok);
}

static grok_mat f32_mat(const float *p, int64_t rows, int64_t cols, int64_t ld) {
    grok_mat w = {(const uint8_t *)p, GROK_TYPE_F32, rows, cols, SZ(ld) * sizeof(float), NULL, {0}, GROK_ISA_DEFAULT};
    return w;
}

typedef void (*item_fn)(grok_qlora *q, int64_t i, int ith);
typedef struct {
    grok_qlora *q;
    item_fn fn;
    int64_t n;
} pfor_job;

static void pfor_task(void *arg, int ith, int nth) {
    const pfor_job *j = arg;
    for (int64_t i = ith; i < j->n; i += nth) j->fn(j->q, i, ith);
}

/* fn(q, i, thread) for i < n across the pool; items write disjoint outputs. */
static void pfor(grok_qlora *q, int64_t n, item_fn fn) {
    pfor_job j = {q, fn, n};
    if (n > 1 && q->nth > 1)
        grok_threadpool_run(q->pool, pfor_task, &j);
    else
        pfor_task(&j, 0, 1);
}

/* Norm as the engine computes it (double sum); rs = 1/rms. */
static void norm_row(float *y, float *rs, const float *x, const float *w, int64_t d, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < d; i++) ss += (double)x[i] * x[i];
    const float inv = (float)(1.0 / sqrt(ss / (double)d + (double)eps));
    if (rs) *rs = inv;
    for (int64_t i = 0; i < d; i++) y[i] = w[i] * (x[i] * inv);
}

/* dx += the norm's gradient at x for dy (the norm's weight frozen). */
static void norm_bwd_row(float *dx, const float *dy, const float *x, const float *w, float r, int64_t d) {
    double s = 0;
    for (int64_t i = 0; i < d; i++) s += (double)w[i] * dy[i] * x[i];
    const float c = (float)((double)r * r * s / (double)d);
    for (int64_t i = 0; i < d; i++) dx[i] += r * (w[i] * dy[i] - x[i] * c);
}

static void rope_row(float *x, const float *cs, int64_t n_heads, int64_t D, bool inverse) {
    const int64_t h2 = D / 2;
    for (int64_t h = 0; h < n_heads; h++) {
        float *v = x + h * D;
        for (int64_t i = 0; i < h2; i++) {
            const float c = cs[i], s = inverse ? -cs[h2 + i] : cs[h2 + i], a = v[i], b = v[i + h2];
            v[i] = a * c - b * s;
            v[i + h2] = b * c + a * s;
        }
    }
}

static const float GELU_K = 0.7978845608028654f, GELU_C = 0.044715f;

typedef struct {
    const grok_qlora *q;
    const grok_train_lora_target *t;
    int64_t e;
    const float *x;
    int64_t ldx, n;
    const int32_t *rows_tok; /* token of each row, NULL: row j is token j */
    float *out;
    int64_t ldo;
    bool backward; /* out += mask * x (else out = mask * x) */
} drop_job;

/* The mask of LoRA dropout for one element, from a hash of the step's
 * seed, the weight, the token's place in the global batch and the
 * element: the same on every process and in the recomputed pass. (grok_rng_mix of util/rng.h). */
static void drop_rows(const drop_job *j, int64_t r0, int64_t r1) {
    const grok_qlora *q = j->q;
    const float p = q->cfg.dropout, inv = 1.0f / (1.0f - p);
    const uint32_t thr = (uint32_t)(p * 65536.0f);
    const int64_t cols = j->t->cols;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t t = j->rows_tok ? j->rows_tok[r] : r;
        const int64_t gseq = q->lo + q->tseq[t];
        const uint64_t w =
            (uint64_t)(j->t->layer * GROK_LORA_N_TARGETS + j->t->kind) * GROK_RNG_GOLDEN + (uint64_t)j->e;
        uint64_t key = grok_rng_mix(q->cfg.dropout_seed ^ grok_rng_mix(w));
        key = grok_rng_mix(key + (uint64_t)gseq * GROK_RNG_FNV + (uint64_t)q->pos[t]);
        const float *x = j->x + r * j->ldx;
        float *o = j->out + r * j->ldo;
        for (int64_t i = 0; i < cols; i += 4) {
            const uint64_t h = grok_rng_mix(key + (uint64_t)(i / 4));
            for (int64_t k = 0; k < 4 && i + k < cols; k++) {
                const bool keep = (uint32_t)((h >> (16 * k)) & 0xffff) >= thr;
                const float m = keep ? x[i + k] * inv : 0.0f;
                if (j->backward)
                    o[i + k] += m;
                else
                    o[i + k] = m;
            }
        }
    }
}

static void drop_task(void *arg, int ith, int nth) {
    const drop_job *j = arg;
    drop_rows(j, j->n * ith / nth, j->n * (ith + 1) / nth);
}

static void run_drop(grok_qlora *q, drop_job *j) {
    if (q->nth > 1 && j->n * j->t->cols > 16384)
        grok_threadpool_run(q->pool, drop_task, j);
    else
        drop_task(j, 0, 1);
}

/* ------------------------------------------------------------ LoRA products */

/* y[j] += s B A drop(x[j]) for n rows; u [n][r] receives A drop(x). */
static void lora_fwd(grok_qlora *q, const grok_train_lora_target *t, int64_t e, const float *x, int64_t ldx,
                     int64_t n, const int32_t *rows_tok, float *y, int64_t ldy, float *u) {
    if (n == 0) return;
    const int64_t ti = t - q->l->t, mi = ti * q->E + e;
    const float *xin = x;
    int64_t ldin = ldx;
    if (q->cfg.dropout > 0 && q->want_grad) {
        drop_job dj = {q, t, e, x, ldx, n, rows_tok, q->xd, t->cols, false};
        run_drop(q, &dj);
        xin = q->xd, ldin = t->cols;
    }
    grok_matmul_tok(q->pool, &q->a_mat[mi], xin, ldin, u, t->rank, n);
    grok_matmul_t(q->pool, &q->bt_mat[mi], u, t->rank, y, ldy, n);
}

/* Rows [r0, r1) of the n rows belonging to each local sequence: rows are
 * in token order and tokens in sequence order. */
static void seq_rows(const grok_qlora *q, const int32_t *rows_tok, int64_t n, int64_t s, int64_t *r0,
                     int64_t *r1) {
    if (!rows_tok) {
        *r0 = q->seq_start[s], *r1 = q->seq_start[s + 1];
        return;
    }
    int64_t a = 0, b = n;
    while (a < b) { /* first row of sequence >= s */
        int64_t mid = (a + b) / 2;
        if (q->tseq[rows_tok[mid]] < s)
            a = mid + 1;
        else
            b = mid;
    }
    *r0 = a;
    b = n;
    while (a < b) {
        int64_t mid = (a + b) / 2;
        if (q->tseq[rows_tok[mid]] <= s)
            a = mid + 1;
        else
            b = mid;
    }
    *r1 = a;
}

typedef struct {
    const grok_train_lora_target *t;
    int64_t e, n;
    const float *xin; /* drop(x) rows */
    int64_t ldin;
    const int32_t *rows_tok;
    const float *u, *v, *dy;
    int64_t lddy;
} leaf_ctx;

/* Sequence s's (local) share of the gradient: dst = [dA (r x cols) | dB (rows x r)]. */
static void leaf(grok_qlora *q, const leaf_ctx *c, int64_t s, float *dst) {
    const grok_train_lora_target *t = c->t;
    const int64_t r = t->rank, sz = r * (t->cols + t->rows);
    int64_t r0, r1;
    seq_rows(q, c->rows_tok, c->n, s, &r0, &r1);
    memset(dst, 0, sizeof(float) * SZ(sz));
    const int64_t nb = r1 - r0;
    if (nb == 0) return;
    /* dA = v^T drop(x) over the sequence's rows */
    for (int64_t k = 0; k < r; k++)
        for (int64_t j = 0; j < nb; j++) q->vt[k * nb + j] = c->v[(r0 + j) * r + k];
    grok_mat xm = f32_mat(c->xin + r0 * c->ldin, nb, t->cols, c->ldin);
    grok_matmul_t(q->pool, &xm, q->vt, nb, dst, t->cols, r);
    /* dB^T = (s u)^T dY, then transposed into B's layout */
    for (int64_t k = 0; k < r; k++)
        for (int64_t j = 0; j < nb; j++) q->ut[k * nb + j] = t->scale * c->u[(r0 + j) * r + k];
    memset(q->dbt, 0, sizeof(float) * SZ(r * t->rows));
    grok_mat ym = f32_mat(c->dy + r0 * c->lddy, nb, t->rows, c->lddy);
    grok_matmul_t(q->pool, &ym, q->ut, nb, q->dbt, t->rows, r);
    float *db = dst + r * t->cols;
    for (int64_t o = 0; o < t->rows; o++)
        for (int64_t k = 0; k < r; k++) db[o * r + k] = q->dbt[k * t->rows + o];
}

/* T(a, c) of the gradient tree for the sequences [a, c) (global, inside
 * this process's share) into dst; deeper levels use the stack. */
static void tree(grok_qlora *q, const leaf_ctx *c, int64_t a, int64_t cc, float *dst, int level) {
    const int64_t sz = c->t->rank * (c->t->cols + c->t->rows);
    if (cc - a == 1) {
        leaf(q, c, a - q->lo, dst);
        return;
    }
    const int64_t m = a + (cc - a) / 2;
    float *tmp = q->stack + SZ(level) * SZ(q->max_leaf);
    tree(q, c, a, m, dst, level + 1);
    tree(q, c, m, cc, tmp, level + 1);
    for (int64_t i = 0; i < sz; i++) dst[i] += tmp[i];
}

/* Backward through an adapter: v = s B^T dY; dx (if not NULL) += drop'(A^T v);
 * and this process's gradient subtrees for (t, e) from its sequences. */
static void lora_bwd(grok_qlora *q, const grok_train_lora_target *t, int64_t e, const float *x, int64_t ldx,
                     int64_t n, const int32_t *rows_tok, const float *u, const float *dy, int64_t lddy,
                     float *dx, int64_t lddx) {
    if (n == 0) return;
    const int64_t ti = t - q->l->t, mi = ti * q->E + e, r = t->rank;
    float *v = q->lv;
    memset(v, 0, sizeof(float) * SZ(n * r));
    grok_matmul_t(q->pool, &q->b_mat[mi], dy, lddy, v, r, n);
    for (int64_t i = 0; i < n * r; i++) v[i] *= t->scale;
    const bool drop = q->cfg.dropout > 0;
    if (dx) {
        if (drop) {
            memset(q->ltmp, 0, sizeof(float) * SZ(n * t->cols));
            grok_matmul_t(q->pool, &q->a_mat[mi], v, r, q->ltmp, t->cols, n);
            drop_job dj = {q, t, e, q->ltmp, t->cols, n, rows_tok, dx, lddx, true};
            run_drop(q, &dj);
        } else {
            grok_matmul_t(q->pool, &q->a_mat[mi], v, r, dx, lddx, n);
        }
    }
    const float *xin = x;
    int64_t ldin = ldx;
    if (drop) {
        drop_job dj = {q, t, e, x, ldx, n, rows_tok, q->xd, t->cols, false};
        run_drop(q, &dj);
        xin = q->xd, ldin = t->cols;
    }
    leaf_ctx c = {t, e, n, xin, ldin, rows_tok, u, v, dy, lddy};
    for (int i = 0; i < q->n_nodes; i++) {
        tree(q, &c, q->nodes[i].a, q->nodes[i].c, q->leaf, 0);
        float *g = q->node_buf[i];
        memcpy(g + t->a + e * r * t->cols, q->leaf, sizeof(float) * SZ(r * t->cols));
        memcpy(g + t->b + e * t->rows * r, q->leaf + r * t->cols, sizeof(float) * SZ(t->rows * r));
    }
}

/* ------------------------------------------------------------ attention */

/* Forward for (local sequence, KV head): probabilities row by row with the
 * engine's kernels; ao gets P V for the group's query heads. */
static void attn_fwd_item(grok_qlora *q, int64_t item, int ith) {
    const int64_t s = item / q->KVH, g = item % q->KVH, G = q->grp, D = q->D;
    const int64_t t0 = q->seq_start[s], n = q->seq_start[s + 1] - t0;
    const grok_hparams *hp = &q->m->hp;
    const grok_vec_kernels *vk = grok_vec_select(grok_kernels_mode());
    float *p = q->att + SZ(ith) * SZ(q->att_per);
    const size_t row = SZ(q->kvd) * sizeof(float);
    const uint8_t *kb = (const uint8_t *)(q->k + t0 * q->kvd + g * D),
                  *vb = (const uint8_t *)(q->v + t0 * q->kvd + g * D);
    for (int64_t i = 0; i < n; i++) {
        const int64_t t = t0 + i, npos = i + 1;
        vk->scores(kb, row, GROK_TYPE_F32, q->q + t * q->qd + g * G * D, G, D, npos, p, q->max_seq);
        for (int64_t h = 0; h < G; h++) {
            float *pg = p + h * q->max_seq, mx = -INFINITY;
            vk->softcap(pg, npos, hp->attn_scale, hp->attn_softcap);
            for (int64_t u = 0; u < npos; u++) mx = pg[u] > mx ? pg[u] : mx;
            const float inv = (float)(1.0 / vk->exp_sum(pg, npos, mx));
            for (int64_t u = 0; u < npos; u++) pg[u] *= inv;
        }
        vk->wsum(vb, row, GROK_TYPE_F32, p, q->max_seq, G, D, npos, q->ao + t * q->qd + g * G * D);
    }
}

/* Backward for (local sequence, KV head): each probability row is
 * recomputed as in the forward pass, then dq, and dk, dv accumulated over
 * the group's heads and the queries in order. */
static void attn_bwd_item(grok_qlora *q, int64_t item, int ith) {
    const int64_t s = item / q->KVH, g = item % q->KVH, G = q->grp, D = q->D, T = q->max_seq;
    const int64_t t0 = q->seq_start[s], n = q->seq_start[s + 1] - t0;
    const grok_hparams *hp = &q->m->hp;
    const float cap = hp->attn_softcap, scale = hp->attn_scale;
    const grok_vec_kernels *vk = grok_vec_select(grok_kernels_mode());
    float *p = q->att + SZ(ith) * SZ(q->att_per), *cc = p + T, *dP = cc + T;
    const size_t row = SZ(q->kvd) * sizeof(float);
    const uint8_t *kb = (const uint8_t *)(q->k + t0 * q->kvd + g * D),
                  *vb = (const uint8_t *)(q->v + t0 * q->kvd + g * D);
    for (int64_t i = 0; i < n; i++) {
        memset(q->dk + (t0 + i) * q->kvd + g * D, 0, sizeof(float) * SZ(D));
        memset(q->dv + (t0 + i) * q->kvd + g * D, 0, sizeof(float) * SZ(D));
    }
    for (int64_t hh = 0; hh < G; hh++) {
        const int64_t h = g * G + hh;
        for (int64_t i = 0; i < n; i++) {
            const int64_t t = t0 + i, npos = i + 1;
            const float *qt = q->q + t * q->qd + h * D, *go = q->dao + t * q->qd + h * D;
            vk->scores(kb, row, GROK_TYPE_F32, qt, 1, D, npos, p, T);
            vk->softcap(p, npos, scale, cap);
            memcpy(cc, p, sizeof(float) * SZ(npos));
            float mx = -INFINITY;
            for (int64_t u = 0; u < npos; u++) mx = p[u] > mx ? p[u] : mx;
            const float inv = (float)(1.0 / vk->exp_sum(p, npos, mx));
            for (int64_t u = 0; u < npos; u++) p[u] *= inv;
            vk->scores(vb, row, GROK_TYPE_F32, go, 1, D, npos, dP, T);
            float sum = 0;
            for (int64_t u = 0; u < npos; u++) sum += p[u] * dP[u];
            for (int64_t u = 0; u < npos; u++) {
                const float tv = cc[u] / cap;
                dP[u] = p[u] * (dP[u] - sum) * (1.0f - tv * tv) * scale; /* d score */
            }
            vk->wsum(kb, row, GROK_TYPE_F32, dP, T, 1, D, npos, q->dq + t * q->qd + h * D);
            for (int64_t u = 0; u < npos; u++) {
                float *dk = q->dk + (t0 + u) * q->kvd + g * D, *dv = q->dv + (t0 + u) * q->kvd + g * D;
                const float ds = dP[u], pu = p[u];
                for (int64_t j = 0; j < D; j++) dk[j] += ds * qt[j], dv[j] += pu * go[j];
            }
        }
    }
}

/* ------------------------------------------------------------ one layer */

static void route_and_stats(grok_qlora *q, int64_t il) {
    const int64_t N = q->N, E = q->E, K = q->K;
    float *rp = q->rp;
    for (int64_t t = 0; t < N; t++) {
        const float *r = rp + t * E;
        q->lse_r[t] = grok_route_token(rp + t * E, E, K, q->sel + t * K, q->gates + t * K);
        if (q->keep_stats) {
            double *st = q->stats + SZ(q->tseq[t]) * SZ(q->n_stat);
            for (int64_t k = 0; k < K; k++) st[ST_HEAD + (il * E + q->sel[t * K + k]) * 2] += 1;
            for (int64_t e = 0; e < E; e++) st[ST_HEAD + (il * E + e) * 2 + 1] += r[e];
            st[ST_HEAD + q->L * E * 2 + il] += q->lse_r[t] * q->lse_r[t];
        }
    }
    /* slots grouped by expert, tokens in order within each */
    q->eoff[0] = 0;
    int64_t n = 0;
    for (int64_t e = 0; e < E; e++) {
        for (int64_t t = 0; t < N; t++)
            for (int64_t k = 0; k < K; k++)
                if (q->sel[t * K + k] == e) q->slot_of[t * K + k] = (int32_t)n, q->slot_tok[n++] = (int32_t)t;
        q->eoff[e + 1] = n;
    }
}

static void gelu_fwd_item(grok_qlora *q, int64_t j, int ith) {
    (void)ith;
    const int64_t ff = q->ff;
    const float *g = q->G + j * ff, *u = q->U + j * ff;
    float *a = q->act + j * ff;
    for (int64_t i = 0; i < ff; i++) a[i] = GELU_K * (g[i] + GELU_C * g[i] * g[i] * g[i]);
    grok_vec_select(grok_kernels_mode())->tanh(a, ff);
    for (int64_t i = 0; i < ff; i++) a[i] = 0.5f * g[i] * (1.0f + a[i]) * u[i];
}

static void layer_fwd(grok_qlora *q, int64_t il) {
    const grok_model *m = q->m;
    const grok_hparams *hp = &m->hp;
    const grok_layer *L = &m->layers[il];
    const grok_train_lora *l = q->l;
    const int64_t N = q->N, d = q->d, qd = q->qd, kvd = q->kvd, E = q->E, K = q->K, ff = q->ff;
    const float eps = hp->norm_eps;
    const grok_train_lora_target *tq = grok_train_lora_find(l, il, GROK_LORA_T_Q),
                                 *tk = grok_train_lora_find(l, il, GROK_LORA_T_K),
                                 *tv = grok_train_lora_find(l, il, GROK_LORA_T_V),
                                 *to = grok_train_lora_find(l, il, GROK_LORA_T_O),
                                 *tg = grok_train_lora_find(l, il, GROK_LORA_T_GATE),
                                 *tu = grok_train_lora_find(l, il, GROK_LORA_T_UP),
                                 *td = grok_train_lora_find(l, il, GROK_LORA_T_DOWN),
                                 *tr = grok_train_lora_find(l, il, GROK_LORA_T_ROUTER);
    for (int64_t t = 0; t < N; t++) norm_row(q->xa + t * d, &q->rs_a[t], q->h + t * d, L->attn_norm, d, eps);
    const grok_matmul_op qkv[3] = {
        {&L->wq, q->xa, d, q->q, qd, N}, {&L->wk, q->xa, d, q->k, kvd, N}, {&L->wv, q->xa, d, q->v, kvd, N}};
    base_mm_ops(q, qkv, 3);
    if (tq) lora_fwd(q, tq, 0, q->xa, d, N, NULL, q->q, qd, q->u[GROK_LORA_T_Q]);
    if (tk) lora_fwd(q, tk, 0, q->xa, d, N, NULL, q->k, kvd, q->u[GROK_LORA_T_K]);
    if (tv) lora_fwd(q, tv, 0, q->xa, d, N, NULL, q->v, kvd, q->u[GROK_LORA_T_V]);
    for (int64_t t = 0; t < N; t++) {
        const float *cs = q->rope + q->pos[t] * q->D;
        rope_row(q->q + t * qd, cs, q->H, q->D, false);
        rope_row(q->k + t * kvd, cs, q->KVH, q->D, false);
    }
    pfor(q, q->n_seq * q->KVH, attn_fwd_item);
    base_mm(q, &L->wo, q->ao, qd, q->a, d, N);
    if (to) lora_fwd(q, to, 0, q->ao, qd, N, NULL, q->a, d, q->u[GROK_LORA_T_O]);
    for (int64_t t = 0; t < N; t++) {
        float *hm = q->hm + t * d;
        norm_row(hm, &q->rs_ao[t], q->a + t * d, L->attn_out_norm, d, eps);
        for (int64_t i = 0; i < d; i++) hm[i] += q->h[t * d + i];
        norm_row(q->xf + t * d, &q->rs_f[t], hm, L->ffn_norm, d, eps);
    }
    grok_matmul_tok(q->pool, &L->router, q->xf, d, q->rp, E, N);
    if (tr) lora_fwd(q, tr, 0, q->xf, d, N, NULL, q->rp, E, q->u[GROK_LORA_T_ROUTER]);
    route_and_stats(q, il);
    for (int64_t j = 0; j < N * K; j++)
        memcpy(q->xg + j * d, q->xf + SZ(q->slot_tok[j]) * SZ(d), sizeof(float) * SZ(d));
    for (int64_t e = 0; e < E; e++) {
        const int64_t j0 = q->eoff[e], n = q->eoff[e + 1] - j0;
        if (n == 0) continue;
        grok_mat gate = grok_layer_expert(L, 0, e);
        grok_mat up = grok_layer_expert(L, 1, e);
        const grok_matmul_op ops[2] = {{&gate, q->xg + j0 * d, d, q->G + j0 * ff, ff, n},
                                       {&up, q->xg + j0 * d, d, q->U + j0 * ff, ff, n}};
        base_mm_ops(q, ops, 2);
        const int32_t *rt = q->slot_tok + j0;
        if (tg)
            lora_fwd(q, tg, e, q->xg + j0 * d, d, n, rt, q->G + j0 * ff, ff,
                     q->u[GROK_LORA_T_GATE] + j0 * tg->rank);
        if (tu)
            lora_fwd(q, tu, e, q->xg + j0 * d, d, n, rt, q->U + j0 * ff, ff,
                     q->u[GROK_LORA_T_UP] + j0 * tu->rank);
    }
    pfor(q, N * K, gelu_fwd_item);
    for (int64_t e = 0; e < E; e++) {
        const int64_t j0 = q->eoff[e], n = q->eoff[e + 1] - j0;
        if (n == 0) continue;
        grok_mat down = grok_layer_expert(L, 2, e);
        base_mm(q, &down, q->act + j0 * ff, ff, q->EO + j0 * d, d, n);
        if (td)
            lora_fwd(q, td, e, q->act + j0 * ff, ff, n, q->slot_tok + j0, q->EO + j0 * d, d,
                     q->u[GROK_LORA_T_DOWN] + j0 * td->rank);
    }
    for (int64_t t = 0; t < N; t++) {
        float *mo = q->mo + t * d, *h = q->h + t * d;
        memset(mo, 0, sizeof(float) * SZ(d));
        for (int64_t k = 0; k < K; k++) {
            const float gk = q->gates[t * K + k], *eo = q->EO + SZ(q->slot_of[t * K + k]) * SZ(d);
            for (int64_t i = 0; i < d; i++) mo[i] += gk * eo[i];
        }
        norm_row(q->dmo + t * d, &q->rs_m[t], mo, L->layer_out_norm, d, eps); /* dmo: scratch here */
        for (int64_t i = 0; i < d; i++) h[i] = q->hm[t * d + i] + q->dmo[t * d + i];
    }
}

/* Backward through layer il: q->dh holds dL/d(layer output) and becomes
 * dL/d(layer input). The layer's activations must be those of its
 * forward pass (recomputed just before). */
static void layer_bwd(grok_qlora *q, int64_t il, bool need_dx) {
    const grok_model *m = q->m;
    const grok_layer *L = &m->layers[il];
    const grok_train_lora *l = q->l;
    const int64_t N = q->N, d = q->d, qd = q->qd, kvd = q->kvd, E = q->E, K = q->K, ff = q->ff;
    const grok_train_lora_target *tq = grok_train_lora_find(l, il, GROK_LORA_T_Q),
                                 *tk = grok_train_lora_find(l, il, GROK_LORA_T_K),
                                 *tv = grok_train_lora_find(l, il, GROK_LORA_T_V),
                                 *to = grok_train_lora_find(l, il, GROK_LORA_T_O),
                                 *tg = grok_train_lora_find(l, il, GROK_LORA_T_GATE),
                                 *tu = grok_train_lora_find(l, il, GROK_LORA_T_UP),
                                 *td = grok_train_lora_find(l, il, GROK_LORA_T_DOWN),
                                 *tr = grok_train_lora_find(l, il, GROK_LORA_T_ROUTER);
    const float *h_in = q->ckpt + SZ(il) * SZ(N) * SZ(d);
    /* h_out = hm + norm(mo): d hm = dh; d mo through the norm */
    memset(q->dmo, 0, sizeof(float) * SZ(N * d));
    for (int64_t t = 0; t < N; t++)
        norm_bwd_row(q->dmo + t * d, q->dh + t * d, q->mo + t * d, L->layer_out_norm, q->rs_m[t], d);
    /* mo = sum_k gate_k EO_k; gates are router probabilities */
    const float aux_c = q->cfg.loss.aux_coef / (float)q->L, z_c = q->cfg.loss.z_coef / (float)q->L;
    for (int64_t t = 0; t < N; t++) {
        float *dp = q->dp + t * E;
        for (int64_t e = 0; e < E; e++)
            dp[e] = aux_c * (float)E * (float)q->fe[il * E + e] * (float)q->inv_tok;
        for (int64_t k = 0; k < K; k++) {
            const int64_t e = q->sel[t * K + k], j = q->slot_of[t * K + k];
            const float *eo = q->EO + j * d, *dm = q->dmo + t * d;
            float acc = 0;
            for (int64_t i = 0; i < d; i++) acc += dm[i] * eo[i];
            dp[e] += acc;
            const float gk = q->gates[t * K + k];
            float *de = q->deo + j * d;
            for (int64_t i = 0; i < d; i++) de[i] = gk * dm[i];
        }
        /* softmax Jacobian and the z-loss, to the router logits */
        const float *p = q->rp + t * E;
        float dot = 0;
        for (int64_t e = 0; e < E; e++) dot += p[e] * dp[e];
        const float zc = z_c * 2.0f * (float)q->lse_r[t] * (float)q->inv_tok;
        for (int64_t e = 0; e < E; e++) dp[e] = p[e] * (dp[e] - dot) + zc * p[e];
    }
    memset(q->dxf, 0, sizeof(float) * SZ(N * d));
    grok_matmul_t(q->pool, &L->router, q->dp, E, q->dxf, d, N);
    if (tr) lora_bwd(q, tr, 0, q->xf, d, N, NULL, q->u[GROK_LORA_T_ROUTER], q->dp, E, q->dxf, d);
    /* experts */
    for (int64_t e = 0; e < E; e++) {
        const int64_t j0 = q->eoff[e], n = q->eoff[e + 1] - j0;
        if (n == 0) continue;
        const int32_t *rt = q->slot_tok + j0;
        grok_mat gate = grok_layer_expert(L, 0, e);
        grok_mat up = grok_layer_expert(L, 1, e);
        grok_mat down = grok_layer_expert(L, 2, e);
        float *dact = q->dact, *deo = q->deo + j0 * d;
        memset(dact, 0, sizeof(float) * SZ(n * ff));
        grok_matmul_t(q->pool, &down, deo, d, dact, ff, n);
        if (td)
            lora_bwd(q, td, e, q->act + j0 * ff, ff, n, rt, q->u[GROK_LORA_T_DOWN] + j0 * td->rank, deo, d,
                     dact, ff);
        /* dact -> dG (in dact) and dU (over G, no longer needed) */
        float *G = q->G + j0 * ff, *U = q->U + j0 * ff, *th = q->act + j0 * ff; /* act: tanh scratch now */
        for (int64_t i = 0; i < n * ff; i++) th[i] = GELU_K * (G[i] + GELU_C * G[i] * G[i] * G[i]);
        grok_vec_select(grok_kernels_mode())->tanh(th, n * ff);
        for (int64_t i = 0; i < n * ff; i++) {
            const float x = G[i], t = th[i], da = dact[i];
            const float gl = 0.5f * x * (1.0f + t);
            const float gd =
                0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
            dact[i] = da * U[i] * gd;
            G[i] = da * gl;
        }
        float *dG = dact, *dU = G, *dxg = q->dxg;
        memset(dxg, 0, sizeof(float) * SZ(n * d));
        grok_matmul_t(q->pool, &gate, dG, ff, dxg, d, n);
        grok_matmul_t(q->pool, &up, dU, ff, dxg, d, n);
        if (tg)
            lora_bwd(q, tg, e, q->xg + j0 * d, d, n, rt, q->u[GROK_LORA_T_GATE] + j0 * tg->rank, dG, ff, dxg,
                     d);
        if (tu)
            lora_bwd(q, tu, e, q->xg + j0 * d, d, n, rt, q->u[GROK_LORA_T_UP] + j0 * tu->rank, dU, ff, dxg,
                     d);
        for (int64_t j = 0; j < n; j++) {
            float *dst = q->dxf + SZ(rt[j]) * SZ(d);
            const float *src = dxg + j * d;
            for (int64_t i = 0; i < d; i++) dst[i] += src[i];
        }
    }
    /* Below the lowest layer nothing needs d h_in: with no attention
     * adapter there, the rest of the layer has no gradient to give. */
    if (!need_dx && !tq && !tk && !tv && !to) return;
    /* xf = norm(hm): dh (now d hm) gets the MoE branch; hm = h + norm(a) */
    memset(q->da, 0, sizeof(float) * SZ(N * d));
    for (int64_t t = 0; t < N; t++) {
        norm_bwd_row(q->dh + t * d, q->dxf + t * d, q->hm + t * d, L->ffn_norm, q->rs_f[t], d);
        norm_bwd_row(q->da + t * d, q->dh + t * d, q->a + t * d, L->attn_out_norm, q->rs_ao[t], d);
    }
    memset(q->dao, 0, sizeof(float) * SZ(N * qd));
    grok_matmul_t(q->pool, &L->wo, q->da, d, q->dao, qd, N);
    if (to) lora_bwd(q, to, 0, q->ao, qd, N, NULL, q->u[GROK_LORA_T_O], q->da, d, q->dao, qd);
    if (!need_dx && !tq && !tk && !tv) return;
    pfor(q, q->n_seq * q->KVH, attn_bwd_item);
    for (int64_t t = 0; t < N; t++) {
        const float *cs = q->rope + q->pos[t] * q->D;
        rope_row(q->dq + t * qd, cs, q->H, q->D, true);
        rope_row(q->dk + t * kvd, cs, q->KVH, q->D, true);
    }
    float *dxa = need_dx ? q->dxa : NULL;
    if (dxa) {
        memset(dxa, 0, sizeof(float) * SZ(N * d));
        grok_matmul_t(q->pool, &L->wq, q->dq, qd, dxa, d, N);
        grok_matmul_t(q->pool, &L->wk, q->dk, kvd, dxa, d, N);
        grok_matmul_t(q->pool, &L->wv, q->dv, kvd, dxa, d, N);
    }
    if (tq) lora_bwd(q, tq, 0, q->xa, d, N, NULL, q->u[GROK_LORA_T_Q], q->dq, qd, dxa, d);
    if (tk) lora_bwd(q, tk, 0, q->xa, d, N, NULL, q->u[GROK_LORA_T_K], q->dk, kvd, dxa, d);
    if (tv) lora_bwd(q, tv, 0, q->xa, d, N, NULL, q->u[GROK_LORA_T_V], q->dv, kvd, dxa, d);
    if (dxa)
        for (int64_t t = 0; t < N; t++)
            norm_bwd_row(q->dh + t * d, dxa + t * d, h_in + t * d, L->attn_norm, q->rs_a[t], d);
}

/* ------------------------------------------------------------ head */

static void head_row_item(grok_qlora *q, int64_t i, int ith) {
    (void)ith;
    const int64_t V = q->V;
    const float ls = q->m->hp.logit_scale;
    float *z = q->logit + i * V, mx = -INFINITY;
    for (int64_t j = 0; j < V; j++) {
        z[j] *= ls;
        mx = z[j] > mx ? z[j] : mx;
    }
    const int32_t y = q->target[q->hrow[i]];
    const float zy = z[y];
    const double sum = grok_vec_select(grok_kernels_mode())->exp_sum(z, V, mx);
    q->row_ce[i] = (float)((double)mx + log(sum) - (double)zy);
    if (!q->want_grad) return;
    /* d loss / d logit, then through the output multiplier */
    const float c = ls * (float)q->inv_scored, cs = (float)(c / sum);
    for (int64_t j = 0; j < V; j++) z[j] *= cs;
    z[y] -= c;
}

/* Final norm, output head and cross-entropy over the scored tokens, in
 * chunks of rows; with a gradient, dhf = d loss / d hf. */
static void head(grok_qlora *q) {
    const grok_model *m = q->m;
    const int64_t N = q->N, d = q->d, V = q->V;
    for (int64_t t = 0; t < N; t++)
        norm_row(q->hf + t * d, &q->rs_o[t], q->h + t * d, m->output_norm, d, m->hp.norm_eps);
    if (q->want_grad) memset(q->dhf, 0, sizeof(float) * SZ(N * d));
    int64_t t = 0;
    while (t < N) {
        int64_t c = 0;
        for (; t < N && c < q->head_chunk; t++)
            if (q->target[t] >= 0) q->hrow[c++] = (int32_t)t;
        if (c == 0) break;
        for (int64_t i = 0; i < c; i++)
            memcpy(q->hsel + i * d, q->hf + SZ(q->hrow[i]) * SZ(d), sizeof(float) * SZ(d));
        base_mm(q, &m->output, q->hsel, d, q->logit, V, c);
        pfor(q, c, head_row_item);
        for (int64_t i = 0; i < c; i++)
            q->stats[SZ(q->tseq[q->hrow[i]]) * SZ(q->n_stat) + ST_CE] += q->row_ce[i];
        if (!q->want_grad) continue;
        memset(q->dsel, 0, sizeof(float) * SZ(c * d));
        grok_matmul_t(q->pool, &m->output, q->logit, V, q->dsel, d, c);
        for (int64_t i = 0; i < c; i++)
            memcpy(q->dhf + SZ(q->hrow[i]) * SZ(d), q->dsel + i * d, sizeof(float) * SZ(d));
    }
}

static void embed(grok_qlora *q) {
    const grok_model *m = q->m;
    const grok_type_kernels *ek = grok_kernels_get(m->token_embd.type);
    for (int64_t t = 0; t < q->N; t++) {
        float *h = q->h + t * q->d;
        ek->to_f32(m->token_embd.data + SZ(q->tok[t]) * m->token_embd.row_bytes, h, q->d);
        for (int64_t i = 0; i < q->d; i++) h[i] *= m->hp.embedding_scale;
    }
}

/* s B^T of every target and expert, from the current B. */
static void refresh_bt(grok_qlora *q) {
    const grok_train_lora *l = q->l;
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        for (int64_t e = 0; e < t->n_mats; e++) {
            const float *b = l->p->w + t->b + e * t->rows * t->rank;
            float *bt = (float *)q->bt_mat[i * q->E + e].data;
            for (int64_t o = 0; o < t->rows; o++)
                for (int64_t k = 0; k < t->rank; k++) bt[k * t->rows + o] = t->scale * b[o * t->rank + k];
        }
    }
}

/* ------------------------------------------------------------ create */

static void *zalloc(size_t n, size_t sz, bool *ok) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) *ok = false;
    return p;
}

size_t grok_qlora_bytes(const grok_qlora *q) { return q ? (size_t)q->alloc_bytes : 0; }

grok_qlora *grok_qlora_create(const grok_model *m, const grok_train_lora *l, int64_t max_tok, int64_t max_seq,
                              bool dropout, grok_threadpool *pool, char *err, size_t err_size) {
    const grok_hparams *hp = &m->hp;
    if (grok_lora_base_hash(hp) != grok_lora_base_hash(&l->hp)) {
        snprintf(err, err_size, "lora: the adapter's shapes do not match the base model");
        return NULL;
    }
    if (max_tok < 1 || max_seq < 1 || max_seq > max_tok || max_seq > hp->n_ctx_train) {
        snprintf(err, err_size,
                 "train: %" PRId64 " tokens per step in sequences of up to %" PRId64
                 " do not fit the context %" PRId64,
                 max_tok, max_seq, hp->n_ctx_train);
        return NULL;
    }
    grok_qlora *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    q->m = m, q->l = l, q->pool = pool, q->nth = grok_threadpool_size(pool);
    q->max_tok = max_tok, q->max_seq = max_seq, q->max_seqs = max_tok;
    q->d = hp->d_model, q->H = hp->n_heads, q->KVH = hp->n_kv_heads, q->D = hp->head_dim;
    q->grp = q->H / q->KVH, q->qd = q->H * q->D, q->kvd = q->KVH * q->D;
    q->E = hp->n_experts, q->K = hp->n_experts_used, q->ff = hp->n_ff, q->V = hp->n_vocab,
    q->L = hp->n_layers;
    const int64_t N = max_tok, d = q->d, qd = q->qd, kvd = q->kvd, E = q->E, K = q->K, ff = q->ff,
                  S = max_seq;
    q->n_stat = ST_HEAD + q->L * E * 2 + q->L;
    int64_t R = 1;
    for (int64_t i = 0; i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        if (t->rank > R) R = t->rank;
        if (t->cols > q->max_lin) q->max_lin = t->cols;
        if (t->rows > q->max_lout) q->max_lout = t->rows;
        if (t->rank * (t->rows + t->cols) > q->max_leaf) q->max_leaf = t->rank * (t->rows + t->cols);
    }
    bool ok = true;
    size_t bytes = 0;
#define A(ptr, n, type) (ptr = zalloc(SZ(n), sizeof(type), &ok), bytes += SZ(n) * sizeof(type))
    A(q->rope, S * q->D, float);
    for (int64_t p = 0; ok && p < S; p++)
        for (int64_t i = 0; i < q->D / 2; i++) {
            double theta = (double)p / pow((double)hp->rope_base, (double)(2 * i) / (double)q->D);
            q->rope[p * q->D + i] = (float)cos(theta);
            q->rope[p * q->D + q->D / 2 + i] = (float)sin(theta);
        }
    /* the adapters' matrices as f32 grok_mats, and s B^T */
    const int64_t nm = l->n_t * E;
    A(q->a_mat, nm, grok_mat);
    A(q->b_mat, nm, grok_mat);
    A(q->bt_mat, nm, grok_mat);
    int64_t n_bt = 0;
    for (int64_t i = 0; i < l->n_t; i++) n_bt += l->t[i].rank * l->t[i].rows * l->t[i].n_mats;
    A(q->bt, n_bt, float);
    for (int64_t i = 0, off = 0; ok && i < l->n_t; i++) {
        const grok_train_lora_target *t = &l->t[i];
        for (int64_t e = 0; e < t->n_mats; e++, off += t->rank * t->rows) {
            q->a_mat[i * E + e] = f32_mat(l->p->w + t->a + e * t->rank * t->cols, t->rank, t->cols, t->cols);
            q->b_mat[i * E + e] = f32_mat(l->p->w + t->b + e * t->rows * t->rank, t->rows, t->rank, t->rank);
            q->bt_mat[i * E + e] = f32_mat(q->bt + off, t->rank, t->rows, t->rows);
        }
    }
    A(q->seq_start, N + 1, int64_t);
    A(q->tok, N, int32_t);
    A(q->pos, N, int32_t);
    A(q->tseq, N, int32_t);
    A(q->target, N, int32_t);
    A(q->stats, N * q->n_stat, double);
    A(q->fe, q->L * E, double);
    A(q->ckpt, q->L * N * d, float);
    float **nd[] = {&q->h,  &q->xa,  &q->a,   &q->hm, &q->xf,  &q->mo,  &q->hf,
                    &q->dh, &q->dmo, &q->dxf, &q->da, &q->dxa, &q->dhf, &q->dxg};
    for (size_t i = 0; i < sizeof nd / sizeof nd[0]; i++) A(*nd[i], N * d, float);
    A(q->q, N * qd, float);
    A(q->ao, N * qd, float);
    A(q->dao, N * qd, float);
    A(q->dq, N * qd, float);
    A(q->k, N * kvd, float);
    A(q->v, N * kvd, float);
    A(q->dk, N * kvd, float);
    A(q->dv, N * kvd, float);
    float **nr[] = {&q->rs_a, &q->rs_ao, &q->rs_f, &q->rs_m, &q->rs_o};
    for (size_t i = 0; i < sizeof nr / sizeof nr[0]; i++) A(*nr[i], N, float);
    A(q->rp, N * E, float);
    A(q->dp, N * E, float);
    A(q->gates, N * K, float);
    A(q->lse_r, N, double);
    A(q->sel, N * K, int32_t);
    A(q->slot_of, N * K, int32_t);
    A(q->slot_tok, N * K, int32_t);
    A(q->eoff, E + 1, int64_t);
    A(q->xg, N * K * d, float);
    A(q->EO, N * K * d, float);
    A(q->deo, N * K * d, float);
    A(q->G, N * K * ff, float);
    A(q->U, N * K * ff, float);
    A(q->act, N * K * ff, float);
    A(q->dact, N * ff, float);
    for (int k = 0; k < GROK_LORA_N_TARGETS; k++)
        if (l->targets & (1u << k)) A(q->u[k], (grok_lora_target_is_expert(k) ? N * K : N) * R, float);
    A(q->lv, N * R, float);
    if (dropout) {
        A(q->xd, N * q->max_lin, float);
        A(q->ltmp, N * q->max_lin, float);
    }
    A(q->ut, R * S, float);
    A(q->vt, R * S, float);
    A(q->dbt, R * q->max_lout, float);
    A(q->leaf, q->max_leaf, float);
    q->stack_levels = 2;
    A(q->stack, q->stack_levels * q->max_leaf, float);
    q->head_chunk = ((int64_t)32 << 20) / (q->V > 0 ? q->V : 1);
    if (q->head_chunk < 16) q->head_chunk = 16;
    if (q->head_chunk > N) q->head_chunk = N;
    A(q->logit, q->head_chunk * q->V, float);
    A(q->hsel, q->head_chunk * d, float);
    A(q->dsel, q->head_chunk * d, float);
    A(q->row_ce, q->head_chunk, float);
    A(q->hrow, q->head_chunk, int32_t);
    q->att_per = (q->grp > 3 ? q->grp : 3) * S;
    A(q->att, q->nth * q->att_per, float);
#undef A
    q->alloc_bytes = (int64_t)bytes;
    if (!ok) {
        snprintf(err, err_size, "train: out of memory for the activations of %" PRId64 " tokens (%.1f MB)", N,
                 (double)bytes / 1e6);
        grok_qlora_free(q);
        return NULL;
    }
    return q;
}

void grok_qlora_free(grok_qlora *q) {
    if (!q) return;
    void *p[] = {q->a_mat, q->b_mat,  q->bt_mat,  q->bt,       q->rope, q->seq_start, q->tok,      q->pos,
                 q->tseq,  q->target, q->stats,   q->gstats,   q->fe,   q->ckpt,      q->h,        q->xa,
                 q->q,     q->k,      q->v,       q->ao,       q->a,    q->hm,        q->xf,       q->mo,
                 q->hf,    q->rs_a,   q->rs_ao,   q->rs_f,     q->rs_m, q->rs_o,      q->rp,       q->gates,
                 q->lse_r, q->sel,    q->slot_of, q->slot_tok, q->eoff, q->xg,        q->G,        q->U,
                 q->act,   q->EO,     q->dh,      q->dmo,      q->dxf,  q->da,        q->dao,      q->dq,
                 q->dk,    q->dv,     q->dxa,     q->dhf,      q->dp,   q->deo,       q->dact,     q->dxg,
                 q->xd,    q->lv,     q->ltmp,    q->ut,       q->vt,   q->dbt,       q->leaf,     q->stack,
                 q->logit, q->hsel,   q->dsel,    q->row_ce,   q->hrow, q->att,       q->own_nodes};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    for (int k = 0; k < GROK_LORA_N_TARGETS; k++) free(q->u[k]);
    free(q);
}

/* ------------------------------------------------------------ a step */

static int lay_out(grok_qlora *q, const grok_train_seq *seqs, int64_t n_seq, char *err, size_t err_size) {
    const int64_t V = q->V;
    int64_t N = 0;
    for (int64_t s = 0; s < n_seq; s++) {
        const grok_train_seq *sq = &seqs[s];
        if (sq->n < 1 || sq->n > q->max_seq) {
            snprintf(err, err_size,
                     "train: sequence %" PRId64 " has %" PRId64 " tokens, outside [1, %" PRId64 "]",
                     q->lo + s, sq->n, q->max_seq);
            return -1;
        }
        if (N + sq->n > q->max_tok) {
            snprintf(err, err_size, "train: the step's sequences hold more than %" PRId64 " tokens",
                     q->max_tok);
            return -1;
        }
        q->seq_start[s] = N;
        for (int64_t i = 0; i < sq->n; i++, N++) {
            const int32_t x = sq->tokens[i], y = sq->tokens[i + 1];
            if (x < 0 || x >= V || y < 0 || y >= V) {
                snprintf(err, err_size, "train: sequence %" PRId64 " has a token id outside [0, %" PRId64 ")",
                         q->lo + s, V);
                return -1;
            }
            q->tok[N] = x, q->pos[N] = (int32_t)i, q->tseq[N] = (int32_t)s;
            q->target[N] = !sq->mask || sq->mask[i] ? y : -1;
        }
    }
    q->seq_start[n_seq] = N;
    q->N = N, q->n_seq = n_seq;
    return 0;
}

static int gather_stats(grok_qlora *q, const grok_train_comm *comm, int64_t width, double *out, char *err,
                        size_t err_size) {
    /* rows [0, width) of every local sequence's stats, all sequences of the batch in order */
    const int np = comm ? comm->n_ranks : 1;
    double *mine = malloc(sizeof(double) * SZ((q->n_seq ? q->n_seq : 1) * width));
    size_t *counts = malloc(sizeof(size_t) * SZ(np));
    if (!mine || !counts) {
        free(mine), free(counts);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (int64_t s = 0; s < q->n_seq; s++)
        memcpy(mine + s * width, q->stats + s * q->n_stat, sizeof(double) * SZ(width));
    int rc = 0;
    if (np == 1) {
        memcpy(out, mine, sizeof(double) * SZ(q->n_seq * width));
    } else {
        for (int r = 0; r < np; r++) {
            int64_t lo, hi;
            grok_gradsum_share(q->batch, r, np, &lo, &hi);
            counts[r] = sizeof(double) * SZ((hi - lo) * width);
        }
        rc = comm->allgatherv(comm->ud, mine, out, counts, err, err_size);
    }
    free(mine), free(counts);
    return rc;
}

int grok_qlora_step(grok_qlora *q, const grok_train_seq *seqs, const grok_qlora_step_cfg *cfg,
                    grok_train_losses *out, float *grad, char *err, size_t err_size) {
    const grok_train_comm *comm = cfg->comm && cfg->comm->n_ranks > 1 ? cfg->comm : NULL;
    const int np = comm ? comm->n_ranks : 1, rank = comm ? comm->rank : 0;
    const int64_t B = cfg->batch, L = q->L, E = q->E, K = q->K, d = q->d;
    if (B < np) {
        snprintf(err, err_size, "train: a batch of %" PRId64 " sequences cannot be split over %d processes",
                 B, np);
        return -1;
    }
    int64_t lo, hi;
    grok_gradsum_share(B, rank, np, &lo, &hi);
    q->cfg = *cfg, q->lo = lo, q->batch = B;
    q->want_grad = grad != NULL;
    if (hi - lo > q->max_seqs) {
        snprintf(err, err_size, "train: %" PRId64 " sequences per step exceed the trainer's %" PRId64,
                 hi - lo, q->max_seqs);
        return -1;
    }
    if (lay_out(q, seqs, hi - lo, err, err_size)) return -1;
    refresh_bt(q);
    memset(q->stats, 0, sizeof(double) * SZ(q->n_seq * q->n_stat));
    for (int64_t t = 0; t < q->N; t++) {
        double *st = q->stats + SZ(q->tseq[t]) * SZ(q->n_stat);
        st[ST_TOK] += 1, st[ST_SCORED] += q->target[t] >= 0;
    }
    /* the batch's token counts, before any loss is normalised */
    free(q->gstats);
    q->gstats = malloc(sizeof(double) * SZ(B * q->n_stat));
    double *counts = malloc(sizeof(double) * SZ(B * ST_HEAD));
    if (!q->gstats || !counts) {
        free(counts);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    if (gather_stats(q, comm, ST_HEAD, counts, err, err_size)) {
        free(counts);
        return -1;
    }
    double n_scored = 0, n_tok = 0;
    for (int64_t b = 0; b < B; b++)
        n_scored += counts[b * ST_HEAD + ST_SCORED], n_tok += counts[b * ST_HEAD + ST_TOK];
    free(counts);
    if (n_scored == 0) {
        snprintf(err, err_size, "train: the batch has no target token that counts in the loss");
        return -1;
    }
    q->inv_scored = 1.0 / n_scored, q->inv_tok = 1.0 / n_tok;

    /* forward, keeping each layer's input (a process may hold no
     * sequence of a short evaluation batch) */
    q->keep_stats = true;
    if (q->N > 0) {
        embed(q);
        for (int64_t il = 0; il < L; il++) {
            if (q->want_grad) memcpy(q->ckpt + SZ(il) * SZ(q->N) * SZ(d), q->h, sizeof(float) * SZ(q->N * d));
            layer_fwd(q, il);
        }
        head(q);
    }
    q->keep_stats = false;

    /* the batch's statistics: losses and routing shares */
    if (gather_stats(q, comm, q->n_stat, q->gstats, err, err_size)) return -1;
    double ce = 0, aux = 0, z = 0;
    for (int64_t b = 0; b < B; b++) ce += q->gstats[b * q->n_stat + ST_CE];
    for (int64_t il = 0; il < L; il++) {
        double al = 0, zl = 0;
        for (int64_t e = 0; e < E; e++) {
            double c = 0, ps = 0;
            for (int64_t b = 0; b < B; b++) {
                c += q->gstats[b * q->n_stat + ST_HEAD + (il * E + e) * 2];
                ps += q->gstats[b * q->n_stat + ST_HEAD + (il * E + e) * 2 + 1];
            }
            q->fe[il * E + e] = c / (n_tok * (double)K);
            al += q->fe[il * E + e] * ps / n_tok;
        }
        for (int64_t b = 0; b < B; b++) zl += q->gstats[b * q->n_stat + ST_HEAD + L * E * 2 + il];
        aux += (double)E * al / (double)L;
        z += zl / n_tok / (double)L;
    }
    out->ce = ce / n_scored, out->aux = aux, out->z = z, out->n_scored = (int64_t)n_scored;
    out->total = out->ce + cfg->loss.aux_coef * aux + cfg->loss.z_coef * z;
    if (!grad) return 0;

    /* backward, layer by layer from the checkpoints */
    const int64_t P = q->l->p->n_params;
    q->n_nodes = grok_gradsum_nodes(B, lo, hi, q->nodes, MAX_NODES);
    int levels = grok_gradsum_depth(B) + 1;
    if (levels > q->stack_levels) {
        float *st = realloc(q->stack, sizeof(float) * SZ(levels) * SZ(q->max_leaf));
        if (!st) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        q->stack = st, q->stack_levels = levels;
    }
    if (q->n_nodes > 1 && q->own_nodes_n < (q->n_nodes - 1) * P) {
        free(q->own_nodes);
        q->own_nodes = malloc(sizeof(float) * SZ(q->n_nodes - 1) * SZ(P));
        q->own_nodes_n = q->own_nodes ? (q->n_nodes - 1) * P : 0;
        if (!q->own_nodes) {
            snprintf(err, err_size, "out of memory for %d gradient subtrees", q->n_nodes);
            return -1;
        }
    }
    for (int i = 0; i < q->n_nodes; i++) {
        q->node_buf[i] = i == 0 ? grad : q->own_nodes + SZ(i - 1) * SZ(P);
        memset(q->node_buf[i], 0, sizeof(float) * SZ(P));
    }
    memset(q->dh, 0, sizeof(float) * SZ(q->N * d));
    for (int64_t t = 0; t < q->N; t++)
        norm_bwd_row(q->dh + t * d, q->dhf + t * d, q->h + t * d, q->m->output_norm, q->rs_o[t], d);
    for (int64_t il = q->N > 0 ? L - 1 : -1; il >= 0; il--) {
        memcpy(q->h, q->ckpt + SZ(il) * SZ(q->N) * SZ(d), sizeof(float) * SZ(q->N * d));
        layer_fwd(q, il);
        layer_bwd(q, il, il > 0);
    }
    if (np > 1 || q->n_nodes != 1) {
        const float *mine[MAX_NODES];
        for (int i = 0; i < q->n_nodes; i++) mine[i] = q->node_buf[i];
        if (grok_gradsum_allreduce(comm, B, mine, q->n_nodes, P, grad, err, err_size)) return -1;
    }
    return 0;
}

int grok_qlora_logits(grok_qlora *q, const int32_t *tokens, int64_t n, float *logits, char *err,
                      size_t err_size) {
    if (n < 1 || n > q->max_seq) {
        snprintf(err, err_size, "train: %" PRId64 " tokens do not fit a sequence of %" PRId64, n, q->max_seq);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= q->V) {
            snprintf(err, err_size, "train: token %" PRId64 " has id %d, outside [0, %" PRId64 ")", i,
                     tokens[i], q->V);
            return -1;
        }
    q->lo = 0, q->batch = 1, q->want_grad = false, q->keep_stats = false;
    q->cfg = (grok_qlora_step_cfg){0};
    refresh_bt(q);
    q->seq_start[0] = 0, q->seq_start[1] = n;
    for (int64_t i = 0; i < n; i++)
        q->tok[i] = tokens[i], q->pos[i] = (int32_t)i, q->tseq[i] = 0, q->target[i] = -1;
    q->N = n, q->n_seq = 1;
    embed(q);
    for (int64_t il = 0; il < q->L; il++) layer_fwd(q, il);
    const float *hl = q->h + (n - 1) * q->d;
    norm_row(q->hsel, NULL, hl, q->m->output_norm, q->d, q->m->hp.norm_eps);
    base_mm(q, &q->m->output, q->hsel, q->d, logits, q->V, 1);
    for (int64_t j = 0; j < q->V; j++) logits[j] *= q->m->hp.logit_scale;
    return 0;
}
