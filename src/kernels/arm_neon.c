/*
 * arm_neon.c - NEON kernels (aarch64): dot products for f32 and f16
 * weights with f32 activations; for q8_0 / q4_0 / q4_K / q5_K / q6_K
 * weights with 8-bit activations, the row dots (one token or a batch) and
 * the packed (row-interleaved) dots; and the activation quantizer. Only
 * baseline aarch64 NEON is used (widening multiplies, no dotprod
 * extension), so no run-time check is needed beyond the architecture.
 * Elsewhere this file provides nothing.
 */
#include <stddef.h>
#include <string.h>

#include "kernels/iquants.h"
#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#include <float.h>

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

/* The row dots take nx tokens at once (dot_q8a_multi): each weight block
 * is loaded and decoded once for all of them, and per token the float
 * operations are the single-token dot's in its order (C fixes the order,
 * and ISO C mode fuses no multiply-add), so out[t] equals dot_q8a(row,
 * x[t], n) bit for bit; dot_q8a is the same function with one token.
 * The k-quants keep per-token partial sums for MULTI_TILE tokens a pass. */
#define MULTI_TILE 8

/* q8_0 and q4_0 (q4: nibbles minus 8 as int8) */
static void qx_0_multi(const uint8_t *p, const block_q8a *const *x, int64_t nx, int64_t n, float *out,
                       bool q4) {
    const size_t bsz = q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const uint8x16_t m = vdupq_n_u8(0x0f);
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t t = 0; t < nx; t++) out[t] = 0;
    for (int64_t b = 0; b < n / QKA; b++, p += bsz) {
        uint16_t h;
        memcpy(&h, p, 2);
        const float d = grok_fp16_to_fp32(h);
        int8x16_t w0, w1;
        if (q4) {
            const uint8x16_t v = vld1q_u8(p + 2);
            w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m)), eight);
            w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
        } else {
            w0 = vld1q_s8((const int8_t *)p + 2), w1 = vld1q_s8((const int8_t *)p + 18);
        }
        for (int64_t t = 0; t < nx; t++) out[t] += d * x[t][b].d * (float)dot32_s8(w0, w1, x[t][b].qs);
    }
}
static void q8_0_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                               float *out) {
    qx_0_multi(row, x, nx, n, out, false);
}
static void q4_0_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                               float *out) {
    qx_0_multi(row, x, nx, n, out, true);
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
static void kq_asym_tile(const uint8_t *p, const block_q8a *const *x, int nt, int64_t n, float *out,
                         bool q5) {
    const size_t bsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t qs_at = q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), one = vdupq_n_u8(1);
    for (int t = 0; t < nt; t++) out[t] = 0;
    for (int64_t i = 0; i < n / QK_K; i++, p += bsz) {
        uint8x16_t qh0 = vdupq_n_u8(0), qh1 = qh0;
        if (q5)
            qh0 = vld1q_u8(p + offsetof(block_q5_K, qh)), qh1 = vld1q_u8(p + offsetof(block_q5_K, qh) + 16);
        float sa[MULTI_TILE] = {0}, sm[MULTI_TILE] = {0};
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
                const int8x16_t q0 = vreinterpretq_s8_u8(half ? hi0 : lo0),
                                q1 = vreinterpretq_s8_u8(half ? hi1 : lo1);
                for (int t = 0; t < nt; t++) {
                    const block_q8a *xb = x[t] + i * (QK_K / QKA) + sb;
                    sa[t] += xb->d * (float)(sc * dot32_s8(q0, q1, xb->qs));
                    sm[t] += xb->d * (float)(m * xb->sum);
                }
            }
        }
        const float d = f16_at(p), dmin = f16_at(p + 2);
        for (int t = 0; t < nt; t++) out[t] += d * sa[t] - dmin * sm[t];
    }
}

