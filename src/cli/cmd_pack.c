/*
 * cmd_pack.c - `grok pack MODEL`: writes the packed copy of a model's
 * weights (src/model/packfile.c) beside it, MODEL.gguf.grokpack, once, so
 * that later starts map it instead of packing into anonymous memory, and
 * the expert cache of a model larger than memory reads its slots from it
 * without packing them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage(FILE *out) {
    fprintf(out, "usage: grok pack MODEL [-o FILE] [--threads N] [--force]\n\n"
                 "Writes the packed (row-interleaved) layout the fast kernels read, for every\n"
                 "q8_0/q4_0/k-quant matrix of MODEL, to MODEL.gguf.grokpack (or FILE): later runs\n"
                 "map it instead of packing at start-up (shared page cache, evictable), and the\n"
                 "expert cache reads from it. It is tied to MODEL's size, modification time,\n"
                 "header and sampled data: after MODEL changes it is ignored (with a notice).\n"
                 "Written atomically. See docs/memory.md.\n\n"
                 "  -o FILE       output (default MODEL.gguf.grokpack)\n"
                 "  --threads N   packing threads (all cores)\n"
                 "  --force       replace FILE if it exists\n");
}

int cmd_pack(int argc, char **argv) {
    const char *path = NULL, *out = NULL;
    int64_t threads = 0;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_str(argv, argc, &i, "-o", "--output", &out) ||
            cli_i64(argv, argc, &i, "--threads", "-t", 0, 1024, &threads))
            continue;
        if (cli_flag(argv, argc, &i, "--force", NULL)) {
            force = true;
            continue;
        }
        if (argv[i][0] == '-' || path) return cli_unknown("pack", argv[i]);
        path = argv[i];
    }
    if (!path) {
        cli_error("pack", "a MODEL file is required (see grok pack --help)");
        return 2;
    }
    char err[GROK_ERR_SIZE] = "", def[4096];
    if (!out) {
        snprintf(def, sizeof def, "%s.grokpack", path);
        out = def;
    }
    struct stat st;
    if (!force && stat(out, &st) == 0) {
        cli_error("pack", "%s exists (--force replaces it)", out);
        return 1;
    }
    grok_model *m = grok_model_load(path, err, sizeof err);
    if (!m) {
        cli_error("pack", "%s", err);
        return 1;
    }
    grok_threadpool *pool = grok_threadpool_create((int)threads);
    const double t0 = grok_now();
    int rc = grok_model_write_packfile(m, out, pool, err, sizeof err);
    if (rc)
        cli_error("pack", "%s", err);
    else if (stat(out, &st) == 0)
        fprintf(stderr, "grok pack: wrote %s: %.1f MiB in %.1f s\n", out, (double)st.st_size / 1048576.0,
                grok_now() - t0);
    grok_threadpool_free(pool);
    grok_model_free(m);
    return rc ? 1 : 0;
}
