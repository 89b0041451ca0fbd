/*
 * x86_kquants.h - the 8-bit-activation dots of the k-quants (Q4_K, Q5_K,
 * Q6_K) and of q4_0 (the same shape: unsigned nibbles, the offset taken
 * off through the activations' quant sums) for x86, written once over a
 * 4-byte dot primitive and included by
 * x86_avx2.c (maddubs + madd) and x86_avx512.c (vpdpbusd). The including
 * file defines, before the include:
 *   TGT          the target attribute of its functions
 *   KQ_TILE      tokens per pass over a row (4 with AVX2's 16 registers, 8 with AVX-512's 32)
 *   KQ_DOTU(u,s) 8 int32 lanes, lane i = sum of u8 * s8 over bytes 4i..4i+3
 *   KQ_DOTU_ADD(a,u,s) a + KQ_DOTU(u,s) (one vpdpbusd with VNNI)
 * and the helpers hsum8 and f16_scale. It gets q4_0 / q4_K / q5_K / q6_K
 * _dot_q8a and _dot_q8a_multi, the packed _dot_x8 (also q8_0's), static,
 * and kq_register, which sets them in a grok_dot_kernels.
 *
 * One tile function per layout does every token count: the single-token
 * dot is the tile with one token, so the multi-token results equal it bit
 * for bit (each token sees the same operations in the same order).
 *
 * Per 32-value activation block the integer sum is exact; its scale (the
 * weight sub-block's d*sc times the block's f32 d) multiplies it in f32.
 * Q4_K / Q5_K: the nibbles (plus Q5_K's 5th bit) are unsigned, as the
 * primitive wants; the -dmin*m term goes through the activation block's
 * quant sum. Q6_K: q - 32 is formed as dot(q, x) - 32 * dot(1, x), and the
 * 4-byte lanes 0-3 and 4-7 are the two 16-value sub-blocks, each with its
 * own scale.
 */
#ifndef GROK_X86_KQUANTS_H
#define GROK_X86_KQUANTS_H

#include <stddef.h>
#include <string.h>

#define KQ_INLINE __attribute__((always_inline)) inline

/* F(args..., k) with k = nt as a compile-time constant (1..KQ_TILE), so
 * each inlined tile gets registers for exactly its accumulators. Every
 * token-count dispatch of the x86 tiles goes through this one switch. */
/* clang-format off: one case per line reads as the table it is */
#if KQ_TILE > 4
#define KQ_NT_WIDE(F, ...)            \
    case 4: F(__VA_ARGS__, 4); break; \
    case 5: F(__VA_ARGS__, 5); break; \
    case 6: F(__VA_ARGS__, 6); break; \
    case 7:                           \
        F(__VA_ARGS__, 7);            \
        break;
#else
#define KQ_NT_WIDE(F, ...)
#endif
#define KQ_NT_SWITCH(nt, F, ...)             \
    switch (nt) {                            \
    case 1: F(__VA_ARGS__, 1); break;        \
    case 2: F(__VA_ARGS__, 2); break;        \
    case 3:                                  \
        F(__VA_ARGS__, 3);                   \
        break;                               \
        KQ_NT_WIDE(F, __VA_ARGS__)           \
    default: F(__VA_ARGS__, KQ_TILE); break; \
    }

/* clang-format on */
/* Prefetch a whole super-block (up to four cache lines) ahead. */
#define KQ_PREFETCH(p, bytes) \
    for (size_t pf_ = 0; pf_ < (bytes); pf_ += 64) GROK_PREFETCH((p) + pf_)