/* Q6_K: q - 32 as int8, one integer sum per 16-value sub-block. */
static void q6_K_tile(const uint8_t *p, const block_q8a *const *x, int nt, int64_t n, float *out) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(3);
    const int8x16_t k32 = vdupq_n_s8(32);
    for (int t = 0; t < nt; t++) out[t] = 0;
    for (int64_t i = 0; i < n / QK_K; i++, p += sizeof(block_q6_K)) {
        const int8_t *sc = (const int8_t *)(p + offsetof(block_q6_K, scales));
        float sa[MULTI_TILE] = {0};
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
                for (int t = 0; t < nt; t++) {
                    const block_q8a *xb = x[t] + i * (QK_K / QKA) + 4 * h + k;
                    int32_t is = sc[sb] * dot16_s8(q[0], xb->qs) + sc[sb + 1] * dot16_s8(q[1], xb->qs + 16);
                    sa[t] += xb->d * (float)is;
                }
            }
        }
        const float d = f16_at(p + offsetof(block_q6_K, d));
        for (int t = 0; t < nt; t++) out[t] += d * sa[t];
    }
}

static void q4_K_tile(const uint8_t *p, const block_q8a *const *x, int nt, int64_t n, float *out) {
    kq_asym_tile(p, x, nt, n, out, false);
}
static void q5_K_tile(const uint8_t *p, const block_q8a *const *x, int nt, int64_t n, float *out) {
    kq_asym_tile(p, x, nt, n, out, true);
}

/* the k-quant tiles over MULTI_TILE tokens a pass */
#define KQ_MULTI(NAME)                                                                                  \
    static void NAME##_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n, \
                                     float *out) {                                                      \
        for (int64_t t = 0; t < nx; t += MULTI_TILE)                                                    \
            NAME##_tile(row, x + t, (int)(nx - t < MULTI_TILE ? nx - t : MULTI_TILE), n, out + t);      \
    }
KQ_MULTI(q4_K)
KQ_MULTI(q5_K)
KQ_MULTI(q6_K)

/* The single-token dots: the multi-token ones with one token. */
#define SINGLE(NAME)                                                              \
    static float NAME##_dot_q8a(const void *row, const block_q8a *x, int64_t n) { \
        float out;                                                                \
        NAME##_dot_q8a_multi(row, &x, 1, n, &out);                                \
        return out;                                                               \
    }
SINGLE(q8_0)
SINGLE(q4_0)
SINGLE(q4_K)
SINGLE(q5_K)
SINGLE(q6_K)

/* ---- packed groups of 8 rows (kernels.h, GROK_PACK_ROWS) ----
 * A 32-byte chunk holds 4 quants of each of the 8 rows, rows 0-3 in its
 * first 16 bytes and rows 4-7 in the second; the activation's matching 4
 * quants are broadcast, so one widening multiply (vmull_s8) gives two rows
 * 4 products each. Products add up in int16 lanes for as many chunks as
 * cannot overflow, then vpadalq folds them into int32, so every block's 8
 * integer sums are exact. Per block the 8 rows' f16 scales convert
 * together and two FMAs per token scale and accumulate all 8 rows. Per
 * token the operations and their order do not depend on the token count,
 * so batches equal single tokens bit for bit. Weights are decoded once per
 * block for all the tokens of a pass. */
#define X8_INLINE __attribute__((always_inline)) inline
/* Loops over chunks, rows and tokens unrolled, so decoded weights and
 * accumulators live in registers rather than arrays on the stack (GCC's
 * -O2 leaves such loops rolled). */
#define X8_UNROLL _Pragma("GCC unroll 16")
/* Tokens per pass: two float accumulators per token beside 16 registers
 * of decoded weights stay within the 32 vector registers. */
#define X8_TILE 4

/* The 8 rows' f16 scales at p as f32, rows 0-3 and 4-7. */
static inline float32x4x2_t x8_f16(const uint8_t *p) {
    const float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(p));
    return (float32x4x2_t){{vcvt_f32_f16(vget_low_f16(h)), vcvt_f32_f16(vget_high_f16(h))}};
}

/* 8 bytes (one per row) to f32 times s, rows 0-3 and 4-7. */
static inline float32x4x2_t x8_scale_u8(const uint8_t *b, float32x4x2_t s) {
    const uint16x8_t w = vmovl_u8(vld1_u8(b));
    return (float32x4x2_t){{vmulq_f32(s.val[0], vcvtq_f32_u32(vmovl_u16(vget_low_u16(w)))),
                            vmulq_f32(s.val[1], vcvtq_f32_u32(vmovl_u16(vget_high_u16(w))))}};
}
static inline float32x4x2_t x8_scale_s8(const int8_t *b, float32x4x2_t s) {
    const int16x8_t w = vmovl_s8(vld1_s8(b));
    return (float32x4x2_t){{vmulq_f32(s.val[0], vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)))),
                            vmulq_f32(s.val[1], vcvtq_f32_s32(vmovl_s16(vget_high_s16(w))))}};
}

