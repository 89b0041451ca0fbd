/*
 * test_kernels_simd.c - every SIMD dot product this CPU can run (AVX2,
 * AVX-512 VNNI; NEON on aarch64) against its scalar reference on random
 * data, for every computable type and odd sizes; the 8-bit activation
 * quantizer against its error bound; q4_0 encoding against blocks worked
 * out by hand from ggml's definition; and the threaded, tiled matmul in
 * each kernel mode against per-row reference dots, with row counts that
 * do not divide by the thread count and batches large enough to leave
 * the stack buffer; the multi-token dots (1..9 tokens) against the
 * reference and, bit for bit, against their own ISA's single-token dot;
 * batched matmuls against the same tokens one at a time; the packed
 * (row-interleaved) dots and matmuls the same ways.
 *
 * Tolerances. f32 activations: the SIMD sum differs from the reference
 * only in summation order, so |a - b| <= 1e-5 * sum|w_i x_i| (+1e-6).
 * 8-bit activations: the integer block sums are exact in both, only the
 * per-block float scaling and the accumulation order differ, so the same
 * bound holds against the reference q8a dot. Against the exact f32
 * product, quantizing x costs at most d_b/2 per element (d_b = the
 * block's max|x|/127), so |q8a dot - f32 dot| <= sum_b d_b/2 sum_j |w_j|
 * (+ the 1e-5 rounding term).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iq_blocks.h"
#include "kernels/kernels.h"
#include "qtypes_blocks.h"
#include "util/rng.h"

static int failures, checks;
#define CHECK(cond, ...)                                             \
    do {                                                             \
        checks++;                                                    \
        if (!(cond)) {                                               \
            failures++;                                              \
            if (failures < 20) {                                     \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);                        \
                fputc('\n', stderr);                                 \
            }                                                        \
        }                                                            \
    } while (0)

/* The types of src/kernels/qtypes.h (decoders only: their rows are random blocks) */
#define QTYPES                                                                                        \
    GROK_TYPE_Q4_1, GROK_TYPE_Q5_0, GROK_TYPE_Q5_1, GROK_TYPE_Q2_K, GROK_TYPE_Q3_K, GROK_TYPE_IQ4_NL, \
        GROK_TYPE_IQ4_XS, GROK_TYPE_TQ1_0, GROK_TYPE_TQ2_0, GROK_TYPE_MXFP4, GROK_TYPE_NVFP4,         \
        GROK_TYPE_Q1_0, GROK_TYPE_Q2_0
/* The i-quants of src/kernels/iquants.h (no encoder either: random blocks, iq_blocks.h) */
#define IQ_TYPES_LIST                                                                         \
    GROK_TYPE_IQ2_XXS, GROK_TYPE_IQ2_XS, GROK_TYPE_IQ2_S, GROK_TYPE_IQ3_XXS, GROK_TYPE_IQ3_S, \
        GROK_TYPE_IQ1_S, GROK_TYPE_IQ1_M
static const grok_type TYPES[] = {GROK_TYPE_F32,  GROK_TYPE_F16,  GROK_TYPE_BF16, GROK_TYPE_Q8_0,
                                  GROK_TYPE_Q4_0, GROK_TYPE_Q4_K, GROK_TYPE_Q5_K, GROK_TYPE_Q6_K,
                                  QTYPES,         IQ_TYPES_LIST};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

typedef struct {
    const char *name;
    void (*get)(uint32_t, grok_dot_kernels *);
    bool available;
} variant;

/* Random row of the type (scaled so some blocks are tiny, some large;
 * some offset, so the k-quants' mins are not all zero). */
static void random_row(grok_rng *r, grok_type type, int64_t n, uint8_t *w, float *wf) {
    if (grok_iq_type(type)) { /* no encoder: random blocks reaching every code */
        iq_test_row(r, type, n, w);
        grok_kernels_get(type)->to_f32(w, wf, n);
        return;
    }
    if (!grok_kernels_get(type)->from_f32) { /* random blocks, every code */
        qt_random_blocks(type, n / grok_type_get_traits(type)->block_size, grok_rng_next(r), true, w);
        grok_kernels_get(type)->to_f32(w, wf, n);
        return;
    }
    float *row = malloc((size_t)n * 4);
    for (int64_t j = 0; j < n; j++)
        row[j] = grok_rng_normal(r) * ((j / 32) % 3 == 2 ? 0.01f : 1.0f) + ((j / 32) % 5 == 1 ? 0.8f : 0.0f);
    grok_kernels_get(type)->from_f32(row, w, n);
    grok_kernels_get(type)->to_f32(w, wf, n);
    free(row);
}

