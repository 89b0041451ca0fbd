/*
 * x86_qtypes.h - the 8-bit-activation row dots of the types in qtypes.h
 * (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, MXFP4, NVFP4,
 * Q1_0, Q2_0) for x86, written once over x86_kquants.h's 4-byte dot
 * primitive (KQ_DOTU: maddubs + madd on AVX2, vpdpbusd with VNNI) and
 * included after it by x86_avx2.c and x86_avx512.c. It gets, static, the
 * types' _dot_q8a and _dot_q8a_multi and qt_register, which sets them.
 *
 * Every type is read 32 values at a time: a chunk decodes to 32 weight
 * codes in value order, signed (q itself) or, for the types with a float
 * offset (Q4_1, Q5_1, Q2_K), unsigned, and a vector of lane multipliers
 * (lanes 0-3 are the chunk's first 16 values, lanes 4-7 the next 16, so
 * 16-value sub-blocks get their own). Signed codes meet the activations
 * through ggml's sign trick (|w| times x with w's sign), whose products
 * cannot saturate maddubs since |w| <= 127. Per activation block the
 * integer lane sums are exact; the lane multipliers times the block's f32
 * scale turn them into floats, and one FMA per token accumulates them.
 * Offsets: Q4_1 / Q5_1's m*sum enters lane 0 of the float vector before
 * that FMA, Q2_K's mins go through the per-lane activation sums
 * (dot(1, x)), subtracted in the same vector, so every chunk costs each
 * token one FMA on its accumulator chain. A chunk is decoded once for all
 * the tokens of a pass; per token the operations and their order are the
 * same whatever the token count, so batches equal single tokens bit for
 * bit (the single-token dot is the one-token tile).
 */
#ifndef GROK_X86_QTYPES_H
#define GROK_X86_QTYPES_H

#include "kernels/qtypes.h"

/* One decoded chunk: 32 codes and lane multipliers (and offsets). */
typedef struct {
    __m256i w;
    __m256 s;  /* per lane */
    __m256 mn; /* Q2_K: dmin * m per lane */
    float off; /* Q4_1 / Q5_1: the block's m */
} qt_chunk;

TGT static inline bool qt_signed(int type) {
    return type != GROK_TYPE_Q4_1 && type != GROK_TYPE_Q5_1 && type != GROK_TYPE_Q2_K;
}

/* Byte j of the result: 0xff where bit j of bits is set, else 0. */
TGT static inline __m256i qt_bits32(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
                                            2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* A 16-byte table applied to the 32 nibbles of qs[0..15] in Q4_0's order. */
TGT static inline __m256i qt_table_nibbles(const uint8_t *qs, const int8_t *table) {
    const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)table));
    return _mm256_shuffle_epi8(t, kq_q4_0_nibbles(qs));
}

/* Lanes 0-3 a, lanes 4-7 b. */
TGT static inline __m256 qt_lanes2(float a, float b) {
    return _mm256_set_m128(_mm_set1_ps(b), _mm_set1_ps(a));
}

/* Bytes 2k and 2k+1 of v (16 values), each over four int32 lanes, as floats times d. */
TGT static inline __m256 qt_pair_scales(__m128i v, int k, float d, bool sgn) {
    const __m128i idx =
        _mm_set1_epi64x((long long)(0x0101010100000000ull + 0x0101010101010101ull * (uint64_t)(2 * k)));
    const __m128i b = _mm_shuffle_epi8(v, idx);
    const __m256i i = sgn ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
    return _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(i));
}

/* Q3_K's 16 scales minus 32, as int8 (the layout in qtypes.h). */
TGT static inline __m128i qt_q3_K_scales(const uint8_t *sc) {
    uint64_t a8;
    uint32_t t4;
    memcpy(&a8, sc, 8);
    memcpy(&t4, sc + 8, 4);
    const __m128i m4 = _mm_set1_epi8(15), m2 = _mm_set1_epi8(3);
    const __m128i a = _mm_cvtsi64_si128((long long)a8);
    const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(a, m4), _mm_and_si128(_mm_srli_epi16(a, 4), m4));
    const __m128i top =
        _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)t4), _mm_setr_epi32(0, 2, 4, 6)), m2);
    return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(top, 4)), _mm_set1_epi8(32));
}

/* TQ1_0's trits minus 1 of the bytes v, each already times 3^n mod 256:
 * ((q * 3) >> 8) is 1 from q = 86 on and 2 from q = 171 on. */
