/*
 * cmd_imatrix.c - `grok imatrix`: collects an importance matrix over a text
 * the way llama-imatrix does, so the files and the numbers compare: the
 * text is tokenized (BOS where the tokenizer says), cut into chunks of
 * --ctx tokens whose first token becomes BOS, and each chunk runs from an
 * empty cache while the runner's input hook adds every product's squared
 * inputs (src/model/imatrix.c). Files given with --in-file are added first,
 * so runs can be continued and merged, and --show prints what a file holds,
 * including how many tokens each expert of each layer took.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"

typedef struct {
    cli_model_args m;
    const char *text, *out, *show;
    cli_strs in;
    int64_t ctx, chunks;
    int fmt;
    bool process_output, exact;
} imatrix_args;

static const char *const IMATRIX_FORMATS[] = {"gguf", "dat", NULL};
static const cli_opt IMATRIX_OPTS[] = {
    CLI_OPT_STR(imatrix_args, text, "--file", "-f", "TEXT", "the text file", ""),
    CLI_OPT_STR(imatrix_args, out, "--output", "-o", "OUT", "the output file", NULL),
    CLI_OPT_I64(imatrix_args, ctx, "--ctx", "-c", "N", 4, 1 << 20, "chunk length in tokens", NULL),
    CLI_OPT_I64(imatrix_args, chunks, "--chunks", NULL, "N", 0, INT64_MAX, "use at most N chunks; 0 = all",
                NULL),
    CLI_OPT_STRS(imatrix_args, in, "--in-file", NULL, "FILE", "add an existing imatrix (GGUF or .dat) first"),
    CLI_OPT_FLAG(imatrix_args, process_output, "--process-output", NULL,
                 "also collect the output head's inputs (llama.cpp's flag)"),
    CLI_OPT_FLAG(imatrix_args, exact, "--exact", NULL,
                 "f32 activations in every product (the EXACT kernels); the default FAST kernels' 8-bit "
                 "activations move the sums by ~0.1 % and can flip near-tied routing choices"),
    CLI_OPT_ENUM(imatrix_args, fmt, "--output-format", NULL, IMATRIX_FORMATS, "the output's format",
                 "from OUT's name"),
    CLI_OPT_STR(imatrix_args, show, "--show", NULL, "FILE",
                "print each tensor's row counts and mean squared input", ""),
};
static const char *const IMATRIX_MODEL_OMIT[] = {"--lora", "--lora-scale", "--batch", "--kv-type", NULL};

/* One line per chunk: a bar when stderr is a terminal, else plain lines. */
static void progress(int64_t done, int64_t total, double elapsed) {
    const double per = elapsed / (double)done, eta = per * (double)(total - done);
    char bar[31];
    const int fill = (int)(30 * done / total);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    const bool tty = isatty(2);
    fprintf(stderr, "%simatrix: [%s] chunk %" PRId64 "/%" PRId64 ", %.2f s/chunk, ETA %.0f s%s",
            tty ? "\r" : "", bar, done, total, per, eta, tty && done < total ? "" : "\n");
    fflush(stderr);
}

static int show(const char *path, int64_t ctx) {
    char err[GROK_ERR_SIZE];
    grok_imatrix *im = grok_imatrix_create(ctx);
    if (!im || grok_imatrix_load(im, path, err, sizeof err)) {
        cli_error("imatrix", "%s", im ? err : "out of memory");
        grok_imatrix_free(im);
        return 1;
    }
    printf("%s: %" PRId64 " tensors, %" PRId64 " chunks of %" PRId64 " tokens\n", path,
           grok_imatrix_n_entries(im), grok_imatrix_chunk_count(im), grok_imatrix_chunk_size(im));
    printf("%-36s %8s %12s %12s %12s  %s\n", "tensor", "columns", "mean", "min", "max", "rows (per expert)");
    float *w = NULL;
    for (int64_t i = 0; i < grok_imatrix_n_entries(im); i++) {
        const char *name;
        int64_t nc, nm, ncnt;
        const int64_t *cnt;
        grok_imatrix_entry(im, i, &name, &nc, &nm, &cnt, &ncnt);
        float *nw = realloc(w, (size_t)nc * sizeof *nw);
        if (!nw) break;
        w = nw;
        double sum = 0, mn = INFINITY, mx = 0;
        int64_t seen = 0;
        for (int64_t e = 0; e < nm; e++) {
            int64_t c;
            grok_imatrix_weights(im, name, nm > 1 ? e : -1, nc, w, &c);
            if (c == 0) continue;
            seen++;
            for (int64_t j = 0; j < nc; j++) sum += w[j], mn = fmin(mn, w[j]), mx = fmax(mx, w[j]);
        }
        printf("%-36s %8" PRId64 " %12.5g %12.5g %12.5g  ", name, nc, seen ? sum / (double)(seen * nc) : 0.0,
               seen ? mn : 0.0, mx);
        for (int64_t e = 0; e < ncnt; e++) printf("%s%" PRId64, e ? " " : "", cnt[e]);
        printf("\n");
    }
    free(w);
    grok_imatrix_free(im);
    return 0;
}