static void test_dots(const variant *v) {
    grok_rng r = {77};
    /* 256 / 768 / 1280 / 2304: 1, 3, 5, 9 k-quant super-blocks */
    const int64_t sizes[] = {32, 64, 96, 160, 224, 256, 768, 1280, 2080, 2304, 4096};
    const int64_t odd[] = {1, 7, 8, 33, 100}; /* tails, for the element types */
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        grok_type type = TYPES[ti];
        grok_dot_kernels simd = {0};
        v->get(type, &simd);
        const grok_dot_kernels *ref = grok_dot_reference(type);
        int64_t bs = grok_type_get_traits(type)->block_size;
        for (int pass = 0; pass < 2; pass++) {
            const int64_t *sz = pass ? odd : sizes;
            size_t ns = pass ? sizeof odd / sizeof odd[0] : sizeof sizes / sizeof sizes[0];
            for (size_t si = 0; si < ns; si++) {
                int64_t n = sz[si];
                if (n % bs) continue;
                uint8_t *w = malloc((size_t)grok_type_row_size(type, n) + 4);
                float *wf = malloc((size_t)n * 4), *x = malloc((size_t)n * 4 + 4);
                /* rows off the vector alignment, as tensors in a file may be
                 * (f32 rows keep 4-byte alignment, which GGUF guarantees) */
                uint8_t *wu = w + (type == GROK_TYPE_F32 ? 4 : 1);
                random_row(&r, type, n, wu, wf);
                for (int64_t j = 0; j < n; j++) x[j] = grok_rng_normal(&r);
                double mag = 0, exact = 0;
                for (int64_t j = 0; j < n; j++)
                    mag += fabs((double)wf[j] * x[j]), exact += (double)wf[j] * x[j];
                if (simd.dot_f32) {
                    float a = simd.dot_f32(wu, x, n), b = ref->dot_f32(wu, x, n);
                    CHECK(fabs(a - b) <= 1e-5 * mag + 1e-6, "%s %s dot_f32 n=%lld: %g vs reference %g",
                          v->name, grok_type_get_traits(type)->name, (long long)n, a, b);
                }
                if (ref->dot_q8a && n % QKA == 0) {
                    block_q8a *xq = malloc((size_t)(n / QKA) * sizeof *xq);
                    grok_quantize_q8a(x, xq, n);
                    double qmag = 0, bound = 0;
                    for (int64_t b = 0; b < n / QKA; b++)
                        for (int j = 0; j < QKA; j++) {
                            qmag += fabs((double)wf[b * QKA + j] * xq[b].d * xq[b].qs[j]);
                            bound += fabs((double)wf[b * QKA + j]) * xq[b].d * 0.5;
                        }
                    float rq = ref->dot_q8a(wu, xq, n);
                    CHECK(fabs(rq - exact) <= bound + 1e-5 * mag + 1e-6,
                          "%s reference dot_q8a n=%lld: %g vs exact %g, bound %g",
                          grok_type_get_traits(type)->name, (long long)n, rq, exact, bound);
                    if (simd.dot_q8a) {
                        float a = simd.dot_q8a(wu, xq, n);
                        CHECK(fabs(a - rq) <= 1e-5 * qmag + 1e-6, "%s %s dot_q8a n=%lld: %g vs reference %g",
                              v->name, grok_type_get_traits(type)->name, (long long)n, a, rq);
                    }
                    free(xq);
                }
                free(w), free(wf), free(x);
            }
        }
    }
}

/* The multi-token dots (the variant's and the reference's) for 1..9
 * tokens against the scalar reference single-token dot (within the
 * summation-order bound) and against the same ISA's single-token dot
 * (equal bit for bit: a token's result must not depend on its batch),
 * odd block counts, unaligned rows and activation rows at odd places. */
static void test_multi(const variant *v) {
    grok_rng r = {123};
    const int64_t sizes[] = {32, 64, 96, 160, 224, 256, 768, 1056, 1280, 2080, 2304};
    const grok_type qtypes[] = {GROK_TYPE_Q8_0, GROK_TYPE_Q4_0, GROK_TYPE_Q4_K, GROK_TYPE_Q5_K,
                                GROK_TYPE_Q6_K, QTYPES,         IQ_TYPES_LIST};
    for (size_t ti = 0; ti < sizeof qtypes / sizeof qtypes[0]; ti++) {
        grok_type type = qtypes[ti];
        const char *tn = grok_type_get_traits(type)->name;
        grok_dot_kernels simd = {0};
        if (v)
            v->get(type, &simd);
        else
            simd = *grok_dot_reference(type);
        const char *vn = v ? v->name : "reference";
        const grok_dot_kernels *ref = grok_dot_reference(type);
        CHECK(simd.dot_q8a_multi != NULL, "%s %s has no dot_q8a_multi", vn, tn);
        if (!simd.dot_q8a_multi || !simd.dot_q8a) continue;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si], nb = n / QKA;
            if (n % grok_type_get_traits(type)->block_size) continue;
            uint8_t *w = malloc((size_t)grok_type_row_size(type, n) + 3);
            float *wf = malloc((size_t)n * 4), *x = malloc((size_t)n * 4);
            uint8_t *wu = w + 3; /* off every alignment */
            random_row(&r, type, n, wu, wf);
            if (type == GROK_TYPE_Q8_0) /* the first block: weights of -128, 127 and -127 */
                for (int j = 0; j < QK8_0; j++) {
                    int8_t q = (int8_t)(j % 3 == 0 ? -128 : j % 3 == 1 ? 127 : -127);
                    uint16_t h;
                    memcpy(&h, wu, 2);
                    memcpy(wu + 2 + j, &q, 1);
                    wf[j] = grok_fp16_to_fp32(h) * q;
                }
            /* 9 tokens, each at its own odd block offset in one buffer;
             * xm: the same as the multi dot takes them (multi_prep) */
            block_q8a *buf = malloc((size_t)(9 * (nb + 3)) * sizeof *buf);
            block_q8a *mbuf = malloc((size_t)(9 * (nb + 3)) * sizeof *mbuf);
            const block_q8a *xs[9], *xm[9];
            double qmag[9];
            for (int t = 0; t < 9; t++) {
                block_q8a *xt = buf + t * (nb + 3) + (t % 3);
                for (int64_t j = 0; j < n; j++) x[j] = grok_rng_normal(&r) * (t == 4 ? 1e-3f : 1.0f);
                if (t == 6) memset(x, 0, (size_t)n * 4); /* an all-zero token */
                grok_quantize_q8a(x, xt, n);
                if (t == 2) /* extreme quants, against the extreme first weight block */
                    for (int64_t b = 0; b < nb; b++) {
                        for (int j = 0; j < QKA; j++) xt[b].qs[j] = (int8_t)(j % 2 ? 127 : -127);
                        xt[b].sum = 0;
                    }
                xs[t] = xt;
                block_q8a *xmt = mbuf + t * (nb + 3) + (t % 3);
                memcpy(xmt, xt, (size_t)nb * sizeof *xt);
                if (simd.multi_prep) simd.multi_prep(xmt, nb);
                xm[t] = xmt;
                qmag[t] = 0;
                for (int64_t b = 0; b < nb; b++)
                    for (int j = 0; j < QKA; j++)
                        qmag[t] += fabs((double)wf[b * QKA + j] * xt[b].d * xt[b].qs[j]);
            }
            float one_t[9], want_t[9]; /* each token's single and reference dots, once */
            for (int t = 0; t < 9; t++)
                one_t[t] = simd.dot_q8a(wu, xs[t], n), want_t[t] = ref->dot_q8a(wu, xs[t], n);
            for (int64_t nx = 1; nx <= 9; nx++) {
                float out[9];
                for (int t = 0; t < 9; t++) out[t] = NAN;
                simd.dot_q8a_multi(wu, xm + (9 - nx), nx, n, out); /* the last nx tokens */
                for (int64_t k = 0; k < nx; k++) {
                    const int t = (int)(9 - nx + k);
                    const float one = one_t[t], want = want_t[t];
                    CHECK(out[k] == one, "%s %s multi n=%lld nx=%lld tok %lld: %.9g vs its single dot %.9g",
                          vn, tn, (long long)n, (long long)nx, (long long)k, out[k], one);
                    CHECK(fabs(out[k] - want) <= 1e-5 * qmag[t] + 1e-6,
                          "%s %s multi n=%lld nx=%lld tok %lld: %g vs reference %g", vn, tn, (long long)n,
                          (long long)nx, (long long)k, out[k], want);
                }
                for (int64_t k = nx; k < 9; k++)
                    CHECK(isnan(out[k]), "%s %s multi nx=%lld wrote out[%lld]", vn, tn, (long long)nx,
                          (long long)k);
            }
            free(w), free(wf), free(x), free(buf), free(mbuf);
        }
    }
}

