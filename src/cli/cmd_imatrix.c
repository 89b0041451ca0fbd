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

int cmd_imatrix(int argc, char **argv) {
    imatrix_args a = {.out = "imatrix.gguf", .ctx = 512};
    cli_model_args_init(&a.m);
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
    cli_add_group(&cmd, "Text and output", IMATRIX_OPTS, sizeof IMATRIX_OPTS / sizeof IMATRIX_OPTS[0], &a,
                  NULL);
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a.m, IMATRIX_MODEL_OMIT);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *model_path = a.m.model, *text_path = a.text, *out_path = a.out, *show_path = a.show;
    const char *fmt = cli_seen(&cmd, "--output-format") ? IMATRIX_FORMATS[a.fmt] : NULL;
    const char *const *in_files = a.in.v;
    const int n_in = (int)a.in.n;
    const int64_t ctx = a.ctx, threads = a.m.threads, max_chunks = a.chunks;
    const bool process_output = a.process_output, exact = a.exact;
    if (show_path) return show(show_path, ctx);
    if (!model_path != !text_path || (!model_path && n_in == 0)) {
        cli_error("imatrix",
                  "give -m MODEL with -f TEXT, or --in-file files to merge (see grok imatrix --help)");
        return 2;
    }
    char err[GROK_ERR_SIZE];
    grok_imatrix *im = grok_imatrix_create(ctx);
    grok_model *m = NULL;
    grok_context *c = NULL;
    grok_threadpool *pool = NULL;
    int32_t *toks = NULL;
    float *lg = NULL;
    char *text = NULL;
    int rc = 1;
    if (!im) {
        cli_error("imatrix", "out of memory");
        goto done;
    }
    for (int i = 0; i < n_in; i++)
        if (grok_imatrix_load(im, in_files[i], err, sizeof err)) {
            cli_error("imatrix", "%s", err);
            goto done;
        }
    if (model_path) {
        size_t text_len;
        if (!(text = grok_read_file(text_path, &text_len, err, sizeof err)) ||
            !(m = grok_model_load(model_path, err, sizeof err))) {
            cli_error("imatrix", "%s", err);
            goto done;
        }
        const grok_tokenizer *tk = grok_model_tokenizer(m);
        if (!tk) {
            cli_error("imatrix", "%s: the model carries no tokenizer", model_path);
            goto done;
        }
        size_t n_tok;
        int64_t n_chunks;
        if (!(toks = cli_text_chunks("imatrix", tk, text, text_len, text_path, ctx, max_chunks, &n_tok,
                                     &n_chunks)))
            goto done;
        pool = grok_threadpool_create((int)threads);
        grok_context_params cp = grok_context_default_params();
        cp.pool = pool;
        cp.n_ctx = ctx;
        cp.n_batch = ctx;
        c = pool ? grok_context_create(m, &cp, err, sizeof err) : NULL;
        const int64_t V = grok_model_hparams(m)->n_vocab;
        if (process_output) lg = malloc((size_t)ctx * (size_t)V * sizeof(float));
        if (!c || (process_output && !lg)) {
            cli_error("imatrix", "%s", !c ? err : "out of memory");
            goto done;
        }
        if (grok_imatrix_add_dataset(im, text_path)) {
            cli_error("imatrix", "out of memory");
            goto done;
        }
        collect col = {im, process_output};
        grok_runner_set_input_hook(grok_context_runner(c), on_input, &col);
        if (exact) grok_runner_set_kernel_mode(grok_context_runner(c), GROK_KERNELS_EXACT);
        const int32_t bos = grok_tokenizer_bos(tk);
        fprintf(stderr, "imatrix: %zu tokens, %" PRId64 " chunks of %" PRId64 "\n", n_tok, n_chunks, ctx);
        const double t0 = grok_now();
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int32_t *chunk = toks + ch * ctx;
            if (bos >= 0 && grok_tokenizer_add_bos(tk)) chunk[0] = bos;
            grok_context_truncate(c, 0);
            if (grok_decode(c, chunk, ctx, lg, err, sizeof err)) {
                cli_error("imatrix", "chunk %" PRId64 ": %s", ch + 1, err);
                goto done;
            }
            if (grok_imatrix_error(im)) {
                cli_error("imatrix", "%s: chunk %" PRId64 ": %s", model_path, ch + 1, grok_imatrix_error(im));
                goto done;
            }
            grok_imatrix_add_chunks(im, 1);
            progress(ch + 1, n_chunks, grok_now() - t0);
        }
    }
    if (grok_imatrix_save(im, out_path, fmt && strcmp(fmt, "dat") == 0, err, sizeof err)) {
        cli_error("imatrix", "%s", err);
        goto done;
    }
    fprintf(stderr, "imatrix: wrote %s (%" PRId64 " tensors, %" PRId64 " chunks)\n", out_path,
            grok_imatrix_n_entries(im), grok_imatrix_chunk_count(im));
    rc = 0;
done:
    free(lg), free(toks), free(text);
    grok_context_free(c);
    grok_threadpool_free(pool);
    grok_model_free(m);
    grok_imatrix_free(im);
    return rc;
}
