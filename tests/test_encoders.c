/*
 * test_encoders.c - the weighted encoders (kquants.c) of q2_K, q3_K, q4_1,
 * q5_0, q5_1, iq4_nl, iq4_xs, q4_K, q5_K and q6_K, and q4_0's with an
 * imatrix (without one it is ggml's own rounding), against ggml's: on the
 * rows of enc_rows.h, Gaussian and heavy-tailed, without and with an
 * importance matrix, each round trip through grok's decoders must lose no
 * more than ggml's quantize_chunk lost on the same rows (its errors stored
 * in tests/fixtures/ggml_quant_errors.txt; the error is the one each
 * encoder minimises: plain without an imatrix, imatrix-weighted with one;
 * 1e-7 for the stored digits).
 * Second, a bound that needs no llama.cpp: on the same rows each type's
 * encoding must lose at most a bound (per type, without and with an
 * imatrix; RTN[] below) times what textbook rounding loses: each group of
 * values that shares a scale rounded to nearest on the grid its largest
 * value (or its range) spans, that scale kept exact (unquantized, which
 * favours the reference). A search that got worse fails it.
 * Then awkward rows: an all-zero block decodes to zeros, a constant and a
 * spike stay finite and near, NaN-free output for tiny values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "enc_rows.h"
#include "kernels/kernels.h"
#include "kernels/qtypes.h"

static const grok_type TYPES[] = {GROK_TYPE_Q4_0, GROK_TYPE_Q2_K, GROK_TYPE_Q3_K,   GROK_TYPE_Q4_1,
                                  GROK_TYPE_Q5_0, GROK_TYPE_Q5_1, GROK_TYPE_IQ4_NL, GROK_TYPE_IQ4_XS,
                                  GROK_TYPE_Q4_K, GROK_TYPE_Q5_K, GROK_TYPE_Q6_K};
#define N_TYPES (int)(sizeof TYPES / sizeof TYPES[0])

static void test_against_ggml(const char *fixture) {
    float *x = malloc(sizeof(float) * ENC_COLS * ENC_ROWS), *y = malloc(sizeof(float) * ENC_COLS * ENC_ROWS);
    float imx[ENC_COLS];
    uint8_t *b = malloc((size_t)ENC_COLS * ENC_ROWS * 2);
    for (int dist = 0; dist < 2; dist++) {
        enc_rows(dist, x, imx);
        for (int wi = 0; wi < 2; wi++)
            for (int ti = 0; ti < N_TYPES; ti++) {
                const grok_type t = TYPES[ti];
                const char *tn = grok_type_get_traits(t)->name;
                const grok_type_kernels *k = grok_kernels_get(t);
                CHECK(grok_type_can_encode(t) && grok_type_takes_imatrix(t), "%s: weighted encoder", tn);
                const size_t rs = (size_t)grok_type_row_size(t, ENC_COLS);
                for (int r = 0; r < ENC_ROWS; r++) {
                    grok_from_f32_weighted(t, x + r * ENC_COLS, b + r * rs, ENC_COLS, wi ? imx : NULL);
                    k->to_f32(b + r * rs, y + r * ENC_COLS, ENC_COLS);
                }
                const double e = enc_rel_err(x, y, wi ? imx : NULL), g = enc_ggml_err(fixture, tn, dist, wi);
                CHECK(g > 0, "%s: no ggml error stored in %s", tn, fixture);
                CHECK(e <= g * (1 + 1e-7), "%s, rows %d, %s: error %.5g above ggml's %.5g", tn, dist,
                      wi ? "imatrix" : "no imatrix", e, g);
                printf("%-7s %s %-10s error %.5f, ggml %.5f (%.3f)\n", tn, dist ? "heavy" : "gauss",
                       wi ? "imatrix" : "no imatrix", e, g, e / g);
            }
    }
    free(x), free(y), free(b);
}

/* The textbook rounding of one type, for test_against_rtn: groups of g
 * values sharing one scale; sym: codes -nmin..nmin-1, the value of
 * largest magnitude on -nmin; asym: codes 0..nmax over [lo, hi], lo <= 0
 * where the format's min is stored as a non-negative offset (k-quants);
 * nl: the 16 IQ4_NL levels, the value of largest magnitude on -127. */
