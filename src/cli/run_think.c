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

/* A think run: the prompt, what it holds (freed by think_free) and the
 * times of its phases. */
typedef struct {
    grok_model *m;
    const int32_t *prompt;
    size_t n_prompt;
    const char *prompt_text;
    size_t prompt_len;
    const run_think_args *a;
    const grok_tokenizer *tok;
    int64_t V;
    int k;
    think_extractor ex;
    grok_threadpool *pool;
    grok_runner *r;
    think_verifier *ver;
    sample *xs;
    /* one grok_decode_multi step's samples still going */
    grok_seq **seqs;
    const int32_t **toks;
    int64_t *ns;
    int *live;
    int64_t total;                    /* the tokens drawn */
    double t0, t1, t2, t3;            /* start, prompt done, samples done, verifier done */
    double scores[THINK_MAX_SAMPLES]; /* the verifier's, NAN without one */
} think_job;

/* The runner, the verifier and every sample's sampler, sequence and
 * history; 0, or 1 after a message. */
static int think_prepare(think_job *j) {
    const run_think_args *a = j->a;
    const int k = j->k;
    char err[GROK_ERR_SIZE];
    j->pool = grok_threadpool_create(a->threads);
    grok_runner_params rp = grok_runner_default_params();
    rp.pool = j->pool;
    rp.n_batch = a->batch > k ? a->batch : k; /* every sample takes one token of each step */
    if (rp.n_batch > a->n_ctx) rp.n_batch = a->n_ctx;
    j->r = j->pool ? grok_runner_create(j->m, &rp, err, sizeof err) : NULL;
    j->xs = calloc((size_t)k, sizeof *j->xs);
    j->seqs = calloc((size_t)k, sizeof *j->seqs);
    j->toks = calloc((size_t)k, sizeof *j->toks);
    j->ns = calloc((size_t)k, sizeof *j->ns);
    j->live = calloc((size_t)k, sizeof *j->live);
    if (!j->pool || !j->r || !j->xs || !j->seqs || !j->toks || !j->ns || !j->live) {
        cli_error("run", "%s", j->r || !j->pool ? "out of memory" : err);
        return 1;
    }
    if (a->verifier && !(j->ver = think_verifier_load(a->verifier, a->verifier_suffix, a->verifier_yes,
                                                      j->pool, a->n_ctx + 256, err, sizeof err))) {
        cli_error("run", "%s", err);
        return 1;
    }
    grok_seq_params sq = grok_seq_default_params();
    sq.n_ctx = a->n_ctx;
    sq.kv_type = a->kv_type;
    for (int i = 0; i < k; i++) {
        sample *x = &j->xs[i];
        grok_sampler_params sp = a->sp;
        sp.seed = grok_rng_choice_seed(sp.seed, (uint64_t)i); /* as choice i of a server request */
        x->sampler = grok_sampler_create(&sp, j->V);
        x->seq = grok_seq_create(j->m, &sq, err, sizeof err);
        x->hist = malloc((j->n_prompt + (size_t)a->n_gen + 1) * sizeof *x->hist);
        if (!x->sampler || !x->seq || !x->hist) {
            cli_error("run", "%s", x->seq ? "out of memory" : err);
            return 1;
        }
        memcpy(x->hist, j->prompt, j->n_prompt * sizeof *j->prompt);
        x->n_hist = j->n_prompt;
        grok_detok_stream_init(&x->ds, false);
    }
    return 0;
}

/* The prompt once, then copied with its logits; 0, or 1 after a message. */
static int think_prompt(think_job *j) {
    char err[GROK_ERR_SIZE];
    j->t0 = grok_now();
    if (grok_runner_decode(j->r, j->xs[0].seq, j->prompt, (int64_t)j->n_prompt, NULL, err, sizeof err)) {
        cli_error("run", "%s", err);
        return 1;
    }
    for (int i = 1; i < j->k; i++)
        if (grok_seq_copy(j->xs[i].seq, j->xs[0].seq, (int64_t)j->n_prompt, err, sizeof err)) {
            cli_error("run", "%s", err);
            return 1;
        }
    j->t1 = grok_now();
    return 0;
}

/* Every sample drawn to its end, one batched step per token; 0, or 1
 * after a message. */
static int think_draw(think_job *j) {
    const run_think_args *a = j->a;
    sample *xs = j->xs;
    char err[GROK_ERR_SIZE];
    for (;;) {
        int n_live = 0;
        for (int i = 0; i < j->k; i++) {
            if (xs[i].finish) continue;
            if (a->n_gen == 0) {
                xs[i].finish = "length";
                continue;
            }
            step_sample(&xs[i], j->tok, j->V, a);
            j->total++;
            if (xs[i].finish) continue;
            j->seqs[n_live] = xs[i].seq;
            j->toks[n_live] = &xs[i].hist[xs[i].n_hist - 1];
            j->ns[n_live] = 1;
            j->live[n_live++] = i;
        }
        if (a->progress)
            fprintf(stderr, "\rthink: %d of %d samples going, %" PRId64 " tokens", n_live, j->k, j->total);
        if (n_live == 0) break;
        if (grok_decode_multi(j->r, j->seqs, j->toks, j->ns, n_live, err, sizeof err)) {
            cli_error("run", "%s", err);
            return 1;
        }
    }
    if (a->progress) fputc('\n', stderr);
    j->t2 = grok_now();
    return 0;
}

