/*
 * kernels.h - the numeric kernels of libgrok (internal).
 *
 * Weights stay in their file type and are read where they lie; kernels
 * turn rows of any computable type into f32 on the fly. Each type has a
 * scalar reference implementation here; faster variants (SIMD, quantized
 * activations) plug in behind the same table and are tested against it.
 */
#ifndef GROK_KERNELS_H
#define GROK_KERNELS_H

#include <stdint.h>
#include <stddef.h>

#include "grok.h"

#define QK8_0 32
typedef struct {
    uint16_t d; /* f16 scale */
    int8_t qs[QK8_0];
} block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must match ggml's layout");

float grok_fp16_to_fp32(uint16_t h);
uint16_t grok_fp32_to_fp16(float f); /* round to nearest even */
float grok_bf16_to_fp32(uint16_t h);
uint16_t grok_fp32_to_bf16(float f); /* round to nearest even, NaN kept quiet */

/* Per-type kernels. Rows hold n elements (a multiple of the block size). */
typedef struct {
    /* dst[0..n) = the values of the row */
    void (*to_f32)(const void *src, float *dst, int64_t n);
    /* dst = the row encoded from src (ggml's reference rounding) */
    void (*from_f32)(const float *src, void *dst, int64_t n);
    /* sum_i row[i] * x[i], x in f32 */
    float (*dot_f32)(const void *row, const float *x, int64_t n);
} grok_type_kernels;

/* NULL for types without kernels. */
const grok_type_kernels *grok_kernels_get(uint32_t type);

/* A weight matrix as stored: rows of cols elements, each row row_bytes
 * long and contiguous (ggml's ne[0] = cols, ne[1] = rows). */
typedef struct {
    const uint8_t *data;
    grok_type type;
    int64_t rows;
    int64_t cols;
    size_t row_bytes;
} grok_mat;

/* Y[t][r] = sum_c W[r][c] * X[t][c] for t < n_tok, r < W->rows.
 * X is [n_tok][ldx] (ldx >= cols), Y is [n_tok][ldy]. Rows are split across
 * the pool's threads; each weight row is read once for all tokens. */
void grok_matmul(grok_threadpool *pool, const grok_mat *w, const float *x, int64_t ldx,
                 float *y, int64_t ldy, int64_t n_tok);

#endif
