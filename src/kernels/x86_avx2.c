/*
 * x86_avx2.c - AVX2/FMA/F16C dot products for f32, f16, bf16, q8_0 and
 * q4_0 weights, with f32 activations and (quantized types) with 8-bit
 * activations, and the k-quants' 8-bit dots (x86_kquants.h). Each
 * function carries its own target attribute, so the rest of the build
 * stays generic and cpu.c calls these only on a CPU that has the features. On other architectures this file provides
 * nothing (grok_dot_avx2 leaves the table empty).
 *
 * Weight rows lie in the mapped file at any alignment: all loads are
 * unaligned. The integer dots follow ggml's sign trick: maddubs multiplies
 * unsigned by signed bytes, so |w| is paired with x carrying w's sign.
 */
#include <string.h>

#include "kernels/iquants.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <float.h>
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))

TGT static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TGT static float f32_dot(const void *row, const float *x, int64_t n) {
    const float *w = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        GROK_PREFETCH(w + i);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

TGT static inline __m256 load_f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
TGT static inline __m256 load_bf16x8(const uint8_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

TGT static float f16_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        GROK_PREFETCH(p + 2 * i);
        a0 = _mm256_fmadd_ps(load_f16x8(p + 2 * i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load_f16x8(p + 2 * i + 16), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_f16x8(p + 2 * i + 32), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_f16x8(p + 2 * i + 48), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_f16x8(p + 2 * i), _mm256_loadu_ps(x + i), a0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        s += grok_fp16_to_fp32(h) * x[i];
    }
    return s;
}

TGT static float bf16_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        GROK_PREFETCH(p + 2 * i);
        a0 = _mm256_fmadd_ps(load_bf16x8(p + 2 * i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16x8(p + 2 * i + 16), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_bf16x8(p + 2 * i + 32), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_bf16x8(p + 2 * i + 48), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_bf16x8(p + 2 * i), _mm256_loadu_ps(x + i), a0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        s += grok_bf16_to_fp32(h) * x[i];
    }
    return s;
}

TGT static inline float f16_scale(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Eight int8 -> eight floats. */
TGT static inline __m256 i8x8_ps(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

TGT static float q8_0_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; b++, p += sizeof(block_q8_0), x += QK8_0) {
        GROK_PREFETCH(p);
        const uint8_t *q = p + 2;
        __m256 s = _mm256_mul_ps(i8x8_ps(q), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(i8x8_ps(q + 8), _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(i8x8_ps(q + 16), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(i8x8_ps(q + 24), _mm256_loadu_ps(x + 24), s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p)), s, acc);
    }
    return hsum8(acc);
}

/* The 32 nibbles of a q4_0 block as bytes 0..15 in element order. */
TGT static inline __m256i q4_bytes(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

TGT static float q4_0_dot(const void *row, const float *x, int64_t n) {
    const uint8_t *p = row;
    __m256 acc = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t b = 0; b < n / QK4_0; b++, p += sizeof(block_q4_0), x += QK4_0) {
        GROK_PREFETCH(p);
        __m256i q = _mm256_sub_epi8(q4_bytes(p + 2), eight);
        __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))),
                            _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))),
                            _mm256_loadu_ps(x + 24), s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p)), s, acc);
    }
    return hsum8(acc);
}

/* sum of u8 * s8 products of 32 pairs, as 8 int32 lanes. */
TGT static inline __m256i dot_us8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

TGT static float q8_0_dot_q8a(const void *row, const block_q8a *x, int64_t n) {
    const uint8_t *p = row;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    const int64_t nb = n / QK8_0;
    int64_t b = 0;
    /* two blocks per step: independent chains hide the conversion latency */
    for (; b + 2 <= nb; b += 2, p += 2 * sizeof(block_q8_0)) {
        GROK_PREFETCH(p);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(p + 36));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i x1 = _mm256_loadu_si256((const __m256i *)x[b + 1].qs);
        __m256i i0 = dot_us8(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(x0, w0));
        __m256i i1 = dot_us8(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(x1, w1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p) * x[b].d), _mm256_cvtepi32_ps(i0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p + 34) * x[b + 1].d), _mm256_cvtepi32_ps(i1), acc1);
    }
    for (; b < nb; b++, p += sizeof(block_q8_0)) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i i0 = dot_us8(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(x0, w0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p) * x[b].d), _mm256_cvtepi32_ps(i0), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

/* ---- many tokens per weight row ----
 * The tiles below are inlined with nt a constant, so the per-token
 * accumulators are registers (2 x 4 + the shared |w|, w and scale fit in
 * AVX2's 16). Per token they do exactly what q8_0_dot_q8a does, in the
 * same order (same pairing of blocks into two chains, same scalar scale
 * products, same final sums), so each result is the single-token one bit
 * for bit; only the weight work is shared. (q4_0's tiles live in
 * x86_kquants.h, where the single-token dot is the one-token tile.) */
#define INLINE __attribute__((always_inline)) inline

