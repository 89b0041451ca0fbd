/*
 * cmd_trace.c - `grok trace`: runs a text through the model with the
 * routing hook attached and reports what the router did (trace_stats.c):
 * a table on stdout, the whole record as JSON (-o), pictures (--svg,
 * --png; trace_draw.c). A text longer than the context is read in
 * consecutive windows of the context's length, each from an empty cache;
 * with -n the model also continues the text greedily and its own tokens
 * are traced too (the order an expert cache would see while generating).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "cli/trace.h"
#include "server/server.h"

typedef struct {
    cli_model_args m;
    const char *prompt, *prompt_file, *ids, *json, *svg, *png;
    int64_t n_gen, rows;
    bool quiet;
} trace_args;

static const cli_opt TRACE_OPTS[] = {
    CLI_OPT_STR(trace_args, m.model, "--model", "-m", "FILE", "the model (GGUF)",
                "the bundled models/grok-mini.gguf"),
    CLI_OPT_STR(trace_args, prompt, "--prompt", "-p", "TEXT", "the text", ""),
    CLI_OPT_STR(trace_args, prompt_file, "--file", "-f", "FILE", "read the text from FILE", ""),
    CLI_OPT_STR(trace_args, ids, "--ids", NULL, "1,2,3", "token ids instead of a text (no BOS added)", ""),
    CLI_OPT_I64(trace_args, n_gen, "--n-predict", "-n", "N", 0, 1 << 20,
                "also generate N tokens greedily and trace them", NULL),
    CLI_OPT_STR(trace_args, json, "--output", "-o", "FILE",
                "write the whole record and its statistics as JSON", ""),
    CLI_OPT_STR(trace_args, svg, "--svg", NULL, "FILE",
                "picture: token x layer heatmap of the experts, usage bars, cache", ""),
    CLI_OPT_STR(trace_args, png, "--png", NULL, "FILE", "the same picture as PNG", ""),
    CLI_OPT_I64(trace_args, rows, "--rows", NULL, "N", 1, 1 << 16, "tokens drawn in the heatmap at most",
                NULL),
    CLI_OPT_FLAG(trace_args, quiet, "--quiet", "-q", "no table on stdout"),
};
static const char *const TRACE_MODEL_OMIT[] = {"--lora", "--lora-scale", "--kv-type", NULL};

/* Writes the JSON under a temporary name, renamed when complete. */
static int write_json(const char *path, const grok_trace *t, const grok_trace_stats *s, const char *model) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid()) >= (int)sizeof tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int rc = grok_trace_write_json(f, t, s, model);
    if (fclose(f) != 0) rc = -1;
    if (rc == 0 && rename(tmp, path) != 0) rc = -1;
    if (rc) unlink(tmp);
    return rc;
}

