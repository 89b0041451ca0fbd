/*
 * sampler.c - turns a row of logits into the next token, and finds stop
 * strings in generated text. docs/sampling.md explains the choices; in short,
 * one call of grok_sampler_sample runs, in this order:
 *
 *  1. NaN logits become -inf and +inf ones the largest finite float, so no
 *     arithmetic below can produce NaN (several +inf tokens share the mass).
 *     With a mask (grok_sampler_sample_masked, a grammar's allowed tokens)
 *     every token it does not allow becomes -inf here, before anything
 *     else, so what follows is the renormalised distribution over the
 *     allowed tokens.
 *  2. Penalties on the raw logits over the last repeat_last_n history tokens
 *     (-1 = all, 0 = none; ids outside the vocabulary are ignored): for each
 *     distinct token, llama.cpp's repeat penalty (logit > 0 ? logit / rp :
 *     logit * rp), then OpenAI's logit -= count * frequency + presence.
 *  3. If no logit is above -inf the answer is token 0 (with a mask, the
 *     lowest allowed token); if temperature <= 0
 *     it is the argmax (lowest id on ties). Neither consumes randomness.
 *  4. Temperature: x = (logit - max) / T. Shifting by the max changes no
 *     probability but keeps the max at exactly 0, so a tiny T cannot
 *     overflow to +inf and turn a clear maximum into a tie.
 *  5. top-k: keep every token >= the k-th largest value, so ties at the
 *     boundary are kept (deterministic, and the same rule as top-p).
 *  6. top-p, the official Grok-1 nucleus (runners.py top_p_filter): with the
 *     probabilities of the tokens still kept, sorted descending, the
 *     threshold is the smallest value whose mass strictly above it is
 *     <= top_p; every token >= the threshold stays, ties included. This is
 *     the official ascending "cumsum >= 1 - p" search said in exact
 *     arithmetic. top_p >= 1 keeps all; top_p <= 0 keeps the max and ties.
 *  7. min-p: keep tokens whose probability is >= min_p times the largest,
 *     i.e. exp(x) >= min_p since the largest x is 0.
 *  8. A categorical draw: u is a 53-bit double in [0,1) from xoshiro256**
 *     (seeded by splitmix64 from params.seed), and the token is the first,
 *     walking the kept set in token-id order, whose cumulative weight
 *     exceeds u times the total. Same seed, same sequence, on every platform
 *     with IEEE doubles.
 *
 * Sizes: the work is a few O(n_vocab) passes; top-k uses a k-sized heap and
 * top-p bins the mass by value and sorts only the bin where the cumulative
 * mass crosses top_p, so no call sorts the whole vocabulary.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grok.h"
#include "util/rng.h"

#define TOP_P_BIN_SCALE 128.0f /* bins per nat */
#define TOP_P_BINS 4097        /* 32 nats of bins, then one for the rest */

struct grok_sampler {
    grok_sampler_params p;
    int64_t n_vocab;
    uint64_t rng[4];         /* xoshiro256** state */
    float *work;             /* [n_vocab] penalised, then scaled logits */
    float *probs;            /* [n_vocab] result of the last call, 0 where removed */
    int32_t *cand;           /* [n_vocab] ids still kept, ascending */
    float *scratch;          /* [n_vocab] heap for top-k, sorted block for top-p */
    double *ex;              /* [n_vocab] exp of the kept candidates' values, by rank in cand */
    int32_t *counts;         /* [n_vocab] history counts, all 0 between calls */
    int32_t *distinct;       /* [n_vocab] distinct ids of the window */
    double bins[TOP_P_BINS]; /* top-p: mass per value bin */
    bool sampled;
};

/* ---------------------------------------------------------------------- */
/* RNG: splitmix64 (util/rng.h, the sampler's named stream of the seed)
 * expands the 64-bit seed into xoshiro256**'s state; both are the
 * public-domain generators of Vigna et al. and use only 64-bit integer
 * arithmetic, so the stream is the same everywhere. */

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* 53 random bits scaled into [0, 1): every value is exact in a double. */
static double rng_uniform(uint64_t s[4]) { return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53; }

/* ---------------------------------------------------------------------- */

grok_sampler_params grok_sampler_default_params(void) {
    grok_sampler_params p;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.seed = 0xC0FFEEu;
    return p;
}

/* The parameters come from flags and HTTP bodies; create refuses what the
 * math cannot use rather than producing NaN probabilities later. */
static bool params_valid(const grok_sampler_params *p) {
    if (isnan(p->temperature) || isinf(p->temperature)) return false;
    if (isnan(p->top_p)) return false;
    if (!(p->min_p <= 1.0f) || isnan(p->min_p)) return false;
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty)) return false;
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty)) return false;
    if (p->repeat_last_n < -1) return false;
    return true;
}

