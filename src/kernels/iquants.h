/*
 * iquants.h - ggml's codebook ("i-quant") weight types IQ2_XXS, IQ2_XS,
 * IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M (internal): their block layouts,
 * the scalar reference kernels (iquants.c) and what the SIMD files share.
 *
 * Every one of them stores super-blocks of 256 weights as groups of 8 (or
 * 4) whose magnitudes are one point of a codebook (iq_tables.h), picked by
 * a stored index, with per-group sign bits and odd integer scales ls =
 * 2s+1 per 32 or 16 weights under one f16 d. So each weight is
 *   d * ls * w / F
 * with w a small signed integer (the grid value with its sign; IQ1: 8 *
 * grid +- 1, folding IQ1's +-1/8 offset in) and F a power of two per type
 * (IQ2: 8, IQ3_XXS: 4, IQ3_S: 1, IQ1: 8). The dots take exact integer sums
 * of w times the 8-bit activations per 16 weights, weight them by ls, and
 * scale per 32-weight activation block in f32. The decoders form each value
 * with ggml's float operations in ggml's order, so they equal ggml's
 * dequantize_row_iq* bit for bit.
 *
 * Layouts (bytes, little-endian; ib = 32-weight block 0..7 of the 256):
 *   IQ2_XXS (66): f16 d, then per ib 8 bytes: 4 grid indices (one byte
 *     each, 8 weights each), then a u32 whose bits 7l..7l+6 are group l's
 *     7 sign bits (grok_iq_ksigns gives the 8th) and bits 28-31 s.
 *   IQ2_XS (74): f16 d, 32 u16 (bits 0-8 grid index, 9-15 the 7 sign bits),
 *     4 per ib; then scales[8]: s of ib's first 16 weights in the low
 *     nibble of scales[ib], of its last 16 in the high one.
 *   IQ2_S (82): f16 d, qs[32] (index bits 0-7, 4 per ib), signs[32] (one
 *     full sign byte per group of 8), qh[8] (bits 2l, 2l+1 of qh[ib]: index
 *     bits 8-9 of group l), scales[8] as IQ2_XS.
 *   IQ3_XXS (98): f16 d, qs[64] (8 indices per ib, 4 weights each), then
 *     per ib a u32 as IQ2_XXS's second word (group l = 8 weights).
 *   IQ3_S (110): f16 d, qs[64] (index bits 0-7), qh[8] (bit k of qh[ib]:
 *     bit 8 of index k of ib), signs[32] (one byte per 8 weights),
 *     scales[4] (s of ib in nibble ib % 2 of scales[ib / 2]).
 *   IQ1_S (50): f16 d, qs[32] (index bits 0-7), then per ib a u16: bits
 *     3l..3l+2 index bits 8-10 of group l, bits 12-14 s, bit 15 the offset's
 *     sign (set: -1/8); w = 8 * grid -+ 1.
 *   IQ1_M (56): qs[32], qh[16] (per ib two bytes, one per pair of groups:
 *     bits 0-2 and 4-6 index bits 8-10 of the pair's groups, bits 3 and 7
 *     their offset signs), then 4 u16 scales: 3-bit s of ib's first (last)
 *     16 weights at bit 6*(ib%2) (+3) of u16 ib/2, and d, an f16 whose bits
 *     are the four u16s' top nibbles (u16 0 the lowest).
 */
#ifndef GROK_IQUANTS_H
#define GROK_IQUANTS_H

#include "kernels/iq_tables.h"
#include "kernels/kernels.h"

/* Whether type is one of the seven i-quant types here. */
bool grok_iq_type(uint32_t type);
/* The reference kernels of an i-quant type (NULL for other types); their
 * from_f32 is grok_iq_from_f32_weighted without an importance matrix. */
const grok_type_kernels *grok_iq_kernels(uint32_t type);
/* The encoders (iq_encode.c): n values (a multiple of 256) of src into
 * dst, each value's squared error weighted by imx[i] (an importance
 * matrix row; NULL: all 1). Thread-safe; the first call builds the
 * codebooks' neighbour tables (about 1 MB). grok_iq_encoder_ready builds
 * them and says whether that worked (it fails only out of memory, and then
 * the encoder writes zero blocks). */
void grok_iq_from_f32_weighted(uint32_t type, const float *src, void *dst, int64_t n, const float *imx);
bool grok_iq_encoder_ready(void);
const grok_dot_kernels *grok_iq_dot_reference(uint32_t type);

/* The SIMD dots of the i-quants (x86_iquants.c, arm_neon_iquants.c), set
 * in a table as grok_dot_avx2 / grok_dot_avx512 / grok_dot_neon set theirs
 * (and called by them). */
void grok_iq_dot_avx2(uint32_t type, grok_dot_kernels *out);
void grok_iq_dot_avx512(uint32_t type, grok_dot_kernels *out);
void grok_iq_dot_avx512vbmi(uint32_t type, grok_dot_kernels *out);
void grok_iq_dot_neon(uint32_t type, grok_dot_kernels *out);

/* The packed layouts (iq_packed.c): whether type has one, and 8 rows of n
 * columns to their packed group (grok_pack_x8 calls these). */
bool grok_iq_pack_type(uint32_t type);
void grok_iq_pack_x8(uint32_t type, const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst);

/* One super-block as integers: value i = d * ls[i / 16] * w[i] / F (F
 * above), d the block's f16 scale as f32. */
typedef struct {
    int8_t w[QK_K];
    int8_t ls[QK_K / 16];
    float d;
} grok_iq_block;
void grok_iq_unpack(uint32_t type, const uint8_t *blk, grok_iq_block *b);
/* The bytes of a block and 1/F, inline so that kernels with a constant type
 * fold them. */
static inline size_t grok_iq_block_bytes(uint32_t type) {
    switch (type) {
    case GROK_TYPE_IQ2_XXS: return 66;
    case GROK_TYPE_IQ2_XS: return 74;
    case GROK_TYPE_IQ2_S: return 82;
    case GROK_TYPE_IQ3_XXS: return 98;
    case GROK_TYPE_IQ3_S: return 110;
    case GROK_TYPE_IQ1_S: return 50;
    default: return 56; /* IQ1_M */
    }
}
static inline float grok_iq_factor(uint32_t type) {
    return type == GROK_TYPE_IQ3_S ? 1.0f : type == GROK_TYPE_IQ3_XXS ? 0.25f : 0.125f;
}

#endif
