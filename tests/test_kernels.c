/*
 * test_kernels.c - the reference kernels: f16/bf16 conversions against the
 * compiler's own _Float16 and exact nearest-value checks, q8_0 encoding
 * against ggml's definition, k-quant blocks built by hand from the
 * documented layouts, the k-quant encoders' rounding and error, every
 * type's dot product against dequantize + double-precision sums, and the threaded matmul against plain loops with
 * odd sizes and several thread counts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/kernels.h"
#include "util/rng.h"

#if defined(__FLT16_MAX__) /* the compiler's _Float16 is the second opinion */
static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
#endif

static void test_fp16(void) {
    /* every half round-trips */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = grok_fp16_to_fp32((uint16_t)h);
        if (isnan(f)) continue;
        CHECK(grok_fp32_to_fp16(f) == h, "half 0x%04x -> %g -> 0x%04x", h, f, grok_fp32_to_fp16(f));
#if defined(__FLT16_MAX__)
        _Float16 x;
        uint16_t hh = (uint16_t)h;
        memcpy(&x, &hh, 2);
        CHECK(bits((float)x) == bits(f), "half 0x%04x decodes to %g, compiler says %g", h, f, (float)x);
#endif
    }
#if defined(__FLT16_MAX__)
    /* rounding of random floats over the whole range, subnormals and ties included */
    grok_rng r = {42};
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)grok_rng_next(&r);
        if (i % 4 == 0) u = (u & 0x80000000u) | (0x33000000u + (u % 0x14800000u)); /* half range */
        if (i % 8 == 1) u &= 0xffffe000u | 0x1000u;                                /* exact ties */
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        _Float16 x = (_Float16)f;
        uint16_t want;
        memcpy(&want, &x, 2);
        CHECK(grok_fp32_to_fp16(f) == want, "f32 %a -> half 0x%04x, compiler 0x%04x", f, grok_fp32_to_fp16(f),
              want);
    }
#else
    printf("note: compiler has no _Float16; checked f16 round trips only\n");
#endif
}

static void test_bf16(void) {
    grok_rng r = {7};
    for (int i = 0; i < 1000000; i++) {
        uint32_t u = (uint32_t)grok_rng_next(&r);
        if (i % 8 == 0) u = (u & 0xffff0000u) | 0x8000u; /* ties */
        float f;
        memcpy(&f, &u, 4);
        uint16_t b = grok_fp32_to_bf16(f);
        if (isnan(f)) {
            CHECK(isnan(grok_bf16_to_fp32(b)), "nan stays nan");
            continue;
        }
        /* the result is the nearest bf16, ties to even */
        double x = f, got = grok_bf16_to_fp32(b);
        uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
        /* IEEE rounding treats infinity as the next value after the largest
         * finite one, at magnitude 2^128 */
        double vh = isinf(grok_bf16_to_fp32(hi)) ? copysign(0x1p128, x) : grok_bf16_to_fp32(hi);
        double dl = fabs(x - grok_bf16_to_fp32(lo)), dh = fabs(x - vh);
        uint16_t want = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
        CHECK(b == want, "f32 %a -> bf16 0x%04x (%g), want 0x%04x", f, b, got, want);
    }
}

static void test_q8_0(void) {
    float x[96];
    grok_rng r = {3};
    for (int i = 0; i < 96; i++) x[i] = grok_rng_normal(&r) * (i < 32 ? 1e-3f : 5.0f);
    x[40] = 0; /* a block of zeros must give d = 0 */
    for (int i = 64; i < 96; i++) x[i] = 0;
    block_q8_0 b[3];
    grok_kernels_get(GROK_TYPE_Q8_0)->from_f32(x, b, 96);
    for (int blk = 0; blk < 3; blk++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[blk * 32 + j]));
        float d = amax / 127.0f, id = d ? 1 / d : 0;
        CHECK(b[blk].d == grok_fp32_to_fp16(d), "block %d scale", blk);
        for (int j = 0; j < 32; j++)
            CHECK(b[blk].qs[j] == (int8_t)roundf(x[blk * 32 + j] * id), "block %d q[%d]", blk, j);
    }
    float y[96];
    grok_kernels_get(GROK_TYPE_Q8_0)->to_f32(b, y, 96);
    for (int i = 0; i < 96; i++)
        CHECK(fabsf(y[i] - x[i]) <= grok_fp16_to_fp32(b[i / 32].d) * 0.5f + 1e-7f, "q8_0 value %d", i);
}

/* k-quant blocks built element by element from the layout as documented
 * (kernels.h, ggml's format), decoded by the kernels: every value must be
 * the documented formula's, bit for bit. Scale codes cover the packed
 * high bits (sub-blocks 4..7) and the extremes 0 and 63 / -128 and 127. */