/* The quant bytes of the first block of a q4_0 / q4_K / q5_K / q6_K row
 * (Q5_K's qh and qs, Q6_K's ql and qh, are adjacent). */
static size_t extreme_at(grok_type type) {
    return type == GROK_TYPE_Q4_0   ? offsetof(block_q4_0, qs)
           : type == GROK_TYPE_Q4_K ? offsetof(block_q4_K, qs)
           : type == GROK_TYPE_Q5_K ? offsetof(block_q5_K, qh)
                                    : offsetof(block_q6_K, ql);
}
static size_t extreme_len(grok_type type) {
    return type == GROK_TYPE_Q4_0   ? QK4_0 / 2
           : type == GROK_TYPE_Q4_K ? QK_K / 2
           : type == GROK_TYPE_Q5_K ? QK_K / 8 + QK_K / 2
                                    : QK_K / 2 + QK_K / 4;
}

/* The packed dots (groups of 8 interleaved rows) against the reference
 * single-row dot of each row, for 1..9 tokens, and each token's result in
 * a batch bit for bit against the same token alone. Row r of the group
 * gets its own random data; row 3's first block holds extreme quants (q8_0:
 * -128, 127 and -127; the others: their largest), against token 2's
 * extreme activation quants. */
static void test_packed(const variant *v) {
    grok_rng r = {77};
    const int64_t sizes[] = {32, 64, 96, 160, 256, 768, 1056, 2080, 2304};
    const grok_type ptypes[] = {GROK_TYPE_Q8_0, GROK_TYPE_Q4_0, GROK_TYPE_Q4_K, GROK_TYPE_Q5_K,
                                GROK_TYPE_Q6_K, QTYPES,         IQ_TYPES_LIST};
    for (size_t ti = 0; ti < sizeof ptypes / sizeof ptypes[0]; ti++) {
        const grok_type type = ptypes[ti];
        const char *tn = grok_type_get_traits(type)->name;
        grok_dot_kernels simd = {0};
        v->get(type, &simd);
        const bool qtype = ti >= 5 && !grok_iq_type(type); /* the qtypes types: packed on x86 only */
        /* every SIMD variant packs the older types; the i-quants where it pays (x86_iquants.c) */
        CHECK(simd.dot_x8 != NULL || (qtype && strcmp(v->name, "neon") == 0) || grok_iq_type(type),
              "%s %s has no dot_x8", v->name, tn);
        if (!simd.dot_x8) continue;
        const grok_dot_kernels *ref = grok_dot_reference(type);
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si], nb = n / QKA;
            if (n % grok_type_get_traits(type)->block_size) continue;
            const size_t rb = (size_t)grok_type_row_size(type, n);
            uint8_t *w = malloc(rb * GROK_PACK_ROWS), *pk = malloc(rb * GROK_PACK_ROWS + 5);
            uint8_t *pku = pk + 5; /* off every alignment */
            float *wf = malloc((size_t)n * 4), *x = malloc((size_t)n * 4);
            double mag[GROK_PACK_ROWS][9];
            for (int i = 0; i < GROK_PACK_ROWS; i++) random_row(&r, type, n, w + i * rb, wf);
            if (type == GROK_TYPE_Q8_0)
                for (int j = 0; j < QK8_0; j++)
                    w[3 * rb + 2 + j] = (uint8_t)(j % 3 == 0 ? 0x80 : j % 3 == 1 ? 127 : 0x81);
            else if (qtype) { /* every code at its largest in row 3's first block (scales kept) */
                size_t at, len;
                qt_quant_range(type, &at, &len);
                memset(w + 3 * rb + at, 0xff, len);
            } else if (!grok_iq_type(type)) /* the largest quants (all bits set) in row 3's first block,
                                             * where kernels that add products in 16-bit lanes come nearest
                                             * to overflowing them (the i-quants' random rows reach every
                                             * code) */
                memset(w + 3 * rb + extreme_at(type), 0xff, extreme_len(type));
            grok_pack_x8(type, w, rb, n, pku);
            block_q8a *buf = malloc((size_t)(9 * (nb + 1)) * sizeof *buf);
            const block_q8a *xs[9];
            for (int t = 0; t < 9; t++) {
                block_q8a *xt = buf + t * (nb + 1) + (t % 2);
                for (int64_t j = 0; j < n; j++) x[j] = grok_rng_normal(&r) * (t == 4 ? 1e-3f : 1.0f);
                if (t == 6) memset(x, 0, (size_t)n * 4);
                grok_quantize_q8a(x, xt, n);
                if (t == 2)
                    for (int64_t b = 0; b < nb; b++) {
                        for (int j = 0; j < QKA; j++) xt[b].qs[j] = (int8_t)(j % 2 ? 127 : -127);
                        xt[b].sum = 0;
                    }
                xs[t] = xt;
                for (int i = 0; i < GROK_PACK_ROWS; i++) {
                    grok_kernels_get(type)->to_f32(w + i * rb, wf, n);
                    mag[i][t] = 0;
                    for (int64_t b = 0; b < nb; b++)
                        for (int j = 0; j < QKA; j++)
                            mag[i][t] += fabs((double)wf[b * QKA + j] * xt[b].d * xt[b].qs[j]);
                }
            }
            float alone[9][GROK_PACK_ROWS], out[9 * GROK_PACK_ROWS], ref_ti[9][GROK_PACK_ROWS];
            for (int t = 0; t < 9; t++) simd.dot_x8(pku, &xs[t], 1, n, alone[t]);
            for (int t = 0; t < 9; t++)
                for (int i = 0; i < GROK_PACK_ROWS; i++) ref_ti[t][i] = ref->dot_q8a(w + i * rb, xs[t], n);
            for (int64_t nx = 1; nx <= 9; nx++) {
                for (int k = 0; k < 9 * GROK_PACK_ROWS; k++) out[k] = NAN;
                simd.dot_x8(pku, xs + (9 - nx), nx, n, out);
                for (int64_t k = 0; k < nx; k++) {
                    const int t = (int)(9 - nx + k);
                    for (int i = 0; i < GROK_PACK_ROWS; i++) {
                        const float got = out[k * GROK_PACK_ROWS + i], want = ref_ti[t][i];
                        CHECK(got == alone[t][i],
                              "%s %s packed n=%lld nx=%lld tok %d row %d: %.9g vs alone %.9g", v->name, tn,
                              (long long)n, (long long)nx, t, i, got, alone[t][i]);
                        CHECK(fabs(got - want) <= 1e-5 * mag[i][t] + 1e-6,
                              "%s %s packed n=%lld tok %d row %d: %g vs reference %g", v->name, tn,
                              (long long)n, t, i, got, want);
                    }
                }
                for (int64_t k = nx * GROK_PACK_ROWS; k < 9 * GROK_PACK_ROWS; k++)
                    CHECK(isnan(out[k]), "%s %s packed nx=%lld wrote out[%lld]", v->name, tn, (long long)nx,
                          (long long)k);
            }
            if (simd.dot_x16) {
                /* two groups: this one and, at an odd stride, its rows in reverse order */
                const size_t stride = rb * GROK_PACK_ROWS + 3;
                uint8_t *two = malloc(2 * stride), *rev = malloc(rb * GROK_PACK_ROWS);
                for (int i = 0; i < GROK_PACK_ROWS; i++)
                    memcpy(rev + i * rb, w + (GROK_PACK_ROWS - 1 - i) * rb, rb);
                grok_pack_x8(type, w, rb, n, two);
                grok_pack_x8(type, rev, rb, n, two + stride);
                for (int64_t nx = 1; nx <= 9; nx++) {
                    float o16[9 * 2 * GROK_PACK_ROWS], o8[2][9 * GROK_PACK_ROWS];
                    simd.dot_x16(two, stride, xs + (9 - nx), nx, n, o16);
                    simd.dot_x8(two, xs + (9 - nx), nx, n, o8[0]);
                    simd.dot_x8(two + stride, xs + (9 - nx), nx, n, o8[1]);
                    for (int64_t k = 0; k < nx; k++)
                        for (int i = 0; i < 2 * GROK_PACK_ROWS; i++)
                            CHECK(o16[k * 2 * GROK_PACK_ROWS + i] ==
                                      o8[i / GROK_PACK_ROWS][k * GROK_PACK_ROWS + i % GROK_PACK_ROWS],
                                  "%s %s x16 n=%lld nx=%lld tok %lld row %d: %.9g vs dot_x8 %.9g", v->name,
                                  tn, (long long)n, (long long)nx, (long long)k, i,
                                  o16[k * 2 * GROK_PACK_ROWS + i],
                                  o8[i / GROK_PACK_ROWS][k * GROK_PACK_ROWS + i % GROK_PACK_ROWS]);
                }
                free(two), free(rev);
            }
            free(w), free(pk), free(wf), free(x), free(buf);
        }
    }
}

