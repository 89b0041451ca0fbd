/*
 * matmul.c - the matrix product of a weight matrix (any computable type,
 * read where it lies in the mapped file) with a batch of f32 activation
 * rows, over the persistent thread pool. Rows of W are split evenly across
 * the threads. In FAST mode, quantized weights meet activations quantized
 * once per product to 8 bits (block_q8a), so the inner loop is an integer
 * dot product. For batches, each thread walks its rows in tiles that fit
 * in L2 and runs every token over a tile, so each weight byte comes from
 * memory once per product however many tokens there are; on the 8-bit
 * path a multi-token dot takes up to 8 tokens per row at once, so each
 * weight block is also decoded once per 8 tokens rather than per token.
 * Weights with a packed copy (groups of 8 interleaved rows, kernels.h) go
 * through dot_x8, 8 rows a call.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

typedef struct {
    const grok_mat *w;
    const float *x;
    int64_t ldx;
    float *y;
    int64_t ldy;
    int64_t n_tok;
    grok_dot_f32_fn dot;
    grok_dot_q8a_fn dotq;   /* set: use xq */
    grok_dot_q8a_multi_fn dotqm; /* set: batches go through it, GROUP tokens a call */
    grok_q8a_prep_fn prep;  /* run over xq when dotqm is used (kernels.h) */
    grok_dot_x8_fn dotx8;   /* set: w->packed is used, 8 rows a call */
    grok_dot_x16_fn dotx16; /* and where set, 16 rows a call */
    block_q8a *xq;          /* [n_tok][cols/32] */
    int64_t xq_blocks;      /* blocks per token */
} matmul_job;

/* Bytes of weight rows per tile: comfortably inside a 512 KiB+ L2. */
#define TILE_BYTES (192 * 1024)
/* Tokens per multi-token dot call: the kernels tile 4 (AVX2) or 8
 * (AVX-512) tokens per pass over a row; 8 keeps the group's activations
 * (8 x 40 bytes per 32 columns, 28 KiB at 2816 columns) near L1. */
#define GROUP 8

/* The 8-bit path for batches: per tile of rows, per group of tokens, one
 * multi-token dot per row, so each weight block is loaded and prepared
 * once per group instead of once per token. */
static void matmul_rows_multi(const matmul_job *j, int64_t ta, int64_t tb) {
    const int64_t n = j->w->cols;
    for (int64_t t0 = 0; t0 < j->n_tok; t0 += GROUP) {
        const int64_t m = j->n_tok - t0 < GROUP ? j->n_tok - t0 : GROUP;
        const block_q8a *xs[GROUP];
        float out[GROUP];
        for (int64_t k = 0; k < m; k++) xs[k] = j->xq + (t0 + k) * j->xq_blocks;
        for (int64_t r = ta; r < tb; r++) {
            j->dotqm(j->w->data + (size_t)r * j->w->row_bytes, xs, m, n, out);
            for (int64_t k = 0; k < m; k++) j->y[(t0 + k) * j->ldy + r] = out[k];
        }
    }
}

/* Packed weights: threads split the groups of 8 rows; each group goes
 * through the tokens GROUP at a time (for batches, in tiles of groups that
 * stay in L2 while every token passes over them). */
static void matmul_packed_task(void *arg, int ith, int nth) {
    const matmul_job *j = arg;
    const int64_t groups = j->w->rows / GROK_PACK_ROWS, n = j->w->cols;
    const int64_t g0 = groups * ith / nth, g1 = groups * (ith + 1) / nth;
    const size_t gbytes = GROK_PACK_ROWS * j->w->row_bytes;
    int64_t tile = j->n_tok == 1 ? g1 - g0 : (int64_t)(TILE_BYTES / gbytes);
    if (tile < 1) tile = 1;
    float out[GROUP * 2 * GROK_PACK_ROWS];
    for (int64_t ga = g0; ga < g1; ga += tile) {
        const int64_t gb = ga + tile < g1 ? ga + tile : g1;
        for (int64_t t0 = 0; t0 < j->n_tok; t0 += GROUP) {
            const int64_t m = j->n_tok - t0 < GROUP ? j->n_tok - t0 : GROUP;
            const block_q8a *xs[GROUP];
            for (int64_t k = 0; k < m; k++) xs[k] = j->xq + (t0 + k) * j->xq_blocks;
            for (int64_t g = ga; g < gb;) {
                const int64_t ng = j->dotx16 && g + 1 < gb ? 2 : 1, w = ng * GROK_PACK_ROWS;
                if (ng == 2) j->dotx16(j->w->packed + (size_t)g * gbytes, gbytes, xs, m, n, out);
                else j->dotx8(j->w->packed + (size_t)g * gbytes, xs, m, n, out);
                for (int64_t k = 0; k < m; k++)
                    memcpy(j->y + (t0 + k) * j->ldy + g * GROK_PACK_ROWS, out + k * w, (size_t)w * sizeof(float));
                g += ng;
            }
        }
    }
}

