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

int cmd_perplexity(int argc, char **argv) {
    ppl_args a = {.ctx = 512};
    cli_model_args_init(&a.m);
    cli_cmd cmd = {.name = "perplexity",
                   .usage = "-m MODEL -f TEXT [options]",
                   .about = "Perplexity over non-overlapping chunks of --ctx tokens, scoring the second\n"
                            "half of each chunk (llama.cpp's definition).",
                   .memory = true};
    cli_add_group(&cmd, "Text and measures", PPL_OPTS, sizeof PPL_OPTS / sizeof PPL_OPTS[0], &a, NULL);
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a.m, PPL_MODEL_OMIT);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *model_path = a.m.model, *text_path = a.text, *base_path = a.kl_base;
    const int64_t ctx = a.ctx, threads = a.m.threads, max_chunks = a.chunks;
    const bool json = a.json, sim = a.sim;
    if (!model_path || !text_path) {
        cli_error("perplexity", "-m MODEL and -f TEXT are required (see grok perplexity --help)");
        return 2;
    }
    char err[GROK_ERR_SIZE];
    size_t text_len;
    char *text = grok_read_file(text_path, &text_len, err, sizeof err);
    if (!text) {
        cli_error("perplexity", "%s", err);
        return 1;
    }
    grok_model *m = cli_load_model("perplexity", model_path, a.m.lora, a.m.lora_scale), *base = NULL;
    grok_context *c = NULL, *cb = NULL;
    grok_threadpool *pool = NULL;
    int32_t *toks = NULL;
    float *lg = NULL, *lgb = NULL;
    int rc = 1;
    if (!m) goto done;
    const grok_tokenizer *tk = grok_model_tokenizer(m);
    if (!tk) {
        cli_error("perplexity", "%s: the model carries no tokenizer", model_path);
        goto done;
    }
    const int64_t V = grok_model_hparams(m)->n_vocab;
    if (sim) grok_model_trace_routing(m, true);
    if (base_path) {
        base = grok_model_load(base_path, err, sizeof err);
        if (!base) {
            cli_error("perplexity", "%s", err);
            goto done;
        }
        if (grok_model_hparams(base)->n_vocab != V) {
            cli_error("perplexity", "%s: vocabulary of %" PRId64 " tokens, %s has %" PRId64, base_path,
                      grok_model_hparams(base)->n_vocab, model_path, V);
            goto done;
        }
    }
    size_t n_tok;
    int64_t n_chunks;
    if (!(toks = cli_text_chunks("perplexity", tk, text, text_len, text_path, ctx, max_chunks, &n_tok,
                                 &n_chunks)))
        goto done;
    pool = grok_threadpool_create((int)threads);
    grok_context_params cp = grok_context_default_params();
    cp.pool = pool;
    cp.n_ctx = ctx;
    cp.n_batch = ctx;
    c = pool ? grok_context_create(m, &cp, err, sizeof err) : NULL;
    if (c && base) cb = grok_context_create(base, &cp, err, sizeof err);
    lg = malloc((size_t)ctx * (size_t)V * sizeof(float));
    if (base) lgb = malloc((size_t)ctx * (size_t)V * sizeof(float));
    if (!c || (base && !cb) || !lg || (base && !lgb)) {
        cli_error("perplexity", "%s", !c || (base && !cb) ? err : "out of memory");
        goto done;
    }
    const int32_t bos = grok_tokenizer_bos(tk);
    double nll = 0, nll_b = 0, kl = 0;
    int64_t count = 0, agree = 0;
    const int64_t first = ctx / 2;
    double t0 = grok_now();
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        int32_t *chunk = toks + ch * ctx;
        int32_t saved = chunk[0];
        if (bos >= 0 && grok_tokenizer_add_bos(tk)) chunk[0] = bos;
        grok_context_truncate(c, 0);
        int e = grok_decode(c, chunk, ctx, lg, err, sizeof err);
        if (!e && base) {
            grok_context_truncate(cb, 0);
            e = grok_decode(cb, chunk, ctx, lgb, err, sizeof err);
        }
        chunk[0] = saved;
        if (e) {
            cli_error("perplexity", "%s", err);
            goto done;
        }
        for (int64_t j = first; j < ctx - 1; j++) {
            const int32_t next = chunk[j + 1];
            nll -= log_prob(lg + j * V, V, next);
            if (base) {
                nll_b -= log_prob(lgb + j * V, V, next);
                kl += kl_div(lgb + j * V, lg + j * V, V);
                agree += argmax(lgb + j * V, V) == argmax(lg + j * V, V);
            }
            count++;
        }
        if (!json)
            fprintf(stderr, "[%" PRId64 "/%" PRId64 "] ppl %.4f (%.1f s)\n", ch + 1, n_chunks,
                    exp(nll / (double)count), grok_now() - t0);
    }
    const double ppl = exp(nll / (double)count);
    if (json) {
        printf("{\"chunks\": %" PRId64 ", \"ctx\": %" PRId64 ", \"scored\": %" PRId64
               ", \"perplexity\": %.6f",
               n_chunks, ctx, count, ppl);
        if (base)
            printf(", \"base_perplexity\": %.6f, \"kl_mean\": %.6g, \"top1_agree\": %.6f",
                   exp(nll_b / (double)count), kl / (double)count, (double)agree / (double)count);
        cli_print_memory_json(stdout, m, count);
        if (sim) cli_print_cache_sim(stdout, m, true);
        printf("}\n");
    } else {
        printf("perplexity %.4f over %" PRId64 " chunks of %" PRId64 " tokens (%" PRId64 " scored)\n", ppl,
               n_chunks, ctx, count);
        if (base)
            printf("base perplexity %.4f; KL(base || model) mean %.6g; top-1 agreement %.2f %%\n",
                   exp(nll_b / (double)count), kl / (double)count, 100.0 * (double)agree / (double)count);
        if (sim) cli_print_cache_sim(stdout, m, false);
    }
    rc = 0;
done:
    free(lg), free(lgb), free(toks), free(text);
    grok_context_free(c);
    grok_context_free(cb);
    grok_threadpool_free(pool);
    grok_model_free(m);
    grok_model_free(base);
    return rc;
}
