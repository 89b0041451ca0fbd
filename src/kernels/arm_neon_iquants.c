/*
 * arm_neon_iquants.c - NEON kernels (aarch64, baseline armv8-a) of the
 * i-quant weight types IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and
 * IQ1_M (layouts in iquants.h): the row dots with 8-bit activations, one
 * token or a batch, and with f32 activations. Elsewhere this file provides
 * nothing (grok_iq_dot_neon leaves the table as it is).
 *
 * Per 32 weights the grid points are loaded by index (8 or 4 bytes each),
 * the signs expanded to byte masks (vtst against the bit of each lane) and
 * applied, so each block becomes 32 signed bytes w; IQ1's are 8 * grid +-
 * 1. The integer sums of w times the activation quants per 16-weight half
 * (widening multiplies, exact) are weighted by the halves' odd scales and
 * scaled in f32 in the reference's order (per block by the activation's d,
 * per super-block by d / F), so these dots equal the scalar reference bit
 * for bit; for a batch each block is decoded once for all its tokens.
 */
#include <stddef.h>
#include <string.h>

#include "kernels/iquants.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

#define MULTI_TILE 8

static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Two groups of 8 magnitudes g0, g1 with their sign bytes s0, s1 as signed bytes. */
static inline int8x16_t signed16(uint8x16_t mag, unsigned s0, unsigned s1) {
    const uint8x16_t bits = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t m = vtstq_u8(vcombine_u8(vdup_n_u8((uint8_t)s0), vdup_n_u8((uint8_t)s1)), bits);
    return vreinterpretq_s8_u8(vsubq_u8(veorq_u8(mag, m), m)); /* m = 0xff: -mag */
}
static inline uint8x16_t grid8x2(const uint8_t (*g)[8], int a, int b) {
    return vcombine_u8(vld1_u8(g[a]), vld1_u8(g[b]));
}
static inline uint8x16_t grid4x4(const uint8_t (*g)[4], const int *i) {
    uint32_t v[4] = {rd32(g[i[0]]), rd32(g[i[1]]), rd32(g[i[2]]), rd32(g[i[3]])};
    return vreinterpretq_u8_u32(vld1q_u32(v));
}
/* IQ1: 8 * grid + off for two grid points (off: +-1 for each). */
static inline int8x16_t iq1_16(int a, int b, int neg_a, int neg_b) {
    const int8x16_t g = vcombine_s8(vld1_s8(grok_iq1s_grid[a]), vld1_s8(grok_iq1s_grid[b]));
    const int8x16_t off = vcombine_s8(vdup_n_s8(neg_a ? -1 : 1), vdup_n_s8(neg_b ? -1 : 1));
    return vaddq_s8(vshlq_n_s8(g, 3), off);
}

