/*
 * test_matmul_t.c - the backward-pass products of matmul_t.c.
 *
 * grok_matmul_t (dX += dY W from W in its stored type) is checked, for
 * every type the kernels can encode and decode, against the scalar chain
 * of fused multiply-adds over the whole matrix dequantized in the test
 * (the scalar tile, fmaf): bit for bit, for 1, 2, 3 and 5 threads, in
 * every kernel mode (so every ISA variant), with row counts that are not
 * multiples of the tile, a dx that starts non-zero, and tokens computed
 * alone and in a batch; and against a double-precision sum within f32
 * rounding, so the chain itself is the right product. grok_matmul_tiles
 * (y = W x by the same chains, over the columns) the same ways, and
 * grok_matmul_tok must equal grok_matmul bit for bit (the same dots,
 * another split).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/kernels.h"
#include "util/rng.h"

static void fill(grok_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * grok_rng_normal(r);
}

static int types_checked;

static void check_type(grok_type type, grok_threadpool **pools, int n_pools) {
    const grok_type_kernels *k = grok_kernels_get(type);
    const int64_t blk = grok_type_get_traits(type)->block_size;
    const int64_t rows = 2 * GROK_MATMUL_T_ROWS + 7, cols = blk * (blk >= 256 ? 3 : 7), n_tok = 11;
    const size_t rb = (size_t)grok_type_row_size(type, cols);
    grok_rng r = {1000 + (uint64_t)type};
    float *wf = malloc(sizeof(float) * (size_t)(rows * cols));
    uint8_t *wq = malloc(rb * (size_t)rows);
    float *wd = malloc(sizeof(float) * (size_t)(rows * cols));
    float *dy = malloc(sizeof(float) * (size_t)(n_tok * (rows + 3)));
    float *dx0 = malloc(sizeof(float) * (size_t)(n_tok * (cols + 5)));
    float *ref = malloc(sizeof(float) * (size_t)(n_tok * (cols + 5)));
    float *got = malloc(sizeof(float) * (size_t)(n_tok * (cols + 5)));
    const int64_t lddy = rows + 3, lddx = cols + 5;
    fill(&r, wf, rows * cols, 1.0f);
    for (int64_t i = 0; i < rows; i++) k->from_f32(wf + i * cols, wq + (size_t)i * rb, cols);
    for (int64_t i = 0; i < rows; i++) k->to_f32(wq + (size_t)i * rb, wd + i * cols, cols);
    fill(&r, dy, n_tok * lddy, 1.0f);
    fill(&r, dx0, n_tok * lddx, 0.5f);
    memcpy(ref, dx0, sizeof(float) * (size_t)(n_tok * lddx));
    for (int64_t t = 0; t < n_tok; t++)
        grok_matmul_t_tile(GROK_ISA_SCALAR)(wd, cols, rows, dy + t * lddy, lddy, 1, ref + t * lddx, lddx, cols);
    /* the chain is the product: against double sums */
    double worst = 0;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t c = 0; c < cols; c++) {
            double s = dx0[t * lddx + c], mag = fabs(s);
            for (int64_t i = 0; i < rows; i++) {
                s += (double)dy[t * lddy + i] * wd[i * cols + c];
                mag += fabs((double)dy[t * lddy + i] * wd[i * cols + c]);
            }
            double e = fabs(s - ref[t * lddx + c]) / (mag + 1e-30);
            if (e > worst) worst = e;
        }
    CHECK(worst < 1e-5, "%s: fma chain vs double sum: relative error %.3g", grok_type_get_traits(type)->name,
          worst);
    grok_mat w = {wq, type, rows, cols, rb, NULL, {0}, GROK_ISA_DEFAULT};
    const grok_kernel_mode modes[] = {GROK_KERNELS_REFERENCE, GROK_KERNELS_EXACT, GROK_KERNELS_FAST};
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
        grok_kernels_set_mode(modes[mi]);
        for (int p = 0; p < n_pools; p++) {
            memcpy(got, dx0, sizeof(float) * (size_t)(n_tok * lddx));
            grok_matmul_t(pools[p], &w, dy, lddy, got, lddx, n_tok);
            CHECK(memcmp(got, ref, sizeof(float) * (size_t)(n_tok * lddx)) == 0,
                  "%s, mode %s, %d threads: batch differs from the reference chain",
                  grok_type_get_traits(type)->name, grok_kernel_mode_name(modes[mi]),
                  grok_threadpool_size(pools[p]));
            /* one token alone (at an odd offset) gives its batch result */
            memcpy(got, dx0, sizeof(float) * (size_t)(n_tok * lddx));
            grok_matmul_t(pools[p], &w, dy + 5 * lddy, lddy, got + 5 * lddx, lddx, 1);
            CHECK(memcmp(got + 5 * lddx, ref + 5 * lddx, sizeof(float) * (size_t)cols) == 0,
                  "%s, mode %s, %d threads: a token alone differs from its batch result",
                  grok_type_get_traits(type)->name, grok_kernel_mode_name(modes[mi]),
                  grok_threadpool_size(pools[p]));
        }
    }
    /* y = W x by chains over the columns: against the scalar chain on W^T */
    float *wt = malloc(sizeof(float) * (size_t)(rows * cols)),
          *x = malloc(sizeof(float) * (size_t)(n_tok * lddx));
    float *yr = malloc(sizeof(float) * (size_t)(n_tok * lddy)),
          *yg = malloc(sizeof(float) * (size_t)(n_tok * lddy));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = 0; c < cols; c++) wt[c * rows + i] = wd[i * cols + c];
    fill(&r, x, n_tok * lddx, 1.0f);
    memset(yr, 0, sizeof(float) * (size_t)(n_tok * lddy));
    for (int64_t t = 0; t < n_tok; t++)
        grok_matmul_t_tile(GROK_ISA_SCALAR)(wt, rows, cols, x + t * lddx, lddx, 1, yr + t * lddy, lddy, rows);
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
        grok_kernels_set_mode(modes[mi]);
        for (int p = 0; p < n_pools; p++) {
            memset(yg, 0x7f, sizeof(float) * (size_t)(n_tok * lddy));
            for (int64_t t = 0; t < n_tok; t++) memset(yg + t * lddy, 0, sizeof(float) * (size_t)rows);
            grok_matmul_tiles(pools[p], &w, x, lddx, yg, lddy, n_tok);
            bool same = true;
            for (int64_t t = 0; t < n_tok; t++)
                same &= memcmp(yg + t * lddy, yr + t * lddy, sizeof(float) * (size_t)rows) == 0;
            CHECK(same, "%s, mode %s, %d threads: matmul_tiles differs from the chain",
                  grok_type_get_traits(type)->name, grok_kernel_mode_name(modes[mi]),
                  grok_threadpool_size(pools[p]));
            grok_matmul_tiles(pools[p], &w, x + 7 * lddx, lddx, yg, lddy, 1);
            CHECK(memcmp(yg, yr + 7 * lddy, sizeof(float) * (size_t)rows) == 0,
                  "%s, mode %s, %d threads: matmul_tiles of a token alone differs",
                  grok_type_get_traits(type)->name, grok_kernel_mode_name(modes[mi]),
                  grok_threadpool_size(pools[p]));
        }
    }
    free(wt), free(x), free(yr), free(yg);
    grok_kernels_set_mode(GROK_KERNELS_FAST);
    types_checked++;
    free(wf), free(wq), free(wd), free(dy), free(dx0), free(ref), free(got);
}