typedef struct {
    grok_type type;
    int g, kind, n;         /* kind 0 sym (n = nmin), 1 asym, 2 asym with lo <= 0 (n = nmax), 3 nl */
    double plain, weighted; /* grok / rounding, at most: without, with an imatrix */
} rtn_spec;

/* The bounds: the larger of the two rows' ratios measured 2026-12-07
 * (kquants.c with 4 super-block scales tried), plus 0.04-0.05. The
 * imatrix ratios are far lower because rounding to nearest ignores the
 * importance. q4_0 without an imatrix is this rounding (ggml's). */
static const rtn_spec RTN[] = {
    {GROK_TYPE_Q4_0, 32, 0, 8, 1.001, 0.80},  /* measured 1.000 (its f16 d), 0.745 */
    {GROK_TYPE_Q5_0, 32, 0, 16, 0.98, 0.83},  /* 0.938, 0.779 */
    {GROK_TYPE_Q4_1, 32, 1, 15, 0.87, 0.60},  /* 0.817, 0.549 */
    {GROK_TYPE_Q5_1, 32, 1, 31, 0.86, 0.61},  /* 0.807, 0.560 */
    {GROK_TYPE_Q2_K, 16, 2, 3, 0.73, 0.42},   /* 0.685, 0.379 */
    {GROK_TYPE_Q3_K, 16, 0, 4, 0.96, 0.69},   /* 0.917, 0.641 */
    {GROK_TYPE_Q4_K, 32, 2, 15, 0.88, 0.61},  /* 0.831, 0.565 */
    {GROK_TYPE_Q5_K, 32, 2, 31, 0.90, 0.66},  /* 0.855, 0.619 */
    {GROK_TYPE_Q6_K, 16, 0, 32, 0.96, 0.77},  /* 0.913, 0.722 */
    {GROK_TYPE_IQ4_NL, 32, 3, 0, 0.95, 0.75}, /* 0.906, 0.697 */
    {GROK_TYPE_IQ4_XS, 32, 3, 0, 0.97, 0.77}, /* 0.925, 0.716 */
};

static void rtn_round(const rtn_spec *sp, const float *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n; b += sp->g) {
        float lo = x[b], hi = x[b], mx = 0;
        for (int i = 0; i < sp->g; i++) {
            const float v = x[b + i];
            lo = fminf(lo, v), hi = fmaxf(hi, v);
            if (fabsf(v) > fabsf(mx)) mx = v;
        }
        if (sp->kind == 2) lo = fminf(lo, 0.0f);
        for (int i = 0; i < sp->g; i++) {
            const float v = x[b + i];
            if (sp->kind == 0) {
                const float d = mx / (float)-sp->n;
                const float q = d != 0 ? fminf(fmaxf(roundf(v / d), (float)-sp->n), (float)(sp->n - 1)) : 0;
                y[b + i] = d * q;
            } else if (sp->kind == 3) {
                const float d = mx / -127.0f;
                float best = INFINITY, yb = 0;
                for (int l = 0; l < 16; l++)
                    if (fabsf(d * (float)GROK_KVALUES_IQ4NL[l] - v) < best)
                        best = fabsf(d * (float)GROK_KVALUES_IQ4NL[l] - v),
                        yb = d * (float)GROK_KVALUES_IQ4NL[l];
                y[b + i] = yb;
            } else {
                const float d = (hi - lo) / (float)sp->n;
                const float q = d > 0 ? fminf(fmaxf(roundf((v - lo) / d), 0), (float)sp->n) : 0;
                y[b + i] = lo + d * q;
            }
        }
    }
}

