/*
 * qtypes.h - block layouts and value tables of the ggml types added to the
 * original set (internal): the 32-blocks Q4_1, Q5_0, Q5_1, the k-quants
 * Q2_K and Q3_K, the non-linear IQ4_NL and IQ4_XS, the ternary TQ1_0 and
 * TQ2_0, the FP4 types MXFP4 and NVFP4, and llama.cpp's Q1_0 and Q2_0.
 * The layouts are ggml's (ggml/src/ggml-common.h of llama.cpp), byte for
 * byte, so GGUF files carry them; the comments say what each field holds
 * and which value each bit becomes. The reference decoders and dots are
 * in qtypes.c, the SIMD ones in x86_qtypes.h and arm_neon_qtypes.h.
 *
 * Every type's value is a[s] * q (+ b[s]) for a small integer q and the
 * float multiplier a (and offset b) of its sub-block s, formed in ggml's
 * order of float operations so that the decoded floats equal ggml's.
 */
#ifndef GROK_QTYPES_H
#define GROK_QTYPES_H

#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

/* Q4_1: value = d*q + m, q 0..15; element j < 16 in the low nibble of
 * qs[j], j + 16 in its high nibble. */
typedef struct {
    uint16_t d, m; /* f16 */
    uint8_t qs[16];
} block_q4_1;
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 must match ggml's layout");

/* Q5_0: value = d*(q - 16), q 0..31: Q4_0's nibbles plus a 5th bit, bit j
 * of the little-endian qh word for element j. */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
} block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 must match ggml's layout");

/* Q5_1: value = d*q + m, Q5_0's 5-bit q. */
typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} block_q5_1;
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 must match ggml's layout");

/* Q2_K: 16 sub-blocks of 16; value = (d*sc)*q - (dmin*m), q 0..3, sc the
 * low nibble of scales[s] and m its high nibble. Value 128h + 32j + l
 * (h < 2, j < 4, l < 32) is bits 2j..2j+1 of qs[32h + l]; its sub-block is
 * (128h + 32j + l) / 16. */
typedef struct {
    uint8_t scales[16];
    uint8_t qs[64];
    uint16_t d, dmin;
} block_q2_K;
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K must match ggml's layout");

/* Q3_K: 16 sub-blocks of 16; value = (d*(sc - 32))*q, q -4..3. Value
 * 128h + 32j + l: the low two bits of q + 4 are bits 2j..2j+1 of
 * qs[32h + l], its third bit is bit 4h + j of hmask[l] (so q = low - 4
 * where that bit is clear). The 6-bit sc of sub-block s: its low nibble is
 * the low (s < 8) or high (s >= 8) nibble of scales[s % 8], its top two
 * bits are bits 2(s/4)..2(s/4)+1 of scales[8 + s % 4]. */
typedef struct {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;
} block_q3_K;
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K must match ggml's layout");

/* IQ4_NL: value = d * GROK_KVALUES_IQ4NL[q], q 0..15 in Q4_0's nibble order. */
typedef struct {
    uint16_t d;
    uint8_t qs[16];
} block_iq4_nl;
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl must match ggml's layout");

/* IQ4_XS: 8 sub-blocks of 32; value = (d*(ls - 32)) * GROK_KVALUES_IQ4NL[q].
 * Sub-block s: the low nibble of its 6-bit ls is nibble s%2 of
 * scales_l[s/2], the top two bits are bits 2s..2s+1 of scales_h; its
 * values are IQ4_NL's nibble order over qs[16s..16s+15]. */
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[4];
    uint8_t qs[128];
} block_iq4_xs;
_Static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs must match ggml's layout");

/* TQ1_0: ternary, value = (t - 1)*d, t 0..2, five values per byte of qs
 * and four per byte of qh in base 3: the n-th trit of byte b is
 * ((uint8_t)(b * 3^n) * 3) >> 8 (the byte holds the fixed-point fraction
 * of the trits read as a base-3 number). Values 32n + m (n < 5, m < 32)
 * come from qs[m], 160 + 16n + m (m < 16) from qs[32 + m], 240 + 4n + j
 * (n < 4, j < 4) from qh[j]. */
typedef struct {
    uint8_t qs[48];
    uint8_t qh[4];
    uint16_t d;
} block_tq1_0;
_Static_assert(sizeof(block_tq1_0) == 54, "block_tq1_0 must match ggml's layout");

/* TQ2_0: value = (q - 1)*d, q 0..3 (2 bits); value 128h + 32l + m is bits
 * 2l..2l+1 of qs[32h + m]. */
typedef struct {
    uint8_t qs[64];
    uint16_t d;
} block_tq2_0;
_Static_assert(sizeof(block_tq2_0) == 66, "block_tq2_0 must match ggml's layout");

/* MXFP4 (OCP microscaling): value = GROK_KVALUES_FP4[q] * 2^(e - 128), q
 * an E2M1 code (the table holds twice its value, hence the halved E8M0
 * scale), in Q4_0's nibble order. */
typedef struct {
    uint8_t e; /* E8M0 */
    uint8_t qs[16];
} block_mxfp4;
_Static_assert(sizeof(block_mxfp4) == 17, "block_mxfp4 must match ggml's layout");

/* NVFP4: 4 sub-blocks of 16, each with an unsigned E4M3 scale d[s];
 * value = GROK_KVALUES_FP4[q] * ue4m3(d[s]) / 2. Sub-block s: value j < 8
 * in the low nibble of qs[8s + j], j + 8 in its high nibble. */