TGT static inline __m256i qt_trits(__m256i q) {
    const __m256i ge86 = _mm256_cmpeq_epi8(_mm256_max_epu8(q, _mm256_set1_epi8(86)), q);
    const __m256i ge171 = _mm256_cmpeq_epi8(_mm256_max_epu8(q, _mm256_set1_epi8((char)171)), q);
    return _mm256_sub_epi8(_mm256_sub_epi8(_mm256_set1_epi8(-1), ge86), ge171);
}
TGT static inline __m256i qt_times3(__m256i v) { return _mm256_add_epi8(v, _mm256_add_epi8(v, v)); }

/* Chunk k of the block at p. Inlined with type and k constants. */
TGT static KQ_INLINE void qt_decode(const int type, const uint8_t *p, const int k, qt_chunk *c) {
    const __m256i m3 = _mm256_set1_epi8(3);
    uint32_t qh;
    switch (type) {
    case GROK_TYPE_Q4_1:
        c->w = kq_q4_0_nibbles(p + 4), c->s = _mm256_set1_ps(f16_scale(p)), c->off = f16_scale(p + 2);
        break;
    case GROK_TYPE_Q5_0:
    case GROK_TYPE_Q5_1: {
        const bool q51 = type == GROK_TYPE_Q5_1;
        memcpy(&qh, p + (q51 ? 4 : 2), 4);
        const __m256i q = _mm256_or_si256(kq_q4_0_nibbles(p + (q51 ? 8 : 6)),
                                          _mm256_and_si256(qt_bits32(qh), _mm256_set1_epi8(16)));
        c->w = q51 ? q : _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        c->s = _mm256_set1_ps(f16_scale(p));
        if (q51) c->off = f16_scale(p + 2);
        break;
    }
    case GROK_TYPE_Q2_K: {
        const int h = k / 4, j = k % 4;
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * h));
        c->w = _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m3);
        const __m128i sc = _mm_loadu_si128((const __m128i *)p);
        const __m128i n4 = _mm_set1_epi8(15);
        c->s = qt_pair_scales(_mm_and_si128(sc, n4), k, f16_scale(p + 80), false);
        c->mn = qt_pair_scales(_mm_and_si128(_mm_srli_epi16(sc, 4), n4), k, f16_scale(p + 82), false);
        break;
    }
    case GROK_TYPE_Q3_K: {
        const int h = k / 4, j = k % 4;
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 + 32 * h));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)p);
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(v, 2 * j), m3);
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), _mm256_set1_epi8(1));
        c->w = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hb, 2)), _mm256_set1_epi8(4));
        c->s = qt_pair_scales(qt_q3_K_scales(p + 96), k, f16_scale(p + 108), true);
        break;
    }
    case GROK_TYPE_IQ4_NL:
        c->w = qt_table_nibbles(p + 2, GROK_KVALUES_IQ4NL), c->s = _mm256_set1_ps(f16_scale(p));
        break;
    case GROK_TYPE_IQ4_XS: {
        const int ls = ((p[4 + k / 2] >> (4 * (k % 2))) & 15) | ((((p[2] | p[3] << 8) >> (2 * k)) & 3) << 4);
        c->w = qt_table_nibbles(p + 8 + 16 * k, GROK_KVALUES_IQ4NL);
        c->s = _mm256_set1_ps(f16_scale(p) * (float)(ls - 32));
        break;
    }
    case GROK_TYPE_MXFP4:
        c->w = qt_table_nibbles(p + 1, GROK_KVALUES_FP4), c->s = _mm256_set1_ps(grok_e8m0_half(p[0]));
        break;
    case GROK_TYPE_NVFP4: {
        const __m128i v = _mm_loadu_si128((const __m128i *)(p + 4 + 16 * k)), n4 = _mm_set1_epi8(15);
        const __m128i lo = _mm_and_si128(v, n4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), n4);
        const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)GROK_KVALUES_FP4));
        c->w =
            _mm256_shuffle_epi8(t, _mm256_set_m128i(_mm_unpackhi_epi64(lo, hi), _mm_unpacklo_epi64(lo, hi)));
        c->s = qt_lanes2(grok_ue4m3_half(p[2 * k]), grok_ue4m3_half(p[2 * k + 1]));
        break;
    }
    case GROK_TYPE_TQ2_0: {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * (k / 4)));
        c->w = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 2 * (k % 4)), m3), _mm256_set1_epi8(1));
        c->s = _mm256_set1_ps(f16_scale(p + 64));
        break;
    }
    case GROK_TYPE_TQ1_0: {
        __m256i q;
        if (k < 5) { /* values 32k.. : qs[0..31] times 3^k */
            q = _mm256_loadu_si256((const __m256i *)p);
            for (int i = 0; i < k; i++) q = qt_times3(q);
        } else { /* qs[32..47] times 3^(2(k-5)) and 3^(2(k-5)+1); chunk 7's top half from qh */
            q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 32)));
            for (int i = 0; i < 2 * (k - 5); i++) q = qt_times3(q);
            if (k < 7) {
                q = _mm256_blend_epi32(q, qt_times3(q), 0xf0);
            } else {
                memcpy(&qh, p + 48, 4);
                const __m128i h0 = _mm_set1_epi32((int)qh);
                const __m128i h1 = _mm_add_epi8(h0, _mm_add_epi8(h0, h0));
                const __m128i h2 = _mm_add_epi8(h1, _mm_add_epi8(h1, h1));
                const __m128i h3 = _mm_add_epi8(h2, _mm_add_epi8(h2, h2));
                const __m128i hq =
                    _mm_blend_epi32(_mm_blend_epi32(h0, h1, 2), _mm_blend_epi32(h2, h3, 8), 0xc);
                q = _mm256_inserti128_si256(q, hq, 1);
            }
        }
        c->w = qt_trits(q);
        c->s = _mm256_set1_ps(f16_scale(p + 52));
        break;
    }
    case GROK_TYPE_Q1_0: {
        memcpy(&qh, p + 2 + 4 * k, 4);
        const __m256i set = qt_bits32(qh); /* -1 where the bit is set */
        c->w = _mm256_sub_epi8(_mm256_set1_epi8(-1), _mm256_add_epi8(set, set));
        c->s = _mm256_set1_ps(f16_scale(p));
        break;
    }
    default: { /* Q2_0: byte b of qs[8k..] holds values 4b..4b+3 */
        const __m128i b = _mm_loadl_epi64((const __m128i *)(p + 2 + 8 * k)), n3 = _mm_set1_epi8(3);
        const __m128i p0 = _mm_and_si128(b, n3), p1 = _mm_and_si128(_mm_srli_epi16(b, 2), n3);
        const __m128i p2 = _mm_and_si128(_mm_srli_epi16(b, 4), n3),
                      p3 = _mm_and_si128(_mm_srli_epi16(b, 6), n3);
        const __m128i a01 = _mm_unpacklo_epi8(p0, p1), a23 = _mm_unpacklo_epi8(p2, p3);
        const __m256i u = _mm256_set_m128i(_mm_unpackhi_epi16(a01, a23), _mm_unpacklo_epi16(a01, a23));
        c->w = _mm256_sub_epi8(u, _mm256_set1_epi8(1));
        c->s = _mm256_set1_ps(f16_scale(p));
        break;
    }
    }
}

