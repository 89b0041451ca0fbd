/*
 * x86_iquants.c - x86 dot products of the i-quant weight types (IQ2_XXS,
 * IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M; layouts in iquants.h):
 *   - AVX2 row dots with 8-bit activations, one token or a batch
 *     (dot_q8a, dot_q8a_multi), used on AVX2 and AVX-512 machines alike
 *     for rows that are not packed;
 *   - AVX2 dots with f32 activations (the exact mode);
 *   - AVX-512 VNNI dots of packed groups of 8 rows (dot_x8; the packed
 *     layouts are in iq_packed.c).
 * Per-function target attributes keep the build generic; cpu.c calls these
 * only on a CPU that has the features. Elsewhere this file provides nothing.
 *
 * Every type decodes, per 32 weights, into 32 unsigned magnitudes (the grid
 * points, looked up by index) and the weights' signs; the activations take
 * the signs (x * sign(w)), so the unsigned-by-signed byte products
 * (maddubs, vpdpbusd) give exact integer sums of w * x. IQ1's weights
 * 8 * grid +- 1 are formed as signed bytes and split the same way. Per 32
 * activations the integer sum (each 16-weight half weighted by its odd
 * scale ls) is scaled by the activation block's d in f32; the super-block's
 * d / F once per 256 weights, as the scalar reference does.
 */
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "kernels/iquants.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT2 __attribute__((target("avx2,fma,f16c")))
#define IQ_INLINE __attribute__((always_inline)) inline

