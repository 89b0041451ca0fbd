/*
 * arm_neon.c - NEON dot products (aarch64) for f32 and f16 weights with
 * f32 activations and q8_0 / q4_0 / q4_K / q5_K / q6_K weights with 8-bit
 * activations. Only baseline aarch64 NEON is used (widening multiplies,
 * no dotprod extension), so no run-time check is needed beyond the
 * architecture.
 * Elsewhere this file provides nothing.
 */
#include <stddef.h>
#include <string.h>

#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

static float f32_dot(const void *row, const float *x, int64_t n) {
    const float *w = row;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

static float f16_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16_t h[8];
        memcpy(h, p + 2 * i, 16);
        float16x8_t v = vreinterpretq_f16_u16(vld1q_u16(h));
        a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(v)), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vcvt_f32_f16(vget_high_f16(v)), vld1q_f32(x + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        s += grok_fp16_to_fp32(h) * x[i];
    }
    return s;
}

/* sum of 32 int8 products */
static inline int32_t dot32_s8(int8x16_t a0, int8x16_t a1, const int8_t *b) {
    int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16);
    int16x8_t p = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
    p = vmlal_s8(p, vget_high_s8(a0), vget_high_s8(b0));
    int16x8_t q = vmull_s8(vget_low_s8(a1), vget_low_s8(b1));
    q = vmlal_s8(q, vget_high_s8(a1), vget_high_s8(b1));
    return vaddvq_s32(vaddq_s32(vpaddlq_s16(p), vpaddlq_s16(q)));
}

static float q8_0_dot_q8a(const void *row, const block_q8a *x, int64_t n) {
    const uint8_t *p = row;
    float s = 0;
    for (int64_t b = 0; b < n / QK8_0; b++, p += sizeof(block_q8_0)) {
        uint16_t h;
        memcpy(&h, p, 2);
        int8x16_t w0 = vld1q_s8((const int8_t *)p + 2), w1 = vld1q_s8((const int8_t *)p + 18);
        s += grok_fp16_to_fp32(h) * x[b].d * (float)dot32_s8(w0, w1, x[b].qs);
    }
    return s;
}

static float q4_0_dot_q8a(const void *row, const block_q8a *x, int64_t n) {
    const uint8_t *p = row;
    float s = 0;
    const uint8x16_t m = vdupq_n_u8(0x0f);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t b = 0; b < n / QK4_0; b++, p += sizeof(block_q4_0)) {
        uint16_t h;
        memcpy(&h, p, 2);
        uint8x16_t v = vld1q_u8(p + 2);
        int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m)), eight);
        int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
        s += grok_fp16_to_fp32(h) * x[b].d * (float)dot32_s8(lo, hi, x[b].qs);
    }
    return s;
}

/* sum of 16 int8 products */
static inline int32_t dot16_s8(int8x16_t a, const int8_t *b) {
    int8x16_t b0 = vld1q_s8(b);
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b0));
    p = vmlal_s8(p, vget_high_s8(a), vget_high_s8(b0));
    return vaddvq_s32(vpaddlq_s16(p));
}

static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return grok_fp16_to_fp32(h);
}

/* Q4_K / Q5_K: the reference's sums in its order (exact integer sums per
 * 32 values, the min term through the activation block's quant sum). */