grok_sampler *grok_sampler_create(const grok_sampler_params *p, int64_t n_vocab) {
    if (!p || n_vocab <= 0 || n_vocab > INT32_MAX || !params_valid(p)) return NULL;
    grok_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    size_t n = (size_t)n_vocab;
    s->work = malloc(n * sizeof *s->work);
    s->probs = calloc(n, sizeof *s->probs);
    s->cand = malloc(n * sizeof *s->cand);
    s->scratch = malloc(n * sizeof *s->scratch);
    s->ex = malloc(n * sizeof *s->ex);
    s->counts = calloc(n, sizeof *s->counts);
    s->distinct = malloc(n * sizeof *s->distinct);
    if (!s->work || !s->probs || !s->cand || !s->scratch || !s->ex || !s->counts || !s->distinct) {
        grok_sampler_free(s);
        return NULL;
    }
    grok_rng x = grok_rng_named(p->seed, GROK_RNG_SAMPLER, 0);
    for (int i = 0; i < 4; i++) s->rng[i] = grok_rng_next(&x);
    return s;
}

void grok_sampler_free(grok_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->probs);
    free(s->cand);
    free(s->scratch);
    free(s->ex);
    free(s->counts);
    free(s->distinct);
    free(s);
}

const float *grok_sampler_last_probs(const grok_sampler *s) { return (s && s->sampled) ? s->probs : NULL; }

static float sanitize(float x) {
    if (isnan(x)) return -INFINITY;
    if (x > FLT_MAX) return FLT_MAX;
    return x;
}

static void apply_penalties(grok_sampler *s, const int32_t *history, size_t n_history) {
    const grok_sampler_params *p = &s->p;
    if (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f) return;
    if (!history || p->repeat_last_n == 0) return;
    size_t start = 0;
    if (p->repeat_last_n > 0 && (size_t)p->repeat_last_n < n_history)
        start = n_history - (size_t)p->repeat_last_n;
    size_t n_distinct = 0;
    for (size_t i = start; i < n_history; i++) {
        int32_t t = history[i];
        if (t < 0 || (int64_t)t >= s->n_vocab) continue;
        if (s->counts[t] == 0) s->distinct[n_distinct++] = t;
        if (s->counts[t] < INT32_MAX) s->counts[t]++;
    }
    for (size_t i = 0; i < n_distinct; i++) {
        int32_t t = s->distinct[i];
        float x = s->work[t];
        x = x > 0.0f ? x / p->repeat_penalty : x * p->repeat_penalty;
        x -= (float)s->counts[t] * p->frequency_penalty + p->presence_penalty;
        s->work[t] = sanitize(x);
        s->counts[t] = 0;
    }
}

/* Sets the result to one token with probability 1. */
static int32_t one_hot(grok_sampler *s, int32_t tok) {
    memset(s->probs, 0, (size_t)s->n_vocab * sizeof *s->probs);
    s->probs[tok] = 1.0f;
    s->sampled = true;
    return tok;
}

/* Keeps the candidates whose value is >= thr; the order (by id) stays. */
static size_t keep_at_least(grok_sampler *s, size_t n, float thr) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s->work[s->cand[i]] >= thr) s->cand[m++] = s->cand[i];
    return m;
}

static void heap_sift_down(float *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l] < h[m]) m = l;
        if (r < n && h[r] < h[m]) m = r;
        if (m == i) return;
        float t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* The k-th largest value of the candidates (counting repeats), via a
 * min-heap of the k largest seen: O(n log k) and no worst case to fear. */
static float kth_largest(grok_sampler *s, size_t n, size_t k) {
    float *h = s->scratch;
    for (size_t i = 0; i < k; i++) h[i] = s->work[s->cand[i]];
    for (size_t i = k / 2; i-- > 0;) heap_sift_down(h, k, i);
    for (size_t i = k; i < n; i++) {
        float x = s->work[s->cand[i]];
        if (x > h[0]) {
            h[0] = x;
            heap_sift_down(h, k, 0);
        }
    }
    return h[0];
}

/* x <= 0; a larger value never lands in a later bin, equal values share one. */
static size_t value_bin(float x) {
    float d = -x * TOP_P_BIN_SCALE;
    return d < (float)(TOP_P_BINS - 1) ? (size_t)d : TOP_P_BINS - 1;
}

static int cmp_float_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Official nucleus threshold (see the opening comment) over the candidates,
 * whose values are <= 0 with max 0. Sorting 131072 values per token would
 * cost milliseconds, so the mass is first binned by value (bins of 1/128
 * nat, the last one catching everything below -32): every bin before the
 * one where the cumulative mass crosses top_p is kept whole, every bin after
 * it is dropped, and only the crossing bin is sorted and walked. */