/* Chunk k of block p against activation block bi of each token. */
TGT static KQ_INLINE void qt_chunk_tokens(const int type, const uint8_t *p, const int k,
                                          const block_q8a *const *x, int64_t bi, __m256 *acc, const int nt) {
    qt_chunk c;
    qt_decode(type, p, k, &c);
    const bool sg = qt_signed(type);
    const __m256i u = sg ? _mm256_sign_epi8(c.w, c.w) : c.w;
    for (int t = 0; t < nt; t++) {
        const block_q8a *xb = x[t] + bi;
        const __m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs);
        const __m256 xd = _mm256_broadcast_ss(&xb->d);
        const __m256i iv = sg ? KQ_DOTU(u, _mm256_sign_epi8(xv, c.w)) : KQ_DOTU(u, xv);
        __m256 v;
        if (type == GROK_TYPE_Q2_K) {
            const __m256i im = KQ_DOTU(_mm256_set1_epi8(1), xv);
            v = _mm256_fmsub_ps(c.s, _mm256_cvtepi32_ps(iv), _mm256_mul_ps(c.mn, _mm256_cvtepi32_ps(im)));
        } else if (type == GROK_TYPE_Q4_1 || type == GROK_TYPE_Q5_1) {
            const __m256 o = _mm256_zextps128_ps256(_mm_set_ss(c.off * (float)xb->sum));
            v = _mm256_fmadd_ps(c.s, _mm256_cvtepi32_ps(iv), o);
        } else {
            v = _mm256_mul_ps(c.s, _mm256_cvtepi32_ps(iv));
        }
        acc[t] = _mm256_fmadd_ps(v, xd, acc[t]);
    }
}

