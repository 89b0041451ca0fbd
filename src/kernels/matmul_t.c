/*
 * matmul_t.c - the products a backward pass needs beside grok_matmul:
 * the product with a weight matrix's transpose (dX += dY W, from the
 * matrix in its stored type), and the product with a small f32 matrix
 * threaded over tokens rather than rows.
 *
 * grok_matmul_t never makes an f32 copy of a quantized matrix: each
 * thread owns a range of columns (whole blocks) and dequantizes a tile of
 * GROK_MATMUL_T_ROWS rows of its columns at a time with the type's own
 * to_f32, then runs every token over the tile. Each element of dX is one
 * chain of fused multiply-adds over the rows in order, starting from its
 * value in dX, in every variant (the scalar reference uses fmaf, the SIMD
 * ones vfmadd): the result is the same bits whatever the thread count,
 * the tiling, the ISA, or which other tokens share the call. A trainer
 * can then split a batch over threads or processes and get the numbers
 * of one process.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

/* Rows of W dequantized per tile, and columns a tile's tokens sweep at a
 * time (32 x 256 f32 = 32 KiB: the tile part in use stays in L1). */
#define TILE_ROWS GROK_MATMUL_T_ROWS
#define COL_CHUNK 256

static void fma_tile_ref(const float *w, int64_t ldw, int64_t kt, const float *dy, int64_t lddy, int64_t nt,
                         float *dx, int64_t lddx, int64_t nc) {
    for (int64_t t = 0; t < nt; t++)
        for (int64_t c = 0; c < nc; c++) {
            float acc = dx[t * lddx + c];
            for (int64_t k = 0; k < kt; k++) acc = fmaf(dy[t * lddy + k], w[k * ldw + c], acc);
            dx[t * lddx + c] = acc;
        }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* 4 tokens x 16 columns in 8 accumulators; fewer tokens or columns fall
 * to narrower loops doing the same per-element chain. */
__attribute__((target("avx2,fma"))) static void fma_tile_avx2(const float *w, int64_t ldw, int64_t kt,
                                                              const float *dy, int64_t lddy, int64_t nt,
                                                              float *dx, int64_t lddx, int64_t nc) {
    int64_t c = 0;
    if (nt == 4) {
        float *d0 = dx, *d1 = dx + lddx, *d2 = dx + 2 * lddx, *d3 = dx + 3 * lddx;
        const float *y0 = dy, *y1 = dy + lddy, *y2 = dy + 2 * lddy, *y3 = dy + 3 * lddy;
        for (; c + 16 <= nc; c += 16) {
            __m256 a0 = _mm256_loadu_ps(d0 + c), b0 = _mm256_loadu_ps(d0 + c + 8);
            __m256 a1 = _mm256_loadu_ps(d1 + c), b1 = _mm256_loadu_ps(d1 + c + 8);
            __m256 a2 = _mm256_loadu_ps(d2 + c), b2 = _mm256_loadu_ps(d2 + c + 8);
            __m256 a3 = _mm256_loadu_ps(d3 + c), b3 = _mm256_loadu_ps(d3 + c + 8);
            for (int64_t k = 0; k < kt; k++) {
                const __m256 wa = _mm256_loadu_ps(w + k * ldw + c), wb = _mm256_loadu_ps(w + k * ldw + c + 8);
                __m256 s = _mm256_broadcast_ss(y0 + k);
                a0 = _mm256_fmadd_ps(s, wa, a0), b0 = _mm256_fmadd_ps(s, wb, b0);
                s = _mm256_broadcast_ss(y1 + k);
                a1 = _mm256_fmadd_ps(s, wa, a1), b1 = _mm256_fmadd_ps(s, wb, b1);
                s = _mm256_broadcast_ss(y2 + k);
                a2 = _mm256_fmadd_ps(s, wa, a2), b2 = _mm256_fmadd_ps(s, wb, b2);
                s = _mm256_broadcast_ss(y3 + k);
                a3 = _mm256_fmadd_ps(s, wa, a3), b3 = _mm256_fmadd_ps(s, wb, b3);
            }
            _mm256_storeu_ps(d0 + c, a0), _mm256_storeu_ps(d0 + c + 8, b0);
            _mm256_storeu_ps(d1 + c, a1), _mm256_storeu_ps(d1 + c + 8, b1);
            _mm256_storeu_ps(d2 + c, a2), _mm256_storeu_ps(d2 + c + 8, b2);
            _mm256_storeu_ps(d3 + c, a3), _mm256_storeu_ps(d3 + c + 8, b3);
        }
    }
    for (int64_t t = 0; t < nt; t++) {
        float *d = dx + t * lddx;
        const float *y = dy + t * lddy;
        int64_t cc = c;
        for (; cc + 8 <= nc; cc += 8) {
            __m256 a = _mm256_loadu_ps(d + cc);
            for (int64_t k = 0; k < kt; k++)
                a = _mm256_fmadd_ps(_mm256_broadcast_ss(y + k), _mm256_loadu_ps(w + k * ldw + cc), a);
            _mm256_storeu_ps(d + cc, a);
        }
        for (; cc < nc; cc++) {
            float acc = d[cc];
            for (int64_t k = 0; k < kt; k++) acc = fmaf(y[k], w[k * ldw + cc], acc);
            d[cc] = acc;
        }
    }
}

/* 4 tokens x 32 columns in 8 zmm accumulators. */
__attribute__((target("avx2,fma,avx512f"))) static void fma_tile_avx512(const float *w, int64_t ldw,
                                                                        int64_t kt, const float *dy,
                                                                        int64_t lddy, int64_t nt, float *dx,
                                                                        int64_t lddx, int64_t nc) {
    int64_t c = 0;
    if (nt == 4) {
        float *d0 = dx, *d1 = dx + lddx, *d2 = dx + 2 * lddx, *d3 = dx + 3 * lddx;
        const float *y0 = dy, *y1 = dy + lddy, *y2 = dy + 2 * lddy, *y3 = dy + 3 * lddy;
        for (; c + 32 <= nc; c += 32) {
            __m512 a0 = _mm512_loadu_ps(d0 + c), b0 = _mm512_loadu_ps(d0 + c + 16);
            __m512 a1 = _mm512_loadu_ps(d1 + c), b1 = _mm512_loadu_ps(d1 + c + 16);
            __m512 a2 = _mm512_loadu_ps(d2 + c), b2 = _mm512_loadu_ps(d2 + c + 16);
            __m512 a3 = _mm512_loadu_ps(d3 + c), b3 = _mm512_loadu_ps(d3 + c + 16);
            for (int64_t k = 0; k < kt; k++) {
                const __m512 wa = _mm512_loadu_ps(w + k * ldw + c),
                             wb = _mm512_loadu_ps(w + k * ldw + c + 16);
                __m512 s = _mm512_set1_ps(y0[k]);
                a0 = _mm512_fmadd_ps(s, wa, a0), b0 = _mm512_fmadd_ps(s, wb, b0);
                s = _mm512_set1_ps(y1[k]);
                a1 = _mm512_fmadd_ps(s, wa, a1), b1 = _mm512_fmadd_ps(s, wb, b1);
                s = _mm512_set1_ps(y2[k]);
                a2 = _mm512_fmadd_ps(s, wa, a2), b2 = _mm512_fmadd_ps(s, wb, b2);
                s = _mm512_set1_ps(y3[k]);
                a3 = _mm512_fmadd_ps(s, wa, a3), b3 = _mm512_fmadd_ps(s, wb, b3);
            }
            _mm512_storeu_ps(d0 + c, a0), _mm512_storeu_ps(d0 + c + 16, b0);
            _mm512_storeu_ps(d1 + c, a1), _mm512_storeu_ps(d1 + c + 16, b1);
            _mm512_storeu_ps(d2 + c, a2), _mm512_storeu_ps(d2 + c + 16, b2);
            _mm512_storeu_ps(d3 + c, a3), _mm512_storeu_ps(d3 + c + 16, b3);
        }
    }
    for (int64_t t = 0; t < nt; t++) {
        float *d = dx + t * lddx;
        const float *y = dy + t * lddy;
        int64_t cc = c;
        for (; cc + 16 <= nc; cc += 16) {
            __m512 a = _mm512_loadu_ps(d + cc);
            for (int64_t k = 0; k < kt; k++)
                a = _mm512_fmadd_ps(_mm512_set1_ps(y[k]), _mm512_loadu_ps(w + k * ldw + cc), a);
            _mm512_storeu_ps(d + cc, a);
        }
        for (; cc < nc; cc++) {
            float acc = d[cc];
            for (int64_t k = 0; k < kt; k++) acc = fmaf(y[k], w[k * ldw + cc], acc);
            d[cc] = acc;
        }
    }
}
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

/* One token x 16 columns at a time (vfmaq_f32 is fused, as fmaf). */
static void fma_tile_neon(const float *w, int64_t ldw, int64_t kt, const float *dy, int64_t lddy, int64_t nt,
                          float *dx, int64_t lddx, int64_t nc) {
    for (int64_t t = 0; t < nt; t++) {
        float *d = dx + t * lddx;
        const float *y = dy + t * lddy;
        int64_t c = 0;
        for (; c + 16 <= nc; c += 16) {
            float32x4_t a0 = vld1q_f32(d + c), a1 = vld1q_f32(d + c + 4);
            float32x4_t a2 = vld1q_f32(d + c + 8), a3 = vld1q_f32(d + c + 12);
            for (int64_t k = 0; k < kt; k++) {
                const float *wr = w + k * ldw + c;
                const float32x4_t s = vdupq_n_f32(y[k]);
                a0 = vfmaq_f32(a0, s, vld1q_f32(wr)), a1 = vfmaq_f32(a1, s, vld1q_f32(wr + 4));
                a2 = vfmaq_f32(a2, s, vld1q_f32(wr + 8)), a3 = vfmaq_f32(a3, s, vld1q_f32(wr + 12));
            }
            vst1q_f32(d + c, a0), vst1q_f32(d + c + 4, a1), vst1q_f32(d + c + 8, a2),
                vst1q_f32(d + c + 12, a3);
        }
        for (; c < nc; c++) {
            float acc = d[c];
            for (int64_t k = 0; k < kt; k++) acc = fmaf(y[k], w[k * ldw + c], acc);
            d[c] = acc;
        }
    }
}
#endif

grok_fma_tile_fn grok_matmul_t_tile(grok_isa isa) {
    if (isa == GROK_ISA_SCALAR) return fma_tile_ref;
#if defined(__x86_64__) || defined(__i386__)
    const grok_cpu_features *f = grok_cpu();
    if (isa == GROK_ISA_AVX2 && f->avx2 && f->fma) return fma_tile_avx2;
    if ((isa == GROK_ISA_AVX512VNNI || isa == GROK_ISA_AVX512VBMI) && f->avx2 && f->fma && f->avx512f)
        return fma_tile_avx512;
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
    if (isa == GROK_ISA_NEON) return fma_tile_neon;
#endif
    return NULL;
}

/* The tile of w's level (the process's for a matrix without one). */
static grok_fma_tile_fn pick_tile(grok_kernel_mode mode, const grok_mat *w) {
    grok_fma_tile_fn f = mode == GROK_KERNELS_REFERENCE ? NULL : grok_matmul_t_tile(grok_isa_resolve(w->isa));
    return f ? f : fma_tile_ref;
}

/* ---- dX += dY W ---- */

typedef struct {
    const grok_mat *w;
    const float *dy;
    int64_t lddy;
    float *dx;
    int64_t lddx;
    int64_t n_tok;
    int64_t unit; /* columns per unit of the column split (whole blocks) */
    int64_t col_parts, tok_parts;
    grok_fma_tile_fn tile;
    const grok_type_kernels *k; /* NULL for f32 (read in place) */
    float *scratch;             /* [n_threads][TILE_ROWS][cols of a part] */
    int64_t scratch_cols;
} mt_job;

static void mt_task(void *arg, int ith, int nth) {
    const mt_job *j = arg;
    (void)nth;
    if (ith >= j->col_parts * j->tok_parts) return;
    const int64_t ci = ith % j->col_parts, ti = ith / j->col_parts;
    const int64_t units = (j->w->cols + j->unit - 1) / j->unit;
    int64_t c0 = units * ci / j->col_parts * j->unit, c1 = units * (ci + 1) / j->col_parts * j->unit;
    if (c1 > j->w->cols) c1 = j->w->cols;
    const int64_t t0 = j->n_tok * ti / j->tok_parts, t1 = j->n_tok * (ti + 1) / j->tok_parts;
    if (c0 >= c1 || t0 >= t1) return;
    const int64_t nc = c1 - c0, rows = j->w->rows;
    float *buf = j->scratch ? j->scratch + (size_t)ith * TILE_ROWS * (size_t)j->scratch_cols : NULL;
    const size_t col_off = (size_t)grok_type_row_size(j->w->type, c0);
    for (int64_t k0 = 0; k0 < rows; k0 += TILE_ROWS) {
        const int64_t kt = rows - k0 < TILE_ROWS ? rows - k0 : TILE_ROWS;
        const float *wt;
        int64_t ldw;
        if (j->k) {
            for (int64_t k = 0; k < kt; k++)
                j->k->to_f32(j->w->data + (size_t)(k0 + k) * j->w->row_bytes + col_off, buf + k * nc, nc);
            wt = buf, ldw = nc;
        } else {
            wt = (const float *)(j->w->data + (size_t)k0 * j->w->row_bytes) + c0;
            ldw = (int64_t)(j->w->row_bytes / sizeof(float));
        }
        for (int64_t cc = 0; cc < nc; cc += COL_CHUNK) {
            const int64_t ncc = nc - cc < COL_CHUNK ? nc - cc : COL_CHUNK;
            for (int64_t t = t0; t < t1; t += 4) {
                const int64_t nt = t1 - t < 4 ? t1 - t : 4;
                j->tile(wt + cc, ldw, kt, j->dy + t * j->lddy + k0, j->lddy, nt,
                        j->dx + t * j->lddx + c0 + cc, j->lddx, ncc);
            }
        }
    }
}

void grok_matmul_t_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_mat *w, const float *dy,
                      int64_t lddy, float *dx, int64_t lddx, int64_t n_tok) {
    if (n_tok <= 0 || w->rows <= 0 || w->cols <= 0) return;
    if (mode == GROK_KERNELS_DEFAULT) mode = grok_kernels_mode();
    const grok_type_traits *tr = grok_type_get_traits(w->type);
    mt_job j = {w, dy, lddy, dx, lddx, n_tok, 0, 1, 1, pick_tile(mode, w), NULL, NULL, 0};
    j.k = w->type == GROK_TYPE_F32 ? NULL : grok_kernels_get(w->type);
    j.unit = tr->block_size;
    while (j.unit < 64) j.unit *= 2; /* f32/f16 rows: split in chunks a vector loop likes */
    const int nth = pool ? grok_threadpool_size(pool) : 1;
    const int64_t units = (w->cols + j.unit - 1) / j.unit;
    /* Columns first (each thread dequantizes only its own); the threads
     * left over split the tokens, so a narrow matrix still runs on all. */
    j.col_parts = units < nth ? units : nth;
    j.tok_parts = nth / j.col_parts;
    if (j.tok_parts > n_tok) j.tok_parts = n_tok;
    /* Small products are not worth a pool round trip. */
    const bool threaded = pool && nth > 1 && (double)n_tok * (double)w->rows * (double)w->cols > 65536.0;
    if (!threaded) j.col_parts = 1, j.tok_parts = 1;
    const int used = (int)(j.col_parts * j.tok_parts);
    if (j.k) {
        j.scratch_cols = (units + j.col_parts - 1) / j.col_parts * j.unit;
        j.scratch = malloc(sizeof(float) * (size_t)used * TILE_ROWS * (size_t)j.scratch_cols);
        if (!j.scratch) { /* no memory for tiles: one row at a time on this thread */
            float *row = malloc(sizeof(float) * (size_t)w->cols);
            for (int64_t k = 0; row && k < w->rows; k++) {
                j.k->to_f32(w->data + (size_t)k * w->row_bytes, row, w->cols);
                for (int64_t t = 0; t < n_tok; t += 4)
                    j.tile(row, w->cols, 1, dy + t * lddy + k, lddy, n_tok - t < 4 ? n_tok - t : 4,
                           dx + t * lddx, lddx, w->cols);
            }
            free(row);
            return;
        }
    }
    if (threaded)
        grok_threadpool_run(pool, mt_task, &j);
    else
        mt_task(&j, 0, 1);
    free(j.scratch);
}