static void test_kquant_layouts(void) {
    const uint8_t sc[8] = {1, 2, 3, 63, 17, 33, 49, 0}, m[8] = {0, 5, 10, 15, 20, 40, 60, 63};
    for (int five = 0; five < 2; five++) {
        const grok_type type = five ? GROK_TYPE_Q5_K : GROK_TYPE_Q4_K;
        const int nmax = five ? 31 : 15;
        uint8_t b[176] = {0}; /* d, dmin, scales[12], (qh[32],) qs[128] */
        uint8_t *scales = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
        b[1] = 0x3c, b[3] = 0x38; /* d = 1.0, dmin = 0.5 */
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                scales[j] |= sc[j], scales[j + 4] |= m[j];
            } else {
                scales[j + 4] = (uint8_t)((sc[j] & 15) | (m[j] & 15) << 4);
                scales[j - 4] |= (uint8_t)(sc[j] >> 4 << 6);
                scales[j] |= (uint8_t)(m[j] >> 4 << 6);
            }
        }
        for (int e = 0; e < 256; e++) {
            const int q = (e * 7 + e / 32) % (nmax + 1), r = e % 64;
            qs[32 * (e / 64) + r % 32] |= (uint8_t)((q & 15) << (r < 32 ? 0 : 4));
            if (five) qh[e % 32] |= (uint8_t)((q >> 4) << (e / 32));
        }
        float y[256];
        grok_kernels_get(type)->to_f32(b, y, 256);
        for (int e = 0; e < 256; e++) {
            const int q = (e * 7 + e / 32) % (nmax + 1);
            const float want = (1.0f * (float)sc[e / 32]) * (float)q - 0.5f * (float)m[e / 32];
            CHECK(y[e] == want, "%s value %d: %g, want %g", grok_type_get_traits(type)->name, e, y[e], want);
        }
    }
    uint8_t b[210] = {0}; /* ql[128], qh[64], scales[16], d */
    const int8_t sc6[16] = {-128, -7, -1, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 100, 127};
    memcpy(b + 192, sc6, 16);
    b[209] = 0x34; /* d = 0.25 */
    for (int e = 0; e < 256; e++) {
        const int q = (e * 11 + 3) % 64, h = e / 128, g = (e % 128) / 32, l = e % 32;
        b[64 * h + l + 32 * (g & 1)] |= (uint8_t)((q & 15) << (4 * (g >> 1)));
        b[128 + 32 * h + l] |= (uint8_t)((q >> 4) << (2 * g));
    }
    float y[256];
    grok_kernels_get(GROK_TYPE_Q6_K)->to_f32(b, y, 256);
    for (int e = 0; e < 256; e++) {
        const float want = (0.25f * (float)sc6[e / 16]) * (float)((e * 11 + 3) % 64 - 32);
        CHECK(y[e] == want, "q6_K value %d: %g, want %g", e, y[e], want);
    }
}

/* With an importance matrix the k-quant encoders spend their precision on
 * the columns whose inputs are large: on Gaussian rows with column
 * importances spread over three orders of magnitude, the error weighted by
 * them (what a product's output error is made of) falls clearly below
 * that of the unweighted encoding, while a NULL matrix changes nothing. */
static void test_kquant_imatrix(void) {
    const grok_type types[] = {GROK_TYPE_Q4_K, GROK_TYPE_Q5_K, GROK_TYPE_Q6_K};
    const int64_t n = 256 * 16;
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4), *imx = malloc((size_t)n * 4);
    uint8_t *b = malloc((size_t)n), *b2 = malloc((size_t)n);
    grok_rng r = {23};
    for (int64_t i = 0; i < n; i++) x[i] = grok_rng_normal(&r);
    for (int64_t i = 0; i < n; i++) imx[i] = powf(10.0f, 3.0f * grok_rng_uniform(&r));
    for (size_t ti = 0; ti < 3; ti++) {
        const grok_type type = types[ti];
        const char *tn = grok_type_get_traits(type)->name;
        const grok_type_kernels *k = grok_kernels_get(type);
        CHECK(grok_type_takes_imatrix(type), "%s takes an imatrix", tn);
        const size_t bytes = (size_t)grok_type_row_size(type, n);
        double e_plain = 0, e_w = 0;
        k->from_f32(x, b, n);
        grok_from_f32_weighted(type, x, b2, n, NULL);
        CHECK(memcmp(b, b2, bytes) == 0, "%s: a NULL imatrix encodes as from_f32", tn);
        k->to_f32(b, y, n);
        for (int64_t i = 0; i < n; i++) e_plain += imx[i] * (double)(y[i] - x[i]) * (y[i] - x[i]);
        grok_from_f32_weighted(type, x, b2, n, imx);
        k->to_f32(b2, y, n);
        for (int64_t i = 0; i < n; i++) e_w += imx[i] * (double)(y[i] - x[i]) * (y[i] - x[i]);
        CHECK(e_w < 0.9 * e_plain, "%s: importance-weighted error %.4g, unweighted %.4g", tn, e_w, e_plain);
    }
    CHECK(!grok_type_takes_imatrix(GROK_TYPE_Q8_0), "q8_0 takes none");
    free(x), free(y), free(imx), free(b), free(b2);
}

