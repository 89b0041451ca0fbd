/*
 * test_sampler.c - checks the sampler against hand-computed examples, a
 * literal re-statement of the official Grok-1 nucleus filter (ascending
 * sort, cumulative sum, ">= 1 - top_p"), an independent Python model of the
 * RNG stream, and a chi-square test of the draws; masked sampling (a
 * grammar's allowed tokens: the renormalised distribution, greedy's best
 * allowed token, the order against the filters); then grok_find_stop. It
 * also prints how long one sample takes over a 131072-token vocabulary
 * (informational only, not asserted).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grok.h"

#include "check.h"
#include "util/clock.h"

/* The tests' own generator (an LCG), unrelated to the sampler's, so that
 * test data does not share structure with the draws. */
static uint64_t g_lcg = 88172645463325252ull;
static double test_rand(void) {
    g_lcg = g_lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_lcg >> 11) * 0x1.0p-53;
}

static grok_sampler_params plain_params(void) {
    grok_sampler_params p = grok_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    return p;
}

/* softmax of x[0..n) over the ids with keep[i], in double. */
static void ref_softmax(const double *x, const bool *keep, size_t n, double *out) {
    double m = -INFINITY, z = 0.0;
    for (size_t i = 0; i < n; i++)
        if (keep[i] && x[i] > m) m = x[i];
    for (size_t i = 0; i < n; i++) z += keep[i] ? exp(x[i] - m) : 0.0;
    for (size_t i = 0; i < n; i++) out[i] = keep[i] ? exp(x[i] - m) / z : 0.0;
}

static void check_probs(const grok_sampler *s, const double *want, size_t n, const char *what) {
    const float *pr = grok_sampler_last_probs(s);
    CHECK(pr != NULL, "%s: no last probs", what);
    if (!pr) return;
    for (size_t i = 0; i < n; i++)
        CHECK(fabs(pr[i] - want[i]) < 1e-6 && ((pr[i] == 0) == (want[i] == 0)),
              "%s: prob[%zu] = %.9g, want %.9g", what, i, pr[i], want[i]);
}

static void test_greedy(void) {
    grok_sampler_params p = plain_params();
    p.temperature = 0.0f;
    grok_sampler *s = grok_sampler_create(&p, 4);
    CHECK(grok_sampler_last_probs(s) == NULL, "last_probs before any sample must be NULL");
    float l1[4] = {1, 5, 3, 5};
    CHECK(grok_sampler_sample(s, l1, NULL, 0) == 1, "greedy tie must pick the lowest id");
    double want[4] = {0, 1, 0, 0};
    check_probs(s, want, 4, "greedy one-hot");
    float l2[4] = {-2, -2, -2, -2};
    CHECK(grok_sampler_sample(s, l2, NULL, 0) == 0, "greedy all-equal must pick id 0");
    float l3[4] = {0.1f, -4, 0.3f, 0.2f};
    CHECK(grok_sampler_sample(s, l3, NULL, 0) == 2, "greedy argmax");
    grok_sampler_free(s);

    /* A tiny temperature on a clear maximum is greedy, whatever the draw. */
    p.temperature = 1e-4f;
    p.seed = 7;
    s = grok_sampler_create(&p, 4);
    int bad = 0;
    for (int i = 0; i < 1000; i++) bad += grok_sampler_sample(s, l3, NULL, 0) != 2;
    CHECK(bad == 0, "temperature 1e-4 picked a non-max token %d times", bad);
    grok_sampler_free(s);
    p.temperature = 1e-30f; /* (x - max) / T must not overflow into a tie */
    s = grok_sampler_create(&p, 4);
    bad = 0;
    for (int i = 0; i < 200; i++) bad += grok_sampler_sample(s, l3, NULL, 0) != 2;
    CHECK(bad == 0, "temperature 1e-30 picked a non-max token %d times", bad);
    grok_sampler_free(s);
}

/* The expected ids come from /usr/bin/python3 running an independent
 * implementation of splitmix64 + xoshiro256** (splitmix64(0)'s first output
 * checked against the published 0xe220a8397b1dcdaf): on 1000 equal logits
 * the cumulative walk picks floor(u * 1000) with u = (next >> 11) / 2^53. */
