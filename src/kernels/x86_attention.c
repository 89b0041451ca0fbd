/*
 * x86_attention.c - AVX2/FMA/F16C versions of the attention kernels and
 * the vector math of attention.c: q.k scores for a KV head's whole query
 * group in one pass over the cache, the weighted V sum likewise, and an
 * 8-lane exp and tanh for the soft cap, the softmax and the experts' GELU.
 * Functions carry their own target attribute (as x86_avx2.c's do), so the
 * build stays generic; attention.c uses them only on a CPU with the
 * features. Elsewhere this file provides nothing.
 *
 * Batch independence is kept by construction: every score is one FMA chain
 * over D in order, reduced by one fixed tree, and every output lane one FMA
 * chain over positions in order, whatever block of heads and positions it
 * was computed in; elementwise tails go through the same 8-lane code via a
 * padded buffer, so an element's result does not depend on where a slice
 * starts or ends.
 *
 * exp: n = round(x / ln 2), r = x - n ln 2 (two-part ln 2), exp(r) =
 * 1 + r + r^2 Q(r) with Q a degree-4 least-squares fit on |r| <= ln2/2
 * (relative error ~0.06 ulp before rounding), times 2^n. Results below
 * FLT_MIN are flushed to 0. tanh: for |x| < 0.625, x + x^3 P(x^2) with P
 * a degree-4 fit (0.16 ulp before rounding), since 1 - 2/(e^2x + 1) cancels
 * there; above, that formula with the exp above, which loses at most a
 * bit. The coefficients were fitted for this file (numpy lstsq at
 * Chebyshev nodes, weighted for relative error).
 */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INLINE TGT __attribute__((always_inline)) static inline

INLINE __m256 load8(const uint8_t *p, bool f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)) : _mm256_loadu_ps((const float *)p);
}

static inline float load1(const uint8_t *p, bool f16) {
    if (f16) {
        uint16_t h;
        memcpy(&h, p, 2);
        return grok_fp16_to_fp32(h);
    }
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* Lane j = the sum of a[j]'s lanes, always in the tree
 * ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)). */
INLINE __m256 reduce8(const __m256 *a) {
    const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* np positions x nh heads (np * nh <= 8), one accumulator each, so each
 * K chunk is loaded once for nh heads. */
INLINE void scores_block(const uint8_t *k, size_t stride, bool f16, const float *q, int64_t D, int np, int nh,
                         float *out, int64_t ld) {
    const size_t elt = f16 ? 2 : 4;
    const int64_t D8 = D & ~(int64_t)7;
    __m256 acc[8];
    for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < D8; i += 8) {
        __m256 kv[8];
        for (int p = 0; p < np; p++) kv[p] = load8(k + (size_t)p * stride + (size_t)i * elt, f16);
        for (int h = 0; h < nh; h++) {
            const __m256 qv = _mm256_loadu_ps(q + h * D + i);
            for (int p = 0; p < np; p++) acc[p * nh + h] = _mm256_fmadd_ps(kv[p], qv, acc[p * nh + h]);
        }
    }
    float r[8];
    _mm256_storeu_ps(r, reduce8(acc));
    for (int p = 0; p < np; p++)
        for (int h = 0; h < nh; h++) {
            float s = r[p * nh + h];
            for (int64_t i = D8; i < D; i++)
                s += load1(k + (size_t)p * stride + (size_t)i * elt, f16) * q[h * D + i];
            out[h * ld + p] = s;
        }
}

/* A block of nh heads and the positions that go with them (8/4/2/2 for
 * 1/2/3/4 heads), or a single position (`one`, for the tail). */
INLINE void scores_step(const uint8_t *ks, size_t stride, bool f16, const float *qg, int64_t D, int nh,
                        bool one, float *o, int64_t ld) {
    switch (nh) {
    case 1: scores_block(ks, stride, f16, qg, D, one ? 1 : 8, 1, o, ld); break;
    case 2: scores_block(ks, stride, f16, qg, D, one ? 1 : 4, 2, o, ld); break;
    case 3: scores_block(ks, stride, f16, qg, D, one ? 1 : 2, 3, o, ld); break;
    default: scores_block(ks, stride, f16, qg, D, one ? 1 : 2, 4, o, ld); break;
    }
}