TGT static KQ_INLINE void kq_asym_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                       const int nt, const bool q5) {
    const size_t bsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t qs_at = q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    __m256 acc0[KQ_TILE], acc1[KQ_TILE]; /* two chains per token hide the FMA latency */
    float corr[KQ_TILE];
    for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = _mm256_setzero_ps(), corr[t] = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / QK_K; i++, p += bsz) {
        KQ_PREFETCH(p, bsz);
        const float d = f16_scale(p), dmin = f16_scale(p + 2);
        float ds[8], dm[8];
        for (int s = 0; s < 8; s++) {
            uint8_t sc, m;
            grok_kq_scale_min(p + 4, s, &sc, &m);
            ds[s] = d * (float)sc, dm[s] = dmin * (float)m;
        }
        /* Q5_K: the 5th bits of chunk c's two sub-blocks are bits 2c, 2c+1 of qh */
        __m256i qh =
            q5 ? _mm256_loadu_si256((const __m256i *)(p + offsetof(block_q5_K, qh))) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(p + qs_at + 32 * c));
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (q5) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                hi = _mm256_or_si256(hi,
                                     _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
                qh = _mm256_srli_epi16(qh, 2);
            }
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * (QK_K / QKA) + 2 * c;
                __m256i i0 = KQ_DOTU(lo, _mm256_loadu_si256((const __m256i *)xb[0].qs));
                __m256i i1 = KQ_DOTU(hi, _mm256_loadu_si256((const __m256i *)xb[1].qs));
                acc0[t] =
                    _mm256_fmadd_ps(_mm256_set1_ps(ds[2 * c] * xb[0].d), _mm256_cvtepi32_ps(i0), acc0[t]);
                acc1[t] =
                    _mm256_fmadd_ps(_mm256_set1_ps(ds[2 * c + 1] * xb[1].d), _mm256_cvtepi32_ps(i1), acc1[t]);
                corr[t] +=
                    dm[2 * c] * xb[0].d * (float)xb[0].sum + dm[2 * c + 1] * xb[1].d * (float)xb[1].sum;
            }
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum8(_mm256_add_ps(acc0[t], acc1[t])) - corr[t];
}

TGT static KQ_INLINE void kq_q6_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                     const int nt) {
    __m256 acc0[KQ_TILE], acc1[KQ_TILE];
    for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / QK_K; i++, p += sizeof(block_q6_K)) {
        KQ_PREFETCH(p, sizeof(block_q6_K));
        const float d = f16_scale(p + offsetof(block_q6_K, d));
        const int8_t *sc = (const int8_t *)(p + offsetof(block_q6_K, scales));
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(p + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + offsetof(block_q6_K, qh) + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
            for (int k = 0; k < 4; k++) {
                const int s = 8 * h + 2 * k; /* sub-blocks s, s+1: lanes 0-3, 4-7 */
                const __m256 scv =
                    _mm256_mul_ps(_mm256_set1_ps(d),
                                  _mm256_cvtepi32_ps(_mm256_setr_epi32(sc[s], sc[s], sc[s], sc[s], sc[s + 1],
                                                                       sc[s + 1], sc[s + 1], sc[s + 1])));
                for (int t = 0; t < nt; t++) {
                    const block_q8a *xb = x[t] + i * (QK_K / QKA) + 4 * h + k;
                    const __m256i xq = _mm256_loadu_si256((const __m256i *)xb->qs);
                    __m256i iq = _mm256_sub_epi32(KQ_DOTU(q[k], xq), _mm256_slli_epi32(KQ_DOTU(one, xq), 5));
                    const __m256 v = _mm256_mul_ps(scv, _mm256_cvtepi32_ps(iq));
                    if (k & 1)
                        acc1[t] = _mm256_fmadd_ps(v, _mm256_set1_ps(xb->d), acc1[t]);
                    else
                        acc0[t] = _mm256_fmadd_ps(v, _mm256_set1_ps(xb->d), acc0[t]);
                }
            }
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum8(_mm256_add_ps(acc0[t], acc1[t]));
}

/* kind 4, 5, 6: Q4_K, Q5_K, Q6_K. Inlined with constant kind and nt, so
 * each (type, token count) is its own code with registers for its
 * accumulators. */
/* v in lane 0, the other lanes 0. */
TGT static inline __m256i kq_lane0(int32_t v) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v)); }