static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint64_t rd64(const void *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
TGT2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Four grid points of 8 bytes, four of 4 bytes. */
TGT2 static inline __m256i grid8x4(const uint8_t (*g)[8], int a, int b, int c, int d) {
    return _mm256_set_epi64x((long long)rd64(g[d]), (long long)rd64(g[c]), (long long)rd64(g[b]),
                             (long long)rd64(g[a]));
}
TGT2 static inline __m256i grid4x8(const uint8_t (*g)[4], const int *i) {
    return _mm256_set_epi32((int)rd32(g[i[7]]), (int)rd32(g[i[6]]), (int)rd32(g[i[5]]), (int)rd32(g[i[4]]),
                            (int)rd32(g[i[3]]), (int)rd32(g[i[2]]), (int)rd32(g[i[1]]), (int)rd32(g[i[0]]));
}
/* The +-1 multipliers of four groups of 8 weights from their sign bytes
 * (bit j set: weight j negative); one table load each. */
TGT2 static inline __m256i signs4(unsigned a, unsigned b, unsigned c, unsigned d) {
    const int8_t(*t)[8] = grok_iq_sign_bytes;
    return _mm256_set_epi64x((long long)rd64(t[d]), (long long)rd64(t[c]), (long long)rd64(t[b]),
                             (long long)rd64(t[a]));
}
/* ... from four 7-bit codes at bits 0, 7, 14, 21 of a (the 8th sign makes the count even) */
TGT2 static inline __m256i signs4_7(uint32_t a) {
    const uint8_t *k = grok_iq_ksigns;
    return signs4(k[a & 127], k[(a >> 7) & 127], k[(a >> 14) & 127], k[(a >> 21) & 127]);
}
/* IQ1: the signed weights 8 * grid + off of four grid points (off: +-1 bytes per group of 8). */
TGT2 static inline __m256i iq1_weights(const int *idx, __m256i off) {
    return _mm256_add_epi8(grid8x4((const uint8_t(*)[8])grok_iq1s_grid8, idx[0], idx[1], idx[2], idx[3]),
                           off);
}
TGT2 static inline __m256i off_bytes(int o0, int o1, int o2, int o3) { /* 1: offset -1 */
    const long long m = 0x0101010101010101ll, n = -1;
    return _mm256_set_epi64x(o3 ? n : m, o2 ? n : m, o1 ? n : m, o0 ? n : m);
}

/* One 32-weight block ib of the super-block at p: magnitudes (u8), the
 * signs as +-1 bytes (IQ1: the signed weights, never 0), and the two
 * halves' scales ls0, ls1. */
TGT2 static IQ_INLINE void row_decode(const int T, const uint8_t *p, int ib, __m256i *mag, __m256i *sgn,
                                      int *ls0, int *ls1) {
    int l0, l1;
    switch (T) {
    case GROK_TYPE_IQ2_XXS: {
        const uint8_t *q = p + 2 + 8 * ib;
        const uint32_t aux = rd32(q + 4);
        *mag = grid8x4(grok_iq2xxs_grid, q[0], q[1], q[2], q[3]);
        *sgn = signs4_7(aux);
        l0 = l1 = (int)(2 * (aux >> 28) + 1);
        break;
    }
    case GROK_TYPE_IQ2_XS: {
        const uint8_t *q = p + 2 + 8 * ib;
        const uint16_t a = rd16(q), b = rd16(q + 2), c = rd16(q + 4), d = rd16(q + 6);
        *mag = grid8x4(grok_iq2xs_grid, a & 511, b & 511, c & 511, d & 511);
        const uint8_t *k = grok_iq_ksigns;
        *sgn = signs4(k[a >> 9], k[b >> 9], k[c >> 9], k[d >> 9]);
        l0 = 2 * (p[66 + ib] & 15) + 1, l1 = 2 * (p[66 + ib] >> 4) + 1;
        break;
    }
    case GROK_TYPE_IQ2_S: {
        const uint8_t *q = p + 2 + 4 * ib;
        const int h = p[66 + ib];
        *mag = grid8x4(grok_iq2s_grid, q[0] | (h & 3) << 8, q[1] | (h & 12) << 6, q[2] | (h & 48) << 4,
                       q[3] | (h & 192) << 2);
        const uint8_t *sb = p + 34 + 4 * ib;
        *sgn = signs4(sb[0], sb[1], sb[2], sb[3]);
        l0 = 2 * (p[74 + ib] & 15) + 1, l1 = 2 * (p[74 + ib] >> 4) + 1;
        break;
    }
    case GROK_TYPE_IQ3_XXS: {
        const uint8_t *q = p + 2 + 8 * ib;
        const uint32_t aux = rd32(p + 66 + 4 * ib);
        int idx[8];
        for (int k = 0; k < 8; k++) idx[k] = q[k];
        *mag = grid4x8(grok_iq3xxs_grid, idx);
        *sgn = signs4_7(aux);
        l0 = l1 = (int)(2 * (aux >> 28) + 1);
        break;
    }
    case GROK_TYPE_IQ3_S: {
        const uint8_t *q = p + 2 + 8 * ib;
        const int h = p[66 + ib];
        int idx[8];
        for (int k = 0; k < 8; k++) idx[k] = q[k] | ((h >> k) & 1) << 8;
        *mag = grid4x8(grok_iq3s_grid, idx);
        const uint8_t *sb = p + 74 + 4 * ib;
        *sgn = signs4(sb[0], sb[1], sb[2], sb[3]);
        l0 = l1 = 2 * ((p[106 + ib / 2] >> (4 * (ib % 2))) & 15) + 1;
        break;
    }
    case GROK_TYPE_IQ1_S: {
        const uint8_t *q = p + 2 + 4 * ib;
        const int h = rd16(p + 34 + 2 * ib);
        const int idx[4] = {q[0] | (h & 7) << 8, q[1] | (h & 0x38) << 5, q[2] | (h & 0x1c0) << 2,
                            q[3] | (h & 0xe00) >> 1};
        const int o = h >> 15;
        const __m256i w = iq1_weights(idx, off_bytes(o, o, o, o));
        *mag = _mm256_abs_epi8(w), *sgn = w; /* w is never 0 */
        l0 = l1 = 2 * ((h >> 12) & 7) + 1;
        break;
    }
    default: { /* IQ1_M */
        const uint8_t *q = p + 4 * ib;
        const int h0 = p[32 + 2 * ib], h1 = p[32 + 2 * ib + 1];
        const int idx[4] = {q[0] | (h0 & 7) << 8, q[1] | (h0 & 0x70) << 4, q[2] | (h1 & 7) << 8,
                            q[3] | (h1 & 0x70) << 4};
        const __m256i w = iq1_weights(idx, off_bytes(h0 & 8, h0 & 0x80, h1 & 8, h1 & 0x80));
        *mag = _mm256_abs_epi8(w), *sgn = w;
        const int s = rd16(p + 48 + 2 * (ib / 2)) >> (6 * (ib % 2));
        l0 = 2 * (s & 7) + 1, l1 = 2 * ((s >> 3) & 7) + 1;
        break;
    }
    }
    *ls0 = l0, *ls1 = l1;
}

/* The super-block's d (IQ1_M: assembled from its scale words' top nibbles). */
TGT2 static inline float row_d(const int T, const uint8_t *p) {
    uint16_t h;
    if (T == GROK_TYPE_IQ1_M) {
        const uint16_t s0 = rd16(p + 48), s1 = rd16(p + 50), s2 = rd16(p + 52), s3 = rd16(p + 54);
        h = (uint16_t)((s0 >> 12) | ((s1 >> 8) & 0xf0) | ((s2 >> 4) & 0xf00) | (s3 & 0xf000));
    } else {
        h = rd16(p);
    }
    return _cvtsh_ss(h);
}

#define IQ_TILE 4 /* tokens per pass over a row: 2 x 4 accumulators + the block's vectors in 16 registers */

/* Tokens x[0..nt) over one row: per super-block, per block, the decoded
 * weights meet every token. Per token the operations and their order are
 * those of nt = 1, so a token's result does not depend on its batch. Two
 * chains per token (even and odd blocks) hide the FMA latency. */
TGT2 static IQ_INLINE void row_tile(const int T, const uint8_t *p, const block_q8a *const *x, int64_t n,
                                    float *out, const int nt) {
    const size_t bs = grok_iq_block_bytes((uint32_t)T);
    __m256 acc[IQ_TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, p += bs) {
        GROK_PREFETCH(p);
        __m256 s0[IQ_TILE], s1[IQ_TILE];
        for (int t = 0; t < nt; t++) s0[t] = s1[t] = _mm256_setzero_ps();
        _Pragma("GCC unroll 8") for (int ib = 0; ib < 8; ib++) {
            __m256i mag, sgn;
            int l0, l1;
            row_decode(T, p, ib, &mag, &sgn, &l0, &l1);
            const bool per16 = T == GROK_TYPE_IQ2_XS || T == GROK_TYPE_IQ2_S || T == GROK_TYPE_IQ1_M;
            const __m256i ls = per16 ? _mm256_setr_m128i(_mm_set1_epi16((short)l0), _mm_set1_epi16((short)l1))
                                     : _mm256_set1_epi16((short)l0);
            for (int t = 0; t < nt; t++) {
                const block_q8a *xb = x[t] + i * (QK_K / QKA) + ib;
                const __m256i sx = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)xb->qs), sgn);
                /* pairs of products stay below 2 * 62 * 127 in 16 bits */
                const __m256i is = _mm256_madd_epi16(_mm256_maddubs_epi16(mag, sx), ls);
                if (ib & 1)
                    s1[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_broadcast_ss(&xb->d), s1[t]);
                else
                    s0[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_broadcast_ss(&xb->d), s0[t]);
            }
        }
        const __m256 dm = _mm256_set1_ps(row_d(T, p) * grok_iq_factor((uint32_t)T));
        for (int t = 0; t < nt; t++) acc[t] = _mm256_fmadd_ps(dm, _mm256_add_ps(s0[t], s1[t]), acc[t]);
    }
    for (int t = 0; t < nt; t++) out[t] = hsum8(acc[t]);
}

/* f32 activations: the decoded values y = (d * ls-factor) * w, as the
 * reference forms them, times x; only the summation order differs. */