/* A packed copy of m's rows (NULL when the type has none or the rows do
 * not divide into groups); the caller frees it. */
static uint8_t *pack_copy(grok_mat *m) {
    if (!grok_pack_x8_type(m->type) || m->rows % GROK_PACK_ROWS) return NULL;
    uint8_t *p = malloc(m->row_bytes * (size_t)m->rows);
    for (int64_t g = 0; g < m->rows / GROK_PACK_ROWS; g++)
        grok_pack_x8(m->type, m->data + (size_t)g * GROK_PACK_ROWS * m->row_bytes, m->row_bytes, m->cols,
                     p + (size_t)g * GROK_PACK_ROWS * m->row_bytes);
    return p;
}

static void test_quantize_q8a(void) {
    grok_rng r = {5};
    float x[128];
    for (int i = 0; i < 128; i++) x[i] = grok_rng_normal(&r) * (i < 32 ? 100.0f : 1.0f);
    for (int i = 64; i < 96; i++) x[i] = 0; /* an all-zero block */
    block_q8a q[4];
    grok_quantize_q8a(x, q, 128);
    for (int b = 0; b < 4; b++) {
        float amax = 0;
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j])), sum += q[b].qs[j];
        CHECK(q[b].d == amax / 127.0f, "block %d scale %g, want %g", b, q[b].d, amax / 127.0f);
        CHECK(q[b].sum == sum, "block %d sum %d, want %d", b, q[b].sum, sum);
        for (int j = 0; j < 32; j++)
            CHECK(fabsf(q[b].d * q[b].qs[j] - x[b * 32 + j]) <= q[b].d * 0.5001f,
                  "block %d element %d: %g vs %g", b, j, q[b].d * q[b].qs[j], x[b * 32 + j]);
    }
}

/* A SIMD quantizer (AVX2, NEON) gives the reference's bytes: blocks of
 * random magnitudes (subnormal to 1e30), all-zero blocks, exact rounding
 * ties (x*id = k + 0.5, which round to even), signed zeros, and blocks
 * holding NaN or Inf (which the reference makes d = NaN and zeros). */