/* The 8 rows' integer sums of chunks w[0..k) against the activation
 * quants xq[0..4k) (chunk i meets xq[4i..4i+3]), plus start. Runs of run
 * chunks (run divides k) add their products in int16 lanes before
 * widening, so run * max|w| * 127 must stay below 2^15. */
static X8_INLINE int32x4x2_t x8_isum(const int8x16x2_t *w, int k, const int8_t *xq, int run, int32_t start) {
    int32x4_t a[4];
    X8_UNROLL
    for (int r = 0; r < k / run; r++) {
        int16x8_t p[4];
        X8_UNROLL
        for (int j = 0; j < run; j++) {
            const int c = r * run + j;
            int32_t v;
            memcpy(&v, xq + 4 * c, 4);
            const int8x16_t xb = vreinterpretq_s8_s32(vdupq_n_s32(v));
            X8_UNROLL
            for (int h = 0; h < 2; h++) {
                const int8x16_t wc = w[c].val[h];
                p[2 * h] = j == 0 ? vmull_s8(vget_low_s8(wc), vget_low_s8(xb))
                                  : vmlal_s8(p[2 * h], vget_low_s8(wc), vget_low_s8(xb));
                p[2 * h + 1] = j == 0 ? vmull_high_s8(wc, xb) : vmlal_high_s8(p[2 * h + 1], wc, xb);
            }
        }
        X8_UNROLL
        for (int q = 0; q < 4; q++) a[q] = r == 0 ? vpaddlq_s16(p[q]) : vpadalq_s16(a[q], p[q]);
    }
    /* a[q]: rows 2q, 2q+1, two lanes each */
    const int32x4_t s = vdupq_n_s32(start);
    return (int32x4x2_t){{vaddq_s32(vpaddq_s32(a[0], a[1]), s), vaddq_s32(vpaddq_s32(a[2], a[3]), s)}};
}

/* acc += s * xd * is, rows 0-3 and 4-7 */
static X8_INLINE void x8_fma(float32x4x2_t *acc, float32x4x2_t s, float xd, int32x4x2_t is) {
    X8_UNROLL
    for (int h = 0; h < 2; h++)
        acc->val[h] = vfmaq_f32(acc->val[h], vmulq_n_f32(s.val[h], xd), vcvtq_f32_s32(is.val[h]));
}

static void x8_store(float *out, const float32x4x2_t *acc, int nt) {
    X8_UNROLL
    for (int t = 0; t < nt; t++)
        vst1q_f32(out + 8 * t, acc[t].val[0]), vst1q_f32(out + 8 * t + 4, acc[t].val[1]);
}

#define X8_PREFETCH(p, bytes) \
    for (size_t pf_ = 0; pf_ < (bytes); pf_ += 64) GROK_PREFETCH((p) + pf_)

/* q4_0 (nibbles 0..15, the -8 through the activation's quant sum) and
 * q8_0 (stored as quant + 128: flipped back to signed once per block;
 * |q| <= 128 lets an int16 lane hold two products, 15 sixteen). */