TGT2 static IQ_INLINE float row_dot_f32(const int T, const uint8_t *p, const float *x, int64_t n) {
    const size_t bs = grok_iq_block_bytes((uint32_t)T);
    const bool iq1 = T == GROK_TYPE_IQ1_S || T == GROK_TYPE_IQ1_M;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (int64_t i = 0; i < n / QK_K; i++, p += bs) {
        GROK_PREFETCH(p);
        const float d = row_d(T, p);
        for (int ib = 0; ib < 8; ib++, x += 32) {
            __m256i mag, sgn;
            int ls[2];
            row_decode(T, p, ib, &mag, &sgn, &ls[0], &ls[1]);
            const __m256i w = _mm256_sign_epi8(mag, sgn);
            for (int h = 0; h < 2; h++) {
                const float l = (float)ls[h];
                /* the group scale as iquants.c's iq_values forms it */
                const float db = T == GROK_TYPE_IQ3_XXS        ? d * (l * 0.5f) * 0.5f
                                 : T == GROK_TYPE_IQ3_S || iq1 ? d * l
                                                               : d * (l * 0.5f) * 0.25f;
                const __m256 dv = _mm256_set1_ps(db);
                const __m128i wh = h ? _mm256_extracti128_si256(w, 1) : _mm256_castsi256_si128(w);
                __m256 v0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(wh));
                __m256 v1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(wh, 8)));
                if (iq1)
                    v0 = _mm256_mul_ps(v0, _mm256_set1_ps(0.125f)),
                    v1 = _mm256_mul_ps(v1, _mm256_set1_ps(0.125f));
                a0 = _mm256_fmadd_ps(_mm256_mul_ps(dv, v0), _mm256_loadu_ps(x + 16 * h), a0);
                a1 = _mm256_fmadd_ps(_mm256_mul_ps(dv, v1), _mm256_loadu_ps(x + 16 * h + 8), a1);
            }
        }
    }
    return hsum8(_mm256_add_ps(a0, a1));
}

#define IQ_ROW_FUNCS(T, NAME)                                                                        \
    TGT2 static void NAME##_multi(const void *row, const block_q8a *const *x, int64_t nx, int64_t n, \
                                  float *out) {                                                      \
        for (int64_t t = 0; t < nx; t += IQ_TILE) {                                                  \
            switch (nx - t < IQ_TILE ? nx - t : IQ_TILE) {                                           \
            case 1: row_tile(T, row, x + t, n, out + t, 1); break;                                   \
            case 2: row_tile(T, row, x + t, n, out + t, 2); break;                                   \
            case 3: row_tile(T, row, x + t, n, out + t, 3); break;                                   \
            default: row_tile(T, row, x + t, n, out + t, IQ_TILE); break;                            \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
    TGT2 static float NAME##_q8a(const void *row, const block_q8a *x, int64_t n) {                   \
        float out;                                                                                   \
        row_tile(T, row, &x, n, &out, 1);                                                            \
        return out;                                                                                  \
    }                                                                                                \
    TGT2 static float NAME##_f32(const void *row, const float *x, int64_t n) {                       \
        return row_dot_f32(T, row, x, n);                                                            \
    }
IQ_ROW_FUNCS(GROK_TYPE_IQ2_XXS, iq2_xxs)
IQ_ROW_FUNCS(GROK_TYPE_IQ2_XS, iq2_xs)
IQ_ROW_FUNCS(GROK_TYPE_IQ2_S, iq2_s)
IQ_ROW_FUNCS(GROK_TYPE_IQ3_XXS, iq3_xxs)
IQ_ROW_FUNCS(GROK_TYPE_IQ3_S, iq3_s)
IQ_ROW_FUNCS(GROK_TYPE_IQ1_S, iq1_s)
IQ_ROW_FUNCS(GROK_TYPE_IQ1_M, iq1_m)

#define IQ_SET(NAME) (out->dot_f32 = NAME##_f32, out->dot_q8a = NAME##_q8a, out->dot_q8a_multi = NAME##_multi)
void grok_iq_dot_avx2(uint32_t type, grok_dot_kernels *out) {
    switch (type) {
    case GROK_TYPE_IQ2_XXS: IQ_SET(iq2_xxs); break;
    case GROK_TYPE_IQ2_XS: IQ_SET(iq2_xs); break;
    case GROK_TYPE_IQ2_S: IQ_SET(iq2_s); break;
    case GROK_TYPE_IQ3_XXS: IQ_SET(iq3_xxs); break;
    case GROK_TYPE_IQ3_S: IQ_SET(iq3_s); break;
    case GROK_TYPE_IQ1_S: IQ_SET(iq1_s); break;
    case GROK_TYPE_IQ1_M: IQ_SET(iq1_m); break;
    default: break;
    }
}

/* ---- AVX-512 VNNI: packed groups of 8 rows (iq_packed.c) ----
 * A 512-bit vector holds one group of 8 weights of each of the 8 rows (row
 * r in qword r, so dword lanes 2r and 2r+1 are row r's): one gather fetches
 * the 8 rows' grid points, the group's 8 activation quants are broadcast to
 * every qword, take each row's signs through a 64-bit mask (one masked
 * subtract), and one vpdpbusd gives every row 8 products in two lanes. Per
 * 32-weight block the lanes' exact integer sums (per 16-weight half where
 * the scales are per 16) are converted, multiplied by their row's ls * d /
 * F times the activation block's d, and accumulated; lanes 2r and 2r+1 are
 * added at the end. IQ1_S is taken as unsigned bytes 8 * grid + 9 +- 1
 * instead (its offset is per 32 weights): no signs, and 9 times the
 * activation block's quant sum comes off through each row's first lane.
 * Per token the operations and their order do not depend on how many
 * tokens a call takes, so batches equal single tokens bit for bit. A
 * gather is the bottleneck for one token (four per 256 weights of 8 rows);
 * batches share them. */
#define TGT5 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define X8_TILE 8 /* tokens per pass: 8 float accumulators beside the block's vectors in 32 registers */

/* The 8 rows' values v (one per row) in lane pairs 2r, 2r+1. */
TGT5 static inline __m512 pairs(__m256 v) {
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7),
                                 _mm512_castps256_ps512(v));
}
/* 8 bytes (one per row) as floats 2 * v + 1. */
TGT5 static inline __m256 odd_scales(__m128i b) {
    const __m256i v = _mm256_cvtepu8_epi32(b);
    return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(v, v), _mm256_set1_epi32(1)));
}
/* Full sign bytes of 7-bit codes (bit 7 set where the code has an odd number of ones). */
TGT5 static inline __m256i parity_signs(__m256i c) {
    const __m256i lut =
        _mm256_setr_epi8(0, -128, -128, 0, -128, 0, 0, -128, -128, 0, 0, -128, 0, -128, -128, 0, 0, -128,
                         -128, 0, -128, 0, 0, -128, -128, 0, 0, -128, 0, -128, -128, 0);
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i p =
        _mm256_xor_si256(_mm256_shuffle_epi8(lut, _mm256_and_si256(c, m4)),
                         _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(c, 4), m4)));
    return _mm256_or_si256(c, p);
}
/* The 7-bit sign codes of groups 0..3 of 8 rows' sign/scale words aux (row
 * r in dword r), as bytes 8l + r, then their full sign bytes. */
