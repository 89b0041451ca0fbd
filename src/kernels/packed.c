/*
 * packed.c - the row-interleaved weight layouts (kernels.h, GROK_PACK_ROWS):
 * turning 8 rows of a file's q4_0, q8_0, q4_K, q5_K or q6_K blocks into one
 * packed group. The layout is the same for every ISA; the dots that read
 * it are in x86_kquants.h and arm_neon.c. Packing is a byte shuffle, so
 * the packed group holds exactly the values of its rows.
 */
#include <string.h>

#include "kernels/iquants.h"
#include "kernels/kernels.h"
#include "kernels/qtypes.h"

bool grok_pack_x8_type(grok_type type) {
    return type == GROK_TYPE_Q4_0 || type == GROK_TYPE_Q8_0 || type == GROK_TYPE_Q4_K ||
           type == GROK_TYPE_Q5_K || type == GROK_TYPE_Q6_K || grok_qtypes_pack_type(type) ||
           grok_iq_pack_type(type);
}

/* Row r's bytes src[0..bytes) to their places in 32-byte chunks of 8 rows:
 * byte 4r+i of chunk k is src[4k+i] (bytes a multiple of 4). */
static void interleave4(uint8_t *dst, const uint8_t *src, size_t bytes, int r) {
    for (size_t k = 0; k < bytes / 4; k++) memcpy(dst + 32 * k + 4 * (size_t)r, src + 4 * k, 4);
}

/* Row r's bytes src[0..bytes) to byte 8j+r of dst (per-sub-block scale
 * codes: a few bytes a row, so byte by byte). */
static void interleave1(uint8_t *dst, const uint8_t *src, size_t bytes, int r) {
    for (size_t j = 0; j < bytes; j++) dst[8 * j + (size_t)r] = src[j];
}

/* q4_K and q5_K (q5: the qh chunks after the qs ones) */
static void pack_q45_K(const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst, bool q5) {
    const size_t bsz = q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t qs_at = q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t *g = dst + (size_t)b * GROK_PACK_ROWS * bsz;
        for (int r = 0; r < GROK_PACK_ROWS; r++) {
            const uint8_t *blk = rows + (size_t)r * row_bytes + (size_t)b * bsz;
            memcpy(g + 2 * r, blk, 2);
            memcpy(g + 16 + 2 * r, blk + 2, 2);
            interleave1(g + 32, blk + 4, 12, r);
            interleave4(g + 128, blk + qs_at, QK_K / 2, r);
            if (q5) interleave4(g + 128 + 8 * QK_K / 2, blk + offsetof(block_q5_K, qh), QK_K / 8, r);
        }
    }
}

static void pack_q6_K(const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst) {
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t *g = dst + (size_t)b * GROK_PACK_ROWS * sizeof(block_q6_K);
        for (int r = 0; r < GROK_PACK_ROWS; r++) {
            const uint8_t *blk = rows + (size_t)r * row_bytes + (size_t)b * sizeof(block_q6_K);
            memcpy(g + 2 * r, blk + offsetof(block_q6_K, d), 2);
            interleave1(g + 16, blk + offsetof(block_q6_K, scales), QK_K / 16, r);
            interleave4(g + 144, blk + offsetof(block_q6_K, ql), QK_K / 2, r);
            interleave4(g + 144 + 8 * QK_K / 2, blk + offsetof(block_q6_K, qh), QK_K / 4, r);
        }
    }
}

void grok_pack_x8(grok_type type, const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst) {
    if (grok_iq_pack_type(type)) { /* the i-quants' layouts: iq_packed.c */
        grok_iq_pack_x8(type, rows, row_bytes, n, dst);
        return;
    }
    if (grok_qtypes_pack_type(type)) { /* qtypes_pack.c */
        grok_qtypes_pack_x8(type, rows, row_bytes, n, dst);
        return;
    }
    if (type == GROK_TYPE_Q4_K || type == GROK_TYPE_Q5_K) {
        pack_q45_K(rows, row_bytes, n, dst, type == GROK_TYPE_Q5_K);
        return;
    }
    if (type == GROK_TYPE_Q6_K) {
        pack_q6_K(rows, row_bytes, n, dst);
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
