/*
 * reference.c - scalar reference kernels for every computable weight type
 * (f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K), bit-compatible with
 * ggml's encodings, and their dot products with f32 and with 8-bit
 * activations (one token or many per weight row; the k-quant encoders are
 * in kquants.c; the i-quants IQ1-IQ3 have their own file, iquants.c).
 * These are the ground truth that faster kernels are tested against, so
 * they favour plainness.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kernels/iquants.h"
#include "kernels/kernels.h"
#include "kernels/qtypes.h"

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float grok_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13)); /* inf / nan */
    if (exp == 0) {
        /* subnormal or zero: mant * 2^-24 is exact in f32 */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t grok_fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {                      /* below the smallest normal half */
        /* subnormal half: value / 2^-24, rounded to nearest even */
        float v = bits_f32(ax) * 0x1p24f;
        float r = nearbyintf(v); /* default rounding mode: nearest even */
        return sign | (uint16_t)r;
    }
    uint32_t mant = ax & 0x7fffff;
    uint32_t exp = (ax >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* carry may bump the exponent: correct */
    return sign | (uint16_t)h;
}

float grok_bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t grok_fp32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64); /* quiet nan */
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

/* ---- f32 ---- */
static void f32_to_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void f32_from_f32(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static float f32_dot(const void *row, const float *x, int64_t n) {
    const float *w = row;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

/* ---- f16 ---- (rows may be unaligned in a file: read through memcpy) */
static void f16_to_f32(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = grok_fp16_to_fp32(h);
    }
}
static void f16_from_f32(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = grok_fp32_to_fp16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}
static float f16_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        s += grok_fp16_to_fp32(h) * x[i];
    }
    return s;
}

/* ---- bf16 ---- */
static void bf16_to_f32(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = grok_bf16_to_fp32(h);
    }
}
static void bf16_from_f32(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = grok_fp32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}
static float bf16_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        s += grok_bf16_to_fp32(h) * x[i];
    }
    return s;
}

/* ---- q8_0: blocks of 32 int8 with one f16 scale; value = d * q ---- */
static void q8_0_to_f32(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        block_q8_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        float d = grok_fp16_to_fp32(blk.d);
        for (int j = 0; j < QK8_0; j++) dst[b * QK8_0 + j] = d * (float)blk.qs[j];
    }
}
static bool all_finite(const float *x, int n) {
    bool ok = true;
    for (int j = 0; j < n; j++) ok &= isfinite(x[j]) != 0;
    return ok;
}

/* ggml's reference: d = max|x| / 127, q = round(x / d) (half away from
 * zero). A block holding NaN or Inf gets a NaN scale and zero quants. */
/* round(v) for v in [-127, 127]; clamped outside it, 0 for NaN (a
 * subnormal block maximum makes 1/d overflow, and 0 * inf is NaN). */
static int q8_0_level(float v) {
    return v >= 127.0f ? 127 : v <= -127.0f ? -127 : v == v ? (int)roundf(v) : 0;
}

static void q8_0_from_f32(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const float *x = src + b * QK8_0;
        float amax = 0;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        block_q8_0 blk = {GROK_FP16_NAN, {0}}; /* the non-finite value stays visible in the file */
        if (all_finite(x, QK8_0)) {
            blk.d = grok_fp32_to_fp16(d);
            for (int j = 0; j < QK8_0; j++) blk.qs[j] = (int8_t)q8_0_level(x[j] * id);
        }
        memcpy(p + b * sizeof blk, &blk, sizeof blk);
    }
}
static float q8_0_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    float s = 0;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        block_q8_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        float bs = 0;
        for (int j = 0; j < QK8_0; j++) bs += (float)blk.qs[j] * x[b * QK8_0 + j];
        s += grok_fp16_to_fp32(blk.d) * bs;
    }
    return s;
}

