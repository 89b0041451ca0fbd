/*
 * qtypes_pack.c - the packed (row-interleaved, GROK_PACK_ROWS = 8 rows)
 * layouts of the types in qtypes.h, in memory only (files keep ggml's
 * layout), laid out so that one 32-byte vector gives 4 consecutive values
 * of each of the 8 rows and the kernels (x86_qtypes.h, *_dot_x8) spend no
 * shuffles on them. As for the other packed types a group of 8 rows takes
 * exactly the bytes of its 8 rows, block column by block column. Per
 * block of a group, in order:
 *   q4_1:   d[8], m[8] (f16, row r at 2r), qs as chunks (below). 160 bytes.
 *   q5_0:   d[8], the 5th bits as one plane (below), qs chunks. 176.
 *   q5_1:   d[8], m[8], plane, qs chunks. 192.
 *   iq4_nl: d[8], qs chunks. 144.
 *   mxfp4:  e[8] (byte r), qs chunks. 136.
 *   q2_K:   d[8], dmin[8], scales by row (byte 8s+r: row r's scales[s]), qs chunks. 672.
 *   q3_K:   d[8], scales by row (96), hmask chunks (256), qs chunks (512). 880.
 *   iq4_xs: d[8], scales_h by row (16), scales_l by row (32), qs chunks (1024). 1088.
 *   tq1_0:  d[8], qs chunks (384), qh chunks (32). 432.
 *   tq2_0:  d[8], qs chunks (512). 528.
 *   nvfp4:  d by row (byte 8s+r), qs chunks (256). 288.
 *   q1_0:   d[8], 4 bit planes (below). 144.
 *   q2_0:   d[8], 4 planes of 2-bit codes (below). 144.
 * "Chunks" of a field: byte 4r+i of chunk k is row r's byte 4k+i of it, so
 * a chunk holds the same 4 bytes of the 8 rows. The planes hold codes
 * re-arranged by bit: in q5_0 / q5_1's plane, bit j of byte 4r+i is row
 * r's 5th bit of value 4j+i (j < 4) or 16+4(j-4)+i (j >= 4), the values
 * whose low nibbles the kernel takes from chunk j % 4; in q1_0's plane b
 * (b < 4), bit m of byte 4r+i is row r's bit of value 32b+4m+i; in q2_0's
 * plane g, bits 2f..2f+1 of byte 4r+i are row r's code of value
 * 4(4g+f)+i. Packing is a byte (and bit) shuffle, so the group holds
 * exactly the values of its rows.
 */
#include <string.h>

#include "kernels/qtypes.h"

/* Row r's bytes src[0..bytes) as chunks: byte 4r+i of chunk k is src[4k+i]. */
static void chunks(uint8_t *dst, const uint8_t *src, size_t bytes, int r) {
    for (size_t k = 0; k < bytes / 4; k++) memcpy(dst + 32 * k + 4 * (size_t)r, src + 4 * k, 4);
}

/* Row r's bytes src[0..bytes) by row: byte 8j+r is src[j]. */
static void by_row(uint8_t *dst, const uint8_t *src, size_t bytes, int r) {
    for (size_t j = 0; j < bytes; j++) dst[8 * j + (size_t)r] = src[j];
}

bool grok_qtypes_pack_type(grok_type type) {
    switch (type) {
    case GROK_TYPE_Q4_1:
    case GROK_TYPE_Q5_0:
    case GROK_TYPE_Q5_1:
    case GROK_TYPE_IQ4_NL:
    case GROK_TYPE_MXFP4:
    case GROK_TYPE_Q2_K:
    case GROK_TYPE_Q3_K:
    case GROK_TYPE_IQ4_XS:
    case GROK_TYPE_TQ1_0:
    case GROK_TYPE_TQ2_0:
    case GROK_TYPE_NVFP4:
    case GROK_TYPE_Q1_0:
    case GROK_TYPE_Q2_0: return true;
    default: return false;
    }
}

