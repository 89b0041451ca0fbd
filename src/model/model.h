/*
 * model.h - the model's internal structures (weights bound to a GGUF file,
 * per-sequence KV caches) shared by the loader (model.c), the forward pass
 * (forward.c) and the tools that write models (new.c). Not public: users
 * see only the opaque types of grok.h.
 */
#ifndef GROK_MODEL_H
#define GROK_MODEL_H

#include "grok.h"
#include "kernels/kernels.h"

/* llama.cpp's tensor names for architecture "grok" (".weight" suffixed). */
#define GROK_TN_TOKEN_EMBD "token_embd.weight"
#define GROK_TN_OUTPUT "output.weight"
#define GROK_TN_OUTPUT_NORM "output_norm.weight"

typedef struct {
    float *attn_norm;       /* [d_model] pre-attention RMSNorm (owned f32 copy) */
    grok_mat wq;            /* [n_heads*head_dim][d_model] */
    grok_mat wk;            /* [n_kv_heads*head_dim][d_model] */
    grok_mat wv;            /* [n_kv_heads*head_dim][d_model] */
    grok_mat wo;            /* [d_model][n_heads*head_dim] */
    float *attn_out_norm;   /* [d_model] post-attention RMSNorm */
    float *ffn_norm;        /* [d_model] pre-MoE RMSNorm */
    grok_mat router;        /* [n_experts][d_model] */
    grok_mat gate;          /* per expert [n_ff][d_model]; expert e at data + e*expert_stride */
    grok_mat up;            /* per expert [n_ff][d_model] (linear branch) */
    grok_mat down;          /* per expert [d_model][n_ff] */
    size_t gate_stride, up_stride, down_stride; /* bytes between experts */
    float *layer_out_norm;  /* [d_model] post-MoE RMSNorm */
} grok_layer;

struct grok_model {
    grok_hparams hp;
    gguf_file *file;
    grok_tokenizer *tok;
    grok_mat token_embd;    /* [n_vocab][d_model] */
    grok_mat output;        /* [n_vocab][d_model]; the embedding when tied */
    bool tied;
    float *output_norm;     /* [d_model] */
    grok_layer *layers;     /* [n_layers] */
};

/* Reads hyperparameters (general.architecture must be "grok"); defaults
 * for the Grok-1 constants when keys are absent. */
int grok_hparams_from_gguf(const gguf_file *f, grok_hparams *hp, char *err, size_t err_size);
/* Checks shapes for sanity (positive, divisible, not absurd). */
int grok_hparams_validate(const grok_hparams *hp, const char *where, char *err, size_t err_size);
/* Writes the grok.* keys for hp. */
int grok_hparams_to_gguf(const grok_hparams *hp, gguf_writer *w);

/* Writes a randomly initialised model with hp's shapes (n_vocab and
 * pad_id come from tok) and weights of type (norms and router in f32). */
int grok_model_write_random(const char *path, const grok_hparams *hp, grok_type type,
                            const grok_tokenizer *tok, bool untied, uint64_t seed, char *err,
                            size_t err_size);

/* Tensor name of layer il: "blk.%d.<what>.weight". */
void grok_tensor_name(char *buf, size_t size, int64_t il, const char *what);

#endif
