/*
 * kquants.c - the weighted encoders of the k-quants Q2_K..Q6_K, the
 * 32-blocks Q4_0, Q4_1, Q5_0, Q5_1 and the non-linear IQ4_NL and IQ4_XS,
 * with and without an importance matrix (the other i-quants' encoders are in
 * iq_encode.c; decoders and dot products are with the references).
 *
 * A k-quant super-block of 256 values has per-sub-block scales (and, for
 * Q4_K / Q5_K, mins) that are themselves quantized: to 6 bits against an
 * f16 d and dmin, or to 8 signed bits against an f16 d (Q6_K). Encoding is
 * therefore in two steps: fit each sub-block alone, then quantize the fits
 * and re-round every value against the parameters the decoder will see
 * (for Q2_K..Q5_K at a few candidate values of d, keeping the best).
 *
 * A sub-block fit searches the grid step: for 21 steps around range/nmax
 * it rounds the values onto that grid and solves the weighted
 * least-squares scale (and min) for the rounding, keeps the best, then
 * re-rounds with the best fit and solves again while that helps. The
 * weights (|x| + rms of the sub-block) favour the large values, whose
 * errors matter most to a matrix product, without ignoring the small ones.
 * The format is ggml's, so llama.cpp reads these files; the search is this
 * project's own and its choices differ in detail from llama.cpp's
 * quantizer (the test against ggml in the README compares the errors).
 */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/iquants.h"
#include "kernels/qtypes.h"

/* Nearest integer (ties to even) clamped to [lo, hi]; NaN gives lo, so
 * that no float-to-int conversion can overflow. Adding 1.5 * 2^23 leaves
 * the rounded value in the low mantissa bits (|v| < 2^22 here), cheaper
 * than lrintf's library call in the encoders' inner loops. */