/* q4_0's 16 bytes of nibbles as 32 unsigned bytes: low nibbles, then high. */
TGT static inline __m256i kq_q4_0_nibbles(const uint8_t *qs) {
    const __m128i m = _mm_set1_epi8(0x0f);
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

/* q4_0: the -8 offset comes off inside the integer sum (lane 0 starts at
 * -8 * the activation block's quant sum), so a block costs one FMA and no
 * scalar correction chain; two blocks per pass with two accumulators per
 * token keep two FMA chains in flight. (One accumulator and a scalar
 * correction ran at ~4 cycles a block: 14.1 / 12.8 GB/s on one core of this
 * project's VM with AVX-512 VNNI / AVX2, against 16.6 / 14.5 now.) */
TGT static KQ_INLINE void kq_q4_0_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                       const int nt) {
    __m256 acc0[KQ_TILE], acc1[KQ_TILE];
    for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
    const int64_t nb = n / QK4_0;
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2, p += 2 * sizeof(block_q4_0)) {
        GROK_PREFETCH(p);
        __m256i u0 = kq_q4_0_nibbles(p + 2), u1 = kq_q4_0_nibbles(p + sizeof(block_q4_0) + 2);
        __m256 d0 = _mm256_set1_ps(f16_scale(p)), d1 = _mm256_set1_ps(f16_scale(p + sizeof(block_q4_0)));
        for (int t = 0; t < nt; t++) {
            const block_q8a *xb = x[t] + b;
            __m256i i0 =
                KQ_DOTU_ADD(kq_lane0(-8 * xb[0].sum), u0, _mm256_loadu_si256((const __m256i *)xb[0].qs));
            __m256i i1 =
                KQ_DOTU_ADD(kq_lane0(-8 * xb[1].sum), u1, _mm256_loadu_si256((const __m256i *)xb[1].qs));
            acc0[t] = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_broadcast_ss(&xb[0].d)),
                                      _mm256_cvtepi32_ps(i0), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(_mm256_mul_ps(d1, _mm256_broadcast_ss(&xb[1].d)),
                                      _mm256_cvtepi32_ps(i1), acc1[t]);
        }
    }
    if (b < nb) {
        __m256i u0 = kq_q4_0_nibbles(p + 2);
        __m256 d0 = _mm256_set1_ps(f16_scale(p));
        for (int t = 0; t < nt; t++) {
            const block_q8a *xb = x[t] + b;
            __m256i i0 =
                KQ_DOTU_ADD(kq_lane0(-8 * xb[0].sum), u0, _mm256_loadu_si256((const __m256i *)xb[0].qs));
            acc0[t] = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_broadcast_ss(&xb[0].d)),
                                      _mm256_cvtepi32_ps(i0), acc0[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum8(_mm256_add_ps(acc0[t], acc1[t]));
}

TGT static KQ_INLINE void kq_tile(int kind, const uint8_t *p, const block_q8a *const *x, int64_t n,
                                  float *out, const int nt) {
    if (kind == 6)
        kq_q6_tile(p, x, n, out, nt);
    else if (kind == 0)
        kq_q4_0_tile(p, x, n, out, nt);
    else
        kq_asym_tile(p, x, n, out, nt, kind == 5);
}

TGT static KQ_INLINE void kq_tiles(int kind, const uint8_t *p, const block_q8a *const *x, int64_t n,
                                   float *out, int nt){KQ_NT_SWITCH(nt, kq_tile, kind, p, x, n, out)}

/* Single-token dots: the tiles with one token. */
#define KQ_DOTS(NAME, KIND)                                                                                 \
    TGT static float NAME##_dot_q8a(const void *row, const block_q8a *x, int64_t n) {                       \
        float out;                                                                                          \
        kq_tiles(KIND, row, &x, n, &out, 1);                                                                \
        return out;                                                                                         \
    }                                                                                                       \
    TGT static void NAME##_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n, \
                                         float *out) {                                                      \
        for (int64_t t = 0; t < nx; t += KQ_TILE)                                                           \
            kq_tiles(KIND, row, x + t, n, out + t, (int)(nx - t < KQ_TILE ? nx - t : KQ_TILE));             \
    }
KQ_DOTS(q4_0, 0) KQ_DOTS(q4_K, 4) KQ_DOTS(q5_K, 5) KQ_DOTS(q6_K, 6)

    /* ---- packed groups of 8 rows (kernels.h, GROK_PACK_ROWS) ----
 * Lane r of every vector is row r: a chunk of 32 bytes holds 4 values of
 * each of the 8 rows, and the activation's matching 4 quants are
 * broadcast to all lanes, so one DOTU gives each row 4 products. Per block
 * the 8 rows' integer sums are exact; the 8 f16 scales convert in one
 * instruction and one FMA per token scales and accumulates all 8 rows. A
 * block costs ~40 instructions per 8 rows where the row-at-a-time dot
 * spends ~13 per row. Per token and row the operations and their order
 * are the same for any token count, so batches equal single tokens bit
 * for bit (the integer sums are exact in any order).
 *
 * The including file defines KQ_Q8X8_DOT(a, u, x4): a plus, per lane, the
 * products of u's unsigned packed q8_0 bytes (quant + 128) taken as the
 * signed quants, with the signed 4 bytes broadcast in x4; and
 * KQ_Q8X8_START(sum): the lanes' start for an activation block whose
 * quants sum to sum (VNNI multiplies the +128 through and takes 128 * sum
 * off at the start; AVX2 flips the bytes back and starts at 0). */

    /* x's 4 quants from byte j on, in every lane */
    TGT static inline __m256i kq_bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm256_set1_epi32(v);
}