typedef struct {
    grok_imatrix *im;
    bool process_output;
} collect;

/* llama-imatrix leaves the output head out unless asked (the largest
 * matrix, and the one quantizers keep at high precision anyway). */
static void on_input(void *ud, const grok_matmul_input *in) {
    const collect *c = ud;
    if (in->layer >= 0 || c->process_output) grok_imatrix_hook(c->im, in);
}

/* The command line into a, and --output-format's name into *fmt (NULL:
 * from OUT's name); -1 to go on, else the exit status. */
static int imatrix_parse(int argc, char **argv, imatrix_args *a, const char **fmt) {
    cli_model_args_init(&a->m);
    cli_cmd cmd = {.name = "imatrix",
                   .usage =
                       "-m MODEL -f TEXT [-o imatrix.gguf] [options]\n"
                       "       grok imatrix --in-file A [--in-file B ...] -o OUT     (merge, convert)\n"
                       "       grok imatrix --show FILE                              (what a file holds)",
                   .about = "Collects the mean squared input of every weight matrix's columns, per expert\n"
                            "for the expert tensors (llama-imatrix's importance matrix), for grok quantize\n"
                            "--imatrix. Writes llama.cpp's imatrix GGUF, or its legacy format when OUT ends\n"
                            "in .dat; reads both.",
                   .memory = true};
    CLI_ADD_TABLE(&cmd, "Text and output", IMATRIX_OPTS, a);
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a->m, IMATRIX_MODEL_OMIT);
    int rc = cli_parse(&cmd, argc, argv);
    *fmt = cli_seen(&cmd, "--output-format") ? IMATRIX_FORMATS[a->fmt] : NULL;
    return rc;
}

/* An imatrix run: what it holds, freed by imatrix_free. */
typedef struct {
    const imatrix_args *a;
    grok_imatrix *im;
    char *text;
    size_t text_len;
    grok_model *m;
    const grok_tokenizer *tk;
    int32_t *toks; /* [n_chunks][ctx] */
    size_t n_tok;
    int64_t n_chunks;
    grok_threadpool *pool;
    grok_context *c;
    float *lg; /* [ctx][V]: with --process-output the head runs, and writes here */
    collect col;
} imatrix_job;

/* The sums to add to, with the --in-file ones. 0, or 1 after a message. */
static int imatrix_start(imatrix_job *j) {
    const imatrix_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (!(j->im = grok_imatrix_create(a->ctx))) {
        cli_error("imatrix", "out of memory");
        return 1;
    }
    for (size_t i = 0; i < a->in.n; i++)
        if (grok_imatrix_load(j->im, a->in.v[i], err, sizeof err)) {
            cli_error("imatrix", "%s", err);
            return 1;
        }
    return 0;
}

/* The text's chunks, the model and a context that feeds every product's
 * input to the sums. 0, or 1 after a message. */