/* The k-quant encoders on awkward rows (a zero super-block, a constant
 * one, tiny and offset sub-blocks, a lone spike): each value is decoded to
 * the nearest point of its sub-block's decoded grid (the final rounding is
 * against what the decoder computes), the zero block stays exactly zero,
 * and the relative RMS error on Gaussian data stays at what these bit
 * widths give (ggml's own quantizer: 0.067 / 0.034 / 0.017). */
static void test_kquant_encoders(void) {
    const grok_type types[] = {GROK_TYPE_Q4_K, GROK_TYPE_Q5_K, GROK_TYPE_Q6_K};
    const double max_rel_rmse[] = {0.072, 0.037, 0.019};
    const int64_t n = 256 * 12;
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
    uint8_t *b = malloc((size_t)n);
    grok_rng r = {17};
    for (size_t ti = 0; ti < 3; ti++) {
        const grok_type type = types[ti];
        const char *tn = grok_type_get_traits(type)->name;
        const grok_type_kernels *k = grok_kernels_get(type);
        for (int64_t i = 0; i < n; i++) x[i] = grok_rng_normal(&r);
        /* gaussian part: super-blocks 0..7 */
        k->from_f32(x, b, 256 * 8);
        k->to_f32(b, y, 256 * 8);
        double err = 0, ss = 0;
        for (int64_t i = 0; i < 256 * 8; i++)
            err += (double)(x[i] - y[i]) * (x[i] - y[i]), ss += (double)x[i] * x[i];
        CHECK(sqrt(err / ss) <= max_rel_rmse[ti], "%s relative RMS error %.4f > %.4f", tn, sqrt(err / ss),
              max_rel_rmse[ti]);
        /* awkward super-blocks 8..11 */
        for (int64_t i = 8 * 256; i < 9 * 256; i++) x[i] = 0;
        for (int64_t i = 9 * 256; i < 10 * 256; i++) x[i] = -3.5f;
        for (int64_t i = 10 * 256; i < 11 * 256; i++)
            x[i] = x[i] * ((i / 32) % 2 ? 1e-4f : 1.0f) + ((i / 16) % 3 == 1 ? 4.0f : 0.0f);
        x[11 * 256 + 77] = 1000.0f;
        k->from_f32(x, b, n);
        k->to_f32(b, y, n);
        size_t bs = (size_t)grok_type_get_traits(type)->type_size;
        for (int64_t i = 8 * 256; i < 9 * 256; i++) CHECK(y[i] == 0.0f, "%s zero block value %g", tn, y[i]);
        for (int64_t sb = 0; sb < n / 256; sb++) {
            const uint8_t *p = b + (size_t)sb * bs;
            for (int64_t e = 0; e < 256; e++) {
                const int64_t i = sb * 256 + e;
                CHECK(isfinite(y[i]), "%s value %lld not finite", tn, (long long)i);
                /* the sub-block's grid from the block's bytes */
                float best = INFINITY;
                if (type == GROK_TYPE_Q6_K) {
                    uint16_t dh;
                    memcpy(&dh, p + 208, 2);
                    const float ds = grok_fp16_to_fp32(dh) * (float)(int8_t)p[192 + e / 16];
                    for (int q = -32; q < 32; q++) best = fminf(best, fabsf(ds * (float)q - x[i]));
                } else {
                    uint16_t dh, mh;
                    uint8_t sc, m;
                    memcpy(&dh, p, 2), memcpy(&mh, p + 2, 2);
                    grok_kq_scale_min(p + 4, (int)(e / 32), &sc, &m);
                    const float ds = grok_fp16_to_fp32(dh) * (float)sc, dm = grok_fp16_to_fp32(mh) * (float)m;
                    for (int q = 0; q <= (type == GROK_TYPE_Q4_K ? 15 : 31); q++)
                        best = fminf(best, fabsf(ds * (float)q - dm - x[i]));
                }
                CHECK(fabsf(y[i] - x[i]) <= best * 1.0001f + 1e-6f * fabsf(x[i]),
                      "%s value %lld: %g decodes to %g, the grid has one %g away", tn, (long long)i, x[i],
                      y[i], best);
            }
        }
        CHECK(fabsf(y[11 * 256 + 77] - 1000.0f) < 20.0f, "%s spike decodes to %g", tn, y[11 * 256 + 77]);
    }
    free(x), free(y), free(b);
}

