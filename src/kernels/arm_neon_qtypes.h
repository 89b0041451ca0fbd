/*
 * arm_neon_qtypes.h - NEON row dots (one token or a batch) with 8-bit
 * activations for the types in qtypes.h, included by arm_neon.c (whose
 * dot16_s8, dot32_s8, f16_at and MULTI_TILE it uses); qt_neon_register
 * sets them. Baseline aarch64 only, like the rest of arm_neon.c.
 *
 * A block is read 32 values at a time: a chunk decodes to 32 signed codes
 * in value order (every type's codes fit int8) and the multipliers of its
 * two 16-value halves; per token, vmull_s8 gives the exact integer sum of
 * each half, and the float work is, in this order, xd * (a0*is0 + a1*is1)
 * (one multiplier: a * (is0 + is1)), Q4_1 / Q5_1's offset adding m * sum
 * and Q2_K's mins subtracting dmin*m times each half's quant sum. The
 * chunk is decoded once for every token of a pass, and per token the
 * operations are the single-token dot's, so batches equal it bit for bit.
 */
#ifndef GROK_ARM_NEON_QTYPES_H
#define GROK_ARM_NEON_QTYPES_H

#include "kernels/qtypes.h"

typedef struct {
    int8x16_t w[2]; /* values 0-15, 16-31 */
    float a0, a1;   /* their multipliers */
    float m0, m1;   /* Q2_K: dmin * m of each half */
    float off;      /* Q4_1 / Q5_1: m */
} qtn_chunk;

/* Byte j: 0xff where bit j of the 16 bits b0 | b1 << 8 is set. */
static inline uint8x16_t qtn_bits16(uint8_t b0, uint8_t b1) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    return vtstq_u8(vcombine_u8(vdup_n_u8(b0), vdup_n_u8(b1)), vld1q_u8(bit));
}

/* (v >> s) & 3 for a shift known only at run time */
static inline uint8x16_t qtn_bits2(uint8x16_t v, int s) {
    return vandq_u8(vshlq_u8(v, vdupq_n_s8((int8_t)-s)), vdupq_n_u8(3));
}

/* TQ1_0's trits minus 1 of q (bytes already times 3^n mod 256): 1 from 86 on, 2 from 171 on */
static inline int8x16_t qtn_trits(uint8x16_t q) {
    const uint8x16_t t =
        vsubq_u8(vsubq_u8(vdupq_n_u8(0xff), vcgeq_u8(q, vdupq_n_u8(86))), vcgeq_u8(q, vdupq_n_u8(171)));
    return vreinterpretq_s8_u8(t);
}

