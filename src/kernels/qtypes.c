/*
 * qtypes.c - scalar reference kernels of the types in qtypes.h (Q4_1,
 * Q5_0, Q5_1, Q2_K, Q3_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, MXFP4, NVFP4,
 * Q1_0, Q2_0): decoding to f32, bit for bit as ggml's dequantize_row_*
 * decodes, and the dot products with f32 and with 8-bit activations (one
 * token or many per weight row). Like reference.c these are the ground
 * truth the SIMD kernels are tested against, so they favour plainness:
 * every block is first unpacked into its integer codes in value order and
 * its sub-blocks' multipliers (and offsets), and all kernels work from
 * that one form. These types have decoders only (no from_f32): files of
 * them come from llama.cpp's llama-quantize.
 */
#include <stddef.h>
#include <string.h>

#include "kernels/qtypes.h"

/* A block unpacked: value j = a[j / sub] * q[j], plus b[j / sub] for the
 * types with an offset. */
typedef struct {
    int8_t q[QK_K];
    float a[16], b[16];
} qt_unpacked;

typedef struct {
    int n;       /* values per block */
    int sub;     /* values per multiplier */
    bool offset; /* b is used */
    size_t bytes;
    void (*unpack)(const uint8_t *p, qt_unpacked *u);
} qt_format;

static float f16(uint16_t h) { return grok_fp16_to_fp32(h); }

/* q's in Q4_0's order: element j < 16 from the low nibble of qs[j], j + 16
 * from the high one, each through table t (NULL: the nibble itself). */
static void nibbles(const uint8_t *qs, const int8_t *t, int8_t *q) {
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(t ? t[qs[j] & 15] : qs[j] & 15);
        q[j + 16] = (int8_t)(t ? t[qs[j] >> 4] : qs[j] >> 4);
    }
}

/* Q5_0 / Q5_1's 5-bit codes: the nibbles plus bit j of qh for element j. */
static void five_bits(const uint8_t *qs, const uint8_t *qh4, int8_t *q) {
    uint32_t qh;
    memcpy(&qh, qh4, 4); /* little-endian, as every target of this build */
    nibbles(qs, NULL, q);
    for (int j = 0; j < 32; j++) q[j] = (int8_t)(q[j] | (((qh >> j) & 1) << 4));
}

static void unpack_q4_1(const uint8_t *p, qt_unpacked *u) {
    block_q4_1 b;
    memcpy(&b, p, sizeof b);
    nibbles(b.qs, NULL, u->q);
    u->a[0] = f16(b.d), u->b[0] = f16(b.m);
}

static void unpack_q5_0(const uint8_t *p, qt_unpacked *u) {
    block_q5_0 b;
    memcpy(&b, p, sizeof b);
    five_bits(b.qs, b.qh, u->q);
    for (int j = 0; j < 32; j++) u->q[j] = (int8_t)(u->q[j] - 16);
    u->a[0] = f16(b.d);
}

static void unpack_q5_1(const uint8_t *p, qt_unpacked *u) {
    block_q5_1 b;
    memcpy(&b, p, sizeof b);
    five_bits(b.qs, b.qh, u->q);
    u->a[0] = f16(b.d), u->b[0] = f16(b.m);
}

/* ggml forms (d*sc)*q - dmin*m; b holds -(dmin*m), and x + (-y) is x - y
 * exactly, signed zeros included. */
static void unpack_q2_K(const uint8_t *p, qt_unpacked *u) {
    block_q2_K b;
    memcpy(&b, p, sizeof b);
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++)
                u->q[128 * h + 32 * j + l] = (int8_t)((b.qs[32 * h + l] >> (2 * j)) & 3);
    const float d = f16(b.d), dmin = f16(b.dmin);
    for (int s = 0; s < 16; s++)
        u->a[s] = d * (float)(b.scales[s] & 15), u->b[s] = -(dmin * (float)(b.scales[s] >> 4));
}

static void unpack_q3_K(const uint8_t *p, qt_unpacked *u) {
    block_q3_K b;
    memcpy(&b, p, sizeof b);
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                const int lo = (b.qs[32 * h + l] >> (2 * j)) & 3, hi = (b.hmask[l] >> (4 * h + j)) & 1;
                u->q[128 * h + 32 * j + l] = (int8_t)(lo - (hi ? 0 : 4));
            }
    const float d = f16(b.d);
    for (int s = 0; s < 16; s++) u->a[s] = d * (float)(grok_q3_K_scale(b.scales, s) - 32);
}

