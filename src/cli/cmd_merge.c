/*
 * cmd_merge.c - `grok merge`: folds a LoRA adapter (from `grok train
 * --lora`) into its base model and writes a plain model file that needs no
 * adapter at run time. The work is grok_lora_merge (src/model/lora.c);
 * this file parses flags and refuses to overwrite a file unless told to.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "kernels/kernels.h"
#include "model/lora.h"

typedef struct {
    const char *out, *type;
    float scale;
    bool force;
} merge_args;

static const cli_opt MERGE_OPTS[] = {
    CLI_OPT_STR(merge_args, out, "--output", "-o", "FILE", "the output model (GGUF)", ""),
    CLI_OPT_STR(
        merge_args, type, "--type", NULL, "T",
        "the adapted weights' type: any type with an encoder (f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K, "
        "...)",
        "each keeps the base's type, re-quantized"),
    CLI_OPT_F32(merge_args, scale, "--lora-scale", NULL, "S", -1e6, 1e6, "the adapter's strength", NULL),
    CLI_OPT_FLAG(merge_args, force, "--force", NULL, "overwrite OUT if it exists"),
};

int cmd_merge(int argc, char **argv) {
    merge_args a = {.scale = 1.0f};
    cli_cmd cmd = {.name = "merge",
                   .usage = "BASE.gguf ADAPTER.gguf -o OUT.gguf [options]",
                   .about =
                       "Writes BASE with the LoRA adapter folded in: W' = W + S * (alpha/rank) * B A for\n"
                       "every adapted weight; other tensors and all metadata are copied as they are.\n"
                       "OUT is written atomically.",
                   .max_pos = 2};
    CLI_ADD_TABLE(&cmd, "Options", MERGE_OPTS, &a);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *const *pos = cmd.pos, *out = a.out, *type_name = a.type;
    const float scale = a.scale;
    const bool force = a.force;
    if (cmd.n_pos != 2 || !out) {
        cli_error("merge", "BASE.gguf ADAPTER.gguf and -o OUT.gguf are required (see grok merge --help)");
        return 2;
    }
    int type = -1;
    if (type_name) {
        type = grok_type_from_name(type_name);
        const grok_type_kernels *k = type >= 0 ? grok_kernels_get((uint32_t)type) : NULL;
        if (!k || !k->from_f32) {
            char list[512] = "";
            for (uint32_t t = 0; t < GROK_TYPE_COUNT; t++) {
                const grok_type_kernels *kt = grok_kernels_get(t);
                if (kt && kt->from_f32 && strlen(list) + 16 < sizeof list)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                             grok_type_get_traits(t)->name);
            }
            cli_error("merge", "--type '%s' is not a type with an encoder (%s)", type_name, list);
            return 2;
        }
    }
    struct stat st;
    if (!force && stat(out, &st) == 0) {
        cli_error("merge", "%s exists; pass --force to overwrite it", out);
        return 1;
    }
    double t0 = grok_now();
    char err[GROK_ERR_SIZE];
    if (grok_lora_merge(pos[0], pos[1], out, type, scale, err, sizeof err)) {
        cli_error("merge", "%s", err);
        return 1;
    }
    fprintf(stderr, "grok merge: wrote %s in %.1f s\n", out, grok_now() - t0);
    return 0;
}