static void test_against_rtn(void) {
    float *x = malloc(sizeof(float) * ENC_COLS * ENC_ROWS), *y = malloc(sizeof(float) * ENC_COLS * ENC_ROWS);
    float *z = malloc(sizeof(float) * ENC_COLS * ENC_ROWS), imx[ENC_COLS];
    uint8_t *b = malloc((size_t)ENC_COLS * 2);
    for (int dist = 0; dist < 2; dist++) {
        enc_rows(dist, x, imx);
        for (size_t ti = 0; ti < sizeof RTN / sizeof RTN[0]; ti++)
            for (int wi = 0; wi < 2; wi++) {
                const rtn_spec *sp = &RTN[ti];
                const char *tn = grok_type_get_traits(sp->type)->name;
                for (int r = 0; r < ENC_ROWS; r++) {
                    grok_from_f32_weighted(sp->type, x + r * ENC_COLS, b, ENC_COLS, wi ? imx : NULL);
                    grok_kernels_get(sp->type)->to_f32(b, y + r * ENC_COLS, ENC_COLS);
                    rtn_round(sp, x + r * ENC_COLS, z + r * ENC_COLS, ENC_COLS);
                }
                /* the error grok minimises: imatrix-weighted with one, plain without */
                const double e = enc_rel_err(x, y, wi ? imx : NULL), ref = enc_rel_err(x, z, wi ? imx : NULL);
                printf("%-7s %s %-10s error %.5f, rounding to nearest %.5f (%.3f)\n", tn,
                       dist ? "heavy" : "gauss", wi ? "imatrix" : "no imatrix", e, ref, e / ref);
                const double bound = wi ? sp->weighted : sp->plain;
                CHECK(e <= bound * ref * (1 + 1e-6),
                      "%s, rows %d, %s: error %.5g above %.2f x rounding to nearest's %.5g", tn, dist,
                      wi ? "imatrix" : "no imatrix", e, bound, ref);
            }
    }
    free(x), free(y), free(z), free(b);
}

/* Rows the search must survive: zeros, a constant, one spike among tiny
 * values, values near the f16 limits of the scale. */
static void test_awkward(void) {
    enum { N = 512 };
    float x[N], y[N], imx[N];
    uint8_t b[N * 2];
    for (int i = 0; i < N; i++) {
        const int blk = i / 256, j = i % 256;
        x[i] = blk == 0 ? (j < 64     ? 0.0f
                           : j < 128  ? 0.25f
                           : j == 200 ? 7.0f
                                      : 1e-4f * (float)(j % 7 - 3))
                        : 1e-7f * (float)(j % 5 - 2);
        imx[i] = (float)(1 + j % 3);
    }
    for (int ti = 0; ti < N_TYPES; ti++) {
        const grok_type t = TYPES[ti];
        const char *tn = grok_type_get_traits(t)->name;
        for (int wi = 0; wi < 2; wi++) {
            grok_from_f32_weighted(t, x, b, N, wi ? imx : NULL);
            grok_kernels_get(t)->to_f32(b, y, N);
            int bad = 0, zeros = 0;
            const int64_t blk = grok_type_get_traits(t)->block_size;
            for (int i = 0; i < N; i++) bad += !isfinite(y[i]);
            for (int i = 0; i < 64; i++) zeros += y[i] == 0.0f;
            CHECK(bad == 0, "%s: %d values not finite", tn, bad);
            /* an all-zero block of the type's own size decodes to zeros */
            if (blk <= 64) CHECK(zeros == 64, "%s: %d of 64 zeros decode to zero", tn, zeros);
            CHECK(fabsf(y[200] - 7.0f) < 0.25f * 7.0f, "%s: the spike 7 decodes to %g", tn, y[200]);
        }
    }
}

int main(void) {
    const char *src = getenv("GROK_SRC");
    char fixture[1024];
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/ggml_quant_errors.txt", src ? src : "..");
    test_against_ggml(fixture);
    test_against_rtn();
    test_awkward();
    return check_summary("test_encoders");
}