static void test_rng_stream(void) {
    static const int32_t want0[16] = {601, 747, 103, 416, 732, 999, 422, 535,
                                      855, 918, 114, 67,  106, 654, 496, 296};
    static const int32_t want12345[16] = {743, 130, 963, 48,  555, 10,  159, 295,
                                          385, 910, 781, 537, 839, 941, 135, 864};
    float flat[1000];
    for (int i = 0; i < 1000; i++) flat[i] = 0.25f;
    grok_sampler_params p = plain_params();
    for (int which = 0; which < 2; which++) {
        p.seed = which ? 12345 : 0;
        const int32_t *want = which ? want12345 : want0;
        grok_sampler *s = grok_sampler_create(&p, 1000);
        for (int i = 0; i < 16; i++) {
            int32_t t = grok_sampler_sample(s, flat, NULL, 0);
            CHECK(t == want[i], "seed %llu draw %d: got %d want %d", (unsigned long long)p.seed, i, t,
                  want[i]);
        }
        grok_sampler_free(s);
    }

    /* Same seed, same sequence; another seed, another one. */
    int32_t a[200], b[200], c[200];
    for (int run = 0; run < 3; run++) {
        p.seed = run == 2 ? 43 : 42;
        grok_sampler *s = grok_sampler_create(&p, 1000);
        int32_t *out = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 200; i++) out[i] = grok_sampler_sample(s, flat, NULL, 0);
        grok_sampler_free(s);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed gave different sequences");
    CHECK(memcmp(a, c, sizeof a) != 0, "different seeds gave the same sequence");
}

static void test_top_k(void) {
    grok_sampler_params p = plain_params();
    p.top_k = 1;
    p.seed = 3;
    grok_sampler *s = grok_sampler_create(&p, 64);
    float l[64];
    int bad = 0;
    for (int rep = 0; rep < 50; rep++) {
        int arg = 0;
        for (int i = 0; i < 64; i++) {
            l[i] = (float)(test_rand() * 6.0 - 3.0);
            if (l[i] > l[arg]) arg = i;
        }
        bad += grok_sampler_sample(s, l, NULL, 0) != arg;
    }
    CHECK(bad == 0, "top_k=1 differed from the argmax %d times", bad);
    grok_sampler_free(s);

    /* Ties at the k-th value are kept: k=2 on {3,1,2,2,0} keeps 3,2,2. */
    p.top_k = 2;
    s = grok_sampler_create(&p, 5);
    float lt[5] = {3, 1, 2, 2, 0};
    double x[5] = {3, 1, 2, 2, 0}, want[5];
    bool keep[5] = {true, false, true, true, false};
    ref_softmax(x, keep, 5, want);
    int32_t t = grok_sampler_sample(s, lt, NULL, 0);
    CHECK(t == 0 || t == 2 || t == 3, "top_k=2 sampled removed token %d", t);
    check_probs(s, want, 5, "top_k ties");
    grok_sampler_free(s);
}

static int cmp_float_asc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The official filter, stated as runners.py states it: sort ascending,
 * softmax, cumulative sum, the first index where it reaches 1 - top_p gives
 * the threshold, keep every logit >= it. Double precision throughout. */
static void ref_top_p(const float *l, size_t n, double top_p, bool *keep) {
    float *v = malloc(n * sizeof *v);
    memcpy(v, l, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_float_asc);
    double m = v[n - 1], z = 0.0, cum = 0.0;
    for (size_t i = 0; i < n; i++) z += exp(v[i] - m);
    size_t idx = 0;
    for (size_t i = 0; i < n; i++) {
        cum += exp(v[i] - m) / z;
        if (cum >= 1.0 - top_p) {
            idx = i;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) keep[i] = l[i] >= v[idx];
    free(v);
}

static void compare_top_p(const float *l, size_t n, float top_p, const char *what) {
    grok_sampler_params p = plain_params();
    p.top_p = top_p;
    grok_sampler *s = grok_sampler_create(&p, (int64_t)n);
    bool *keep = malloc(n * sizeof *keep);
    ref_top_p(l, n, top_p, keep);
    grok_sampler_sample(s, l, NULL, 0);
    const float *pr = grok_sampler_last_probs(s);
    size_t diff = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        kept += keep[i];
        diff += (pr[i] > 0) != keep[i];
    }
    CHECK(diff == 0, "%s (n=%zu top_p=%g): %zu tokens differ from the official rule (%zu kept)", what, n,
          top_p, diff, kept);
    free(keep);
    grok_sampler_free(s);
}