/* ---- q4_0: blocks of 32 4-bit values with one f16 scale; value = d * (q - 8) ---- */
static void q4_0_to_f32(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        block_q4_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        float d = grok_fp16_to_fp32(blk.d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[b * QK4_0 + j] = d * (float)((blk.qs[j] & 0x0f) - 8);
            dst[b * QK4_0 + j + QK4_0 / 2] = d * (float)((blk.qs[j] >> 4) - 8);
        }
    }
}
/* ggml's reference rounding: the value of largest magnitude (sign kept)
 * maps to -8, d = that value / -8, q = min(15, trunc(x/d + 8.5)). A block
 * holding NaN or Inf gets a NaN scale and quants of 8 (zeros). */
/* min(15, trunc(v)) as ggml takes it for v in [0, 16.5]; outside that
 * (a subnormal block maximum makes 1/d overflow) clamped, so no float to
 * int conversion can overflow. */
static int q4_0_level(float v) { return v >= 15.0f ? 15 : v > 0 ? (int)v : 0; }

static void q4_0_from_f32(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        const float *x = src + b * QK4_0;
        float amax = 0, max = 0;
        for (int j = 0; j < QK4_0; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        float d = max / -8.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        block_q4_0 blk;
        blk.d = grok_fp32_to_fp16(d);
        if (!all_finite(x, QK4_0)) { /* a NaN scale and zeros, as q8_0_from_f32 */
            blk.d = GROK_FP16_NAN;
            memset(blk.qs, 0x88, sizeof blk.qs);
            memcpy(p + b * sizeof blk, &blk, sizeof blk);
            continue;
        }
        for (int j = 0; j < QK4_0 / 2; j++)
            blk.qs[j] =
                (uint8_t)(q4_0_level(x[j] * id + 8.5f) | (q4_0_level(x[j + QK4_0 / 2] * id + 8.5f) << 4));
        memcpy(p + b * sizeof blk, &blk, sizeof blk);
    }
}
static float q4_0_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    float s = 0;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        block_q4_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        const float *xb = x + b * QK4_0;
        float bs = 0;
        for (int j = 0; j < QK4_0 / 2; j++)
            bs += (float)((blk.qs[j] & 0x0f) - 8) * xb[j] + (float)((blk.qs[j] >> 4) - 8) * xb[j + 16];
        s += grok_fp16_to_fp32(blk.d) * bs;
    }
    return s;
}

/* ---- 8-bit activations ---- */
void grok_quantize_q8a_ref(const float *x, block_q8a *y, int64_t n) {
    for (int64_t b = 0; b < n / QKA; b++) {
        const float *xb = x + b * QKA;
        float amax = 0;
        bool finite = true;
        for (int j = 0; j < QKA; j++) amax = fmaxf(amax, fabsf(xb[j])), finite &= isfinite(xb[j]) != 0;
        if (!finite) {
            grok_q8a_nonfinite(&y[b]);
            continue;
        }
        /* below 2^-120 127/amax could overflow to inf: such a block is zero */
        const float id = amax >= 0x1p-120f ? 127.0f / amax : 0.0f, d = id != 0 ? amax / 127.0f : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < QKA; j++) {
            int q = (int)lrintf(xb[j] * id); /* |q| <= 127 since |x*id| <= 127 */
            y[b].qs[j] = (int8_t)q;
            sum += q;
        }
        y[b].d = d;
        y[b].sum = sum;
    }
}

/* Integer sums per block are exact; only the per-block scaling rounds. */
static float q8_0_dot_q8a(const void *row, const block_q8a *x, int64_t n) {
    const uint8_t *p = row;
    float s = 0;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        block_q8_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        int32_t is = 0;
        for (int j = 0; j < QK8_0; j++) is += (int32_t)blk.qs[j] * x[b].qs[j];
        s += grok_fp16_to_fp32(blk.d) * x[b].d * (float)is;
    }
    return s;
}
static float q4_0_dot_q8a(const void *row, const block_q8a *x, int64_t n) {
    const uint8_t *p = row;
    float s = 0;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        block_q4_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        int32_t is = 0;
        for (int j = 0; j < QK4_0 / 2; j++)
            is += ((blk.qs[j] & 0x0f) - 8) * x[b].qs[j] + ((blk.qs[j] >> 4) - 8) * x[b].qs[j + 16];
        s += grok_fp16_to_fp32(blk.d) * x[b].d * (float)is;
    }
    return s;
}

