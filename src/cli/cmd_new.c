/*
 * cmd_new.c - `grok new`: flags for a randomly initialised
 * Grok-architecture model of any shape; the writing is
 * grok_model_write_random (src/model/random.c). The flags are checked here
 * so that a user learns which flag is wrong, not just which value.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "model/model.h"

static void usage(FILE *out) {
    fprintf(out, "usage: grok new -o FILE [options]\n\n"
                 "Writes a randomly initialised Grok-architecture model (GGUF).\n\n"
                 "  -o FILE             output file (required)\n"
                 "  --d-model N         model width (64)\n"
                 "  --layers N          layers (2)\n"
                 "  --heads N           query heads (4)\n"
                 "  --kv-heads N        key/value heads (2)\n"
                 "  --head-dim N        head size (d-model / heads)\n"
                 "  --experts N         experts per layer (8)\n"
                 "  --experts-used N    experts used per token (2)\n"
                 "  --ffn N             per-expert FFN width (128)\n"
                 "  --ctx N             context length (2048)\n"
                 "  --vocab N           placeholder vocabulary of N pieces (512)\n"
                 "  --tokenizer FILE    embed this SentencePiece .model instead\n"
                 "  --type T            weight type: f32, f16, bf16, q8_0, q6_K, q5_K, q4_K, q4_0\n"
                 "                      (f32; k-quants need widths that are multiples of 256)\n"
                 "  --untied            write a separate output head\n"
                 "  --seed S            random seed (1)\n"
                 "  --force             overwrite FILE if it exists\n");
}

int cmd_new(int argc, char **argv) {
    const char *out = NULL, *tok_path = NULL, *type_name = "f32";
    int64_t vocab = 512, ctx = 2048, seed = 1, head_dim = 0;
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2, hp.n_experts = 8;
    hp.n_experts_used = 2, hp.n_ff = 128;
    bool untied = false, force = false;
    const int64_t BIG = (int64_t)1 << 24;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_str(argv, argc, &i, "-o", "--output", &out) ||
            cli_str(argv, argc, &i, "--tokenizer", NULL, &tok_path) ||
            cli_str(argv, argc, &i, "--type", NULL, &type_name) ||
            cli_i64(argv, argc, &i, "--d-model", NULL, 1, BIG, &hp.d_model) ||
            cli_i64(argv, argc, &i, "--layers", NULL, 1, 4096, &hp.n_layers) ||
            cli_i64(argv, argc, &i, "--heads", NULL, 1, 4096, &hp.n_heads) ||
            cli_i64(argv, argc, &i, "--kv-heads", NULL, 1, 4096, &hp.n_kv_heads) ||
            cli_i64(argv, argc, &i, "--head-dim", NULL, 2, 65536, &head_dim) ||
            cli_i64(argv, argc, &i, "--experts", NULL, 1, 1024, &hp.n_experts) ||
            cli_i64(argv, argc, &i, "--experts-used", NULL, 1, 1024, &hp.n_experts_used) ||
            cli_i64(argv, argc, &i, "--ffn", NULL, 1, BIG, &hp.n_ff) ||
            cli_i64(argv, argc, &i, "--ctx", NULL, 1, BIG, &ctx) ||
            cli_i64(argv, argc, &i, "--vocab", NULL, 4, BIG, &vocab) ||
            cli_i64(argv, argc, &i, "--seed", NULL, 0, INT64_MAX, &seed))
            continue;
        if (cli_flag(argv, argc, &i, "--untied", NULL)) {
            untied = true;
            continue;
        }
        if (cli_flag(argv, argc, &i, "--force", NULL)) {
            force = true;
            continue;
        }
        return cli_unknown("new", argv[i]);
    }
    if (!out) {
        cli_error("new", "-o FILE is required (see grok new --help)");
        return 2;
    }
    int type = grok_type_from_name(type_name);
    if (type != GROK_TYPE_F32 && type != GROK_TYPE_F16 && type != GROK_TYPE_BF16 && type != GROK_TYPE_Q8_0 &&
        type != GROK_TYPE_Q6_K && type != GROK_TYPE_Q5_K && type != GROK_TYPE_Q4_K &&
        type != GROK_TYPE_Q4_0) {
        cli_error("new", "--type '%s' is not one of f32, f16, bf16, q8_0, q6_K, q5_K, q4_K, q4_0", type_name);
        return 2;
    }
    hp.head_dim = head_dim ? head_dim : hp.d_model / hp.n_heads;
    hp.n_ctx_train = ctx;
    struct stat st;
    if (!force && stat(out, &st) == 0) {
        cli_error("new", "%s exists; pass --force to overwrite it", out);
        return 1;
    }

    char err[GROK_ERR_SIZE];
    grok_tokenizer *tok = tok_path ? grok_tokenizer_load_spm(tok_path, err, sizeof err)
                                   : grok_tokenizer_placeholder(vocab, err, sizeof err);
    if (!tok) {
        cli_error("new", "%s", err);
        return 1;
    }
    int rc = grok_model_write_random(out, &hp, (grok_type)type, tok, untied, (uint64_t)seed, err, sizeof err);
    if (rc) cli_error("new", "%s", err);
    hp.n_vocab = grok_tokenizer_n_vocab(tok);
    if (rc == 0)
        fprintf(stderr,
                "grok new: wrote %s: %" PRId64 " layers, d_model %" PRId64 ", %" PRId64 " experts (%" PRId64
                " used), vocab %" PRId64 ", %.2f M parameters, %s\n",
                out, hp.n_layers, hp.d_model, hp.n_experts, hp.n_experts_used, hp.n_vocab,
                (double)grok_hparams_n_params(&hp) / 1e6, type_name);
    grok_tokenizer_free(tok);
    return rc ? 1 : 0;
}