static void test_top_p(void) {
    /* Hand example: probabilities {0.2, 0.4, 0.2, 0.2}. Descending, the mass
     * above the second token is 0.4 <= 0.5, so its value 0.2 is the
     * threshold and all three 0.2 tokens stay; with 0.3 only the max. */
    float l[4] = {logf(0.2f), logf(0.4f), logf(0.2f), logf(0.2f)};
    double x[4], want[4];
    for (int i = 0; i < 4; i++) x[i] = l[i];
    grok_sampler_params p = plain_params();
    p.top_p = 0.5f;
    grok_sampler *s = grok_sampler_create(&p, 4);
    bool all[4] = {true, true, true, true}, top[4] = {false, true, false, false};
    grok_sampler_sample(s, l, NULL, 0);
    ref_softmax(x, all, 4, want);
    check_probs(s, want, 4, "top_p 0.5 ties straddling the boundary");
    grok_sampler_free(s);
    p.top_p = 0.3f;
    s = grok_sampler_create(&p, 4);
    CHECK(grok_sampler_sample(s, l, NULL, 0) == 1, "top_p 0.3 must keep only the max");
    ref_softmax(x, top, 4, want);
    check_probs(s, want, 4, "top_p 0.3");
    grok_sampler_free(s);
    p.top_p = 0.0f;
    s = grok_sampler_create(&p, 4);
    CHECK(grok_sampler_sample(s, l, NULL, 0) == 1, "top_p 0 must keep only the max");
    grok_sampler_free(s);

    /* Random cases against the official statement, with and without
     * heavy ties (logits rounded to a few levels). */
    enum { N = 1000 };
    static float lr[N];
    for (int rep = 0; rep < 40; rep++) {
        bool ties = rep % 2;
        double scale = 0.5 + 4.0 * test_rand();
        for (int i = 0; i < N; i++) {
            double v = (test_rand() + test_rand() + test_rand() - 1.5) * scale;
            lr[i] = ties ? (float)(round(v * 2.0) / 2.0) : (float)v;
        }
        compare_top_p(lr, N, (float)test_rand(), ties ? "random with ties" : "random");
    }

    /* Full vocabulary cases that make the search window grow: one peak
     * above 131071 equal tokens, and a wide spread of values. */
    size_t nv = 131072;
    float *big = malloc(nv * sizeof *big);
    for (size_t i = 0; i < nv; i++) big[i] = -10.0f;
    big[777] = 0.0f;
    compare_top_p(big, nv, 0.95f, "peak over a flat sea");
    compare_top_p(big, nv, 0.1f, "peak over a flat sea");
    for (size_t i = 0; i < nv; i++) big[i] = (float)(-40.0 * test_rand());
    compare_top_p(big, nv, 0.95f, "uniform spread");
    compare_top_p(big, nv, 0.5f, "uniform spread");
    compare_top_p(big, nv, 0.9999f, "uniform spread");
    free(big);
}

static void test_min_p(void) {
    grok_sampler_params p = plain_params();
    p.min_p = 0.3f;
    float l[4] = {0, -1, -2, -3};
    double x[4] = {0, -1, -2, -3}, want[4];
    /* p_i / p_max = e^-1 = 0.37 >= 0.3 stays, e^-2 = 0.14 goes. */
    bool k1[4] = {true, true, false, false};
    grok_sampler *s = grok_sampler_create(&p, 4);
    grok_sampler_sample(s, l, NULL, 0);
    ref_softmax(x, k1, 4, want);
    check_probs(s, want, 4, "min_p 0.3");
    grok_sampler_free(s);
    /* Temperature comes first: at T=2 the ratios are e^-0.5, e^-1, e^-1.5. */
    p.temperature = 2.0f;
    bool k2[4] = {true, true, true, false};
    double xt[4] = {0, -0.5, -1, -1.5};
    s = grok_sampler_create(&p, 4);
    grok_sampler_sample(s, l, NULL, 0);
    ref_softmax(xt, k2, 4, want);
    check_probs(s, want, 4, "min_p 0.3 at T=2");
    grok_sampler_free(s);
}

