/*
 * test_seq_copy.c - grok_seq_copy, the shared prompt prefix of several
 * samples: a sequence given another's first n tokens by copying decodes
 * every later token to exactly (bit for bit) the logits it gets after
 * computing those tokens itself, for f32 and f16 caches, for a whole
 * prompt (the logits come along, so it can sample at once) and for part
 * of one; mismatched models, KV types, lengths beyond the source and
 * contexts too short are refused and leave the destination as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "model/model.h"

enum { V = 300, NP = 9, NG = 5 };

/* Greedy continuation of s for NG steps; the logits of each step into out. */
static void continue_greedy(grok_runner *r, grok_seq *s, float out[NG][V]) {
    char err[GROK_ERR_SIZE];
    for (int step = 0; step < NG; step++) {
        const float *lg = grok_seq_logits(s);
        memcpy(out[step], lg, sizeof out[step]);
        int32_t best = 0;
        for (int32_t v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        CHECK(grok_runner_decode(r, s, &best, 1, NULL, err, sizeof err) == 0, "%s", err);
    }
}

static void check_type(grok_model *m, grok_model *other, grok_type kv) {
    char err[GROK_ERR_SIZE];
    const char *tn = grok_type_get_traits(kv)->name;
    grok_runner_params rp = grok_runner_default_params();
    rp.n_threads = 2;
    grok_runner *r = grok_runner_create(m, &rp, err, sizeof err);
    grok_seq_params sp = grok_seq_default_params();
    sp.n_ctx = 32;
    sp.kv_type = kv;
    grok_seq *a = grok_seq_create(m, &sp, err, sizeof err), *b = grok_seq_create(m, &sp, err, sizeof err);
    grok_seq *c = grok_seq_create(m, &sp, err, sizeof err);
    CHECK(r && a && b && c, "%s", err);
    if (!r || !a || !b || !c) return;
    const int32_t prompt[NP] = {11, 12, 13, 200, 201, 17, 42, 43, 44};

    /* reference: the prompt computed by the sequence itself */
    static float ref[NG][V], got[NG][V];
    CHECK(grok_runner_decode(r, a, prompt, NP, NULL, err, sizeof err) == 0, "%s", err);
    continue_greedy(r, a, ref);

    /* b has other tokens cached first, so the copy must replace them */
    const int32_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    CHECK(grok_runner_decode(r, b, junk, 12, NULL, err, sizeof err) == 0, "%s", err);
    grok_seq_truncate(a, 0);
    CHECK(grok_runner_decode(r, a, prompt, NP, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(grok_seq_copy(b, a, NP, err, sizeof err) == 0, "whole prompt (%s): %s", tn, err);
    CHECK(grok_seq_pos(b) == NP, "position after the copy (%s)", tn);
    CHECK(memcmp(grok_seq_tokens(b), prompt, sizeof prompt) == 0, "cached tokens copied (%s)", tn);
    continue_greedy(r, b, got);
    CHECK(memcmp(got, ref, sizeof ref) == 0, "%s: whole-prompt copy: logits differ from recomputing", tn);

    /* part of a prompt: the rest computed by the copy, in one batch with
     * another sequence (as the server's followers do) */
    grok_seq_truncate(a, 0);
    CHECK(grok_runner_decode(r, a, prompt, NP, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(grok_seq_copy(c, a, 4, err, sizeof err) == 0, "%s", err);
    CHECK(grok_seq_pos(c) == 4, "partial copy position");
    grok_seq *both[] = {c, b};
    const int32_t *toks[] = {prompt + 4, junk};
    const int64_t ns[] = {NP - 4, 1};
    grok_seq_truncate(b, 0);
    CHECK(grok_decode_multi(r, both, toks, ns, 2, err, sizeof err) == 0, "%s", err);
    continue_greedy(r, c, got);
    CHECK(memcmp(got, ref, sizeof ref) == 0, "%s: partial copy then the rest batched: logits differ", tn);

    /* a copy from a source that decoded past the copied length: no logits
     * come along, and computing the last prompt token gives the same */
    CHECK(grok_seq_copy(b, c, NP - 1, err, sizeof err) == 0, "%s", err);
    CHECK(grok_runner_decode(r, b, prompt + NP - 1, 1, NULL, err, sizeof err) == 0, "%s", err);
    continue_greedy(r, b, got);
    CHECK(memcmp(got, ref, sizeof ref) == 0, "%s: copy of all but the last token: logits differ", tn);

    /* the same sequence: a truncation */
    CHECK(grok_seq_copy(b, b, 3, err, sizeof err) == 0 && grok_seq_pos(b) == 3, "self copy truncates");

    /* refusals leave dst as it was */
    int64_t before = grok_seq_pos(b);
    int rc = grok_seq_copy(b, a, grok_seq_pos(a) + 1, err, sizeof err);
    CHECK(rc == GROK_ERR_INPUT && strstr(err, "holds"), "beyond the source refused (%d): %s", rc, err);
    grok_seq_params small = sp;
    small.n_ctx = 4;
    grok_seq *tiny = grok_seq_create(m, &small, err, sizeof err);
    rc = grok_seq_copy(tiny, a, NP, err, sizeof err);
    CHECK(rc == GROK_ERR_CTX_FULL && strstr(err, "context"), "short context refused (%d): %s", rc, err);
    CHECK(grok_seq_pos(tiny) == 0, "refused copy left the destination empty");
    grok_seq_params other_kv = sp;
    other_kv.kv_type = kv == GROK_TYPE_F32 ? GROK_TYPE_F16 : GROK_TYPE_F32;
    grok_seq *okv = grok_seq_create(m, &other_kv, err, sizeof err);
    rc = grok_seq_copy(okv, a, 2, err, sizeof err);
    CHECK(rc == GROK_ERR_INPUT && strstr(err, "types"), "other KV type refused (%d): %s", rc, err);
    grok_seq *om = grok_seq_create(other, &sp, err, sizeof err);
    rc = grok_seq_copy(om, a, 2, err, sizeof err);
    CHECK(rc == GROK_ERR_INPUT && strstr(err, "models"), "other model refused (%d): %s", rc, err);
    rc = grok_seq_copy(b, NULL, 2, err, sizeof err);
    CHECK(rc == GROK_ERR_INPUT && grok_seq_pos(b) == before, "no source refused (%d)", rc);
    grok_seq_free(tiny), grok_seq_free(okv), grok_seq_free(om);
    grok_seq_free(a), grok_seq_free(b), grok_seq_free(c);
    grok_runner_free(r);
}

int main(void) {
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char path[4096], path2[4096], err[GROK_ERR_SIZE];
    snprintf(path, sizeof path, "%s/seq_copy.gguf", tmp);
    snprintf(path2, sizeof path2, "%s/seq_copy2.gguf", tmp);
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2, hp.head_dim = 16;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 64, hp.n_ctx_train = 64;
    grok_tokenizer *tok = grok_tokenizer_placeholder(V, err, sizeof err);
    CHECK(tok, "placeholder vocab: %s", err);
    if (!tok) return 1;
    CHECK(grok_model_write_random(path, &hp, GROK_TYPE_Q8_0, tok, false, 3, err, sizeof err) == 0, "%s", err);
    CHECK(grok_model_write_random(path2, &hp, GROK_TYPE_Q8_0, tok, false, 4, err, sizeof err) == 0, "%s",
          err);
    grok_tokenizer_free(tok);
    grok_model *m = grok_model_load(path, err, sizeof err), *m2 = grok_model_load(path2, err, sizeof err);
    CHECK(m && m2, "load: %s", err);
    if (!m || !m2) return 1;
    check_type(m, m2, GROK_TYPE_F32);
    check_type(m, m2, GROK_TYPE_F16);
    grok_model_free(m), grok_model_free(m2);
    return check_summary("test_seq_copy");
}
