/*
 * train_lora.c - `grok train --init BASE --lora R`: LoRA adapters trained
 * over a frozen base that stays in its stored type, memory-mapped
 * (src/train/qlora.c does the numbers), on plain text or on chat
 * conversations (--data-format chat: only the assistant's tokens count).
 * Under mpirun every rank holds the base, reads the same data and draws
 * the same batches; each computes its share of every batch, the adapter
 * gradient is summed in a fixed order (src/train/gradsum.c), so every rank
 * takes the same optimizer step and the adapters equal a one-process run
 * bit for bit. Rank 0 prints, evaluates the sample answer and writes the
 * adapter and checkpoints.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/train_cli.h"
#include "dist/dist.h"
#include "model/model.h"
#include "util/rng.h"

static int comm_allgatherv(void *ud, const void *mine, void *all, const size_t *counts, char *err,
                           size_t err_size) {
    (void)ud;
    return grok_dist_allgatherv(mine, all, counts, err, err_size);
}

static int comm_alltoallv(void *ud, const void *send, const size_t *sc, void *recv, const size_t *rc,
                          char *err, size_t err_size) {
    (void)ud;
    return grok_dist_alltoallv(send, sc, recv, rc, err, err_size);
}

/* Where batches come from: windows of a token stream (text) or whole
 * conversations (chat). */
typedef struct {
    const int32_t *ids; /* text */
    int64_t n_ids;
    const train_chat_example *ex; /* chat */
    int64_t n_ex;
} source;

typedef struct {
    train_args *a;
    grok_qlora *q;
    grok_train_comm comm;
    int rank, np;
    grok_train_seq *seqs; /* [local share of a batch] */
    int32_t *bufs;        /* text windows: [local][seq + 1] */
} run;

/* Sequence b (global) of a batch: a text window at off, or conversation off. */
static void make_seq(run *r, const source *s, int64_t off, int64_t slot) {
    const int64_t T = r->a->seq;
    grok_train_seq *sq = &r->seqs[slot];
    if (s->ex) {
        const train_chat_example *e = &s->ex[off];
        *sq = (grok_train_seq){e->ids, e->tmask, e->n - 1};
    } else {
        int32_t *b = r->bufs + slot * (T + 1);
        memcpy(b, s->ids + off, sizeof(int32_t) * (size_t)(T + 1));
        *sq = (grok_train_seq){b, NULL, T};
    }
}

/* Held-out loss: windows (text) or conversations (chat) in order, a batch
 * at a time split over the ranks. NaN when there is nothing to score. */
static double evaluate(run *r, const source *s, int64_t max_tokens, const grok_train_loss_cfg *lcfg) {
    train_args *a = r->a;
    const int64_t T = a->seq;
    int64_t n_items = s->ex ? s->n_ex : (s->n_ids > T ? (s->n_ids - 1) / T : 0);
    if (max_tokens > 0 && n_items > max_tokens / T) n_items = max_tokens / T > 0 ? max_tokens / T : 1;
    double sum = 0, scored = 0;
    char err[GROK_ERR_SIZE];
    for (int64_t i0 = 0; i0 < n_items; i0 += a->batch) {
        const int64_t nb = n_items - i0 < a->batch ? n_items - i0 : a->batch;
        int64_t lo, hi;
        grok_gradsum_share(nb, r->rank, r->np, &lo, &hi);
        for (int64_t b = lo; b < hi; b++) make_seq(r, s, s->ex ? i0 + b : (i0 + b) * T, b - lo);
        grok_qlora_step_cfg c = {*lcfg, 0, 0, nb, &r->comm};
        grok_train_losses l;
        if (grok_qlora_step(r->q, r->seqs, &c, &l, NULL, err, sizeof err)) {
            if (r->rank == 0) cli_error("train", "evaluation: %s", err);
            return NAN;
        }
        sum += l.ce * (double)l.n_scored, scored += (double)l.n_scored;
    }
    return scored > 0 ? sum / scored : NAN;
}

/* Greedy answer to the sample prompt with the current adapters, printed
 * on one line (newlines as \n), stopping at EOS, the template's stop
 * string or the sequence length. */