int cmd_trace(int argc, char **argv) {
    trace_args a = {.rows = 200};
    cli_model_args_init(&a.m);
    char notes[256];
    snprintf(notes, sizeof notes, "pictures: %s",
             grok_trace_can_draw()
                 ? grok_trace_draw_backend()
                 : "not in this build (it needs cairo: apt-get install libcairo2-dev,\nthen rebuild)");
    cli_cmd cmd = {.name = "trace",
                   .usage = "[-m MODEL] (-p TEXT | -f FILE | --ids IDS) [options]",
                   .about =
                       "What the MoE router does with every token: per token and layer the router's\n"
                       "probabilities, chosen experts and gates, entropy and top-2 margin; per layer\n"
                       "each expert's share, load imbalance, co-activation, reuse by consecutive tokens\n"
                       "and the hit rate of an expert cache of k experts (LRU and optimal). A table\n"
                       "goes to stdout. A text longer than --ctx is read in windows of --ctx tokens.",
                   .notes = notes,
                   .memory = true};
    cli_add_group(&cmd, "Text and outputs", TRACE_OPTS, sizeof TRACE_OPTS / sizeof TRACE_OPTS[0], &a, NULL);
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a.m, TRACE_MODEL_OMIT);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *model_path = a.m.model, *prompt = a.prompt, *prompt_file = a.prompt_file, *json = a.json,
               *svg = a.svg, *png = a.png, *ids_arg = a.ids;
    const int64_t n_gen = a.n_gen, threads = a.m.threads, ctx = a.m.ctx, batch = a.m.batch, rows = a.rows;
    const bool quiet = a.quiet;
    char default_model[4096];
    if (!model_path && cli_default_model(default_model, sizeof default_model)) model_path = default_model;
    if (!model_path) {
        cli_error("trace", "-m MODEL is required (no bundled models/grok-mini.gguf found)");
        return 2;
    }
    if ((prompt != NULL) + (prompt_file != NULL) + (ids_arg != NULL) != 1) {
        cli_error("trace", "give the text with exactly one of -p TEXT, -f FILE or --ids IDS");
        return 2;
    }
    char err[GROK_ERR_SIZE];
    int32_t *given = NULL;
    size_t n_given = 0;
    if (ids_arg && !cli_parse_ids(ids_arg, &given, &n_given, err, sizeof err)) {
        cli_error("trace", "--ids: %s", err);
        return 2;
    }
    size_t text_len = 0;
    char *file_text = NULL;
    if (prompt_file) {
        if (!(file_text = grok_read_file(prompt_file, &text_len, err, sizeof err))) {
            cli_error("trace", "-f: %s", err);
            return 1;
        }
        prompt = file_text;
    } else if (prompt) {
        text_len = strlen(prompt);
    }
    int rc = 1;
    grok_context *c = NULL;
    grok_trace t = {0};
    grok_trace_stats st = {0};
    int32_t *ids = NULL;
    grok_model *m = grok_model_load(model_path, err, sizeof err);
    if (!m) {
        cli_error("trace", "%s", err);
        goto done;
    }
    const grok_tokenizer *tok = grok_model_tokenizer(m);
    const grok_hparams *hp = grok_model_hparams(m);
    if (!tok) { /* labels and texts need a vocabulary */
        cli_error("trace", "%s has no vocabulary (tokenizer.ggml.*): a text needs one", model_path);
        goto done;
    }
    size_t n_text = n_given;
    if (given) {
        ids = given, given = NULL;
        for (size_t i = 0; i < n_text; i++)
            if (ids[i] < 0 || ids[i] >= hp->n_vocab) {
                cli_error("trace", "--ids: entry %zu is %d, outside the vocabulary [0, %" PRId64 ")", i,
                          (int)ids[i], hp->n_vocab);
                rc = 2;
                goto done;
            }
    } else {
        ids = grok_tokenize(tok, prompt, text_len, true, &n_text);
    }
    if (!ids) {
        cli_error("trace", "out of memory tokenizing the text");
        goto done;
    }
    if (n_text == 0) {
        cli_error("trace", "the text is empty: there is nothing to trace");
        goto done;
    }
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = ctx > 0 ? ctx : hp->n_ctx_train;
    cp.n_threads = (int)threads;
    cp.n_batch = batch;
    if (!(c = grok_context_create(m, &cp, err, sizeof err))) {
        cli_error("trace", "%s", err);
        goto done;
    }
    const int64_t W = grok_context_n_ctx(c), n_all = (int64_t)n_text + n_gen;
    if (grok_trace_init(&t, hp, n_all)) {
        cli_error("trace", "out of memory for the routing of %" PRId64 " tokens", n_all);
        goto done;
    }
    int32_t *all = realloc(ids, (size_t)n_all * sizeof *ids);
    if (!all) {
        cli_error("trace", "out of memory");
        goto done;
    }
    ids = all;
    grok_context_set_routing_hook(c, grok_trace_hook, &t);
    int64_t windows = 0;
    for (int64_t at = 0; at < (int64_t)n_text; windows++) { /* the text, window by window */
        const int64_t n = (int64_t)n_text - at < W ? (int64_t)n_text - at : W;
        grok_context_truncate(c, 0);
        t.base = at;
        if (grok_decode(c, ids + at, n, NULL, err, sizeof err)) {
            cli_error("trace", "%s", err);
            goto done;
        }
        at += n;
    }
    const int32_t eos = grok_tokenizer_eos(tok);
    int64_t n_done = (int64_t)n_text;
    for (int64_t g = 0; g < n_gen; g++) { /* greedy continuation, each token fed back and traced */
        const float *lg = grok_context_logits(c);
        int32_t best = 0;
        for (int64_t v = 1; v < hp->n_vocab; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        if (best == eos) break;
        if (grok_context_pos(c) >= W) { /* the window is full: go on in a fresh one from this token */
            grok_context_truncate(c, 0);
            t.base = n_done;
            windows++;
        }
        ids[n_done] = best;
        if (grok_decode(c, &best, 1, NULL, err, sizeof err)) {
            cli_error("trace", "%s", err);
            goto done;
        }
        n_done++;
    }
    t.n_tok = n_done;
    for (int64_t i = 0; i < n_done; i++) {
        char label[GROK_DETOK_MAX_PIECE * 3 + 16];
        token_display_text(tok, ids[i], label, sizeof label); /* as logprobs show it */
        if (!grok_trace_set_token(&t, i, ids[i], label)) {
            cli_error("trace", "out of memory");
            goto done;
        }
        for (int64_t l = 0; l < t.L; l++)
            if (!t.seen[i * t.L + l]) {
                cli_error("trace",
                          "token %" PRId64 " layer %" PRId64 " was not routed (a distributed model?)", i, l);
                goto done;
            }
    }
    if (grok_trace_stats_compute(&st, &t)) {
        cli_error("trace", "out of memory for the statistics");
        goto done;
    }
    if (windows > 1)
        fprintf(stderr, "grok trace: %" PRId64 " tokens read in %" PRId64 " windows of %" PRId64 " tokens\n",
                n_done, windows, W);
    if (!quiet) grok_trace_print_summary(stdout, &t, &st);
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    if (json && write_json(json, &t, &st, base)) {
        cli_error("trace", "-o %s: cannot write the file", json);
        goto done;
    }
    rc = 0;
    char title[512];
    snprintf(title, sizeof title, "%.400s: %" PRId64 " tokens", base, n_done); /* a title, cut if need be */
    const char *pics[2] = {svg, png};
    for (int k = 0; k < 2; k++) {
        if (!pics[k]) continue;
        if (grok_trace_draw(pics[k], k == 1, &t, &st, title, rows, err, sizeof err)) {
            cli_error("trace", "%s %s: %s", k ? "--png" : "--svg", pics[k], err);
            rc = 1;
        }
    }
done:
    free(given);
    grok_trace_stats_free(&st);
    grok_trace_free(&t);
    free(ids);
    grok_context_free(c);
    grok_model_free(m);
    free(file_text);
    return rc;
}