TGT static KQ_INLINE void qt_row_tile(const int type, const uint8_t *p, const block_q8a *const *x, int64_t n,
                                      float *out, const int nt) {
    const int nbk = grok_qtypes_block_values(type) / QKA;
    const size_t bsz = grok_qtypes_block_bytes(type);
    __m256 acc0[KQ_TILE], acc1[KQ_TILE]; /* two chains per token hide the FMA latency */
    for (int t = 0; t < nt; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
    const int64_t nblk = n / grok_qtypes_block_values(type);
    int64_t i = 0;
    if (nbk == 1) {
        for (; i + 2 <= nblk; i += 2, p += 2 * bsz) {
            KQ_PREFETCH(p, 2 * bsz);
            qt_chunk_tokens(type, p, 0, x, i, acc0, nt);
            qt_chunk_tokens(type, p + bsz, 0, x, i + 1, acc1, nt);
        }
        if (i < nblk) qt_chunk_tokens(type, p, 0, x, i, acc0, nt);
    } else {
        for (; i < nblk; i++, p += bsz) {
            KQ_PREFETCH(p, bsz);
            _Pragma("GCC unroll 8") for (int k = 0; k < nbk; k++)
                qt_chunk_tokens(type, p, k, x, i * nbk + k, k & 1 ? acc1 : acc0, nt);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum8(_mm256_add_ps(acc0[t], acc1[t]));
}

#define QT_DOTS(NAME, T)                                                                                    \
    TGT static void NAME##_qt_tiles(const uint8_t *p, const block_q8a *const *x, int64_t n, float *out,     \
                                    int nt){KQ_NT_SWITCH(                                                   \
        nt, qt_row_tile, T, p, x, n, out)} TGT static float NAME##_dot_q8a(const void *row,                 \
                                                                           const block_q8a *x, int64_t n) { \
        float out;                                                                                          \
        NAME##_qt_tiles(row, &x, n, &out, 1);                                                               \
        return out;                                                                                         \
    }                                                                                                       \
    TGT static void NAME##_dot_q8a_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n, \
                                         float *out) {                                                      \
        for (int64_t t = 0; t < nx; t += KQ_TILE)                                                           \
            NAME##_qt_tiles(row, x + t, n, out + t, (int)(nx - t < KQ_TILE ? nx - t : KQ_TILE));            \
    }
QT_DOTS(q4_1, GROK_TYPE_Q4_1)
QT_DOTS(q5_0, GROK_TYPE_Q5_0)
QT_DOTS(q5_1, GROK_TYPE_Q5_1)
QT_DOTS(q2_K, GROK_TYPE_Q2_K)
QT_DOTS(q3_K, GROK_TYPE_Q3_K)
QT_DOTS(iq4_nl, GROK_TYPE_IQ4_NL)
QT_DOTS(iq4_xs, GROK_TYPE_IQ4_XS)
QT_DOTS(tq1_0, GROK_TYPE_TQ1_0)
QT_DOTS(tq2_0, GROK_TYPE_TQ2_0)
QT_DOTS(mxfp4, GROK_TYPE_MXFP4)
QT_DOTS(nvfp4, GROK_TYPE_NVFP4)
QT_DOTS(q1_0, GROK_TYPE_Q1_0)
QT_DOTS(q2_0, GROK_TYPE_Q2_0)

/* ---- packed groups of 8 rows (layouts in qtypes_pack.c) ----
 * Per activation block (32 values) of a block column, the 8 rows' codes
 * come as 8 vectors, vector m holding values 4m..4m+3 of every row (lane
 * r = row r), met by the activation's 4 quants broadcast; lanes 0-3 of
 * the integer sums and lanes 4-7 are then the rows' sums over the two
 * 16-value halves (m < 4, m >= 4), scaled by vectors of the 8 rows'
 * multipliers. How the codes meet the activations (kind):
 *   QX_BIAS  signed, one multiplier per 32 (IQ4_NL, IQ4_XS, MXFP4): with
 *            VNNI the codes plus 128 as unsigned bytes and the sum started
 *            at -128 * the activation block's quant sum (one vpdpbusd a
 *            vector); with AVX2 |w| times x with w's sign.
 *   QX_SIGN  signed, a multiplier per 16 (NVFP4): the halves summed apart,
 *            with VNNI as QX_BIAS, each half's sum started at -128 * its
 *            quant sum (psadbw), with AVX2 by the sign trick.
 *   QX_UOFF  unsigned codes q + off (Q5_0, TQ1_0, TQ2_0, Q1_0, Q2_0): the
 *            sum starts at -off * the quant sum.
 *   QX_UOFF16 unsigned codes q + 4 with a multiplier per 16 (Q3_K): each
 *            half's sum starts at -4 * its quant sum.
 *   QX_UM32  unsigned with a float offset m per 32 (Q4_1, Q5_1): m times
 *            the quant sum into a second accumulator.
 *   QX_UM16  unsigned with a min per 16 (Q2_K): the halves' quant sums
 *            (psadbw) times dmin*m into the second accumulator.
 * Every token's operations are the same for any token count, so batches
 * equal single tokens bit for bit. */
#ifndef QT_VNNI
#define QT_VNNI 0
#endif
enum { QX_BIAS, QX_SIGN, QX_UOFF, QX_UOFF16, QX_UM32, QX_UM16 };

