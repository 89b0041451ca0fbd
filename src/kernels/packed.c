/*
 * packed.c - the row-interleaved weight layouts (kernels.h, GROK_PACK_ROWS):
 * turning 8 rows of a file's q4_0, q8_0 or q4_K blocks into one packed group.
 * The layout is the same for every ISA; the dots that read it are in
 * x86_kquants.h. Packing is a byte shuffle, so the packed group holds
 * exactly the values of its rows.
 */
#include <string.h>

#include "kernels/kernels.h"

bool grok_pack_x8_type(grok_type type) {
    return type == GROK_TYPE_Q4_0 || type == GROK_TYPE_Q8_0 || type == GROK_TYPE_Q4_K;
}

static void pack_q4_K(const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst) {
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t *g = dst + (size_t)b * GROK_PACK_ROWS * sizeof(block_q4_K);
        for (int r = 0; r < GROK_PACK_ROWS; r++) {
            const uint8_t *blk = rows + (size_t)r * row_bytes + (size_t)b * sizeof(block_q4_K);
            memcpy(g + 2 * r, blk, 2);
            memcpy(g + 16 + 2 * r, blk + 2, 2);
            for (int j = 0; j < 12; j++) g[32 + 8 * j + r] = blk[4 + j];
            for (int k = 0; k < QK_K / 8; k++) memcpy(g + 128 + 32 * k + 4 * r, blk + 16 + 4 * k, 4);
        }
    }
}

void grok_pack_x8(grok_type type, const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst) {
    if (type == GROK_TYPE_Q4_K) {
        pack_q4_K(rows, row_bytes, n, dst);
        return;
    }
    const bool q8 = type == GROK_TYPE_Q8_0;
    const size_t bsz = q8 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    const int chunks = q8 ? 8 : 4; /* 4-byte pieces of a row's block quants */
    const uint32_t flip = q8 ? 0x80808080u : 0;
    for (int64_t b = 0; b < n / 32; b++) {
        uint8_t *g = dst + (size_t)b * GROK_PACK_ROWS * bsz;
        for (int r = 0; r < GROK_PACK_ROWS; r++) {
            const uint8_t *blk = rows + (size_t)r * row_bytes + (size_t)b * bsz;
            memcpy(g + 2 * r, blk, 2);
            for (int c = 0; c < chunks; c++) {
                uint32_t v;
                memcpy(&v, blk + 2 + 4 * c, 4);
                v ^= flip;
                memcpy(g + 16 + 32 * c + 4 * r, &v, 4);
            }
        }
    }
}