static void sample_answer(run *r, const grok_model *base, const grok_chat_template *t, const char *prompt,
                          size_t prompt_len) {
    const grok_tokenizer *tok = grok_model_tokenizer(base);
    const int64_t V = grok_model_hparams(base)->n_vocab, T = r->a->seq;
    size_t n;
    int32_t *ids = grok_tokenize(tok, prompt, prompt_len, true, &n);
    float *logits = malloc(sizeof(float) * (size_t)V);
    int32_t *all = ids ? malloc(sizeof(int32_t) * (size_t)(T + 1)) : NULL;
    char *text = calloc(1, 1);
    size_t len = 0;
    char err[GROK_ERR_SIZE];
    if (ids && (int64_t)n >= T)
        fprintf(stderr, "  sample answer: (its prompt of %zu tokens does not fit --seq %" PRId64 ")\n", n, T);
    if (!ids || !logits || !all || !text || (int64_t)n >= T) {
        free(ids), free(logits), free(all), free(text);
        return;
    }
    memcpy(all, ids, sizeof(int32_t) * n);
    grok_detok_stream ds;
    grok_detok_stream_init(&ds, false);
    for (int64_t g = 0; g < r->a->sample_tokens && (int64_t)n < T; g++) {
        if (grok_qlora_logits(r->q, all, (int64_t)n, logits, err, sizeof err)) break;
        int32_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = (int32_t)i;
        if (best == grok_tokenizer_eos(tok)) break;
        all[n++] = best;
        char piece[GROK_DETOK_MAX_PIECE + 16];
        size_t k = grok_detok_stream_push(&ds, tok, best, piece, sizeof piece);
        char *nt = realloc(text, len + k + 1);
        if (!nt) break;
        text = nt;
        memcpy(text + len, piece, k);
        len += k;
        text[len] = '\0';
        if (t->stop[0] && strstr(text, t->stop)) {
            *strstr(text, t->stop) = '\0';
            break;
        }
    }
    fprintf(stderr, "  sample answer: \"");
    for (const char *p = text; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stderr);
        else
            fputc(*p, stderr);
    }
    fprintf(stderr, "\"\n");
    free(ids), free(logits), free(all), free(text);
}

/* A LoRA run from the loaded base to the written adapter; job_free frees
 * what it holds. */
typedef struct {
    train_args *a;
    run r;
    bool lead; /* rank 0: prints, samples and writes */
    grok_model *base;
    const grok_tokenizer *tok;
    grok_train_lora *lora;
    grok_train_optim_state st;
    grok_threadpool *pool;
    grok_chat_template tmpl;
    train_chat_data chat, chat_eval;
    int32_t *ids, *eval_ids;
    float *grad;
    FILE *logf;
    source train, held;
    grok_train_loss_cfg lcfg;
} job;

/* The clock, the smoothed loss and the tokens trained on since this
 * process started (a resumed run counts from its own first step). */
typedef struct {
    bool tty;
    double t0, c0, ema, n_tok;
    int64_t step0;
} progress;

/* The frozen base, checked against the flags. 0, or 1 after a message. */
static int load_base(job *j) {
    train_args *a = j->a;
    char err[GROK_ERR_SIZE];
    grok_kernels_set_mode(strcmp(a->kernels, "fast") == 0 ? GROK_KERNELS_FAST : GROK_KERNELS_EXACT);
    j->base = grok_model_load(a->init, err, sizeof err);
    if (!j->base) {
        cli_error("train", "--init: %s", err);
        return 1;
    }
    const grok_hparams *hp = grok_model_hparams(j->base);
    j->tok = grok_model_tokenizer(j->base);
    if (!j->tok) {
        cli_error("train", "--init: %s carries no vocabulary to tokenize the data with", a->init);
        return 1;
    }
    if (a->seq > hp->n_ctx_train) {
        cli_error("train", "--seq %" PRId64 " exceeds the model's context %" PRId64, a->seq, hp->n_ctx_train);
        return 1;
    }
    return 0;
}

/* The adapters and their optimizer state: from --resume, or new. 0, or 1
 * after a message. */
static int load_adapters(job *j) {
    train_args *a = j->a;
    const grok_hparams *hp = grok_model_hparams(j->base);
    char err[GROK_ERR_SIZE];
    if (a->resume) {
        if (grok_train_lora_load(a->resume, hp, &j->lora, &j->st, err, sizeof err)) {
            cli_error("train", "--resume: %s", err);
            return 1;
        }
        if (j->lora->rank != a->lora_rank) {
            cli_error("train", "--resume: %s has rank %" PRId64 ", --lora says %" PRId64, a->resume,
                      j->lora->rank, a->lora_rank);
            return 1;
        }
        return 0;
    }
    j->lora = grok_train_lora_create(hp, a->lora_rank, a->lora_alpha, a->targets, (uint64_t)a->seed, err,
                                     sizeof err);
    if (!j->lora || grok_train_optim_alloc(&j->st, j->lora->p->n_params)) {
        cli_error("train", "%s", j->lora ? "out of memory for the optimizer state" : err);
        return 1;
    }
    j->st.seed = (uint64_t)a->seed;
    j->st.rng = grok_rng_named((uint64_t)a->seed, GROK_RNG_DATA, 0).s;
    return 0;
}