TGT5 static inline __m256i aux_signs(__m256i aux) {
    const __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(aux), aux, 1), m7 = _mm512_set1_epi32(127);
    const __m512i s01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7);
    const __m512i s23 = _mm512_add_epi32(s01, _mm512_set1_epi32(14));
    const __m128i c01 = _mm512_cvtepi32_epi8(_mm512_and_si512(_mm512_srlv_epi32(a, s01), m7));
    const __m128i c23 = _mm512_cvtepi32_epi8(_mm512_and_si512(_mm512_srlv_epi32(a, s23), m7));
    return parity_signs(_mm256_setr_m128i(c01, c23));
}

/* The weights of block ib of a packed super-block at p for 8 rows: per
 * group l the magnitudes mag[l] and the negative weights neg[l] (bit 8r +
 * j: row r's weight j), and per half the rows' ls * (d / F) in lane pairs. */
typedef struct {
    __m512i mag[4];
    __mmask64 neg[4];
    __m512 sc[2];
} x8_block;

/* IQ1_M: signed weights 8 * grid + off (grok_iq1s_grid8 gathered, off +-1
 * per row), split into magnitude and sign. */
TGT5 static inline void iq1_split(__m512i g8, __m512i off, __m512i *mag, __mmask64 *neg) {
    const __m512i w = _mm512_add_epi8(g8, off);
    *mag = _mm512_abs_epi8(w), *neg = _mm512_movepi8_mask(w);
}
/* A per-row byte: b where the row's bit of negative is clear, nb where set. */
TGT5 static inline __m512i per_row(__mmask8 negative, char b, char nb) {
    return _mm512_mask_blend_epi64(negative, _mm512_set1_epi8(b), _mm512_set1_epi8(nb));
}

