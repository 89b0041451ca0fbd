/*
 * qtypes_blocks.h - random blocks of the types in src/kernels/qtypes.h, for
 * the tests: every byte random (splitmix64, util/rng.h), so the quants,
 * sub-block scales, high bits and E8M0 / E4M3 scales take every code, with
 * the f16 scale fields made finite (an exponent of 31, inf or NaN, is
 * turned into 15), or (moderate) kept within 2^-6..2^4 so that dot products
 * of random rows stay in a comfortable range. tests/ref/qtypes_check.py
 * makes the same blocks in Python, and the digests that test_qtypes.c
 * checks were taken from ggml's decoders on them.
 */
#ifndef GROK_TEST_QTYPES_BLOCKS_H
#define GROK_TEST_QTYPES_BLOCKS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "grok.h"
#include "util/rng.h"

/* The byte offsets of a type's f16 fields (-1: none), and whether it is one of these types. */
static inline bool qt_f16_fields(grok_type type, int at[2]) {
    at[0] = at[1] = -1;
    switch (type) {
    case GROK_TYPE_Q4_1:
    case GROK_TYPE_Q5_1: at[0] = 0, at[1] = 2; return true;
    case GROK_TYPE_Q5_0:
    case GROK_TYPE_IQ4_NL:
    case GROK_TYPE_IQ4_XS:
    case GROK_TYPE_Q1_0:
    case GROK_TYPE_Q2_0: at[0] = 0; return true;
    case GROK_TYPE_Q2_K: at[0] = 80, at[1] = 82; return true;
    case GROK_TYPE_Q3_K: at[0] = 108; return true;
    case GROK_TYPE_TQ1_0: at[0] = 52; return true;
    case GROK_TYPE_TQ2_0: at[0] = 64; return true;
    case GROK_TYPE_MXFP4:
    case GROK_TYPE_NVFP4: return true;
    default: return false;
    }
}

/* nblocks random blocks of type at out (type_size bytes each). */
static inline void qt_random_blocks(grok_type type, int64_t nblocks, uint64_t seed, bool moderate,
                                    uint8_t *out) {
    grok_rng r = {seed};
    const size_t bs = (size_t)grok_type_get_traits(type)->type_size;
    int at[2];
    qt_f16_fields(type, at);
    for (int64_t b = 0; b < nblocks; b++) {
        uint8_t *p = out + (size_t)b * bs;
        for (size_t i = 0; i < bs; i += 8) {
            const uint64_t v = grok_rng_next(&r);
            memcpy(p + i, &v, bs - i < 8 ? bs - i : 8);
        }
        for (int k = 0; k < 2; k++) {
            if (at[k] < 0) continue;
            uint16_t h = (uint16_t)(p[at[k]] | p[at[k] + 1] << 8);
            if ((h & 0x7c00) == 0x7c00) h ^= 0x4000;
            if (moderate) h = (uint16_t)((h & 0x83ff) | ((9 + ((h >> 10) & 15) % 10) << 10));
            p[at[k]] = (uint8_t)h, p[at[k] + 1] = (uint8_t)(h >> 8);
        }
        if (moderate && type == GROK_TYPE_MXFP4) p[0] = (uint8_t)(120 + p[0] % 12);
        if (moderate && type == GROK_TYPE_NVFP4)
            for (int s = 0; s < 4; s++) p[s] = (uint8_t)(0x30 + p[s] % 0x30);
    }
}

/* The bytes of a block that hold codes, sub-block scales and high bits
 * (all but the f16 / E8M0 / E4M3 scales): at, len. */
static inline void qt_quant_range(grok_type type, size_t *at, size_t *len) {
    const size_t bs = (size_t)grok_type_get_traits(type)->type_size;
    switch (type) {
    case GROK_TYPE_Q2_K: *at = 0, *len = 80; return;
    case GROK_TYPE_Q3_K: *at = 0, *len = 108; return;
    case GROK_TYPE_TQ1_0: *at = 0, *len = 52; return;
    case GROK_TYPE_TQ2_0: *at = 0, *len = 64; return;
    case GROK_TYPE_MXFP4: *at = 1, *len = 16; return;
    case GROK_TYPE_NVFP4: *at = 4, *len = 32; return;
    case GROK_TYPE_Q4_1:
    case GROK_TYPE_Q5_1: *at = 4, *len = bs - 4; return;
    default: *at = 2, *len = bs - 2; return; /* one f16 scale first */
    }
}

/* FNV-1a, 64 bits, over n bytes. */
static inline uint64_t qt_fnv1a(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#endif
