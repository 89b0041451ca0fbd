/*
 * rng.h - the project's one deterministic random number generator
 * (splitmix64) and its named streams: same seed, same stream on every
 * platform. Every place that turns a user's seed into random numbers
 * (grok new, training's initialisation, data order and dropout, the
 * sampler) derives its state here, so two uses never share a stream by
 * accident and a reader finds every derivation in one place. Cheap enough
 * to inline everywhere.
 */
#ifndef GROK_RNG_H
#define GROK_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s;
} grok_rng;

#define GROK_RNG_GOLDEN 0x9E3779B97F4A7C15ull /* 2^64 / the golden ratio: splitmix64's increment */
#define GROK_RNG_FNV 0x100000001B3ull         /* the 64-bit FNV prime: spreads seeds apart */

/* splitmix64's output function: a bijective hash of 64 bits (also used
 * alone, as a stateless hash of a key). */
static inline uint64_t grok_rng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t grok_rng_next(grok_rng *r) { return grok_rng_mix(r->s += GROK_RNG_GOLDEN); }

/* Uniform in [0, 1) with 53 bits. */
static inline double grok_rng_uniform(grok_rng *r) { return (double)(grok_rng_next(r) >> 11) * 0x1p-53; }

/* Standard normal (Box-Muller; one value per call keeps the stream simple). */
static inline float grok_rng_normal(grok_rng *r) {
    double u1 = grok_rng_uniform(r), u2 = grok_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* The named streams of a seed. Each derivation is fixed: it decides what a
 * given --seed produces (the bytes of a grok new model, a training run,
 * a sampled text), which tests and users compare, so a new use gets a
 * new name rather than a changed formula. */
typedef enum {
    GROK_RNG_WEIGHTS, /* the initial values of tensor `index` (grok new, grok train) */
    GROK_RNG_LORA,    /* the initial A matrix of LoRA target `index` (B starts at 0) */
    GROK_RNG_DATA,    /* training: the order of the training windows (index unused) */
    GROK_RNG_DROPOUT, /* LoRA dropout: the key of optimizer step `index` */
    GROK_RNG_SAMPLER, /* the sampler: expanded into xoshiro256**'s state (index unused) */
} grok_rng_stream;

/* The generator of stream `stream` (element `index`) of seed. */
static inline grok_rng grok_rng_named(uint64_t seed, grok_rng_stream stream, uint64_t index) {
    switch (stream) {
    case GROK_RNG_WEIGHTS: return (grok_rng){seed * GROK_RNG_FNV + index * GROK_RNG_GOLDEN};
    case GROK_RNG_LORA: return (grok_rng){seed * GROK_RNG_FNV + (index + 1) * GROK_RNG_GOLDEN};
    case GROK_RNG_DATA: return (grok_rng){seed * GROK_RNG_GOLDEN + 12345};
    case GROK_RNG_DROPOUT: return (grok_rng){(seed * GROK_RNG_GOLDEN) ^ index};
    case GROK_RNG_SAMPLER: return (grok_rng){seed};
    }
    return (grok_rng){seed};
}

/* The sampler seed of choice i of a request with n > 1 (and of sample i of
 * grok run --think): seed + i, so choice 0 is the request's own draw and a
 * plain request with seed + i repeats choice i (docs/think.md, tested). */
static inline uint64_t grok_rng_choice_seed(uint64_t seed, uint64_t i) { return seed + i; }

#endif
