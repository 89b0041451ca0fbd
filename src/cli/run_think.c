/*
 * run_think.c - `grok run --samples K` (or --reasoning-effort): K samples of
 * one prompt drawn as one batch (the prompt computed once in the first
 * sequence and copied into the others with grok_seq_copy, then one
 * grok_decode_multi step per token for every sample still going), then one
 * answer chosen among them by src/server/think.c, the code `grok serve`
 * uses. Sample i draws with seed + i, as choice i of a server request does,
 * so the same flags give the same samples in both.
 *
 * stdout gets the chosen sample's text; stderr a summary (answer, vote
 * share, which sample) and, with --candidates, one line per sample.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/think.h"
#include "util/rng.h"

typedef struct {
    grok_sampler *sampler;
    grok_seq *seq;
    int32_t *hist;
    size_t n_hist;
    grok_detok_stream ds;
    char *text;
    size_t len, cap;
    int64_t n_gen;
    double lp_sum;
    const char *finish; /* NULL while going on */
} sample;

static bool text_add(sample *x, const char *s, size_t n) {
    if (x->len + n + 1 > x->cap) {
        size_t cap = (x->len + n + 1) * 2;
        char *b = realloc(x->text, cap);
        if (!b) return false;
        x->text = b;
        x->cap = cap;
    }
    memcpy(x->text + x->len, s, n);
    x->len += n;
    x->text[x->len] = '\0';
    return true;
}

/* Cuts the text at the first stop string; true when there was one. */
static bool cut_stop(sample *x, const char *const *stops, size_t n_stops) {
    size_t partial;
    int64_t at = grok_find_stop(x->text ? x->text : "", x->len, stops, n_stops, &partial);
    if (at < 0) return false;
    x->len = (size_t)at;
    x->text[x->len] = '\0';
    return true;
}

/* Samples the next token of x and decides whether it goes on. */
static void step_sample(sample *x, const grok_tokenizer *tok, int64_t n_vocab, const run_think_args *a) {
    const float *lg = grok_seq_logits(x->seq);
    int32_t next = grok_sampler_sample(x->sampler, lg, x->hist, x->n_hist);
    x->n_gen++;
    if (next < 0) {
        x->finish = "error";
        return;
    }
    x->lp_sum += think_token_logprob(lg, n_vocab, next);
    char piece[GROK_DETOK_MAX_PIECE + 16];
    bool final = x->n_gen >= a->n_gen;
    if (next == grok_tokenizer_eos(tok) && !a->ignore_eos) {
        x->finish = "stop";
        final = true;
    } else {
        x->hist[x->n_hist++] = next;
        size_t k = grok_detok_stream_push(&x->ds, tok, next, piece, sizeof piece);
        if (!text_add(x, piece, k)) x->finish = "error";
    }
    if (cut_stop(x, a->stops, a->n_stops)) {
        x->finish = "stop";
        return;
    }
    if (final) {
        size_t k = grok_detok_stream_flush(&x->ds, piece, sizeof piece);
        text_add(x, piece, k);
        if (cut_stop(x, a->stops, a->n_stops)) x->finish = "stop";
        if (!x->finish) x->finish = "length";
    } else if (grok_seq_pos(x->seq) >= grok_seq_n_ctx(x->seq)) {
        x->finish = "length";
    }
}