static inline int qx_kind(int type) {
    switch (type) {
    case GROK_TYPE_IQ4_NL:
    case GROK_TYPE_IQ4_XS:
    case GROK_TYPE_MXFP4: return QX_BIAS;
    case GROK_TYPE_NVFP4: return QX_SIGN;
    case GROK_TYPE_Q3_K: return QX_UOFF16;
    case GROK_TYPE_Q4_1:
    case GROK_TYPE_Q5_1: return QX_UM32;
    case GROK_TYPE_Q2_K: return QX_UM16;
    default: return QX_UOFF;
    }
}
static inline int qx_off(int type) { return type == GROK_TYPE_Q5_0 ? 16 : 1; }

typedef struct {
    __m256i w[8];
    __m256 s0, s1; /* the 8 rows' multipliers of values 0-15 and 16-31 */
    __m256 m0, m1; /* QX_UM32: the offsets; QX_UM16: the halves' mins */
} qx_blk;

TGT static inline __m256 qx_f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
/* 8 bytes to 8 int32 lanes */
TGT static inline __m256i qx_u8x8(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
/* (v >> s) & mask per int32 lane */
TGT static inline __m256i qx_field(__m256i v, int s, int mask) {
    return _mm256_and_si256(_mm256_srli_epi32(v, s), _mm256_set1_epi32(mask));
}
TGT static inline __m256 qx_times(__m256 d, __m256i i) { return _mm256_mul_ps(d, _mm256_cvtepi32_ps(i)); }

/* grok_e8m0_half of 8 bytes */
TGT static inline __m256 qx_e8m0(const uint8_t *p) {
    const __m256i e = qx_u8x8(p);
    const __m256i lo = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e);
    const __m256i hi = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
    return _mm256_castsi256_ps(_mm256_blendv_epi8(lo, hi, _mm256_cmpgt_epi32(e, _mm256_set1_epi32(1))));
}
/* grok_ue4m3_half of 8 bytes: (e ? 8 + m : m) * 2^(max(e, 1) - 11), 0 for 0x7f */
TGT static inline __m256 qx_ue4m3(const uint8_t *p) {
    const __m256i x = qx_u8x8(p), e = qx_field(x, 3, 15), m = _mm256_and_si256(x, _mm256_set1_epi32(7));
    const __m256i mant = _mm256_add_epi32(
        m, _mm256_and_si256(_mm256_cmpgt_epi32(e, _mm256_setzero_si256()), _mm256_set1_epi32(8)));
    const __m256i pow2 = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_max_epi32(e, _mm256_set1_epi32(1)), _mm256_set1_epi32(127 - 11)), 23);
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(mant), _mm256_castsi256_ps(pow2));
    return _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(x, _mm256_set1_epi32(0x7f))), v);
}

/* The 8 nibble vectors of 4 chunks (low nibbles: values 4c.., high: 16+4c..), through a table or not. */
TGT static inline void qx_nibbles(const uint8_t *c, const int8_t *table, __m256i *w) {
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int k = 0; k < 4; k++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(c + 32 * k));
        w[k] = _mm256_and_si256(v, m4), w[4 + k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    if (table) {
        const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)table));
        for (int k = 0; k < 8; k++) w[k] = _mm256_shuffle_epi8(t, w[k]);
    }
}

