/*
 * test_think_verifier.c - the verifier's scores (think_verifier_score,
 * src/server/think.c), which compute the shared prompt once, copy its KV
 * cache into one sequence per candidate and decode the candidates in
 * batched steps of at most 64 tokens, against the plain definition
 * computed the slow way: each text tokenized whole and decoded alone, one
 * token at a time, summing the log-softmax of the scored tokens. Both
 * scores (the judgement after a suffix, the mean likelihood of the
 * candidate), candidates longer than one batch step, equal candidates,
 * an empty candidate and one past the context.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/think.h"

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* The reference: the tokens of full past what base already spells are
 * scored, one decode call per token in a fresh sequence. Returns the sum,
 * and the count in *n. */
static double slow_score(grok_model *m, grok_runner *r, const char *base, const char *full, int64_t *n) {
    const grok_tokenizer *tok = grok_model_tokenizer(m);
    char err[GROK_ERR_SIZE];
    size_t nf, nb;
    int32_t *f = grok_tokenize(tok, full, strlen(full), true, &nf);
    int32_t *b = grok_tokenize(tok, base, strlen(base), true, &nb);
    size_t first = common_prefix(b, nb, f, nf);
    if (first == 0) first = 1;
    grok_seq_params sp = grok_seq_default_params();
    sp.n_ctx = 512;
    grok_seq *s = grok_seq_create(m, &sp, err, sizeof err);
    double sum = 0;
    *n = 0;
    for (size_t i = 0; i + 1 < nf; i++) {
        CHECK(grok_runner_decode(r, s, &f[i], 1, NULL, err, sizeof err) == 0, "%s", err);
        if (i + 1 >= first) {
            sum += think_token_logprob(grok_seq_logits(s), grok_model_hparams(m)->n_vocab, f[i + 1]);
            (*n)++;
        }
    }
    grok_seq_free(s);
    free(f), free(b);
    return sum;
}

static bool close_to(double a, double b) { return fabs(a - b) <= 1e-4 * (1 + fabs(b)); }

int main(void) {
    const char *src = getenv("GROK_SRC");
    char path[4096], err[GROK_ERR_SIZE];
    snprintf(path, sizeof path, "%s/models/grok-mini.gguf", src ? src : ".");
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        printf("SKIP: %s is absent\n", path);
        return 77;
    }
    fclose(probe);
    grok_threadpool *pool = grok_threadpool_create(2);
    grok_model *m = grok_model_load(path, err, sizeof err);
    CHECK(pool && m, "load %s: %s", path, err);
    if (!pool || !m) return 1;
    grok_runner_params rp = grok_runner_default_params();
    rp.pool = pool;
    grok_runner *r = grok_runner_create(m, &rp, err, sizeof err);
    CHECK(r, "%s", err);
    if (!r) return 1;

    const char *prompt = "Q: 47+38-9\n";
    /* the third is longer than one batched step (64 tokens), the fourth
     * equals the first, the fifth is empty */
    char longer[400];
    snprintf(longer, sizeof longer, "%s%s",
             "=85-9\n=76\nA: 76 because forty-seven and thirty-eight make "
             "eighty-five, and eighty-five less nine is seventy-six, so "
             "the answer is seventy-six, as written above.",
             " Checked again: 47 + 38 = 85 and 85 - 9 = 76.");
    const char *cands[] = {"=85-9\n=76\nA: 76", "=85-9\n=86\nA: 86", longer, "=85-9\n=76\nA: 76", ""};
    const int k = 5;
    size_t lens[5];
    for (int i = 0; i < k; i++) lens[i] = strlen(cands[i]);
    double scores[5];

    /* the judgement: log P(" yes" | prompt + candidate + "\nV:") */
    think_verifier *v = think_verifier_load(path, "\nV:", " yes", pool, 0, err, sizeof err);
    CHECK(v, "load the verifier: %s", err);
    if (!v) return 1;
    CHECK(think_verifier_score(v, prompt, strlen(prompt), cands, lens, k, scores, err, sizeof err) == 0, "%s",
          err);
    for (int i = 0; i < k; i++) {
        int64_t n;
        char base[1024], full[1024];
        snprintf(base, sizeof base, "%s%s\nV:", prompt, cands[i]);
        snprintf(full, sizeof full, "%s%s\nV: yes", prompt, cands[i]);
        double want = slow_score(m, r, base, full, &n);
        CHECK(n >= 1 && close_to(scores[i], want),
              "judgement of candidate %d: %.6f, computed alone %.6f (%lld tokens)", i, scores[i], want,
              (long long)n);
    }
    CHECK(scores[0] == scores[3], "equal candidates score equally: %.9g vs %.9g", scores[0], scores[3]);
    /* a second call reuses the sequences and gives the same */
    double again[5];
    CHECK(think_verifier_score(v, prompt, strlen(prompt), cands, lens, k, again, err, sizeof err) == 0, "%s",
          err);
    CHECK(memcmp(again, scores, sizeof scores) == 0, "a second call scores the same");
    think_verifier_free(v);

    /* the likelihood: mean log-probability of the candidate's tokens */
    v = think_verifier_load(path, NULL, NULL, pool, 0, err, sizeof err);
    CHECK(v, "%s", err);
    if (!v) return 1;
    CHECK(think_verifier_score(v, prompt, strlen(prompt), cands, lens, k, scores, err, sizeof err) == 0, "%s",
          err);
    for (int i = 0; i < 4; i++) {
        int64_t n;
        char full[1024];
        snprintf(full, sizeof full, "%s%s", prompt, cands[i]);
        double want = slow_score(m, r, prompt, full, &n);
        want /= (double)n;
        CHECK(close_to(scores[i], want), "likelihood of candidate %d: %.6f, computed alone %.6f", i,
              scores[i], want);
    }
    CHECK(isnan(scores[4]), "an empty candidate has nothing to score: %g", scores[4]);
    think_verifier_free(v);

    /* a context too short for the long candidate: it alone scores NaN */
    v = think_verifier_load(path, "\nV:", " yes", pool, 40, err, sizeof err);
    CHECK(v, "%s", err);
    if (!v) return 1;
    CHECK(think_verifier_score(v, prompt, strlen(prompt), cands, lens, 3, scores, err, sizeof err) == 0, "%s",
          err);
    CHECK(!isnan(scores[0]) && !isnan(scores[1]) && isnan(scores[2]), "past the context: %g %g %g", scores[0],
          scores[1], scores[2]);
    think_verifier_free(v);

    CHECK(think_verifier_load("/nonexistent/verifier.gguf", NULL, NULL, pool, 0, err, sizeof err) == NULL &&
              strstr(err, "--verifier") && strstr(err, "nonexistent"),
          "a missing verifier file is named: %s", err);

    grok_runner_free(r);
    grok_model_free(m);
    grok_threadpool_free(pool);
    return check_summary("test_think_verifier");
}
