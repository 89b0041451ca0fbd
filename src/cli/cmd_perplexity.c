/*
 * cmd_perplexity.c - `grok perplexity`: the model's perplexity on a text,
 * with llama.cpp's definition so figures compare: the text is tokenized
 * (BOS added where the tokenizer says), cut into non-overlapping chunks of
 * ctx tokens whose first token is replaced by BOS, each chunk is run from
 * an empty cache, and only the second half of each chunk is scored (every
 * scored token has at least ctx/2 tokens of context): position j predicts
 * token j+1 for j in [ctx/2, ctx-1). ppl = exp(mean negative log-likelihood).
 *
 * With --kl-base BASE, the same chunks also run through BASE (e.g. the f32
 * or f16 original of a quantized model) and the command reports the mean
 * KL divergence KL(base || model) over the scored positions and how often
 * both pick the same top token: the usual quality measures of a
 * quantization.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"

typedef struct {
    cli_model_args m;
    const char *text, *kl_base;
    int64_t ctx, chunks;
    bool json, sim;
} ppl_args;

static const cli_opt PPL_OPTS[] = {
    CLI_OPT_STR(ppl_args, text, "--file", "-f", "TEXT", "the text file", ""),
    CLI_OPT_I64(ppl_args, ctx, "--ctx", "-c", "N", 4, 1 << 20, "chunk length in tokens", NULL),
    CLI_OPT_I64(ppl_args, chunks, "--chunks", NULL, "N", 0, INT64_MAX, "use at most N chunks; 0 = all", NULL),
    CLI_OPT_STR(ppl_args, kl_base, "--kl-base", NULL, "BASE",
                "also report KL(BASE || MODEL) and top-1 agreement", ""),
    CLI_OPT_FLAG(ppl_args, json, "--json", NULL, "print one JSON object"),
    CLI_OPT_FLAG(ppl_args, sim, "--cache-sim", NULL,
                 "record which experts each token's routers chose and replay that through expert caches of "
                 "several sizes and policies (hit rates for choosing --cache-policy; docs/memory.md)"),
};
static const char *const PPL_MODEL_OMIT[] = {"--batch", "--kv-type", NULL};

/* log-softmax value of logits[tok], in double. */
static double log_prob(const float *lg, int64_t V, int32_t tok) {
    double mx = lg[0];
    for (int64_t i = 1; i < V; i++) mx = fmax(mx, lg[i]);
    double s = 0;
    for (int64_t i = 0; i < V; i++) s += exp(lg[i] - mx);
    return lg[tok] - mx - log(s);
}

static double kl_div(const float *base, const float *lg, int64_t V) {
    double mb = base[0], mm = lg[0];
    for (int64_t i = 1; i < V; i++) mb = fmax(mb, base[i]), mm = fmax(mm, lg[i]);
    double sb = 0, sm = 0;
    for (int64_t i = 0; i < V; i++) sb += exp(base[i] - mb), sm += exp(lg[i] - mm);
    double lsb = log(sb), lsm = log(sm), kl = 0;
    for (int64_t i = 0; i < V; i++) {
        double lpb = base[i] - mb - lsb, lpm = lg[i] - mm - lsm;
        kl += exp(lpb) * (lpb - lpm);
    }
    return kl;
}