/* Activation block b of the group's block at p. Inlined with type and b constants. */
TGT static KQ_INLINE void qx_decode(const int type, const uint8_t *p, const int b, qx_blk *o, __m256i *tq) {
    const __m256i m3 = _mm256_set1_epi8(3);
    switch (type) {
    case GROK_TYPE_Q4_1:
        o->s0 = o->s1 = qx_f16x8(p), o->m0 = qx_f16x8(p + 16);
        qx_nibbles(p + 32, NULL, o->w);
        break;
    case GROK_TYPE_Q5_0:
    case GROK_TYPE_Q5_1: {
        const size_t plane = type == GROK_TYPE_Q5_1 ? 32 : 16;
        o->s0 = o->s1 = qx_f16x8(p);
        if (type == GROK_TYPE_Q5_1) o->m0 = qx_f16x8(p + 16);
        qx_nibbles(p + plane + 32, NULL, o->w);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + plane)), b4 = _mm256_set1_epi8(16);
        for (int j = 0; j < 8; j++) /* bit j to bit 4 */
            o->w[j] = _mm256_or_si256(
                o->w[j],
                _mm256_and_si256(j <= 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4), b4));
        break;
    }
    case GROK_TYPE_IQ4_NL:
        o->s0 = o->s1 = qx_f16x8(p);
        qx_nibbles(p + 16, GROK_KVALUES_IQ4NL, o->w);
        break;
    case GROK_TYPE_MXFP4:
        o->s0 = o->s1 = qx_e8m0(p);
        qx_nibbles(p + 8, GROK_KVALUES_FP4, o->w);
        break;
    case GROK_TYPE_IQ4_XS: {
        const __m256i sl = qx_u8x8(p + 32 + 8 * (b / 2)), sh = qx_u8x8(p + 16 + 8 * (b / 4));
        const __m256i ls = _mm256_or_si256(qx_field(sl, 4 * (b % 2), 15),
                                           _mm256_slli_epi32(qx_field(sh, 2 * (b % 4), 3), 4));
        o->s0 = o->s1 = qx_times(qx_f16x8(p), _mm256_sub_epi32(ls, _mm256_set1_epi32(32)));
        qx_nibbles(p + 64 + 128 * b, GROK_KVALUES_IQ4NL, o->w);
        break;
    }
    case GROK_TYPE_Q2_K: {
        const int h = b / 4, j = b % 4;
        const __m256 d = qx_f16x8(p), dmin = qx_f16x8(p + 16);
        const __m256i sa = qx_u8x8(p + 32 + 8 * (2 * b)), sb = qx_u8x8(p + 32 + 8 * (2 * b + 1));
        o->s0 = qx_times(d, qx_field(sa, 0, 15)), o->s1 = qx_times(d, qx_field(sb, 0, 15));
        o->m0 = qx_times(dmin, qx_field(sa, 4, 15)), o->m1 = qx_times(dmin, qx_field(sb, 4, 15));
        for (int m = 0; m < 8; m++)
            o->w[m] = _mm256_and_si256(
                _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(p + 160 + 32 * (8 * h + m))), 2 * j),
                m3);
        break;
    }
    case GROK_TYPE_Q3_K: {
        const int h = b / 4, j = b % 4;
        const __m256 d = qx_f16x8(p);
        for (int half = 0; half < 2; half++) {
            const int s = 2 * b + half;
            const __m256i lo = qx_field(qx_u8x8(p + 16 + 8 * (s % 8)), s < 8 ? 0 : 4, 15);
            const __m256i hi = qx_field(qx_u8x8(p + 16 + 8 * (8 + s % 4)), 2 * (s / 4), 3);
            const __m256 sc = qx_times(
                d, _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32)));
            if (half)
                o->s1 = sc;
            else
                o->s0 = sc;
        }
        for (int m = 0; m < 8; m++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(p + 368 + 32 * (8 * h + m)));
            const __m256i hm = _mm256_loadu_si256((const __m256i *)(p + 112 + 32 * m));
            const int hbit = 4 * h + j; /* to bit 2 */
            const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
            const __m256i hb = _mm256_and_si256(hbit >= 2 ? _mm256_srli_epi16(hm, hbit - 2)
                                                          : _mm256_slli_epi16(hm, 2 - hbit),
                                                _mm256_set1_epi8(4));
            o->w[m] = _mm256_or_si256(lo, hb); /* q + 4 */
        }
        break;
    }
    case GROK_TYPE_NVFP4: {
        o->s0 = qx_ue4m3(p + 8 * (2 * b)), o->s1 = qx_ue4m3(p + 8 * (2 * b + 1));
        __m256i t[8];
        qx_nibbles(p + 32 + 128 * b, GROK_KVALUES_FP4, t); /* t[k]: low nibbles of chunk 4b+k, t[4+k] high */
        o->w[0] = t[0], o->w[1] = t[1], o->w[2] = t[4], o->w[3] = t[5];
        o->w[4] = t[2], o->w[5] = t[3], o->w[6] = t[6], o->w[7] = t[7];
        break;
    }
    case GROK_TYPE_TQ2_0:
        o->s0 = o->s1 = qx_f16x8(p);
        for (int m = 0; m < 8; m++)
            o->w[m] = _mm256_and_si256(
                _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(p + 16 + 32 * (8 * (b / 4) + m))),
                                  2 * (b % 4)),
                m3);
        break;
    case GROK_TYPE_TQ1_0: {
        o->s0 = o->s1 = qx_f16x8(p);
        __m256i q[8];
        if (b < 5) { /* tq: the chunks times 3^(b-1), kept from the previous activation block */
            for (int m = 0; m < 8; m++)
                q[m] = tq[m] =
                    b == 0 ? _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * m)) : qt_times3(tq[m]);
        } else {
            for (int m = 0; m < 4; m++) {
                q[m] = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * (8 + m)));
                for (int k = 0; k < 2 * (b - 5); k++) q[m] = qt_times3(q[m]);
                q[4 + m] = qt_times3(q[m]);
            }
            if (b == 7) {
                q[4] = _mm256_loadu_si256((const __m256i *)(p + 400));
                for (int m = 5; m < 8; m++) q[m] = qt_times3(q[m - 1]);
            }
        }
        for (int m = 0; m < 8; m++) { /* trits 0..2: 1 from 86 on, 2 from 171 on */
            const __m256i ge86 = _mm256_cmpeq_epi8(_mm256_max_epu8(q[m], _mm256_set1_epi8(86)), q[m]);
            const __m256i ge171 = _mm256_cmpeq_epi8(_mm256_max_epu8(q[m], _mm256_set1_epi8((char)171)), q[m]);
            o->w[m] = _mm256_sub_epi8(_mm256_sub_epi8(_mm256_setzero_si256(), ge86), ge171);
        }
        break;
    }
    case GROK_TYPE_Q1_0: {
        o->s0 = o->s1 = qx_f16x8(p);
        const __m256i a = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * b)), two = _mm256_set1_epi8(2);
        for (int m = 0; m < 8; m++) /* bit m as 0 or 2: value 2u - 1 */
            o->w[m] = _mm256_and_si256(m == 0 ? _mm256_slli_epi16(a, 1) : _mm256_srli_epi16(a, m - 1), two);
        break;
    }
    default: { /* Q2_0 */
        o->s0 = o->s1 = qx_f16x8(p);
        for (int m = 0; m < 8; m++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * (2 * b + m / 4)));
            o->w[m] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * (m % 4)), m3);
        }
        break;
    }
    }
}