static X8_INLINE void x8_qx_0_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                   const int nt, const bool q8) {
    const size_t gsz = GROK_PACK_ROWS * (q8 ? sizeof(block_q8_0) : sizeof(block_q4_0));
    float32x4x2_t acc[X8_TILE];
    X8_UNROLL
    for (int t = 0; t < nt; t++) acc[t].val[0] = acc[t].val[1] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), flip = vdupq_n_u8(0x80);
    for (int64_t b = 0; b < n / QKA; b++, p += gsz) {
        X8_PREFETCH(p, gsz);
        const float32x4x2_t dw = x8_f16(p);
        int8x16x2_t w[8]; /* chunk i meets activation quants 4i..4i+3 */
        const int chunks = q8 ? 8 : 4;
        X8_UNROLL
        for (int c = 0; c < chunks; c++) X8_UNROLL
        for (int h = 0; h < 2; h++) {
            const uint8x16_t v = vld1q_u8(p + 16 + 32 * c + 16 * h);
            if (q8) {
                w[c].val[h] = vreinterpretq_s8_u8(veorq_u8(v, flip));
            } else { /* low nibbles: values 4c.., high: 16+4c.. */
                w[c].val[h] = vreinterpretq_s8_u8(vandq_u8(v, m4));
                w[4 + c].val[h] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
            }
        }
        X8_UNROLL
        for (int t = 0; t < nt; t++) {
            const block_q8a *xb = x[t] + b;
            x8_fma(&acc[t], dw, xb->d, x8_isum(w, 8, xb->qs, q8 ? 2 : 8, q8 ? 0 : -8 * xb->sum));
        }
    }
    x8_store(out, acc, nt);
}
static X8_INLINE void x8_q4_0_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                   const int nt) {
    x8_qx_0_tile(p, x, n, out, nt, false);
}
static X8_INLINE void x8_q8_0_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                   const int nt) {
    x8_qx_0_tile(p, x, n, out, nt, true);
}

/* q4_K / q5_K: activation block s of a super-block meets sub-block s, the
 * low (s even) or high (s odd) nibbles of chunks 8(s/2)..8(s/2)+7, plus
 * for Q5_K bit s of the qh chunks as the fifth bit. The min term goes
 * through the block's quant sum into a second accumulator per token,
 * taken off at the end. */
static X8_INLINE void x8_q45_K_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                    const int nt, const bool q5) {
    const size_t gsz = GROK_PACK_ROWS * (q5 ? sizeof(block_q5_K) : sizeof(block_q4_K));
    float32x4x2_t acc[X8_TILE], corr[X8_TILE];
    X8_UNROLL
    for (int t = 0; t < nt; t++)
        acc[t].val[0] = acc[t].val[1] = corr[t].val[0] = corr[t].val[1] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m6 = vdupq_n_u8(63), bit4 = vdupq_n_u8(0x10);
    for (int64_t i = 0; i < n / QK_K; i++, p += gsz) {
        X8_PREFETCH(p, gsz);
        const float32x4x2_t d = x8_f16(p), dmin = x8_f16(p + 16);
        /* byte 8j+r: sub-block j's 6-bit scale (min) of row r, as grok_kq_scale_min */
        uint8_t sc[64], mn[64];
        X8_UNROLL
        for (int h = 0; h < 2; h++) {
            const uint8x16_t a = vld1q_u8(p + 32 + 16 * h), b = vld1q_u8(p + 64 + 16 * h),
                             c = vld1q_u8(p + 96 + 16 * h);
            vst1q_u8(sc + 16 * h, vandq_u8(a, m6));
            vst1q_u8(mn + 16 * h, vandq_u8(b, m6));
            vst1q_u8(sc + 32 + 16 * h, vorrq_u8(vandq_u8(c, m4), vshlq_n_u8(vshrq_n_u8(a, 6), 4)));
            vst1q_u8(mn + 32 + 16 * h, vorrq_u8(vshrq_n_u8(c, 4), vshlq_n_u8(vshrq_n_u8(b, 6), 4)));
        }
        for (int s = 0; s < 8; s++) {
            const float32x4x2_t dsc = x8_scale_u8(sc + 8 * s, d), dmn = x8_scale_u8(mn + 8 * s, dmin);
            const int8x16_t qh_shift = vdupq_n_s8((int8_t)(4 - s)); /* bit s to bit 4 */
            const uint8_t *qs = p + 128 + 32 * 8 * (s / 2), *qh = p + 128 + 8 * QK_K / 2;
            int8x16x2_t w[8];
            X8_UNROLL
            for (int k = 0; k < 8; k++) X8_UNROLL
            for (int h = 0; h < 2; h++) {
                const uint8x16_t v = vld1q_u8(qs + 32 * k + 16 * h);
                uint8x16_t q = s & 1 ? vshrq_n_u8(v, 4) : vandq_u8(v, m4);
                if (q5) {
                    q = vorrq_u8(q, vandq_u8(vshlq_u8(vld1q_u8(qh + 32 * k + 16 * h), qh_shift), bit4));
                }
                w[k].val[h] = vreinterpretq_s8_u8(q);
            }
            /* q <= 31: 8 products per int16 lane */
            X8_UNROLL
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * (QK_K / QKA) + s;
                x8_fma(&acc[t], dsc, xb->d, x8_isum(w, 8, xb->qs, 8, 0));
                const float xs = xb->d * (float)xb->sum;
                X8_UNROLL
                for (int h = 0; h < 2; h++) corr[t].val[h] = vfmaq_n_f32(corr[t].val[h], dmn.val[h], xs);
            }
        }
    }
    X8_UNROLL
    for (int t = 0; t < nt; t++) X8_UNROLL
    for (int h = 0; h < 2; h++) acc[t].val[h] = vsubq_f32(acc[t].val[h], corr[t].val[h]);
    x8_store(out, acc, nt);
}
static X8_INLINE void x8_q4_K_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                   const int nt) {
    x8_q45_K_tile(p, x, n, out, nt, false);
}
static X8_INLINE void x8_q5_K_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                   const int nt) {
    x8_q45_K_tile(p, x, n, out, nt, true);
}

