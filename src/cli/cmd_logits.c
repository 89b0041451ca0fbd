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
#include "kernels/kernels.h"
#include "dist/dist.h"
#include "model/lora.h"

static void usage(FILE *out) {
    fprintf(out, "usage: grok logits -m MODEL --ids 1,2,3 -o FILE [options]\n\n"
                 "Writes the logits at every position as little-endian f32 [n_ids][n_vocab].\n\n"
                 "  -m MODEL        model file (GGUF)\n"
                 "  --ids LIST      token ids, comma or space separated (no BOS is added)\n"
                 "  -o FILE         output file (written atomically)\n"
                 "  --kv-type T     KV cache type: f32 (default) or f16\n"
                 "  --batch N       tokens per forward pass (256)\n"
                 "  --lora FILE     apply a LoRA adapter at load (unmerged); --lora-scale S (1)\n"
                 "  --threads N     worker threads (all cores)\n"
                 "  --kernels K     exact (default: f32 activations), fast (8-bit activations,\n"
                 "                  as run, bench and serve compute) or reference (scalar)\n");
}

int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *ids_s = NULL, *out = NULL, *kv = "f32", *kern = NULL, *lora = NULL;
    float lora_scale = 1.0f;
    int64_t threads = 0, batch = 256;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_str(argv, argc, &i, "-m", "--model", &model_path) ||
            cli_str(argv, argc, &i, "--ids", NULL, &ids_s) ||
            cli_str(argv, argc, &i, "-o", "--output", &out) ||
            cli_str(argv, argc, &i, "--kv-type", NULL, &kv) ||
            cli_str(argv, argc, &i, "--lora", NULL, &lora) ||
            cli_f32(argv, argc, &i, "--lora-scale", NULL, -1e6, 1e6, &lora_scale) ||
            cli_str(argv, argc, &i, "--kernels", NULL, &kern) ||
            cli_i64(argv, argc, &i, "--batch", "-b", 1, 1 << 20, &batch) ||
            cli_i64(argv, argc, &i, "--threads", "-t", 0, 1024, &threads))
            continue;
        return cli_unknown("logits", argv[i]);
    }
    if (!model_path || !ids_s || !out) {
        cli_error("logits", "-m MODEL, --ids LIST and -o FILE are required (see grok logits --help)");
        return 2;
    }
    if (!kern) {
        if (grok_kernels_mode() == GROK_KERNELS_FAST) grok_kernels_set_mode(GROK_KERNELS_EXACT);
    } else if (strcmp(kern, "fast") == 0 || strcmp(kern, "exact") == 0 || strcmp(kern, "reference") == 0) {
        grok_kernels_set_mode(kern[0] == 'f'   ? GROK_KERNELS_FAST
                              : kern[0] == 'e' ? GROK_KERNELS_EXACT
                                               : GROK_KERNELS_REFERENCE);
    } else {
        cli_error("logits", "--kernels '%s' is not fast, exact or reference", kern);
        return 2;
    }
    grok_context_params cp = grok_context_default_params();
    if (!cli_kv_type("logits", kv, &cp.kv_type)) return 2;
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
    grok_model *m = grok_model_load(model_path, err, sizeof err);
    bool loaded = m && (!lora || grok_model_apply_lora(m, lora, lora_scale, err, sizeof err) == 0) &&
                  grok_dist_attach(m, err, sizeof err) == 0;
    if (grok_dist_agree(loaded, err, sizeof err) || grok_dist_bcast(ids, n * sizeof *ids, err, sizeof err)) {
        cli_error("logits", "%s", err);
        grok_model_free(m);
        free(ids);
        return 1;
    }
    const int64_t V = grok_model_hparams(m)->n_vocab;
    cp.n_ctx = (int64_t)n;
    cp.n_threads = (int)threads;
    cp.n_batch = batch;
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