#if QT_VNNI
#define QT_SPREP(w) _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80))
#define QT_SDOT(a, u, w, bc) _mm256_dpbusd_epi32(a, u, bc)
#define QT_SSTART(sum) _mm256_set1_epi32(-128 * (sum))
#else
#define QT_SPREP(w) _mm256_sign_epi8(w, w)
#define QT_SDOT(a, u, w, bc) KQ_DOTU_ADD(a, u, _mm256_sign_epi8(bc, w))
#define QT_SSTART(sum) _mm256_setzero_si256()
#endif

/* The two 16-value halves' quant sums of an activation block (psadbw on the quants made unsigned). */
TGT static inline void qx_half_sums(const int8_t *q, int32_t *h0, int32_t *h1) {
    const __m256i xv = _mm256_loadu_si256((const __m256i *)q);
    const __m256i s =
        _mm256_sad_epu8(_mm256_xor_si256(xv, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
    const __m128i lo = _mm256_castsi256_si128(s), hi = _mm256_extracti128_si256(s, 1);
    *h0 = _mm_cvtsi128_si32(lo) + _mm_extract_epi32(lo, 2) - 2048;
    *h1 = _mm_cvtsi128_si32(hi) + _mm_extract_epi32(hi, 2) - 2048;
}

TGT static KQ_INLINE void qx_tile(const int type, const uint8_t *p, const block_q8a *const *x, int64_t n,
                                  float *out, const int nt) {
    const int nbk = grok_qtypes_block_values(type) / QKA, kind = qx_kind(type);
    const size_t gsz = GROK_PACK_ROWS * grok_qtypes_block_bytes(type);
    __m256 acc[KQ_TILE], corr[KQ_TILE];
    for (int t = 0; t < nt; t++) acc[t] = corr[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / grok_qtypes_block_values(type); i++, p += gsz) {
        KQ_PREFETCH(p, gsz);
        __m256i tq[8];
        _Pragma("GCC unroll 8") for (int b = 0; b < nbk; b++) {
            qx_blk o;
            qx_decode(type, p, b, &o, tq);
            const bool halves = kind == QX_SIGN || kind == QX_UOFF16 || kind == QX_UM16;
            __m256i u[8];
            for (int m = 0; m < 8; m++) u[m] = kind == QX_BIAS || kind == QX_SIGN ? QT_SPREP(o.w[m]) : o.w[m];
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * nbk + b;
                const __m256 xd = _mm256_broadcast_ss(&xb->d);
                int32_t h0 = 0, h1 = 0;
                if (kind == QX_UM16 || kind == QX_UOFF16 || (kind == QX_SIGN && QT_VNNI))
                    qx_half_sums(xb->qs, &h0, &h1);
                __m256i ia = _mm256_setzero_si256(), ib = _mm256_setzero_si256();
                if (kind == QX_BIAS) ia = QT_SSTART(xb->sum);
                if (kind == QX_SIGN) ia = QT_SSTART(h0), ib = QT_SSTART(h1);
                if (kind == QX_UOFF) ia = _mm256_set1_epi32(-qx_off(type) * xb->sum);
                if (kind == QX_UOFF16) ia = _mm256_set1_epi32(-4 * h0), ib = _mm256_set1_epi32(-4 * h1);
                for (int m = 0; m < 8; m++) {
                    const __m256i bc = kq_bcast4(xb->qs + 4 * m);
                    if (kind == QX_BIAS || (kind == QX_SIGN && m < 4))
                        ia = QT_SDOT(ia, u[m], o.w[m], bc);
                    else if (kind == QX_SIGN)
                        ib = QT_SDOT(ib, u[m], o.w[m], bc);
                    else if (halves && m >= 4)
                        ib = KQ_DOTU_ADD(ib, u[m], bc);
                    else
                        ia = KQ_DOTU_ADD(ia, u[m], bc);
                }
                if (halves) {
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(o.s0, xd), _mm256_cvtepi32_ps(ia), acc[t]);
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(o.s1, xd), _mm256_cvtepi32_ps(ib), acc[t]);
                } else {
                    acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(o.s0, xd), _mm256_cvtepi32_ps(ia), acc[t]);
                }
                if (kind == QX_UM32)
                    corr[t] = _mm256_fmadd_ps(o.m0, _mm256_set1_ps(xb->d * (float)xb->sum), corr[t]);
                if (kind == QX_UM16) {
                    corr[t] = _mm256_fmadd_ps(o.m0, _mm256_set1_ps(xb->d * (float)h0), corr[t]);
                    corr[t] = _mm256_fmadd_ps(o.m1, _mm256_set1_ps(xb->d * (float)h1), corr[t]);
                }
            }
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(out + GROK_PACK_ROWS * t,
                         kind == QX_UM16 ? _mm256_sub_ps(acc[t], corr[t]) : _mm256_add_ps(acc[t], corr[t]));
}

