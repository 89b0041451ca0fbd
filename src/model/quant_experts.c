/*
 * quant_experts.c - grok quantize --expert-aware: the types of one stacked
 * expert tensor's experts, sharing the bits the mix gives the tensor by
 * how much each expert is used. An expert's contribution to a layer's
 * output error over the calibration text is the sum, over the tokens the
 * router sent it, of its products' squared errors; for uncorrelated
 * inputs that is count_e * sum_i imx_e,i * err_i^2, with imx the
 * imatrix's mean squared input of column i for that expert and err the
 * rounding error of the weights (the quantity the encoders minimise). The
 * error of every candidate type is measured by encoding (a sample of) the
 * expert's own rows with the real encoder and decoding them again; the
 * assignment minimises the sum of count_e * error_e(type) under the bytes
 * of the uniform type, exactly (a dynamic programme over the bytes).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/quantize.h"

/* The ladders of types that can stand in for each other: the same block
 * size and family, in order of size. */
static const grok_type LADDER_K[] = {GROK_TYPE_Q2_K, GROK_TYPE_Q3_K, GROK_TYPE_Q4_K, GROK_TYPE_Q5_K,
                                     GROK_TYPE_Q6_K};
static const grok_type LADDER_IQ[] = {GROK_TYPE_IQ1_S, GROK_TYPE_IQ1_M,   GROK_TYPE_IQ2_XXS, GROK_TYPE_IQ2_XS,
                                      GROK_TYPE_IQ2_S, GROK_TYPE_IQ3_XXS, GROK_TYPE_IQ3_S,   GROK_TYPE_IQ4_XS,
                                      GROK_TYPE_Q5_K,  GROK_TYPE_Q6_K};
static const grok_type LADDER_32[] = {GROK_TYPE_Q4_0, GROK_TYPE_Q4_1, GROK_TYPE_Q5_0, GROK_TYPE_Q5_1,
                                      GROK_TYPE_Q8_0};
static const grok_type LADDER_NL[] = {GROK_TYPE_IQ4_NL, GROK_TYPE_Q5_0, GROK_TYPE_Q5_1, GROK_TYPE_Q8_0};

int grok_quant_expert_candidates(grok_type t0, int64_t cols, grok_type *out) {
    const struct {
        const grok_type *l;
        int n;
    } ladders[] = {{LADDER_K, 5}, {LADDER_IQ, 10}, {LADDER_32, 5}, {LADDER_NL, 4}};
    for (size_t k = 0; k < sizeof ladders / sizeof ladders[0]; k++)
        for (int i = 0; i < ladders[k].n; i++) {
            if (ladders[k].l[i] != t0) continue;
            int n = 0;
            for (int j = i - 2; j <= i + 2; j++) {
                if (j < 0 || j >= ladders[k].n) continue;
                const grok_type t = ladders[k].l[j];
                if (cols % grok_type_get_traits((uint32_t)t)->block_size == 0 &&
                    grok_type_can_encode((uint32_t)t))
                    out[n++] = t;
            }
            return n;
        }
    out[0] = t0;
    return 1;
}

typedef struct {
    const grok_type_kernels *src;
    const uint8_t *data; /* the expert's first row */
    size_t in_row;
    int64_t rows, cols, n_sample;
    const float *w; /* the expert's column importances */
    const grok_type *cand;
    int n_cand;
    size_t max_out_row;
    uint8_t *scratch; /* per thread: x, y [cols] floats, then an encoded row */
    size_t scratch_each;
    double *acc; /* [n_threads][n_cand] */
} err_job;

static void err_task(void *arg, int ith, int nth) {
    err_job *j = arg;
    float *x = (float *)(void *)(j->scratch + (size_t)ith * j->scratch_each), *y = x + j->cols;
    uint8_t *enc = (uint8_t *)(y + j->cols);
    double *acc = j->acc + (size_t)ith * (size_t)j->n_cand;
    for (int64_t s = j->n_sample * ith / nth; s < j->n_sample * (ith + 1) / nth; s++) {
        const int64_t r = s * j->rows / j->n_sample; /* evenly spread over the expert's rows */
        j->src->to_f32(j->data + (size_t)r * j->in_row, x, j->cols);
        for (int c = 0; c < j->n_cand; c++) {
            grok_from_f32_weighted((uint32_t)j->cand[c], x, enc, j->cols, j->w);
            grok_kernels_get((uint32_t)j->cand[c])->to_f32(enc, y, j->cols);
            double e = 0;
            for (int64_t i = 0; i < j->cols; i++) {
                const double d = (double)x[i] - (double)y[i];
                e += (double)j->w[i] * d * d;
            }
            acc[c] += e;
        }
    }
}

