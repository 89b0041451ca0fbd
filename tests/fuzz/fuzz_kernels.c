/*
 * fuzz_kernels.c - every dot-product kernel of every variant this CPU has
 * (scalar reference, AVX2, AVX-512 VNNI) on arbitrary weight bytes of
 * every computable type and arbitrary activations, NaN and Inf included:
 * a model file's bytes reach these kernels unchecked, so none may have
 * undefined behaviour on any of them. Checked besides: the activation
 * quantizer's variants give the same bytes on any input, a token's
 * batched (multi, packed) result equals its own single-token one bit for
 * bit whatever else is in the batch, and the 16-row packed tile equals
 * the 8-row one.
 */
#include <math.h>

#include "fuzz.h"
#include "kernels/kernels.h"

#define MAX_TOK 4
#define ROWS GROK_PACK_ROWS

static uint32_t g_types[GROK_TYPE_COUNT];
static int g_n_types;

typedef struct {
    const char *name;
    void (*get)(uint32_t, grok_dot_kernels *);
    bool ok;
} variant;
static variant g_var[4];

static void get_ref(uint32_t t, grok_dot_kernels *k) { *k = *grok_dot_reference(t); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    for (uint32_t t = 0; t < GROK_TYPE_COUNT; t++)
        if (grok_kernels_get(t) && grok_dot_reference(t)) g_types[g_n_types++] = t;
    const grok_cpu_features *c = grok_cpu();
    g_var[0] = (variant){"reference", get_ref, true};
    g_var[1] = (variant){"avx2", grok_dot_avx2, c->avx2 && c->fma && c->f16c};
    g_var[2] = (variant){"avx512", grok_dot_avx512,
                         g_var[1].ok && c->avx512f && c->avx512bw && c->avx512vl && c->avx512vnni};
    g_var[3] = (variant){"avx512vbmi", grok_dot_avx512vbmi, g_var[2].ok && c->avx512vbmi};
    /* Encode one row of every type once here: the i-quant encoders build
     * their neighbour tables on first use (seconds under ASan on a loaded
     * machine), which would otherwise land in the first unit that picks such
     * a type and be reported as a timeout. */
    for (int i = 0; i < g_n_types; i++) {
        const grok_type_kernels *tk = grok_kernels_get(g_types[i]);
        if (!tk->from_f32) continue;
        const int64_t n = grok_type_get_traits(g_types[i])->block_size;
        float *x = calloc((size_t)n, sizeof *x);
        void *enc = malloc((size_t)grok_type_row_size(g_types[i], n));
        if (x && enc) tk->from_f32(x, enc, n);
        free(x);
        free(enc);
    }
    return 0;
}