TGT5 static IQ_INLINE void x8_decode(const int T, const uint8_t *sb, int ib, __m256 dF, __m512i sc64,
                                     x8_block *w, const __m512i *vmag, const __mmask64 *vneg) {
    __m256 ls0, ls1;
    switch (T) {
    case GROK_TYPE_IQ2_XXS: {
        const uint8_t *q = sb + 16 + 64 * ib;
        const __m256i aux = _mm256_loadu_si256((const __m256i *)(q + 32));
        uint64_t s[4];
        if (!vneg) _mm256_storeu_si256((__m256i *)s, aux_signs(aux));
        for (int l = 0; l < 4; l++) {
            if (vmag) {
                w->mag[l] = vmag[l];
            } else {
                const __m512i ix = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(q + 8 * l)));
                w->mag[l] = _mm512_i64gather_epi64(ix, (const void *)grok_iq2xxs_grid, 8);
            }
            w->neg[l] = vneg ? vneg[l] : _cvtu64_mask64(s[l]);
        }
        const __m256i v = _mm256_srli_epi32(aux, 28);
        ls0 = ls1 = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(v, v), _mm256_set1_epi32(1)));
        break;
    }
    case GROK_TYPE_IQ2_XS: {
        const uint8_t *q = sb + 16 + 64 * ib;
        const __m512i c = _mm512_loadu_si512(q); /* u16 8l + r */
        uint64_t s[4];
        _mm256_storeu_si256((__m256i *)s, parity_signs(_mm512_cvtepi16_epi8(_mm512_srli_epi16(c, 9))));
        for (int l = 0; l < 4; l++) {
            const __m512i ix =
                _mm512_and_si512(_mm512_cvtepu16_epi64(_mm_loadu_si128((const __m128i *)(q + 16 * l))),
                                 _mm512_set1_epi64(511));
            w->mag[l] = _mm512_i64gather_epi64(ix, (const void *)grok_iq2xs_grid, 8);
            w->neg[l] = _cvtu64_mask64(s[l]);
        }
        const __m128i b = _mm_loadl_epi64((const __m128i *)(sb + 528 + 8 * ib));
        ls0 = odd_scales(_mm_and_si128(b, _mm_set1_epi8(15)));
        ls1 = odd_scales(_mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15)));
        break;
    }
    case GROK_TYPE_IQ2_S: {
        const uint8_t *q = sb + 16 + 80 * ib;
        const __m512i qh = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(q + 64)));
        for (int l = 0; l < 4; l++) {
            const __m512i lo = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(q + 8 * l)));
            const __m512i hi =
                _mm512_slli_epi64(_mm512_and_si512(_mm512_srli_epi64(qh, 2 * l), _mm512_set1_epi64(3)), 8);
            w->mag[l] = _mm512_i64gather_epi64(_mm512_or_si512(lo, hi), (const void *)grok_iq2s_grid, 8);
            w->neg[l] = _cvtu64_mask64(rd64(q + 32 + 8 * l));
        }
        const __m128i b = _mm_loadl_epi64((const __m128i *)(q + 72));
        ls0 = odd_scales(_mm_and_si128(b, _mm_set1_epi8(15)));
        ls1 = odd_scales(_mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15)));
        break;
    }
    case GROK_TYPE_IQ3_XXS: {
        const uint8_t *q = sb + 16 + 96 * ib;
        const __m256i aux = _mm256_loadu_si256((const __m256i *)(q + 64));
        uint64_t s[4];
        if (!vneg) _mm256_storeu_si256((__m256i *)s, aux_signs(aux));
        for (int l = 0; l < 4; l++) {
            if (vmag) {
                w->mag[l] = vmag[l];
            } else {
                const __m512i ix = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 16 * l)));
                w->mag[l] = _mm512_i32gather_epi32(ix, (const void *)grok_iq3xxs_grid, 4);
            }
            w->neg[l] = vneg ? vneg[l] : _cvtu64_mask64(s[l]);
        }
        const __m256i v = _mm256_srli_epi32(aux, 28);
        ls0 = ls1 = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(v, v), _mm256_set1_epi32(1)));
        break;
    }
    case GROK_TYPE_IQ3_S: {
        const uint8_t *q = sb + 16 + 104 * ib;
        /* qh[r] in lanes 2r, 2r+1; index k of group l takes bit 2l + k */
        const __m512i qh = _mm512_permutexvar_epi32(
            _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7),
            _mm512_castsi256_si512(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + 64)))));
        const __m512i k01 = _mm512_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
        for (int l = 0; l < 4; l++) {
            const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 16 * l)));
            const __m512i sh = _mm512_add_epi32(k01, _mm512_set1_epi32(2 * l));
            const __m512i hi =
                _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(qh, sh), _mm512_set1_epi32(1)), 8);
            w->mag[l] =
                vmag ? vmag[l]
                     : _mm512_i32gather_epi32(_mm512_or_si512(lo, hi), (const void *)grok_iq3s_grid, 4);
            w->neg[l] = _cvtu64_mask64(rd64(q + 72 + 8 * l));
        }
        __m128i b = _mm_loadl_epi64((const __m128i *)(sb + 848 + 8 * (ib / 2)));
        if (ib & 1) b = _mm_srli_epi16(b, 4);
        ls0 = ls1 = odd_scales(_mm_and_si128(b, _mm_set1_epi8(15)));
        break;
    }
    case GROK_TYPE_IQ1_S: {
        /* unsigned weights u = 8 * grid + off + 9 in 0..18; the tile takes 9 * (the
         * activations' sum) off, so no signs are applied */
        const uint8_t *q = sb + 16 + 48 * ib;
        const __m128i h16 = _mm_loadu_si128((const __m128i *)(q + 32));
        const __m512i qh = _mm512_cvtepu16_epi64(h16), c = per_row(_mm_movepi16_mask(h16), 10, 8);
        for (int l = 0; l < 4; l++) {
            const __m512i lo = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(q + 8 * l)));
            const __m512i hi =
                _mm512_slli_epi64(_mm512_and_si512(_mm512_srli_epi64(qh, 3 * l), _mm512_set1_epi64(7)), 8);
            w->mag[l] = _mm512_add_epi8(
                _mm512_i64gather_epi64(_mm512_or_si512(lo, hi), (const void *)grok_iq1s_grid8, 8), c);
            w->neg[l] = 0;
        }
        const __m256i v =
            _mm256_and_si256(_mm256_srli_epi32(_mm256_cvtepu16_epi32(h16), 12), _mm256_set1_epi32(7));
        ls0 = ls1 = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(v, v), _mm256_set1_epi32(1)));
        break;
    }
    default: { /* IQ1_M */
        const uint8_t *q = sb + 64 + 48 * ib;
        const __m512i qh = _mm512_cvtepu16_epi64(_mm_loadu_si128((const __m128i *)(q + 32)));
        for (int l = 0; l < 4; l++) {
            const __m512i nib = _mm512_srli_epi64(qh, 4 * l);
            const __m512i lo = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(q + 8 * l)));
            const __m512i hi = _mm512_slli_epi64(_mm512_and_si512(nib, _mm512_set1_epi64(7)), 8);
            iq1_split(_mm512_i64gather_epi64(_mm512_or_si512(lo, hi), (const void *)grok_iq1s_grid8, 8),
                      per_row(_mm512_test_epi64_mask(nib, _mm512_set1_epi64(8)), 1, -1), &w->mag[l],
                      &w->neg[l]);
        }
        const __m512i s = _mm512_srli_epi64(sc64, 16 * (ib / 2) + 6 * (ib % 2));
        const __m256i s0 = _mm512_cvtepi64_epi32(_mm512_and_si512(s, _mm512_set1_epi64(7)));
        const __m256i s1 =
            _mm512_cvtepi64_epi32(_mm512_and_si512(_mm512_srli_epi64(s, 3), _mm512_set1_epi64(7)));
        ls0 = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(s0, s0), _mm256_set1_epi32(1)));
        ls1 = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(s1, s1), _mm256_set1_epi32(1)));
        break;
    }
    }
    w->sc[0] = pairs(_mm256_mul_ps(ls0, dF)), w->sc[1] = pairs(_mm256_mul_ps(ls1, dF));
}

/* The 8 rows' d / F of the packed super-block at sb (IQ1_M: from the top
 * nibbles of each row's scale words, sc64: row r's 8 scale bytes in qword r). */
TGT5 static inline __m256 x8_dF(const int T, const uint8_t *sb, __m512i *sc64) {
    __m128i h;
    if (T == GROK_TYPE_IQ1_M) {
        const __m512i s = _mm512_loadu_si512(sb);
        const __m512i m = _mm512_set1_epi64(0xf);
        __m512i d = _mm512_and_si512(_mm512_srli_epi64(s, 12), m);
        d = _mm512_or_si512(d, _mm512_and_si512(_mm512_srli_epi64(s, 24), _mm512_slli_epi64(m, 4)));
        d = _mm512_or_si512(d, _mm512_and_si512(_mm512_srli_epi64(s, 36), _mm512_slli_epi64(m, 8)));
        d = _mm512_or_si512(d, _mm512_and_si512(_mm512_srli_epi64(s, 48), _mm512_slli_epi64(m, 12)));
        h = _mm512_cvtepi64_epi16(d);
        *sc64 = s;
    } else {
        h = _mm_loadu_si128((const __m128i *)sb);
        *sc64 = _mm512_setzero_si512();
    }
    return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(grok_iq_factor((uint32_t)T)));
}

