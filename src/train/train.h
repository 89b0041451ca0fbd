/*
 * train.h - training of Grok-architecture models in f32 (internal).
 *
 * The trainable model keeps every parameter in one flat f32 array laid out
 * tensor after tensor in the order grok_model_write_random writes them, so
 * the optimizer, the checkpoint and gradient clipping treat the model as
 * one vector, while the forward and backward passes find each tensor by
 * its offset. The training forward pass is separate from the inference
 * engine (src/model/forward.c): it keeps every activation that backward
 * needs. The tests check that the two agree on the logits.
 */
#ifndef GROK_TRAIN_H
#define GROK_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "grok.h"

/* One parameter tensor inside the flat array: rows x cols (x n_mats)
 * row-major, cols contiguous (ggml's ne = {cols, rows, n_mats}). */
typedef struct {
    char name[64];
    int64_t off; /* in floats, from the start of the array */
    int64_t rows, cols, n_mats;
    int32_t n_dims;
    bool is_norm;   /* norms: kept f32 on output, no weight decay */
    bool is_router; /* kept f32 on output */
} grok_train_tensor;

/* Offsets (in floats) of one layer's tensors. */
typedef struct {
    int64_t attn_norm;      /* [d] */
    int64_t wq;             /* [n_heads*head_dim][d] */
    int64_t wk, wv;         /* [n_kv_heads*head_dim][d] */
    int64_t wo;             /* [d][n_heads*head_dim] */
    int64_t attn_out_norm;  /* [d] */
    int64_t ffn_norm;       /* [d] */
    int64_t router;         /* [n_experts][d] */
    int64_t gate, up;       /* [n_experts][n_ff][d] */
    int64_t down;           /* [n_experts][d][n_ff] */
    int64_t layer_out_norm; /* [d] */
} grok_train_layer_off;

typedef struct {
    grok_hparams hp;
    int64_t n_params;
    float *w;                   /* [n_params] */
    grok_train_tensor *tensors; /* [n_tensors], in file order */
    int64_t n_tensors;
    int64_t embd;                 /* [n_vocab][d] tied embedding / output head */
    int64_t output_norm;          /* [d] */
    grok_train_layer_off *layers; /* [n_layers] */
} grok_train_model;

/* Lays out (and zeroes) a model of hp's shapes; hp must be valid and tied.
 * NULL with err when the shapes are invalid or memory runs out. */
grok_train_model *grok_train_model_create(const grok_hparams *hp, char *err, size_t err_size);
void grok_train_model_free(grok_train_model *m);
/* Random initialisation: the scales of grok_model_write_random (weights
 * ~N(0, 1/fan_in), embedding rows of unit rms after the multiplier), but
 * norms exactly 1. */
void grok_train_model_init_random(grok_train_model *m, uint64_t seed);

/* Optimizer and data-order state saved in checkpoints. */
typedef struct {
    float *m, *v; /* [n_params] Adam moments */
    int64_t step; /* optimizer steps taken */
    uint64_t rng; /* batch sampler state */
    uint64_t seed;
} grok_train_optim_state;

/* Keys of a checkpoint (model or adapter) beyond its weights. */
#define GROK_TRAIN_KEY_STEP "grok.train.step"
#define GROK_TRAIN_KEY_RNG "grok.train.rng"
#define GROK_TRAIN_KEY_SEED "grok.train.seed"

/* Reads tensor name of f into dst as f32, checking its shape against t
 * (any type with kernels). */
int grok_train_read_tensor(const grok_gguf_file *f, const char *path, const char *name, float *dst,
                           const grok_train_tensor *t, char *err, size_t err_size);

/* Reads a model GGUF (any computable weight type; tied output only) into
 * f32 parameters, with its tokenizer. With st not NULL the file must be a
 * checkpoint written by grok_train_save with state: the Adam moments, step and
 * RNG are read too (st->m, st->v allocated here). */
int grok_train_load(const char *path, grok_train_model **m, grok_tokenizer **tok, grok_train_optim_state *st,
                    char *err, size_t err_size);
/* Writes the model as GGUF (atomically: temp name, then rename) with the
 * metadata of grok_model_write_random. Matrices are stored in type
 * (f32, f16, bf16 or q8_0), norms and router in f32. With st not NULL
 * (then type must be f32) the Adam state, step and RNG are added: a
 * checkpoint that `grok run` can still load as a model. */
int grok_train_save(const char *path, const grok_train_model *m, const grok_tokenizer *tok, grok_type type,
                    const grok_train_optim_state *st, const char *name, char *err, size_t err_size);

/* ---- forward / backward ---- */
typedef struct {
    float aux_coef; /* load-balancing loss coefficient */
    float z_coef;   /* router z-loss coefficient */
} grok_train_loss_cfg;

typedef struct {
    double ce;    /* mean cross-entropy (nats per token) */
    double aux;   /* load-balancing loss, mean over layers (1 = perfectly balanced) */
    double z;     /* router z-loss, mean over layers */
    double total; /* ce + aux_coef * aux + z_coef * z: what the gradient is of */
} grok_train_losses;

typedef struct grok_trainer grok_trainer;