/* Many tokens per weight row: block by block, each token's sum taken as
 * the single-token dots above take it, so the results are theirs exactly. */
static void q8_0_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                               float *out) {
    const uint8_t *p = row;
    for (int64_t t = 0; t < nx; t++) out[t] = 0;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        block_q8_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        float d = grok_fp16_to_fp32(blk.d);
        for (int64_t t = 0; t < nx; t++) {
            int32_t is = 0;
            for (int j = 0; j < QK8_0; j++) is += (int32_t)blk.qs[j] * x[t][b].qs[j];
            out[t] += d * x[t][b].d * (float)is;
        }
    }
}
static void q4_0_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                               float *out) {
    const uint8_t *p = row;
    for (int64_t t = 0; t < nx; t++) out[t] = 0;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        block_q4_0 blk;
        memcpy(&blk, p + b * sizeof blk, sizeof blk);
        float d = grok_fp16_to_fp32(blk.d);
        for (int64_t t = 0; t < nx; t++) {
            int32_t is = 0;
            for (int j = 0; j < QK4_0 / 2; j++)
                is += ((blk.qs[j] & 0x0f) - 8) * x[t][b].qs[j] + ((blk.qs[j] >> 4) - 8) * x[t][b].qs[j + 16];
            out[t] += d * x[t][b].d * (float)is;
        }
    }
}

/* ---- k-quants (Q4_K, Q5_K, Q6_K): super-blocks of 256 ----
 * Each super-block is unpacked into its quants in value order and its
 * sub-block parameters; decoding and the dots work from that. The values
 * are formed in ggml's order of operations ((d*sc)*q - dmin*m for Q4_K and
 * Q5_K, (d*sc)*(q-32) for Q6_K), so they equal ggml's bit for bit. */
typedef struct {
    uint8_t q[QK_K]; /* 0..15 (Q4_K), 0..31 (Q5_K), 0..63 (Q6_K) */
    int8_t sc[16];   /* per sub-block: 8 of 32 values (Q4_K, Q5_K) or 16 of 16 (Q6_K) */
    uint8_t m[8];    /* Q4_K, Q5_K: the mins' 6-bit codes */
    float d, dmin;
} kq_block;

static size_t kq_bytes(uint32_t type) {
    return type == GROK_TYPE_Q4_K   ? sizeof(block_q4_K)
           : type == GROK_TYPE_Q5_K ? sizeof(block_q5_K)
                                    : sizeof(block_q6_K);
}

static void kq_unpack(uint32_t type, const uint8_t *p, kq_block *k) {
    if (type == GROK_TYPE_Q6_K) {
        block_q6_K b;
        memcpy(&b, p, sizeof b);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b.ql + 64 * h, *qh = b.qh + 32 * h;
            uint8_t *q = k->q + 128 * h;
            for (int l = 0; l < 32; l++) {
                q[l] = (uint8_t)((ql[l] & 15) | ((qh[l] & 3) << 4));
                q[l + 32] = (uint8_t)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4));
                q[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                q[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
        }
        memcpy(k->sc, b.scales, 16);
        k->d = grok_fp16_to_fp32(b.d), k->dmin = 0;
        return;
    }
    /* Q4_K and Q5_K share the header and the nibble layout */
    block_q5_K b;
    const uint8_t *qs;
    if (type == GROK_TYPE_Q4_K) {
        block_q4_K b4;
        memcpy(&b4, p, sizeof b4);
        memcpy(&b, &b4, offsetof(block_q5_K, qh));
        memset(b.qh, 0, sizeof b.qh);
        memcpy(b.qs, b4.qs, sizeof b.qs);
    } else {
        memcpy(&b, p, sizeof b);
    }
    qs = b.qs;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            k->q[64 * c + l] = (uint8_t)((qs[32 * c + l] & 15) | (((b.qh[l] >> (2 * c)) & 1) << 4));
            k->q[64 * c + 32 + l] = (uint8_t)((qs[32 * c + l] >> 4) | (((b.qh[l] >> (2 * c + 1)) & 1) << 4));
        }
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        grok_kq_scale_min(b.scales, j, &sc, &m);
        k->sc[j] = (int8_t)sc, k->m[j] = m;
    }
    k->d = grok_fp16_to_fp32(b.d), k->dmin = grok_fp16_to_fp32(b.dmin);
}

