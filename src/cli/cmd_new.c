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
#include "cli/options.h"
#include "model/model.h"

typedef struct {
    const char *out, *tokenizer;
    int type;
    int64_t vocab;
    uint64_t seed;
    bool untied, force;
} new_args;

static const char *const NEW_TYPES[] = {"f32", "f16", "bf16", "q8_0", "q6_K", "q5_K", "q4_K", "q4_0", NULL};
static const cli_opt NEW_OPTS[] = {
    CLI_OPT_STR(new_args, out, "--output", "-o", "FILE", "the output file (required)", ""),
    CLI_OPT_I64(new_args, vocab, "--vocab", NULL, "N", 4, (int64_t)1 << 24,
                "a placeholder vocabulary of N pieces", NULL),
    CLI_OPT_STR(new_args, tokenizer, "--tokenizer", NULL, "FILE", "embed this SentencePiece .model instead",
                ""),
    CLI_OPT_ENUM(new_args, type, "--type", NULL, NEW_TYPES,
                 "the weights' type (k-quants need widths that are multiples of 256)", NULL),
    CLI_OPT_FLAG(new_args, untied, "--untied", NULL, "write a separate output head"),
    CLI_OPT_U64(new_args, seed, "--seed", "-s", "S", "random seed", NULL),
    CLI_OPT_FLAG(new_args, force, "--force", NULL, "overwrite FILE if it exists"),
};

int cmd_new(int argc, char **argv) {
    new_args a = {.vocab = 512, .seed = 1};
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2, hp.n_experts = 8;
    hp.n_experts_used = 2, hp.n_ff = 128, hp.n_ctx_train = 2048, hp.head_dim = 0;
    cli_cmd cmd = {.name = "new",
                   .usage = "-o FILE [options]",
                   .about = "Writes a randomly initialised Grok-architecture model (GGUF).",
                   .notes = "Example: grok new -o tiny.gguf --layers 4 --d-model 128 --type q8_0"};
    CLI_ADD_TABLE(&cmd, "Output", NEW_OPTS, &a);
    cli_add_group(&cmd, "Shape", CLI_SHAPE_OPTS, CLI_N_SHAPE_OPTS, &hp, NULL);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *out = a.out, *tok_path = a.tokenizer, *type_name = NEW_TYPES[a.type];
    const int64_t vocab = a.vocab;
    const bool untied = a.untied, force = a.force;
    if (!out) {
        cli_error("new", "-o FILE is required (see grok new --help)");
        return 2;
    }
    const int type = grok_type_from_name(type_name);
    if (hp.head_dim == 0) hp.head_dim = hp.d_model / hp.n_heads;
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
    int rc = grok_model_write_random(out, &hp, (grok_type)type, tok, untied, a.seed, err, sizeof err);
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
