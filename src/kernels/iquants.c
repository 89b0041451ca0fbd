/*
 * iquants.c - scalar reference kernels of the i-quant types IQ2_XXS,
 * IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M (layouts in iquants.h):
 * decoding to f32 and the dot products with f32 and with 8-bit
 * activations, one token or many per weight row. These are the ground
 * truth the SIMD variants are tested against, so they favour plainness:
 * every super-block is first unpacked into its integer weights and scales
 * (grok_iq_unpack), and everything else works from that. The encoders
 * are in iq_encode.c.
 */
#include <string.h>

#include "kernels/iquants.h"

bool grok_iq_type(uint32_t type) {
    switch (type) {
    case GROK_TYPE_IQ2_XXS:
    case GROK_TYPE_IQ2_XS:
    case GROK_TYPE_IQ2_S:
    case GROK_TYPE_IQ3_XXS:
    case GROK_TYPE_IQ3_S:
    case GROK_TYPE_IQ1_S:
    case GROK_TYPE_IQ1_M: return true;
    default: return false;
    }
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* w[0..n) = grid magnitudes g[0..n) with the signs of sign byte s (bit j: element j negative). */
static void signed_group(int8_t *w, const uint8_t *g, int n, unsigned s) {
    for (int j = 0; j < n; j++) w[j] = (int8_t)((s >> j) & 1 ? -(int)g[j] : (int)g[j]);
}

void grok_iq_unpack(uint32_t type, const uint8_t *p, grok_iq_block *b) {
    switch (type) {
    case GROK_TYPE_IQ2_XXS:
        b->d = grok_fp16_to_fp32(rd16(p));
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = p + 2 + 8 * ib;
            const uint32_t aux = rd32(q + 4);
            for (int l = 0; l < 4; l++)
                signed_group(b->w + 32 * ib + 8 * l, grok_iq2xxs_grid[q[l]], 8,
                             grok_iq_ksigns[(aux >> 7 * l) & 127]);
            b->ls[2 * ib] = b->ls[2 * ib + 1] = (int8_t)(2 * (aux >> 28) + 1);
        }
        break;
    case GROK_TYPE_IQ2_XS:
        b->d = grok_fp16_to_fp32(rd16(p));
        for (int ib = 0; ib < 8; ib++) {
            for (int l = 0; l < 4; l++) {
                const uint16_t q = rd16(p + 2 + 2 * (4 * ib + l));
                signed_group(b->w + 32 * ib + 8 * l, grok_iq2xs_grid[q & 511], 8, grok_iq_ksigns[q >> 9]);
            }
            const uint8_t sc = p[66 + ib];
            b->ls[2 * ib] = (int8_t)(2 * (sc & 15) + 1), b->ls[2 * ib + 1] = (int8_t)(2 * (sc >> 4) + 1);
        }
        break;
    case GROK_TYPE_IQ2_S: {
        const uint8_t *qs = p + 2, *signs = p + 34, *qh = p + 66, *scales = p + 74;
        b->d = grok_fp16_to_fp32(rd16(p));
        for (int ib = 0; ib < 8; ib++) {
            for (int l = 0; l < 4; l++) {
                const int idx = qs[4 * ib + l] | ((qh[ib] >> (2 * l)) & 3) << 8;
                signed_group(b->w + 32 * ib + 8 * l, grok_iq2s_grid[idx], 8, signs[4 * ib + l]);
            }
            b->ls[2 * ib] = (int8_t)(2 * (scales[ib] & 15) + 1),
                      b->ls[2 * ib + 1] = (int8_t)(2 * (scales[ib] >> 4) + 1);
        }
        break;
    }
    case GROK_TYPE_IQ3_XXS: {
        const uint8_t *qs = p + 2, *ss = p + 66;
        b->d = grok_fp16_to_fp32(rd16(p));
        for (int ib = 0; ib < 8; ib++) {
            const uint32_t aux = rd32(ss + 4 * ib);
            for (int l = 0; l < 4; l++) {
                const unsigned s = grok_iq_ksigns[(aux >> 7 * l) & 127];
                int8_t *w = b->w + 32 * ib + 8 * l;
                signed_group(w, grok_iq3xxs_grid[qs[8 * ib + 2 * l]], 4, s);
                signed_group(w + 4, grok_iq3xxs_grid[qs[8 * ib + 2 * l + 1]], 4, s >> 4);
            }
            b->ls[2 * ib] = b->ls[2 * ib + 1] = (int8_t)(2 * (aux >> 28) + 1);
        }
        break;
    }
    case GROK_TYPE_IQ3_S: {
        const uint8_t *qs = p + 2, *qh = p + 66, *signs = p + 74, *scales = p + 106;
        b->d = grok_fp16_to_fp32(rd16(p));
        for (int ib = 0; ib < 8; ib++) {
            for (int k = 0; k < 8; k++) {
                const int idx = qs[8 * ib + k] | ((qh[ib] >> k) & 1) << 8;
                signed_group(b->w + 32 * ib + 4 * k, grok_iq3s_grid[idx], 4,
                             signs[4 * ib + k / 2] >> (4 * (k % 2)));
            }
            b->ls[2 * ib] = b->ls[2 * ib + 1] = (int8_t)(2 * ((scales[ib / 2] >> (4 * (ib % 2))) & 15) + 1);
        }
        break;
    }
    case GROK_TYPE_IQ1_S: {
        const uint8_t *qs = p + 2;
        b->d = grok_fp16_to_fp32(rd16(p));
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t qh = rd16(p + 34 + 2 * ib);
            const int off = qh & 0x8000 ? -1 : 1;
            for (int l = 0; l < 4; l++) {
                const int8_t *g = grok_iq1s_grid[qs[4 * ib + l] | ((qh >> (3 * l)) & 7) << 8];
                for (int j = 0; j < 8; j++) b->w[32 * ib + 8 * l + j] = (int8_t)(8 * g[j] + off);
            }
            b->ls[2 * ib] = b->ls[2 * ib + 1] = (int8_t)(2 * ((qh >> 12) & 7) + 1);
        }
        break;
    }
    case GROK_TYPE_IQ1_M: {
        const uint8_t *qs = p, *qh = p + 32;
        uint16_t sc[4];
        for (int k = 0; k < 4; k++) sc[k] = rd16(p + 48 + 2 * k);
        b->d = grok_fp16_to_fp32(
            (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
        for (int ib = 0; ib < 8; ib++) {
            for (int l = 0; l < 4; l++) {
                const unsigned h =
                    qh[2 * ib + l / 2] >> (4 * (l % 2)); /* bits 0-2 index, bit 3 offset sign */
                const int8_t *g = grok_iq1s_grid[qs[4 * ib + l] | (h & 7) << 8];
                const int off = h & 8 ? -1 : 1;
                for (int j = 0; j < 8; j++) b->w[32 * ib + 8 * l + j] = (int8_t)(8 * g[j] + off);
            }
            const unsigned s = sc[ib / 2] >> (6 * (ib % 2));
            b->ls[2 * ib] = (int8_t)(2 * (s & 7) + 1), b->ls[2 * ib + 1] = (int8_t)(2 * ((s >> 3) & 7) + 1);
        }
        break;
    }
    default: memset(b, 0, sizeof *b); break;
    }
}

/* The 256 values of an unpacked super-block, each formed with ggml's
 * float operations in ggml's order: the per-group scale first, as ggml
 * computes it from s (ls * 0.5 is ggml's 0.5 + s exactly), then times the
 * grid value, the sign last (a product's rounding does not depend on the
 * operands' signs, so db * -g = -(db * g)); IQ1's grid + -1/8 is w / 8,
 * exact. */
static void iq_values(uint32_t type, const grok_iq_block *b, float *y) {
    for (int k = 0; k < QK_K / 16; k++) {
        float db;
        switch (type) {
        case GROK_TYPE_IQ3_XXS: db = b->d * ((float)b->ls[k] * 0.5f) * 0.5f; break;
        case GROK_TYPE_IQ3_S:
        case GROK_TYPE_IQ1_S:
        case GROK_TYPE_IQ1_M: db = b->d * (float)b->ls[k]; break;
        default: db = b->d * ((float)b->ls[k] * 0.5f) * 0.25f; break; /* IQ2 */
        }
        const bool iq1 = type == GROK_TYPE_IQ1_S || type == GROK_TYPE_IQ1_M;
        for (int j = 16 * k; j < 16 * k + 16; j++)
            y[j] = iq1 ? db * ((float)b->w[j] * 0.125f) : db * (float)b->w[j];
    }
}

static void iq_to_f32(uint32_t type, const void *src, float *dst, int64_t n) {
    grok_iq_block b;
    const size_t bytes = grok_iq_block_bytes(type);
    for (int64_t i = 0; i < n / QK_K; i++) {
        grok_iq_unpack(type, (const uint8_t *)src + (size_t)i * bytes, &b);
        iq_values(type, &b, dst + i * QK_K);
    }
}

static float iq_dot(uint32_t type, const void *row, const float *x, int64_t n) {
    grok_iq_block b;
    const size_t bytes = grok_iq_block_bytes(type);
    float y[QK_K], s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        grok_iq_unpack(type, (const uint8_t *)row + (size_t)i * bytes, &b);
        iq_values(type, &b, y);
        for (int j = 0; j < QK_K; j++) s += y[j] * x[i * QK_K + j];
    }
    return s;
}

