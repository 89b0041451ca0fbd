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

static void usage(FILE *out) {
    fprintf(out,
            "usage: grok imatrix -m MODEL -f TEXT [-o imatrix.gguf] [options]\n"
            "       grok imatrix --in-file A [--in-file B ...] -o OUT     (merge, convert)\n"
            "       grok imatrix --show FILE                              (what a file holds)\n\n"
            "Collects the mean squared input of every weight matrix's columns, per expert\n"
            "for the expert tensors (llama-imatrix's importance matrix), for grok quantize\n"
            "--imatrix. Writes llama.cpp's imatrix GGUF, or its legacy format when OUT ends\n"
            "in .dat; reads both.\n\n"
            "  -m MODEL          model file (GGUF)\n"
            "  -f TEXT           text file\n"
            "  -o OUT            output file (imatrix.gguf)\n"
            "  --ctx N           chunk length in tokens (512)\n"
            "  --chunks N        use at most N chunks (all)\n"
            "  --in-file FILE    add an existing imatrix (GGUF or .dat) first; repeatable\n"
            "  --process-output  also collect the output head's inputs (llama.cpp's flag)\n"
            "  --exact           f32 activations in every product (the EXACT kernels); the\n"
            "                    default FAST kernels' 8-bit activations move the sums by\n"
            "                    ~0.1 %% and can flip near-tied routing choices\n"
            "  --output-format F gguf or dat (from OUT's name)\n"
            "  --threads N       worker threads (all cores)\n"
            "  --show FILE       print each tensor's row counts and mean squared input\n");
}

/* One line per chunk: a bar when stderr is a terminal, else plain lines. */
static void progress(int64_t done, int64_t total, double elapsed) {
    const double per = elapsed / (double)done, eta = per * (double)(total - done);
    char bar[31];
    const int fill = (int)(30 * done / total);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    const bool tty = isatty(2);
    fprintf(stderr, "%simatrix: [%s] chunk %" PRId64 "/%" PRId64 ", %.2f s/chunk, ETA %.0f s%s", tty ? "\r" : "", bar,
            done, total, per, eta, tty && done < total ? "" : "\n");
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
    printf("%s: %" PRId64 " tensors, %" PRId64 " chunks of %" PRId64 " tokens\n", path, grok_imatrix_n_entries(im),
           grok_imatrix_chunk_count(im), grok_imatrix_chunk_size(im));
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
    const char *model_path = NULL, *text_path = NULL, *out_path = "imatrix.gguf", *fmt = NULL, *show_path = NULL;
    const char **in_files = calloc((size_t)argc, sizeof *in_files);
    int n_in = 0;
    int64_t ctx = 512, threads = 0, max_chunks = 0;
    bool process_output = false, exact = false;
    if (!in_files) return cli_error("imatrix", "out of memory"), 1;
    for (int i = 1; i < argc; i++) {
        const char *s;
        if (cli_is_help(argv[i])) {
            usage(stdout);
            free(in_files);
            return 0;
        }
        if (cli_str(argv, argc, &i, "--in-file", NULL, &s)) {
            in_files[n_in++] = s;
            continue;
        }
        if (cli_str(argv, argc, &i, "-m", "--model", &model_path) ||
            cli_str(argv, argc, &i, "-f", "--file", &text_path) || cli_str(argv, argc, &i, "-o", "--output", &out_path) ||
            cli_str(argv, argc, &i, "--output-format", NULL, &fmt) || cli_str(argv, argc, &i, "--show", NULL, &show_path) ||
            cli_i64(argv, argc, &i, "--ctx", "-c", 4, 1 << 20, &ctx) ||
            cli_i64(argv, argc, &i, "--chunks", NULL, 0, INT64_MAX, &max_chunks) ||
            cli_i64(argv, argc, &i, "--threads", "-t", 0, 1024, &threads))
            continue;
        if (cli_flag(argv, argc, &i, "--process-output", NULL)) {
            process_output = true;
            continue;
        }
        if (cli_flag(argv, argc, &i, "--exact", NULL)) {
            exact = true;
            continue;
        }
        free(in_files);
        return cli_unknown("imatrix", argv[i]);
    }
    if (fmt && strcmp(fmt, "gguf") != 0 && strcmp(fmt, "dat") != 0) {
        cli_error("imatrix", "--output-format '%s' is not gguf or dat", fmt);
        free(in_files);
        return 2;
    }
    if (show_path) {
        free(in_files);
        return show(show_path, ctx);
    }
    if (!model_path != !text_path || (!model_path && n_in == 0)) {
        cli_error("imatrix", "give -m MODEL with -f TEXT, or --in-file files to merge (see grok imatrix --help)");
        free(in_files);
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
        if (!(toks = cli_text_chunks("imatrix", tk, text, text_len, text_path, ctx, max_chunks, &n_tok, &n_chunks)))
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
    free(lg), free(toks), free(text), free(in_files);
    grok_context_free(c);
    grok_threadpool_free(pool);
    grok_model_free(m);
    grok_imatrix_free(im);
    return rc;
}