static void unpack_iq4_nl(const uint8_t *p, qt_unpacked *u) {
    block_iq4_nl b;
    memcpy(&b, p, sizeof b);
    nibbles(b.qs, GROK_KVALUES_IQ4NL, u->q);
    u->a[0] = f16(b.d);
}

static void unpack_iq4_xs(const uint8_t *p, qt_unpacked *u) {
    block_iq4_xs b;
    memcpy(&b, p, sizeof b);
    const float d = f16(b.d);
    for (int s = 0; s < 8; s++) {
        nibbles(b.qs + 16 * s, GROK_KVALUES_IQ4NL, u->q + 32 * s);
        u->a[s] = d * (float)(grok_iq4_xs_scale(&b, s) - 32);
    }
}

/* The n-th base-3 digit of a TQ1_0 byte (qtypes.h). */
static int trit(uint8_t byte, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t q = (uint8_t)(byte * pow3[n]);
    return (q * 3) >> 8;
}

static void unpack_tq1_0(const uint8_t *p, qt_unpacked *u) {
    block_tq1_0 b;
    memcpy(&b, p, sizeof b);
    for (int n = 0; n < 5; n++) {
        for (int m = 0; m < 32; m++) u->q[32 * n + m] = (int8_t)(trit(b.qs[m], n) - 1);
        for (int m = 0; m < 16; m++) u->q[160 + 16 * n + m] = (int8_t)(trit(b.qs[32 + m], n) - 1);
    }
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) u->q[240 + 4 * n + j] = (int8_t)(trit(b.qh[j], n) - 1);
    u->a[0] = f16(b.d);
}

static void unpack_tq2_0(const uint8_t *p, qt_unpacked *u) {
    block_tq2_0 b;
    memcpy(&b, p, sizeof b);
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++)
                u->q[128 * h + 32 * l + m] = (int8_t)(((b.qs[32 * h + m] >> (2 * l)) & 3) - 1);
    u->a[0] = f16(b.d);
}

static void unpack_mxfp4(const uint8_t *p, qt_unpacked *u) {
    block_mxfp4 b;
    memcpy(&b, p, sizeof b);
    nibbles(b.qs, GROK_KVALUES_FP4, u->q);
    u->a[0] = grok_e8m0_half(b.e);
}

static void unpack_nvfp4(const uint8_t *p, qt_unpacked *u) {
    block_nvfp4 b;
    memcpy(&b, p, sizeof b);
    for (int s = 0; s < 4; s++) {
        for (int j = 0; j < 8; j++) {
            u->q[16 * s + j] = GROK_KVALUES_FP4[b.qs[8 * s + j] & 15];
            u->q[16 * s + 8 + j] = GROK_KVALUES_FP4[b.qs[8 * s + j] >> 4];
        }
        u->a[s] = grok_ue4m3_half(b.d[s]);
    }
}

/* bit ? d : -d is d * (+-1) exactly (signed zeros included). */
static void unpack_q1_0(const uint8_t *p, qt_unpacked *u) {
    block_q1_0 b;
    memcpy(&b, p, sizeof b);
    for (int j = 0; j < 128; j++) u->q[j] = (int8_t)((b.qs[j / 8] >> (j % 8)) & 1 ? 1 : -1);
    u->a[0] = f16(b.d);
}

static void unpack_q2_0(const uint8_t *p, qt_unpacked *u) {
    block_q2_0 b;
    memcpy(&b, p, sizeof b);
    for (int j = 0; j < 64; j++) u->q[j] = (int8_t)(((b.qs[j / 4] >> (2 * (j % 4))) & 3) - 1);
    u->a[0] = f16(b.d);
}