/* One super-block against its 8 activation blocks: per block an exact
 * integer sum (each 16-weight half weighted by its ls), scaled by the
 * block's d; the super-block's d / F once at the end. */
static float iq_block_dot_q8a(const grok_iq_block *b, float dmul, const block_q8a *x) {
    float sa = 0;
    for (int s = 0; s < QK_K / QKA; s++) {
        int32_t lo = 0, hi = 0;
        for (int j = 0; j < 16; j++)
            lo += b->w[32 * s + j] * x[s].qs[j], hi += b->w[32 * s + 16 + j] * x[s].qs[16 + j];
        sa += x[s].d * (float)(b->ls[2 * s] * lo + b->ls[2 * s + 1] * hi);
    }
    return dmul * sa;
}

static float iq_dot_q8a(uint32_t type, const void *row, const block_q8a *x, int64_t n) {
    grok_iq_block b;
    const size_t bytes = grok_iq_block_bytes(type);
    const float f = grok_iq_factor(type);
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        grok_iq_unpack(type, (const uint8_t *)row + (size_t)i * bytes, &b);
        s += iq_block_dot_q8a(&b, b.d * f, x + i * (QK_K / QKA));
    }
    return s;
}

static void iq_dot_q8a_multi(uint32_t type, const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                             float *out) {
    grok_iq_block b;
    const size_t bytes = grok_iq_block_bytes(type);
    const float f = grok_iq_factor(type);
    for (int64_t t = 0; t < nx; t++) out[t] = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        grok_iq_unpack(type, (const uint8_t *)row + (size_t)i * bytes, &b);
        for (int64_t t = 0; t < nx; t++) out[t] += iq_block_dot_q8a(&b, b.d * f, x[t] + i * (QK_K / QKA));
    }
}

