/*
 * cmd_logits.c - `grok logits`: the exactness hook. Runs the model over
 * token ids given on the command line (no BOS added) and writes the logits
 * of every position as little-endian f32, row-major [n_ids][n_vocab], so an
 * independent implementation can be compared number for number. The KV
 * cache stays f32 unless --kv-type f16 is asked for. Activations stay f32
 * too: the kernels run in EXACT mode (no 8-bit activation quantization)
 * unless GROK_KERNELS=reference asks for the scalar ones, or --kernels fast
 * for the 8-bit activations of every other command (to compare memory
 * plans, whose logits are the same bits). Under mpirun every
 * rank computes its share of the model; rank 0's ids are used and only
 * rank 0 writes the file.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "kernels/kernels.h"
#include "dist/dist.h"

typedef struct {
    cli_model_args m;
    const char *ids, *out;
    int kernels; /* GROK_KERNELS_* */
} logits_args;

static const char *const KERNEL_MODES[] = {"fast", "exact", "reference", NULL}; /* grok_kernel_mode's order */
static const cli_opt LOGITS_OPTS[] = {
    CLI_OPT_STR(logits_args, ids, "--ids", NULL, "LIST",
                "token ids, comma or space separated (no BOS is added)", ""),
    CLI_OPT_STR(logits_args, out, "--output", "-o", "FILE", "the output file (written atomically)", ""),
    CLI_OPT_ENUM(
        logits_args, kernels, "--kernels", NULL, KERNEL_MODES,
        "fast: 8-bit activations, as run, bench and serve compute; exact: f32 activations; reference: "
        "the scalar kernels",
        NULL),
};
static const char *const LOGITS_MODEL_OMIT[] = {"--ctx", NULL};

int cmd_logits(int argc, char **argv) {
    logits_args a = {.kernels = GROK_KERNELS_EXACT};
    cli_model_args_init(&a.m);
    cli_cmd cmd = {.name = "logits",
                   .usage = "-m MODEL --ids 1,2,3 -o FILE [options]",
                   .about = "Writes the logits at every position as little-endian f32 [n_ids][n_vocab].",
                   .memory = true};
    CLI_ADD_TABLE(&cmd, "Input and output", LOGITS_OPTS, &a);
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a.m, LOGITS_MODEL_OMIT);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *model_path = a.m.model, *ids_s = a.ids, *out = a.out;
    if (!model_path || !ids_s || !out) {
        cli_error("logits", "-m MODEL, --ids LIST and -o FILE are required (see grok logits --help)");
        return 2;
    }
    /* GROK_KERNELS=reference stays unless --kernels says otherwise */
    if (cli_seen(&cmd, "--kernels"))
        grok_kernels_set_mode((grok_kernel_mode)a.kernels);
    else if (grok_kernels_mode() == GROK_KERNELS_FAST)
        grok_kernels_set_mode(GROK_KERNELS_EXACT);
    grok_context_params cp = grok_context_default_params();
    cp.kv_type = cli_kv_grok_type(&a.m);
    char err[GROK_ERR_SIZE];
    int32_t *ids;
    size_t n;
    if (!cli_parse_ids(ids_s, &ids, &n, err, sizeof err)) {
        cli_error("logits", "--ids: %s", err);
        return 2;
    }
    if (n == 0) {
        cli_error("logits", "--ids: no token ids given");
        free(ids);
        return 2;
    }
    grok_model *m = cli_load_model("logits", model_path, a.m.lora, a.m.lora_scale);
    if (!m || grok_dist_bcast(ids, n * sizeof *ids, err, sizeof err)) {
        if (m) cli_error("logits", "%s", err);
        grok_model_free(m);
        free(ids);
        return 1;
    }
    const int64_t V = grok_model_hparams(m)->n_vocab;
    cp.n_ctx = (int64_t)n;
    cp.n_threads = (int)a.m.threads;
    cp.n_batch = a.m.batch;
    int rc = 1;
    grok_context *c = grok_context_create(m, &cp, err, sizeof err);
    float *logits = c ? malloc(n * (size_t)V * sizeof(float)) : NULL;
    if (c && !logits) snprintf(err, sizeof err, "out of memory for %zu x %" PRId64 " logits", n, V);
    if (grok_dist_agree(c && logits, err, sizeof err) ||
        grok_dist_agree(grok_decode(c, ids, (int64_t)n, logits, err, sizeof err) == 0, err, sizeof err))
        cli_error("logits", "%s", err);
    else if (grok_dist_rank() != 0) {
        rc = 0;
    } else {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, (int)getpid());
        FILE *f = fopen(tmp, "wb");
        bool ok = f && fwrite(logits, sizeof(float), n * (size_t)V, f) == n * (size_t)V;
        ok = f && fclose(f) == 0 && ok;
        if (ok && rename(tmp, out) == 0)
            rc = 0;
        else {
            cli_error("logits", "could not write %s", out);
            unlink(tmp);
        }
    }
    grok_dist_report(stderr, (int64_t)n);
    free(logits);
    grok_context_free(c);
    grok_model_free(m);
    free(ids);
    return rc;
}
