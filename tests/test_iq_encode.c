/*
 * test_iq_encode.c - the i-quant encoders (src/kernels/iq_encode.c): on the
 * rows of enc_rows.h, each type's round trip through grok's decoders loses
 * no more than ggml's quantize_chunk lost on the same rows (its errors in
 * tests/fixtures/ggml_iq_errors.txt; imatrix-weighted for all seven types,
 * plain for IQ3_XXS and IQ3_S, which ggml also encodes without one); the
 * signs decode as the format allows (all of x's where it stores all, at
 * most one wrong per 8 weights where it stores 7, and only where x has an
 * odd count of minus signs); each group's codebook point is, in all but
 * a few groups, the best of the whole codebook at the stored scale (a
 * brute-force check of the neighbour tables: at least 96 % of groups); first use from two threads
 * at once gives the same bytes; from_f32 is the encoder without weights;
 * and awkward rows (zeros, NaN, huge and tiny values) decode finite.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "enc_rows.h"
#include "kernels/iquants.h"

static const grok_type IQ[] = {GROK_TYPE_IQ2_XXS, GROK_TYPE_IQ2_XS, GROK_TYPE_IQ2_S, GROK_TYPE_IQ3_XXS,
                               GROK_TYPE_IQ3_S,   GROK_TYPE_IQ1_S,  GROK_TYPE_IQ1_M};
#define N_IQ (int)(sizeof IQ / sizeof IQ[0])

static bool iq1(grok_type t) { return t == GROK_TYPE_IQ1_S || t == GROK_TYPE_IQ1_M; }
static bool sign7(grok_type t) {
    return t == GROK_TYPE_IQ2_XXS || t == GROK_TYPE_IQ2_XS || t == GROK_TYPE_IQ3_XXS;
}

/* ---- two threads at first use ---- */

typedef struct {
    const float *x, *imx;
    uint8_t out[110 * 16];
} enc_arg;

static void *enc_thread(void *p) {
    enc_arg *a = p;
    grok_iq_from_f32_weighted(GROK_TYPE_IQ2_S, a->x, a->out, 16 * QK_K, a->imx);
    return NULL;
}

static void test_threads(const float *x, const float *imx) {
    enc_arg a = {x, imx, {0}}, b = {x, imx, {0}};
    pthread_t ta, tb;
    const bool started_a = pthread_create(&ta, NULL, enc_thread, &a) == 0;
    const bool started_b = pthread_create(&tb, NULL, enc_thread, &b) == 0;
    if (started_a) pthread_join(ta, NULL);
    if (started_b) pthread_join(tb, NULL);
    CHECK(started_a && started_b, "threads start");
    if (!started_a || !started_b) return;
    CHECK(memcmp(a.out, b.out, 82 * 16) == 0, "iq2_s: two threads at first use write the same bytes");
    CHECK(grok_iq_encoder_ready(), "the neighbour tables are built");
}

/* ---- against ggml ---- */

/* The group's codebook and its length, for the brute-force check. */
static const void *grid_of(grok_type t, int *n, int *k) {
    switch (t) {
    case GROK_TYPE_IQ2_XXS: *n = 256, *k = 8; return grok_iq2xxs_grid;
    case GROK_TYPE_IQ2_XS: *n = 512, *k = 8; return grok_iq2xs_grid;
    case GROK_TYPE_IQ2_S: *n = 1024, *k = 8; return grok_iq2s_grid;
    case GROK_TYPE_IQ3_XXS: *n = 256, *k = 4; return grok_iq3xxs_grid;
    case GROK_TYPE_IQ3_S: *n = 512, *k = 4; return grok_iq3s_grid;
    default: *n = 2048, *k = 8; return grok_iq1s_grid;
    }
}

/* Per group of one encoded row: whether some other codebook point, with
 * the same signs (IQ1: the same offset) and scale, has a smaller weighted
 * error. Returns the number of such groups; *groups counts them all. */