static void qtn_decode(int type, const uint8_t *p, int k, qtn_chunk *c) {
    const uint8x16_t m4 = vdupq_n_u8(15);
    c->m0 = c->m1 = c->off = 0;
    switch (type) {
    case GROK_TYPE_Q4_1:
    case GROK_TYPE_Q5_0:
    case GROK_TYPE_Q5_1: {
        const size_t qs_at = type == GROK_TYPE_Q4_1 ? 4 : type == GROK_TYPE_Q5_0 ? 6 : 8;
        const uint8x16_t v = vld1q_u8(p + qs_at);
        uint8x16_t lo = vandq_u8(v, m4), hi = vshrq_n_u8(v, 4);
        if (type != GROK_TYPE_Q4_1) {
            const uint8_t *qh = p + qs_at - 4;
            lo = vorrq_u8(lo, vandq_u8(qtn_bits16(qh[0], qh[1]), vdupq_n_u8(16)));
            hi = vorrq_u8(hi, vandq_u8(qtn_bits16(qh[2], qh[3]), vdupq_n_u8(16)));
        }
        c->w[0] = vreinterpretq_s8_u8(lo), c->w[1] = vreinterpretq_s8_u8(hi);
        if (type == GROK_TYPE_Q5_0)
            c->w[0] = vsubq_s8(c->w[0], vdupq_n_s8(16)), c->w[1] = vsubq_s8(c->w[1], vdupq_n_s8(16));
        c->a0 = c->a1 = f16_at(p);
        if (type != GROK_TYPE_Q5_0) c->off = f16_at(p + 2);
        break;
    }
    case GROK_TYPE_Q2_K: {
        const int h = k / 4, j = k % 4;
        c->w[0] = vreinterpretq_s8_u8(qtn_bits2(vld1q_u8(p + 16 + 32 * h), 2 * j));
        c->w[1] = vreinterpretq_s8_u8(qtn_bits2(vld1q_u8(p + 32 + 32 * h), 2 * j));
        const float d = f16_at(p + 80), dmin = f16_at(p + 82);
        c->a0 = d * (float)(p[2 * k] & 15), c->a1 = d * (float)(p[2 * k + 1] & 15);
        c->m0 = dmin * (float)(p[2 * k] >> 4), c->m1 = dmin * (float)(p[2 * k + 1] >> 4);
        break;
    }
    case GROK_TYPE_Q3_K: {
        const int h = k / 4, j = k % 4;
        for (int half = 0; half < 2; half++) {
            const uint8x16_t lo = qtn_bits2(vld1q_u8(p + 32 + 32 * h + 16 * half), 2 * j);
            const uint8x16_t hb = vandq_u8(
                vshlq_u8(vld1q_u8(p + 16 * half), vdupq_n_s8((int8_t) - (4 * h + j))), vdupq_n_u8(1));
            const int8x16_t w = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, vshlq_n_u8(hb, 2))), vdupq_n_s8(4));
            c->w[half] = w;
        }
        const float d = f16_at(p + 108);
        c->a0 = d * (float)(grok_q3_K_scale(p + 96, 2 * k) - 32);
        c->a1 = d * (float)(grok_q3_K_scale(p + 96, 2 * k + 1) - 32);
        break;
    }
    case GROK_TYPE_IQ4_NL:
    case GROK_TYPE_IQ4_XS:
    case GROK_TYPE_MXFP4: {
        const int8x16_t t = vld1q_s8(type == GROK_TYPE_MXFP4 ? GROK_KVALUES_FP4 : GROK_KVALUES_IQ4NL);
        const uint8_t *qs = type == GROK_TYPE_IQ4_NL  ? p + 2
                            : type == GROK_TYPE_MXFP4 ? p + 1
                                                      : p + 8 + 16 * k;
        const uint8x16_t v = vld1q_u8(qs);
        c->w[0] = vqtbl1q_s8(t, vandq_u8(v, m4)), c->w[1] = vqtbl1q_s8(t, vshrq_n_u8(v, 4));
        if (type == GROK_TYPE_IQ4_NL) c->a0 = f16_at(p);
        if (type == GROK_TYPE_MXFP4) c->a0 = grok_e8m0_half(p[0]);
        if (type == GROK_TYPE_IQ4_XS) {
            const int ls =
                ((p[4 + k / 2] >> (4 * (k % 2))) & 15) | ((((p[2] | p[3] << 8) >> (2 * k)) & 3) << 4);
            c->a0 = f16_at(p) * (float)(ls - 32);
        }
        c->a1 = c->a0;
        break;
    }
    case GROK_TYPE_NVFP4: {
        const int8x16_t t = vld1q_s8(GROK_KVALUES_FP4);
        const uint8x16_t v = vld1q_u8(p + 4 + 16 * k), lo = vandq_u8(v, m4), hi = vshrq_n_u8(v, 4);
        c->w[0] = vqtbl1q_s8(t, vcombine_u8(vget_low_u8(lo), vget_low_u8(hi)));
        c->w[1] = vqtbl1q_s8(t, vcombine_u8(vget_high_u8(lo), vget_high_u8(hi)));
        c->a0 = grok_ue4m3_half(p[2 * k]), c->a1 = grok_ue4m3_half(p[2 * k + 1]);
        break;
    }
    case GROK_TYPE_TQ2_0: {
        const uint8_t *qs = p + 32 * (k / 4);
        c->w[0] = vsubq_s8(vreinterpretq_s8_u8(qtn_bits2(vld1q_u8(qs), 2 * (k % 4))), vdupq_n_s8(1));
        c->w[1] = vsubq_s8(vreinterpretq_s8_u8(qtn_bits2(vld1q_u8(qs + 16), 2 * (k % 4))), vdupq_n_s8(1));
        c->a0 = c->a1 = f16_at(p + 64);
        break;
    }
    case GROK_TYPE_TQ1_0: {
        static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
        uint8x16_t q0, q1;
        if (k < 5) { /* values 32k.. : qs[0..31] times 3^k */
            q0 = vmulq_u8(vld1q_u8(p), vdupq_n_u8(pow3[k])),
            q1 = vmulq_u8(vld1q_u8(p + 16), vdupq_n_u8(pow3[k]));
        } else { /* qs[32..47] times 3^(2(k-5)) and the next power; chunk 7's second half from qh */
            const uint8x16_t v = vld1q_u8(p + 32);
            q0 = vmulq_u8(v, vdupq_n_u8(pow3[2 * (k - 5)]));
            if (k < 7) {
                q1 = vmulq_u8(v, vdupq_n_u8(pow3[2 * (k - 5) + 1]));
            } else {
                static const uint8_t pick[16] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
                static const uint8_t mul[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
                q1 = vmulq_u8(vqtbl1q_u8(vld1q_u8(p + 48 - 12), vaddq_u8(vld1q_u8(pick), vdupq_n_u8(12))),
                              vld1q_u8(mul));
            }
        }
        c->w[0] = qtn_trits(q0), c->w[1] = qtn_trits(q1);
        c->a0 = c->a1 = f16_at(p + 52);
        break;
    }
    case GROK_TYPE_Q1_0: {
        const uint8_t *qs = p + 2 + 4 * k;
        c->w[0] = vbslq_s8(qtn_bits16(qs[0], qs[1]), vdupq_n_s8(1), vdupq_n_s8(-1));
        c->w[1] = vbslq_s8(qtn_bits16(qs[2], qs[3]), vdupq_n_s8(1), vdupq_n_s8(-1));
        c->a0 = c->a1 = f16_at(p);
        break;
    }
    default: { /* Q2_0: byte b of qs[8k..] holds values 4b..4b+3 */
        static const uint8_t pick[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
        static const int8_t shift[16] = {0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6, 0, -2, -4, -6};
        const uint8x16_t v = vld1q_u8(p + 2); /* all of qs */
        const uint8x16_t idx = vaddq_u8(vld1q_u8(pick), vdupq_n_u8((uint8_t)(8 * k)));
        for (int half = 0; half < 2; half++) {
            const uint8x16_t b = vqtbl1q_u8(v, vaddq_u8(idx, vdupq_n_u8((uint8_t)(4 * half))));
            const int8x16_t w = vsubq_s8(
                vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b, vld1q_s8(shift)), vdupq_n_u8(3))), vdupq_n_s8(1));
            c->w[half] = w;
        }
        c->a0 = c->a1 = f16_at(p);
        break;
    }
    }
}