static void test_penalties(void) {
    float l[5] = {2.0f, -1.0f, 0.5f, 3.0f, 1.0f};
    int32_t hist[6] = {3, 1, 1, 0, 4, 3};
    grok_sampler_params p = plain_params();
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.repeat_last_n = 5;
    bool all[5] = {true, true, true, true, true};
    double want[5];
    /* Window {1,1,0,4,3}: counts 0:1 1:2 3:1 4:1.
     *   0:  2/2 - (0.5 + 0.25)  = 0.25
     *   1: -1*2 - (1.0 + 0.25)  = -3.25
     *   2:  0.5 (not in window)
     *   3:  3/2 - 0.75          = 0.75
     *   4:  1/2 - 0.75          = -0.25 */
    double x5[5] = {0.25, -3.25, 0.5, 0.75, -0.25};
    grok_sampler *s = grok_sampler_create(&p, 5);
    grok_sampler_sample(s, l, hist, 6);
    ref_softmax(x5, all, 5, want);
    check_probs(s, want, 5, "penalties, window 5");
    grok_sampler_free(s);

    /* Whole history: token 3 counted twice: 1.5 - (1.0 + 0.25) = 0.25. */
    p.repeat_last_n = -1;
    double xall[5] = {0.25, -3.25, 0.5, 0.25, -0.25};
    s = grok_sampler_create(&p, 5);
    grok_sampler_sample(s, l, hist, 6);
    ref_softmax(xall, all, 5, want);
    check_probs(s, want, 5, "penalties, whole history");
    /* The counts must be cleared between calls: the same call again. */
    grok_sampler_sample(s, l, hist, 6);
    check_probs(s, want, 5, "penalties, second call");
    /* Ids outside the vocabulary are ignored, not a crash. */
    int32_t odd[3] = {-5, 5, 1 << 30};
    double xr[5] = {2.0, -1.0, 0.5, 3.0, 1.0};
    grok_sampler_sample(s, l, odd, 3);
    ref_softmax(xr, all, 5, want);
    check_probs(s, want, 5, "out-of-range history ids");
    grok_sampler_free(s);

    p.repeat_last_n = 0;
    s = grok_sampler_create(&p, 5);
    grok_sampler_sample(s, l, hist, 6);
    check_probs(s, want, 5, "repeat_last_n 0 means no penalty");
    grok_sampler_free(s);

    /* Penalties come before greedy: 3/2 = 1.5 < 2, so token 0 wins. */
    grok_sampler_params g = plain_params();
    g.temperature = 0.0f;
    g.repeat_penalty = 2.0f;
    s = grok_sampler_create(&g, 5);
    int32_t h3 = 3;
    CHECK(grok_sampler_sample(s, l, &h3, 1) == 0, "repeat penalty must change the greedy pick");
    CHECK(grok_sampler_sample(s, l, NULL, 0) == 3, "no history, no penalty");
    grok_sampler_free(s);
}

/* Chi-square of 200000 draws against the filtered softmax, computed here
 * from the definition. Logits {1, 0.5, -0.3, 2, -5}, T = 0.7: top_k 4
 * drops id 4; min_p 0.05 drops id 2 (e^(-2.3/0.7) = 0.037); ids 0, 1, 3
 * remain. Fixed seed, so it cannot flake; the bound 27.6 is the 1e-6 tail
 * for 2 degrees of freedom. */