#define QX_X8(NAME, T)                                                                                    \
    TGT static void NAME##_dot_x8(const uint8_t *group, const block_q8a *const *x, int64_t nx, int64_t n, \
                                  float *out) {                                                           \
        for (int64_t t = 0; t < nx; t += KQ_TILE)                                                         \
            KQ_NT_SWITCH(nx - t < KQ_TILE ? nx - t : KQ_TILE, qx_tile, T, group, x + t, n,                \
                         out + GROK_PACK_ROWS * t)                                                        \
    }
QX_X8(q4_1, GROK_TYPE_Q4_1)
QX_X8(q5_0, GROK_TYPE_Q5_0)
QX_X8(q5_1, GROK_TYPE_Q5_1)
QX_X8(q2_K, GROK_TYPE_Q2_K)
QX_X8(q3_K, GROK_TYPE_Q3_K)
QX_X8(iq4_nl, GROK_TYPE_IQ4_NL)
QX_X8(iq4_xs, GROK_TYPE_IQ4_XS)
QX_X8(tq1_0, GROK_TYPE_TQ1_0)
QX_X8(tq2_0, GROK_TYPE_TQ2_0)
QX_X8(mxfp4, GROK_TYPE_MXFP4)
QX_X8(nvfp4, GROK_TYPE_NVFP4)
QX_X8(q1_0, GROK_TYPE_Q1_0)
QX_X8(q2_0, GROK_TYPE_Q2_0)

#define QT_SET(out, NAME)                                                          \
    ((out)->dot_q8a = NAME##_dot_q8a, (out)->dot_q8a_multi = NAME##_dot_q8a_multi, \
     (out)->dot_x8 = NAME##_dot_x8)
static void qt_register(uint32_t type, grok_dot_kernels *out) {
    switch (type) {
    case GROK_TYPE_Q4_1: QT_SET(out, q4_1); break;
    case GROK_TYPE_Q5_0: QT_SET(out, q5_0); break;
    case GROK_TYPE_Q5_1: QT_SET(out, q5_1); break;
    case GROK_TYPE_Q2_K: QT_SET(out, q2_K); break;
    case GROK_TYPE_Q3_K: QT_SET(out, q3_K); break;
    case GROK_TYPE_IQ4_NL: QT_SET(out, iq4_nl); break;
    case GROK_TYPE_IQ4_XS: QT_SET(out, iq4_xs); break;
    case GROK_TYPE_TQ1_0: QT_SET(out, tq1_0); break;
    case GROK_TYPE_TQ2_0: QT_SET(out, tq2_0); break;
    case GROK_TYPE_MXFP4: QT_SET(out, mxfp4); break;
    case GROK_TYPE_NVFP4: QT_SET(out, nvfp4); break;
    case GROK_TYPE_Q1_0: QT_SET(out, q1_0); break;
    case GROK_TYPE_Q2_0: QT_SET(out, q2_0); break;
    default: break;
    }
}

#endif