static int64_t worse_groups(grok_type t, const uint8_t *row, const float *x, const float *imx,
                            int64_t *groups) {
    int n, k;
    const void *grid = grid_of(t, &n, &k);
    const float f = grok_iq_factor(t);
    int64_t worse = 0;
    for (int64_t bi = 0; bi < ENC_COLS / QK_K; bi++) {
        grok_iq_block b;
        grok_iq_unpack(t, row + bi * grok_iq_block_bytes(t), &b);
        for (int g0 = 0; g0 < QK_K; g0 += k) {
            const double step = (double)b.d * b.ls[g0 / 16] * f;
            const float *xg = x + bi * QK_K + g0;
            const float *wg = imx + bi * QK_K + g0;
            double cur = 0, best = INFINITY;
            for (int j = 0; j < k; j++) cur += wg[j] * pow(xg[j] - step * b.w[g0 + j], 2);
            for (int p = 0; p < n; p++) {
                double e = 0;
                for (int j = 0; j < k; j++) {
                    const int w = b.w[g0 + j];
                    int v;
                    if (iq1(t)) {
                        const int off = ((w % 8) + 8) % 8 == 1 ? 1 : -1;
                        v = 8 * ((const int8_t *)grid)[p * k + j] + off;
                    } else {
                        const int m = ((const uint8_t *)grid)[p * k + j];
                        v = w < 0 ? -m : m;
                    }
                    e += wg[j] * pow(xg[j] - step * v, 2);
                }
                if (e < best) best = e;
            }
            worse += cur > best * (1 + 1e-6) + 1e-30;
            (*groups)++;
        }
    }
    return worse;
}

static void test_against_ggml(const char *fixture) {
    float *x = malloc(sizeof(float) * ENC_COLS * ENC_ROWS), *y = malloc(sizeof(float) * ENC_COLS * ENC_ROWS);
    float imx[ENC_COLS], ones[ENC_COLS], *imrow = malloc(sizeof(float) * ENC_COLS * ENC_ROWS);
    uint8_t *b = malloc((size_t)ENC_COLS * ENC_ROWS);
    for (int c = 0; c < ENC_COLS; c++) ones[c] = 1;
    for (int dist = 0; dist < 2; dist++) {
        enc_rows(dist, x, imx);
        if (dist == 0) {
            for (int r = 0; r < ENC_ROWS; r++) memcpy(imrow + r * ENC_COLS, imx, sizeof imx);
            test_threads(x, imrow);
        }
        for (int wi = 0; wi < 2; wi++)
            for (int ti = 0; ti < N_IQ; ti++) {
                const grok_type t = IQ[ti];
                const char *tn = grok_type_get_traits(t)->name;
                const grok_type_kernels *k = grok_kernels_get(t);
                CHECK(grok_type_can_encode(t) && grok_type_takes_imatrix(t), "%s: weighted encoder", tn);
                const size_t rs = (size_t)grok_type_row_size(t, ENC_COLS);
                int64_t worse = 0, groups = 0, wrong_sign = 0, bad_sign = 0;
                for (int r = 0; r < ENC_ROWS; r++) {
                    const float *xr = x + r * ENC_COLS;
                    grok_from_f32_weighted(t, xr, b + r * rs, ENC_COLS, wi ? imx : NULL);
                    k->to_f32(b + r * rs, y + r * ENC_COLS, ENC_COLS);
                    if (r < 2) worse += worse_groups(t, b + r * rs, xr, wi ? imx : ones, &groups);
                    if (iq1(t)) continue;
                    for (int o = 0; o < ENC_COLS; o += 8) {
                        int neg = 0, wrong = 0;
                        for (int j = o; j < o + 8; j++) {
                            const float yv = y[r * ENC_COLS + j];
                            neg += xr[j] < 0;
                            wrong += xr[j] != 0 && yv != 0 && (xr[j] < 0) != (yv < 0);
                        }
                        wrong_sign += wrong;
                        bad_sign += sign7(t) ? wrong > 1 || (wrong == 1 && neg % 2 == 0) : wrong > 0;
                    }
                }
                CHECK(bad_sign == 0, "%s: %lld groups of 8 with signs the format did not force wrong", tn,
                      (long long)bad_sign);
                /* the neighbour tables miss the codebook's best point rarely */
                CHECK(worse * 25 <= groups, "%s: %lld of %lld groups not on their best codebook point", tn,
                      (long long)worse, (long long)groups);
                if (!wi) { /* from_f32 is the encoder without an imatrix */
                    uint8_t *b2 = malloc(rs);
                    k->from_f32(x, b2, ENC_COLS);
                    CHECK(memcmp(b2, b, rs) == 0, "%s: from_f32 = grok_from_f32_weighted without imatrix",
                          tn);
                    free(b2);
                }
                const double e = enc_rel_err(x, y, wi ? imx : NULL), g = enc_ggml_err(fixture, tn, dist, wi);
                printf("%-7s %s %-10s error %.5f, ggml %.5f (%.3f); %lld wrong signs, %lld/%lld groups off "
                       "best\n",
                       tn, dist ? "heavy" : "gauss", wi ? "imatrix" : "no imatrix", e, g > 0 ? g : NAN,
                       g > 0 ? e / g : NAN, (long long)wrong_sign, (long long)worse, (long long)groups);
                if (!wi && iq1(t)) continue;
                if (!wi && (t == GROK_TYPE_IQ2_XXS || t == GROK_TYPE_IQ2_XS || t == GROK_TYPE_IQ2_S))
                    continue;
                CHECK(g > 0, "%s: no ggml error stored in %s", tn, fixture);
                CHECK(e <= g, "%s, rows %d, %s: error %.5g above ggml's %.5g", tn, dist,
                      wi ? "imatrix" : "no imatrix", e, g);
            }
    }
    free(x), free(y), free(b), free(imrow);
}