int main(void) {
    grok_threadpool *pools[4] = {grok_threadpool_create(1), grok_threadpool_create(2),
                                 grok_threadpool_create(3), grok_threadpool_create(5)};
    printf("isa %s\n", grok_kernels_isa());
    for (uint32_t t = 0; t < GROK_TYPE_COUNT; t++) {
        const grok_type_kernels *k = grok_kernels_get(t);
        if (!k || !k->from_f32 || !k->to_f32 || !grok_type_get_traits(t)->can_compute) continue;
        check_type((grok_type)t, pools, 4);
    }
    CHECK(types_checked >= 8, "only %d types checked", types_checked);

    /* every ISA's tile against the scalar one, 1..4 tokens, odd widths */
    const grok_isa isas[] = {GROK_ISA_AVX2, GROK_ISA_AVX512VNNI, GROK_ISA_AVX512VBMI, GROK_ISA_NEON};
    grok_rng rt = {3};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        grok_fma_tile_fn f = grok_matmul_t_tile(isas[i]);
        if (!f) continue;
        float w[40 * 77], dy[4 * 41], a[4 * 80], b[4 * 80];
        fill(&rt, w, 40 * 77, 1.0f);
        fill(&rt, dy, 4 * 41, 1.0f);
        int n_ok = 0;
        for (int nt = 1; nt <= 4; nt++)
            for (int nc = 1; nc <= 77; nc += 7) {
                fill(&rt, a, 4 * 80, 1.0f);
                memcpy(b, a, sizeof a);
                f(w, 77, 40, dy, 41, nt, a, 80, nc);
                grok_matmul_t_tile(GROK_ISA_SCALAR)(w, 77, 40, dy, 41, nt, b, 80, nc);
                n_ok += memcmp(a, b, sizeof a) == 0;
                CHECK(memcmp(a, b, sizeof a) == 0, "%s tile, %d tokens x %d columns differs from scalar",
                      grok_isa_name(isas[i]), nt, nc);
            }
        printf("tile %s: %d shapes bit-identical to scalar\n", grok_isa_name(isas[i]), n_ok);
    }

    /* grok_matmul_tok == grok_matmul (few rows, many tokens) */
    grok_rng r = {7};
    const int64_t rows = 5, cols = 96, n_tok = 37;
    float *m = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * n_tok * cols);
    float *y1 = malloc(sizeof(float) * n_tok * rows), *y2 = malloc(sizeof(float) * n_tok * rows);
    fill(&r, m, rows * cols, 1.0f);
    fill(&r, x, n_tok * cols, 1.0f);
    grok_mat mm = {(const uint8_t *)m, GROK_TYPE_F32, rows, cols, sizeof(float) * cols, NULL, {0}, GROK_ISA_DEFAULT};
    for (int p = 0; p < 4; p++) {
        grok_matmul(pools[p], &mm, x, cols, y1, rows, n_tok);
        grok_matmul_tok(pools[p], &mm, x, cols, y2, rows, n_tok);
        CHECK(memcmp(y1, y2, sizeof(float) * n_tok * rows) == 0,
              "matmul_tok differs from matmul (%d threads)", grok_threadpool_size(pools[p]));
    }
    free(m), free(x), free(y1), free(y2);
    for (int p = 0; p < 4; p++) grok_threadpool_free(pools[p]);
    printf("types checked: %d\n", types_checked);
    return check_summary("test_matmul_t");
}