static float kq_asym_dot_q8a(const uint8_t *p, const block_q8a *x, int64_t n, bool q5) {
    const size_t bsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t qs_at = q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), one = vdupq_n_u8(1);
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++, p += bsz, x += QK_K / QKA) {
        uint8x16_t qh0 = vdupq_n_u8(0), qh1 = qh0;
        if (q5) qh0 = vld1q_u8(p + offsetof(block_q5_K, qh)), qh1 = vld1q_u8(p + offsetof(block_q5_K, qh) + 16);
        float sa = 0, sm = 0;
        for (int c = 0; c < 4; c++) {
            uint8x16_t v0 = vld1q_u8(p + qs_at + 32 * c), v1 = vld1q_u8(p + qs_at + 32 * c + 16);
            uint8x16_t lo0 = vandq_u8(v0, m4), lo1 = vandq_u8(v1, m4);
            uint8x16_t hi0 = vshrq_n_u8(v0, 4), hi1 = vshrq_n_u8(v1, 4);
            if (q5) {
                lo0 = vorrq_u8(lo0, vshlq_n_u8(vandq_u8(qh0, one), 4));
                lo1 = vorrq_u8(lo1, vshlq_n_u8(vandq_u8(qh1, one), 4));
                hi0 = vorrq_u8(hi0, vshlq_n_u8(vandq_u8(vshrq_n_u8(qh0, 1), one), 4));
                hi1 = vorrq_u8(hi1, vshlq_n_u8(vandq_u8(vshrq_n_u8(qh1, 1), one), 4));
                qh0 = vshrq_n_u8(qh0, 2), qh1 = vshrq_n_u8(qh1, 2);
            }
            for (int half = 0; half < 2; half++) {
                const int sb = 2 * c + half;
                uint8_t sc, m;
                grok_kq_scale_min(p + 4, sb, &sc, &m);
                int32_t is = dot32_s8(vreinterpretq_s8_u8(half ? hi0 : lo0), vreinterpretq_s8_u8(half ? hi1 : lo1),
                                      x[sb].qs);
                sa += x[sb].d * (float)(sc * is);
                sm += x[sb].d * (float)(m * x[sb].sum);
            }
        }
        s += f16_at(p) * sa - f16_at(p + 2) * sm;
    }
    return s;
}
static float q4_K_dot_q8a(const void *row, const block_q8a *x, int64_t n) { return kq_asym_dot_q8a(row, x, n, false); }
static float q5_K_dot_q8a(const void *row, const block_q8a *x, int64_t n) { return kq_asym_dot_q8a(row, x, n, true); }

/* Q6_K: q - 32 as int8, one integer sum per 16-value sub-block. */
static float q6_K_dot_q8a(const void *row, const block_q8a *x, int64_t n) {
    const uint8_t *p = row;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(3);
    const int8x16_t k32 = vdupq_n_s8(32);
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++, p += sizeof(block_q6_K), x += QK_K / QKA) {
        const int8_t *sc = (const int8_t *)(p + offsetof(block_q6_K, scales));
        float sa = 0;
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 4; k++) {
                /* value l + 32k of the half: ql[l + 32(k&1)] nibble k>>1, qh[l] bits 2k, 2k+1 */
                int8x16_t q[2];
                for (int j = 0; j < 2; j++) {
                    uint8x16_t ql = vld1q_u8(p + 64 * h + 32 * (k & 1) + 16 * j);
                    uint8x16_t qh = vld1q_u8(p + offsetof(block_q6_K, qh) + 32 * h + 16 * j);
                    uint8x16_t lo = (k >> 1) ? vshrq_n_u8(ql, 4) : vandq_u8(ql, m4);
                    uint8x16_t hb = vandq_u8(vshlq_u8(qh, vdupq_n_s8((int8_t)(-2 * k))), m2);
                    q[j] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, vshlq_n_u8(hb, 4))), k32);
                }
                const int sb = 8 * h + 2 * k;
                const block_q8a *xb = x + 4 * h + k;
                int32_t is = sc[sb] * dot16_s8(q[0], xb->qs) + sc[sb + 1] * dot16_s8(q[1], xb->qs + 16);
                sa += xb->d * (float)is;
            }
        }
        s += f16_at(p + offsetof(block_q6_K, d)) * sa;
    }
    return s;
}

void grok_dot_neon(uint32_t type, grok_dot_kernels *out) {
    switch (type) {
    case GROK_TYPE_F32: out->dot_f32 = f32_dot; break;
    case GROK_TYPE_F16: out->dot_f32 = f16_dot; break;
    case GROK_TYPE_Q8_0: out->dot_q8a = q8_0_dot_q8a; break;
    case GROK_TYPE_Q4_0: out->dot_q8a = q4_0_dot_q8a; break;
    case GROK_TYPE_Q4_K: out->dot_q8a = q4_K_dot_q8a; break;
    case GROK_TYPE_Q5_K: out->dot_q8a = q5_K_dot_q8a; break;
    case GROK_TYPE_Q6_K: out->dot_q8a = q6_K_dot_q8a; break;
    default: break;
    }
}

#else
void grok_dot_neon(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
#endif
