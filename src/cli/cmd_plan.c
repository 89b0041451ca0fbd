/*
 * cmd_plan.c - `grok plan`: how a model would run across N MPI ranks
 * (which layers, heads, experts, FFN rows and vocabulary rows each rank owns, its
 * memory, the bytes it sends per token) and the decode speed the cost
 * model of docs/distributed.md expects, for a model file or for Grok-1's
 * published shapes without one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "dist/plan.h"
#include "model/model.h"

typedef struct {
    cli_model_args m;
    const char *type;
    bool grok1;
    int split; /* PLAN_SPLITS */
    int64_t ranks, mem_per_rank, pos;
    float mem_bw, net, lat;
} plan_args;

static const char *const PLAN_SPLITS[] = {"ffn", "experts", "layers", NULL};
static const grok_split PLAN_SPLIT_OF[] = {GROK_SPLIT_FFN, GROK_SPLIT_EXPERTS, GROK_SPLIT_LAYERS};
static const cli_opt PLAN_OPTS[] = {
    CLI_OPT_FLAG(plan_args, grok1, "--grok1", NULL, "Grok-1's shapes (no file needed)"),
    CLI_OPT_STR(plan_args, type, "--type", NULL, "T",
                "weight type with --grok1: q8_0, q4_0, q4_K, bf16, f16, f32, ...", NULL),
    CLI_OPT_I64(plan_args, ranks, "--ranks", "-n", "N", 1, 4096, "number of ranks", NULL),
    CLI_OPT_ENUM(plan_args, split, "--split", NULL, PLAN_SPLITS,
                 "the MoE by FFN rows (ffn) or whole experts, attention by KV heads; or a pipeline of layers",
                 NULL),
    CLI_OPT_SIZE(plan_args, mem_per_rank, "--mem-per-rank", NULL, "SIZE",
                 "memory of one rank, e.g. 64G, 512M", "not checked"),
    CLI_OPT_F32(plan_args, mem_bw, "--mem-bw", NULL, "GBS", 0.001, 1e6,
                "memory bandwidth of one rank in GB/s", NULL),
    CLI_OPT_F32(plan_args, net, "--bandwidth", NULL, "GBIT", 0.001, 1e6, "link bandwidth in Gbit/s", NULL),
    CLI_OPT_F32(plan_args, lat, "--latency", NULL, "US", 0, 1e7, "one message's latency in microseconds",
                NULL),
    CLI_OPT_I64(plan_args, pos, "--pos", NULL, "N", 0, 1 << 24, "position of the decoded token, for KV reads",
                "ctx / 2"),
};
static const char *const PLAN_MODEL_OMIT[] = {"--model",   "--lora",  "--lora-scale",
                                              "--threads", "--batch", NULL};

int cmd_plan(int argc, char **argv) {
    plan_args a = {.type = "q8_0", .ranks = 1, .pos = -1, .mem_bw = 20, .net = 25, .lat = 20};
    cli_model_args_init(&a.m);
    cli_cmd cmd = {.name = "plan",
                   .usage = "(MODEL | --grok1) --ranks N [options]",
                   .about =
                       "Placement, memory per rank, traffic per token and expected tok/s across N ranks,\n"
                       "for MODEL (a GGUF file: its shapes and weight types) or Grok-1's shapes.",
                   .max_pos = 1};
    CLI_ADD_TABLE(&cmd, "Options", PLAN_OPTS, &a);
    cli_add_group(&cmd, "KV cache", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a.m, PLAN_MODEL_OMIT);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *model_path = cmd.n_pos ? cmd.pos[0] : NULL, *type_name = a.type;
    const bool grok1 = a.grok1;
    const int64_t ranks = a.ranks, ctx = a.m.ctx, pos = a.pos;
    if (!model_path == !grok1) {
        cli_error("plan", "give exactly one of MODEL or --grok1 (see grok plan --help)");
        return 2;
    }
    grok_plan_in in = {.n_ranks = (int)ranks, .mem_gbs = a.mem_bw, .net_gbit = a.net, .lat_us = a.lat};
    in.split = PLAN_SPLIT_OF[a.split];
    in.kv_type = cli_kv_grok_type(&a.m);
    in.mem_per_rank = (double)a.mem_per_rank;
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
