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

int train_lora_run(train_args *a) {
    char err[GROK_ERR_SIZE];
    const int rank = grok_dist_rank(), np = grok_dist_size();
    const bool lead = rank == 0;
    int rc = 1;
    grok_model *base = NULL;
    grok_train_lora *lora = NULL;
    grok_train_optim_state st = {0};
    grok_threadpool *pool = NULL;
    grok_chat_template tmpl = {0};
    train_chat_data chat = {0}, chat_eval = {0};
    int32_t *ids = NULL, *eval_ids = NULL;
    float *grad = NULL;
    FILE *logf = NULL;
    char *text = NULL;
    run r = {a, NULL, {rank, np, comm_allgatherv, comm_alltoallv, NULL}, rank, np, NULL, NULL};

    if (a->batch < np) {
        cli_error("train",
                  "--train-batch %" PRId64 " is smaller than the %d ranks: every rank needs a sequence",
                  a->batch, np);
        return 2;
    }
    grok_kernels_set_mode(strcmp(a->kernels, "fast") == 0 ? GROK_KERNELS_FAST : GROK_KERNELS_EXACT);
    base = grok_model_load(a->init, err, sizeof err);
    if (!base) {
        cli_error("train", "--init: %s", err);
        goto done;
    }
    const grok_hparams *hp = grok_model_hparams(base);
    const grok_tokenizer *tok = grok_model_tokenizer(base);
    if (!tok) {
        cli_error("train", "--init: %s carries no vocabulary to tokenize the data with", a->init);
        goto done;
    }
    if (a->seq > hp->n_ctx_train) {
        cli_error("train", "--seq %" PRId64 " exceeds the model's context %" PRId64, a->seq, hp->n_ctx_train);
        goto done;
    }
    if (a->resume) {
        if (grok_train_lora_load(a->resume, hp, &lora, &st, err, sizeof err)) {
            cli_error("train", "--resume: %s", err);
            goto done;
        }
        if (lora->rank != a->lora_rank) {
            cli_error("train", "--resume: %s has rank %" PRId64 ", --lora says %" PRId64, a->resume,
                      lora->rank, a->lora_rank);
            goto done;
        }
    } else {
        lora = grok_train_lora_create(hp, a->lora_rank, a->lora_alpha, a->targets, (uint64_t)a->seed, err,
                                      sizeof err);
        if (!lora || grok_train_optim_alloc(&st, lora->p->n_params)) {
            cli_error("train", "%s", lora ? "out of memory for the optimizer state" : err);
            goto done;
        }
        st.seed = (uint64_t)a->seed;
        st.rng = grok_rng_named((uint64_t)a->seed, GROK_RNG_DATA, 0).s;
    }

    /* data */
    source train = {0}, held = {0};
    if (a->chat) {
        if (grok_chat_template_load(&tmpl, a->chat_template, err, sizeof err)) {
            cli_error("train", "%s", err);
            goto done;
        }
        if (train_read_chat(a->data, a->n_data, &tmpl, tok, a->seq + 1, &chat)) goto done;
        int64_t n_eval = 0;
        if (a->eval_data) {
            if (train_read_chat(&a->eval_data, 1, &tmpl, tok, a->seq + 1, &chat_eval)) goto done;
            held = (source){NULL, 0, chat_eval.ex, chat_eval.n};
        } else {
            n_eval = (int64_t)((double)chat.n * a->holdout);
            if (n_eval == 0 && a->holdout > 0 && chat.n >= 2) n_eval = 1;
            held = (source){NULL, 0, chat.ex + chat.n - n_eval, n_eval};
        }
        train = (source){NULL, 0, chat.ex, chat.n - n_eval};
        if (train.n_ex < 1) {
            cli_error("train", "--data: no conversation left for training after the held-out share");
            goto done;
        }
        if (lead && (chat.n_truncated || chat_eval.n_truncated))
            fprintf(stderr,
                    "grok train: %" PRId64 " conversations longer than --seq %" PRId64 " tokens were cut\n",
                    chat.n_truncated + chat_eval.n_truncated, a->seq);
    } else {
        size_t len, n;
        if (!(text = train_read_text(a->data, a->n_data, &len))) goto done;
        ids = train_tokenize_text(tok, text, len, a->doc_sep, &n);
        free(text);
        text = NULL;
        int64_t n_all = (int64_t)n, n_eval = a->eval_data ? 0 : (int64_t)((double)n_all * a->holdout);
        if (a->eval_data) {
            size_t el, en;
            if (!(text = train_read_text(&a->eval_data, 1, &el))) goto done;
            eval_ids = train_tokenize_text(tok, text, el, a->doc_sep, &en);
            held = (source){eval_ids, (int64_t)en, NULL, 0};
        } else {
            held = (source){ids ? ids + n_all - n_eval : NULL, n_eval, NULL, 0};
        }
        train = (source){ids, n_all - n_eval, NULL, 0};
        if (!ids || train.n_ids < a->seq + 2) {
            cli_error("train", "--data: %" PRId64 " training tokens, fewer than --seq %" PRId64 " + 2",
                      train.n_ids, a->seq);
            goto done;
        }
    }

    pool = grok_threadpool_create((int)a->threads);
    int64_t lo, hi;
    grok_gradsum_share(a->batch, 0, np, &lo, &hi);
    const int64_t local = (a->batch + np - 1) / np;
    r.seqs = calloc((size_t)local, sizeof *r.seqs);
    r.bufs = malloc(sizeof(int32_t) * (size_t)(local * (a->seq + 1)));
    r.q = pool && r.seqs && r.bufs ? grok_qlora_create(base, lora, local * a->seq, a->seq,
                                                       a->lora_dropout > 0, pool, err, sizeof err)
                                   : NULL;
    grad = malloc(sizeof(float) * (size_t)lora->p->n_params);
    if (!r.q || !grad) {
        cli_error("train", "%s", pool && r.seqs && r.bufs && grad ? err : "out of memory");
        goto done;
    }
    const grok_train_loss_cfg lcfg = {a->aux_coef, a->z_coef};
    if (lead) {
        fprintf(stderr,
                "grok train: LoRA rank %" PRId64 ", alpha %g, dropout %g on %" PRId64
                " weights: %.3f M trainable parameters; base %s frozen in its own types (%.1f MB mapped)\n",
                lora->rank, (double)lora->alpha, (double)a->lora_dropout, lora->n_t,
                (double)lora->p->n_params / 1e6, a->init,
                (double)grok_gguf_file_size(grok_model_gguf(base)) / 1e6);
        fprintf(stderr,
                "grok train: %s data, %" PRId64 " training / %" PRId64
                " held-out %s, %d threads x %d rank%s, batch %" PRId64 " x %" PRId64
                ", %s kernels; adapter state %.1f MB, activations %.1f MB\n",
                a->chat ? "chat" : "text", a->chat ? train.n_ex : train.n_ids,
                a->chat ? held.n_ex : held.n_ids, a->chat ? "conversations" : "tokens",
                grok_threadpool_size(pool), np, np > 1 ? "s" : "", a->batch, a->seq,
                grok_kernel_mode_name(grok_kernels_mode()), (double)lora->p->n_params * 16 / 1e6,
                (double)grok_qlora_bytes(r.q) / 1e6);
    }
    if (lead && a->log_path) {
        logf = fopen(a->log_path, st.step > 0 ? "a" : "w");
        if (!logf) {
            cli_error("train", "--log: cannot open %s", a->log_path);
            goto done;
        }
        if (st.step == 0) fprintf(logf, "step,train_loss,eval_loss,lr,aux,z\n");
    }
    const bool can_eval = a->chat ? held.n_ex > 0 : held.n_ids > a->seq;
    /* the sample: the last conversation of --eval-data, else of --data
     * (held out unless --holdout is 0) */
    const train_chat_data *sd = chat_eval.sample_prompt ? &chat_eval : &chat;
    const char *sp = a->chat ? sd->sample_prompt : NULL;
    const size_t sp_len = sd->sample_prompt_len;
    if (st.step == 0 && can_eval) {
        double ev = evaluate(&r, &held, a->eval_tokens, &lcfg);
        if (lead) fprintf(stderr, "  held-out loss before fine-tuning %.4f (perplexity %.2f)\n", ev, exp(ev));
    }
    bool tty = lead && isatty(2);
    double t0 = grok_now(), c0 = grok_cpu_now(), ema = NAN, n_tok_done = 0;
    int64_t step0 = st.step;
    while (st.step < a->stop_at) {
        grok_rng g = {st.rng};
        int64_t n_tok_step = 0;
        grok_gradsum_share(a->batch, rank, np, &lo, &hi);
        for (int64_t b = 0; b < a->batch; b++) {
            uint64_t x = grok_rng_next(&g);
            int64_t off = a->chat ? (int64_t)(x % (uint64_t)train.n_ex)
                                  : (int64_t)(x % (uint64_t)(train.n_ids - a->seq));
            if (b >= lo && b < hi) make_seq(&r, &train, off, b - lo);
            n_tok_step += a->chat ? train.ex[off].n - 1 : a->seq;
        }
        st.rng = g.s;
        grok_qlora_step_cfg c = {lcfg, a->lora_dropout,
                                 grok_rng_named(st.seed, GROK_RNG_DROPOUT, (uint64_t)st.step).s, a->batch,
                                 &r.comm};
        grok_train_losses l;
        const int src = grok_qlora_step(r.q, r.seqs, &c, &l, grad, err, sizeof err);
        if (grok_dist_agree(src == 0, err, sizeof err)) {
            cli_error("train", "step %" PRId64 ": %s", st.step, err);
            goto done;
        }
        const float lr = grok_train_lr_at(&a->opt, st.step);
        const double gnorm = grok_train_adamw_step(lora->p, &st, grad, &a->opt);
        if (!isfinite(l.total) || !isfinite(gnorm)) {
            cli_error("train", "step %" PRId64 ": the loss diverged (%g); try a lower --lr", st.step,
                      l.total);
            goto done;
        }
        n_tok_done += (double)n_tok_step;
        ema = isnan(ema) ? l.ce : 0.95 * ema + 0.05 * l.ce;
        const double el = grok_now() - t0, tps = n_tok_done / el;
        const double eta = el / (double)(st.step - step0) * (double)(a->stop_at - st.step);
        const bool do_eval = st.step % a->eval_every == 0 || st.step == a->stop_at;
        double ev = NAN;
        if (do_eval && can_eval) ev = evaluate(&r, &held, a->eval_tokens, &lcfg);
        if (logf) fprintf(logf, "%" PRId64 ",%.5f,%.5f,%.6g,%.4f,%.4f\n", st.step, l.ce, ev, lr, l.aux, l.z);
        if (tty)
            fprintf(stderr, "\rstep %" PRId64 "/%" PRId64 "  loss %.4f  lr %.2e  %.0f tok/s  ETA %.0fs   ",
                    st.step, a->steps, ema, lr, tps, eta);
        if (lead && (do_eval || (!tty && st.step % 10 == 0)))
            fprintf(stderr,
                    "%sstep %" PRId64 "/%" PRId64 " loss %.4f aux %.3f z %.3f |g| %.3f lr %.2e %.1f tok/s\n",
                    tty ? "\r" : "", st.step, a->steps, l.ce, l.aux, l.z, gnorm, lr, tps);
        if (lead && do_eval && !isnan(ev))
            fprintf(stderr, "  held-out loss %.4f (perplexity %.2f)\n", ev, exp(ev));
        if (lead && do_eval && sp && a->sample_tokens > 0) sample_answer(&r, base, &tmpl, sp, sp_len);
        if (lead && a->ckpt && (st.step % a->ckpt_every == 0 || st.step == a->stop_at) &&
            grok_train_lora_save(a->ckpt, lora, a->init, &st, err, sizeof err)) {
            cli_error("train", "%s", err);
            goto done;
        }
    }
    if (tty) fprintf(stderr, "\n");
    if (lead) cli_train_rate(n_tok_done, np, grok_now() - t0, grok_cpu_now() - c0);
    if (lead) {
        if (grok_train_lora_save(a->out, lora, a->init, NULL, err, sizeof err)) {
            cli_error("train", "%s", err);
            goto done;
        }
        fprintf(stderr, "grok train: wrote %s after %" PRId64 " steps (%.1f s)\n", a->out, st.step,
                grok_now() - t0);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr,
                "grok train: peak RSS %.1f MB (base file %.1f MB, mapped; adapters with AdamW %.1f MB; "
                "trainer %.1f "
                "MB)\n",
                (double)ru.ru_maxrss / 1024.0 * 1.048576,
                (double)grok_gguf_file_size(grok_model_gguf(base)) / 1e6,
                (double)lora->p->n_params * 16 / 1e6, (double)grok_qlora_bytes(r.q) / 1e6);
    }
    rc = 0;
done:
    if (logf) fclose(logf);
    free(text), free(ids), free(eval_ids), free(grad), free(r.seqs), free(r.bufs);
    grok_qlora_free(r.q);
    grok_threadpool_free(pool);
    grok_train_optim_free(&st);
    grok_train_lora_free(lora);
    train_chat_free(&chat);
    train_chat_free(&chat_eval);
    grok_chat_template_free(&tmpl);
    grok_model_free(base);
    return rc;
}
