/*
 * enc_rows.h - the rows and importance weights on which test_encoders.c
 * compares grok's weighted encoders with ggml's quantize_chunk, whose
 * errors on exactly these rows are stored in tests/fixtures/ggml_quant_errors.txt
 * (a driver outside the repository, linked against ggml, includes this
 * header to produce them; docs/quantization.md says how).
 */
#ifndef GROK_TEST_ENC_ROWS_H
#define GROK_TEST_ENC_ROWS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/rng.h"

enum { ENC_COLS = 4096, ENC_ROWS = 16 };

/* dist 0: Gaussian; 1: heavy-tailed (a Gaussian over the square root of
 * another's magnitude, as weight matrices' outliers); both scaled by 0.02.
 * imx: a column importance spanning 10^3, as activations' mean squares do. */
static inline void enc_rows(int dist, float *x, float *imx) {
    grok_rng r = {(uint64_t)(101 + dist)};
    for (int64_t i = 0; i < (int64_t)ENC_COLS * ENC_ROWS; i++) {
        double g = grok_rng_normal(&r);
        if (dist == 1) g = g / sqrt(fabs((double)grok_rng_normal(&r)) + 0.05) * 0.3;
        x[i] = (float)(0.02 * g);
    }
    for (int64_t c = 0; c < ENC_COLS; c++) imx[c] = powf(10.0f, 3.0f * (float)grok_rng_uniform(&r));
}

/* The relative error of y against x: sum w (x - y)^2 / sum w x^2, w the
 * column importance or 1. */
static inline double enc_rel_err(const float *x, const float *y, const float *w) {
    double e = 0, s = 0;
    for (int64_t r = 0; r < ENC_ROWS; r++)
        for (int64_t c = 0; c < ENC_COLS; c++) {
            const double d = (double)x[r * ENC_COLS + c] - y[r * ENC_COLS + c], wc = w ? w[c] : 1.0;
            e += wc * d * d, s += wc * (double)x[r * ENC_COLS + c] * x[r * ENC_COLS + c];
        }
    return e / s;
}

/* ggml's error for (type name, dist, imatrix) from a fixture of lines
 * "TYPE DIST WEIGHTS ERROR" (WEIGHTS imatrix or none), or -1. */
static inline double enc_ggml_err(const char *path, const char *tn, int dist, int imx) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256], name[32], w[32];
    int d;
    double e, found = -1;
    while (fgets(line, sizeof line, f))
        if (line[0] != '#' && sscanf(line, "%31s %d %31s %lf", name, &d, w, &e) == 4 && strcmp(name, tn) == 0 &&
            d == dist && (strcmp(w, "imatrix") == 0) == (imx != 0))
            found = e;
    fclose(f);
    return found;
}

#endif