static void test_quantize_q8a_simd(const char *name, void (*quantize)(const float *, block_q8a *, int64_t),
                                   bool available) {
    if (!available) {
        printf("  quantize_q8a %s: not on this CPU, not tested here\n", name);
        return;
    }
    enum { NB = 512 };
    grok_rng r = {11};
    float *x = malloc(NB * QKA * sizeof(float));
    for (int b = 0; b < NB; b++) {
        const float scale = b % 4 == 0 ? 1e-40f : b % 4 == 1 ? 1.0f : b % 4 == 2 ? 1e30f : 1e-3f;
        for (int j = 0; j < QKA; j++) {
            float v = grok_rng_normal(&r) * scale;
            if (b % 7 == 3) v = 0; /* a zero block */
            if (b % 7 == 5) v = j == 0 ? 127.0f : (float)((int)(grok_rng_normal(&r) * 40)) + 0.5f; /* ties */
            if (b % 7 == 6 && j % 3 == 0) v = -0.0f;
            x[b * QKA + j] = v;
        }
    }
    /* non-finite values: NaN of both signs, a signalling NaN, +-Inf, at
     * every position of some blocks */
    uint32_t odd[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7f800000u, 0xff800000u};
    for (int b = 9; b < NB; b += 13) memcpy(&x[b * QKA + (b / 13) % QKA], &odd[(b / 13) % 5], 4);
    block_q8a *a = malloc(NB * sizeof(block_q8a)), *want = malloc(NB * sizeof(block_q8a));
    grok_quantize_q8a_ref(x, want, NB * QKA);
    for (int b = 9; b < NB; b += 13) { /* the definition: d NaN, zero quants and sum */
        bool zero = want[b].sum == 0;
        for (int j = 0; j < QKA; j++) zero &= want[b].qs[j] == 0;
        CHECK(isnan(want[b].d) && zero, "non-finite block %d: d %g sum %d", b, want[b].d, want[b].sum);
    }
    const int before = checks;
    quantize(x, a, NB * QKA);
    for (int b = 0; b < NB; b++)
        CHECK(memcmp(&a[b], &want[b], sizeof a[b]) == 0,
              "quantize_q8a %s block %d differs (d %g vs %g, sum %d vs %d)", name, b, a[b].d, want[b].d,
              a[b].sum, want[b].sum);
    for (int b = 0; b < NB; b += 4) /* below 2^-120 a block is zero */
        if (b % 7 != 5 && b % 13 != 9)
            CHECK(want[b].d == 0 && want[b].sum == 0, "tiny block %d: d %g", b, want[b].d);
    printf("  quantize_q8a %s: %d checks\n", name, checks - before);
    free(x), free(a), free(want);
}

/* Non-finite values never turn into finite numbers: an activation block
 * holding NaN or Inf makes every variant's 8-bit dot (single, multi,
 * packed) NaN, and a q8_0 / q4_0 block encoded from NaN or Inf decodes to
 * NaN; a block whose maximum is subnormal (1/d overflows) still encodes
 * to finite values. */
static void test_nonfinite(const variant *variants, size_t n_variants) {
    enum { N = 256 };
    grok_rng r = {77};
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = grok_rng_normal(&r);
    x[40] = NAN; /* block 1 */
    block_q8a xq[N / QKA];
    grok_quantize_q8a(x, xq, N);
    const grok_type types[] = {GROK_TYPE_Q8_0, GROK_TYPE_Q4_0, GROK_TYPE_Q4_K, GROK_TYPE_Q5_K,
                               GROK_TYPE_Q6_K};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const grok_type type = types[ti];
        const size_t rb = (size_t)grok_type_row_size(type, N);
        uint8_t *w = malloc(8 * rb), *pk = malloc(8 * rb);
        float *wf = malloc((size_t)N * 4);
        for (int row = 0; row < 8; row++) random_row(&r, type, N, w + row * rb, wf);
        grok_pack_x8(type, w, rb, N, pk);
        for (size_t v = 0; v <= n_variants; v++) {
            grok_dot_kernels k = {0};
            if (v == n_variants)
                k = *grok_dot_reference(type);
            else if (variants[v].available)
                variants[v].get(type, &k);
            const char *vn = v == n_variants ? "reference" : variants[v].name;
            if (k.dot_q8a)
                CHECK(isnan(k.dot_q8a(w, xq, N)), "%s %s dot_q8a with a NaN block is finite", vn,
                      grok_type_get_traits(type)->name);
            if (k.dot_q8a_multi) {
                block_q8a xm[N / QKA];
                memcpy(xm, xq, sizeof xm);
                if (k.multi_prep) k.multi_prep(xm, N / QKA);
                const block_q8a *xs[1] = {xm};
                float out;
                k.dot_q8a_multi(w, xs, 1, N, &out);
                CHECK(isnan(out), "%s %s multi with a NaN block is finite", vn,
                      grok_type_get_traits(type)->name);
            }
            if (k.dot_x8) {
                const block_q8a *xs[1] = {xq};
                float out[8];
                k.dot_x8(pk, xs, 1, N, out);
                for (int row = 0; row < 8; row++)
                    CHECK(isnan(out[row]), "%s %s x8 row %d with a NaN block is finite", vn,
                          grok_type_get_traits(type)->name, row);
            }
        }
        free(w), free(pk), free(wf);
    }
    for (int t = 0; t < 2; t++) {
        const grok_type type = t ? GROK_TYPE_Q4_0 : GROK_TYPE_Q8_0;
        const grok_type_kernels *k = grok_kernels_get(type);
        uint8_t enc[N];
        for (int i = 0; i < 64; i++) x[i] = (float)i;
        x[5] = t ? -INFINITY : NAN;             /* block 0: non-finite */
        for (int i = 32; i < 64; i++) x[i] = 0; /* block 1: subnormal maximum */
        uint32_t tiny = 0x7f;
        memcpy(&x[33], &tiny, 4);
        k->from_f32(x, enc, 64);
        k->to_f32(enc, y, 64);
        for (int i = 0; i < 32; i++)
            CHECK(isnan(y[i]), "%s encoded a non-finite block to %g", t ? "q4_0" : "q8_0", y[i]);
        for (int i = 32; i < 64; i++)
            CHECK(isfinite(y[i]), "%s encoded a subnormal block to %g", t ? "q4_0" : "q8_0", y[i]);
    }
}

/* Blocks worked out by hand from ggml's q4_0 rule: d = (value of largest
 * magnitude) / -8, q = min(15, trunc(x/d + 8.5)), low nibbles first. */