/* ---- y = W x by the same chains ---- */

/* Columns decoded per step of a tile (whole blocks of every type). */
#define K_CHUNK 256

typedef struct {
    const grok_mat *w;
    const float *x;
    int64_t ldx;
    float *y;
    int64_t ldy;
    int64_t n_tok;
    int64_t kc; /* columns per chunk */
    int64_t row_parts, tok_parts;
    grok_fma_tile_fn tile;
    const grok_type_kernels *k;
    float *scratch; /* per thread: [TILE_ROWS][kc] decoded, then [kc][TILE_ROWS] transposed */
} mf_job;

static void mf_task(void *arg, int ith, int nth) {
    const mf_job *j = arg;
    (void)nth;
    if (ith >= j->row_parts * j->tok_parts) return;
    const int64_t ri = ith % j->row_parts, ti = ith / j->row_parts;
    const int64_t tiles = (j->w->rows + TILE_ROWS - 1) / TILE_ROWS;
    const int64_t g0 = tiles * ri / j->row_parts, g1 = tiles * (ri + 1) / j->row_parts;
    const int64_t t0 = j->n_tok * ti / j->tok_parts, t1 = j->n_tok * (ti + 1) / j->tok_parts;
    float *dec = j->scratch + (size_t)ith * 2 * TILE_ROWS * (size_t)j->kc, *wt = dec + TILE_ROWS * j->kc;
    const int64_t cols = j->w->cols;
    for (int64_t g = g0; g < g1; g++) {
        const int64_t r0 = g * TILE_ROWS, nr = j->w->rows - r0 < TILE_ROWS ? j->w->rows - r0 : TILE_ROWS;
        for (int64_t t = t0; t < t1; t++) memset(j->y + t * j->ldy + r0, 0, sizeof(float) * (size_t)nr);
        for (int64_t k0 = 0; k0 < cols; k0 += j->kc) {
            const int64_t kt = cols - k0 < j->kc ? cols - k0 : j->kc;
            const size_t off = (size_t)grok_type_row_size(j->w->type, k0);
            for (int64_t r = 0; r < nr; r++) {
                const uint8_t *src = j->w->data + (size_t)(r0 + r) * j->w->row_bytes + off;
                if (j->k)
                    j->k->to_f32(src, dec + r * kt, kt);
                else
                    memcpy(dec + r * kt, src, sizeof(float) * (size_t)kt);
            }
            for (int64_t r = 0; r < nr; r++)
                for (int64_t c = 0; c < kt; c++) wt[c * nr + r] = dec[r * kt + c];
            for (int64_t t = t0; t < t1; t += 4)
                j->tile(wt, nr, kt, j->x + t * j->ldx + k0, j->ldx, t1 - t < 4 ? t1 - t : 4,
                        j->y + t * j->ldy + r0, j->ldy, nr);
        }
    }
}

