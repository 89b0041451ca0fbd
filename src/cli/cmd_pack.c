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
#include "cli/options.h"

typedef struct {
    cli_model_args m;
    const char *out;
    bool force;
} pack_args;

static const cli_opt PACK_OPTS[] = {
    CLI_OPT_STR(pack_args, out, "--output", "-o", "FILE", "the output", "MODEL.gguf.grokpack"),
    CLI_OPT_FLAG(pack_args, force, "--force", NULL, "replace FILE if it exists"),
};
static const char *const PACK_MODEL_OMIT[] = {"--model",   "--lora", "--lora-scale", "--ctx", "--batch",
                                              "--kv-type", NULL};

int cmd_pack(int argc, char **argv) {
    pack_args a = {0};
    cli_model_args_init(&a.m);
    cli_cmd cmd = {.name = "pack",
                   .usage = "MODEL [-o FILE] [--threads N] [--force]",
                   .about =
                       "Writes the packed (row-interleaved) layout the fast kernels read, for every\n"
                       "q8_0/q4_0/k-quant matrix of MODEL, to MODEL.gguf.grokpack (or FILE): later runs\n"
                       "map it instead of packing at start-up (shared page cache, evictable), and the\n"
                       "expert cache reads from it. It is tied to MODEL's size, modification time,\n"
                       "header and sampled data: after MODEL changes it is ignored (with a notice).\n"
                       "Written atomically. See docs/memory.md.",
                   .memory = true,
                   .max_pos = 1};
    CLI_ADD_TABLE(&cmd, "Options", PACK_OPTS, &a);
    cli_add_group(&cmd, "Compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a.m, PACK_MODEL_OMIT);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *path = cmd.n_pos ? cmd.pos[0] : NULL, *out = a.out;
    const int64_t threads = a.m.threads;
    const bool force = a.force;
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