typedef struct {
    uint8_t d[4];
    uint8_t qs[32];
} block_nvfp4;
_Static_assert(sizeof(block_nvfp4) == 36, "block_nvfp4 must match ggml's layout");

/* Q1_0: 128 values, value = bit ? d : -d, bit j%8 of qs[j/8]. */
typedef struct {
    uint16_t d;
    uint8_t qs[16];
} block_q1_0;
_Static_assert(sizeof(block_q1_0) == 18, "block_q1_0 must match ggml's layout");

/* Q2_0: 64 values, value = (q - 1)*d, q 0..3 at bits 2(j%4).. of qs[j/4]. */
typedef struct {
    uint16_t d;
    uint8_t qs[16];
} block_q2_0;
_Static_assert(sizeof(block_q2_0) == 18, "block_q2_0 must match ggml's layout");

/* The 16 values of IQ4_NL / IQ4_XS's non-linear 4-bit codes
 * (kvalues_iq4nl in ggml/src/ggml-common.h). */
static const int8_t GROK_KVALUES_IQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                              1,    13,   25,  38,  53,  69,  89,  113};
/* The E2M1 codes' values, doubled (kvalues_mxfp4 in ggml-common.h, after
 * the OCP Microscaling Formats MX v1.0 spec): codes 0-7 are
 * 0, 0.5, 1, 1.5, 2, 3, 4, 6 and 8-15 their negatives. */
static const int8_t GROK_KVALUES_FP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* MXFP4's E8M0 scale halved (the table's doubling undone): 2^(e - 128),
 * the two smallest as subnormals (ggml_e8m0_to_fp32_half). */
static inline float grok_e8m0_half(uint8_t e) {
    const uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* NVFP4's unsigned E4M3 scale halved: exponent bits 3-6 (bias 7), mantissa
 * bits 0-2, exponent 0 subnormal (m * 2^-9); 0 and 0x7f (E4M3's NaN) give
 * 0, bit 7 is ignored (ggml_ue4m3_to_fp32). Halved, (1 + m/8) * 2^(e-7) / 2
 * is (8 + m) * 2^(e-11) and the subnormals m * 2^-10: an integer times a
 * power of two, exact in f32, as ggml's ldexpf forms are. */
static inline float grok_ue4m3_half(uint8_t x) {
    if (x == 0 || x == 0x7f) return 0.0f;
    const int e = (x >> 3) & 15, m = x & 7;
    const uint32_t pow2 = (uint32_t)((e ? e : 1) - 11 + 127) << 23;
    float p;
    memcpy(&p, &pow2, 4);
    return (float)(e ? 8 + m : m) * p;
}

/* The 6-bit scale of sub-block s (0..15) of a Q3_K block, before the -32. */
static inline int grok_q3_K_scale(const uint8_t *scales, int s) {
    const int lo = s < 8 ? scales[s] & 15 : scales[s - 8] >> 4;
    return lo | (((scales[8 + s % 4] >> (2 * (s / 4))) & 3) << 4);
}

/* The 6-bit scale of sub-block s (0..7) of an IQ4_XS block, before the -32. */
static inline int grok_iq4_xs_scale(const block_iq4_xs *b, int s) {
    return ((b->scales_l[s / 2] >> (4 * (s % 2))) & 15) | (((b->scales_h >> (2 * s)) & 3) << 4);
}

/* A type's values and bytes per block, as switches so that the kernels
 * specialised on a constant type fold them. */
static inline int grok_qtypes_block_values(int type) {
    switch (type) {
    case GROK_TYPE_Q2_K:
    case GROK_TYPE_Q3_K:
    case GROK_TYPE_IQ4_XS:
    case GROK_TYPE_TQ1_0:
    case GROK_TYPE_TQ2_0: return QK_K;
    case GROK_TYPE_Q1_0: return 128;
    case GROK_TYPE_NVFP4:
    case GROK_TYPE_Q2_0: return 64;
    default: return 32;
    }
}

static inline size_t grok_qtypes_block_bytes(int type) {
    switch (type) {
    case GROK_TYPE_Q4_1: return sizeof(block_q4_1);
    case GROK_TYPE_Q5_0: return sizeof(block_q5_0);
    case GROK_TYPE_Q5_1: return sizeof(block_q5_1);
    case GROK_TYPE_Q2_K: return sizeof(block_q2_K);
    case GROK_TYPE_Q3_K: return sizeof(block_q3_K);
    case GROK_TYPE_IQ4_NL: return sizeof(block_iq4_nl);
    case GROK_TYPE_IQ4_XS: return sizeof(block_iq4_xs);
    case GROK_TYPE_TQ1_0: return sizeof(block_tq1_0);
    case GROK_TYPE_TQ2_0: return sizeof(block_tq2_0);
    case GROK_TYPE_MXFP4: return sizeof(block_mxfp4);
    case GROK_TYPE_NVFP4: return sizeof(block_nvfp4);
    case GROK_TYPE_Q1_0: return sizeof(block_q1_0);
    default: return sizeof(block_q2_0);
    }
}

/* Whether type is one of these, with a packed layout (qtypes_pack.c), and
 * the packing of 8 rows into groups (as grok_pack_x8). */
bool grok_qtypes_pack_type(grok_type type);
void grok_qtypes_pack_x8(grok_type type, const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst);

/* Kernel tables of these types (qtypes.c); NULL for the other types. */
const grok_type_kernels *grok_qtypes_kernels(uint32_t type);
const grok_dot_kernels *grok_qtypes_dot_reference(uint32_t type);

#endif