void grok_matmul_tiles_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_mat *w, const float *x,
                          int64_t ldx, float *y, int64_t ldy, int64_t n_tok) {
    if (n_tok <= 0 || w->rows <= 0) return;
    if (mode == GROK_KERNELS_DEFAULT) mode = grok_kernels_mode();
    mf_job j = {w, x, ldx, y, ldy, n_tok, K_CHUNK, 1, 1, pick_tile(mode, w), NULL, NULL};
    j.k = w->type == GROK_TYPE_F32 ? NULL : grok_kernels_get(w->type);
    const int64_t blk = grok_type_get_traits(w->type)->block_size;
    if (j.kc % blk) j.kc = blk; /* a chunk is whole blocks */
    const int nth = pool ? grok_threadpool_size(pool) : 1;
    const int64_t tiles = (w->rows + TILE_ROWS - 1) / TILE_ROWS;
    j.row_parts = tiles < nth ? tiles : nth;
    j.tok_parts = nth / j.row_parts;
    if (j.tok_parts > n_tok) j.tok_parts = n_tok;
    const bool threaded = pool && nth > 1 && (double)n_tok * (double)w->rows * (double)w->cols > 65536.0;
    if (!threaded) j.row_parts = 1, j.tok_parts = 1;
    const int used = (int)(j.row_parts * j.tok_parts);
    j.scratch = malloc(sizeof(float) * (size_t)used * 2 * TILE_ROWS * (size_t)j.kc);
    if (!j.scratch) { /* no memory for tiles: the mode's dots, row by row */
        grok_matmul_tok_in(pool, mode, w, x, ldx, y, ldy, n_tok);
        return;
    }
    if (threaded)
        grok_threadpool_run(pool, mf_task, &j);
    else
        mf_task(&j, 0, 1);
    free(j.scratch);
}