/* Block ib of super-block i, decoded in w, against tokens x[0..nt). */
TGT5 static IQ_INLINE void x8_tokens(const int T, const x8_block *w, const block_q8a *const *x, int64_t i,
                                     int ib, __m512 *acc, const int nt) {
    const bool per16 = T == GROK_TYPE_IQ2_XS || T == GROK_TYPE_IQ2_S || T == GROK_TYPE_IQ1_M;
    for (int t = 0; t < nt; t++) {
        const block_q8a *xb = x[t] + i * (QK_K / QKA) + ib;
        /* IQ1_S: u - 9 = w, the 9 * sum once in each row's first lane */
        __m512i ia = T == GROK_TYPE_IQ1_S ? _mm512_set1_epi64((long long)(uint32_t)(-9 * xb->sum))
                                          : _mm512_setzero_si512(),
                ib2 = _mm512_setzero_si512();
        for (int l = 0; l < 4; l++) {
            const __m512i xv = _mm512_set1_epi64((long long)rd64(xb->qs + 8 * l));
            const __m512i sx =
                T == GROK_TYPE_IQ1_S ? xv : _mm512_mask_sub_epi8(xv, w->neg[l], _mm512_setzero_si512(), xv);
            if (per16 && l >= 2)
                ib2 = _mm512_dpbusd_epi32(ib2, w->mag[l], sx);
            else
                ia = _mm512_dpbusd_epi32(ia, w->mag[l], sx);
        }
        const __m512 xd = _mm512_set1_ps(xb->d);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(w->sc[0], xd), acc[t]);
        if (per16) acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ib2), _mm512_mul_ps(w->sc[1], xd), acc[t]);
    }
}

/* Each token's 8 rows: lanes 2r and 2r+1 added. */
TGT5 static inline void x8_store(const __m512 *acc, float *out, int nt) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int t = 0; t < nt; t++) {
        const __m512 s =
            _mm512_add_ps(_mm512_permutexvar_ps(even, acc[t]), _mm512_permutexvar_ps(odd, acc[t]));
        _mm256_storeu_ps(out + GROK_PACK_ROWS * t, _mm512_castps512_ps256(s));
    }
}

TGT5 static IQ_INLINE void x8_tile(const int T, const uint8_t *p, const block_q8a *const *x, int64_t n,
                                   float *out, const int nt) {
    const size_t gsz = GROK_PACK_ROWS * grok_iq_block_bytes((uint32_t)T);
    __m512 acc[X8_TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, p += gsz) {
        for (size_t pf = 0; pf < gsz; pf += 64) GROK_PREFETCH(p + pf);
        __m512i sc64;
        const __m256 dF = x8_dF(T, p, &sc64);
        for (int ib = 0; ib < 8; ib++) {
            x8_block w;
            x8_decode(T, p, ib, dF, sc64, &w, NULL, NULL);
            x8_tokens(T, &w, x, i, ib, acc, nt);
        }
    }
    x8_store(acc, out, nt);
}

#define IQ_X8_FUNC(T, NAME, TILE, TGT)                                                           \
    TGT static void NAME(const uint8_t *group, const block_q8a *const *x, int64_t nx, int64_t n, \
                         float *out) {                                                           \
        for (int64_t t = 0; t < nx; t += X8_TILE) {                                              \
            float *o = out + GROK_PACK_ROWS * t;                                                 \
            switch (nx - t < X8_TILE ? nx - t : X8_TILE) {                                       \
            case 1: TILE(T, group, x + t, n, o, 1); break;                                       \
            case 2: TILE(T, group, x + t, n, o, 2); break;                                       \
            case 3: TILE(T, group, x + t, n, o, 3); break;                                       \
            case 4: TILE(T, group, x + t, n, o, 4); break;                                       \
            case 5: TILE(T, group, x + t, n, o, 5); break;                                       \
            case 6: TILE(T, group, x + t, n, o, 6); break;                                       \
            case 7: TILE(T, group, x + t, n, o, 7); break;                                       \
            default: TILE(T, group, x + t, n, o, X8_TILE); break;                                \
            }                                                                                    \
        }                                                                                        \
    }
IQ_X8_FUNC(GROK_TYPE_IQ2_XXS, iq2_xxs_x8, x8_tile, TGT5)
IQ_X8_FUNC(GROK_TYPE_IQ2_XS, iq2_xs_x8, x8_tile, TGT5)
IQ_X8_FUNC(GROK_TYPE_IQ2_S, iq2_s_x8, x8_tile, TGT5)
IQ_X8_FUNC(GROK_TYPE_IQ3_XXS, iq3_xxs_x8, x8_tile, TGT5)
IQ_X8_FUNC(GROK_TYPE_IQ3_S, iq3_s_x8, x8_tile, TGT5)
IQ_X8_FUNC(GROK_TYPE_IQ1_S, iq1_s_x8, x8_tile, TGT5)
IQ_X8_FUNC(GROK_TYPE_IQ1_M, iq1_m_x8, x8_tile, TGT5)

/* ---- AVX-512 VBMI: signs and codebooks by byte permutes (IQ2_XXS, IQ3_XXS) ----
 * With one token the packed dots above are bound by the decoding, not by
 * memory: on this project's VM (one core, rows in L2) iq2_xxs ran 26
 * weights/ns, 6.7 GB/s of weights, a third of a core's share of the DRAM
 * bandwidth; without its gathers 34, without its sign decoding (aux_signs)
 * too 47. Both have cheaper forms with VBMI's byte permutes:
 *   - signs (vb_signs): two blocks' 64 7-bit sign codes go to bytes with
 *     one vpmultishiftqb, to sign bytes with one two-register permute of
 *     grok_iq_ksigns and to mask order with one vpermb;
 *   - grid points: the grids' magnitudes take few values (IQ2: 8, 25, 43;
 *     IQ3_XXS: 8 levels), so a point is a short code of 2 (IQ3: 3) bits per
 *     weight, kept as two bytes per point (IQ2: weights 0-3 and 4-7; IQ3:
 *     0-1 and 2-3) in two 256-byte tables derived from the grid once
 *     (codes_of). A block's 32 (IQ3: 64) indices look up both code bytes
 *     with two two-register permutes (vpermt2b, 128 entries each) and a
 *     blend on the index's top bit; per group of 8 weights one more permute
 *     puts row r's code bytes in qword r, vpmultishiftqb moves each weight's
 *     code to the bottom of its byte, and vpermb maps codes to magnitudes.
 * The magnitudes and masks are the gathered ones exactly, so the sums equal
 * the gather kernels' bit for bit (and the token loop is theirs). */
#define TGT6 \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx512bitalg")))

typedef struct {
    uint8_t code[2][512]; /* code bytes of the points */
    uint8_t level[64];    /* magnitude of code c & mask at byte c */
    bool ok;              /* every magnitude among the levels */
} iq_codes;
static iq_codes g_codes_iq2xxs, g_codes_iq3xxs, g_codes_iq3s;
static pthread_once_t g_codes_once = PTHREAD_ONCE_INIT;

