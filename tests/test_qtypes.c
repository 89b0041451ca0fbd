/*
 * test_qtypes.c - the decoders of the types in src/kernels/qtypes.h against
 * ggml's: 65536 values per type of random blocks (tests/qtypes_blocks.h:
 * every byte random, f16 scales finite), decoded by grok.c and hashed
 * (FNV-1a over the f32 bits), must give the digest that ggml's
 * dequantize_row_* gave on the same blocks (llama.cpp de3ff81, taken by the
 * scratch driver docs/types.md describes). Then a few blocks worked out by
 * hand from the layouts, the type traits, and the 8-bit reference dots on
 * blocks whose products are all exact.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/qtypes.h"
#include "qtypes_blocks.h"

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

/* ggml's decoders' digests: seed 77 + the type's number, 65536 values. */
static const struct {
    const char *name;
    uint64_t digest;
} GGML_DIGESTS[] = {
    {"q4_1", 0xcd1bc0e33115a159ull},   {"q5_0", 0xc94220b69ada1228ull},  {"q5_1", 0xe65cc97d2f914912ull},
    {"q2_K", 0xddbffa3a28b7fc6full},   {"q3_K", 0x58b089e73ea15edbull},  {"iq4_nl", 0xe4516c468ff3795dull},
    {"iq4_xs", 0x3ca284e4686aaca6ull}, {"tq1_0", 0xc3bdf14b9e8db4deull}, {"tq2_0", 0xac0d8da65395adccull},
    {"mxfp4", 0xdce03de181ca4a54ull},  {"nvfp4", 0xcfef82e7ed2d04abull}, {"q1_0", 0x053e4b296a675aa5ull},
    {"q2_0", 0xcc1d30d4ffb45088ull},
};

static void test_digests(void) {
    for (size_t i = 0; i < sizeof GGML_DIGESTS / sizeof GGML_DIGESTS[0]; i++) {
        const int type = grok_type_from_name(GGML_DIGESTS[i].name);
        CHECK(type >= 0, "no type %s", GGML_DIGESTS[i].name);
        if (type < 0) continue;
        const grok_type_traits *tr = grok_type_get_traits((uint32_t)type);
        CHECK(tr->can_compute && grok_kernels_get((uint32_t)type), "%s cannot be computed", tr->name);
        const int64_t n = 65536, nb = n / tr->block_size;
        uint8_t *b = malloc((size_t)(nb * tr->type_size));
        float *y = malloc((size_t)n * sizeof(float));
        qt_random_blocks((grok_type)type, nb, 77 + (uint64_t)type, false, b);
        grok_kernels_get((uint32_t)type)->to_f32(b, y, n);
        const uint64_t h = qt_fnv1a(y, (size_t)n * sizeof(float));
        CHECK(h == GGML_DIGESTS[i].digest, "%s: decoded digest 0x%016llx, ggml's 0x%016llx", tr->name,
              (unsigned long long)h, (unsigned long long)GGML_DIGESTS[i].digest);
        free(b), free(y);
    }
}