TGT static KQ_INLINE void kq_q4_0x8_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                         const int nt) {
    __m256 acc[KQ_TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t b = 0; b < n / QK4_0; b++, p += GROK_PACK_ROWS * sizeof(block_q4_0)) {
        KQ_PREFETCH(p, GROK_PACK_ROWS * sizeof(block_q4_0));
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        __m256i lo[4], hi[4];
        for (int c = 0; c < 4; c++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
            lo[c] = _mm256_and_si256(v, m4), hi[c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        for (int t = 0; t < nt; t++) {
            const block_q8a *xb = x[t] + b;
            __m256i ia = _mm256_set1_epi32(-8 * xb->sum), ib = _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                ia = KQ_DOTU_ADD(ia, lo[c], kq_bcast4(xb->qs + 4 * c));
                ib = KQ_DOTU_ADD(ib, hi[c], kq_bcast4(xb->qs + 16 + 4 * c));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&xb->d)),
                                     _mm256_cvtepi32_ps(_mm256_add_epi32(ia, ib)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + GROK_PACK_ROWS * t, acc[t]);
}

TGT static KQ_INLINE void kq_q8_0x8_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                         const int nt) {
    __m256 acc[KQ_TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; b++, p += GROK_PACK_ROWS * sizeof(block_q8_0)) {
        KQ_PREFETCH(p, GROK_PACK_ROWS * sizeof(block_q8_0));
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        for (int t = 0; t < nt; t++) {
            const block_q8a *xb = x[t] + b;
            __m256i ia = KQ_Q8X8_START(xb->sum), ib = _mm256_setzero_si256();
            for (int c = 0; c < 8; c += 2) {
                ia = KQ_Q8X8_DOT(ia, _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c)),
                                 kq_bcast4(xb->qs + 4 * c));
                ib = KQ_Q8X8_DOT(ib, _mm256_loadu_si256((const __m256i *)(p + 48 + 32 * c)),
                                 kq_bcast4(xb->qs + 4 * c + 4));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&xb->d)),
                                     _mm256_cvtepi32_ps(_mm256_add_epi32(ia, ib)), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + GROK_PACK_ROWS * t, acc[t]);
}

/* q4_K / q5_K: per super-block the 8 rows' 6-bit sub-block scales and
 * mins are decoded together (32 bytes at a time, sub-block-major), then
 * each sub-block's 8 scales become one float vector. The min term goes
 * through the activation block's quant sum into a second accumulator per
 * token, taken off at the end. Q5_K's 5th bits (bits 2c, 2c+1 of the qh
 * chunks for chunk c's two sub-blocks) join the nibbles before the tokens
 * run, so per token both types cost the same. */