static void kq_values(uint32_t type, const kq_block *k, float *y) {
    if (type == GROK_TYPE_Q6_K) {
        for (int j = 0; j < QK_K; j++) y[j] = k->d * (float)k->sc[j / 16] * (float)(k->q[j] - 32);
        return;
    }
    for (int s = 0; s < 8; s++) {
        const float ds = k->d * (float)k->sc[s], ms = k->dmin * (float)k->m[s];
        for (int l = 0; l < 32; l++) y[32 * s + l] = ds * (float)k->q[32 * s + l] - ms;
    }
}

static void kq_to_f32(uint32_t type, const void *src, float *dst, int64_t n) {
    kq_block k;
    for (int64_t b = 0; b < n / QK_K; b++) {
        kq_unpack(type, (const uint8_t *)src + (size_t)b * kq_bytes(type), &k);
        kq_values(type, &k, dst + b * QK_K);
    }
}

static float kq_dot(uint32_t type, const void *row, const float *x, int64_t n) {
    kq_block k;
    float y[QK_K], s = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        kq_unpack(type, (const uint8_t *)row + (size_t)b * kq_bytes(type), &k);
        kq_values(type, &k, y);
        for (int j = 0; j < QK_K; j++) s += y[j] * x[b * QK_K + j];
    }
    return s;
}

/* One super-block against its 8 activation blocks. The integer sum of
 * each 32-value block is exact; Q4_K / Q5_K's min term uses the blocks'
 * quant sums (sum_j m*x_j = m * sum), Q6_K's 16-value sub-blocks weight the
 * two halves of an activation block's sum with their own scales. */
static float kq_block_dot_q8a(uint32_t type, const kq_block *k, const block_q8a *x) {
    if (type == GROK_TYPE_Q6_K) {
        float sa = 0;
        for (int s = 0; s < 8; s++) {
            int32_t is = 0;
            for (int j = 0; j < 32; j++) is += k->sc[2 * s + j / 16] * (k->q[32 * s + j] - 32) * x[s].qs[j];
            sa += x[s].d * (float)is;
        }
        return k->d * sa;
    }
    float sa = 0, sm = 0;
    for (int s = 0; s < 8; s++) {
        int32_t is = 0;
        for (int j = 0; j < 32; j++) is += k->q[32 * s + j] * x[s].qs[j];
        sa += x[s].d * (float)(k->sc[s] * is);
        sm += x[s].d * (float)(k->m[s] * x[s].sum);
    }
    return k->d * sa - k->dmin * sm;
}

static float kq_dot_q8a(uint32_t type, const void *row, const block_q8a *x, int64_t n) {
    kq_block k;
    float s = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        kq_unpack(type, (const uint8_t *)row + (size_t)b * kq_bytes(type), &k);
        s += kq_block_dot_q8a(type, &k, x + b * (QK_K / QKA));
    }
    return s;
}

static void kq_dot_q8a_multi(uint32_t type, const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                             float *out) {
    kq_block k;
    for (int64_t t = 0; t < nx; t++) out[t] = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        kq_unpack(type, (const uint8_t *)row + (size_t)b * kq_bytes(type), &k);
        for (int64_t t = 0; t < nx; t++) out[t] += kq_block_dot_q8a(type, &k, x[t] + b * (QK_K / QKA));
    }
}