static const qt_format FORMATS[GROK_TYPE_COUNT] = {
    [GROK_TYPE_Q4_1] = {32, 32, true, sizeof(block_q4_1), unpack_q4_1},
    [GROK_TYPE_Q5_0] = {32, 32, false, sizeof(block_q5_0), unpack_q5_0},
    [GROK_TYPE_Q5_1] = {32, 32, true, sizeof(block_q5_1), unpack_q5_1},
    [GROK_TYPE_Q2_K] = {256, 16, true, sizeof(block_q2_K), unpack_q2_K},
    [GROK_TYPE_Q3_K] = {256, 16, false, sizeof(block_q3_K), unpack_q3_K},
    [GROK_TYPE_IQ4_NL] = {32, 32, false, sizeof(block_iq4_nl), unpack_iq4_nl},
    [GROK_TYPE_IQ4_XS] = {256, 32, false, sizeof(block_iq4_xs), unpack_iq4_xs},
    [GROK_TYPE_TQ1_0] = {256, 256, false, sizeof(block_tq1_0), unpack_tq1_0},
    [GROK_TYPE_TQ2_0] = {256, 256, false, sizeof(block_tq2_0), unpack_tq2_0},
    [GROK_TYPE_MXFP4] = {32, 32, false, sizeof(block_mxfp4), unpack_mxfp4},
    [GROK_TYPE_NVFP4] = {64, 16, false, sizeof(block_nvfp4), unpack_nvfp4},
    [GROK_TYPE_Q1_0] = {128, 128, false, sizeof(block_q1_0), unpack_q1_0},
    [GROK_TYPE_Q2_0] = {64, 64, false, sizeof(block_q2_0), unpack_q2_0},
};

/* One block's values: a*q (+ b), in ggml's order of operations. */
static void values(const qt_format *f, const qt_unpacked *u, float *y) {
    for (int j = 0; j < f->n; j++) {
        const int s = j / f->sub;
        y[j] = u->a[s] * (float)u->q[j];
        if (f->offset) y[j] += u->b[s];
    }
}

static void qt_to_f32(const qt_format *f, const void *src, float *dst, int64_t n) {
    qt_unpacked u;
    for (int64_t b = 0; b < n / f->n; b++) {
        f->unpack((const uint8_t *)src + (size_t)b * f->bytes, &u);
        values(f, &u, dst + b * f->n);
    }
}

static float qt_dot(const qt_format *f, const void *row, const float *x, int64_t n) {
    qt_unpacked u;
    float y[QK_K], s = 0;
    for (int64_t b = 0; b < n / f->n; b++) {
        f->unpack((const uint8_t *)row + (size_t)b * f->bytes, &u);
        values(f, &u, y);
        for (int j = 0; j < f->n; j++) s += y[j] * x[b * f->n + j];
    }
    return s;
}

/* One block against its n/32 activation blocks: per part of an
 * activation block that one multiplier covers (16 or 32 values), the
 * exact integer sum of q*x, and for an offset the part's quant sum. */
static float qt_block_dot_q8a(const qt_format *f, const qt_unpacked *u, const block_q8a *x) {
    const int part = f->sub < QKA ? f->sub : QKA;
    float s = 0;
    for (int b = 0; b < f->n / QKA; b++)
        for (int h = 0; h < QKA; h += part) {
            int32_t is = 0, xs = 0;
            for (int j = h; j < h + part; j++) is += u->q[QKA * b + j] * x[b].qs[j], xs += x[b].qs[j];
            const int sb = (QKA * b + h) / f->sub;
            float v = u->a[sb] * (float)is;
            if (f->offset) v += u->b[sb] * (float)xs;
            s += x[b].d * v;
        }
    return s;
}

static float qt_dot_q8a(const qt_format *f, const void *row, const block_q8a *x, int64_t n) {
    qt_unpacked u;
    float s = 0;
    for (int64_t b = 0; b < n / f->n; b++) {
        f->unpack((const uint8_t *)row + (size_t)b * f->bytes, &u);
        s += qt_block_dot_q8a(f, &u, x + b * (f->n / QKA));
    }
    return s;
}

/* Many tokens: each block unpacked once, every token's sum taken as the
 * single-token dot takes it, so the results are its own exactly. */
static void qt_dot_q8a_multi(const qt_format *f, const void *row, const block_q8a *const *x, int64_t nx,
                             int64_t n, float *out) {
    qt_unpacked u;
    for (int64_t t = 0; t < nx; t++) out[t] = 0;
    for (int64_t b = 0; b < n / f->n; b++) {
        f->unpack((const uint8_t *)row + (size_t)b * f->bytes, &u);
        for (int64_t t = 0; t < nx; t++) out[t] += qt_block_dot_q8a(f, &u, x[t] + b * (f->n / QKA));
    }
}