/* Chat data: the conversations to train on and the held-out ones. 0, or 1
 * after a message. */
static int read_chat_data(job *j) {
    train_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (grok_chat_template_load(&j->tmpl, a->chat_template, err, sizeof err)) {
        cli_error("train", "%s", err);
        return 1;
    }
    train_chat_data *chat = &j->chat, *chat_eval = &j->chat_eval;
    if (train_read_chat(a->data, a->n_data, &j->tmpl, j->tok, a->seq + 1, chat)) return 1;
    int64_t n_eval = 0;
    if (a->eval_data) {
        if (train_read_chat(&a->eval_data, 1, &j->tmpl, j->tok, a->seq + 1, chat_eval)) return 1;
        j->held = (source){NULL, 0, chat_eval->ex, chat_eval->n};
    } else {
        n_eval = (int64_t)((double)chat->n * a->holdout);
        if (n_eval == 0 && a->holdout > 0 && chat->n >= 2) n_eval = 1;
        j->held = (source){NULL, 0, chat->ex + chat->n - n_eval, n_eval};
    }
    j->train = (source){NULL, 0, chat->ex, chat->n - n_eval};
    if (j->train.n_ex < 1) {
        cli_error("train", "--data: no conversation left for training after the held-out share");
        return 1;
    }
    if (j->lead && (chat->n_truncated || chat_eval->n_truncated))
        fprintf(stderr,
                "grok train: %" PRId64 " conversations longer than --seq %" PRId64 " tokens were cut\n",
                chat->n_truncated + chat_eval->n_truncated, a->seq);
    return 0;
}

/* Text data: the token stream to train on and the held-out one. 0, or 1
 * after a message. */
static int read_text_data(job *j) {
    train_args *a = j->a;
    size_t len, n;
    char *text = train_read_text(a->data, a->n_data, &len);
    if (!text) return 1;
    j->ids = train_tokenize_text(j->tok, text, len, a->doc_sep, &n);
    free(text);
    int64_t n_all = (int64_t)n, n_eval = a->eval_data ? 0 : (int64_t)((double)n_all * a->holdout);
    if (a->eval_data) {
        size_t el, en;
        if (!(text = train_read_text(&a->eval_data, 1, &el))) return 1;
        j->eval_ids = train_tokenize_text(j->tok, text, el, a->doc_sep, &en);
        free(text);
        j->held = (source){j->eval_ids, (int64_t)en, NULL, 0};
    } else {
        j->held = (source){j->ids ? j->ids + n_all - n_eval : NULL, n_eval, NULL, 0};
    }
    j->train = (source){j->ids, n_all - n_eval, NULL, 0};
    if (!j->ids || j->train.n_ids < a->seq + 2) {
        cli_error("train", "--data: %" PRId64 " training tokens, fewer than --seq %" PRId64 " + 2",
                  j->train.n_ids, a->seq);
        return 1;
    }
    return 0;
}

/* The threads, this rank's share of a batch and the gradient. 0, or 1
 * after a message. */
static int prepare(job *j) {
    train_args *a = j->a;
    run *r = &j->r;
    char err[GROK_ERR_SIZE];
    j->pool = grok_threadpool_create((int)a->threads);
    const int64_t local = (a->batch + r->np - 1) / r->np;
    r->seqs = calloc((size_t)local, sizeof *r->seqs);
    r->bufs = malloc(sizeof(int32_t) * (size_t)(local * (a->seq + 1)));
    r->q = j->pool && r->seqs && r->bufs ? grok_qlora_create(j->base, j->lora, local * a->seq, a->seq,
                                                             a->lora_dropout > 0, j->pool, err, sizeof err)
                                         : NULL;
    j->grad = malloc(sizeof(float) * (size_t)j->lora->p->n_params);
    if (!r->q || !j->grad) {
        cli_error("train", "%s", j->pool && r->seqs && r->bufs && j->grad ? err : "out of memory");
        return 1;
    }
    j->lcfg = (grok_train_loss_cfg){a->aux_coef, a->z_coef};
    return 0;
}