static int imatrix_prepare(imatrix_job *j) {
    const imatrix_args *a = j->a;
    const int64_t ctx = a->ctx;
    char err[GROK_ERR_SIZE];
    if (!(j->text = grok_read_file(a->text, &j->text_len, err, sizeof err)) ||
        !(j->m = grok_model_load(a->m.model, err, sizeof err))) {
        cli_error("imatrix", "%s", err);
        return 1;
    }
    if (!(j->tk = grok_model_tokenizer(j->m))) {
        cli_error("imatrix", "%s: the model carries no tokenizer", a->m.model);
        return 1;
    }
    if (!(j->toks = cli_text_chunks("imatrix", j->tk, j->text, j->text_len, a->text, ctx, a->chunks,
                                    &j->n_tok, &j->n_chunks)))
        return 1;
    j->pool = grok_threadpool_create((int)a->m.threads);
    grok_context_params cp = cli_chunk_params(j->pool, ctx);
    j->c = j->pool ? grok_context_create(j->m, &cp, err, sizeof err) : NULL;
    const int64_t V = grok_model_hparams(j->m)->n_vocab;
    if (a->process_output) j->lg = malloc((size_t)ctx * (size_t)V * sizeof(float));
    if (!j->c || (a->process_output && !j->lg)) {
        cli_error("imatrix", "%s", !j->c ? err : "out of memory");
        return 1;
    }
    if (grok_imatrix_add_dataset(j->im, a->text)) {
        cli_error("imatrix", "out of memory");
        return 1;
    }
    j->col = (collect){j->im, a->process_output};
    grok_runner_set_input_hook(grok_context_runner(j->c), on_input, &j->col);
    if (a->exact) grok_runner_set_kernel_mode(grok_context_runner(j->c), GROK_KERNELS_EXACT);
    return 0;
}

/* Every chunk through the model, its inputs summed. 0, or 1 after a
 * message. */
static int imatrix_collect(imatrix_job *j) {
    const int64_t ctx = j->a->ctx;
    char err[GROK_ERR_SIZE];
    const int32_t bos = grok_tokenizer_bos(j->tk);
    fprintf(stderr, "imatrix: %zu tokens, %" PRId64 " chunks of %" PRId64 "\n", j->n_tok, j->n_chunks, ctx);
    const double t0 = grok_now();
    for (int64_t ch = 0; ch < j->n_chunks; ch++) {
        int32_t *chunk = j->toks + ch * ctx;
        if (bos >= 0 && grok_tokenizer_add_bos(j->tk)) chunk[0] = bos;
        grok_context_truncate(j->c, 0);
        if (grok_decode(j->c, chunk, ctx, j->lg, err, sizeof err)) {
            cli_error("imatrix", "chunk %" PRId64 ": %s", ch + 1, err);
            return 1;
        }
        if (grok_imatrix_error(j->im)) {
            cli_error("imatrix", "%s: chunk %" PRId64 ": %s", j->a->m.model, ch + 1,
                      grok_imatrix_error(j->im));
            return 1;
        }
        grok_imatrix_add_chunks(j->im, 1);
        progress(ch + 1, j->n_chunks, grok_now() - t0);
    }
    return 0;
}

static int imatrix_save(imatrix_job *j, const char *fmt) {
    char err[GROK_ERR_SIZE];
    if (grok_imatrix_save(j->im, j->a->out, fmt && strcmp(fmt, "dat") == 0, err, sizeof err)) {
        cli_error("imatrix", "%s", err);
        return 1;
    }
    fprintf(stderr, "imatrix: wrote %s (%" PRId64 " tensors, %" PRId64 " chunks)\n", j->a->out,
            grok_imatrix_n_entries(j->im), grok_imatrix_chunk_count(j->im));
    return 0;
}

int cmd_imatrix(int argc, char **argv) {
    imatrix_args a = {.out = "imatrix.gguf", .ctx = 512};
    const char *fmt;
    int rc = imatrix_parse(argc, argv, &a, &fmt);
    if (rc >= 0) return rc;
    if (a.show) return show(a.show, a.ctx);
    if (!a.m.model != !a.text || (!a.m.model && a.in.n == 0)) {
        cli_error("imatrix",
                  "give -m MODEL with -f TEXT, or --in-file files to merge (see grok imatrix --help)");
        return 2;
    }
    imatrix_job j = {.a = &a};
    rc = imatrix_start(&j) || (a.m.model && (imatrix_prepare(&j) || imatrix_collect(&j))) ||
                 imatrix_save(&j, fmt)
             ? 1
             : 0;
    free(j.lg), free(j.toks), free(j.text);
    grok_context_free(j.c);
    grok_threadpool_free(j.pool);
    grok_model_free(j.m);
    grok_imatrix_free(j.im);
    return rc;
}