/* The codes of a grid of np points of len (8 or 4) magnitudes, bits per weight. */
static void codes_of(const uint8_t *grid, int np, int len, int bits, iq_codes *c) {
    int nlev = 0;
    uint8_t lev[8];
    c->ok = true;
    for (int i = 0; i < np; i++)
        for (int h = 0; h < 2; h++) {
            unsigned byte = 0;
            for (int j = 0; j < len / 2; j++) {
                const uint8_t v = grid[len * i + len / 2 * h + j];
                int k = 0;
                while (k < nlev && lev[k] != v) k++;
                if (k == nlev) {
                    if (nlev == 1 << bits) {
                        c->ok = false;
                        return;
                    }
                    lev[nlev++] = v;
                }
                byte |= (unsigned)k << (bits * j);
            }
            c->code[h][i] = (uint8_t)byte;
        }
    for (int b = 0; b < 64; b++) c->level[b] = lev[(b & ((1 << bits) - 1)) % nlev];
}
static void codes_init(void) {
    codes_of(&grok_iq2xxs_grid[0][0], 256, 8, 2, &g_codes_iq2xxs);
    codes_of(&grok_iq3xxs_grid[0][0], 256, 4, 3, &g_codes_iq3xxs);
    codes_of(&grok_iq3s_grid[0][0], 512, 4, 3, &g_codes_iq3s);
}

/* Code byte h of the points idx (64 bytes; only the bytes used matter), of
 * points 256 on where k8 is set (IQ3_S: the 9th index bit). */
TGT6 static inline __m512i code_lookup(const iq_codes *c, int h, __m512i idx, bool nine, __mmask64 k8) {
    const __m512i *t = (const __m512i *)c->code[h];
    const __mmask64 k7 = _mm512_movepi8_mask(idx);
    const __m512i lo = _mm512_mask_blend_epi8(
        k7, _mm512_permutex2var_epi8(_mm512_loadu_si512(t), idx, _mm512_loadu_si512(t + 1)),
        _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 2), idx, _mm512_loadu_si512(t + 3)));
    if (!nine) return lo;
    const __m512i hi = _mm512_mask_blend_epi8(
        k7, _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 4), idx, _mm512_loadu_si512(t + 5)),
        _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 6), idx, _mm512_loadu_si512(t + 7)));
    return _mm512_mask_blend_epi8(k8, lo, hi);
}

/* The 4 groups' magnitudes of block ib of the packed super-block at sb, as
 * x8_decode's gathers give them; IQ2_XXS: of blocks ib and ib + 1 (mag[4h +
 * l]), whose 64 indices fill one lookup. */
TGT6 static IQ_INLINE void vb_mags(const int T, const uint8_t *sb, int ib, __m512i *mag) {
    const bool iq2 = T == GROK_TYPE_IQ2_XXS, nine = T == GROK_TYPE_IQ3_S;
    const iq_codes *c = iq2 ? &g_codes_iq2xxs : nine ? &g_codes_iq3s : &g_codes_iq3xxs;
    /* IQ2_XXS: index of group l, row r at byte 8l + r; IQ3: index k at 16l + 2r + k */
    const uint8_t *q = sb + 16 + (iq2 ? 64 : nine ? 104 : 96) * ib;
    const __m512i idx =
        iq2 ? _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)q)),
                                 _mm256_loadu_si256((const __m256i *)(q + 64)), 1)
            : _mm512_loadu_si512(q);
    __mmask64 k8 = 0;
    if (nine) { /* bit 2l + k of row r's qh byte (at q + 64 + r) to byte 16l + 2r + k */
        const __m512i spread = _mm512_set_epi8(
            7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 7,
            7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
        const __m512i bit = _mm512_set_epi64(0x8040804080408040ll, 0x8040804080408040ll, 0x2010201020102010ll,
                                             0x2010201020102010ll, 0x0804080408040804ll, 0x0804080408040804ll,
                                             0x0201020102010201ll, 0x0201020102010201ll);
        const __m512i qh = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(q + 64)));
        k8 = _mm512_test_epi8_mask(_mm512_permutexvar_epi8(spread, qh), bit);
    }
    const __m512i c0 = code_lookup(c, 0, idx, nine, k8), c1 = code_lookup(c, 1, idx, nine, k8);
    const __m512i lev = _mm512_loadu_si512(c->level);
    /* bit offsets of each weight's code in qword r after the placing permute:
     * IQ2 bytes (c0, c1) of one point; IQ3 (c0, c1) of index 0, then of index 1 */
    const __m512i shifts =
        iq2 ? _mm512_set1_epi64(0x0e0c0a0806040200ll) : _mm512_set1_epi64(0x1b1813100b080300ll);
    for (int l = 0; l < (iq2 ? 8 : 4); l++) {
        /* byte 8r + m of the placing permute: m = 0 code byte 0 (IQ3: of index 0), 1 code byte 1,
         * IQ3: 2, 3 the same of index 1; 64 + i takes byte i of c1 */
        const __m512i r8 = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        __m512i place;
        if (iq2) {
            const __m512i b = _mm512_add_epi64(r8, _mm512_set1_epi64(8 * l)); /* block ib + l / 4 at 32 */
            place = _mm512_or_si512(b, _mm512_slli_epi64(_mm512_add_epi64(b, _mm512_set1_epi64(64)), 8));
        } else {
            const __m512i b = _mm512_add_epi64(_mm512_add_epi64(r8, r8), _mm512_set1_epi64(16 * l));
            const __m512i b1 = _mm512_add_epi64(b, _mm512_set1_epi64(1));
            place = _mm512_or_si512(
                _mm512_or_si512(b, _mm512_slli_epi64(_mm512_add_epi64(b, _mm512_set1_epi64(64)), 8)),
                _mm512_or_si512(_mm512_slli_epi64(b1, 16),
                                _mm512_slli_epi64(_mm512_add_epi64(b1, _mm512_set1_epi64(64)), 24)));
        }
        const __m512i w = _mm512_permutex2var_epi8(c0, place, c1);
        mag[l] = _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(shifts, w), lev);
    }
}