int run_think(grok_model *m, const int32_t *prompt, size_t n_prompt, const char *prompt_text,
              size_t prompt_len, const run_think_args *a) {
    const grok_tokenizer *tok = grok_model_tokenizer(m);
    const int64_t V = grok_model_hparams(m)->n_vocab;
    const int k = a->samples;
    char err[GROK_ERR_SIZE];
    int rc = 1;
    think_extractor ex;
    if (think_extractor_init(&ex, a->extract, err, sizeof err)) {
        cli_error("run", "--extract: %s", err);
        return 2;
    }
    grok_threadpool *pool = grok_threadpool_create(a->threads);
    grok_runner_params rp = grok_runner_default_params();
    rp.pool = pool;
    rp.n_batch = a->batch > k ? a->batch : k; /* every sample takes one token of each step */
    if (rp.n_batch > a->n_ctx) rp.n_batch = a->n_ctx;
    grok_runner *r = pool ? grok_runner_create(m, &rp, err, sizeof err) : NULL;
    think_verifier *ver = NULL;
    sample *xs = calloc((size_t)k, sizeof *xs);
    grok_seq **seqs = calloc((size_t)k, sizeof *seqs);
    const int32_t **toks = calloc((size_t)k, sizeof *toks);
    int64_t *ns = calloc((size_t)k, sizeof *ns);
    int *live = calloc((size_t)k, sizeof *live);
    if (!pool || !r || !xs || !seqs || !toks || !ns || !live) {
        cli_error("run", "%s", r || !pool ? "out of memory" : err);
        goto done;
    }
    if (a->verifier && !(ver = think_verifier_load(a->verifier, a->verifier_suffix, a->verifier_yes, pool,
                                                   a->n_ctx + 256, err, sizeof err))) {
        cli_error("run", "%s", err);
        goto done;
    }
    grok_seq_params sq = grok_seq_default_params();
    sq.n_ctx = a->n_ctx;
    sq.kv_type = a->kv_type;
    for (int i = 0; i < k; i++) {
        sample *x = &xs[i];
        grok_sampler_params sp = a->sp;
        sp.seed = grok_rng_choice_seed(sp.seed, (uint64_t)i); /* as choice i of a server request */
        x->sampler = grok_sampler_create(&sp, V);
        x->seq = grok_seq_create(m, &sq, err, sizeof err);
        x->hist = malloc((n_prompt + (size_t)a->n_gen + 1) * sizeof *x->hist);
        if (!x->sampler || !x->seq || !x->hist) {
            cli_error("run", "%s", x->seq ? "out of memory" : err);
            goto done;
        }
        memcpy(x->hist, prompt, n_prompt * sizeof *prompt);
        x->n_hist = n_prompt;
        grok_detok_stream_init(&x->ds, false);
    }
    double t0 = grok_now();
    /* the prompt once, then copied with its logits */
    if (grok_runner_decode(r, xs[0].seq, prompt, (int64_t)n_prompt, NULL, err, sizeof err)) {
        cli_error("run", "%s", err);
        goto done;
    }
    for (int i = 1; i < k; i++)
        if (grok_seq_copy(xs[i].seq, xs[0].seq, (int64_t)n_prompt, err, sizeof err)) {
            cli_error("run", "%s", err);
            goto done;
        }
    double t1 = grok_now();
    int64_t total = 0;
    for (;;) {
        int n_live = 0;
        for (int i = 0; i < k; i++) {
            if (xs[i].finish) continue;
            if (a->n_gen == 0) {
                xs[i].finish = "length";
                continue;
            }
            step_sample(&xs[i], tok, V, a);
            total++;
            if (xs[i].finish) continue;
            seqs[n_live] = xs[i].seq;
            toks[n_live] = &xs[i].hist[xs[i].n_hist - 1];
            ns[n_live] = 1;
            live[n_live++] = i;
        }
        if (a->progress)
            fprintf(stderr, "\rthink: %d of %d samples going, %" PRId64 " tokens", n_live, k, total);
        if (n_live == 0) break;
        if (grok_decode_multi(r, seqs, toks, ns, n_live, err, sizeof err)) {
            cli_error("run", "%s", err);
            goto done;
        }
    }
    if (a->progress) fputc('\n', stderr);
    double t2 = grok_now();
    double scores[THINK_MAX_SAMPLES];
    for (int i = 0; i < k; i++) scores[i] = NAN;
    if (ver) {
        const char *texts[THINK_MAX_SAMPLES];
        size_t lens[THINK_MAX_SAMPLES];
        for (int i = 0; i < k; i++) texts[i] = xs[i].text ? xs[i].text : "", lens[i] = xs[i].len;
        if (think_verifier_score(ver, prompt_text, prompt_len, texts, lens, k, scores, err, sizeof err)) {
            cli_error("run", "verifier: %s", err);
            goto done;
        }
    }
    double t3 = grok_now();
    think_candidate cand[THINK_MAX_SAMPLES];
    char *ans[THINK_MAX_SAMPLES];
    think_tally tally[THINK_MAX_SAMPLES];
    for (int i = 0; i < k; i++) {
        ans[i] = think_extract(&ex, xs[i].text ? xs[i].text : "", xs[i].len);
        cand[i] =
            (think_candidate){ans[i], xs[i].n_gen ? xs[i].lp_sum / (double)xs[i].n_gen : NAN, scores[i]};
    }
    think_result res = think_choose(cand, k, a->select, tally);
    const sample *w = &xs[res.chosen];
    fwrite(w->text ? w->text : "", 1, w->len, stdout);
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "think: %d samples, %s over %s: answer %s, confidence %.3f (%d of %d), sample %d\n", k,
            think_select_name(a->select), ex.spec, res.answer ? res.answer : "(none)", res.confidence,
            res.votes, k, res.chosen);
    if (a->candidates)
        for (int i = 0; i < k; i++) {
            fprintf(stderr, "  [%d] answer %-12s mean logprob %8.4f", i, ans[i] ? ans[i] : "-",
                    cand[i].mean_logprob);
            if (ver) fprintf(stderr, "  verifier %8.4f", scores[i]);
            fprintf(stderr, "  %3" PRId64 " tokens %s\n", xs[i].n_gen, xs[i].finish);
        }
    fprintf(stderr,
            "prompt: %zu tokens once, %.2f s | samples: %" PRId64 " tokens, %.2f tok/s | verifier %.2f s\n",
            n_prompt, t1 - t0, total, (double)total / (t2 - t1 > 1e-9 ? t2 - t1 : 1e-9), t3 - t2);
    for (int i = 0; i < k; i++) free(ans[i]);
    rc = 0;
done:
    for (int i = 0; xs && i < k; i++) {
        grok_sampler_free(xs[i].sampler);
        grok_seq_free(xs[i].seq);
        free(xs[i].hist);
        free(xs[i].text);
    }
    free(xs), free(seqs), free(toks), free(ns), free(live);
    think_verifier_free(ver);
    think_extractor_free(&ex);
    grok_runner_free(r);
    grok_threadpool_free(pool);
    return rc;
}