/* q6_K: activation block s = 4h + j of a super-block (half h, block j of
 * the half) takes nibble j >> 1 of ql chunks 16h + 8(j&1) + k and bits
 * 2j, 2j+1 of qh chunks 8h + k (k < 8); chunks 0-3 and 4-7 are its two
 * 16-value sub-blocks, each integer sum starting at -32 times the sum of
 * the sub-block's activation quants. */
static X8_INLINE void x8_q6_K_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                   const int nt) {
    float32x4x2_t acc[X8_TILE];
    X8_UNROLL
    for (int t = 0; t < nt; t++) acc[t].val[0] = acc[t].val[1] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m30 = vdupq_n_u8(0x30);
    const size_t gsz = GROK_PACK_ROWS * sizeof(block_q6_K);
    for (int64_t i = 0; i < n / QK_K; i++, p += gsz) {
        X8_PREFETCH(p, gsz);
        const float32x4x2_t d = x8_f16(p);
        const int8_t *sc = (const int8_t *)(p + 16);
        const uint8_t *ql = p + 16 + QK_K / 16 * 8, *qh = ql + 8 * QK_K / 2;
        for (int s = 0; s < 8; s++) {
            const int h = s / 4, j = s % 4;
            const float32x4x2_t dsa = x8_scale_s8(sc + 8 * (2 * s), d),
                                dsb = x8_scale_s8(sc + 8 * (2 * s + 1), d);
            const int8x16_t qh_shift = vdupq_n_s8((int8_t)(4 - 2 * j)); /* bits 2j, 2j+1 to 4, 5 */
            const uint8_t *qls = ql + 32 * (16 * h + 8 * (j & 1)), *qhs = qh + 32 * 8 * h;
            int8x16x2_t w[8];
            X8_UNROLL
            for (int k = 0; k < 8; k++) X8_UNROLL
            for (int hh = 0; hh < 2; hh++) {
                const uint8x16_t v = vld1q_u8(qls + 32 * k + 16 * hh);
                const uint8x16_t hb = vandq_u8(vshlq_u8(vld1q_u8(qhs + 32 * k + 16 * hh), qh_shift), m30);
                w[k].val[hh] = vreinterpretq_s8_u8(vorrq_u8(j >> 1 ? vshrq_n_u8(v, 4) : vandq_u8(v, m4), hb));
            }
            /* q <= 63: 4 products per int16 lane */
            X8_UNROLL
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * (QK_K / QKA) + s;
                const int32_t sa = vaddlvq_s8(vld1q_s8(xb->qs)), sb = vaddlvq_s8(vld1q_s8(xb->qs + 16));
                x8_fma(&acc[t], dsa, xb->d, x8_isum(w, 4, xb->qs, 4, -32 * sa));
                x8_fma(&acc[t], dsb, xb->d, x8_isum(w + 4, 4, xb->qs + 16, 4, -32 * sb));
            }
        }
    }
    x8_store(out, acc, nt);
}

/* dot_x8 over X8_TILE tokens a pass, each pass's token count a
 * compile-time constant in the inlined tile */
