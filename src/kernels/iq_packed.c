/*
 * iq_packed.c - the row-interleaved ("packed") layouts of the i-quant
 * types (kernels.h, GROK_PACK_ROWS): 8 rows of a file's IQ2_XXS ... IQ1_M
 * blocks turned into one packed group, super-block column by super-block
 * column, each the bytes of its 8 rows' blocks (so a group has the size of
 * its rows). Within a super-block the fields are reordered so that one
 * vector load gives one field of all 8 rows: for a group of 8 weights l of
 * 32-weight block ib, the 8 rows' grid indices are 8 consecutive bytes, so
 * the kernels (x86_iquants.c) gather the 8 rows' grid points with one
 * instruction and a vector lane is a row. Packing is a byte shuffle: the
 * group holds exactly its rows' codes.
 *
 * Per super-block (r = row 0..7, ib = block 0..7, l = group of 8 weights
 * 0..3; offsets in bytes):
 *   IQ2_XXS (528): d at 2r; per ib at 16 + 64ib: byte 8l + r the grid index
 *     of group l, then at 32 + 4r the sign/scale word.
 *   IQ2_XS (592): d at 2r; per ib at 16 + 64ib: the 16-bit code of group l
 *     at 2(8l + r); at 528 + 8ib + r the scale byte of ib.
 *   IQ2_S (656): d at 2r; per ib at 16 + 80ib: byte 8l + r index bits 0-7 of
 *     group l, 32 + 8l + r its sign byte, 64 + r qh[ib], 72 + r scales[ib].
 *   IQ3_XXS (784): d at 2r; per ib at 16 + 96ib: byte 16l + 2r + k index k
 *     (0, 1) of group l, then at 64 + 4r the sign/scale word.
 *   IQ3_S (880): d at 2r; per ib at 16 + 104ib: byte 16l + 2r + k index bits
 *     0-7 of index k of group l, 64 + r qh[ib], 72 + 8l + r the sign byte of
 *     group l; at 848 + 8j + r scales[j] (j = 0..3).
 *   IQ1_S (400): d at 2r; per ib at 16 + 48ib: byte 8l + r index bits 0-7 of
 *     group l, then at 32 + 2r the 16-bit qh word of ib.
 *   IQ1_M (448): at 8r the row's 8 scale bytes (its d in their top nibbles);
 *     per ib at 64 + 48ib: byte 8l + r index bits 0-7 of group l, then at
 *     32 + 2r + h qh[2ib + h].
 */
#include <string.h>

#include "kernels/iquants.h"

bool grok_iq_pack_type(uint32_t type) { return grok_iq_type(type); }

void grok_iq_pack_x8(uint32_t type, const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst) {
    const size_t bs = grok_iq_block_bytes(type);
    for (int64_t i = 0; i < n / QK_K; i++) {
        uint8_t *g = dst + (size_t)i * GROK_PACK_ROWS * bs;
        for (int r = 0; r < GROK_PACK_ROWS; r++) {
            const uint8_t *b = rows + (size_t)r * row_bytes + (size_t)i * bs;
            if (type != GROK_TYPE_IQ1_M) memcpy(g + 2 * r, b, 2); /* d */
            for (int ib = 0; ib < 8; ib++)
                for (int l = 0; l < 4; l++) switch (type) {
                    case GROK_TYPE_IQ2_XXS:
                        g[16 + 64 * ib + 8 * l + r] = b[2 + 8 * ib + l];
                        if (l == 0) memcpy(g + 16 + 64 * ib + 32 + 4 * r, b + 2 + 8 * ib + 4, 4);
                        break;
                    case GROK_TYPE_IQ2_XS:
                        memcpy(g + 16 + 64 * ib + 2 * (8 * l + r), b + 2 + 2 * (4 * ib + l), 2);
                        if (l == 0) g[528 + 8 * ib + r] = b[66 + ib];
                        break;
                    case GROK_TYPE_IQ2_S:
                        g[16 + 80 * ib + 8 * l + r] = b[2 + 4 * ib + l];
                        g[16 + 80 * ib + 32 + 8 * l + r] = b[34 + 4 * ib + l];
                        if (l == 0)
                            g[16 + 80 * ib + 64 + r] = b[66 + ib], g[16 + 80 * ib + 72 + r] = b[74 + ib];
                        break;
                    case GROK_TYPE_IQ3_XXS:
                        memcpy(g + 16 + 96 * ib + 16 * l + 2 * r, b + 2 + 8 * ib + 2 * l, 2);
                        if (l == 0) memcpy(g + 16 + 96 * ib + 64 + 4 * r, b + 66 + 4 * ib, 4);
                        break;
                    case GROK_TYPE_IQ3_S:
                        memcpy(g + 16 + 104 * ib + 16 * l + 2 * r, b + 2 + 8 * ib + 2 * l, 2);
                        g[16 + 104 * ib + 72 + 8 * l + r] = b[74 + 4 * ib + l];
                        if (l == 0) g[16 + 104 * ib + 64 + r] = b[66 + ib];
                        if (ib == 0) g[848 + 8 * l + r] = b[106 + l];
                        break;
                    case GROK_TYPE_IQ1_S:
                        g[16 + 48 * ib + 8 * l + r] = b[2 + 4 * ib + l];
                        if (l == 0) memcpy(g + 16 + 48 * ib + 32 + 2 * r, b + 34 + 2 * ib, 2);
                        break;
                    case GROK_TYPE_IQ1_M:
                        g[64 + 48 * ib + 8 * l + r] = b[4 * ib + l];
                        if (l < 2) g[64 + 48 * ib + 32 + 2 * r + l] = b[32 + 2 * ib + l];
                        if (ib == 0 && l == 0) memcpy(g + 8 * r, b + 48, 8);
                        break;
                    default: break;
                    }
        }
    }
}