static void print_setup(const job *j) {
    const train_args *a = j->a;
    const grok_train_lora *lora = j->lora;
    const int np = j->r.np;
    fprintf(stderr,
            "grok train: LoRA rank %" PRId64 ", alpha %g, dropout %g on %" PRId64
            " weights: %.3f M trainable parameters; base %s frozen in its own types (%.1f MB mapped)\n",
            lora->rank, (double)lora->alpha, (double)a->lora_dropout, lora->n_t,
            (double)lora->p->n_params / 1e6, a->init,
            (double)grok_gguf_file_size(grok_model_gguf(j->base)) / 1e6);
    fprintf(stderr,
            "grok train: %s data, %" PRId64 " training / %" PRId64
            " held-out %s, %d threads x %d rank%s, batch %" PRId64 " x %" PRId64
            ", %s kernels; adapter state %.1f MB, activations %.1f MB\n",
            a->chat ? "chat" : "text", a->chat ? j->train.n_ex : j->train.n_ids,
            a->chat ? j->held.n_ex : j->held.n_ids, a->chat ? "conversations" : "tokens",
            grok_threadpool_size(j->pool), np, np > 1 ? "s" : "", a->batch, a->seq,
            grok_kernel_mode_name(grok_kernels_mode()), (double)lora->p->n_params * 16 / 1e6,
            (double)grok_qlora_bytes(j->r.q) / 1e6);
}

/* The sequences of the next batch: every rank draws them all (the same
 * sampler state), fills in its share. Returns the batch's tokens. */
static int64_t draw_batch(job *j) {
    const train_args *a = j->a;
    grok_rng g = {j->st.rng};
    int64_t n_tok = 0, lo, hi;
    grok_gradsum_share(a->batch, j->r.rank, j->r.np, &lo, &hi);
    for (int64_t b = 0; b < a->batch; b++) {
        uint64_t x = grok_rng_next(&g);
        int64_t off = a->chat ? (int64_t)(x % (uint64_t)j->train.n_ex)
                              : (int64_t)(x % (uint64_t)(j->train.n_ids - a->seq));
        if (b >= lo && b < hi) make_seq(&j->r, &j->train, off, b - lo);
        n_tok += a->chat ? j->train.ex[off].n - 1 : a->seq;
    }
    j->st.rng = g.s;
    return n_tok;
}

/* The step just taken: the log line, the progress lines and, at an
 * evaluation, the held-out loss and the sample answer. */
static void report_step(job *j, const progress *p, const grok_train_losses *l, float lr, double gnorm) {
    const train_args *a = j->a;
    const int64_t step = j->st.step;
    const double el = grok_now() - p->t0, tps = p->n_tok / el;
    const double eta = el / (double)(step - p->step0) * (double)(a->stop_at - step);
    const bool do_eval = step % a->eval_every == 0 || step == a->stop_at;
    const bool can_eval = a->chat ? j->held.n_ex > 0 : j->held.n_ids > a->seq;
    double ev = NAN;
    if (do_eval && can_eval) ev = evaluate(&j->r, &j->held, a->eval_tokens, &j->lcfg);
    if (j->logf)
        fprintf(j->logf, "%" PRId64 ",%.5f,%.5f,%.6g,%.4f,%.4f\n", step, l->ce, ev, lr, l->aux, l->z);
    if (p->tty)
        fprintf(stderr, "\rstep %" PRId64 "/%" PRId64 "  loss %.4f  lr %.2e  %.0f tok/s  ETA %.0fs   ", step,
                a->steps, p->ema, lr, tps, eta);
    if (!j->lead) return;
    if (do_eval || (!p->tty && step % 10 == 0))
        fprintf(stderr,
                "%sstep %" PRId64 "/%" PRId64 " loss %.4f aux %.3f z %.3f |g| %.3f lr %.2e %.1f tok/s\n",
                p->tty ? "\r" : "", step, a->steps, l->ce, l->aux, l->z, gnorm, lr, tps);
    if (do_eval && !isnan(ev)) fprintf(stderr, "  held-out loss %.4f (perplexity %.2f)\n", ev, exp(ev));
    /* the sample: the last conversation of --eval-data, else of --data
     * (held out unless --holdout is 0) */
    const train_chat_data *sd = j->chat_eval.sample_prompt ? &j->chat_eval : &j->chat;
    if (do_eval && a->chat && sd->sample_prompt && a->sample_tokens > 0)
        sample_answer(&j->r, j->base, &j->tmpl, sd->sample_prompt, sd->sample_prompt_len);
}

