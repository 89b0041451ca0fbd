/*
 * test_forward.c - the forward pass through the library API: several
 * sequences decoded together in one step (grok_decode_multi, what the
 * server's continuous batching uses) give exactly the logits each gets
 * alone; reusing a cached prompt prefix after truncation gives the logits
 * of a fresh run; bad requests are refused with the code that says why,
 * without changing any sequence; a runner's kernel mode and its growing
 * attention scratch change nothing they should not.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "random_model.h"
#include "model/model.h"

static float max_diff(const float *a, const float *b, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

int main(void) {
    char path[4096], err[GROK_ERR_SIZE];
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2, hp.head_dim = 16;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 64, hp.n_ctx_train = 64;
    grok_model *m = random_model("forward_test.gguf", &hp, GROK_TYPE_Q8_0, 300, 9, path, sizeof path);
    if (!m) return 1;
    const int64_t V = grok_model_hparams(m)->n_vocab;

    const int32_t p0[] = {5, 6, 7, 8, 9}, p1[] = {40, 41}, p2[] = {100, 101, 102, 103};
    const int32_t *prompts[] = {p0, p1, p2};
    const int64_t lens[] = {5, 2, 4};
    grok_context_params cp = grok_context_default_params();
    cp.n_threads = 2;
    cp.n_ctx = 32;
    grok_threadpool *pool = grok_threadpool_create(2);
    cp.pool = pool;

    /* alone: each sequence by itself, prompt then three greedy steps */
    float alone[3][4][300];
    int32_t next_tok[3][4];
    for (int s = 0; s < 3; s++) {
        grok_context *c = grok_context_create(m, &cp, err, sizeof err);
        CHECK(grok_decode(c, prompts[s], lens[s], NULL, err, sizeof err) == 0, "%s", err);
        for (int step = 0; step < 4; step++) {
            memcpy(alone[s][step], grok_context_logits(c), (size_t)V * 4);
            int32_t best = 0;
            for (int64_t i = 1; i < V; i++)
                if (alone[s][step][i] > alone[s][step][best]) best = (int32_t)i;
            next_tok[s][step] = best;
            if (step < 3) CHECK(grok_decode(c, &best, 1, NULL, err, sizeof err) == 0, "%s", err);
        }
        grok_context_free(c);
    }

    /* a small n_batch: steps of 3 tokens, whose 6 expert rows (top-2) do
     * not fit one wave of expert products (forward.c), so the experts go in
     * several waves; the logits do not change */
    {
        grok_context_params small = cp;
        small.n_batch = 3;
        grok_context *c = grok_context_create(m, &small, err, sizeof err);
        CHECK(c && grok_decode(c, prompts[0], lens[0], NULL, err, sizeof err) == 0, "n_batch 3: %s", err);
        if (c) {
            float d = max_diff(grok_context_logits(c), alone[0][0], V);
            CHECK(d == 0.0f, "n_batch 3: logits differ by %g", d);
        }
        grok_context_free(c);
    }

    /* together: three sequences on one runner, the three prompts in one
     * step, then one token each per step */
    grok_runner_params rp = grok_runner_default_params();
    rp.pool = pool;
    grok_runner *run = grok_runner_create(m, &rp, err, sizeof err);
    CHECK(run, "runner: %s", err);
    if (!run) return 1;
    grok_seq_params sp = grok_seq_default_params();
    sp.n_ctx = 32;
    grok_seq *cs[3];
    for (int s = 0; s < 3; s++) cs[s] = grok_seq_create(m, &sp, err, sizeof err);
    CHECK(grok_decode_multi(run, cs, prompts, lens, 3, err, sizeof err) == 0, "multi prefill: %s", err);
    for (int step = 0; step < 4; step++) {
        const int32_t *one[3];
        int64_t ones[3] = {1, 1, 1};
        for (int s = 0; s < 3; s++) {
            float d = max_diff(grok_seq_logits(cs[s]), alone[s][step], V);
            CHECK(d == 0.0f, "sequence %d step %d: batched logits differ from alone by %g", s, step, d);
            one[s] = &next_tok[s][step];
        }
        if (step < 3) CHECK(grok_decode_multi(run, cs, one, ones, 3, err, sizeof err) == 0, "%s", err);
    }

    /* refused requests leave every sequence as it was, with a code that
     * says why */
    int64_t pos1 = grok_seq_pos(cs[1]);
    const int32_t badtok[] = {1, 300};
    const int32_t *bad[] = {p0, badtok};
    int64_t badn[] = {1, 2};
    int rc = grok_decode_multi(run, cs, bad, badn, 2, err, sizeof err);
    CHECK(rc == GROK_ERR_INPUT && strstr(err, "sequence 1"), "out-of-range id refused (%d): %s", rc, err);
    CHECK(grok_seq_pos(cs[0]) == 5 + 3 && grok_seq_pos(cs[1]) == pos1, "positions untouched");
    grok_seq *dup[] = {cs[0], cs[0]};
    const int32_t *two[] = {p0, p0};
    int64_t twon[] = {1, 1};
    rc = grok_decode_multi(run, dup, two, twon, 2, err, sizeof err);
    CHECK(rc == GROK_ERR_INPUT && strstr(err, "repeats"), "the same sequence twice refused (%d): %s", rc,
          err);
    const int32_t big[40] = {0};
    const int32_t *bigp[] = {big};
    int64_t bign[] = {40};
    rc = grok_decode_multi(run, cs, bigp, bign, 1, err, sizeof err);
    CHECK(rc == GROK_ERR_CTX_FULL, "overflowing the cache refused with GROK_ERR_CTX_FULL (%d): %s", rc, err);
    rc = grok_runner_decode(run, cs[0], big, 0, NULL, err, sizeof err);
    CHECK(rc == GROK_ERR_INPUT, "no tokens refused with GROK_ERR_INPUT (%d)", rc);

    /* prefix reuse: keep the first 3 prompt tokens of sequence 0, append
     * the rest again: the logits equal a fresh run's */
    CHECK(memcmp(grok_seq_tokens(cs[0]), p0, 5 * sizeof(int32_t)) == 0, "cached tokens");
    grok_seq_truncate(cs[0], 3);
    CHECK(grok_seq_pos(cs[0]) == 3, "truncate");
    CHECK(grok_runner_decode(run, cs[0], p0 + 3, 2, NULL, err, sizeof err) == 0, "%s", err);
    float d = max_diff(grok_seq_logits(cs[0]), alone[0][0], V);
    CHECK(d == 0.0f, "reused prefix: logits differ by %g", d);

    /* every position's logits of one sequence (prompt log-probabilities)
     * while others take only their last: equal to grok_decode's all_logits
     * for that sequence alone, the last row also kept as its logits */
    static float all_alone[5][300], all_multi[5][300];
    grok_context *c0 = grok_context_create(m, &cp, err, sizeof err);
    CHECK(grok_decode(c0, p0, 5, &all_alone[0][0], err, sizeof err) == 0, "%s", err);
    for (int s = 0; s < 3; s++) grok_seq_truncate(cs[s], 0);
    float *alls[3] = {NULL, &all_multi[0][0], NULL};
    const int32_t *pr[3] = {p1, p0, p2};
    const int64_t ln[3] = {2, 5, 4};
    CHECK(grok_decode_multi_logits(run, cs, pr, ln, alls, 3, err, sizeof err) == 0, "multi all logits: %s",
          err);
    d = max_diff(&all_multi[0][0], &all_alone[0][0], 5 * V);
    CHECK(d == 0.0f, "all positions' logits batched differ from alone by %g", d);
    d = max_diff(grok_seq_logits(cs[1]), all_alone[4], V);
    CHECK(d == 0.0f, "last row kept as the logits: differs by %g", d);
    d = max_diff(grok_seq_logits(cs[0]), alone[1][0], V);
    CHECK(d == 0.0f, "the sequence beside it: logits differ by %g", d);
    grok_context_free(c0);

    /* a sequence longer than any the runner has seen: the runner's
     * attention scratch grows, and the numbers are a context's */
    grok_seq_params lp = sp;
    lp.n_ctx = 60;
    grok_seq *longer = grok_seq_create(m, &lp, err, sizeof err);
    CHECK(longer && grok_runner_decode(run, longer, p0, 5, NULL, err, sizeof err) == 0, "long sequence: %s",
          err);
    if (longer) {
        d = max_diff(grok_seq_logits(longer), alone[0][0], V);
        CHECK(d == 0.0f, "a sequence of another length: logits differ by %g", d);
    }
    grok_seq_free(longer);

    /* a kernel mode of the runner's own: REFERENCE gives the reference
     * dots' numbers, within rounding of FAST's, and DEFAULT goes back */
    grok_runner_set_kernel_mode(run, GROK_KERNELS_REFERENCE);
    grok_seq_truncate(cs[0], 0);
    CHECK(grok_runner_decode(run, cs[0], p0, 5, NULL, err, sizeof err) == 0, "%s", err);
    float mx0 = 0;
    for (int64_t i = 0; i < V; i++) mx0 = fmaxf(mx0, fabsf(alone[0][0][i]));
    d = max_diff(grok_seq_logits(cs[0]), alone[0][0], V);
    CHECK(d > 0.0f && d <= 2e-2f * mx0, "reference mode differs from fast by rounding only: %g (max %g)", d,
          mx0);
    grok_runner_set_kernel_mode(run, GROK_KERNELS_DEFAULT);
    grok_seq_truncate(cs[0], 0);
    CHECK(grok_runner_decode(run, cs[0], p0, 5, NULL, err, sizeof err) == 0, "%s", err);
    d = max_diff(grok_seq_logits(cs[0]), alone[0][0], V);
    CHECK(d == 0.0f, "back to the default mode: logits differ by %g", d);

    for (int s = 0; s < 3; s++) grok_seq_free(cs[s]);
    grok_runner_free(run);

    /* Where the CPU has packed (row-interleaved) kernels, the first context
     * packed every weight matrix (all row counts here divide by 8); the
     * same model loaded with GROK_PACK=0 runs the row-at-a-time dots: the
     * two differ only in the float summation order. */
    const bool packs = grok_dot_select(GROK_TYPE_Q8_0, GROK_KERNELS_FAST)->dot_x8 != NULL;
    CHECK((grok_model_packed_bytes(m) > 0) == packs, "packed %lld bytes, packed kernels %s",
          (long long)grok_model_packed_bytes(m), packs ? "present" : "absent");
    setenv("GROK_PACK", "0", 1);
    grok_model *mu = grok_model_load(path, err, sizeof err);
    CHECK(mu, "load: %s", err);
    if (mu) {
        grok_context *cu = grok_context_create(mu, &cp, err, sizeof err);
        CHECK(cu && grok_model_packed_bytes(mu) == 0, "GROK_PACK=0 leaves the model unpacked");
        CHECK(cu && grok_decode(cu, p0, 5, NULL, err, sizeof err) == 0, "%s", err);
        if (cu) {
            float mx = 0;
            for (int64_t i = 0; i < V; i++) mx = fmaxf(mx, fabsf(alone[0][0][i]));
            d = max_diff(grok_context_logits(cu), alone[0][0], V);
            CHECK(d <= 1e-4f * mx, "unpacked logits differ from packed by %g (max |logit| %g)", d, mx);
        }
        grok_context_free(cu);
        grok_model_free(mu);
    }
    unsetenv("GROK_PACK");
    grok_threadpool_free(pool);
    grok_model_free(m);
    return check_summary("test_forward");
}