/* One block of row r (blk) into its group's block g. */
static void pack_block(grok_type type, const uint8_t *blk, int r, uint8_t *g) {
    switch (type) {
    case GROK_TYPE_Q4_1:
        memcpy(g + 2 * r, blk, 2), memcpy(g + 16 + 2 * r, blk + 2, 2);
        chunks(g + 32, blk + 4, 16, r);
        break;
    case GROK_TYPE_Q5_0:
    case GROK_TYPE_Q5_1: {
        const bool one = type == GROK_TYPE_Q5_1;
        const size_t qh_at = one ? 4 : 2, plane = one ? 32 : 16;
        memcpy(g + 2 * r, blk, 2);
        if (one) memcpy(g + 16 + 2 * r, blk + 2, 2);
        uint32_t qh;
        memcpy(&qh, blk + qh_at, 4);
        for (int i = 0; i < 4; i++) {
            uint8_t b = 0;
            for (int j = 0; j < 8; j++)
                b |= (uint8_t)(((qh >> (j < 4 ? 4 * j + i : 16 + 4 * (j - 4) + i)) & 1) << j);
            g[plane + 4 * r + i] = b;
        }
        chunks(g + plane + 32, blk + qh_at + 4, 16, r);
        break;
    }
    case GROK_TYPE_IQ4_NL:
        memcpy(g + 2 * r, blk, 2);
        chunks(g + 16, blk + 2, 16, r);
        break;
    case GROK_TYPE_MXFP4:
        g[r] = blk[0];
        chunks(g + 8, blk + 1, 16, r);
        break;
    case GROK_TYPE_Q2_K:
        memcpy(g + 2 * r, blk + 80, 2), memcpy(g + 16 + 2 * r, blk + 82, 2);
        by_row(g + 32, blk, 16, r);
        chunks(g + 160, blk + 16, 64, r);
        break;
    case GROK_TYPE_Q3_K:
        memcpy(g + 2 * r, blk + 108, 2);
        by_row(g + 16, blk + 96, 12, r);
        chunks(g + 112, blk, 32, r);
        chunks(g + 368, blk + 32, 64, r);
        break;
    case GROK_TYPE_IQ4_XS:
        memcpy(g + 2 * r, blk, 2);
        by_row(g + 16, blk + 2, 2, r);
        by_row(g + 32, blk + 4, 4, r);
        chunks(g + 64, blk + 8, 128, r);
        break;
    case GROK_TYPE_TQ1_0:
        memcpy(g + 2 * r, blk + 52, 2);
        chunks(g + 16, blk, 48, r);
        chunks(g + 400, blk + 48, 4, r);
        break;
    case GROK_TYPE_TQ2_0:
        memcpy(g + 2 * r, blk + 64, 2);
        chunks(g + 16, blk, 64, r);
        break;
    case GROK_TYPE_NVFP4:
        by_row(g, blk, 4, r);
        chunks(g + 32, blk + 4, 32, r);
        break;
    case GROK_TYPE_Q1_0:
        memcpy(g + 2 * r, blk, 2);
        for (int b = 0; b < 4; b++)
            for (int i = 0; i < 4; i++) {
                uint8_t byte = 0;
                for (int m = 0; m < 8; m++) {
                    const int v = 32 * b + 4 * m + i;
                    byte |= (uint8_t)(((blk[2 + v / 8] >> (v % 8)) & 1) << m);
                }
                g[16 + 32 * b + 4 * r + i] = byte;
            }
        break;
    default: /* Q2_0 */
        memcpy(g + 2 * r, blk, 2);
        for (int gi = 0; gi < 4; gi++)
            for (int i = 0; i < 4; i++) {
                uint8_t byte = 0;
                for (int f = 0; f < 4; f++)
                    byte |= (uint8_t)(((blk[2 + 4 * gi + f] >> (2 * i)) & 3) << (2 * f));
                g[16 + 32 * gi + 4 * r + i] = byte;
            }
        break;
    }
}

void grok_qtypes_pack_x8(grok_type type, const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst) {
    const grok_type_traits *tr = grok_type_get_traits(type);
    const size_t bsz = (size_t)tr->type_size;
    for (int64_t b = 0; b < n / tr->block_size; b++) {
        uint8_t *g = dst + (size_t)b * GROK_PACK_ROWS * bsz;
        for (int r = 0; r < GROK_PACK_ROWS; r++)
            pack_block(type, rows + (size_t)r * row_bytes + (size_t)b * bsz, r, g);
    }
}