static void matmul_task(void *arg, int ith, int nth) {
    const matmul_job *j = arg;
    const int64_t rows = j->w->rows, n = j->w->cols;
    const int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
    int64_t tile = (int64_t)(TILE_BYTES / (j->w->row_bytes ? j->w->row_bytes : 1));
    if (tile < 1) tile = 1;
    if (j->n_tok == 1) tile = r1 - r0; /* nothing to reuse: stream */
    for (int64_t ta = r0; ta < r1; ta += tile) {
        const int64_t tb = ta + tile < r1 ? ta + tile : r1;
        if (j->dotqm && j->n_tok > 1) {
            matmul_rows_multi(j, ta, tb);
            continue;
        }
        for (int64_t t = 0; t < j->n_tok; t++) {
            float *yt = j->y + t * j->ldy;
            if (j->dotq) {
                const block_q8a *xt = j->xq + t * j->xq_blocks;
                for (int64_t r = ta; r < tb; r++)
                    yt[r] = j->dotq(j->w->data + (size_t)r * j->w->row_bytes, xt, n);
            } else {
                const float *xt = j->x + t * j->ldx;
                for (int64_t r = ta; r < tb; r++)
                    yt[r] = j->dot(j->w->data + (size_t)r * j->w->row_bytes, xt, n);
            }
        }
    }
}

static void quant_task(void *arg, int ith, int nth) {
    const matmul_job *j = arg;
    for (int64_t t = ith; t < j->n_tok; t += nth) {
        grok_quantize_q8a(j->x + t * j->ldx, j->xq + t * j->xq_blocks, j->w->cols);
        if (j->dotqm && !j->dotx8 && j->n_tok > 1 && j->prep) j->prep(j->xq + t * j->xq_blocks, j->xq_blocks);
    }
}

void grok_matmul(grok_threadpool *pool, const grok_mat *w, const float *x, int64_t ldx, float *y,
                 int64_t ldy, int64_t n_tok) {
    const grok_dot_kernels *k = grok_dot_select(w->type, grok_kernels_mode());
    matmul_job j = {w, x, ldx, y, ldy, n_tok, k->dot_f32, NULL, NULL, NULL, NULL, NULL, NULL, 0};
    /* A decode step's activations fit on the stack (Grok-1's widest input,
     * n_ff = 32768, is 1024 blocks); batches get a heap buffer. */
    block_q8a stack_buf[1280];
    block_q8a *heap = NULL;
    if (k->dot_q8a && w->cols % QKA == 0) {
        j.xq_blocks = w->cols / QKA;
        size_t need = (size_t)(n_tok * j.xq_blocks);
        j.xq = need <= sizeof stack_buf / sizeof stack_buf[0] ? stack_buf
                                                               : (heap = malloc(need * sizeof(block_q8a)));
        if (j.xq) /* no memory: the f32 path still works */
            j.dotq = k->dot_q8a, j.dotqm = k->dot_q8a_multi, j.prep = k->multi_prep;
        if (j.xq && w->packed && k->dot_x8 && w->rows % GROK_PACK_ROWS == 0) j.dotx8 = k->dot_x8;
        /* 16 rows a call for batches only: q4_0 prompts 94-101 -> 114-131 tok/s,
         * while single tokens ran 10-15 % slower than 8 rows a call (24-layer
         * q4_0 model, 2 threads, this project's VM) */
        if (j.dotx8 && n_tok > 1) j.dotx16 = k->dot_x16;
    }
    const bool threaded = pool && w->rows >= 16;
    if (j.dotq) {
        /* a few tokens quantize faster than the pool wakes up for them */
        if (threaded && n_tok * w->cols > 65536)
            grok_threadpool_run(pool, quant_task, &j);
        else
            quant_task(&j, 0, 1);
    }
    void (*task)(void *, int, int) = j.dotx8 ? matmul_packed_task : matmul_task;
    if (threaded)
        grok_threadpool_run(pool, task, &j);
    else
        task(&j, 0, 1);
    free(heap);
}