/* The tables take one function per type. */
#define IQ_FUNCS(T, NAME)                                                                                \
    static void NAME##_to_f32(const void *src, float *dst, int64_t n) { iq_to_f32(T, src, dst, n); }     \
    static float NAME##_dot(const void *row, const float *x, int64_t n) { return iq_dot(T, row, x, n); } \
    static void NAME##_from_f32(const float *src, void *dst, int64_t n) {                                \
        grok_iq_from_f32_weighted(T, src, dst, n, NULL);                                                 \
    }                                                                                                    \
    static float NAME##_dot_q8a(const void *row, const block_q8a *x, int64_t n) {                        \
        return iq_dot_q8a(T, row, x, n);                                                                 \
    }                                                                                                    \
    static void NAME##_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,  \
                                     float *out) {                                                       \
        iq_dot_q8a_multi(T, row, x, nx, n, out);                                                         \
    }
IQ_FUNCS(GROK_TYPE_IQ2_XXS, iq2_xxs)
IQ_FUNCS(GROK_TYPE_IQ2_XS, iq2_xs)
IQ_FUNCS(GROK_TYPE_IQ2_S, iq2_s)
IQ_FUNCS(GROK_TYPE_IQ3_XXS, iq3_xxs)
IQ_FUNCS(GROK_TYPE_IQ3_S, iq3_s)
IQ_FUNCS(GROK_TYPE_IQ1_S, iq1_s)
IQ_FUNCS(GROK_TYPE_IQ1_M, iq1_m)

#define IQ_ENTRY(T, NAME) [T] = {NAME##_to_f32, NAME##_from_f32, NAME##_dot}
static const grok_type_kernels KERNELS[GROK_TYPE_COUNT] = {
    IQ_ENTRY(GROK_TYPE_IQ2_XXS, iq2_xxs), IQ_ENTRY(GROK_TYPE_IQ2_XS, iq2_xs),
    IQ_ENTRY(GROK_TYPE_IQ2_S, iq2_s),     IQ_ENTRY(GROK_TYPE_IQ3_XXS, iq3_xxs),
    IQ_ENTRY(GROK_TYPE_IQ3_S, iq3_s),     IQ_ENTRY(GROK_TYPE_IQ1_S, iq1_s),
    IQ_ENTRY(GROK_TYPE_IQ1_M, iq1_m),
};
#define IQ_DOTS(T, NAME) [T] = {NAME##_dot, NAME##_dot_q8a, NAME##_dot_q8a_multi, NULL, NULL, NULL}
static const grok_dot_kernels DOTS[GROK_TYPE_COUNT] = {
    IQ_DOTS(GROK_TYPE_IQ2_XXS, iq2_xxs), IQ_DOTS(GROK_TYPE_IQ2_XS, iq2_xs), IQ_DOTS(GROK_TYPE_IQ2_S, iq2_s),
    IQ_DOTS(GROK_TYPE_IQ3_XXS, iq3_xxs), IQ_DOTS(GROK_TYPE_IQ3_S, iq3_s),   IQ_DOTS(GROK_TYPE_IQ1_S, iq1_s),
    IQ_DOTS(GROK_TYPE_IQ1_M, iq1_m),
};

const grok_type_kernels *grok_iq_kernels(uint32_t type) { return grok_iq_type(type) ? &KERNELS[type] : NULL; }
const grok_dot_kernels *grok_iq_dot_reference(uint32_t type) {
    return grok_iq_type(type) ? &DOTS[type] : NULL;
}