/* ggml's numbers and sizes (ggml.h, ggml-common.h). */
static void test_traits(void) {
    const struct {
        grok_type t;
        int id;
        const char *name;
        int64_t block, bytes;
    } want[] = {{GROK_TYPE_Q4_1, 3, "q4_1", 32, 20},        {GROK_TYPE_Q5_0, 6, "q5_0", 32, 22},
                {GROK_TYPE_Q5_1, 7, "q5_1", 32, 24},        {GROK_TYPE_Q2_K, 10, "q2_K", 256, 84},
                {GROK_TYPE_Q3_K, 11, "q3_K", 256, 110},     {GROK_TYPE_IQ4_NL, 20, "iq4_nl", 32, 18},
                {GROK_TYPE_IQ4_XS, 23, "iq4_xs", 256, 136}, {GROK_TYPE_TQ1_0, 34, "tq1_0", 256, 54},
                {GROK_TYPE_TQ2_0, 35, "tq2_0", 256, 66},    {GROK_TYPE_MXFP4, 39, "mxfp4", 32, 17},
                {GROK_TYPE_NVFP4, 40, "nvfp4", 64, 36},     {GROK_TYPE_Q1_0, 41, "q1_0", 128, 18},
                {GROK_TYPE_Q2_0, 42, "q2_0", 64, 18}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const grok_type_traits *tr = grok_type_get_traits(want[i].t);
        CHECK((int)want[i].t == want[i].id && tr && strcmp(tr->name, want[i].name) == 0 &&
                  tr->block_size == want[i].block && tr->type_size == want[i].bytes && tr->can_compute,
              "traits of %s", want[i].name);
        CHECK(grok_kernels_get(want[i].t) && grok_kernels_get(want[i].t)->from_f32 == NULL,
              "%s decodes and has no encoder", want[i].name);
        CHECK(grok_type_from_name(want[i].name) == want[i].id, "name %s", want[i].name);
    }
    CHECK(GROK_TYPE_COUNT == 43, "GROK_TYPE_COUNT %d", (int)GROK_TYPE_COUNT);
}

static void put16(uint16_t *p, float f) { *p = grok_fp32_to_fp16(f); }

/* Blocks filled field by field from the layouts in qtypes.h, decoded. */
static void test_by_hand(void) {
    float y[256];
    /* Q3_K: every scale 33 (sc - 32 = 1), d = 1; value 128h + 32j + l has
     * low bits j and its hmask bit set where l is even: q = j, or j - 4 */
    {
        block_q3_K b;
        memset(&b, 0, sizeof b);
        for (int i = 0; i < 64; i++) b.qs[i] = (uint8_t)(0 | 1 << 2 | 2 << 4 | 3 << 6);
        for (int l = 0; l < 32; l += 2) b.hmask[l] = 0xff;
        for (int s = 0; s < 8; s++) b.scales[s] = 0x11;  /* low nibbles 1 */
        for (int s = 8; s < 12; s++) b.scales[s] = 0xaa; /* top bits 2: 33 = 0b100001 */
        put16(&b.d, 1.0f);
        grok_kernels_get(GROK_TYPE_Q3_K)->to_f32(&b, y, 256);
        for (int v = 0; v < 256; v++) {
            const int j = (v % 128) / 32, l = v % 32;
            CHECK(y[v] == (float)(j - (l % 2 ? 4 : 0)), "q3_K value %d: %g", v, y[v]);
        }
        for (int s = 0; s < 16; s++) CHECK(grok_q3_K_scale(b.scales, s) == 33, "q3_K scale %d", s);
    }
    /* Q2_K: sub-block s has sc = s and m = 15 - s, d = 1, dmin = 0.5; every q is 2 (0b10 in every field) */
    {
        block_q2_K b;
        memset(&b, 0xaa, sizeof b);
        for (int s = 0; s < 16; s++) b.scales[s] = (uint8_t)(s | (15 - s) << 4);
        put16(&b.d, 1.0f);
        put16(&b.dmin, 0.5f);
        grok_kernels_get(GROK_TYPE_Q2_K)->to_f32(&b, y, 256);
        for (int v = 0; v < 256; v++)
            CHECK(y[v] == 2.0f * (float)(v / 16) - 0.5f * (float)(15 - v / 16), "q2_K value %d: %g", v, y[v]);
    }
    /* TQ1_0: qs[0] holds the trits (2, 0, 1, 1, 2) as the fixed-point
     * fraction 0.20112 in base 3 = 176/243, rounded up to 256ths: 186 */
    {
        block_tq1_0 b;
        memset(&b, 0, sizeof b);
        b.qs[0] = 186;
        put16(&b.d, 2.0f);
        grok_kernels_get(GROK_TYPE_TQ1_0)->to_f32(&b, y, 256);
        const int want[5] = {2, 0, 1, 1, 2};
        for (int n = 0; n < 5; n++)
            CHECK(y[32 * n] == 2.0f * (float)(want[n] - 1), "tq1_0 trit %d: %g", n, y[32 * n]);
        CHECK(y[1] == -2.0f, "tq1_0 zero byte: %g", y[1]);
    }
    /* MXFP4: e = 128 is 2^1, halved 1; codes 15 (-6, doubled -12) and 7 (+12) */
    {
        block_mxfp4 b;
        memset(&b, 0, sizeof b);
        b.e = 128;
        b.qs[0] = 0x7f;
        grok_kernels_get(GROK_TYPE_MXFP4)->to_f32(&b, y, 32);
        CHECK(y[0] == -12.0f && y[16] == 12.0f && y[1] == 0.0f, "mxfp4: %g %g %g", y[0], y[16], y[1]);
        CHECK(grok_e8m0_half(0) == 0x1p-128f && grok_e8m0_half(1) == 0x1p-127f &&
                  grok_e8m0_half(255) == 0x1p127f,
              "e8m0");
    }
    /* NVFP4's UE4M3: 0x38 = 2^0, halved 0.5; 0x7f (NaN) 0; 0x01 = 2^-9; 0x7e = 448 */
    CHECK(grok_ue4m3_half(0x38) == 0.5f && grok_ue4m3_half(0x7f) == 0.0f && grok_ue4m3_half(1) == 0x1p-10f &&
              grok_ue4m3_half(0x7e) == 224.0f,
          "ue4m3");
    /* Q1_0: bit set +d, clear -d */
    {
        block_q1_0 b;
        memset(&b, 0, sizeof b);
        b.qs[1] = 0x81;
        put16(&b.d, 0.25f);
        grok_kernels_get(GROK_TYPE_Q1_0)->to_f32(&b, y, 128);
        CHECK(y[8] == 0.25f && y[15] == 0.25f && y[9] == -0.25f && y[0] == -0.25f, "q1_0: %g %g %g", y[8],
              y[9], y[0]);
    }
}