static float top_p_threshold(grok_sampler *s, size_t n, double top_p) {
    double *mass = s->bins;
    memset(mass, 0, sizeof s->bins);
    double z = 0.0;
    for (size_t i = 0; i < n; i++) {
        float x = s->work[s->cand[i]];
        double e = exp((double)x);
        mass[value_bin(x)] += e;
        z += e;
    }
    double limit = top_p * z, above = 0.0; /* unnormalised masses */
    size_t b = 0;
    for (; b < TOP_P_BINS; b++) {
        if (above + mass[b] > limit) break;
        above += mass[b];
    }
    if (b == TOP_P_BINS) return -INFINITY; /* the whole mass is within top_p */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        float x = s->work[s->cand[i]];
        if (value_bin(x) == b) s->scratch[m++] = x;
    }
    qsort(s->scratch, m, sizeof *s->scratch, cmp_float_desc);
    /* above <= limit on entry, so the first value is always taken. */
    size_t j = 0;
    for (; j < m; j++) {
        if (above > limit) break;
        above += exp((double)s->scratch[j]);
    }
    return s->scratch[j - 1];
}

int32_t grok_sampler_sample(grok_sampler *s, const float *logits, const int32_t *history, size_t n_history) {
    return grok_sampler_sample_masked(s, logits, NULL, history, n_history);
}

int32_t grok_sampler_sample_masked(grok_sampler *s, const float *logits, const uint64_t *mask,
                                   const int32_t *history, size_t n_history) {
    if (!s || !logits) return -1;
    const grok_sampler_params *p = &s->p;
    size_t nv = (size_t)s->n_vocab;
    float *w = s->work;

    int64_t first_allowed = 0;
    if (mask) {
        first_allowed = -1;
        for (size_t i = 0; i < nv; i++) {
            bool on = (mask[i >> 6] >> (i & 63)) & 1;
            w[i] = on ? sanitize(logits[i]) : -INFINITY;
            if (on && first_allowed < 0) first_allowed = (int64_t)i;
        }
        if (first_allowed < 0) return -1;
    } else {
        for (size_t i = 0; i < nv; i++) w[i] = sanitize(logits[i]);
    }
    apply_penalties(s, history, n_history);

    size_t best = (size_t)first_allowed;
    for (size_t i = best + 1; i < nv; i++)
        if (w[i] > w[best]) best = i;
    float max = w[best];
    if (max == -INFINITY || p->temperature <= 0.0f) return one_hot(s, (int32_t)best);

    /* Scale and drop the tokens whose probability is exactly 0. */
    size_t n = 0;
    for (size_t i = 0; i < nv; i++) {
        float x = (w[i] - max) / p->temperature;
        w[i] = x;
        if (x > -INFINITY) s->cand[n++] = (int32_t)i;
    }

    if (p->top_k > 0 && (size_t)p->top_k < n) n = keep_at_least(s, n, kth_largest(s, n, (size_t)p->top_k));

    if (p->top_p < 1.0f && n > 1) {
        double tp = p->top_p > 0.0f ? (double)p->top_p : 0.0;
        n = keep_at_least(s, n, top_p_threshold(s, n, tp));
    }

    if (p->min_p > 0.0f) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (exp((double)w[s->cand[i]]) >= (double)p->min_p) s->cand[m++] = s->cand[i];
        n = m;
    }

    /* n >= 1 here: every filter keeps the maximum, whose value is 0. Each
     * exp is computed once (a server samples many slots per step). */
    double total = 0.0;
    for (size_t i = 0; i < n; i++) total += (s->ex[i] = exp((double)w[s->cand[i]]));
    double r = rng_uniform(s->rng) * total;
    memset(s->probs, 0, nv * sizeof *s->probs);
    int32_t tok = -1, last_positive = s->cand[0];
    double cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        int32_t t = s->cand[i];
        double e = s->ex[i];
        cum += e;
        s->probs[t] = (float)(e / total);
        if (e > 0.0) last_positive = t;
        if (tok < 0 && cum > r) tok = t;
    }
    /* Only when u * total rounded up to total; a token of weight 0 (exp
     * underflow) is never the answer. */
    if (tok < 0) tok = last_positive;
    s->sampled = true;
    return tok;
}

/* ---------------------------------------------------------------------- */

int64_t grok_find_stop(const char *text, size_t len, const char *const *stops, size_t n_stops,
                       size_t *partial) {
    int64_t found = -1;
    size_t hold = 0;
    if (!text) len = 0;
    for (size_t k = 0; k < n_stops; k++) {
        const char *st = stops ? stops[k] : NULL;
        if (!st || !st[0]) continue;
        size_t sl = strlen(st);
        if (sl <= len) {
            const char *at = memmem(text, len, st, sl);
            if (at && (found < 0 || at - text < found)) found = at - text;
        }
        /* Longest suffix of text that is a proper prefix of st. */
        size_t l = sl - 1 < len ? sl - 1 : len;
        for (; l > hold; l--) {
            if (memcmp(text + len - l, st, l) == 0) {
                hold = l;
                break;
            }
        }
    }
    if (partial) *partial = hold;
    return found;
}