/* The tables take one function per type. */
#define KQ_FUNCS(T, NAME)                                                                                \
    static void NAME##_to_f32(const void *src, float *dst, int64_t n) { kq_to_f32(T, src, dst, n); }     \
    static float NAME##_dot(const void *row, const float *x, int64_t n) { return kq_dot(T, row, x, n); } \
    static float NAME##_dot_q8a(const void *row, const block_q8a *x, int64_t n) {                        \
        return kq_dot_q8a(T, row, x, n);                                                                 \
    }                                                                                                    \
    static void NAME##_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,  \
                                     float *out) {                                                       \
        kq_dot_q8a_multi(T, row, x, nx, n, out);                                                         \
    }
KQ_FUNCS(GROK_TYPE_Q4_K, q4_K)
KQ_FUNCS(GROK_TYPE_Q5_K, q5_K)
KQ_FUNCS(GROK_TYPE_Q6_K, q6_K)

static const grok_type_kernels KERNELS[GROK_TYPE_COUNT] = {
    [GROK_TYPE_F32] = {f32_to_f32, f32_from_f32, f32_dot},
    [GROK_TYPE_F16] = {f16_to_f32, f16_from_f32, f16_dot},
    [GROK_TYPE_BF16] = {bf16_to_f32, bf16_from_f32, bf16_dot},
    [GROK_TYPE_Q8_0] = {q8_0_to_f32, q8_0_from_f32, q8_0_dot},
    [GROK_TYPE_Q4_0] = {q4_0_to_f32, q4_0_from_f32, q4_0_dot},
    [GROK_TYPE_Q4_K] = {q4_K_to_f32, grok_q4_K_from_f32, q4_K_dot},
    [GROK_TYPE_Q5_K] = {q5_K_to_f32, grok_q5_K_from_f32, q5_K_dot},
    [GROK_TYPE_Q6_K] = {q6_K_to_f32, grok_q6_K_from_f32, q6_K_dot},
};

static const grok_dot_kernels DOTS[GROK_TYPE_COUNT] = {
    [GROK_TYPE_F32] = {.dot_f32 = f32_dot},
    [GROK_TYPE_F16] = {.dot_f32 = f16_dot},
    [GROK_TYPE_BF16] = {.dot_f32 = bf16_dot},
    [GROK_TYPE_Q8_0] = {.dot_f32 = q8_0_dot, .dot_q8a = q8_0_dot_q8a, .dot_q8a_multi = q8_0_dot_q8a_multi},
    [GROK_TYPE_Q4_0] = {.dot_f32 = q4_0_dot, .dot_q8a = q4_0_dot_q8a, .dot_q8a_multi = q4_0_dot_q8a_multi},
    [GROK_TYPE_Q4_K] = {.dot_f32 = q4_K_dot, .dot_q8a = q4_K_dot_q8a, .dot_q8a_multi = q4_K_dot_q8a_multi},
    [GROK_TYPE_Q5_K] = {.dot_f32 = q5_K_dot, .dot_q8a = q5_K_dot_q8a, .dot_q8a_multi = q5_K_dot_q8a_multi},
    [GROK_TYPE_Q6_K] = {.dot_f32 = q6_K_dot, .dot_q8a = q6_K_dot_q8a, .dot_q8a_multi = q6_K_dot_q8a_multi},
};

/* The i-quants (iquants.c) and the types of qtypes.h (qtypes.c) have their own tables. */
const grok_type_kernels *grok_kernels_get(uint32_t type) {
    if (grok_iq_type(type)) return grok_iq_kernels(type);
    if (type >= GROK_TYPE_COUNT) return NULL;
    if (KERNELS[type].dot_f32 == NULL) return grok_qtypes_kernels(type);
    return &KERNELS[type];
}

const grok_dot_kernels *grok_dot_reference(uint32_t type) {
    if (grok_iq_type(type)) return grok_iq_dot_reference(type);
    if (type >= GROK_TYPE_COUNT) return NULL;
    if (DOTS[type].dot_f32 == NULL) return grok_qtypes_dot_reference(type);
    return &DOTS[type];
}
