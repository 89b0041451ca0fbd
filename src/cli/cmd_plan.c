/*
 * cmd_plan.c - `grok plan`: how a model would run across N MPI ranks
 * (which layers, heads, experts, FFN rows and vocabulary rows each rank owns, its
 * memory, the bytes it sends per token) and the decode speed the cost
 * model of docs/distributed.md expects, for a model file or for Grok-1's
 * published shapes without one.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dist/plan.h"
#include "model/model.h"

static void usage(FILE *out) {
    fprintf(out, "usage: grok plan (MODEL | --grok1) --ranks N [options]\n\n"
                 "Placement, memory per rank, traffic per token and expected tok/s across N ranks.\n\n"
                 "  MODEL               model file (GGUF): its shapes and weight types\n"
                 "  --grok1             Grok-1's shapes (no file needed)\n"
                 "  --type T            weight type with --grok1: q8_0 (default), q4_0, bf16, f16, f32\n"
                 "  --ranks N           number of ranks (1)\n"
                 "  --split X           ffn (default), experts (the MoE by FFN rows or whole experts,\n"
                 "                      attention by KV heads) or layers (a pipeline)\n"
                 "  --mem-per-rank SIZE memory of one rank, e.g. 64G, 512M (not checked if absent)\n"
                 "  --mem-bw GBS        memory bandwidth of one rank in GB/s (20)\n"
                 "  --bandwidth GBIT    link bandwidth in Gbit/s (25)\n"
                 "  --latency US        one message's latency in microseconds (20)\n"
                 "  --ctx N             KV cache length (the model's)\n"
                 "  --pos N             position of the decoded token, for KV reads (ctx / 2)\n"
                 "  --kv-type T         f32 (default) or f16\n");
}

/* "64G", "512M", "1.5T", "1000" (bytes) -> bytes; -1 when malformed. */
static double parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return -1;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        mul = 1024.0;
        end++;
        break;
    case 'M':
        mul = 1024.0 * 1024;
        end++;
        break;
    case 'G':
        mul = 1024.0 * 1024 * 1024;
        end++;
        break;
    case 'T':
        mul = 1024.0 * 1024 * 1024 * 1024;
        end++;
        break;
    default: break;
    }
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'B' || *end == 'b') end++;
    return *end ? -1 : v * mul;
}

int cmd_plan(int argc, char **argv) {
    const char *model_path = NULL, *type_name = "q8_0", *split = NULL, *mem_s = NULL, *kv = "f32";
    bool grok1 = false;
    int64_t ranks = 1, ctx = 0, pos = -1;
    float mem_bw = 20, net = 25, lat = 20;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_flag(argv, argc, &i, "--grok1", NULL)) {
            grok1 = true;
            continue;
        }
        if (cli_str(argv, argc, &i, "--type", NULL, &type_name) ||
            cli_str(argv, argc, &i, "--split", NULL, &split) ||
            cli_str(argv, argc, &i, "--mem-per-rank", NULL, &mem_s) ||
            cli_str(argv, argc, &i, "--kv-type", NULL, &kv) ||
            cli_i64(argv, argc, &i, "--ranks", "-n", 1, 4096, &ranks) ||
            cli_i64(argv, argc, &i, "--ctx", NULL, 1, 1 << 24, &ctx) ||
            cli_i64(argv, argc, &i, "--pos", NULL, 0, 1 << 24, &pos) ||
            cli_f32(argv, argc, &i, "--mem-bw", NULL, 0.001, 1e6, &mem_bw) ||
            cli_f32(argv, argc, &i, "--bandwidth", NULL, 0.001, 1e6, &net) ||
            cli_f32(argv, argc, &i, "--latency", NULL, 0, 1e7, &lat))
            continue;
        if (argv[i][0] != '-' && !model_path) {
            model_path = argv[i];
            continue;
        }
        return cli_unknown("plan", argv[i]);
    }
    if (!model_path == !grok1) {
        cli_error("plan", "give exactly one of MODEL or --grok1 (see grok plan --help)");
        return 2;
    }
    grok_plan_in in = {.n_ranks = (int)ranks, .mem_gbs = mem_bw, .net_gbit = net, .lat_us = lat};
    if (!split || strcmp(split, "ffn") == 0)
        in.split = GROK_SPLIT_FFN;
    else if (strcmp(split, "experts") == 0)
        in.split = GROK_SPLIT_EXPERTS;
    else if (strcmp(split, "layers") == 0)
        in.split = GROK_SPLIT_LAYERS;
    else {
        cli_error("plan", "--split '%s' is not ffn, experts or layers", split);
        return 2;
    }
    if (!cli_kv_type("plan", kv, &in.kv_type)) return 2;
    if (mem_s && (in.mem_per_rank = parse_size(mem_s)) < 0) {
        cli_error("plan", "--mem-per-rank '%s' is not a size such as 64G or 512M", mem_s);
        return 2;
    }
    char err[GROK_ERR_SIZE];
    grok_model *m = NULL;
    if (grok1) {
        int t = grok_type_from_name(type_name);
        if (t < 0 || grok_type_get_traits((uint32_t)t)->block_size == 0 ||
            /* the narrowest column slice: one KV group of the attention output, 6 heads x 128 */
            grok_type_row_size((uint32_t)t, 6144) < 0 || grok_type_row_size((uint32_t)t, 768) < 0) {
            cli_error("plan", "--type '%s' is not a weight type Grok-1's rows can be stored in", type_name);
            return 2;
        }
        in.hp = grok_hparams_grok1();
        in.t_attn = in.t_expert = in.t_out = (grok_type)t;
        in.tied = true; /* the released checkpoint ties the output head to the embedding */
    } else {
        m = grok_model_load(model_path, err, sizeof err);
        if (!m) {
            cli_error("plan", "%s", err);
            return 1;
        }
        in.hp = m->hp;
        in.t_attn = m->layers[0].wq.type;
        in.t_expert = m->layers[0].down.type;
        in.t_out = m->output.type;
        in.tied = m->tied;
    }
    in.ctx = ctx > 0 ? ctx : in.hp.n_ctx_train;
    in.pos = pos >= 0 ? pos : in.ctx / 2;
    grok_plan_out out;
    int rc = grok_plan_run(&in, &out, stdout, err, sizeof err) ? 1 : 0;
    if (rc) cli_error("plan", "%s", err);
    grok_model_free(m);
    return rc;
}