/* ---- y = M x, threads over tokens ---- */

typedef struct {
    const grok_mat *m;
    const float *x;
    int64_t ldx;
    float *y;
    int64_t ldy;
    int64_t n_tok;
    grok_dot_f32_fn dot;
} mk_job;

static void mk_task(void *arg, int ith, int nth) {
    const mk_job *j = arg;
    for (int64_t t = j->n_tok * ith / nth; t < j->n_tok * (ith + 1) / nth; t++)
        for (int64_t r = 0; r < j->m->rows; r++)
            j->y[t * j->ldy + r] =
                j->dot(j->m->data + (size_t)r * j->m->row_bytes, j->x + t * j->ldx, j->m->cols);
}

void grok_matmul_tok_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_mat *m, const float *x,
                        int64_t ldx, float *y, int64_t ldy, int64_t n_tok) {
    if (n_tok <= 0 || m->rows <= 0) return;
    if (mode == GROK_KERNELS_DEFAULT) mode = grok_kernels_mode();
    mk_job j = {m, x, ldx, y, ldy, n_tok, grok_dot_select_isa(m->type, mode, m->isa)->dot_f32};
    const bool threaded = pool && grok_threadpool_size(pool) > 1 && n_tok > 1 &&
                          (double)n_tok * (double)m->rows * (double)m->cols > 65536.0;
    if (threaded)
        grok_threadpool_run(pool, mk_task, &j);
    else
        mk_task(&j, 0, 1);
}

void grok_matmul_t(grok_threadpool *pool, const grok_mat *w, const float *dy, int64_t lddy, float *dx,
                   int64_t lddx, int64_t n_tok) {
    grok_matmul_t_in(pool, grok_kernels_mode(), w, dy, lddy, dx, lddx, n_tok);
}

void grok_matmul_tiles(grok_threadpool *pool, const grok_mat *w, const float *x, int64_t ldx, float *y,
                       int64_t ldy, int64_t n_tok) {
    grok_matmul_tiles_in(pool, grok_kernels_mode(), w, x, ldx, y, ldy, n_tok);
}

void grok_matmul_tok(grok_threadpool *pool, const grok_mat *m, const float *x, int64_t ldx, float *y,
                     int64_t ldy, int64_t n_tok) {
    grok_matmul_tok_in(pool, grok_kernels_mode(), m, x, ldx, y, ldy, n_tok);
}