static void qtn_tile(int type, const uint8_t *p, const block_q8a *const *x, int nt, int64_t n, float *out) {
    const int nbk = grok_qtypes_block_values(type) / QKA;
    const size_t bsz = grok_qtypes_block_bytes(type);
    const bool halves = type == GROK_TYPE_Q2_K || type == GROK_TYPE_Q3_K || type == GROK_TYPE_NVFP4;
    const bool offset = type == GROK_TYPE_Q4_1 || type == GROK_TYPE_Q5_1;
    for (int t = 0; t < nt; t++) out[t] = 0;
    for (int64_t i = 0; i < n / grok_qtypes_block_values(type); i++, p += bsz) {
        for (int k = 0; k < nbk; k++) {
            qtn_chunk c;
            qtn_decode(type, p, k, &c);
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * nbk + k;
                float v;
                if (halves) {
                    v = c.a0 * (float)dot16_s8(c.w[0], xb->qs) + c.a1 * (float)dot16_s8(c.w[1], xb->qs + 16);
                    if (type == GROK_TYPE_Q2_K)
                        v -= c.m0 * (float)vaddlvq_s8(vld1q_s8(xb->qs)) +
                             c.m1 * (float)vaddlvq_s8(vld1q_s8(xb->qs + 16));
                } else {
                    v = c.a0 * (float)dot32_s8(c.w[0], c.w[1], xb->qs);
                    if (offset) v += c.off * (float)xb->sum;
                }
                out[t] += xb->d * v;
            }
        }
    }
}

