/*
 * x86_avx512.c - the integer dot products of q8_0, q4_0 and the k-quants'
 * weights with 8-bit activations using AVX-512 VNNI (vpdpbusd, mostly on
 * 256-bit vectors via AVX-512VL; packed q4_0 on 512-bit ones): one
 * instruction replaces AVX2's maddubs + madd pair and cannot saturate. The f32-activation dots stay AVX2's (they are bound by
 * memory, not by arithmetic). Per-function target attributes keep the
 * rest of the build generic; cpu.c calls these only when the CPU has
 * avx512f, avx512bw, avx512vl and avx512vnni.
 */
#include <string.h>

#include "kernels/iquants.h"
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
        GROK_PREFETCH(p);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(p + 36));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i x1 = _mm256_loadu_si256((const __m256i *)x[b + 1].qs);
        __m256i i0 =
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w0), _mm256_sign_epi8(x0, w0));
        __m256i i1 =
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w1), _mm256_sign_epi8(x1, w1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p) * x[b].d), _mm256_cvtepi32_ps(i0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p + 34) * x[b + 1].d), _mm256_cvtepi32_ps(i1), acc1);
    }
    for (; b < nb; b++, p += sizeof(block_q8_0)) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i i0 =
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w0), _mm256_sign_epi8(x0, w0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_scale(p) * x[b].d), _mm256_cvtepi32_ps(i0), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

/* ---- many tokens per weight row ----
 * As in x86_avx2.c: tiles inlined with a constant token count, per token
 * the single-token dot's operations in its order (results equal bit for
 * bit), the weight block's load, |w|, nibble split and scale shared.
 * AVX-512 has 32 vector registers, so a tile takes 8 tokens (16 q8_0
 * accumulators + the shared values). */
#define INLINE __attribute__((always_inline)) inline
#define TILE 8

/* q4_0's and the k-quants' dots (x86_kquants.h), with vpdpbusd as the primitive. */
#define KQ_TILE TILE
#define KQ_DOTU(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#define KQ_DOTU_ADD(a, u, s) _mm256_dpbusd_epi32(a, u, s)
#define KQ_Q8X8_DOT(a, u, x4) _mm256_dpbusd_epi32(a, u, x4)
#define KQ_Q8X8_START(sum) _mm256_set1_epi32(-128 * (sum))
#include "kernels/x86_kquants.h"
#define QT_VNNI 1 /* x86_qtypes.h: signed codes meet the activations as unsigned ones plus 128 */
#include "kernels/x86_qtypes.h"

/* q8_0 tiles take activations prepared by q8_0_multi_prep: each quant
 * byte x stored as the unsigned x + 128. vpdpbusd then multiplies the
 * unsigned activation by the signed weight directly, and the 128 * w the
 * bias adds is taken off by starting every lane's sum from -128 * (its four
 * w), computed once per weight block for all tokens. The integer lanes are
 * exactly the single-token dot's (sum of four w * x), so results stay equal
 * bit for bit, while each token's block costs one vpdpbusd instead of a
 * sign and a vpdpbusd. Each token's scale is its f32 d broadcast from
 * memory times the weight scale, the same IEEE product the single-token
 * dot forms in a scalar register. */
TGT static void q8_0_multi_prep(block_q8a *x, int64_t nb) {
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int64_t b = 0; b < nb; b++)
        _mm256_storeu_si256((__m256i *)x[b].qs,
                            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)x[b].qs), bias));
}

/* -128 * (sum of each lane's four weights): the lanes' starting values. */
TGT static inline __m256i q8_0_unbias(__m256i w) {
    return _mm256_sub_epi32(_mm256_setzero_si256(),
                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)0x80), w));
}

