/*
 * arm_neon.c - NEON dot products (aarch64) for f32 and f16 weights with
 * f32 activations and q8_0 / q4_0 weights with 8-bit activations. Only
 * baseline aarch64 NEON is used (widening multiplies, no dotprod
 * extension), so no run-time check is needed beyond the architecture.
 * Elsewhere this file provides nothing.
 */
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

void grok_dot_neon(uint32_t type, grok_dot_kernels *out) {
    switch (type) {
    case GROK_TYPE_F32: out->dot_f32 = f32_dot; break;
    case GROK_TYPE_F16: out->dot_f32 = f16_dot; break;
    case GROK_TYPE_Q8_0: out->dot_q8a = q8_0_dot_q8a; break;
    case GROK_TYPE_Q4_0: out->dot_q8a = q4_0_dot_q8a; break;
    default: break;
    }
}

#else
void grok_dot_neon(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
#endif