#define X8_DOT(NAME)                                                                                  \
    static void NAME##_dot_x8(const uint8_t *group, const block_q8a *const *x, int64_t nx, int64_t n, \
                              float *out) {                                                           \
        for (int64_t t = 0; t < nx; t += X8_TILE) {                                                   \
            float *o = out + GROK_PACK_ROWS * t;                                                      \
            switch (nx - t < X8_TILE ? nx - t : X8_TILE) {                                            \
            case 1: x8_##NAME##_tile(group, x + t, n, o, 1); break;                                   \
            case 2: x8_##NAME##_tile(group, x + t, n, o, 2); break;                                   \
            case 3: x8_##NAME##_tile(group, x + t, n, o, 3); break;                                   \
            default: x8_##NAME##_tile(group, x + t, n, o, X8_TILE); break;                            \
            }                                                                                         \
        }                                                                                             \
    }
X8_DOT(q4_0)
X8_DOT(q8_0)
X8_DOT(q4_K)
X8_DOT(q5_K)
X8_DOT(q6_K)

/* grok_quantize_q8a_ref's bytes: the same f32 max, scale and products,
 * and vcvtnq rounds to nearest even as lrintf does (the default rounding
 * mode). vmaxnm ignores a NaN as fmaxf does. */
void grok_quantize_q8a_neon(const float *x, block_q8a *y, int64_t n) {
    for (int64_t b = 0; b < n / QKA; b++, x += QKA) {
        float32x4_t v[8];
        for (int k = 0; k < 8; k++) v[k] = vld1q_f32(x + 4 * k);
        float32x4_t m = vabsq_f32(v[0]);
        uint32x4_t fin = vcleq_f32(m, vdupq_n_f32(FLT_MAX)); /* false for NaN and Inf */
        for (int k = 1; k < 8; k++) {
            const float32x4_t a = vabsq_f32(v[k]);
            m = vmaxnmq_f32(m, a);
            fin = vandq_u32(fin, vcleq_f32(a, vdupq_n_f32(FLT_MAX)));
        }
        if (vminvq_u32(fin) == 0) {
            grok_q8a_nonfinite(&y[b]);
            continue;
        }
        const float amax = vmaxnmvq_f32(m);
        const float id = amax >= 0x1p-120f ? 127.0f / amax : 0.0f, d = id != 0 ? amax / 127.0f : 0.0f;
        int32x4_t q[8], s = vdupq_n_s32(0);
        for (int k = 0; k < 8; k++) q[k] = vcvtnq_s32_f32(vmulq_n_f32(v[k], id)), s = vaddq_s32(s, q[k]);
        for (int k = 0; k < 2; k++) { /* |q| <= 127: the narrowings are exact */
            const int16x8_t lo = vcombine_s16(vmovn_s32(q[4 * k]), vmovn_s32(q[4 * k + 1]));
            const int16x8_t hi = vcombine_s16(vmovn_s32(q[4 * k + 2]), vmovn_s32(q[4 * k + 3]));
            vst1q_s8(y[b].qs + 16 * k, vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)));
        }
        y[b].d = d;
        y[b].sum = vaddvq_s32(s);
    }
}

#include "kernels/arm_neon_qtypes.h"

#define NEON_Q8A(out, NAME)                                                        \
    ((out)->dot_q8a = NAME##_dot_q8a, (out)->dot_q8a_multi = NAME##_dot_q8a_multi, \
     (out)->dot_x8 = NAME##_dot_x8)
void grok_dot_neon(uint32_t type, grok_dot_kernels *out) {
    grok_iq_dot_neon(type, out); /* the i-quants: arm_neon_iquants.c */
    switch (type) {
    case GROK_TYPE_F32: out->dot_f32 = f32_dot; break;
    case GROK_TYPE_F16: out->dot_f32 = f16_dot; break;
    case GROK_TYPE_Q8_0: NEON_Q8A(out, q8_0); break;
    case GROK_TYPE_Q4_0: NEON_Q8A(out, q4_0); break;
    case GROK_TYPE_Q4_K: NEON_Q8A(out, q4_K); break;
    case GROK_TYPE_Q5_K: NEON_Q8A(out, q5_K); break;
    case GROK_TYPE_Q6_K: NEON_Q8A(out, q6_K); break;
    default: qt_neon_register(type, out); break;
    }
}

#else
void grok_dot_neon(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
void grok_quantize_q8a_neon(const float *x, block_q8a *y, int64_t n) { grok_quantize_q8a_ref(x, y, n); }
#endif