TGT static INLINE void q8_0_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                 const int nt) {
    __m256 acc0[TILE], acc1[TILE];
    for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
    const int64_t nb = n / QK8_0;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2, p += 2 * sizeof(block_q8_0)) {
        GROK_PREFETCH(p);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(p + 36));
        __m256i c0 = q8_0_unbias(w0), c1 = q8_0_unbias(w1);
        __m256 d0 = _mm256_set1_ps(f16_scale(p)), d1 = _mm256_set1_ps(f16_scale(p + 34));
        for (int t = 0; t < nt; t++) {
            const block_q8a *xb = x[t] + b;
            __m256i i0 = _mm256_dpbusd_epi32(c0, _mm256_loadu_si256((const __m256i *)xb[0].qs), w0);
            __m256i i1 = _mm256_dpbusd_epi32(c1, _mm256_loadu_si256((const __m256i *)xb[1].qs), w1);
            acc0[t] = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_broadcast_ss(&xb[0].d)),
                                      _mm256_cvtepi32_ps(i0), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(_mm256_mul_ps(d1, _mm256_broadcast_ss(&xb[1].d)),
                                      _mm256_cvtepi32_ps(i1), acc1[t]);
        }
    }
    if (b < nb) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + 2));
        __m256i c0 = q8_0_unbias(w0);
        __m256 d0 = _mm256_set1_ps(f16_scale(p));
        for (int t = 0; t < nt; t++) {
            __m256i i0 = _mm256_dpbusd_epi32(c0, _mm256_loadu_si256((const __m256i *)x[t][b].qs), w0);
            acc0[t] = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_broadcast_ss(&x[t][b].d)),
                                      _mm256_cvtepi32_ps(i0), acc0[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum8(_mm256_add_ps(acc0[t], acc1[t]));
}

TGT static void q8_0_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                                   float *out) {
    for (int64_t t = 0; t < nx; t += TILE)
        KQ_NT_SWITCH(nx - t < TILE ? nx - t : TILE, q8_0_tile, row, x + t, n, out + t)
}

/* q4_0, two packed groups per pass in 512-bit vectors: lanes 0-7 are the
 * first group's rows, 8-15 the second's. Each lane does what the 256-bit
 * tile does for its row (the same exact integer sums, then the same
 * convert, multiply and FMA), so results equal dot_x8's bit for bit, with
 * half the instructions per row. matmul.c uses it for batches (prompts),
 * where the 256-bit tile is bound by instruction throughput. */
TGT static INLINE void q4_0_x16_tile(const uint8_t *p, size_t stride, const block_q8a *const *x, int64_t n,
                                     float *out, const int nt) {
    __m512 acc[TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const uint8_t *q = p + stride;
    for (int64_t b = 0; b < n / QK4_0;
         b++, p += GROK_PACK_ROWS * sizeof(block_q4_0), q += GROK_PACK_ROWS * sizeof(block_q4_0)) {
        KQ_PREFETCH(p, GROK_PACK_ROWS * sizeof(block_q4_0));
        KQ_PREFETCH(q, GROK_PACK_ROWS * sizeof(block_q4_0));
        const __m512 dw = _mm512_cvtph_ps(
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                    _mm_loadu_si128((const __m128i *)q), 1));
        __m512i lo[4], hi[4];
        for (int c = 0; c < 4; c++) {
            const __m512i v = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c))),
                _mm256_loadu_si256((const __m256i *)(q + 16 + 32 * c)), 1);
            lo[c] = _mm512_and_si512(v, m4), hi[c] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        for (int t = 0; t < nt; t++) {
            const block_q8a *xb = x[t] + b;
            __m512i ia = _mm512_set1_epi32(-8 * xb->sum), ib = _mm512_setzero_si512();
            for (int c = 0; c < 4; c++) {
                int32_t l, h;
                memcpy(&l, xb->qs + 4 * c, 4);
                memcpy(&h, xb->qs + 16 + 4 * c, 4);
                ia = _mm512_dpbusd_epi32(ia, lo[c], _mm512_set1_epi32(l));
                ib = _mm512_dpbusd_epi32(ib, hi[c], _mm512_set1_epi32(h));
            }
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(xb->d)),
                                     _mm512_cvtepi32_ps(_mm512_add_epi32(ia, ib)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + 2 * GROK_PACK_ROWS * t, acc[t]);
}