TGT static INLINE void q8_0_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                 const int nt) {
    __m256 acc0[4], acc1[4];
    for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
    const int64_t nb = n / QK8_0;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2, p += 2 * sizeof(block_q8_0)) {
        GROK_PREFETCH(p);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(p + 36));
        __m256i u0 = _mm256_sign_epi8(w0, w0), u1 = _mm256_sign_epi8(w1, w1);
        float d0 = f16_scale(p), d1 = f16_scale(p + 34);
        for (int t = 0; t < nt; t++) {
            const block_q8a *xb = x[t] + b;
            __m256i x0 = _mm256_loadu_si256((const __m256i *)xb[0].qs);
            __m256i x1 = _mm256_loadu_si256((const __m256i *)xb[1].qs);
            __m256i i0 = dot_us8(u0, _mm256_sign_epi8(x0, w0));
            __m256i i1 = dot_us8(u1, _mm256_sign_epi8(x1, w1));
            acc0[t] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * xb[0].d), _mm256_cvtepi32_ps(i0), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(_mm256_set1_ps(d1 * xb[1].d), _mm256_cvtepi32_ps(i1), acc1[t]);
        }
    }
    if (b < nb) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i u0 = _mm256_sign_epi8(w0, w0);
        float d0 = f16_scale(p);
        for (int t = 0; t < nt; t++) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)x[t][b].qs);
            __m256i i0 = dot_us8(u0, _mm256_sign_epi8(x0, w0));
            acc0[t] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * x[t][b].d), _mm256_cvtepi32_ps(i0), acc0[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum8(_mm256_add_ps(acc0[t], acc1[t]));
}

TGT static void q8_0_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                                   float *out) {
    for (int64_t t = 0; t < nx; t += 4) {
        switch (nx - t) {
        case 1: q8_0_tile(row, x + t, n, out + t, 1); break;
        case 2: q8_0_tile(row, x + t, n, out + t, 2); break;
        case 3: q8_0_tile(row, x + t, n, out + t, 3); break;
        default: q8_0_tile(row, x + t, n, out + t, 4); break;
        }
    }
}

/* q4_0's and the k-quants' dots, shared with x86_avx512.c over the 4-byte primitive. */
#define KQ_TILE 4
#define KQ_DOTU(u, s) dot_us8(u, s)
#define KQ_DOTU_ADD(a, u, s) _mm256_add_epi32(a, dot_us8(u, s))
/* maddubs would saturate on quant + 128: flip back to signed, then |w| times x with w's sign */
TGT static inline __m256i q8x8_dot(__m256i a, __m256i u, __m256i x4) {
    const __m256i w = _mm256_xor_si256(u, _mm256_set1_epi8((char)0x80));
    return _mm256_add_epi32(a, dot_us8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x4, w)));
}
#define KQ_Q8X8_DOT(a, u, x4) q8x8_dot(a, u, x4)
#define KQ_Q8X8_START(sum) _mm256_setzero_si256()
#include "kernels/x86_kquants.h"
#include "kernels/x86_qtypes.h"

/* grok_quantize_q8a_ref a block of 32 at a time: the same maximum (exact
 * in any order), the same scalar d and 127/amax, the same products x*id
 * rounded by cvtps2dq in the default nearest-even mode, as lrintf rounds;
 * so the same bytes for finite x. */
TGT void grok_quantize_q8a_avx2(const float *x, block_q8a *y, int64_t n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 fmax = _mm256_set1_ps(FLT_MAX);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7); /* undo the packs' lane interleave */
    for (int64_t b = 0; b < n / QKA; b++, x += QKA) {
        __m256 v[4];
        for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
        __m256 a[4];
        for (int k = 0; k < 4; k++) a[k] = _mm256_and_ps(v[k], absmask);
        /* !(|x| <= FLT_MAX): NaN or Inf, as the scalar isfinite */
        const __m256 big = _mm256_or_ps(
            _mm256_or_ps(_mm256_cmp_ps(a[0], fmax, _CMP_NLE_UQ), _mm256_cmp_ps(a[1], fmax, _CMP_NLE_UQ)),
            _mm256_or_ps(_mm256_cmp_ps(a[2], fmax, _CMP_NLE_UQ), _mm256_cmp_ps(a[3], fmax, _CMP_NLE_UQ)));
        if (_mm256_movemask_ps(big)) {
            grok_q8a_nonfinite(&y[b]);
            continue;
        }
        __m256 m = _mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3]));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float amax = _mm_cvtss_f32(h);
        const float id = amax >= 0x1p-120f ? 127.0f / amax : 0.0f, d = id != 0 ? amax / 127.0f : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vid));
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        const __m256i b8 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)y[b].qs, _mm256_permutevar8x32_epi32(b8, order));
        y[b].d = d;
        y[b].sum = _mm_cvtsi128_si32(s4);
    }
}

void grok_dot_avx2(uint32_t type, grok_dot_kernels *out) {
    kq_register(type, out);
    qt_register(type, out);
    grok_iq_dot_avx2(type, out); /* the i-quants: x86_iquants.c */
    switch (type) {
    case GROK_TYPE_F32: out->dot_f32 = f32_dot; break;
    case GROK_TYPE_F16: out->dot_f32 = f16_dot; break;
    case GROK_TYPE_BF16: out->dot_f32 = bf16_dot; break;
    case GROK_TYPE_Q8_0:
        out->dot_f32 = q8_0_dot, out->dot_q8a = q8_0_dot_q8a, out->dot_q8a_multi = q8_0_dot_q8a_multi;
        break;
    case GROK_TYPE_Q4_0: out->dot_f32 = q4_0_dot; break;
    default: break;
    }
}

#else
void grok_dot_avx2(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
void grok_quantize_q8a_avx2(const float *x, block_q8a *y, int64_t n) { grok_quantize_q8a_ref(x, y, n); }
#endif