static void test_distribution(void) {
    float l[5] = {1.0f, 0.5f, -0.3f, 2.0f, -5.0f};
    grok_sampler_params p = plain_params();
    p.temperature = 0.7f;
    p.top_k = 4;
    p.min_p = 0.05f;
    p.seed = 2024;
    double x[5], want[5];
    for (int i = 0; i < 5; i++) x[i] = (double)l[i] / 0.7;
    bool keep[5] = {true, true, false, true, false};
    ref_softmax(x, keep, 5, want);
    grok_sampler *s = grok_sampler_create(&p, 5);
    enum { DRAWS = 200000 };
    long count[5] = {0};
    for (int i = 0; i < DRAWS; i++) {
        int32_t t = grok_sampler_sample(s, l, NULL, 0);
        if (t >= 0 && t < 5) count[t]++;
    }
    check_probs(s, want, 5, "distribution probs");
    CHECK(count[2] == 0 && count[4] == 0, "filtered tokens drawn: %ld %ld", count[2], count[4]);
    double chi2 = 0;
    for (int i = 0; i < 5; i++) {
        if (!keep[i]) continue;
        double e = want[i] * DRAWS;
        chi2 += (count[i] - e) * (count[i] - e) / e;
    }
    printf("distribution: counts %ld %ld %ld (expected %.0f %.0f %.0f), chi2 = %.3f\n", count[0], count[1],
           count[3], want[0] * DRAWS, want[1] * DRAWS, want[3] * DRAWS, chi2);
    CHECK(chi2 < 27.6, "chi-square %.3f too large", chi2);
    grok_sampler_free(s);
}

static void test_non_finite(void) {
    grok_sampler_params p = grok_sampler_default_params();
    grok_sampler *s = grok_sampler_create(&p, 6);
    float nan_all[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    CHECK(grok_sampler_sample(s, nan_all, NULL, 0) == 0, "all NaN must give token 0");
    double one0[6] = {1, 0, 0, 0, 0, 0};
    check_probs(s, one0, 6, "all NaN");
    float ninf[6] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CHECK(grok_sampler_sample(s, ninf, NULL, 0) == 0, "all -inf must give token 0");
    float mixed[6] = {NAN, -INFINITY, 1.0f, NAN, 1.5f, -INFINITY};
    int bad = 0;
    for (int i = 0; i < 500; i++) {
        int32_t t = grok_sampler_sample(s, mixed, NULL, 0);
        bad += t != 2 && t != 4;
    }
    CHECK(bad == 0, "NaN or -inf token drawn %d times", bad);
    float pinf[6] = {INFINITY, 3.0f, NAN, INFINITY, 0.0f, 2.0f};
    double half[6] = {0.5, 0, 0, 0.5, 0, 0};
    int32_t t = grok_sampler_sample(s, pinf, NULL, 0);
    CHECK(t == 0 || t == 3, "+inf tokens must take all the mass, got %d", t);
    check_probs(s, half, 6, "+inf share");
    grok_sampler_free(s);
    /* Penalties on non-finite values stay sane. */
    p.repeat_penalty = 1.3f;
    p.frequency_penalty = -1.0f;
    s = grok_sampler_create(&p, 6);
    int32_t h[4] = {0, 1, 2, 3};
    t = grok_sampler_sample(s, pinf, h, 4);
    CHECK(t == 0 || t == 3, "+inf with penalties, got %d", t);
    grok_sampler_free(s);
}

static void test_create(void) {
    grok_sampler_params p = grok_sampler_default_params();
    CHECK(p.temperature == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f &&
              p.repeat_penalty == 1.0f && p.repeat_last_n == 64,
          "defaults differ from docs/sampling.md");
    CHECK(grok_sampler_create(&p, 0) == NULL, "n_vocab 0 accepted");
    CHECK(grok_sampler_create(&p, -3) == NULL, "negative n_vocab accepted");
    CHECK(grok_sampler_create(NULL, 10) == NULL, "NULL params accepted");
    grok_sampler_params b = p;
    b.temperature = NAN;
    CHECK(grok_sampler_create(&b, 10) == NULL, "NaN temperature accepted");
    b = p;
    b.repeat_penalty = 0.0f;
    CHECK(grok_sampler_create(&b, 10) == NULL, "repeat_penalty 0 accepted");
    b = p;
    b.min_p = 1.5f;
    CHECK(grok_sampler_create(&b, 10) == NULL, "min_p 1.5 accepted");
    b = p;
    b.top_p = NAN;
    CHECK(grok_sampler_create(&b, 10) == NULL, "NaN top_p accepted");
    b = p;
    b.repeat_last_n = -2;
    CHECK(grok_sampler_create(&b, 10) == NULL, "repeat_last_n -2 accepted");
    grok_sampler_free(NULL);
    grok_sampler *s = grok_sampler_create(&p, 1);
    float one = 0.0f;
    CHECK(grok_sampler_sample(s, &one, NULL, 5) == 0, "one-token vocabulary");
    CHECK(grok_sampler_sample(s, NULL, NULL, 0) < 0, "NULL logits must fail");
    grok_sampler_free(s);
}

static void check_stop(const char *text, const char *const *stops, size_t n, int64_t want_at,
                       size_t want_partial) {
    size_t partial = 12345;
    int64_t at = grok_find_stop(text, strlen(text), stops, n, &partial);
    CHECK(at == want_at && partial == want_partial,
          "find_stop(\"%s\"): got at=%lld partial=%zu, want at=%lld partial=%zu", text, (long long)at,
          partial, (long long)want_at, want_partial);
}

static void test_find_stop(void) {
    const char *s1[] = {"</s>"};
    check_stop("hello</s>world", s1, 1, 5, 0);
    check_stop("hello</", s1, 1, -1, 2);
    check_stop("hello<", s1, 1, -1, 1);
    check_stop("hello</s", s1, 1, -1, 3);
    check_stop("hello", s1, 1, -1, 0);
    check_stop("", s1, 1, -1, 0);
    const char *s2[] = {"world", "lo w", "xyz"};
    check_stop("hello world", s2, 3, 3, 0); /* earliest of two matches */
    check_stop("say xy", s2, 3, -1, 2);
    check_stop("say wor", s2, 3, -1, 3);
    /* Overlapping candidates: the partial is the longest one. */
    const char *s3[] = {"abab", "ba"};
    check_stop("xxaba", s3, 2, 3, 3); /* partial is computed even so */
    check_stop("xxab", s3, 2, -1, 2);
    check_stop("aaabab", s3, 2, 2, 2); /* "abab" at 2 precedes "ba" at 3 */
    /* Empty and NULL stop strings are ignored. */
    const char *s4[] = {"", NULL, "END"};
    check_stop("the END", s4, 3, 4, 0);
    check_stop("the", s4, 3, -1, 0);
    check_stop("the EN", s4, 3, -1, 2);
    /* A stop string longer than the text is only a partial. */
    const char *s5[] = {"abcdef"};
    check_stop("abc", s5, 1, -1, 3);
    check_stop("abcdef", s5, 1, 0, 0);
    size_t partial = 9;
    CHECK(grok_find_stop(NULL, 0, NULL, 0, &partial) == -1 && partial == 0, "NULL inputs");
    CHECK(grok_find_stop("abc", 3, s1, 1, NULL) == -1, "NULL partial pointer");
    /* Length, not the terminator, bounds the text. */
    CHECK(grok_find_stop("ab</s>", 2, s1, 1, &partial) == -1 && partial == 0, "len bound");
}

static void bench(void) {
    size_t nv = 131072;
    float *l = malloc(nv * sizeof *l);
    for (size_t i = 0; i < nv; i++) /* peaked, like a trained model's logits */
        l[i] = (float)((test_rand() + test_rand() + test_rand() - 1.5) * 6.0);
    int32_t hist[64];
    for (int i = 0; i < 64; i++) hist[i] = (int32_t)(test_rand() * (double)nv);
    const char *names[3] = {"defaults", "top_k off, top_p 0.95", "everything off, T=1"};
    for (int c = 0; c < 3; c++) {
        grok_sampler_params p = grok_sampler_default_params();
        p.repeat_penalty = 1.1f;
        if (c >= 1) p.top_k = 0;
        if (c == 2) p = plain_params();
        grok_sampler *s = grok_sampler_create(&p, (int64_t)nv);
        int reps = 50;
        double t0 = grok_now();
        for (int i = 0; i < reps; i++) grok_sampler_sample(s, l, hist, 64);
        double ms = (grok_now() - t0) * 1e3 / reps;
        printf("bench: sample() over %zu logits, %s: %.3f ms\n", nv, names[c], ms);
        grok_sampler_free(s);
    }
    free(l);
}

/* A mask removes tokens before everything else: probabilities are the
 * softmax over the allowed tokens alone, greedy takes the best allowed
 * one, top-k/top-p count only allowed tokens, and nothing allowed is -1. */
static void test_masked(void) {
    const size_t n = 130; /* over two mask words */
    double x[130];
    float lg[130];
    bool keep[130];
    uint64_t mask[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)(float)(4.0 * test_rand() - 2.0);
        lg[i] = (float)x[i];
        keep[i] = (i % 3 == 0) || i == 129;
        if (keep[i]) mask[i / 64] |= 1ull << (i % 64);
    }
    size_t best = 0, best_allowed = 0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] > x[best]) best = i;
        if (keep[i] && (!keep[best_allowed] || x[i] > x[best_allowed])) best_allowed = i;
    }
    lg[best] = keep[best] ? lg[best] : 50.0f; /* the overall best is a disallowed token */
    x[best] = lg[best];
    grok_sampler_params p = plain_params();
    grok_sampler *s = grok_sampler_create(&p, (int64_t)n);
    double want[130];
    ref_softmax(x, keep, n, want);
    for (int k = 0; k < 200; k++) {
        int32_t t = grok_sampler_sample_masked(s, lg, mask, NULL, 0);
        CHECK(t >= 0 && keep[t], "masked draw %d gave token %d, not allowed", k, (int)t);
    }
    check_probs(s, want, n, "masked softmax");
    grok_sampler_free(s);

    p.temperature = 0.0f;
    s = grok_sampler_create(&p, (int64_t)n);
    int32_t g = grok_sampler_sample_masked(s, lg, mask, NULL, 0);
    CHECK(g == (int32_t)best_allowed, "greedy with a mask: %d, want the best allowed %zu", (int)g,
          best_allowed);
    uint64_t none[3] = {0, 0, 0};
    CHECK(grok_sampler_sample_masked(s, lg, none, NULL, 0) == -1, "a mask allowing nothing gives -1");
    grok_sampler_free(s);

    /* top-k = 1 keeps the best allowed token, not the best overall */
    p = plain_params();
    p.top_k = 1;
    s = grok_sampler_create(&p, (int64_t)n);
    CHECK(grok_sampler_sample_masked(s, lg, mask, NULL, 0) == (int32_t)best_allowed, "top-k 1 with a mask");
    grok_sampler_free(s);

    /* allowed tokens whose logits are all NaN: the lowest allowed id */
    float nan_lg[130];
    for (size_t i = 0; i < n; i++) nan_lg[i] = keep[i] ? NAN : 1.0f;
    p = plain_params();
    s = grok_sampler_create(&p, (int64_t)n);
    CHECK(grok_sampler_sample_masked(s, nan_lg, mask, NULL, 0) == 0,
          "NaN allowed logits: the lowest allowed id");
    /* a NULL mask is the plain sampler */
    grok_sampler *q = grok_sampler_create(&p, (int64_t)n);
    for (int k = 0; k < 20; k++)
        CHECK(grok_sampler_sample_masked(s, lg, NULL, NULL, 0) == grok_sampler_sample(q, lg, NULL, 0),
              "NULL mask draw %d equals the unmasked sampler", k);
    grok_sampler_free(s);
    grok_sampler_free(q);
}

int main(void) {
    test_create();
    test_greedy();
    test_rng_stream();
    test_top_k();
    test_top_p();
    test_min_p();
    test_penalties();
    test_distribution();
    test_non_finite();
    test_masked();
    test_find_stop();
    bench();
    return check_summary("test_sampler");
}
