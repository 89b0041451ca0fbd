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
#include "kernels/kernels.h"
#include "model/lora.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: grok merge BASE.gguf ADAPTER.gguf -o OUT.gguf [--type T] [--lora-scale S] [--force]\n\n"
            "Writes BASE with the LoRA adapter folded in: W' = W + S * (alpha/rank) * B A for every\n"
            "adapted weight; other tensors and all metadata are copied as they are. OUT is written\n"
            "atomically.\n\n"
            "  -o FILE          output model (GGUF)\n"
            "  --type T         type of the adapted weights: any type with an encoder (f32, f16,\n"
            "                   bf16, q8_0, q4_0, q4_K, q5_K, q6_K, ...; default: each keeps the\n"
            "                   base's type, re-quantized)\n"
            "  --lora-scale S   adapter strength (1)\n"
            "  --force          overwrite OUT if it exists\n");
}

int cmd_merge(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *out = NULL, *type_name = NULL;
    int npos = 0;
    float scale = 1.0f;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_flag(argv, argc, &i, "--force", NULL)) {
            force = true;
            continue;
        }
        if (cli_str(argv, argc, &i, "-o", "--output", &out) ||
            cli_str(argv, argc, &i, "--type", NULL, &type_name) ||
            cli_f32(argv, argc, &i, "--lora-scale", NULL, -1e6, 1e6, &scale))
            continue;
        if (argv[i][0] == '-' || npos == 2) return cli_unknown("merge", argv[i]);
        pos[npos++] = argv[i];
    }
    if (npos != 2 || !out) {
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
