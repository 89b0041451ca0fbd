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

/* A trace run: what it holds (freed by trace_free) and how far it got. */
typedef struct {
    const trace_args *a;
    const char *model_path;
    char default_model[4096];
    const char *text; /* -p's or -f's */
    size_t text_len;
    char *file_text;
    int32_t *ids; /* --ids or the text's tokens, then the generated ones */
    size_t n_text;
    grok_model *m;
    const grok_tokenizer *tok;
    const grok_hparams *hp;
    grok_context *c;
    grok_trace t;
    grok_trace_stats st;
    int64_t W, windows, n_done; /* the window's length, how many were read, the tokens traced */
} trace_job;

/* The command line into a; -1 to go on, else the exit status. */
static int trace_parse(int argc, char **argv, trace_args *a) {
    cli_model_args_init(&a->m);
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
    CLI_ADD_TABLE(&cmd, "Text and outputs", TRACE_OPTS, a);
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a->m, TRACE_MODEL_OMIT);
    return cli_parse(&cmd, argc, argv);
}

/* The model (or the bundled one), exactly one text and --ids' numbers; 0,
 * or 2 after a message. */
static int trace_validate(trace_job *j) {
    const trace_args *a = j->a;
    char err[GROK_ERR_SIZE];
    j->model_path = a->m.model;
    if (!j->model_path && cli_default_model(j->default_model, sizeof j->default_model))
        j->model_path = j->default_model;
    if (!j->model_path) {
        cli_error("trace", "-m MODEL is required (no bundled models/grok-mini.gguf found)");
        return 2;
    }
    if ((a->prompt != NULL) + (a->prompt_file != NULL) + (a->ids != NULL) != 1) {
        cli_error("trace", "give the text with exactly one of -p TEXT, -f FILE or --ids IDS");
        return 2;
    }
    if (a->ids && !cli_parse_ids(a->ids, &j->ids, &j->n_text, err, sizeof err)) {
        cli_error("trace", "--ids: %s", err);
        return 2;
    }
    return 0;
}

/* The model, and the text as tokens (--ids checked against its
 * vocabulary). 0, or 1 or 2 after a message. */
static int trace_load(trace_job *j) {
    const trace_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (a->prompt_file) {
        if (!(j->file_text = grok_read_file(a->prompt_file, &j->text_len, err, sizeof err))) {
            cli_error("trace", "-f: %s", err);
            return 1;
        }
        j->text = j->file_text;
    } else if (a->prompt) {
        j->text = a->prompt, j->text_len = strlen(a->prompt);
    }
    if (!(j->m = grok_model_load(j->model_path, err, sizeof err))) {
        cli_error("trace", "%s", err);
        return 1;
    }
    j->tok = grok_model_tokenizer(j->m);
    j->hp = grok_model_hparams(j->m);
    if (!j->tok) { /* labels and texts need a vocabulary */
        cli_error("trace", "%s has no vocabulary (tokenizer.ggml.*): a text needs one", j->model_path);
        return 1;
    }
    if (a->ids) {
        for (size_t i = 0; i < j->n_text; i++)
            if (j->ids[i] < 0 || j->ids[i] >= j->hp->n_vocab) {
                cli_error("trace", "--ids: entry %zu is %d, outside the vocabulary [0, %" PRId64 ")", i,
                          (int)j->ids[i], j->hp->n_vocab);
                return 2;
            }
    } else {
        j->ids = grok_tokenize(j->tok, j->text, j->text_len, true, &j->n_text);
    }
    if (!j->ids) {
        cli_error("trace", "out of memory tokenizing the text");
        return 1;
    }
    if (j->n_text == 0) {
        cli_error("trace", "the text is empty: there is nothing to trace");
        return 1;
    }
    return 0;
}

/* A context with the routing hook, and room for the routing and the
 * tokens of the text and the generation. 0, or 1 after a message. */
static int trace_prepare(trace_job *j) {
    const trace_args *a = j->a;
    char err[GROK_ERR_SIZE];
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = a->m.ctx > 0 ? a->m.ctx : j->hp->n_ctx_train;
    cp.n_threads = (int)a->m.threads;
    cp.n_batch = a->m.batch;
    if (!(j->c = grok_context_create(j->m, &cp, err, sizeof err))) {
        cli_error("trace", "%s", err);
        return 1;
    }
    j->W = grok_context_n_ctx(j->c);
    const int64_t n_all = (int64_t)j->n_text + a->n_gen;
    if (grok_trace_init(&j->t, j->hp, n_all)) {
        cli_error("trace", "out of memory for the routing of %" PRId64 " tokens", n_all);
        return 1;
    }
    int32_t *all = realloc(j->ids, (size_t)n_all * sizeof *j->ids);
    if (!all) {
        cli_error("trace", "out of memory");
        return 1;
    }
    j->ids = all;
    grok_context_set_routing_hook(j->c, grok_trace_hook, &j->t);
    return 0;
}