static void test_q4_0_by_hand(void) {
    const grok_type_kernels *k = grok_kernels_get(GROK_TYPE_Q4_0);
    float x[64], y[64];
    /* block 0: x_j = (j%16 - 8)/2: max magnitude -4 -> d = 0.5, q = j%16 */
    for (int j = 0; j < 32; j++) x[j] = (float)((j % 16) - 8) * 0.5f;
    /* block 1: one +8, zeros: d = -1, q(8) = 0, q(0) = 8 */
    for (int j = 0; j < 32; j++) x[32 + j] = j == 0 ? 8.0f : 0.0f;
    uint8_t b[36];
    k->from_f32(x, b, 64);
    CHECK(b[0] == 0x00 && b[1] == 0x38, "block 0 scale bytes %02x %02x, want f16(0.5) = 00 38", b[0], b[1]);
    for (int j = 0; j < 16; j++) CHECK(b[2 + j] == (uint8_t)(j * 17), "block 0 qs[%d] = %02x", j, b[2 + j]);
    CHECK(b[18] == 0x00 && b[19] == 0xbc, "block 1 scale bytes %02x %02x, want f16(-1) = 00 bc", b[18],
          b[19]);
    CHECK(b[20] == 0x80, "block 1 qs[0] = %02x, want 80", b[20]);
    for (int j = 1; j < 16; j++) CHECK(b[20 + j] == 0x88, "block 1 qs[%d] = %02x, want 88", j, b[20 + j]);
    k->to_f32(b, y, 64);
    for (int j = 0; j < 64; j++) CHECK(y[j] == x[j], "q4_0 round trip %d: %g vs %g", j, y[j], x[j]);
}

/* cols rounded up to the type's block (256 for the k-quants: 96 -> 256,
 * 2080 -> 2304, 1056 -> 1280, odd numbers of super-blocks). */
static int64_t block_cols(grok_type type, int64_t cols) {
    const int64_t bs = grok_type_get_traits(type)->block_size;
    return (cols + bs - 1) / bs * bs;
}

/* The matmul of each mode against per-row reference dots on the same
 * (possibly quantized) activations. */
static void test_matmul_modes(void) {
    grok_threadpool *pools[3] = {NULL, grok_threadpool_create(2), grok_threadpool_create(3)};
    const int64_t shapes[][3] = {{37, 96, 1},  {1, 32, 3},    {100, 4096, 11},
                                 {17, 160, 5}, {64, 2080, 2}, {48, 96, 9}};
    grok_rng r = {9};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        grok_type type = TYPES[ti];
        const grok_dot_kernels *ref = grok_dot_reference(type);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            /* the qtypes types (row dots tested above): three shapes, to keep the run short */
            if (!grok_kernels_get(type)->from_f32 && (si == 2 || si == 3 || si == 5)) continue;
            int64_t rows = shapes[si][0], cols = block_cols(type, shapes[si][1]), nt = shapes[si][2];
            size_t rb = (size_t)grok_type_row_size(type, cols);
            uint8_t *w = malloc(rb * (size_t)rows);
            float *wf = malloc((size_t)cols * 4);
            float *x = malloc((size_t)(nt * cols) * 4), *y = malloc((size_t)(nt * rows) * 4);
            block_q8a *xq = malloc((size_t)(nt * cols / QKA) * sizeof *xq);
            float *want = malloc((size_t)(nt * rows) * 4);
            double *mags = malloc((size_t)(nt * rows) * sizeof(double));
            for (int64_t i = 0; i < rows; i++) random_row(&r, type, cols, w + (size_t)i * rb, wf);
            for (int64_t i = 0; i < nt * cols; i++) x[i] = grok_rng_normal(&r);
            for (int64_t t = 0; t < nt; t++) grok_quantize_q8a(x + t * cols, xq + t * (cols / QKA), cols);
            grok_mat m = {w, type, rows, cols, rb, NULL, {0}, GROK_ISA_DEFAULT};
            uint8_t *packed = pack_copy(&m);
            for (int pass = 0; pass < 3 + (packed != NULL); pass++) {
                /* pass 3: FAST again, with the packed copy */
                const int mode = pass == 3 ? GROK_KERNELS_FAST : pass;
                m.packed = pass == 3 ? packed : NULL;
                grok_kernels_set_mode((grok_kernel_mode)mode);
                bool q8 = mode == GROK_KERNELS_FAST && ref->dot_q8a;
                /* per row and token, once for the three pools: the reference dot and the
                 * magnitude for the tolerance (the dot of |row| with |x|) */
                for (int64_t i = 0; i < rows; i++) {
                    const uint8_t *row = w + (size_t)i * rb;
                    grok_kernels_get(type)->to_f32(row, wf, cols);
                    for (int64_t t = 0; t < nt; t++) {
                        want[t * rows + i] = q8 ? ref->dot_q8a(row, xq + t * (cols / QKA), cols)
                                                : ref->dot_f32(row, x + t * cols, cols);
                        double mg = 0;
                        for (int64_t j = 0; j < cols; j++) mg += fabs((double)wf[j] * x[t * cols + j]);
                        mags[t * rows + i] = mg;
                    }
                }
                for (int p = 0; p < 3; p++) {
                    memset(y, 0, (size_t)(nt * rows) * 4);
                    grok_matmul(pools[p], &m, x, cols, y, rows, nt);
                    for (int64_t t = 0; t < nt; t++)
                        for (int64_t i = 0; i < rows; i++) {
                            const float want1 = want[t * rows + i];
                            const double mag = mags[t * rows + i];
                            double tol = mode == GROK_KERNELS_REFERENCE ? 0 : 1e-5 * mag + 1e-6;
                            CHECK(fabs(y[t * rows + i] - want1) <= tol,
                                  "%s mode %s %lldx%lld tok %lld pool %d row %lld: %g vs %g",
                                  grok_type_get_traits(type)->name,
                                  grok_kernel_mode_name((grok_kernel_mode)mode), (long long)rows,
                                  (long long)cols, (long long)t, p, (long long)i, y[t * rows + i], want1);
                        }
                }
            }
            free(w), free(wf), free(x), free(y), free(xq), free(packed), free(want), free(mags);
        }
    }
    grok_kernels_set_mode(GROK_KERNELS_FAST);
    grok_threadpool_free(pools[1]);
    grok_threadpool_free(pools[2]);
}

