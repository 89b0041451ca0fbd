/*
 * rng.h - the project's one deterministic random number generator
 * (splitmix64): same seed, same stream on every platform. Used to
 * initialise models (grok new, training) and by tests; cheap enough to
 * inline everywhere.
 */
#ifndef GROK_RNG_H
#define GROK_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s;
} grok_rng;

static inline uint64_t grok_rng_next(grok_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double grok_rng_uniform(grok_rng *r) { return (double)(grok_rng_next(r) >> 11) * 0x1p-53; }

/* Standard normal (Box-Muller; one value per call keeps the stream simple). */
static inline float grok_rng_normal(grok_rng *r) {
    double u1 = grok_rng_uniform(r), u2 = grok_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif
