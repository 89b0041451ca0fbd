/*
 * test_quant_experts.c - --expert-aware's assignment (quant_experts.c)
 * against an exact dynamic programme over small integer sizes: on random
 * convex cost curves (error falling with bytes, scaled by a random use)
 * assignment must find the optimum, for 8 and for 24 experts; the budget
 * is never exceeded, a budget below the smallest types is
 * refused, and a larger budget never costs more. Also the candidate
 * ladders: the type itself among them, only types whose blocks divide the
 * rows.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/quantize.h"

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* The optimum by DP over bytes (sizes small integers). */
static double dp_best(int64_t n, int nc, const double *cost, const uint64_t *size, uint64_t budget) {
    double *f = malloc(sizeof *f * (budget + 1)), *g = malloc(sizeof *g * (budget + 1));
    for (uint64_t b = 0; b <= budget; b++) f[b] = 0;
    for (int64_t e = 0; e < n; e++) {
        for (uint64_t b = 0; b <= budget; b++) {
            g[b] = INFINITY;
            for (int c = 0; c < nc; c++)
                if (size[c] <= b && f[b - size[c]] + cost[e * nc + c] < g[b])
                    g[b] = f[b - size[c]] + cost[e * nc + c];
        }
        memcpy(f, g, sizeof *f * (budget + 1));
    }
    double r = f[budget];
    free(f), free(g);
    return r;
}

int main(void) {
    /* q2_K ... q6_K bytes per 256 values, times 3 blocks: the assignment works in their gcd */
    const uint64_t size[5] = {3 * 84, 3 * 110, 3 * 144, 3 * 176, 3 * 210};
    for (int trial = 0; trial < 60; trial++) {
        const int64_t n = trial < 30 ? 8 : 24;
        const int nc = 5;
        double cost[24 * 5];
        for (int64_t e = 0; e < n; e++) {
            const double use = pow(10.0, 2.0 * urand()), hard = 0.5 + urand();
            for (int c = 0; c < nc; c++)
                cost[e * nc + c] = use * hard * pow(4.0, -(double)c) * (0.9 + 0.2 * urand());
        }
        const uint64_t budget = (uint64_t)n * size[2] + (uint64_t)(urand() * 200);
        int choice[24];
        CHECK(grok_quant_expert_assign(n, nc, cost, size, budget, choice) == 0, "trial %d: no assignment",
              trial);
        uint64_t used = 0;
        double got = 0;
        for (int64_t e = 0; e < n; e++) {
            CHECK(choice[e] >= 0 && choice[e] < nc, "trial %d: choice %d", trial, choice[e]);
            used += size[choice[e]];
            got += cost[e * nc + choice[e]];
        }
        CHECK(used <= budget, "trial %d: %llu bytes over the budget %llu", trial, (unsigned long long)used,
              (unsigned long long)budget);
        const double best = dp_best(n, nc, cost, size, budget);
        CHECK(fabs(got - best) <= 1e-9 * best, "trial %d: %.9g, optimum %.9g", trial, got, best);
        /* more bytes never cost more */
        int more[24];
        double got2 = 0;
        CHECK(grok_quant_expert_assign(n, nc, cost, size, budget + 400, more) == 0, "trial %d: bigger budget",
              trial);
        for (int64_t e = 0; e < n; e++) got2 += cost[e * nc + more[e]];
        CHECK(got2 <= got * (1 + 1e-9), "trial %d: a bigger budget cost %.6g > %.6g", trial, got2, got);
    }
    int choice[8];
    const double flat[8 * 5] = {0};
    CHECK(grok_quant_expert_assign(8, 5, flat, size, 8 * size[0] - 1, choice) == -1,
          "a budget below every expert's smallest type is refused");

    grok_type cand[5];
    int nc = grok_quant_expert_candidates(GROK_TYPE_Q3_K, 4096, cand);
    CHECK(nc == 4 && cand[0] == GROK_TYPE_Q2_K && cand[1] == GROK_TYPE_Q3_K && cand[3] == GROK_TYPE_Q5_K,
          "q3_K: q2_K .. q5_K (got %d)", nc);
    nc = grok_quant_expert_candidates(GROK_TYPE_Q4_0, 128, cand);
    CHECK(nc == 3 && cand[0] == GROK_TYPE_Q4_0, "q4_0 (128 columns): q4_0, q4_1, q5_0 (got %d)", nc);
    nc = grok_quant_expert_candidates(GROK_TYPE_IQ3_XXS, 4096, cand);
    bool has = false;
    for (int c = 0; c < nc; c++) has |= cand[c] == GROK_TYPE_IQ3_XXS;
    CHECK(nc == 5 && has, "iq3_xxs: 5 candidates with itself (got %d)", nc);
    nc = grok_quant_expert_candidates(GROK_TYPE_F16, 4096, cand);
    CHECK(nc == 1 && cand[0] == GROK_TYPE_F16, "f16: no other type");
    return check_summary("test_quant_experts");
}