/* A batch of 1..9 tokens through grok_matmul equals the same tokens one
 * at a time (n_tok = 1 takes the single-token dots), bit for bit, in
 * every mode: in FAST mode batches of quantized weights go through the
 * multi-token dots, which must not change any token's numbers. Rows are
 * split over 1, 2 and 3 threads and (200 x 2080) into several L2 tiles. */
static void test_matmul_batch_equals_tokens(void) {
    grok_threadpool *pools[3] = {NULL, grok_threadpool_create(2), grok_threadpool_create(3)};
    const int64_t shapes[][2] = {{37, 96}, {200, 2080}, {19, 1056}};
    grok_rng r = {31};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        grok_type type = TYPES[ti];
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            if (!grok_kernels_get(type)->from_f32 && si > 0) continue; /* qtypes: one shape */
            int64_t rows = shapes[si][0], cols = block_cols(type, shapes[si][1]);
            if (!grok_dot_reference(type)->dot_q8a && rows > 100) continue; /* keep it fast */
            size_t rb = (size_t)grok_type_row_size(type, cols);
            uint8_t *w = malloc(rb * (size_t)rows);
            float *wf = malloc((size_t)cols * 4);
            const int64_t ldx = cols + 5, ldy = rows + 3; /* strides wider than the rows */
            float *x = malloc((size_t)(9 * ldx) * 4), *y = malloc((size_t)(9 * ldy) * 4),
                  *y1 = malloc((size_t)ldy * 4);
            for (int64_t i = 0; i < rows; i++) random_row(&r, type, cols, w + (size_t)i * rb, wf);
            for (int64_t i = 0; i < 9 * ldx; i++) x[i] = grok_rng_normal(&r);
            grok_mat m = {w, type, rows, cols, rb, NULL, {0}, GROK_ISA_DEFAULT};
            uint8_t *packed = pack_copy(&m);
            for (int pass = 0; pass < 3 + (packed != NULL); pass++) {
                const int mode = pass == 3 ? GROK_KERNELS_FAST : pass; /* pass 3: FAST, packed */
                m.packed = pass == 3 ? packed : NULL;
                if (mode == GROK_KERNELS_REFERENCE && rows > 100) continue;
                grok_kernels_set_mode((grok_kernel_mode)mode);
                for (int64_t nt = 1; nt <= 9; nt++) {
                    const int p = (int)(nt % 3);
                    grok_matmul(pools[p], &m, x, ldx, y, ldy, nt);
                    int bad = 0;
                    for (int64_t t = 0; t < nt; t++) {
                        grok_matmul(pools[p], &m, x + t * ldx, ldx, y1, ldy, 1);
                        for (int64_t i = 0; i < rows; i++)
                            if (y[t * ldy + i] != y1[i] && bad++ < 3)
                                CHECK(0,
                                      "%s mode %s %lldx%lld n_tok %lld pool %d tok %lld row %lld: %.9g, "
                                      "alone %.9g",
                                      grok_type_get_traits(type)->name,
                                      grok_kernel_mode_name((grok_kernel_mode)mode), (long long)rows,
                                      (long long)cols, (long long)nt, p, (long long)t, (long long)i,
                                      y[t * ldy + i], y1[i]);
                    }
                    CHECK(bad == 0, "%s mode %s n_tok %lld: %d values differ from one-token products",
                          grok_type_get_traits(type)->name, grok_kernel_mode_name((grok_kernel_mode)mode),
                          (long long)nt, bad);
                }
            }
            free(w), free(wf), free(x), free(y), free(y1), free(packed);
        }
    }
    grok_kernels_set_mode(GROK_KERNELS_FAST);
    grok_threadpool_free(pools[1]);
    grok_threadpool_free(pools[2]);
}

/* grok_matmul_ops equals grok_matmul product by product, bit for bit:
 * packed products big enough that their tails are dealt in several chunks
 * (the last one short), two products sharing one input (quantized once),
 * an unpacked 8-bit one, and an f32 one too small to split, with 1 to 3
 * threads and 1 or 3 tokens. */
static void test_matmul_ops(void) {
    grok_threadpool *pools[3] = {NULL, grok_threadpool_create(2), grok_threadpool_create(3)};
    const struct {
        grok_type type;
        int64_t rows, cols;
        bool pack;
        int input;
    } spec[] = {{GROK_TYPE_Q4_0, 2400, 2048, true, 0},
                {GROK_TYPE_Q8_0, 808, 2048, true, 0},
                {GROK_TYPE_Q4_0, 37, 1024, false, 1},
                {GROK_TYPE_F32, 8, 2048, false, 0}};
    enum { NOPS = sizeof spec / sizeof spec[0] };
    grok_rng r = {41};
    grok_mat m[NOPS];
    uint8_t *packed[NOPS] = {NULL};
    float *x[2], *y[NOPS], *want[NOPS];
    for (int i = 0; i < 2; i++) {
        x[i] = malloc(3 * 2048 * sizeof(float));
        for (int64_t k = 0; k < 3 * 2048; k++) x[i][k] = grok_rng_normal(&r);
    }
    for (int i = 0; i < NOPS; i++) {
        const size_t rb = (size_t)grok_type_row_size(spec[i].type, spec[i].cols);
        uint8_t *w = malloc(rb * (size_t)spec[i].rows);
        float *wf = malloc((size_t)spec[i].cols * sizeof(float));
        for (int64_t k = 0; k < spec[i].rows; k++) random_row(&r, spec[i].type, spec[i].cols, w + k * rb, wf);
        free(wf);
        m[i] = (grok_mat){w, spec[i].type, spec[i].rows, spec[i].cols, rb, NULL, {0}, GROK_ISA_DEFAULT};
        if (spec[i].pack) m[i].packed = packed[i] = pack_copy(&m[i]);
        y[i] = malloc((size_t)(3 * spec[i].rows) * sizeof(float));
        want[i] = malloc((size_t)(3 * spec[i].rows) * sizeof(float));
    }
    grok_kernels_set_mode(GROK_KERNELS_FAST);
    for (int64_t nt = 1; nt <= 3; nt += 2) {
        grok_matmul_op ops[NOPS];
        for (int i = 0; i < NOPS; i++) {
            grok_matmul(NULL, &m[i], x[spec[i].input], 2048, want[i], spec[i].rows, nt);
            ops[i] = (grok_matmul_op){&m[i], x[spec[i].input], 2048, y[i], spec[i].rows, nt};
        }
        for (int p = 0; p < 3; p++) {
            for (int i = 0; i < NOPS; i++) memset(y[i], 0, (size_t)(3 * spec[i].rows) * sizeof(float));
            grok_matmul_ops(pools[p], ops, NOPS);
            for (int i = 0; i < NOPS; i++)
                CHECK(
                    memcmp(y[i], want[i], (size_t)(nt * spec[i].rows) * sizeof(float)) == 0,
                    "matmul_ops product %d (%s %lldx%lld%s), %lld tokens, pool %d: differs from grok_matmul",
                    i, grok_type_get_traits(spec[i].type)->name, (long long)spec[i].rows,
                    (long long)spec[i].cols, m[i].packed ? " packed" : "", (long long)nt, p);
        }
    }
    for (int i = 0; i < NOPS; i++) free((void *)m[i].data), free(packed[i]), free(y[i]), free(want[i]);
    free(x[0]), free(x[1]);
    for (int p = 1; p < 3; p++) grok_threadpool_free(pools[p]);
}