/* The tables take one function per type. */
#define QT_FUNCS(T, NAME)                                                                               \
    static void NAME##_to_f32(const void *src, float *dst, int64_t n) {                                 \
        qt_to_f32(&FORMATS[T], src, dst, n);                                                            \
    }                                                                                                   \
    static float NAME##_dot(const void *row, const float *x, int64_t n) {                               \
        return qt_dot(&FORMATS[T], row, x, n);                                                          \
    }                                                                                                   \
    static float NAME##_dot_q8a(const void *row, const block_q8a *x, int64_t n) {                       \
        return qt_dot_q8a(&FORMATS[T], row, x, n);                                                      \
    }                                                                                                   \
    static void NAME##_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n, \
                                     float *out) {                                                      \
        qt_dot_q8a_multi(&FORMATS[T], row, x, nx, n, out);                                              \
    }
QT_FUNCS(GROK_TYPE_Q4_1, q4_1)
QT_FUNCS(GROK_TYPE_Q5_0, q5_0)
QT_FUNCS(GROK_TYPE_Q5_1, q5_1)
QT_FUNCS(GROK_TYPE_Q2_K, q2_K)
QT_FUNCS(GROK_TYPE_Q3_K, q3_K)
QT_FUNCS(GROK_TYPE_IQ4_NL, iq4_nl)
QT_FUNCS(GROK_TYPE_IQ4_XS, iq4_xs)
QT_FUNCS(GROK_TYPE_TQ1_0, tq1_0)
QT_FUNCS(GROK_TYPE_TQ2_0, tq2_0)
QT_FUNCS(GROK_TYPE_MXFP4, mxfp4)
QT_FUNCS(GROK_TYPE_NVFP4, nvfp4)
QT_FUNCS(GROK_TYPE_Q1_0, q1_0)
QT_FUNCS(GROK_TYPE_Q2_0, q2_0)

#define QT_ENTRY(T, NAME) [T] = {NAME##_to_f32, NULL, NAME##_dot}
static const grok_type_kernels KERNELS[GROK_TYPE_COUNT] = {
    QT_ENTRY(GROK_TYPE_Q4_1, q4_1),     QT_ENTRY(GROK_TYPE_Q5_0, q5_0),   QT_ENTRY(GROK_TYPE_Q5_1, q5_1),
    QT_ENTRY(GROK_TYPE_Q2_K, q2_K),     QT_ENTRY(GROK_TYPE_Q3_K, q3_K),   QT_ENTRY(GROK_TYPE_IQ4_NL, iq4_nl),
    QT_ENTRY(GROK_TYPE_IQ4_XS, iq4_xs), QT_ENTRY(GROK_TYPE_TQ1_0, tq1_0), QT_ENTRY(GROK_TYPE_TQ2_0, tq2_0),
    QT_ENTRY(GROK_TYPE_MXFP4, mxfp4),   QT_ENTRY(GROK_TYPE_NVFP4, nvfp4), QT_ENTRY(GROK_TYPE_Q1_0, q1_0),
    QT_ENTRY(GROK_TYPE_Q2_0, q2_0),
};

#define QT_DOTS(T, NAME) \
    [T] = {.dot_f32 = NAME##_dot, .dot_q8a = NAME##_dot_q8a, .dot_q8a_multi = NAME##_dot_q8a_multi}
static const grok_dot_kernels DOTS[GROK_TYPE_COUNT] = {
    QT_DOTS(GROK_TYPE_Q4_1, q4_1),     QT_DOTS(GROK_TYPE_Q5_0, q5_0),   QT_DOTS(GROK_TYPE_Q5_1, q5_1),
    QT_DOTS(GROK_TYPE_Q2_K, q2_K),     QT_DOTS(GROK_TYPE_Q3_K, q3_K),   QT_DOTS(GROK_TYPE_IQ4_NL, iq4_nl),
    QT_DOTS(GROK_TYPE_IQ4_XS, iq4_xs), QT_DOTS(GROK_TYPE_TQ1_0, tq1_0), QT_DOTS(GROK_TYPE_TQ2_0, tq2_0),
    QT_DOTS(GROK_TYPE_MXFP4, mxfp4),   QT_DOTS(GROK_TYPE_NVFP4, nvfp4), QT_DOTS(GROK_TYPE_Q1_0, q1_0),
    QT_DOTS(GROK_TYPE_Q2_0, q2_0),
};

const grok_type_kernels *grok_qtypes_kernels(uint32_t type) {
    if (type >= GROK_TYPE_COUNT || KERNELS[type].dot_f32 == NULL) return NULL;
    return &KERNELS[type];
}

const grok_dot_kernels *grok_qtypes_dot_reference(uint32_t type) {
    if (type >= GROK_TYPE_COUNT || DOTS[type].dot_f32 == NULL) return NULL;
    return &DOTS[type];
}