static int qround(float v, int lo, int hi) {
    if (!(v > (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    const float r = v + 12582912.0f;
    uint32_t u;
    memcpy(&u, &r, 4);
    return (int)(u & 0x7fffff) - 0x400000;
}

/* The weight of each value's error in the fits. With an importance matrix
 * (imx: each column's mean squared input) it is that alone: a product's
 * expected squared error is sum imx[c] * err[c]^2 when the inputs are
 * uncorrelated, so these weights minimise what the matrix product loses
 * (against imx * (rms + |x|) and imx * sqrt(rms^2 + x^2), these lose 2-7 %
 * less of that error on test_encoders' rows; on the bundled model's KL no
 * one of the three wins every mix, docs/quantization.md). Without one, every
 * column counts alike, and rms + |x| favours the large values, whose
 * errors matter most where a few inputs dominate, without ignoring the
 * small ones. */
static void fit_weights(const float *x, int n, const float *imx, float *w) {
    if (imx) {
        memcpy(w, imx, (size_t)n * sizeof *w);
        return;
    }
    float ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const float rms = sqrtf(ss / (float)n);
    for (int i = 0; i < n; i++) w[i] = rms + fabsf(x[i]);
}

/* The super-block scales tried (fit_super_asym, fit_super_sym): the d
 * that puts the largest sub-block fit on the scales' top code, and
 * SUPER_D_TRIES - 1 larger ones, each putting that fit SUPER_D_STEP codes
 * further below the top.
 * On the bundled model's expert rows this takes 1-5 % off q2_K's, q3_K's,
 * q4_K's and q5_K's weighted error (docs/quantization.md). */
#define SUPER_D_TRIES 4
#define SUPER_D_STEP 1.2f

#define FIT_STEPS 10 /* grid steps (nmax + t/10)/range for t in -10..10 */
#define FIT_ROUNDS 2 /* re-rounding rounds after the search */

/* x[0..n) ~ a*l + b with l in 0..nmax, a >= 0, minimising sum w (a*l + b
 * - x)^2. b <= 0 unless any_b (the k-quants store -b as a non-negative
 * min; q4_1 and q5_1 store b as an f16). Returns the error; *a, *b the fit. */
static float fit_asym(const float *x, const float *w, int n, int nmax, bool any_b, float *a, float *b) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    if (lo > 0 && !any_b) lo = 0;
    float best_a = 0, best_b = lo, best = INFINITY;
    if (!(hi > lo)) { /* all equal (or not finite): the min alone */
        *a = 0, *b = lo;
        return 0;
    }
    for (int t = -FIT_STEPS - 1; t <= FIT_STEPS + FIT_ROUNDS; t++) {
        /* t = -STEPS-1: the plain range/nmax grid; t > STEPS: re-round with the best fit */
        float ia, off;
        if (t < -FIT_STEPS)
            ia = (float)nmax / (hi - lo), off = lo;
        else if (t <= FIT_STEPS)
            ia = ((float)nmax + 0.1f * (float)t) / (hi - lo), off = lo;
        else if (best_a > 0)
            ia = 1.0f / best_a, off = best_b;
        else
            break;
        float sw = 0, sl = 0, sll = 0, sx = 0, slx = 0, sxx = 0;
        for (int i = 0; i < n; i++) {
            const float l = (float)qround((x[i] - off) * ia, 0, nmax);
            sw += w[i], sl += w[i] * l, sll += w[i] * l * l;
            sx += w[i] * x[i], slx += w[i] * l * x[i], sxx += w[i] * x[i] * x[i];
        }
        float ca, cb;
        const float det = sw * sll - sl * sl;
        if (t < -FIT_STEPS) {
            ca = 1.0f / ia, cb = lo;
        } else if (det > 0) {
            ca = (sw * slx - sx * sl) / det, cb = (sll * sx - sl * slx) / det;
            if (cb > 0 && !any_b) cb = 0, ca = slx / sll;
        } else {
            continue;
        }
        if (!(ca >= 0)) continue;
        /* sum w (a l + b - x)^2 from the sums, in double: it is a small
         * difference of large terms */
        const double da = ca, db = cb;
        const double err =
            da * da * sll + 2 * da * db * sl + db * db * sw - 2 * da * slx - 2 * db * sx + (double)sxx;
        if (err < best) best = (float)err, best_a = ca, best_b = cb;
    }
    *a = best_a, *b = best_b;
    return best;
}

/* x[0..n) ~ a*l with l in -nmin..nmin-1, minimising sum w (a*l - x)^2.
 * The value of largest magnitude goes to the -nmin end, which has one step
 * more. */
static float fit_sym(const float *x, const float *w, int n, int nmin, float *a) {
    float amax = 0, mx = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), mx = x[i];
    float best_a = 0, best = INFINITY;
    if (!(amax > 0)) {
        *a = 0;
        return 0;
    }
    for (int t = -FIT_STEPS; t <= FIT_STEPS + FIT_ROUNDS; t++) {
        float ia;
        if (t <= FIT_STEPS)
            ia = -((float)nmin + 0.1f * (float)t) / mx;
        else if (best_a != 0)
            ia = 1.0f / best_a;
        else
            break;
        float sll = 0, slx = 0, sxx = 0;
        for (int i = 0; i < n; i++) {
            const int l = qround(x[i] * ia, -nmin, nmin - 1);
            sll += w[i] * (float)(l * l), slx += w[i] * (float)l * x[i], sxx += w[i] * x[i] * x[i];
        }
        if (!(sll > 0)) continue;
        const float ca = slx / sll;
        const double err = (double)sxx - (double)ca * slx; /* sum w (a l - x)^2 at the optimal a */
        if (err < best) best = (float)err, best_a = ca;
    }
    *a = best_a;
    return best;
}

/* sum w (ds*q - dm - x)^2 with q = round((x + dm)/ds) in 0..nmax, into q. */
static float sub_err_asym(const float *x, const float *w, int n, float ds, float dm, int nmax, uint8_t *q) {
    float e = 0;
    for (int i = 0; i < n; i++) {
        const int l = ds > 0 ? qround((x[i] + dm) / ds, 0, nmax) : 0;
        const float r = ds * (float)l - dm - x[i];
        e += w[i] * r * r;
        q[i] = (uint8_t)l;
    }
    return e;
}

/* sum w (ds*q - x)^2 with q = round(x/ds) in -nmin..nmin-1, into q. */
static float sub_err_sym(const float *x, const float *w, int n, float ds, int nmin, int8_t *q) {
    float e = 0;
    for (int i = 0; i < n; i++) {
        const int l = ds != 0 ? qround(x[i] / ds, -nmin, nmin - 1) : 0;
        const float r = ds * (float)l - x[i];
        e += w[i] * r * r;
        q[i] = (int8_t)l;
    }
    return e;
}

/* The quantized scale and min (0..smax, against the super-block's df, mf)
 * of a sub-block fit a, mn: the nearest and one step either side of each,
 * whichever gives the smallest error with the values rounded again (into
 * q). The scales' rounding costs as much as the values' at 4 to 6 bits. */
static float refine_scale_min(const float *x, const float *w, int n, int nmax, int smax, float df, float mf,
                              float a, float mn, int reach, uint8_t *sc_out, uint8_t *m_out, uint8_t *q) {
    const int sc0 = df > 0 ? qround(a / df, 0, smax) : 0, m0 = mf > 0 ? qround(mn / mf, 0, smax) : 0;
    uint8_t tq[32];
    float best = INFINITY;
    *sc_out = (uint8_t)sc0, *m_out = (uint8_t)m0;
    for (int ds = -reach; ds <= reach; ds++)
        for (int dm = -reach; dm <= reach; dm++) {
            const int sc = sc0 + ds, m = m0 + dm;
            if (sc < 0 || sc > smax || m < 0 || m > smax) continue;
            const float e = sub_err_asym(x, w, n, df * (float)sc, mf * (float)m, nmax, tq);
            if (e < best) best = e, *sc_out = (uint8_t)sc, *m_out = (uint8_t)m, memcpy(q, tq, (size_t)n);
        }
    return best;
}

/* The f16 d and dmin of a super-block of nsub sub-blocks of len values,
 * with each sub-block's quantized scale and min (0..smax) and codes: d
 * (then dmin) is tried at the value that puts the largest fit on smax and
 * at a few slightly larger ones (the largest fit lands a code or so below
 * the top, the small fits round differently); every sub-block takes its
 * best scale and min of refine_scale_min, and the smallest total error
 * wins. */
static void fit_super_asym(const float *x, const float *w, int nsub, int len, int nmax, int smax,
                           const float *a, const float *mn, float amax, float mmax, uint16_t *d,
                           uint16_t *dmin, uint8_t *sc, uint8_t *m, uint8_t *q) {
    const int nc = SUPER_D_TRIES;
    const float step = SUPER_D_STEP / (float)smax;
    float rank[2] = {INFINITY, INFINITY}, fd = 1;
    uint16_t cand[2][2] = {{0, 0}, {0, 0}};
    uint8_t tsc[16], tm[16], tq[QK_K];
    /* ranked with each sub-block's nearest scale and min (a ninth of the
     * work of the search one step either side, which runs for the best two) */
    for (int t = 0; t < 2 * nc - 1; t++) {
        const float cd = t < nc ? 1.0f - step * (float)t : fd,
                    cm = t < nc ? 1.0f : 1.0f - step * (float)(t - nc + 1);
        const uint16_t hd = grok_fp32_to_fp16(amax / ((float)smax * cd)),
                       hm = grok_fp32_to_fp16(mmax / ((float)smax * cm));
        if (t >= nc && hd == cand[0][0] && hm == cand[0][1]) continue;
        const float df = grok_fp16_to_fp32(hd), mf = grok_fp16_to_fp32(hm);
        float e = 0;
        for (int s = 0; s < nsub && e < rank[1]; s++)
            e += refine_scale_min(x + len * s, w + len * s, len, nmax, smax, df, mf, a[s], mn[s], 0, &tsc[s],
                                  &tm[s], tq + len * s);
        if (t == 0 || e < rank[0]) { /* t == 0: something, even for NaN weights */
            rank[1] = rank[0], cand[1][0] = cand[0][0], cand[1][1] = cand[0][1];
            rank[0] = e, cand[0][0] = hd, cand[0][1] = hm;
            if (t < nc) fd = cd;
        } else if (e < rank[1]) {
            rank[1] = e, cand[1][0] = hd, cand[1][1] = hm;
        }
    }
    float best = INFINITY;
    for (int c = 0; c < (rank[1] < INFINITY ? 2 : 1); c++) {
        const float df = grok_fp16_to_fp32(cand[c][0]), mf = grok_fp16_to_fp32(cand[c][1]);
        float e = 0;
        for (int s = 0; s < nsub && e < best; s++)
            e += refine_scale_min(x + len * s, w + len * s, len, nmax, smax, df, mf, a[s], mn[s], 1, &tsc[s],
                                  &tm[s], tq + len * s);
        if (c == 0 || e < best) {
            best = e, *d = cand[c][0], *dmin = cand[c][1];
            memcpy(sc, tsc, (size_t)nsub), memcpy(m, tm, (size_t)nsub), memcpy(q, tq, (size_t)(nsub * len));
        }
    }
}

/* The 6-bit scales and mins of 8 sub-blocks into ggml's 12 bytes (the
 * inverse of grok_kq_scale_min). */
static void pack_scale_min(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
    memset(out, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            out[j] |= sc[j] & 63;
            out[j + 4] |= m[j] & 63;
        } else {
            out[j + 4] = (uint8_t)((sc[j] & 15) | ((m[j] & 15) << 4));
            out[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            out[j] |= (uint8_t)((m[j] >> 4) << 6);
        }
    }
}

/* One Q4_K (nmax 15) or Q5_K (nmax 31) super-block: the 256 quants in value
 * order, d, dmin and the packed scales. */
static void encode_asym(const float *x, const float *imx, int nmax, uint8_t q[QK_K], uint16_t *d,
                        uint16_t *dmin, uint8_t scales[12]) {
    float a[8], mn[8], w[QK_K], amax = 0, mmax = 0;
    for (int s = 0; s < 8; s++) {
        float b;
        fit_weights(x + 32 * s, 32, imx ? imx + 32 * s : NULL, w + 32 * s);
        fit_asym(x + 32 * s, w + 32 * s, 32, nmax, false, &a[s], &b);
        mn[s] = -b;
        amax = fmaxf(amax, a[s]), mmax = fmaxf(mmax, mn[s]);
    }
    uint8_t sc[8], m[8];
    fit_super_asym(x, w, 8, 32, nmax, 63, a, mn, amax, mmax, d, dmin, sc, m, q);
    pack_scale_min(sc, m, scales);
}

static void q4_K_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        block_q4_K b;
        uint8_t q[QK_K];
        encode_asym(src + i * QK_K, imx ? imx + i * QK_K : NULL, 15, q, &b.d, &b.dmin, b.scales);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b.qs[32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

static void q5_K_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        block_q5_K b;
        uint8_t q[QK_K];
        encode_asym(src + i * QK_K, imx ? imx + i * QK_K : NULL, 31, q, &b.d, &b.dmin, b.scales);
        memset(b.qh, 0, sizeof b.qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                const uint8_t lo = q[64 * c + l], hi = q[64 * c + 32 + l];
                b.qs[32 * c + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
                b.qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

static void q6_K_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        block_q6_K b;
        float a[16], w[16], amax = 0;
        for (int k = 0; k < 16; k++) {
            fit_weights(x + 16 * k, 16, imx ? imx + i * QK_K + 16 * k : NULL, w);
            fit_sym(x + 16 * k, w, 16, 32, &a[k]);
            amax = fmaxf(amax, fabsf(a[k]));
        }
        b.d = grok_fp32_to_fp16(amax / 127.0f);
        const float df = grok_fp16_to_fp32(b.d);
        uint8_t q[QK_K];
        for (int k = 0; k < 16; k++) {
            b.scales[k] = (int8_t)(df > 0 ? qround(a[k] / df, -128, 127) : 0);
            const float ds = df * (float)b.scales[k];
            for (int l = 0; l < 16; l++)
                q[16 * k + l] = (uint8_t)(ds != 0 ? qround(x[16 * k + l] / ds, -32, 31) + 32 : 32);
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *qq = q + 128 * h;
            uint8_t *ql = b.ql + 64 * h, *qh = b.qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
                ql[l + 32] = (uint8_t)((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
                qh[l] = (uint8_t)((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) |
                                  ((qq[l + 96] >> 4) << 6));
            }
        }
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* ---- the 32-value types: one f16 scale (and min) per block ----
 * Q4_1 / Q5_1: value = d*q + m, q 0..15 / 0..31; Q5_0: value = d*(q - 16),
 * q 0..31. The same fits as a k-quant's sub-block, with the block's own
 * f16 parameters instead of quantized scales. */

/* Q4_1's and Q5_1's 32 codes (0..nmax) and f16 d, m of one block. */
static void encode_lin(const float *x, const float *imx, int nmax, uint8_t q[32], uint16_t *d, uint16_t *m) {
    float w[32], a, b;
    fit_weights(x, 32, imx, w);
    fit_asym(x, w, 32, nmax, true, &a, &b);
    *d = grok_fp32_to_fp16(a), *m = grok_fp32_to_fp16(b);
    const float df = grok_fp16_to_fp32(*d), mf = grok_fp16_to_fp32(*m);
    for (int l = 0; l < 32; l++) q[l] = df > 0 ? (uint8_t)qround((x[l] - mf) / df, 0, nmax) : 0;
}

static void q4_1_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / 32; i++) {
        block_q4_1 b;
        uint8_t q[32];
        encode_lin(src + i * 32, imx ? imx + i * 32 : NULL, 15, q, &b.d, &b.m);
        for (int l = 0; l < 16; l++) b.qs[l] = (uint8_t)(q[l] | (q[l + 16] << 4));
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* Q5_0's and Q5_1's codes: low nibbles as Q4_0's, the fifth bits in qh. */
static void pack5(const uint8_t q[32], uint8_t qs[16], uint8_t qh[4]) {
    uint32_t h = 0;
    for (int l = 0; l < 16; l++) {
        qs[l] = (uint8_t)((q[l] & 15) | ((q[l + 16] & 15) << 4));
        h |= (uint32_t)(q[l] >> 4) << l | (uint32_t)(q[l + 16] >> 4) << (l + 16);
    }
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
}

static void q5_1_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / 32; i++) {
        block_q5_1 b;
        uint8_t q[32];
        encode_lin(src + i * 32, imx ? imx + i * 32 : NULL, 31, q, &b.d, &b.m);
        pack5(q, b.qs, b.qh);
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* Q4_0's and Q5_0's 32 codes (q + nmin, 0..2*nmin-1) and f16 d of one
 * block: value = d*q, q in -nmin..nmin-1. */
static void encode_sym32(const float *x, const float *imx, int nmin, uint8_t q[32], uint16_t *d) {
    float w[32], a;
    fit_weights(x, 32, imx, w);
    fit_sym(x, w, 32, nmin, &a);
    *d = grok_fp32_to_fp16(a);
    const float df = grok_fp16_to_fp32(*d);
    for (int l = 0; l < 32; l++) q[l] = (uint8_t)(df != 0 ? qround(x[l] / df, -nmin, nmin - 1) + nmin : nmin);
}

/* Q4_0: value = d*(q - 8). Without an imatrix the reference encoder
 * (ggml's rounding: the same bytes as llama-quantize writes); with one the
 * weighted fit. */
static void q4_0_encode(const float *src, void *dst, int64_t n, const float *imx) {
    if (!imx) {
        grok_kernels_get(GROK_TYPE_Q4_0)->from_f32(src, dst, n);
        return;
    }
    for (int64_t i = 0; i < n / 32; i++) {
        block_q4_0 b;
        uint8_t q[32];
        encode_sym32(src + i * 32, imx + i * 32, 8, q, &b.d);
        for (int l = 0; l < 16; l++) b.qs[l] = (uint8_t)(q[l] | (q[l + 16] << 4));
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

static void q5_0_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / 32; i++) {
        block_q5_0 b;
        uint8_t q[32];
        encode_sym32(src + i * 32, imx ? imx + i * 32 : NULL, 16, q, &b.d);
        pack5(q, b.qs, b.qh);
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* The f16 d of a super-block of nsub sub-blocks of len values whose scales
 * are signed (-smin..smin-1, the largest fit mx at -smin or a little
 * short of it), with each sub-block's scale (the nearest to its fit or one
 * step either side) and codes (-nmin..nmin-1): the d of least total error
 * of a few. */
static void fit_super_sym(const float *x, const float *w, int nsub, int len, int nmin, int smin,
                          const float *a, float mx, uint16_t *d, int *sc, int8_t *q) {
    const int nc = SUPER_D_TRIES;
    const float step = SUPER_D_STEP / (float)smin;
    float best = INFINITY;
    int tsc[16];
    int8_t tq[QK_K], bq[32];
    for (int t = 0; t < nc; t++) {
        const uint16_t hd = grok_fp32_to_fp16(mx / (-(float)smin * (1.0f - step * (float)t)));
        const float df = grok_fp16_to_fp32(hd);
        float e = 0;
        for (int s = 0; s < nsub && e < best; s++) {
            const int s0 = df != 0 ? qround(a[s] / df, -smin, smin - 1) : 0;
            float be = INFINITY;
            tsc[s] = s0;
            for (int u = -1; u <= 1; u++) {
                const int c = s0 + u;
                if (c < -smin || c > smin - 1) continue;
                const float es = sub_err_sym(x + len * s, w + len * s, len, df * (float)c, nmin, bq);
                if (es < be) be = es, tsc[s] = c, memcpy(tq + len * s, bq, (size_t)len);
            }
            e += be;
        }
        if (t == 0 || e < best) {
            best = e, *d = hd;
            memcpy(sc, tsc, (size_t)nsub * sizeof *sc), memcpy(q, tq, (size_t)(nsub * len));
        }
    }
}

/* ---- Q2_K and Q3_K: 16 sub-blocks of 16 ----
 * Their sub-block scales have 4 bits (Q2_K, and 4-bit mins) or 6 signed
 * bits (Q3_K): after the fits are quantized against the super-block's f16
 * d (and dmin) each sub-block tries its scale (and min) one step either
 * side, as Q4_K and Q5_K do. */
static void q2_K_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        block_q2_K b;
        float a[16], mn[16], w[QK_K], amax = 0, mmax = 0;
        for (int s = 0; s < 16; s++) {
            float bb;
            fit_weights(x + 16 * s, 16, imx ? imx + i * QK_K + 16 * s : NULL, w + 16 * s);
            fit_asym(x + 16 * s, w + 16 * s, 16, 3, false, &a[s], &bb);
            mn[s] = -bb;
            amax = fmaxf(amax, a[s]), mmax = fmaxf(mmax, mn[s]);
        }
        uint8_t q[QK_K], sc[16], m[16];
        fit_super_asym(x, w, 16, 16, 3, 15, a, mn, amax, mmax, &b.d, &b.dmin, sc, m, q);
        for (int s = 0; s < 16; s++) b.scales[s] = (uint8_t)(sc[s] | (m[s] << 4));
        memset(b.qs, 0, sizeof b.qs);
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 32; l++)
                    b.qs[32 * h + l] |= (uint8_t)(q[128 * h + 32 * j + l] << (2 * j));
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

static void q3_K_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        block_q3_K b;
        float a[16], w[QK_K], amax = 0, mx = 0;
        for (int s = 0; s < 16; s++) {
            fit_weights(x + 16 * s, 16, imx ? imx + i * QK_K + 16 * s : NULL, w + 16 * s);
            fit_sym(x + 16 * s, w + 16 * s, 16, 4, &a[s]);
            if (fabsf(a[s]) > amax) amax = fabsf(a[s]), mx = a[s];
        }
        /* the scale of largest magnitude goes to -32, the end with one step
         * more (or a little short of it: the d of least total error) */
        int8_t q[QK_K];
        int sc[16];
        fit_super_sym(x, w, 16, 16, 4, 32, a, mx, &b.d, sc, q);
        memset(b.scales, 0, sizeof b.scales);
        for (int s = 0; s < 16; s++) {
            const int v = sc[s] + 32;
            b.scales[s % 8] |= (uint8_t)((v & 15) << (s < 8 ? 0 : 4));
            b.scales[8 + s % 4] |= (uint8_t)((v >> 4) << (2 * (s / 4)));
        }
        memset(b.qs, 0, sizeof b.qs);
        memset(b.hmask, 0, sizeof b.hmask);
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 32; l++) {
                    const int v = q[128 * h + 32 * j + l] + 4; /* 0..7 */
                    b.qs[32 * h + l] |= (uint8_t)((v & 3) << (2 * j));
                    b.hmask[l] |= (uint8_t)((v >> 2) << (4 * h + j));
                }
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

/* ---- IQ4_NL and IQ4_XS: 16 fixed non-linear levels times a scale ----
 * The search is the linear types' on this grid: for scales that put the
 * value of largest magnitude at or near either end of the grid (it is not
 * symmetric: -127 .. 113), each value takes its nearest level and the
 * weighted least-squares scale for those levels is solved; the best is
 * kept and its levels chosen again while that helps. */

/* The level of GROK_KVALUES_IQ4NL nearest v (ties to the lower): the
 * nearest level of floor(v) from a table, then one step up where a
 * midpoint between levels lies between floor(v) and v (the midpoints are
 * at least 11 apart, so there is at most one). */
static const float NL_MID[15] = {-115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
                                 7.0f,    19.0f,  31.5f,  45.5f,  61.0f,  79.0f,  101.0f};
/* the nearest level of each integer -128..128 (from NL_MID) */
static const uint8_t NL_LUT[257] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
    1,  1,  1,  1,  1,  1,  1,  1,  1,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    2,  2,  2,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  4,  4,  4,  4,  4,  4,
    4,  4,  4,  4,  4,  4,  4,  4,  4,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  6,  6,  6,  6,
    6,  6,  6,  6,  6,  6,  6,  6,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  8,  8,  8,  8,  8,  8,
    8,  8,  8,  8,  8,  8,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  10, 10, 10, 10, 10, 10, 10, 10,
    10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13,
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
};
static int nl_level(float v) {
    if (!(v > -128.0f)) return 0;
    if (v >= 128.0f) return 15;
    const int k = (int)floorf(v);
    int l = NL_LUT[k + 128];
    if (l < 15 && v > NL_MID[l]) l++;
    return l;
}

#define NL_STEPS 8 /* candidate scales per grid end: the end's level + t, t in -8..8 */

/* x[0..n) ~ d * K[l]: the best d (weighted error sum w (d K[l] - x)^2),
 * returned with the error in *err. */
static float fit_nl(const float *x, const float *w, int n, float *err) {
    float amax = 0, mx = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), mx = x[i];
    float best_d = 0, best = INFINITY;
    if (!(amax > 0)) {
        *err = 0;
        return 0;
    }
    float sxx = 0;
    for (int i = 0; i < n; i++) sxx += w[i] * x[i] * x[i];
    for (int t = -2 * NL_STEPS - 1; t <= 2 * NL_STEPS + 3; t++) {
        float id;
        if (t < 0)
            id = (-127.0f - (float)(t + NL_STEPS + 1)) / mx; /* mx near -127 */
        else if (t <= 2 * NL_STEPS)
            id = (113.0f + (float)(t - NL_STEPS)) / mx; /* mx near 113 */
        else if (best_d != 0)
            id = 1.0f / best_d; /* the best so far, levels chosen again */
        else
            break;
        float skk = 0, skx = 0;
        for (int i = 0; i < n; i++) {
            const float k = (float)GROK_KVALUES_IQ4NL[nl_level(x[i] * id)];
            skk += w[i] * k * k, skx += w[i] * k * x[i];
        }
        if (!(skk > 0)) continue;
        const float d = skx / skk, e = sxx - d * skx;
        if (e < best) best = e, best_d = d;
    }
    *err = best;
    return best_d;
}

/* The levels of x for the scale d into q (0..15), and the weighted error. */
static float nl_assign(const float *x, const float *w, int n, float d, uint8_t *q) {
    float e = 0;
    const float id = d != 0 ? 1.0f / d : 0;
    for (int i = 0; i < n; i++) {
        const int l = nl_level(x[i] * id);
        const float r = d * (float)GROK_KVALUES_IQ4NL[l] - x[i];
        e += w[i] * r * r;
        q[i] = (uint8_t)l;
    }
    return e;
}

static void iq4_nl_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / 32; i++) {
        const float *x = src + i * 32;
        block_iq4_nl b;
        float w[32], e;
        uint8_t q[32];
        fit_weights(x, 32, imx ? imx + i * 32 : NULL, w);
        b.d = grok_fp32_to_fp16(fit_nl(x, w, 32, &e));
        nl_assign(x, w, 32, grok_fp16_to_fp32(b.d), q);
        for (int l = 0; l < 16; l++) b.qs[l] = (uint8_t)(q[l] | (q[l + 16] << 4));
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

static void iq4_xs_encode(const float *src, void *dst, int64_t n, const float *imx) {
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *x = src + i * QK_K;
        block_iq4_xs b;
        float a[8], w[QK_K], amax = 0, mx = 0, e;
        for (int s = 0; s < 8; s++) {
            fit_weights(x + 32 * s, 32, imx ? imx + i * QK_K + 32 * s : NULL, w + 32 * s);
            a[s] = fit_nl(x + 32 * s, w + 32 * s, 32, &e);
            if (fabsf(a[s]) > amax) amax = fabsf(a[s]), mx = a[s];
        }
        b.d = grok_fp32_to_fp16(mx / -32.0f);
        const float df = grok_fp16_to_fp32(b.d);
        uint8_t q[QK_K], tq[32];
        b.scales_h = 0;
        memset(b.scales_l, 0, sizeof b.scales_l);
        for (int s = 0; s < 8; s++) {
            const int s0 = df != 0 ? qround(a[s] / df, -32, 31) : 0;
            int bs = s0;
            float best = INFINITY;
            for (int t = -1; t <= 1; t++) {
                const int c = s0 + t;
                if (c < -32 || c > 31) continue;
                const float ee = nl_assign(x + 32 * s, w + 32 * s, 32, df * (float)c, tq);
                if (ee < best) best = ee, bs = c, memcpy(q + 32 * s, tq, 32);
            }
            const int v = bs + 32;
            b.scales_l[s / 2] |= (uint8_t)((v & 15) << (4 * (s % 2)));
            b.scales_h |= (uint16_t)((v >> 4) << (2 * s));
            for (int l = 0; l < 16; l++)
                b.qs[16 * s + l] = (uint8_t)(q[32 * s + l] | (q[32 * s + l + 16] << 4));
        }
        memcpy((uint8_t *)dst + (size_t)i * sizeof b, &b, sizeof b);
    }
}

void grok_q4_K_from_f32(const float *src, void *dst, int64_t n) { q4_K_encode(src, dst, n, NULL); }
void grok_q5_K_from_f32(const float *src, void *dst, int64_t n) { q5_K_encode(src, dst, n, NULL); }
void grok_q6_K_from_f32(const float *src, void *dst, int64_t n) { q6_K_encode(src, dst, n, NULL); }

/* The weighted encoders by type: one switch, so that what can be encoded
 * with importance data and what can be encoded at all are one list. */
typedef void (*weighted_encoder)(const float *src, void *dst, int64_t n, const float *imx);
static weighted_encoder weighted_encoder_of(uint32_t type) {
    switch (type) {
    case GROK_TYPE_Q4_K: return q4_K_encode;
    case GROK_TYPE_Q5_K: return q5_K_encode;
    case GROK_TYPE_Q6_K: return q6_K_encode;
    case GROK_TYPE_Q4_0: return q4_0_encode;
    case GROK_TYPE_Q4_1: return q4_1_encode;
    case GROK_TYPE_Q5_0: return q5_0_encode;
    case GROK_TYPE_Q5_1: return q5_1_encode;
    case GROK_TYPE_Q2_K: return q2_K_encode;
    case GROK_TYPE_Q3_K: return q3_K_encode;
    case GROK_TYPE_IQ4_NL: return iq4_nl_encode;
    case GROK_TYPE_IQ4_XS: return iq4_xs_encode;
    default: return NULL;
    }
}

/* The i-quants' encoders (iq_encode.c) take the type as an argument. */
bool grok_type_takes_imatrix(uint32_t type) {
    return weighted_encoder_of(type) != NULL || grok_iq_type(type);
}

bool grok_type_can_encode(uint32_t type) {
    const grok_type_kernels *k = grok_kernels_get(type);
    return weighted_encoder_of(type) != NULL || (k && k->from_f32);
}

void grok_from_f32_weighted(uint32_t type, const float *src, void *dst, int64_t n, const float *imx) {
    const weighted_encoder enc = weighted_encoder_of(type);
    if (grok_iq_type(type))
        grok_iq_from_f32_weighted(type, src, dst, n, imx);
    else if (enc)
        enc(src, dst, n, imx);
    else
        grok_kernels_get(type)->from_f32(src, dst, n);
}
