/*
 * cmd_new.c - `grok new`: writes a randomly initialised Grok-architecture
 * model of any shape. Real weights are hundreds of GB; tests, benchmarks
 * and training need models of every size, made on the spot. Tensors are
 * generated and written one chunk at a time (streamed GGUF writing), so a
 * multi-GB benchmark model needs little memory. Each tensor's values come
 * from its own seeded stream: the same flags give the same file.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "util/rng.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: grok new -o FILE [options]\n\n"
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
            "  --type T            weight type: f32, f16, bf16, q8_0 (f32)\n"
            "  --untied            write a separate output head\n"
            "  --seed S            random seed (1)\n"
            "  --force             overwrite FILE if it exists\n");
}

typedef struct {
    gguf_writer *w;
    uint64_t seed;
    int64_t index; /* tensor number: selects its random stream */
    char *err;
    size_t err_size;
} gen_ctx;

/* Streams one tensor of rows x cols (x n_mats) values drawn as
 * mean + std * N(0,1), encoded in type. */
static int gen_tensor(gen_ctx *g, grok_type type, int64_t rows, int64_t cols, int64_t n_mats,
                      float mean, float std) {
    grok_rng r = {g->seed * 0x100000001B3ull + (uint64_t)g->index++ * 0x9E3779B97F4A7C15ull};
    const grok_type_kernels *k = grok_kernels_get(type);
    size_t row_bytes = (size_t)grok_type_row_size(type, cols);
    int64_t rows_per_chunk = (int64_t)((4u << 20) / row_bytes) + 1;
    float *row = malloc((size_t)cols * sizeof(float));
    uint8_t *chunk = malloc((size_t)rows_per_chunk * row_bytes);
    int rc = row && chunk ? 0 : -1;
    if (rc) snprintf(g->err, g->err_size, "out of memory");
    int64_t total = rows * n_mats, in_chunk = 0;
    for (int64_t i = 0; i < total && rc == 0; i++) {
        for (int64_t j = 0; j < cols; j++) row[j] = mean + std * grok_rng_normal(&r);
        k->from_f32(row, chunk + (size_t)in_chunk * row_bytes, cols);
        if (++in_chunk == rows_per_chunk || i == total - 1) {
            rc = gguf_writer_write_data(g->w, chunk, (size_t)in_chunk * row_bytes, g->err, g->err_size);
            in_chunk = 0;
        }
    }
    free(row);
    free(chunk);
    return rc;
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
    if (type != GROK_TYPE_F32 && type != GROK_TYPE_F16 && type != GROK_TYPE_BF16 &&
        type != GROK_TYPE_Q8_0) {
        cli_error("new", "--type '%s' is not one of f32, f16, bf16, q8_0", type_name);
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
    hp.n_vocab = grok_tokenizer_n_vocab(tok);
    hp.pad_id = grok_tokenizer_pad(tok);
    if (grok_hparams_validate(&hp, "grok new", err, sizeof err)) {
        cli_error("new", "%s", err);
        grok_tokenizer_free(tok);
        return 2;
    }
    int64_t blk = grok_type_get_traits((uint32_t)type)->block_size;
    int64_t qd = hp.n_heads * hp.head_dim;
    if (hp.d_model % blk || qd % blk || hp.n_ff % blk) {
        cli_error("new", "with --type %s, d-model, heads*head-dim and ffn must be multiples of %" PRId64,
                  type_name, blk);
        grok_tokenizer_free(tok);
        return 2;
    }

    gguf_writer *w = gguf_writer_create();
    int rc = w ? 0 : -1;
    char name[128];
    snprintf(name, sizeof name, "grok-random-d%" PRId64 "-l%" PRId64 "-e%" PRId64, hp.d_model,
             hp.n_layers, hp.n_experts);
    rc |= grok_hparams_to_gguf(&hp, w);
    rc |= gguf_writer_set_str(w, "general.name", name);
    rc |= gguf_writer_set_u32(w, "general.file_type", (uint32_t)type);
    rc |= grok_tokenizer_to_gguf(tok, w);
    if (rc) {
        cli_error("new", "could not set the model's metadata");
        gguf_writer_free(w);
        grok_tokenizer_free(tok);
        return 1;
    }

    /* The tensor list, in the order the data is generated. */
    typedef struct {
        char name[96];
        grok_type type;
        int32_t n_dims;
        int64_t rows, cols, n_mats;
        float mean, std;
    } spec;
    const int64_t d = hp.d_model, kvd = hp.n_kv_heads * hp.head_dim;
    int64_t n_specs = 3 + 12 * hp.n_layers; /* embd, output, output_norm; 12 per layer */
    spec *s = calloc((size_t)n_specs, sizeof *s);
    int64_t ns = 0;
    if (!s) {
        cli_error("new", "out of memory");
        gguf_writer_free(w);
        grok_tokenizer_free(tok);
        return 1;
    }
#define ADD(nm, ty, r_, c_, m_, mean_, std_)                                                       \
    do {                                                                                           \
        snprintf(s[ns].name, sizeof s[ns].name, "%s", nm);                                         \
        s[ns].type = ty, s[ns].rows = r_, s[ns].cols = c_, s[ns].n_mats = m_, s[ns].mean = mean_, \
        s[ns].std = std_;                                                                          \
        s[ns].n_dims = strstr(nm, "_exps") ? 3 : strstr(nm, "norm") ? 1 : 2;                       \
        ns++;                                                                                      \
    } while (0)
    /* Embedding rows of norm ~1 after the multiplier, weights scaled by
     * 1/sqrt(fan_in), norms near 1: activations stay in a sane range. */
    const float isd = 1.0f / sqrtf((float)d);
    ADD(GROK_TN_TOKEN_EMBD, (grok_type)type, hp.n_vocab, d, 1, 0.0f, 1.0f / hp.embedding_scale);
    if (untied) ADD(GROK_TN_OUTPUT, (grok_type)type, hp.n_vocab, d, 1, 0.0f, isd * 8.0f);
    ADD(GROK_TN_OUTPUT_NORM, GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
    for (int64_t il = 0; il < hp.n_layers; il++) {
        char n[96];
#define NM(what) (grok_tensor_name(n, sizeof n, il, what), n)
        ADD(NM("attn_norm"), GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
        ADD(NM("attn_q"), (grok_type)type, qd, d, 1, 0.0f, isd * 2.0f);
        ADD(NM("attn_k"), (grok_type)type, kvd, d, 1, 0.0f, isd * 2.0f);
        ADD(NM("attn_v"), (grok_type)type, kvd, d, 1, 0.0f, isd);
        ADD(NM("attn_output"), (grok_type)type, d, qd, 1, 0.0f, 1.0f / sqrtf((float)qd));
        ADD(NM("attn_output_norm"), GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
        ADD(NM("ffn_norm"), GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
        ADD(NM("ffn_gate_inp"), GROK_TYPE_F32, hp.n_experts, d, 1, 0.0f, isd * 2.0f);
        ADD(NM("ffn_gate_exps"), (grok_type)type, hp.n_ff, d, hp.n_experts, 0.0f, isd);
        ADD(NM("ffn_up_exps"), (grok_type)type, hp.n_ff, d, hp.n_experts, 0.0f, isd);
        ADD(NM("ffn_down_exps"), (grok_type)type, d, hp.n_ff, hp.n_experts, 0.0f,
            1.0f / sqrtf((float)hp.n_ff));
        ADD(NM("layer_output_norm"), GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
#undef NM
    }
#undef ADD
    for (int64_t i = 0; i < ns && rc == 0; i++) {
        int64_t ne[3] = {s[i].cols, s[i].rows, s[i].n_mats};
        if (gguf_writer_add_tensor(w, s[i].name, s[i].type, s[i].n_dims, ne, NULL) < 0) rc = -1;
    }
    if (rc) {
        cli_error("new", "could not add the tensors");
    } else if (gguf_writer_begin(w, out, err, sizeof err) != 0) {
        cli_error("new", "%s", err);
        rc = -1;
    } else {
        gen_ctx g = {w, (uint64_t)seed, 0, err, sizeof err};
        for (int64_t i = 0; i < ns && rc == 0; i++)
            rc = gen_tensor(&g, s[i].type, s[i].rows, s[i].cols, s[i].n_mats, s[i].mean, s[i].std);
        if (rc == 0) rc = gguf_writer_finish(w, err, sizeof err);
        if (rc) cli_error("new", "%s", err);
    }
    if (rc == 0)
        fprintf(stderr, "grok new: wrote %s: %" PRId64 " layers, d_model %" PRId64 ", %" PRId64
                        " experts (%" PRId64 " used), vocab %" PRId64 ", %.2f M parameters, %s\n",
                out, hp.n_layers, hp.d_model, hp.n_experts, hp.n_experts_used, hp.n_vocab,
                (double)grok_hparams_n_params(&hp) / 1e6, type_name);
    free(s);
    gguf_writer_free(w);
    grok_tokenizer_free(tok);
    return rc ? 1 : 0;
}