/* Block ib of the super-block at p: its 32 signed weights and the halves' ls. */
static inline void decode(const int T, const uint8_t *p, int ib, int8x16_t *w0, int8x16_t *w1, int *ls0,
                          int *ls1) {
    switch (T) {
    case GROK_TYPE_IQ2_XXS: {
        const uint8_t *q = p + 2 + 8 * ib;
        const uint32_t a = rd32(q + 4);
        const uint8_t *ks = grok_iq_ksigns;
        *w0 = signed16(grid8x2(grok_iq2xxs_grid, q[0], q[1]), ks[a & 127], ks[(a >> 7) & 127]);
        *w1 = signed16(grid8x2(grok_iq2xxs_grid, q[2], q[3]), ks[(a >> 14) & 127], ks[(a >> 21) & 127]);
        *ls0 = *ls1 = (int)(2 * (a >> 28) + 1);
        break;
    }
    case GROK_TYPE_IQ2_XS: {
        const uint8_t *q = p + 2 + 8 * ib;
        const uint16_t a = rd16(q), b = rd16(q + 2), c = rd16(q + 4), d = rd16(q + 6);
        const uint8_t *ks = grok_iq_ksigns;
        *w0 = signed16(grid8x2(grok_iq2xs_grid, a & 511, b & 511), ks[a >> 9], ks[b >> 9]);
        *w1 = signed16(grid8x2(grok_iq2xs_grid, c & 511, d & 511), ks[c >> 9], ks[d >> 9]);
        *ls0 = 2 * (p[66 + ib] & 15) + 1, *ls1 = 2 * (p[66 + ib] >> 4) + 1;
        break;
    }
    case GROK_TYPE_IQ2_S: {
        const uint8_t *q = p + 2 + 4 * ib, *s = p + 34 + 4 * ib;
        const int h = p[66 + ib];
        *w0 = signed16(grid8x2(grok_iq2s_grid, q[0] | (h & 3) << 8, q[1] | (h & 12) << 6), s[0], s[1]);
        *w1 = signed16(grid8x2(grok_iq2s_grid, q[2] | (h & 48) << 4, q[3] | (h & 192) << 2), s[2], s[3]);
        *ls0 = 2 * (p[74 + ib] & 15) + 1, *ls1 = 2 * (p[74 + ib] >> 4) + 1;
        break;
    }
    case GROK_TYPE_IQ3_XXS: {
        const uint8_t *q = p + 2 + 8 * ib;
        const uint32_t a = rd32(p + 66 + 4 * ib);
        const uint8_t *ks = grok_iq_ksigns;
        const int i0[4] = {q[0], q[1], q[2], q[3]}, i1[4] = {q[4], q[5], q[6], q[7]};
        *w0 = signed16(grid4x4(grok_iq3xxs_grid, i0), ks[a & 127], ks[(a >> 7) & 127]);
        *w1 = signed16(grid4x4(grok_iq3xxs_grid, i1), ks[(a >> 14) & 127], ks[(a >> 21) & 127]);
        *ls0 = *ls1 = (int)(2 * (a >> 28) + 1);
        break;
    }
    case GROK_TYPE_IQ3_S: {
        const uint8_t *q = p + 2 + 8 * ib, *s = p + 74 + 4 * ib;
        const int h = p[66 + ib];
        int idx[8];
        for (int k = 0; k < 8; k++) idx[k] = q[k] | ((h >> k) & 1) << 8;
        *w0 = signed16(grid4x4(grok_iq3s_grid, idx), s[0], s[1]);
        *w1 = signed16(grid4x4(grok_iq3s_grid, idx + 4), s[2], s[3]);
        *ls0 = *ls1 = 2 * ((p[106 + ib / 2] >> (4 * (ib % 2))) & 15) + 1;
        break;
    }
    case GROK_TYPE_IQ1_S: {
        const uint8_t *q = p + 2 + 4 * ib;
        const int h = rd16(p + 34 + 2 * ib), o = h >> 15;
        *w0 = iq1_16(q[0] | (h & 7) << 8, q[1] | (h & 0x38) << 5, o, o);
        *w1 = iq1_16(q[2] | (h & 0x1c0) << 2, q[3] | (h & 0xe00) >> 1, o, o);
        *ls0 = *ls1 = 2 * ((h >> 12) & 7) + 1;
        break;
    }
    default: { /* IQ1_M */
        const uint8_t *q = p + 4 * ib;
        const int h0 = p[32 + 2 * ib], h1 = p[32 + 2 * ib + 1];
        *w0 = iq1_16(q[0] | (h0 & 7) << 8, q[1] | (h0 & 0x70) << 4, h0 & 8, h0 & 0x80);
        *w1 = iq1_16(q[2] | (h1 & 7) << 8, q[3] | (h1 & 0x70) << 4, h1 & 8, h1 & 0x80);
        const int s = rd16(p + 48 + 2 * (ib / 2)) >> (6 * (ib % 2));
        *ls0 = 2 * (s & 7) + 1, *ls1 = 2 * ((s >> 3) & 7) + 1;
        break;
    }
    }
}

static inline float block_d(const int T, const uint8_t *p) {
    uint16_t h = rd16(p);
    if (T == GROK_TYPE_IQ1_M)
        h = (uint16_t)((rd16(p + 48) >> 12) | ((rd16(p + 50) >> 8) & 0xf0) | ((rd16(p + 52) >> 4) & 0xf00) |
                       (rd16(p + 54) & 0xf000));
    return grok_fp16_to_fp32(h);
}

/* sum of 16 int8 products */
static inline int32_t dot16(int8x16_t a, const int8_t *b) {
    const int8x16_t v = vld1q_s8(b);
    int16x8_t s = vmull_s8(vget_low_s8(a), vget_low_s8(v));
    s = vmlal_high_s8(s, a, v);
    return vaddvq_s32(vpaddlq_s16(s));
}

static void tile(const int T, const uint8_t *p, const block_q8a *const *x, int nt, int64_t n, float *out) {
    const size_t bs = grok_iq_block_bytes((uint32_t)T);
    const float f = grok_iq_factor((uint32_t)T);
    for (int t = 0; t < nt; t++) out[t] = 0;
    for (int64_t i = 0; i < n / QK_K; i++, p += bs) {
        float sa[MULTI_TILE] = {0};
        for (int ib = 0; ib < 8; ib++) {
            int8x16_t w0, w1;
            int l0, l1;
            decode(T, p, ib, &w0, &w1, &l0, &l1);
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * (QK_K / QKA) + ib;
                sa[t] += xb->d * (float)(l0 * dot16(w0, xb->qs) + l1 * dot16(w1, xb->qs + 16));
            }
        }
        const float dmul = block_d(T, p) * f;
        for (int t = 0; t < nt; t++) out[t] += dmul * sa[t];
    }
}

