/*
 * test_routing.c - the routing hook (grok_context_set_routing_hook): it
 * sees every token of its own sequence and layer once, in layer order,
 * with a softmax that sums to 1, the experts best first and gates equal to
 * their probabilities; a sequence decoded in a multi-sequence step is seen
 * exactly as when decoded alone, and its neighbours without a hook are not
 * seen at all; a detached hook is never called. (The probabilities
 * themselves are checked against the NumPy reference by trace_test.sh.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "random_model.h"
#include "model/model.h"

#define MAXREC 256

typedef struct {
    int n;
    int64_t pos[MAXREC], layer[MAXREC];
    int32_t token[MAXREC], experts[MAXREC][2];
    float probs[MAXREC][4], gates[MAXREC][2];
    int bad;
} record;

static void hook(void *user, const grok_routing *r) {
    record *rec = user;
    if (rec->n >= MAXREC || r->n_experts != 4 || r->n_used != 2) {
        rec->bad++;
        return;
    }
    int i = rec->n++;
    rec->pos[i] = r->pos, rec->layer[i] = r->layer, rec->token[i] = r->token;
    memcpy(rec->probs[i], r->probs, sizeof rec->probs[i]);
    memcpy(rec->experts[i], r->experts, sizeof rec->experts[i]);
    memcpy(rec->gates[i], r->gates, sizeof rec->gates[i]);
}

int main(void) {
    char err[GROK_ERR_SIZE];
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 3, hp.n_heads = 4, hp.n_kv_heads = 2, hp.head_dim = 16;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 64, hp.n_ctx_train = 64;
    grok_model *m = random_model("routing_test.gguf", &hp, GROK_TYPE_Q8_0, 300, 11, NULL, 0);
    if (!m) return check_summary("test_routing");
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = 32;
    cp.n_threads = 2;
    const int32_t a[] = {5, 6, 7, 8, 9}, b[] = {40, 41, 42}, a_next = 77, b_next = 88;

    /* alone: prompt of 5, then one more token */
    record alone = {0};
    grok_context *c = grok_context_create(m, &cp, err, sizeof err);
    grok_context_set_routing_hook(c, hook, &alone);
    CHECK(grok_decode(c, a, 5, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(grok_decode(c, &a_next, 1, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(alone.n == 6 * 3 && !alone.bad, "alone: %d records (want 18)", alone.n);
    for (int i = 0; i < alone.n; i++) {
        /* a batch goes layer by layer, its tokens in order within a layer */
        int64_t want_pos = i < 15 ? i % 5 : 5, want_layer = i < 15 ? i / 5 : i - 15;
        CHECK(alone.pos[i] == want_pos && alone.layer[i] == want_layer, "record %d: pos %ld layer %ld", i,
              (long)alone.pos[i], (long)alone.layer[i]);
        CHECK(alone.token[i] == (want_pos < 5 ? a[want_pos] : a_next), "record %d: token %d", i,
              alone.token[i]);
        double sum = 0;
        for (int e = 0; e < 4; e++) sum += alone.probs[i][e];
        CHECK(fabs(sum - 1) < 1e-5, "record %d: probabilities sum to %g", i, sum);
        const int32_t e0 = alone.experts[i][0], e1 = alone.experts[i][1];
        CHECK(e0 != e1 && alone.gates[i][0] == alone.probs[i][e0] && alone.gates[i][1] == alone.probs[i][e1],
              "record %d: gates are not the chosen probabilities", i);
        for (int e = 0; e < 4; e++)
            CHECK(e == e0 || e == e1 || alone.probs[i][e] <= alone.probs[i][e1],
                  "record %d: expert %d beats the second choice", i, e);
        CHECK(alone.probs[i][e0] >= alone.probs[i][e1], "record %d: experts not best first", i);
    }
    grok_context_free(c);

    /* together: A (hooked) and B (not) in the same steps of one runner */
    record together = {0};
    grok_runner_params rp = grok_runner_default_params();
    rp.n_threads = 2;
    grok_runner *run = grok_runner_create(m, &rp, err, sizeof err);
    grok_seq_params sq = grok_seq_default_params();
    sq.n_ctx = 32;
    grok_seq *sa = grok_seq_create(m, &sq, err, sizeof err), *sb = grok_seq_create(m, &sq, err, sizeof err);
    CHECK(run && sa && sb, "runner and sequences: %s", err);
    if (!run || !sa || !sb) return 1;
    grok_seq_set_routing_hook(sa, hook, &together);
    grok_seq *both[2] = {sb, sa}; /* the unhooked one first */
    const int32_t *toks[2] = {b, a};
    int64_t ns[2] = {3, 5};
    CHECK(grok_decode_multi(run, both, toks, ns, 2, err, sizeof err) == 0, "multi: %s", err);
    const int32_t *toks2[2] = {&b_next, &a_next};
    int64_t ns2[2] = {1, 1};
    CHECK(grok_decode_multi(run, both, toks2, ns2, 2, err, sizeof err) == 0, "multi: %s", err);
    CHECK(together.n == alone.n, "together: %d records, alone %d", together.n, alone.n);
    for (int i = 0; i < together.n && i < alone.n; i++)
        CHECK(together.pos[i] == alone.pos[i] && together.layer[i] == alone.layer[i] &&
                  together.token[i] == alone.token[i] &&
                  memcmp(together.probs[i], alone.probs[i], sizeof alone.probs[i]) == 0 &&
                  memcmp(together.experts[i], alone.experts[i], sizeof alone.experts[i]) == 0,
              "record %d differs between alone and batched", i);

    /* detached: no more calls */
    grok_seq_set_routing_hook(sa, NULL, &together);
    int before = together.n;
    CHECK(grok_runner_decode(run, sa, &a_next, 1, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(together.n == before, "a detached hook was called %d times", together.n - before);
    grok_seq_free(sa);
    grok_seq_free(sb);
    grok_runner_free(run);
    grok_model_free(m);
    return check_summary("test_routing");
}