/* The verifier's score of each sample, if there is one; 0, or 1 after a
 * message. */
static int think_score(think_job *j) {
    char err[GROK_ERR_SIZE];
    for (int i = 0; i < j->k; i++) j->scores[i] = NAN;
    if (j->ver) {
        const char *texts[THINK_MAX_SAMPLES];
        size_t lens[THINK_MAX_SAMPLES];
        for (int i = 0; i < j->k; i++) texts[i] = j->xs[i].text ? j->xs[i].text : "", lens[i] = j->xs[i].len;
        if (think_verifier_score(j->ver, j->prompt_text, j->prompt_len, texts, lens, j->k, j->scores, err,
                                 sizeof err)) {
            cli_error("run", "verifier: %s", err);
            return 1;
        }
    }
    j->t3 = grok_now();
    return 0;
}

/* The chosen sample to stdout; the choice, the candidates (--candidates)
 * and the times to stderr. */
static void think_report(const think_job *j) {
    const run_think_args *a = j->a;
    const sample *xs = j->xs;
    const int k = j->k;
    think_candidate cand[THINK_MAX_SAMPLES];
    char *ans[THINK_MAX_SAMPLES];
    think_tally tally[THINK_MAX_SAMPLES];
    for (int i = 0; i < k; i++) {
        ans[i] = think_extract(&j->ex, xs[i].text ? xs[i].text : "", xs[i].len);
        cand[i] =
            (think_candidate){ans[i], xs[i].n_gen ? xs[i].lp_sum / (double)xs[i].n_gen : NAN, j->scores[i]};
    }
    think_result res = think_choose(cand, k, a->select, tally);
    const sample *w = &xs[res.chosen];
    fwrite(w->text ? w->text : "", 1, w->len, stdout);
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "think: %d samples, %s over %s: answer %s, confidence %.3f (%d of %d), sample %d\n", k,
            think_select_name(a->select), j->ex.spec, res.answer ? res.answer : "(none)", res.confidence,
            res.votes, k, res.chosen);
    if (a->candidates)
        for (int i = 0; i < k; i++) {
            fprintf(stderr, "  [%d] answer %-12s mean logprob %8.4f", i, ans[i] ? ans[i] : "-",
                    cand[i].mean_logprob);
            if (j->ver) fprintf(stderr, "  verifier %8.4f", j->scores[i]);
            fprintf(stderr, "  %3" PRId64 " tokens %s\n", xs[i].n_gen, xs[i].finish);
        }
    const double t_draw = j->t2 - j->t1;
    fprintf(stderr,
            "prompt: %zu tokens once, %.2f s | samples: %" PRId64 " tokens, %.2f tok/s | verifier %.2f s\n",
            j->n_prompt, j->t1 - j->t0, j->total, (double)j->total / (t_draw > 1e-9 ? t_draw : 1e-9),
            j->t3 - j->t2);
    for (int i = 0; i < k; i++) free(ans[i]);
}

static void think_free(think_job *j) {
    for (int i = 0; j->xs && i < j->k; i++) {
        grok_sampler_free(j->xs[i].sampler);
        grok_seq_free(j->xs[i].seq);
        free(j->xs[i].hist);
        free(j->xs[i].text);
    }
    free(j->xs), free(j->seqs), free(j->toks), free(j->ns), free(j->live);
    think_verifier_free(j->ver);
    think_extractor_free(&j->ex);
    grok_runner_free(j->r);
    grok_threadpool_free(j->pool);
}

int run_think(grok_model *m, const int32_t *prompt, size_t n_prompt, const char *prompt_text,
              size_t prompt_len, const run_think_args *a) {
    think_job j = {.m = m,
                   .prompt = prompt,
                   .n_prompt = n_prompt,
                   .prompt_text = prompt_text,
                   .prompt_len = prompt_len,
                   .a = a,
                   .tok = grok_model_tokenizer(m),
                   .V = grok_model_hparams(m)->n_vocab,
                   .k = a->samples};
    char err[GROK_ERR_SIZE];
    if (think_extractor_init(&j.ex, a->extract, err, sizeof err)) {
        cli_error("run", "--extract: %s", err);
        return 2;
    }
    int rc = think_prepare(&j) || think_prompt(&j) || think_draw(&j) || think_score(&j) ? 1 : 0;
    if (!rc) think_report(&j);
    think_free(&j);
    return rc;
}