/* One optimizer step, its report and checkpoint. 0, or 1 after a message. */
static int train_step(job *j, progress *p) {
    train_args *a = j->a;
    grok_train_optim_state *st = &j->st;
    char err[GROK_ERR_SIZE];
    const int64_t n_tok = draw_batch(j);
    grok_qlora_step_cfg c = {j->lcfg, a->lora_dropout,
                             grok_rng_named(st->seed, GROK_RNG_DROPOUT, (uint64_t)st->step).s, a->batch,
                             &j->r.comm};
    grok_train_losses l;
    const int src = grok_qlora_step(j->r.q, j->r.seqs, &c, &l, j->grad, err, sizeof err);
    if (grok_dist_agree(src == 0, err, sizeof err)) {
        cli_error("train", "step %" PRId64 ": %s", st->step, err);
        return 1;
    }
    const float lr = grok_train_lr_at(&a->opt, st->step);
    const double gnorm = grok_train_adamw_step(j->lora->p, st, j->grad, &a->opt);
    if (!isfinite(l.total) || !isfinite(gnorm)) {
        cli_error("train", "step %" PRId64 ": the loss diverged (%g); try a lower --lr", st->step, l.total);
        return 1;
    }
    p->n_tok += (double)n_tok;
    p->ema = isnan(p->ema) ? l.ce : 0.95 * p->ema + 0.05 * l.ce;
    report_step(j, p, &l, lr, gnorm);
    if (j->lead && a->ckpt && (st->step % a->ckpt_every == 0 || st->step == a->stop_at) &&
        grok_train_lora_save(a->ckpt, j->lora, a->init, st, err, sizeof err)) {
        cli_error("train", "%s", err);
        return 1;
    }
    return 0;
}

/* The adapter written, with the run's rate and memory. 0, or 1 after a
 * message. */
static int finish(job *j, const progress *p) {
    train_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (p->tty) fprintf(stderr, "\n");
    if (!j->lead) return 0;
    cli_train_rate(p->n_tok, j->r.np, grok_now() - p->t0, grok_cpu_now() - p->c0);
    if (grok_train_lora_save(a->out, j->lora, a->init, NULL, err, sizeof err)) {
        cli_error("train", "%s", err);
        return 1;
    }
    fprintf(stderr, "grok train: wrote %s after %" PRId64 " steps (%.1f s)\n", a->out, j->st.step,
            grok_now() - p->t0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr,
            "grok train: peak RSS %.1f MB (base file %.1f MB, mapped; adapters with AdamW %.1f MB; "
            "trainer %.1f "
            "MB)\n",
            (double)ru.ru_maxrss / 1024.0 * 1.048576,
            (double)grok_gguf_file_size(grok_model_gguf(j->base)) / 1e6,
            (double)j->lora->p->n_params * 16 / 1e6, (double)grok_qlora_bytes(j->r.q) / 1e6);
    return 0;
}

/* The steps from the loaded (or resumed) state to --stop-at, then the
 * adapter. 0, or 1 after a message. */
static int train_steps(job *j) {
    train_args *a = j->a;
    if (j->lead) print_setup(j);
    if (j->lead && a->log_path && train_open_log(a->log_path, j->st.step, &j->logf)) return 1;
    const bool can_eval = a->chat ? j->held.n_ex > 0 : j->held.n_ids > a->seq;
    if (j->st.step == 0 && can_eval) {
        double ev = evaluate(&j->r, &j->held, a->eval_tokens, &j->lcfg);
        if (j->lead)
            fprintf(stderr, "  held-out loss before fine-tuning %.4f (perplexity %.2f)\n", ev, exp(ev));
    }
    progress p = {j->lead && isatty(2), grok_now(), grok_cpu_now(), NAN, 0, j->st.step};
    while (j->st.step < a->stop_at)
        if (train_step(j, &p)) return 1;
    return finish(j, &p);
}

static void job_free(job *j) {
    if (j->logf) fclose(j->logf);
    free(j->ids), free(j->eval_ids), free(j->grad), free(j->r.seqs), free(j->r.bufs);
    grok_qlora_free(j->r.q);
    grok_threadpool_free(j->pool);
    grok_train_optim_free(&j->st);
    grok_train_lora_free(j->lora);
    train_chat_free(&j->chat);
    train_chat_free(&j->chat_eval);
    grok_chat_template_free(&j->tmpl);
    grok_model_free(j->base);
}

int train_lora_run(train_args *a) {
    const int rank = grok_dist_rank(), np = grok_dist_size();
    if (a->batch < np) {
        cli_error("train",
                  "--train-batch %" PRId64 " is smaller than the %d ranks: every rank needs a sequence",
                  a->batch, np);
        return 2;
    }
    job j = {.a = a,
             .r = {a, NULL, {rank, np, comm_allgatherv, comm_alltoallv, NULL}, rank, np, NULL, NULL},
             .lead = rank == 0};
    const int rc = load_base(&j) || load_adapters(&j) ||
                           (a->chat ? read_chat_data(&j) : read_text_data(&j)) || prepare(&j) ||
                           train_steps(&j)
                       ? 1
                       : 0;
    job_free(&j);
    return rc;
}