/* Buffers for batches of up to max_batch sequences of up to max_seq
 * tokens. Work is split over the pool's threads by sequence (sequence b
 * goes to thread b % n_threads); per-thread gradients are added in thread
 * order, so results depend on the thread count but not on timing. */
grok_trainer *grok_trainer_create(const grok_train_model *m, int64_t max_batch, int64_t max_seq,
                                  grok_threadpool *pool, char *err, size_t err_size);
void grok_trainer_free(grok_trainer *t);

/* Loss and (if grad is not NULL) its gradient for n_batch sequences:
 * tokens is [n_batch][seq + 1], inputs are the first seq, targets the last
 * seq of each row. grad [n_params] is overwritten. */
int grok_trainer_step(grok_trainer *t, const int32_t *tokens, int64_t n_batch, int64_t seq,
                      const grok_train_loss_cfg *cfg, grok_train_losses *out, float *grad);
/* Logits [seq][n_vocab] of one sequence (positions 0..seq-1), the same
 * numbers the inference engine computes. */
int grok_trainer_logits(grok_trainer *t, const int32_t *tokens, int64_t seq, float *logits);
/* Tokens routed to each expert ([n_layers][n_experts] counts, each token
 * counted once per expert it uses) since the last reset, over every
 * grok_trainer_step call. */
const int64_t *grok_trainer_expert_counts(const grok_trainer *t);
void grok_trainer_reset_expert_counts(grok_trainer *t);

/* ---- optimizer ---- */
typedef struct {
    float lr;          /* peak learning rate */
    float min_lr_frac; /* cosine decays to lr * this */
    int64_t warmup;    /* linear warm-up steps */
    int64_t total;     /* total steps (end of the cosine) */
    float beta1, beta2, eps;
    float weight_decay; /* decoupled (AdamW), not on norms */
    float clip;         /* global gradient norm bound; <= 0: none */
} grok_train_adamw_cfg;

grok_train_adamw_cfg grok_train_adamw_default(void);
float grok_train_lr_at(const grok_train_adamw_cfg *c, int64_t step);
/* Clips grad to the global norm bound and takes one AdamW step (st->step
 * is incremented). Returns the gradient norm before clipping. */
double grok_train_adamw_step(grok_train_model *m, grok_train_optim_state *st, float *grad,
                             const grok_train_adamw_cfg *c);
int grok_train_optim_alloc(grok_train_optim_state *st, int64_t n_params);
void grok_train_optim_free(grok_train_optim_state *st);

/* ---- LoRA ----
 * Low-rank adapters W' = W0 + (alpha/rank) B A on the attention and/or
 * expert projections of a grok_train_model whose other weights stay frozen. The
 * adapter's A and B live in a grok_train_model of their own (tensors named as in
 * an adapter file, blk.N.<weight>.weight.lora_a / lora_b), so the AdamW
 * step, clipping and checkpoint code work on it unchanged. Training runs
 * the full model's forward and backward passes on the merged weights and
 * projects the weight gradient G onto the adapter:
 * dA = s B^T G, dB = s G A^T (s = alpha/rank), exact since W' is linear
 * in each of A and B. */
#define GROK_TRAIN_LORA_ATTN 1u    /* q, k, v, o */
#define GROK_TRAIN_LORA_EXPERTS 2u /* gate, up, down of every expert */

typedef struct {
    int64_t w;                  /* offset of W in the base model */
    int64_t rows, cols, n_mats; /* W's shape */
    int64_t a, b;               /* offsets of A [n_mats][rank][cols], B [n_mats][rows][rank] */
    int64_t w0;                 /* offset of W's frozen values in w0 */
} grok_train_lora_target;

typedef struct {
    int64_t rank;
    float alpha;
    unsigned targets;    /* GROK_TRAIN_LORA_* */
    grok_train_model *p; /* the trainable parameters: A and B of every target */
    grok_train_lora_target *t;
    int64_t n_t;
    float *w0; /* frozen copies of the adapted base weights */
} grok_train_lora;

/* Adapters of rank on base's targets; A ~ N(0, 1/in) from seed, B = 0, so
 * the adapted model starts equal to the base. Copies the base weights. */
grok_train_lora *grok_train_lora_create(const grok_train_model *base, int64_t rank, float alpha,
                                        unsigned targets, uint64_t seed, char *err, size_t err_size);
void grok_train_lora_free(grok_train_lora *l);
/* base's adapted weights = W0 + (alpha/rank) B A (the inference engine's
 * grok_lora_add, so the numbers equal an applied or merged adapter's). */
void grok_train_lora_materialize(const grok_train_lora *l, grok_train_model *base);
/* grad_lora [l->p->n_params] from the full gradient of the merged model. */
void grok_train_lora_grad(const grok_train_lora *l, const float *grad_full, float *grad_lora);
/* Writes the adapter (f32, atomically); with st also its Adam state, step
 * and sampler state (a checkpoint, still a valid adapter). */
int grok_train_lora_save(const char *path, const grok_train_lora *l, const char *base_name,
                         const grok_train_optim_state *st, char *err, size_t err_size);
/* Reads an adapter or (st not NULL) an adapter checkpoint for base;
 * refuses one made for other shapes. */
int grok_train_lora_load(const char *path, const grok_train_model *base, grok_train_lora **l,
                         grok_train_optim_state *st, char *err, size_t err_size);

#endif
