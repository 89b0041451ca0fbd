/*
 * random.c - writes a randomly initialised Grok-architecture model as GGUF
 * (grok new, tests, benchmarks and, later, training all need models of
 * any shape). Tensors are generated and written a chunk at a time through
 * the streamed GGUF writer, so a multi-GB model needs little memory, and
 * each tensor draws from its own seeded stream: same arguments, same file.
 * Scales keep activations sane: embedding rows of norm ~1 after the
 * multiplier, weights ~N(0, 1/fan_in), norms near 1.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/quantize.h"
#include "util/rng.h"

typedef struct {
    grok_gguf_writer *w;
    uint64_t seed;
    int64_t index; /* tensor number: selects its random stream */
    char *err;
    size_t err_size;
} gen_ctx;

/* Streams one tensor of rows x cols (x n_mats) values drawn as
 * mean + std * N(0,1), encoded in type. */
static int gen_tensor(gen_ctx *g, grok_type type, int64_t rows, int64_t cols, int64_t n_mats, float mean,
                      float std) {
    grok_rng r = grok_rng_named(g->seed, GROK_RNG_WEIGHTS, (uint64_t)g->index++);
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
            rc = grok_gguf_writer_write_data(g->w, chunk, (size_t)in_chunk * row_bytes, g->err, g->err_size);
            in_chunk = 0;
        }
    }
    free(row);
    free(chunk);
    return rc;
}