static bool same(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

/* Fills dst[0..n) from the input, over and over (zeros when it is empty). */
static void fill(uint8_t *dst, size_t n, fuzz_bytes *in) {
    for (size_t i = 0; i < n; i++) dst[i] = in->n ? fuzz_take_u8(in) : 0;
}

static void check_quantizer(const float *x, int64_t n) {
    const int64_t nb = n / QKA;
    block_q8a *a = calloc((size_t)nb, sizeof *a), *b = calloc((size_t)nb, sizeof *b);
    grok_quantize_q8a_ref(x, a, n);
    if (g_var[1].ok) {
        grok_quantize_q8a_avx2(x, b, n);
        for (int64_t k = 0; k < nb; k++)
            FUZZ_CHECK(memcmp(&a[k], &b[k], sizeof a[k]) == 0, "avx2 quantizer differs in block %lld",
                       (long long)k);
    }
    grok_quantize_q8a_neon(x, b, n); /* the scalar one off aarch64, the NEON one on it */
    for (int64_t k = 0; k < nb; k++)
        FUZZ_CHECK(memcmp(&a[k], &b[k], sizeof a[k]) == 0, "neon quantizer differs in block %lld",
                   (long long)k);
    free(a);
    free(b);
}

static void run_variant(const variant *v, uint32_t type, const uint8_t *w, size_t rb, int64_t n,
                        const float *x, int nx, block_q8a *const *xq) {
    grok_dot_kernels k = {0};
    v->get(type, &k);
    volatile float sink = 0;
    const int64_t nb = n / QKA;
    for (int r = 0; r < ROWS; r++)
        for (int t = 0; t < nx && k.dot_f32; t++) sink += k.dot_f32(w + (size_t)r * rb, x + (size_t)t * n, n);
    if (!k.dot_q8a) return;
    float single[ROWS][MAX_TOK];
    for (int r = 0; r < ROWS; r++)
        for (int t = 0; t < nx; t++) single[r][t] = k.dot_q8a(w + (size_t)r * rb, xq[t], n);
    if (k.dot_q8a_multi) {
        block_q8a *xm[MAX_TOK];
        for (int t = 0; t < nx; t++) {
            xm[t] = malloc((size_t)nb * sizeof *xm[t]);
            memcpy(xm[t], xq[t], (size_t)nb * sizeof *xm[t]);
            if (k.multi_prep) k.multi_prep(xm[t], nb);
        }
        for (int r = 0; r < ROWS; r++) {
            float out[MAX_TOK];
            k.dot_q8a_multi(w + (size_t)r * rb, (const block_q8a *const *)xm, nx, n, out);
            for (int t = 0; t < nx; t++)
                FUZZ_CHECK(same(out[t], single[r][t]), "%s %s multi row %d tok %d: %.9g vs single %.9g",
                           v->name, grok_type_get_traits(type)->name, r, t, out[t], single[r][t]);
        }
        for (int t = 0; t < nx; t++) free(xm[t]);
    }
    if (k.dot_x8 && grok_pack_x8_type((grok_type)type)) {
        uint8_t *g = malloc(2 * ROWS * rb);
        grok_pack_x8((grok_type)type, w, rb, n, g);
        memcpy(g + ROWS * rb, g, ROWS * rb);
        float all[MAX_TOK * ROWS], one[ROWS];
        k.dot_x8(g, (const block_q8a *const *)xq, nx, n, all);
        for (int t = 0; t < nx; t++) {
            k.dot_x8(g, (const block_q8a *const *)xq + t, 1, n, one);
            for (int r = 0; r < ROWS; r++)
                FUZZ_CHECK(same(all[t * ROWS + r], one[r]),
                           "%s %s x8 row %d tok %d: %.9g in a batch, %.9g alone", v->name,
                           grok_type_get_traits(type)->name, r, t, all[t * ROWS + r], one[r]);
        }
        if (k.dot_x16) {
            float o16[MAX_TOK * 2 * ROWS];
            k.dot_x16(g, ROWS * rb, (const block_q8a *const *)xq, nx, n, o16);
            for (int t = 0; t < nx; t++)
                for (int r = 0; r < 2 * ROWS; r++)
                    FUZZ_CHECK(same(o16[t * 2 * ROWS + r], all[t * ROWS + r % ROWS]),
                               "%s %s x16 row %d tok %d: %.9g vs x8 %.9g", v->name,
                               grok_type_get_traits(type)->name, r, t, o16[t * 2 * ROWS + r],
                               all[t * ROWS + r % ROWS]);
        }
        free(g);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    fuzz_bytes in = {data, size};
    const uint32_t type = g_types[fuzz_take_u8(&in) % g_n_types];
    const grok_type_traits *tr = grok_type_get_traits(type);
    const int64_t unit = tr->block_size > QKA ? tr->block_size : QKA; /* both divide it */
    const int64_t n = unit * (1 + fuzz_take_u8(&in) % 3);
    const int nx = 1 + fuzz_take_u8(&in) % MAX_TOK;
    const size_t rb = (size_t)grok_type_row_size(type, n);
    uint8_t *w = malloc(ROWS * rb);
    float *x = malloc((size_t)nx * (size_t)n * sizeof *x);
    fill(w, ROWS * rb, &in);
    fill((uint8_t *)x, (size_t)nx * (size_t)n * sizeof *x, &in);

    const grok_type_kernels *tk = grok_kernels_get(type);
    float *vals = malloc((size_t)n * sizeof *vals);
    for (int r = 0; r < ROWS; r++) tk->to_f32(w + (size_t)r * rb, vals, n);
    if (tk->from_f32) {
        uint8_t *enc = malloc(rb);
        tk->from_f32(x, enc, n); /* any floats, NaN and Inf included */
        tk->to_f32(enc, vals, n);
        free(enc);
    }
    free(vals);

    block_q8a *xq[MAX_TOK];
    for (int t = 0; t < nx; t++) {
        check_quantizer(x + (size_t)t * n, n);
        xq[t] = malloc((size_t)(n / QKA) * sizeof *xq[t]);
        grok_quantize_q8a(x + (size_t)t * n, xq[t], n);
    }
    for (int v = 0; v < 4; v++)
        if (g_var[v].ok) run_variant(&g_var[v], type, w, rb, n, x, nx, xq);
    for (int t = 0; t < nx; t++) free(xq[t]);
    free(w);
    free(x);
    return 0;
}
