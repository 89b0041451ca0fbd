/*
 * cmd_quantize.c - `grok quantize IN OUT TYPE`: re-encodes a model's
 * weight matrices (src/model/quantize.c does the work). Shows a progress
 * bar when stderr is a terminal; refuses to replace an existing file
 * unless --force is given.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/quantize.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: grok quantize IN.gguf OUT.gguf TYPE [options]\n\n"
            "Re-encodes the weight matrices of IN as TYPE (q8_0, q6_K, q5_K, q4_K, q4_0,\n"
            "f16, bf16, f32); norms and the router stay f32 as in llama.cpp. Matrices whose\n"
            "rows do not divide by 256 become q8_0 under a k-quant. OUT is written atomically.\n\n"
            "  --threads N     worker threads (all cores)\n"
            "  --force         overwrite OUT if it exists\n");
}

typedef struct {
    bool tty;
    double t0;
} progress_state;

static void show_progress(void *ud, int64_t done, int64_t total, const char *name) {
    progress_state *p = ud;
    if (!p->tty) return;
    int width = 30, filled = (int)(width * done / (total ? total : 1));
    fprintf(stderr, "\r[%.*s%*s] %" PRId64 "/%" PRId64 " %-32.32s %.0fs", filled,
            "##############################", width - filled, "", done, total, name, cli_now() - p->t0);
    if (done == total) fputc('\n', stderr);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    int64_t threads = 0;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_i64(argv, argc, &i, "--threads", "-t", 0, 1024, &threads)) continue;
        if (cli_flag(argv, argc, &i, "--force", NULL)) {
            force = true;
            continue;
        }
        if (argv[i][0] == '-' || npos == 3) return cli_unknown("quantize", argv[i]);
        pos[npos++] = argv[i];
    }
    if (npos != 3) {
        cli_error("quantize", "IN.gguf OUT.gguf TYPE are required (see grok quantize --help)");
        return 2;
    }
    int type = grok_type_from_name(pos[2]);
    if (type < 0 || grok_llama_ftype((grok_type)type) < 0) {
        cli_error("quantize", "TYPE '%s' is not one of q8_0, q6_K, q5_K, q4_K, q4_0, f16, bf16, f32", pos[2]);
        return 2;
    }
    struct stat st;
    if (!force && stat(pos[1], &st) == 0) {
        cli_error("quantize", "%s exists; pass --force to overwrite it", pos[1]);
        return 1;
    }
    grok_threadpool *pool = grok_threadpool_create((int)threads);
    progress_state ps = {isatty(2) != 0, cli_now()};
    char err[GROK_ERR_SIZE];
    int rc = grok_model_quantize(pos[0], pos[1], (grok_type)type, pool, show_progress, &ps, err, sizeof err);
    grok_threadpool_free(pool);
    if (rc) {
        cli_error("quantize", "%s", err);
        return 1;
    }
    fprintf(stderr, "grok quantize: wrote %s (%s) in %.1f s\n", pos[1], pos[2], cli_now() - ps.t0);
    return 0;
}