INLINE void scores_t(const uint8_t *k, size_t stride, bool f16, const float *q, int64_t nq, int64_t D,
                     int64_t n, float *out, int64_t ld) {
    for (int64_t g0 = 0; g0 < nq; g0 += 4) {
        const int nh = nq - g0 < 4 ? (int)(nq - g0) : 4;
        const int np = nh == 1 ? 8 : nh == 2 ? 4 : 2;
        int64_t s = 0;
        for (; s + np <= n; s += np)
            scores_step(k + (size_t)s * stride, stride, f16, q + g0 * D, D, nh, false, out + g0 * ld + s, ld);
        for (; s < n; s++)
            scores_step(k + (size_t)s * stride, stride, f16, q + g0 * D, D, nh, true, out + g0 * ld + s, ld);
    }
}

TGT static void vx_scores(const uint8_t *k, size_t stride, grok_type kv_type, const float *q, int64_t nq,
                          int64_t D, int64_t n, float *out, int64_t ld) {
    if (kv_type == GROK_TYPE_F16)
        scores_t(k, stride, true, q, nq, D, n, out, ld);
    else
        scores_t(k, stride, false, q, nq, D, n, out, ld);
}

/* nh heads' outputs over lanes [i, i + 8*nv): 8*nv lanes x nh heads of
 * accumulators, each V chunk loaded once for all heads. */
INLINE void wsum_lanes(const uint8_t *v, size_t stride, bool f16, const float *w, int64_t ld, int nh,
                       int64_t D, int64_t n, float *out, int64_t i, int nv) {
    const size_t elt = f16 ? 2 : 4;
    __m256 a[4][2];
    for (int h = 0; h < 4; h++) a[h][0] = a[h][1] = _mm256_setzero_ps();
    for (int64_t s = 0; s < n; s++) {
        const uint8_t *row = v + (size_t)s * stride + (size_t)i * elt;
        __m256 x[2];
        for (int j = 0; j < nv; j++) x[j] = load8(row + (size_t)(8 * j) * elt, f16);
        for (int h = 0; h < nh; h++) {
            const __m256 wb = _mm256_broadcast_ss(w + h * ld + s);
            for (int j = 0; j < nv; j++) a[h][j] = _mm256_fmadd_ps(wb, x[j], a[h][j]);
        }
    }
    for (int h = 0; h < nh; h++)
        for (int j = 0; j < nv; j++) _mm256_storeu_ps(out + h * D + i + 8 * j, a[h][j]);
}

INLINE void wsum_heads(const uint8_t *v, size_t stride, bool f16, const float *w, int64_t ld, int nh,
                       int64_t D, int64_t n, float *out) {
    const size_t elt = f16 ? 2 : 4;
    const int64_t D8 = D & ~(int64_t)7;
    int64_t i = 0;
    for (; i + 16 <= D8; i += 16) wsum_lanes(v, stride, f16, w, ld, nh, D, n, out, i, 2);
    if (i < D8) wsum_lanes(v, stride, f16, w, ld, nh, D, n, out, i, 1);
    for (i = D8; i < D; i++)
        for (int h = 0; h < nh; h++) {
            float acc = 0;
            for (int64_t s = 0; s < n; s++)
                acc += w[h * ld + s] * load1(v + (size_t)s * stride + (size_t)i * elt, f16);
            out[h * D + i] = acc;
        }
}

INLINE void wsum_t(const uint8_t *v, size_t stride, bool f16, const float *w, int64_t ld, int64_t nq,
                   int64_t D, int64_t n, float *out) {
    for (int64_t g0 = 0; g0 < nq; g0 += 4) {
        const float *wg = w + g0 * ld;
        float *og = out + g0 * D;
        switch (nq - g0) {
        case 1: wsum_heads(v, stride, f16, wg, ld, 1, D, n, og); break;
        case 2: wsum_heads(v, stride, f16, wg, ld, 2, D, n, og); break;
        case 3: wsum_heads(v, stride, f16, wg, ld, 3, D, n, og); break;
        default: wsum_heads(v, stride, f16, wg, ld, 4, D, n, og); break;
        }
    }
}

TGT static void vx_wsum(const uint8_t *v, size_t stride, grok_type kv_type, const float *w, int64_t ld,
                        int64_t nq, int64_t D, int64_t n, float *out) {
    if (kv_type == GROK_TYPE_F16)
        wsum_t(v, stride, true, w, ld, nq, D, n, out);
    else
        wsum_t(v, stride, false, w, ld, nq, D, n, out);
}

/* ---- exp and tanh ---- */