static void test_dot_and_matmul(void) {
    const grok_type types[] = {GROK_TYPE_F32,  GROK_TYPE_F16,  GROK_TYPE_BF16, GROK_TYPE_Q8_0,
                               GROK_TYPE_Q4_K, GROK_TYPE_Q5_K, GROK_TYPE_Q6_K};
    const int64_t sizes[][3] = {{1, 32, 1}, {7, 96, 3}, {33, 160, 5}, {65, 64, 1}, {17, 320, 9}};
    grok_threadpool *pools[3] = {NULL, grok_threadpool_create(2), grok_threadpool_create(3)};
    grok_rng r = {11};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const grok_type_kernels *k = grok_kernels_get(types[ti]);
        const int64_t bs = grok_type_get_traits(types[ti])->block_size;
        for (size_t si = 0; si < 5; si++) {
            /* the k-quants' 256-blocks: 256, 256, 256, 256, 512 */
            int64_t rows = sizes[si][0], cols = (sizes[si][1] + bs - 1) / bs * bs, nt = sizes[si][2];
            size_t rb = (size_t)grok_type_row_size(types[ti], cols);
            uint8_t *w = malloc(rb * (size_t)rows);
            float *wf = malloc((size_t)(rows * cols) * 4), *row = malloc((size_t)cols * 4);
            float *x = malloc((size_t)(nt * cols) * 4), *y = malloc((size_t)(nt * rows) * 4);
            for (int64_t i = 0; i < rows; i++) {
                for (int64_t j = 0; j < cols; j++) row[j] = grok_rng_normal(&r);
                k->from_f32(row, w + (size_t)i * rb, cols);
                k->to_f32(w + (size_t)i * rb, wf + i * cols, cols);
            }
            for (int64_t i = 0; i < nt * cols; i++) x[i] = grok_rng_normal(&r);
            grok_mat m = {w, types[ti], rows, cols, rb, NULL, {0}, GROK_ISA_DEFAULT};
            for (int p = 0; p < 3; p++) {
                memset(y, 0, (size_t)(nt * rows) * 4);
                grok_matmul(pools[p], &m, x, cols, y, rows, nt);
                for (int64_t t = 0; t < nt; t++)
                    for (int64_t i = 0; i < rows; i++) {
                        double ref = 0, mag = 0;
                        for (int64_t j = 0; j < cols; j++) {
                            ref += (double)wf[i * cols + j] * x[t * cols + j];
                            mag += fabs((double)wf[i * cols + j] * x[t * cols + j]);
                        }
                        CHECK(fabs(y[t * rows + i] - ref) <= 1e-5 * mag + 1e-6,
                              "type %d %lldx%lld pool %d: y[%lld][%lld] = %g, want %g", types[ti],
                              (long long)rows, (long long)cols, p, (long long)t, (long long)i,
                              y[t * rows + i], ref);
                    }
            }
            free(w), free(wf), free(row), free(x), free(y);
        }
    }
    grok_threadpool_free(pools[1]);
    grok_threadpool_free(pools[2]);
}

typedef struct {
    int hits[8];
    long sum;
} pool_job;
static void pool_task(void *arg, int ith, int nth) {
    pool_job *j = arg;
    j->hits[ith] += 1;
    __atomic_add_fetch(&j->sum, (long)nth, __ATOMIC_RELAXED);
}

static void test_threadpool(void) {
    for (int n = 1; n <= 4; n++) {
        grok_threadpool *p = grok_threadpool_create(n);
        CHECK(grok_threadpool_size(p) == n, "pool size %d", n);
        pool_job j = {{0}, 0};
        for (int it = 0; it < 2000; it++) grok_threadpool_run(p, pool_task, &j);
        for (int i = 0; i < n; i++) CHECK(j.hits[i] == 2000, "thread %d of %d ran %d jobs", i, n, j.hits[i]);
        CHECK(j.sum == 2000L * n * n, "pool %d: sum %ld", n, j.sum);
        grok_threadpool_free(p);
    }
}

int main(void) {
    test_fp16();
    test_bf16();
    test_q8_0();
    test_kquant_layouts();
    test_kquant_encoders();
    test_kquant_imatrix();
    /* f32 activations: the product must be the exact one up to summation
     * order, for the reference kernels and for this CPU's SIMD ones. (The
     * 8-bit-activation path is tested in test_kernels_simd.c.) */
    grok_kernels_set_mode(GROK_KERNELS_REFERENCE);
    test_dot_and_matmul();
    grok_kernels_set_mode(GROK_KERNELS_EXACT);
    test_dot_and_matmul();
    test_threadpool();
    return check_summary("test_kernels");
}