static float dot_f32(const int T, const uint8_t *p, const float *x, int64_t n) {
    const size_t bs = grok_iq_block_bytes((uint32_t)T);
    const bool iq1 = T == GROK_TYPE_IQ1_S || T == GROK_TYPE_IQ1_M;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0;
    for (int64_t i = 0; i < n / QK_K; i++, p += bs) {
        const float d = block_d(T, p);
        for (int ib = 0; ib < 8; ib++, x += 32) {
            int8x16_t w[2];
            int ls[2];
            decode(T, p, ib, &w[0], &w[1], &ls[0], &ls[1]);
            for (int h = 0; h < 2; h++) {
                const float l = (float)ls[h];
                /* the group scale and values as iquants.c's iq_values forms them */
                const float db = T == GROK_TYPE_IQ3_XXS        ? d * (l * 0.5f) * 0.5f
                                 : T == GROK_TYPE_IQ3_S || iq1 ? d * l
                                                               : d * (l * 0.5f) * 0.25f;
                const int16x8_t lo = vmovl_s8(vget_low_s8(w[h])), hi = vmovl_high_s8(w[h]);
                const int16x8_t v16[2] = {lo, hi};
                for (int k = 0; k < 2; k++) {
                    float32x4_t v0 = vcvtq_f32_s32(vmovl_s16(vget_low_s16(v16[k])));
                    float32x4_t v1 = vcvtq_f32_s32(vmovl_high_s16(v16[k]));
                    if (iq1) v0 = vmulq_n_f32(v0, 0.125f), v1 = vmulq_n_f32(v1, 0.125f);
                    a0 = vfmaq_f32(a0, vmulq_n_f32(v0, db), vld1q_f32(x + 16 * h + 8 * k));
                    a1 = vfmaq_f32(a1, vmulq_n_f32(v1, db), vld1q_f32(x + 16 * h + 8 * k + 4));
                }
            }
        }
    }
    return vaddvq_f32(vaddq_f32(a0, a1));
}

#define IQ_NEON_FUNCS(T, NAME)                                                                  \
    static void NAME##_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n, \
                             float *out) {                                                      \
        for (int64_t t = 0; t < nx; t += MULTI_TILE)                                            \
            tile(T, row, x + t, (int)(nx - t < MULTI_TILE ? nx - t : MULTI_TILE), n, out + t);  \
    }                                                                                           \
    static float NAME##_q8a(const void *row, const block_q8a *x, int64_t n) {                   \
        float out;                                                                              \
        tile(T, row, &x, 1, n, &out);                                                           \
        return out;                                                                             \
    }                                                                                           \
    static float NAME##_f32(const void *row, const float *x, int64_t n) { return dot_f32(T, row, x, n); }
IQ_NEON_FUNCS(GROK_TYPE_IQ2_XXS, iq2_xxs)
IQ_NEON_FUNCS(GROK_TYPE_IQ2_XS, iq2_xs)
IQ_NEON_FUNCS(GROK_TYPE_IQ2_S, iq2_s)
IQ_NEON_FUNCS(GROK_TYPE_IQ3_XXS, iq3_xxs)
IQ_NEON_FUNCS(GROK_TYPE_IQ3_S, iq3_s)
IQ_NEON_FUNCS(GROK_TYPE_IQ1_S, iq1_s)
IQ_NEON_FUNCS(GROK_TYPE_IQ1_M, iq1_m)

#define IQ_SET(NAME) (out->dot_f32 = NAME##_f32, out->dot_q8a = NAME##_q8a, out->dot_q8a_multi = NAME##_multi)
void grok_iq_dot_neon(uint32_t type, grok_dot_kernels *out) {
    switch (type) {
    case GROK_TYPE_IQ2_XXS: IQ_SET(iq2_xxs); break;
    case GROK_TYPE_IQ2_XS: IQ_SET(iq2_xs); break;
    case GROK_TYPE_IQ2_S: IQ_SET(iq2_s); break;
    case GROK_TYPE_IQ3_XXS: IQ_SET(iq3_xxs); break;
    case GROK_TYPE_IQ3_S: IQ_SET(iq3_s); break;
    case GROK_TYPE_IQ1_S: IQ_SET(iq1_s); break;
    case GROK_TYPE_IQ1_M: IQ_SET(iq1_m); break;
    default: break;
    }
}

#else
void grok_iq_dot_neon(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
#endif