/* Rows whose values and products are exact (small codes, power-of-two
 * scales, integer activations): the 8-bit reference dots equal the f64
 * product of the decoded weights and the dequantized activations. */
static void test_q8a_exact(void) {
    for (size_t i = 0; i < sizeof GGML_DIGESTS / sizeof GGML_DIGESTS[0]; i++) {
        const grok_type type = (grok_type)grok_type_from_name(GGML_DIGESTS[i].name);
        const grok_type_traits *tr = grok_type_get_traits(type);
        const int64_t n = 512, nb = n / tr->block_size;
        uint8_t *b = malloc((size_t)(nb * tr->type_size));
        qt_random_blocks(type, nb, 5 + (uint64_t)type, true, b);
        int at[2];
        qt_f16_fields(type, at);
        for (int64_t k = 0; k < nb; k++) /* f16 scales: powers of two */
            for (int f = 0; f < 2; f++)
                if (at[f] >= 0) b[k * tr->type_size + at[f]] = 0, b[k * tr->type_size + at[f] + 1] &= 0xfc;
        float w[512], x[512];
        grok_kernels_get(type)->to_f32(b, w, n);
        grok_rng r = {3};
        block_q8a xq[16];
        for (int j = 0; j < n; j++) x[j] = (float)(int)(grok_rng_normal(&r) * 40);
        grok_quantize_q8a(x, xq, n);
        double want = 0, mag = 0;
        for (int j = 0; j < n; j++) {
            const double xj = (double)xq[j / 32].d * xq[j / 32].qs[j % 32];
            want += (double)w[j] * xj, mag += fabs((double)w[j] * xj);
        }
        const float got = grok_dot_reference(type)->dot_q8a(b, xq, n);
        CHECK(fabs(got - want) <= 1e-6 * mag, "%s dot_q8a %g, want %g", tr->name, got, want);
        free(b);
    }
}

int main(void) {
    test_digests();
    test_traits();
    test_by_hand();
    test_q8a_exact();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
