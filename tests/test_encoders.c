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

static const grok_type TYPES[] = {GROK_TYPE_Q4_0, GROK_TYPE_Q2_K, GROK_TYPE_Q3_K, GROK_TYPE_Q4_1,   GROK_TYPE_Q5_0,
                                  GROK_TYPE_Q5_1, GROK_TYPE_IQ4_NL, GROK_TYPE_IQ4_XS, GROK_TYPE_Q4_K,
                                  GROK_TYPE_Q5_K, GROK_TYPE_Q6_K};
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
                CHECK(e <= g * (1 + 1e-7), "%s, rows %d, %s: error %.5g above ggml's %.5g", tn, dist, wi ? "imatrix" : "no imatrix",
                      e, g);
                printf("%-7s %s %-10s error %.5f, ggml %.5f (%.3f)\n", tn, dist ? "heavy" : "gauss",
                       wi ? "imatrix" : "no imatrix", e, g, e / g);
            }
    }
    free(x), free(y), free(b);
}

/* Rows the search must survive: zeros, a constant, one spike among tiny
 * values, values near the f16 limits of the scale. */
static void test_awkward(void) {
    enum { N = 512 };
    float x[N], y[N], imx[N];
    uint8_t b[N * 2];
    for (int i = 0; i < N; i++) {
        const int blk = i / 256, j = i % 256;
        x[i] = blk == 0 ? (j < 64 ? 0.0f : j < 128 ? 0.25f : j == 200 ? 7.0f : 1e-4f * (float)(j % 7 - 3))
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
    test_awkward();
    return check_summary("test_encoders");
}