/* Rows the search must survive: zeros, NaN and infinities, huge and tiny
 * values, an imatrix with zeros. */
static void test_awkward(void) {
    enum { N = 1024 };
    float x[N], y[N], imx[N];
    uint8_t b[N];
    for (int i = 0; i < N; i++) {
        const int blk = i / 256, j = i % 256;
        x[i] = blk == 0   ? 0.0f
               : blk == 1 ? (j == 3   ? NAN
                             : j == 9 ? INFINITY
                                      : 0.01f * (float)(j % 9 - 4))
               : blk == 2 ? 1e6f * (float)(j % 7 - 3)
                          : 1e-9f * (float)(j % 5 - 2);
        imx[i] = j % 4 == 0 ? 0.0f : 1.0f;
    }
    for (int ti = 0; ti < N_IQ; ti++) {
        const grok_type t = IQ[ti];
        const char *tn = grok_type_get_traits(t)->name;
        for (int wi = 0; wi < 2; wi++) {
            grok_iq_from_f32_weighted(t, x, b, N, wi ? imx : NULL);
            grok_kernels_get(t)->to_f32(b, y, N);
            int nonfinite = 0, nonzero0 = 0;
            double e2 = 0, s2 = 0;
            for (int i = 0; i < N; i++) {
                nonfinite += !isfinite(y[i]);
                if (i < 256) nonzero0 += y[i] != 0;
                if (i >= 512 && i < 768) e2 += pow(x[i] - y[i], 2), s2 += pow(x[i], 2);
            }
            CHECK(nonfinite == 0, "%s: %d non-finite values decoded", tn, nonfinite);
            CHECK(nonzero0 == 0, "%s: a zero block decodes to %d non-zero values", tn, nonzero0);
            CHECK(e2 < 0.5 * s2, "%s: values of 1e6 lose %.3g of their energy", tn, e2 / s2);
        }
    }
}

int main(void) {
    const char *src = getenv("GROK_SRC");
    char fixture[1024];
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/ggml_iq_errors.txt", src ? src : "..");
    test_against_ggml(fixture);
    test_awkward();
    return check_summary("test_iq_encode");
}
