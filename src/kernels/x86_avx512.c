/*
 * x86_avx512.c - the integer dot products of q8_0 and q4_0 weights with
 * 8-bit activations using AVX-512 VNNI (vpdpbusd on 256-bit vectors, via
 * AVX-512VL): one instruction replaces AVX2's maddubs + madd pair and
 * cannot saturate. The f32-activation dots stay AVX2's (they are bound by
 * memory, not by arithmetic). Per-function target attributes keep the
 * rest of the build generic; cpu.c calls these only when the CPU has
 * avx512f, avx512bw, avx512vl and avx512vnni.
 */
#include <string.h>

#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

TGT static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TGT static inline float f16_scale(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

TGT static float q8_0_dot_q8a(const void *row, const block_q8a *x, int64_t n) {
    const uint8_t *p = row;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    const int64_t nb = n / QK8_0;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2, p += 2 * sizeof(block_q8_0)) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(p + 36));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i x1 = _mm256_loadu_si256((const __m256i *)x[b + 1].qs);
        __m256i i0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w0), _mm256_sign_epi8(x0, w0));
        __m256i i1 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w1), _mm256_sign_epi8(x1, w1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p) * x[b].d), _mm256_cvtepi32_ps(i0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p + 34) * x[b + 1].d), _mm256_cvtepi32_ps(i1),
                               acc1);
    }
    for (; b < nb; b++, p += sizeof(block_q8_0)) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i i0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w0), _mm256_sign_epi8(x0, w0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p) * x[b].d), _mm256_cvtepi32_ps(i0), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

TGT static float q4_0_dot_q8a(const void *row, const block_q8a *x, int64_t n) {
    const uint8_t *p = row;
    __m256 acc = _mm256_setzero_ps();
    float corr = 0;
    const __m128i m = _mm_set1_epi8(0x0f);
    for (int64_t b = 0; b < n / QK4_0; b++, p += sizeof(block_q4_0)) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 2));
        __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
        __m256i is = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, _mm256_loadu_si256((const __m256i *)x[b].qs));
        float dd = f16_scale(p) * x[b].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dd), _mm256_cvtepi32_ps(is), acc);
        corr += dd * (float)(8 * x[b].sum);
    }
    return hsum8(acc) - corr;
}

void grok_dot_avx512(uint32_t type, grok_dot_kernels *out) {
    switch (type) {
    case GROK_TYPE_Q8_0: out->dot_q8a = q8_0_dot_q8a; break;
    case GROK_TYPE_Q4_0: out->dot_q8a = q4_0_dot_q8a; break;
    default: break;
    }
}

#else
void grok_dot_avx512(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
#endif