/* The VBMI packed dots decode the same magnitudes and signs as the gather
 * ones, so every result must equal theirs bit for bit: rows reaching every
 * grid index and sign code (iq_test_row), 1 to 9 tokens, two groups. */
static void test_vbmi_equals_gather(void) {
    const grok_cpu_features *cpu = grok_cpu();
    if (!(cpu->avx2 && cpu->fma && cpu->f16c && cpu->avx512f && cpu->avx512bw && cpu->avx512vl &&
          cpu->avx512vnni && cpu->avx512vbmi)) {
        printf("  avx512vbmi vs gathers: not on this CPU, not tested here\n");
        return;
    }
    const grok_type types[] = {GROK_TYPE_IQ2_XXS, GROK_TYPE_IQ3_XXS, GROK_TYPE_IQ3_S};
    const int64_t n = 1024, rows = 2 * GROK_PACK_ROWS;
    grok_rng r = {91};
    int before = checks;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const grok_type t = types[ti];
        const size_t rb = grok_type_row_size(t, n);
        uint8_t *w = malloc(rb * (size_t)rows), *pk = malloc(rb * (size_t)rows);
        for (int64_t i = 0; i < rows; i++) iq_test_row(&r, t, n, w + (size_t)i * rb);
        for (int64_t g = 0; g < rows / GROK_PACK_ROWS; g++)
            grok_pack_x8(t, w + (size_t)g * GROK_PACK_ROWS * rb, rb, n, pk + (size_t)g * GROK_PACK_ROWS * rb);
        float *x = malloc(sizeof *x * (size_t)(9 * n));
        block_q8a *xq = malloc(sizeof *xq * (size_t)(9 * n / QKA));
        const block_q8a *xs[9];
        for (int k = 0; k < 9 * n; k++) x[k] = grok_rng_normal(&r);
        for (int k = 0; k < 9; k++)
            grok_quantize_q8a(x + k * n, xq + k * n / QKA, n), xs[k] = xq + k * n / QKA;
        grok_dot_kernels a = {0}, b = {0};
        grok_dot_avx512(t, &a);
        grok_dot_avx512vbmi(t, &b);
        CHECK(a.dot_x8 && b.dot_x8 && a.dot_x8 != b.dot_x8, "%s: no VBMI packed dot",
              grok_type_get_traits(t)->name);
        for (int nt = 1; nt <= 9 && a.dot_x8 && b.dot_x8; nt++)
            for (int64_t g = 0; g < rows / GROK_PACK_ROWS; g++) {
                float oa[9 * GROK_PACK_ROWS], ob[9 * GROK_PACK_ROWS];
                a.dot_x8(pk + (size_t)g * GROK_PACK_ROWS * rb, xs, nt, n, oa);
                b.dot_x8(pk + (size_t)g * GROK_PACK_ROWS * rb, xs, nt, n, ob);
                CHECK(memcmp(oa, ob, sizeof(float) * GROK_PACK_ROWS * (size_t)nt) == 0,
                      "%s %d tokens group %lld: VBMI %.9g vs gathers %.9g", grok_type_get_traits(t)->name, nt,
                      (long long)g, ob[0], oa[0]);
            }
        free(w), free(pk), free(x), free(xq);
    }
    printf("  avx512vbmi vs gathers: %d checks\n", checks - before);
}

int main(void) {
    const grok_cpu_features *cpu = grok_cpu();
    const variant variants[] = {
        {"avx2", grok_dot_avx2, cpu->avx2 && cpu->fma && cpu->f16c},
        {"avx512vnni", grok_dot_avx512,
         cpu->avx2 && cpu->fma && cpu->f16c && cpu->avx512f && cpu->avx512bw && cpu->avx512vl &&
             cpu->avx512vnni},
        {"avx512vbmi", grok_dot_avx512vbmi,
         cpu->avx2 && cpu->fma && cpu->f16c && cpu->avx512f && cpu->avx512bw && cpu->avx512vl &&
             cpu->avx512vnni && cpu->avx512vbmi},
        {"neon", grok_dot_neon, cpu->neon},
    };
    printf("kernels: isa %s\n", grok_kernels_isa());
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        if (!variants[i].available) {
            printf("  %s: not on this CPU, not tested here\n", variants[i].name);
            continue;
        }
        int before = checks;
        test_dots(&variants[i]);
        test_multi(&variants[i]);
        const int before_packed = checks;
        test_packed(&variants[i]);
        printf("  %s: %d checks (%d of packed dots)\n", variants[i].name, checks - before,
               checks - before_packed);
    }
    test_vbmi_equals_gather();
    test_multi(NULL);
    test_quantize_q8a();
    test_quantize_q8a_simd("avx2", grok_quantize_q8a_avx2, cpu->avx2 && cpu->fma && cpu->f16c);
    test_quantize_q8a_simd("neon", grok_quantize_q8a_neon, cpu->neon);
    test_q4_0_by_hand();
    test_nonfinite(variants, sizeof variants / sizeof variants[0]);
    test_matmul_modes();
    test_matmul_batch_equals_tokens();
    test_matmul_ops();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
