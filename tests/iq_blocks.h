/*
 * iq_blocks.h - random rows of the i-quant types for the kernel tests.
 * grok.c has no encoder for them (llama-quantize writes them), so test rows
 * are random bytes, which reach every grid index, sign pattern and scale,
 * with the block's f16 d set to a random finite value of either sign
 * (magnitudes 2^-14..2^-2, so products stay far from overflow, with some
 * blocks 2^-10 times smaller). IQ1_M keeps its d in the top nibbles of its
 * four scale words.
 */
#ifndef GROK_TEST_IQ_BLOCKS_H
#define GROK_TEST_IQ_BLOCKS_H

#include <string.h>

#include "kernels/iquants.h"
#include "util/rng.h"

static inline uint16_t iq_test_scale(grok_rng *r) {
    const int e = 1 + (int)(grok_rng_next(r) % 13); /* exponent field 1..13 */
    const int tiny = grok_rng_next(r) % 9 == 0;
    const int ef = tiny ? (e > 10 ? e - 10 : 1) : e;
    return (uint16_t)((grok_rng_next(r) & 1) << 15 | ef << 10 | (grok_rng_next(r) & 0x3ff));
}

/* n / 256 random blocks of type at w. */
static inline void iq_test_row(grok_rng *r, grok_type type, int64_t n, uint8_t *w) {
    const size_t bytes = grok_iq_block_bytes(type);
    for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t *p = w + (size_t)b * bytes;
        for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)grok_rng_next(r);
        const uint16_t d = iq_test_scale(r);
        if (type == GROK_TYPE_IQ1_M) {
            for (int k = 0; k < 4; k++) {
                uint16_t s;
                memcpy(&s, p + 48 + 2 * k, 2);
                s = (uint16_t)((s & 0x0fff) | ((d >> (4 * k)) & 15) << 12);
                memcpy(p + 48 + 2 * k, &s, 2);
            }
        } else {
            memcpy(p, &d, 2);
        }
    }
}

#endif