int grok_model_write_random(const char *path, const grok_hparams *hp_in, grok_type type,
                            const grok_tokenizer *tok, bool untied, uint64_t seed, char *err,
                            size_t err_size) {
    grok_hparams hpv = *hp_in, *hpp = &hpv;
    hpp->n_vocab = grok_tokenizer_n_vocab(tok);
    hpp->pad_id = grok_tokenizer_pad(tok);
    if (grok_hparams_validate(hpp, path, err, err_size)) return -1;
    if (!grok_kernels_get(type) || !grok_kernels_get(type)->from_f32) {
        const grok_type_traits *tr = grok_type_get_traits((uint32_t)type);
        snprintf(err, err_size, "%s: cannot write weights of type %s (it has no encoder here)", path,
                 tr ? tr->name : "?");
        return -1;
    }
    int64_t blk = grok_type_get_traits((uint32_t)type)->block_size;
    if (hpp->d_model % blk || (hpp->n_heads * hpp->head_dim) % blk || hpp->n_ff % blk) {
        snprintf(err, err_size,
                 "%s: with type %s, d_model, heads*head_dim and ffn must be multiples of %" PRId64, path,
                 grok_type_get_traits((uint32_t)type)->name, blk);
        return -1;
    }
    grok_gguf_writer *w = grok_gguf_writer_create();
    if (!w) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    int rc = 0;
    char name[128];
    snprintf(name, sizeof name, "grok-random-d%" PRId64 "-l%" PRId64 "-e%" PRId64, hpp->d_model,
             hpp->n_layers, hpp->n_experts);
    rc |= grok_hparams_to_gguf(hpp, w);
    rc |= grok_gguf_writer_set_str(w, "general.name", name);
    rc |= grok_gguf_writer_set_u32(w, "general.file_type", (uint32_t)grok_llama_ftype(type));
    rc |= grok_tokenizer_to_gguf(tok, w);
    if (rc) {
        snprintf(err, err_size, "%s: could not set the model's metadata", path);
        grok_gguf_writer_free(w);
        return -1;
    }

    /* The tensor list, in the order the data is generated. */
    typedef struct {
        char name[96];
        grok_type type;
        int32_t n_dims;
        int64_t rows, cols, n_mats;
        float mean, std;
    } spec;
    const int64_t qd = hpp->n_heads * hpp->head_dim;
    const int64_t d = hpp->d_model, kvd = hpp->n_kv_heads * hpp->head_dim;
    int64_t n_specs = 3 + 12 * hpp->n_layers; /* embd, output, output_norm; 12 per layer */
    spec *s = calloc((size_t)n_specs, sizeof *s);
    int64_t ns = 0;
    if (!s) {
        snprintf(err, err_size, "out of memory");
        grok_gguf_writer_free(w);
        return -1;
    }
#define ADD(nm, ty, r_, c_, m_, mean_, std_)                                                      \
    do {                                                                                          \
        snprintf(s[ns].name, sizeof s[ns].name, "%s", nm);                                        \
        s[ns].type = ty, s[ns].rows = r_, s[ns].cols = c_, s[ns].n_mats = m_, s[ns].mean = mean_, \
        s[ns].std = std_;                                                                         \
        s[ns].n_dims = strstr(nm, "_exps") ? 3 : strstr(nm, "norm") ? 1 : 2;                      \
        ns++;                                                                                     \
    } while (0)
    /* Embedding rows of norm ~1 after the multiplier, weights scaled by
     * 1/sqrt(fan_in), norms near 1: activations stay in a sane range. */
    const float isd = 1.0f / sqrtf((float)d);
    ADD(GROK_TN_TOKEN_EMBD, (grok_type)type, hpp->n_vocab, d, 1, 0.0f, 1.0f / hpp->embedding_scale);
    if (untied) ADD(GROK_TN_OUTPUT, (grok_type)type, hpp->n_vocab, d, 1, 0.0f, isd * 8.0f);
    ADD(GROK_TN_OUTPUT_NORM, GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
    for (int64_t il = 0; il < hpp->n_layers; il++) {
        char n[96];
#define NM(what) (grok_tensor_name(n, sizeof n, il, what), n)
        ADD(NM("attn_norm"), GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
        ADD(NM("attn_q"), (grok_type)type, qd, d, 1, 0.0f, isd * 2.0f);
        ADD(NM("attn_k"), (grok_type)type, kvd, d, 1, 0.0f, isd * 2.0f);
        ADD(NM("attn_v"), (grok_type)type, kvd, d, 1, 0.0f, isd);
        ADD(NM("attn_output"), (grok_type)type, d, qd, 1, 0.0f, 1.0f / sqrtf((float)qd));
        ADD(NM("attn_output_norm"), GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
        ADD(NM("ffn_norm"), GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
        ADD(NM("ffn_gate_inp"), GROK_TYPE_F32, hpp->n_experts, d, 1, 0.0f, isd * 2.0f);
        ADD(NM("ffn_gate_exps"), (grok_type)type, hpp->n_ff, d, hpp->n_experts, 0.0f, isd);
        ADD(NM("ffn_up_exps"), (grok_type)type, hpp->n_ff, d, hpp->n_experts, 0.0f, isd);
        ADD(NM("ffn_down_exps"), (grok_type)type, d, hpp->n_ff, hpp->n_experts, 0.0f,
            1.0f / sqrtf((float)hpp->n_ff));
        ADD(NM("layer_output_norm"), GROK_TYPE_F32, 1, d, 1, 1.0f, 0.1f);
#undef NM
    }
#undef ADD
    for (int64_t i = 0; i < ns && rc == 0; i++) {
        int64_t ne[3] = {s[i].cols, s[i].rows, s[i].n_mats};
        if (grok_gguf_writer_add_tensor(w, s[i].name, s[i].type, s[i].n_dims, ne, NULL) < 0) rc = -1;
    }
    if (rc) {
        snprintf(err, err_size, "%s: could not add the tensors", path);
    } else if (grok_gguf_writer_begin(w, path, err, err_size) != 0) {
        rc = -1;
    } else {
        gen_ctx g = {w, seed, 0, err, err_size};
        for (int64_t i = 0; i < ns && rc == 0; i++)
            rc = gen_tensor(&g, s[i].type, s[i].rows, s[i].cols, s[i].n_mats, s[i].mean, s[i].std);
        if (rc == 0) rc = grok_gguf_writer_finish(w, err, err_size);
    }
    free(s);
    grok_gguf_writer_free(w);
    return rc ? -1 : 0;
}