INLINE __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654475f);      /* ln FLT_MIN: below, 0 */
    const __m256 hi = _mm256_set1_ps(88.72283935546875f); /* above, +inf */
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc); /* ln 2, high bits */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);     /* and the rest */
    __m256 p = _mm256_set1_ps(0.00137514074f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.00836891588f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.0416695327f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.166665182f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.499999881f));
    __m256 e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r), _mm256_set1_ps(1.0f));
    /* times 2^n, n in [-126, 128]: 2^128 is not a float, so 2^127 * 2 */
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_min_epi32(ni, _mm256_set1_epi32(127));
    e = _mm256_mul_ps(
        e, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23)));
    e = _mm256_blendv_ps(e, _mm256_add_ps(e, e), _mm256_castsi256_ps(_mm256_cmpgt_epi32(ni, n1)));
    e = _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)); /* NaN stays NaN */
}

INLINE __m256 tanh8(__m256 x) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    const __m256 sign = _mm256_and_ps(x, signbit), ax = _mm256_andnot_ps(signbit, x);
    /* |x| < 0.625: |x| + |x|^3 P(x^2) */
    const __m256 z = _mm256_mul_ps(ax, ax);
    __m256 p = _mm256_set1_ps(-0.0056919856f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(0.0206262916f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-0.0537353195f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(0.13331382f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-0.333332807f));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(ax, z), p, ax);
    /* else 1 - 2/(e^2|x| + 1); tanh(10) is 1.0f already */
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = exp8(
        _mm256_add_ps(_mm256_min_ps(ax, _mm256_set1_ps(10.0f)), _mm256_min_ps(ax, _mm256_set1_ps(10.0f))));
    const __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    const __m256 t = _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
    return _mm256_blendv_ps(_mm256_or_ps(t, sign), x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

INLINE __m256 softcap8(__m256 x, __m256 scale, __m256 cap) {
    return _mm256_mul_ps(cap, tanh8(_mm256_div_ps(_mm256_mul_ps(x, scale), cap)));
}

INLINE __m256 gelu_mul8(__m256 x, __m256 u) {
    const __m256 c = _mm256_set1_ps(0.044715f), k = _mm256_set1_ps(0.7978845608028654f);
    const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(c, x), x), x);
    const __m256 t = tanh8(_mm256_mul_ps(k, _mm256_add_ps(x, x3)));
    const __m256 g =
        _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
    return _mm256_mul_ps(g, u);
}

TGT static void vx_softcap(float *x, int64_t n, float scale, float cap) {
    const __m256 s = _mm256_set1_ps(scale), c = _mm256_set1_ps(cap);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, softcap8(_mm256_loadu_ps(x + i), s, c));
    if (i < n) {
        float b[8] = {0};
        memcpy(b, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(b, softcap8(_mm256_loadu_ps(b), s, c));
        memcpy(x + i, b, (size_t)(n - i) * sizeof(float));
    }
}

/* The sum in double lanes, as the reference sums in double. */
TGT static double vx_exp_sum(float *x, int64_t n, float mx) {
    const __m256 m = _mm256_set1_ps(mx);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    int64_t i = 0;
    for (; i < n; i += 8) {
        float b[8];
        const bool tail = i + 8 > n;
        const float *src = x + i;
        if (tail) {
            for (int j = 0; j < 8; j++) b[j] = i + j < n ? x[i + j] : -INFINITY;
            src = b;
        }
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(src), m));
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        if (tail) {
            _mm256_storeu_ps(b, e);
            memcpy(x + i, b, (size_t)(n - i) * sizeof(float));
        } else {
            _mm256_storeu_ps(x + i, e);
        }
    }
    double l[4];
    _mm256_storeu_pd(l, _mm256_add_pd(s0, s1));
    return (l[0] + l[1]) + (l[2] + l[3]);
}

TGT static void vx_tanh(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, tanh8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float b[8] = {0};
        memcpy(b, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(b, tanh8(_mm256_loadu_ps(b)));
        memcpy(x + i, b, (size_t)(n - i) * sizeof(float));
    }
}

TGT static void vx_gelu_mul(float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(g + i, gelu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        float b[8] = {0}, c[8] = {0};
        memcpy(b, g + i, (size_t)(n - i) * sizeof(float));
        memcpy(c, u + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(b, gelu_mul8(_mm256_loadu_ps(b), _mm256_loadu_ps(c)));
        memcpy(g + i, b, (size_t)(n - i) * sizeof(float));
    }
}

bool grok_vec_avx2(grok_vec_kernels *out) {
    const grok_cpu_features *f = grok_cpu();
    if (!f->avx2 || !f->fma || !f->f16c) return false;
    *out = (grok_vec_kernels){vx_scores, vx_wsum, vx_softcap, vx_exp_sum, vx_tanh, vx_gelu_mul};
    return true;
}

#else
bool grok_vec_avx2(grok_vec_kernels *out) {
    (void)out;
    return false;
}
#endif