TGT static void q4_0_dot_x16(const uint8_t *group, size_t stride, const block_q8a *const *x, int64_t nx,
                             int64_t n, float *out) {
    for (int64_t t = 0; t < nx; t += TILE)
        KQ_NT_SWITCH(nx - t < TILE ? nx - t : TILE, q4_0_x16_tile, group, stride, x + t, n,
                     out + 2 * GROK_PACK_ROWS * t)
}

/* One token over a packed q4_0 group in 512-bit vectors: a 64-byte load
 * holds chunks c and c+1 (lanes 0-7 and 8-15 are the 8 rows' bytes of
 * each), and vpermd spreads the activation's dwords c and c+1 over the
 * two halves; the high nibbles stay in place (16 x q, taken off by one
 * shift). The lanes r and r+8 then fold into row r's exact integer sum,
 * which is scaled as kq_q4_0x8_tile scales it, so the results equal the
 * tile's bit for bit with half the dot instructions. */
TGT static void q4_0_x8_one(const uint8_t *p, const block_q8a *x, int64_t n, float *out) {
    __m256 acc = _mm256_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f), mhi = _mm512_set1_epi8((char)0xf0);
    const __m512i pick01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i pick23 = _mm512_add_epi32(pick01, _mm512_set1_epi32(2));
    const __m512i pick45 = _mm512_add_epi32(pick01, _mm512_set1_epi32(4));
    const __m512i pick67 = _mm512_add_epi32(pick01, _mm512_set1_epi32(6));
    for (int64_t b = 0; b < n / QK4_0; b++, p += GROK_PACK_ROWS * sizeof(block_q4_0)) {
        KQ_PREFETCH(p, GROK_PACK_ROWS * sizeof(block_q4_0));
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        const __m512i v01 = _mm512_loadu_si512(p + 16), v23 = _mm512_loadu_si512(p + 80);
        const __m512i xv = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[b].qs));
        /* the -8 offset once per row: in lanes 0-7 only, as the halves add up */
        __m512i ia = _mm512_maskz_set1_epi32(0x00ff, -8 * x[b].sum), ib = _mm512_setzero_si512();
        ia = _mm512_dpbusd_epi32(ia, _mm512_and_si512(v01, m4), _mm512_permutexvar_epi32(pick01, xv));
        ib = _mm512_dpbusd_epi32(ib, _mm512_and_si512(v01, mhi), _mm512_permutexvar_epi32(pick45, xv));
        ia = _mm512_dpbusd_epi32(ia, _mm512_and_si512(v23, m4), _mm512_permutexvar_epi32(pick23, xv));
        ib = _mm512_dpbusd_epi32(ib, _mm512_and_si512(v23, mhi), _mm512_permutexvar_epi32(pick67, xv));
        const __m512i s = _mm512_add_epi32(ia, _mm512_srai_epi32(ib, 4));
        const __m256i s8 = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
        acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&x[b].d)), _mm256_cvtepi32_ps(s8), acc);
    }
    _mm256_storeu_ps(out, acc);
}

TGT static void q4_0_dot_x8_512(const uint8_t *group, const block_q8a *const *x, int64_t nx, int64_t n,
                                float *out) {
    if (nx == 1)
        q4_0_x8_one(group, x[0], n, out);
    else
        q4_0_dot_x8(group, x, nx, n, out);
}

void grok_dot_avx512(uint32_t type, grok_dot_kernels *out) {
    kq_register(type, out);
    qt_register(type, out);
    grok_iq_dot_avx512(type, out); /* the i-quants: x86_iquants.c */
    if (type == GROK_TYPE_Q4_0) out->dot_x16 = q4_0_dot_x16, out->dot_x8 = q4_0_dot_x8_512;
    if (type == GROK_TYPE_Q8_0)
        out->dot_q8a = q8_0_dot_q8a, out->dot_q8a_multi = q8_0_dot_q8a_multi,
        out->multi_prep = q8_0_multi_prep;
}

void grok_dot_avx512vbmi(uint32_t type, grok_dot_kernels *out) {
    grok_dot_avx512(type, out);
    grok_iq_dot_avx512vbmi(type, out);
}

#else
void grok_dot_avx512(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
void grok_dot_avx512vbmi(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
#endif