/* The text, window by window, then -n tokens of greedy continuation, each
 * fed back and traced. 0, or 1 after a message. */
static int trace_route(trace_job *j) {
    char err[GROK_ERR_SIZE];
    grok_context *c = j->c;
    const int64_t W = j->W, n_text = (int64_t)j->n_text;
    for (int64_t at = 0; at < n_text; j->windows++) {
        const int64_t n = n_text - at < W ? n_text - at : W;
        grok_context_truncate(c, 0);
        j->t.base = at;
        if (grok_decode(c, j->ids + at, n, NULL, err, sizeof err)) {
            cli_error("trace", "%s", err);
            return 1;
        }
        at += n;
    }
    const int32_t eos = grok_tokenizer_eos(j->tok);
    j->n_done = n_text;
    for (int64_t g = 0; g < j->a->n_gen; g++) {
        const float *lg = grok_context_logits(c);
        int32_t best = 0;
        for (int64_t v = 1; v < j->hp->n_vocab; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        if (best == eos) break;
        if (grok_context_pos(c) >= W) { /* the window is full: go on in a fresh one from this token */
            grok_context_truncate(c, 0);
            j->t.base = j->n_done;
            j->windows++;
        }
        j->ids[j->n_done] = best;
        if (grok_decode(c, &best, 1, NULL, err, sizeof err)) {
            cli_error("trace", "%s", err);
            return 1;
        }
        j->n_done++;
    }
    return 0;
}

/* Every traced token's label, each checked to be routed in every layer,
 * and the statistics. 0, or 1 after a message. */
static int trace_finish(trace_job *j) {
    grok_trace *t = &j->t;
    t->n_tok = j->n_done;
    for (int64_t i = 0; i < j->n_done; i++) {
        char label[GROK_DETOK_MAX_PIECE * 3 + 16];
        token_display_text(j->tok, j->ids[i], label, sizeof label); /* as logprobs show it */
        if (!grok_trace_set_token(t, i, j->ids[i], label)) {
            cli_error("trace", "out of memory");
            return 1;
        }
        for (int64_t l = 0; l < t->L; l++)
            if (!t->seen[i * t->L + l]) {
                cli_error("trace",
                          "token %" PRId64 " layer %" PRId64 " was not routed (a distributed model?)", i, l);
                return 1;
            }
    }
    if (grok_trace_stats_compute(&j->st, t)) {
        cli_error("trace", "out of memory for the statistics");
        return 1;
    }
    return 0;
}

/* The table, the JSON and the pictures. The exit status. */
static int trace_report(trace_job *j) {
    const trace_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (j->windows > 1)
        fprintf(stderr, "grok trace: %" PRId64 " tokens read in %" PRId64 " windows of %" PRId64 " tokens\n",
                j->n_done, j->windows, j->W);
    if (!a->quiet) grok_trace_print_summary(stdout, &j->t, &j->st);
    const char *base = strrchr(j->model_path, '/');
    base = base ? base + 1 : j->model_path;
    if (a->json && write_json(a->json, &j->t, &j->st, base)) {
        cli_error("trace", "-o %s: cannot write the file", a->json);
        return 1;
    }
    int rc = 0;
    char title[512];
    snprintf(title, sizeof title, "%.400s: %" PRId64 " tokens", base,
             j->n_done); /* a title, cut if need be */
    const char *pics[2] = {a->svg, a->png};
    for (int k = 0; k < 2; k++) {
        if (!pics[k]) continue;
        if (grok_trace_draw(pics[k], k == 1, &j->t, &j->st, title, a->rows, err, sizeof err)) {
            cli_error("trace", "%s %s: %s", k ? "--png" : "--svg", pics[k], err);
            rc = 1;
        }
    }
    return rc;
}

static void trace_free(trace_job *j) {
    grok_trace_stats_free(&j->st);
    grok_trace_free(&j->t);
    free(j->ids);
    grok_context_free(j->c);
    grok_model_free(j->m);
    free(j->file_text);
}

int cmd_trace(int argc, char **argv) {
    trace_args a = {.rows = 200};
    int rc = trace_parse(argc, argv, &a);
    if (rc >= 0) return rc;
    trace_job j = {.a = &a};
    if (!(rc = trace_validate(&j)) && !(rc = trace_load(&j)))
        rc = trace_prepare(&j) || trace_route(&j) || trace_finish(&j) ? 1 : trace_report(&j);
    trace_free(&j);
    return rc;
}