TGT static KQ_INLINE void kq_q45_Kx8_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                          const int nt, const bool q5) {
    const size_t gsz = GROK_PACK_ROWS * (q5 ? sizeof(block_q5_K) : sizeof(block_q4_K));
    __m256 acc[KQ_TILE], corr[KQ_TILE];
    for (int t = 0; t < nt; t++) acc[t] = corr[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m6 = _mm256_set1_epi8(63), m2 = _mm256_set1_epi8(3);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    for (int64_t i = 0; i < n / QK_K; i++, p += gsz) {
        KQ_PREFETCH(p, gsz);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16)));
        /* bytes 8j+r: sub-block j's code of row r (grok_kq_scale_min, 8 rows at once) */
        uint8_t sc[64], mn[64];
        {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(p + 32));
            const __m256i b = _mm256_loadu_si256((const __m256i *)(p + 64));
            const __m256i c = _mm256_loadu_si256((const __m256i *)(p + 96));
            const __m256i top_a = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(a, 6), m2), 4);
            const __m256i top_b = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(b, 6), m2), 4);
            _mm256_storeu_si256((__m256i *)sc, _mm256_and_si256(a, m6));
            _mm256_storeu_si256((__m256i *)mn, _mm256_and_si256(b, m6));
            _mm256_storeu_si256((__m256i *)(sc + 32), _mm256_or_si256(_mm256_and_si256(c, m4), top_a));
            _mm256_storeu_si256((__m256i *)(mn + 32),
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), m4), top_b));
        }
        for (int c = 0; c < 4; c++) {
            __m256 dsc[2], dmn[2];
            for (int h = 0; h < 2; h++) {
                const int sb = 2 * c + h;
                dsc[h] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                              _mm_loadl_epi64((const __m128i *)(sc + 8 * sb)))));
                dmn[h] = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                                 _mm_loadl_epi64((const __m128i *)(mn + 8 * sb)))));
            }
            /* the chunk's 16 quant vectors, unpacked once for all tokens */
            __m256i lo[8], hi[8];
            const __m128i qh_shift = _mm_cvtsi32_si128(2 * c);
            for (int k = 0; k < 8; k++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * (8 * c + k)));
                lo[k] = _mm256_and_si256(v, m4), hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if (q5) { /* bit 0 (1) of the shifted qh bytes to bit 4 of lo (hi) */
                    const __m256i qh = _mm256_srl_epi16(
                        _mm256_loadu_si256((const __m256i *)(p + 128 + 8 * QK_K / 2 + 32 * k)), qh_shift);
                    lo[k] = _mm256_or_si256(lo[k], _mm256_and_si256(_mm256_slli_epi16(qh, 4), bit4));
                    hi[k] = _mm256_or_si256(hi[k], _mm256_and_si256(_mm256_slli_epi16(qh, 3), bit4));
                }
            }
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * (QK_K / QKA) + 2 * c;
                __m256i ia = _mm256_setzero_si256(), ib = _mm256_setzero_si256();
                for (int k = 0; k < 8; k++) {
                    ia = KQ_DOTU_ADD(ia, lo[k], kq_bcast4(xb[0].qs + 4 * k));
                    ib = KQ_DOTU_ADD(ib, hi[k], kq_bcast4(xb[1].qs + 4 * k));
                }
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dsc[0], _mm256_broadcast_ss(&xb[0].d)),
                                         _mm256_cvtepi32_ps(ia), acc[t]);
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dsc[1], _mm256_broadcast_ss(&xb[1].d)),
                                         _mm256_cvtepi32_ps(ib), acc[t]);
                corr[t] = _mm256_fmadd_ps(dmn[0], _mm256_set1_ps(xb[0].d * (float)xb[0].sum), corr[t]);
                corr[t] = _mm256_fmadd_ps(dmn[1], _mm256_set1_ps(xb[1].d * (float)xb[1].sum), corr[t]);
            }
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + GROK_PACK_ROWS * t, _mm256_sub_ps(acc[t], corr[t]));
}
TGT static KQ_INLINE void kq_q4_Kx8_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                         const int nt) {
    kq_q45_Kx8_tile(p, x, n, out, nt, false);
}
TGT static KQ_INLINE void kq_q5_Kx8_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                         const int nt) {
    kq_q45_Kx8_tile(p, x, n, out, nt, true);
}

/* One 32-value activation block of a q6_K group: q[0..3] and q[4..7] are
 * its two 16-value sub-blocks (scales dsc0, dsc1). The -32 offset comes off
 * inside each integer sum, which starts at -32 times the sub-block's
 * activation quant sum (the block's sum covers 32 values, so the 16-value
 * halves are summed here: psadbw on the quants flipped to unsigned gives
 * 8-byte sums plus 8 * 128 each). */
TGT static KQ_INLINE __m256 kq_q6x8_block(__m256 acc, const __m256i *q, const block_q8a *xb, __m256 dsc0,
                                          __m256 dsc1) {
    const __m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs);
    __m256i s = _mm256_sad_epu8(_mm256_xor_si256(xv, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
    s = _mm256_add_epi64(s, _mm256_shuffle_epi32(s, 0x4e)); /* dword 0 (4): half 0 (1)'s sum + 2048 */
    s = _mm256_sub_epi32(_mm256_set1_epi32(32 * 2048), _mm256_slli_epi32(s, 5));
    __m256i ia = _mm256_broadcastd_epi32(_mm256_castsi256_si128(s));
    __m256i ib = _mm256_permutevar8x32_epi32(s, _mm256_set1_epi32(4));
    for (int k = 0; k < 4; k++) {
        ia = KQ_DOTU_ADD(ia, q[k], kq_bcast4(xb->qs + 4 * k));
        ib = KQ_DOTU_ADD(ib, q[4 + k], kq_bcast4(xb->qs + 16 + 4 * k));
    }
    const __m256 xd = _mm256_broadcast_ss(&xb->d);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(dsc0, xd), _mm256_cvtepi32_ps(ia), acc);
    return _mm256_fmadd_ps(_mm256_mul_ps(dsc1, xd), _mm256_cvtepi32_ps(ib), acc);
}