#define QTN_DOTS(NAME, T)                                                                           \
    static void NAME##_qtn_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n, \
                                 float *out) {                                                      \
        for (int64_t t = 0; t < nx; t += MULTI_TILE)                                                \
            qtn_tile(T, row, x + t, (int)(nx - t < MULTI_TILE ? nx - t : MULTI_TILE), n, out + t);  \
    }                                                                                               \
    static float NAME##_qtn_dot(const void *row, const block_q8a *x, int64_t n) {                   \
        float out;                                                                                  \
        qtn_tile(T, row, &x, 1, n, &out);                                                           \
        return out;                                                                                 \
    }
QTN_DOTS(q4_1, GROK_TYPE_Q4_1)
QTN_DOTS(q5_0, GROK_TYPE_Q5_0)
QTN_DOTS(q5_1, GROK_TYPE_Q5_1)
QTN_DOTS(q2_K, GROK_TYPE_Q2_K)
QTN_DOTS(q3_K, GROK_TYPE_Q3_K)
QTN_DOTS(iq4_nl, GROK_TYPE_IQ4_NL)
QTN_DOTS(iq4_xs, GROK_TYPE_IQ4_XS)
QTN_DOTS(tq1_0, GROK_TYPE_TQ1_0)
QTN_DOTS(tq2_0, GROK_TYPE_TQ2_0)
QTN_DOTS(mxfp4, GROK_TYPE_MXFP4)
QTN_DOTS(nvfp4, GROK_TYPE_NVFP4)
QTN_DOTS(q1_0, GROK_TYPE_Q1_0)
QTN_DOTS(q2_0, GROK_TYPE_Q2_0)

#define QTN_SET(out, NAME) ((out)->dot_q8a = NAME##_qtn_dot, (out)->dot_q8a_multi = NAME##_qtn_multi)
static void qt_neon_register(uint32_t type, grok_dot_kernels *out) {
    switch (type) {
    case GROK_TYPE_Q4_1: QTN_SET(out, q4_1); break;
    case GROK_TYPE_Q5_0: QTN_SET(out, q5_0); break;
    case GROK_TYPE_Q5_1: QTN_SET(out, q5_1); break;
    case GROK_TYPE_Q2_K: QTN_SET(out, q2_K); break;
    case GROK_TYPE_Q3_K: QTN_SET(out, q3_K); break;
    case GROK_TYPE_IQ4_NL: QTN_SET(out, iq4_nl); break;
    case GROK_TYPE_IQ4_XS: QTN_SET(out, iq4_xs); break;
    case GROK_TYPE_TQ1_0: QTN_SET(out, tq1_0); break;
    case GROK_TYPE_TQ2_0: QTN_SET(out, tq2_0); break;
    case GROK_TYPE_MXFP4: QTN_SET(out, mxfp4); break;
    case GROK_TYPE_NVFP4: QTN_SET(out, nvfp4); break;
    case GROK_TYPE_Q1_0: QTN_SET(out, q1_0); break;
    case GROK_TYPE_Q2_0: QTN_SET(out, q2_0); break;
    default: break;
    }
}

#endif