int grok_quant_expert_errors(const grok_gguf_tensor *t, int64_t e, const float *w, const grok_type *cand,
                             int n_cand, int64_t max_rows, grok_threadpool *pool, double *err_out) {
    const int64_t cols = t->ne[0], rows = t->ne[1];
    const int nth = pool ? grok_threadpool_size(pool) : 1;
    size_t max_out = 0;
    for (int c = 0; c < n_cand; c++) {
        const size_t b = (size_t)grok_type_row_size((uint32_t)cand[c], cols);
        if (b > max_out) max_out = b;
    }
    err_job j = {grok_kernels_get(t->type),
                 NULL,
                 (size_t)grok_type_row_size(t->type, cols),
                 rows,
                 cols,
                 rows < max_rows ? rows : max_rows,
                 w,
                 cand,
                 n_cand,
                 max_out,
                 NULL,
                 (2 * (size_t)cols * sizeof(float) + max_out + 63) / 64 * 64,
                 NULL};
    j.data = (const uint8_t *)t->data + (size_t)e * (size_t)rows * j.in_row;
    j.scratch = malloc(j.scratch_each * (size_t)nth);
    j.acc = calloc((size_t)nth * (size_t)n_cand, sizeof(double));
    if (!j.scratch || !j.acc || !j.src) {
        free(j.scratch), free(j.acc);
        return -1;
    }
    if (pool && j.n_sample >= 2 * nth)
        grok_threadpool_run(pool, err_task, &j);
    else
        err_task(&j, 0, 1);
    for (int c = 0; c < n_cand; c++) {
        double s = 0;
        for (int k = 0; k < nth; k++) s += j.acc[(size_t)k * (size_t)n_cand + (size_t)c];
        err_out[c] = s * (double)rows / (double)j.n_sample; /* the whole expert's */
    }
    free(j.scratch), free(j.acc);
    return 0;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
    while (b) {
        const uint64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* Exact, by dynamic programming over the bytes counted in units of the
 * sizes' greatest common divisor: for real tensors one unit is a block
 * size's gcd times the expert's blocks, so an expert is at most a few
 * hundred units and the table n_exp x n_exp x that. */
int grok_quant_expert_assign(int64_t n_exp, int n_cand, const double *cost, const uint64_t *size,
                             uint64_t budget, int *choice) {
    uint64_t g = 0, min_size = UINT64_MAX, max_size = 0;
    for (int c = 0; c < n_cand; c++) {
        g = gcd_u64(g, size[c]);
        if (size[c] < min_size) min_size = size[c];
        if (size[c] > max_size) max_size = size[c];
    }
    if (n_exp <= 0 || n_cand <= 0 || n_cand > 255 || g == 0 || min_size * (uint64_t)n_exp > budget) return -1;
    uint64_t B = budget / g;
    if (B > (uint64_t)n_exp * (max_size / g)) B = (uint64_t)n_exp * (max_size / g); /* more cannot be spent */
    const size_t W = (size_t)B + 1;
    if ((double)W * (double)n_exp > 4e8) return -1; /* cannot be for a real tensor */
    double *f = malloc(sizeof *f * W), *h = malloc(sizeof *h * W);
    uint8_t *arg = malloc((size_t)n_exp * W);
    int rc = -1;
    if (!f || !h || !arg) goto done;
    for (size_t b = 0; b < W; b++) f[b] = 0; /* no experts: nothing spent, nothing lost */
    for (int64_t e = 0; e < n_exp; e++) {
        uint8_t *a = arg + (size_t)e * W;
        for (size_t b = 0; b < W; b++) {
            double best = INFINITY;
            int bc = 0;
            for (int c = 0; c < n_cand; c++) {
                const uint64_t u = size[c] / g;
                if (u > b) continue;
                const double v = f[b - u] + cost[(size_t)e * (size_t)n_cand + (size_t)c];
                if (v < best) best = v, bc = c;
            }
            h[b] = best, a[b] = (uint8_t)bc;
        }
        double *t = f;
        f = h, h = t;
    }
    if (!isfinite(f[B])) goto done;
    for (int64_t e = n_exp - 1, b = (int64_t)B; e >= 0; e--) {
        choice[e] = arg[(size_t)e * W + (size_t)b];
        b -= (int64_t)(size[choice[e]] / g);
    }
    rc = 0;
done:
    free(f), free(h), free(arg);
    return rc;
}