/* q6_K: per half h and l in 0..1, chunks of ql 16h+8l+k and of qh 8h+k
 * (k < 8) give activation blocks 4h+l (low nibbles, qh bits 2l..2l+1) and
 * 4h+l+2 (high nibbles, qh bits 2l+4..2l+5), unpacked once for all tokens. */
TGT static KQ_INLINE void kq_q6_Kx8_tile(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,
                                         const int nt) {
    __m256 acc[KQ_TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const uint8_t *ql = p + 16 + QK_K / 16 * 8, *qh = ql + 8 * QK_K / 2;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const size_t at = (size_t)i * GROK_PACK_ROWS * sizeof(block_q6_K);
        KQ_PREFETCH(p + at, GROK_PACK_ROWS * sizeof(block_q6_K));
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + at)));
        const int8_t *sc = (const int8_t *)(p + at + 16);
        for (int hl = 0; hl < 4; hl++) {
            const int h = hl >> 1, l = hl & 1, b0 = 4 * h + l; /* blocks b0 and b0 + 2 */
            __m256 dsc[4];
            for (int s = 0; s < 4; s++) /* sub-blocks 2b0, 2b0+1, 2b0+4, 2b0+5 */
                dsc[s] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
                                              (const __m128i *)(sc + 8 * (2 * b0 + s + (s & 2)))))));
            __m256i lo[8], hi[8];
            for (int k = 0; k < 8; k++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(ql + at + 32 * (16 * h + 8 * l + k)));
                __m256i t2 = _mm256_loadu_si256((const __m256i *)(qh + at + 32 * (8 * h + k)));
                if (l) t2 = _mm256_srli_epi16(t2, 2);
                lo[k] =
                    _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_slli_epi16(t2, 4), m30));
                hi[k] =
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), _mm256_and_si256(t2, m30));
            }
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * (QK_K / QKA) + b0;
                acc[t] = kq_q6x8_block(acc[t], lo, xb, dsc[0], dsc[1]);
                acc[t] = kq_q6x8_block(acc[t], hi, xb + 2, dsc[2], dsc[3]);
            }
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + GROK_PACK_ROWS * t, acc[t]);
}

#define KQ_X8(NAME, TILEFN)                                                                               \
    TGT static void NAME##_dot_x8(const uint8_t *group, const block_q8a *const *x, int64_t nx, int64_t n, \
                                  float *out) {                                                           \
        for (int64_t t = 0; t < nx; t += KQ_TILE)                                                         \
            KQ_NT_SWITCH(nx - t < KQ_TILE ? nx - t : KQ_TILE, TILEFN, group, x + t, n,                    \
                         out + GROK_PACK_ROWS * t)                                                        \
    }
KQ_X8(q4_0, kq_q4_0x8_tile)
KQ_X8(q8_0, kq_q8_0x8_tile)
KQ_X8(q4_K, kq_q4_Kx8_tile)
KQ_X8(q5_K, kq_q5_Kx8_tile)
KQ_X8(q6_K, kq_q6_Kx8_tile)

/* The dots above for type, registered alike by both including files. */
static void kq_register(uint32_t type, grok_dot_kernels *out) {
    switch (type) {
    case GROK_TYPE_Q8_0: out->dot_x8 = q8_0_dot_x8; break;
    case GROK_TYPE_Q4_0:
        out->dot_q8a = q4_0_dot_q8a, out->dot_q8a_multi = q4_0_dot_q8a_multi, out->dot_x8 = q4_0_dot_x8;
        break;
    case GROK_TYPE_Q4_K:
        out->dot_q8a = q4_K_dot_q8a, out->dot_q8a_multi = q4_K_dot_q8a_multi, out->dot_x8 = q4_K_dot_x8;
        break;
    case GROK_TYPE_Q5_K:
        out->dot_q8a = q5_K_dot_q8a, out->dot_q8a_multi = q5_K_dot_q8a_multi, out->dot_x8 = q5_K_dot_x8;
        break;
    case GROK_TYPE_Q6_K:
        out->dot_q8a = q6_K_dot_q8a, out->dot_q8a_multi = q6_K_dot_q8a_multi, out->dot_x8 = q6_K_dot_x8;
        break;
    default: break;
    }
}

#endif