static int64_t argmax(const float *x, int64_t V) {
    int64_t b = 0;
    for (int64_t i = 1; i < V; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* A perplexity run: what it holds (freed by ppl_free) and the sums over
 * the scored positions so far. */
typedef struct {
    const ppl_args *a;
    char *text;
    size_t text_len;
    grok_model *m, *base;
    const grok_tokenizer *tk;
    int64_t V;
    int32_t *toks; /* [n_chunks][ctx] */
    size_t n_tok;
    int64_t n_chunks;
    grok_threadpool *pool;
    grok_context *c, *cb;
    float *lg, *lgb; /* [ctx][V] logits of the model and of --kl-base */
    double nll, nll_b, kl;
    int64_t count, agree;
} ppl_job;

/* The command line into a; -1 to go on, else the exit status. */
static int ppl_parse(int argc, char **argv, ppl_args *a) {
    cli_model_args_init(&a->m);
    cli_cmd cmd = {.name = "perplexity",
                   .usage = "-m MODEL -f TEXT [options]",
                   .about = "Perplexity over non-overlapping chunks of --ctx tokens, scoring the second\n"
                            "half of each chunk (llama.cpp's definition).",
                   .memory = true};
    CLI_ADD_TABLE(&cmd, "Text and measures", PPL_OPTS, a);
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a->m, PPL_MODEL_OMIT);
    return cli_parse(&cmd, argc, argv);
}

/* The text, the model and --kl-base with the same vocabulary. 0, or 1
 * after a message. */
static int ppl_load(ppl_job *j) {
    const ppl_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (!(j->text = grok_read_file(a->text, &j->text_len, err, sizeof err))) {
        cli_error("perplexity", "%s", err);
        return 1;
    }
    if (!(j->m = cli_load_model("perplexity", a->m.model, a->m.lora, a->m.lora_scale))) return 1;
    if (!(j->tk = grok_model_tokenizer(j->m))) {
        cli_error("perplexity", "%s: the model carries no tokenizer", a->m.model);
        return 1;
    }
    j->V = grok_model_hparams(j->m)->n_vocab;
    if (a->sim) grok_model_trace_routing(j->m, true);
    if (!a->kl_base) return 0;
    if (!(j->base = grok_model_load(a->kl_base, err, sizeof err))) {
        cli_error("perplexity", "%s", err);
        return 1;
    }
    if (grok_model_hparams(j->base)->n_vocab != j->V) {
        cli_error("perplexity", "%s: vocabulary of %" PRId64 " tokens, %s has %" PRId64, a->kl_base,
                  grok_model_hparams(j->base)->n_vocab, a->m.model, j->V);
        return 1;
    }
    return 0;
}

/* The text's chunks, and a context and logits for each model. 0, or 1
 * after a message. */
static int ppl_prepare(ppl_job *j) {
    const ppl_args *a = j->a;
    const int64_t ctx = a->ctx;
    char err[GROK_ERR_SIZE];
    if (!(j->toks = cli_text_chunks("perplexity", j->tk, j->text, j->text_len, a->text, ctx, a->chunks,
                                    &j->n_tok, &j->n_chunks)))
        return 1;
    j->pool = grok_threadpool_create((int)a->m.threads);
    grok_context_params cp = cli_chunk_params(j->pool, ctx);
    j->c = j->pool ? grok_context_create(j->m, &cp, err, sizeof err) : NULL;
    if (j->c && j->base) j->cb = grok_context_create(j->base, &cp, err, sizeof err);
    j->lg = malloc((size_t)ctx * (size_t)j->V * sizeof(float));
    if (j->base) j->lgb = malloc((size_t)ctx * (size_t)j->V * sizeof(float));
    if (!j->c || (j->base && !j->cb) || !j->lg || (j->base && !j->lgb)) {
        cli_error("perplexity", "%s", !j->c || (j->base && !j->cb) ? err : "out of memory");
        return 1;
    }
    return 0;
}

/* Chunk ch through the model (and the base), its second half scored. 0,
 * or 1 after a message. */
static int ppl_chunk(ppl_job *j, int64_t ch) {
    const int64_t ctx = j->a->ctx, V = j->V;
    char err[GROK_ERR_SIZE];
    const int32_t bos = grok_tokenizer_bos(j->tk);
    int32_t *chunk = j->toks + ch * ctx;
    int32_t saved = chunk[0];
    if (bos >= 0 && grok_tokenizer_add_bos(j->tk)) chunk[0] = bos;
    grok_context_truncate(j->c, 0);
    int e = grok_decode(j->c, chunk, ctx, j->lg, err, sizeof err);
    if (!e && j->base) {
        grok_context_truncate(j->cb, 0);
        e = grok_decode(j->cb, chunk, ctx, j->lgb, err, sizeof err);
    }
    chunk[0] = saved;
    if (e) {
        cli_error("perplexity", "%s", err);
        return 1;
    }
    const float *lg = j->lg, *lgb = j->lgb;
    for (int64_t i = ctx / 2; i < ctx - 1; i++) {
        const int32_t next = chunk[i + 1];
        j->nll -= log_prob(lg + i * V, V, next);
        if (j->base) {
            j->nll_b -= log_prob(lgb + i * V, V, next);
            j->kl += kl_div(lgb + i * V, lg + i * V, V);
            j->agree += argmax(lgb + i * V, V) == argmax(lg + i * V, V);
        }
        j->count++;
    }
    return 0;
}

static void ppl_report(const ppl_job *j) {
    const ppl_args *a = j->a;
    const double n = (double)j->count, ppl = exp(j->nll / n);
    if (a->json) {
        printf("{\"chunks\": %" PRId64 ", \"ctx\": %" PRId64 ", \"scored\": %" PRId64
               ", \"perplexity\": %.6f",
               j->n_chunks, a->ctx, j->count, ppl);
        if (j->base)
            printf(", \"base_perplexity\": %.6f, \"kl_mean\": %.6g, \"top1_agree\": %.6f", exp(j->nll_b / n),
                   j->kl / n, (double)j->agree / n);
        cli_print_memory_json(stdout, j->m, j->count);
        if (a->sim) cli_print_cache_sim(stdout, j->m, true);
        printf("}\n");
    } else {
        printf("perplexity %.4f over %" PRId64 " chunks of %" PRId64 " tokens (%" PRId64 " scored)\n", ppl,
               j->n_chunks, a->ctx, j->count);
        if (j->base)
            printf("base perplexity %.4f; KL(base || model) mean %.6g; top-1 agreement %.2f %%\n",
                   exp(j->nll_b / n), j->kl / n, 100.0 * (double)j->agree / n);
        if (a->sim) cli_print_cache_sim(stdout, j->m, false);
    }
}

/* Every chunk scored, with a progress line each, then the result. 0, or 1
 * after a message. */
static int ppl_run(ppl_job *j) {
    if (ppl_load(j) || ppl_prepare(j)) return 1;
    const double t0 = grok_now();
    for (int64_t ch = 0; ch < j->n_chunks; ch++) {
        if (ppl_chunk(j, ch)) return 1;
        if (!j->a->json)
            fprintf(stderr, "[%" PRId64 "/%" PRId64 "] ppl %.4f (%.1f s)\n", ch + 1, j->n_chunks,
                    exp(j->nll / (double)j->count), grok_now() - t0);
    }
    ppl_report(j);
    return 0;
}

int cmd_perplexity(int argc, char **argv) {
    ppl_args a = {.ctx = 512};
    int rc = ppl_parse(argc, argv, &a);
    if (rc >= 0) return rc;
    if (!a.m.model || !a.text) {
        cli_error("perplexity", "-m MODEL and -f TEXT are required (see grok perplexity --help)");
        return 2;
    }
    ppl_job j = {.a = &a};
    rc = ppl_run(&j);
    free(j.lg), free(j.lgb), free(j.toks), free(j.text);
    grok_context_free(j.c);
    grok_context_free(j.cb);
    grok_threadpool_free(j.pool);
    grok_model_free(j.m);
    grok_model_free(j.base);
    return rc;
}