/* The sign masks of blocks ib and ib + 1 (IQ2_XXS, IQ3_XXS: 7-bit sign
 * codes in the rows' sign/scale words), neg[4h + l] for block ib + h:
 * vpmultishiftqb takes each row's four codes to bytes, a two-register
 * permute looks up their sign bytes (grok_iq_ksigns, 128 entries: the
 * garbage top bit is ignored), one more gathers row r's 8 sign bytes in
 * qword r, and per group one vpshufbitqmb reads its byte of every row as
 * the mask (bit 8r + j). All in vector and mask registers; aux_signs costs
 * about three times as much per block and its masks go through memory. */
TGT6 static inline void vb_signs(const int T, const uint8_t *sb, int ib, __mmask64 *neg) {
    const size_t stride = T == GROK_TYPE_IQ2_XXS ? 64 : 96, at = T == GROK_TYPE_IQ2_XXS ? 48 : 80;
    const __m512i aux = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(sb + at + stride * ib))),
        _mm256_loadu_si256((const __m256i *)(sb + at + stride * (ib + 1))), 1);
    /* qword q: rows 2q, 2q + 1 (mod 8) of block ib + q / 4; bytes 4k + l the code of group l of row 2q + k */
    const __m512i codes = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(0x352e2720150e0700ll), aux);
    const __m512i signs = _mm512_permutex2var_epi8(_mm512_loadu_si512(grok_iq_ksigns), codes,
                                                   _mm512_loadu_si512(grok_iq_ksigns + 64));
    /* byte 8r + 4h + l from 32h + 4r + l */
    const __m512i tr =
        _mm512_set_epi8(63, 62, 61, 60, 31, 30, 29, 28, 59, 58, 57, 56, 27, 26, 25, 24, 55, 54, 53, 52, 23,
                        22, 21, 20, 51, 50, 49, 48, 19, 18, 17, 16, 47, 46, 45, 44, 15, 14, 13, 12, 43, 42,
                        41, 40, 11, 10, 9, 8, 39, 38, 37, 36, 7, 6, 5, 4, 35, 34, 33, 32, 3, 2, 1, 0);
    const __m512i rows = _mm512_permutexvar_epi8(tr, signs);
    for (int g = 0; g < 8; g++) /* bits 8g .. 8g + 7 of each qword */
        neg[g] = _mm512_bitshuffle_epi64_mask(
            rows, _mm512_set1_epi64(0x0706050403020100ll + 0x0808080808080808ll * g));
}

TGT6 static IQ_INLINE void x8_tile_vb(const int T, const uint8_t *p, const block_q8a *const *x, int64_t n,
                                      float *out, const int nt) {
    const size_t gsz = GROK_PACK_ROWS * grok_iq_block_bytes((uint32_t)T);
    __m512 acc[X8_TILE];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; i++, p += gsz) {
        for (size_t pf = 0; pf < gsz; pf += 64) GROK_PREFETCH(p + pf);
        __m512i sc64;
        const __m256 dF = x8_dF(T, p, &sc64);
        for (int ib = 0; ib < 8; ib += 2) {
            __mmask64 neg[8];
            const bool codes = T != GROK_TYPE_IQ3_S; /* IQ3_S stores its sign bytes */
            if (codes) vb_signs(T, p, ib, neg);
            __m512i mag[8];
            if (T == GROK_TYPE_IQ2_XXS) vb_mags(T, p, ib, mag);
            for (int h = 0; h < 2; h++) {
                x8_block w;
                if (T != GROK_TYPE_IQ2_XXS) vb_mags(T, p, ib + h, mag + 4 * h);
                x8_decode(T, p, ib + h, dF, sc64, &w, mag + 4 * h, codes ? neg + 4 * h : NULL);
                x8_tokens(T, &w, x, i, ib + h, acc, nt);
            }
        }
    }
    x8_store(acc, out, nt);
}
IQ_X8_FUNC(GROK_TYPE_IQ2_XXS, iq2_xxs_x8_vb, x8_tile_vb, TGT6)
IQ_X8_FUNC(GROK_TYPE_IQ3_XXS, iq3_xxs_x8_vb, x8_tile_vb, TGT6)
IQ_X8_FUNC(GROK_TYPE_IQ3_S, iq3_s_x8_vb, x8_tile_vb, TGT6)

/* grok_iq_dot_avx512's, with the permute lookups where they apply. */
void grok_iq_dot_avx512vbmi(uint32_t type, grok_dot_kernels *out) {
    grok_iq_dot_avx512(type, out);
    pthread_once(&g_codes_once, codes_init);
    if (type == GROK_TYPE_IQ2_XXS && g_codes_iq2xxs.ok) out->dot_x8 = iq2_xxs_x8_vb;
    if (type == GROK_TYPE_IQ3_XXS && g_codes_iq3xxs.ok) out->dot_x8 = iq3_xxs_x8_vb;
    if (type == GROK_TYPE_IQ3_S && g_codes_iq3s.ok) out->dot_x8 = iq3_s_x8_vb;
}

/* The AVX2 row dots (for rows that are not packed) with the packed dots. */
void grok_iq_dot_avx512(uint32_t type, grok_dot_kernels *out) {
    grok_iq_dot_avx2(type, out);
    switch (type) {
    case GROK_TYPE_IQ2_XXS: out->dot_x8 = iq2_xxs_x8; break;
    case GROK_TYPE_IQ2_XS: out->dot_x8 = iq2_xs_x8; break;
    case GROK_TYPE_IQ2_S: out->dot_x8 = iq2_s_x8; break;
    case GROK_TYPE_IQ3_XXS: out->dot_x8 = iq3_xxs_x8; break;
    case GROK_TYPE_IQ3_S: out->dot_x8 = iq3_s_x8; break;
    case GROK_TYPE_IQ1_S: out->dot_x8 = iq1_s_x8; break;
    case GROK_TYPE_IQ1_M: out->dot_x8 = iq1_m_x8; break;
    default: break;
    }
}

#else
void grok_iq_dot_avx2(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
void grok_iq_dot_avx512(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
void grok_iq_dot_avx512vbmi(uint32_t type, grok_dot_kernels *out) { (void)type, (void)out; }
#endif
