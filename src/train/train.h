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
#include "model/lora.h"

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
    double ce;        /* mean cross-entropy (nats per token) */
    double aux;       /* load-balancing loss, mean over layers (1 = perfectly balanced) */
    double z;         /* router z-loss, mean over layers */
    double total;     /* ce + aux_coef * aux + z_coef * z: what the gradient is of */
    int64_t n_scored; /* targets ce is the mean over */
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

/* ---- sums over the sequences of a batch in a fixed order (gradsum.c) ----
 * A gradient over a batch of B sequences is defined as the sum of one
 * vector per sequence in a fixed binary tree: T(a, c) = T(a, m) + T(m, c)
 * with m = a + (c - a) / 2, leaves T(b, b + 1) = sequence b's vector. A
 * process holding sequences [lo, hi) computes the largest subtrees
 * ("nodes") inside its range; combining every process's nodes by the same
 * tree gives the one-process sum bit for bit, for any number of processes.
 * (With a power-of-two count dividing B, each process holds one node.) */
typedef struct {
    int64_t a, c; /* the subtree of sequences [a, c) */
} grok_gradsum_node;

/* The nodes of [lo, hi) in the tree over [0, batch), left to right, into
 * out (room for max); returns how many (at most 2 log2(batch) + 2). */
int grok_gradsum_nodes(int64_t batch, int64_t lo, int64_t hi, grok_gradsum_node *out, int max);
/* Sequences [lo, hi) of a batch that process rank of n_ranks holds. */
void grok_gradsum_share(int64_t batch, int rank, int n_ranks, int64_t *lo, int64_t *hi);
/* out[0..len) = T(0, batch) from the values of nodes covering [0, batch)
 * left to right (vals[i] holds node i's len floats). scratch: room for
 * (depth of the tree) x len floats, depth <= 64. */
void grok_gradsum_combine(int64_t batch, const grok_gradsum_node *nodes, const float *const *vals,
                          int n_nodes, int64_t len, float *out, float *scratch);
/* Depth of the tree over [0, batch) (levels below the root). */
int grok_gradsum_depth(int64_t batch);

/* How processes exchange bytes (grok train under mpirun); the command
 * fills it from the MPI runtime (src/dist/), the library never calls MPI.
 * Both calls are collective; counts are per rank, the same array on every
 * rank, and data arrive concatenated in rank order. 0, or -1 with err. */
typedef struct {
    int rank, n_ranks;
    /* all = every rank's mine (counts[r] bytes from rank r) */
    int (*allgatherv)(void *ud, const void *mine, void *all, const size_t *counts, char *err,
                      size_t err_size);
    /* rank r gets send's part r (send_counts[r] bytes, parts in rank order);
     * recv = the parts sent to this rank by every rank (recv_counts[r] from r) */
    int (*alltoallv)(void *ud, const void *send, const size_t *send_counts, void *recv,
                     const size_t *recv_counts, char *err, size_t err_size);
    void *ud;
} grok_train_comm;

/* grad[0..len) = T(0, batch) over every process's nodes: this process
 * gives the values of its own nodes (mine[i], its nodes of
 * grok_gradsum_nodes for its share), and every process gets the same
 * bits. Each process adds up 1/n_ranks of the vector (alltoallv), then
 * the pieces are shared (allgatherv), in segments of bounded size. */
int grok_gradsum_allreduce(const grok_train_comm *comm, int64_t batch, const float *const *mine, int n_mine,
                           int64_t len, float *grad, char *err, size_t err_size);

/* ---- LoRA ----
 * Low-rank adapters W' = W + (alpha/r) B A on chosen weights of a frozen
 * base: the attention projections q, k, v, o, each expert's gate, up and
 * down, and the router (GROK_LORA_T_* in model/lora.h). A is [r][in], B is
 * [out][r], one pair per expert for the expert weights. The adapters' A
 * and B live in a grok_train_model of their own (tensors named as in an
 * adapter file, blk.N.<weight>.weight.lora_a / lora_b), so the AdamW step,
 * clipping and checkpoint code work on it unchanged. The gradient comes
 * from the trainer over the frozen base (src/train/qlora.c). */
#define GROK_TRAIN_LORA_ATTN \
    ((1u << GROK_LORA_T_Q) | (1u << GROK_LORA_T_K) | (1u << GROK_LORA_T_V) | (1u << GROK_LORA_T_O))
#define GROK_TRAIN_LORA_EXPERTS ((1u << GROK_LORA_T_GATE) | (1u << GROK_LORA_T_UP) | (1u << GROK_LORA_T_DOWN))
#define GROK_TRAIN_LORA_ROUTER (1u << GROK_LORA_T_ROUTER)

typedef struct {
    int64_t layer;
    int kind;                   /* GROK_LORA_T_* */
    int64_t rows, cols, n_mats; /* W's shape: out, in, experts (1 unless an expert weight) */
    int64_t rank;               /* the adapter's rank r; the router's is min(rank, n_experts) */
    float scale;                /* alpha / r */
    int64_t a, b;               /* offsets in p->w of A [n_mats][r][cols] and B [n_mats][rows][r] */
} grok_train_lora_target;

typedef struct {
    grok_hparams hp;
    int64_t rank;
    float alpha;
    unsigned targets;    /* bit GROK_LORA_T_x set: every layer's weight x is adapted */
    grok_train_model *p; /* the trainable parameters: A and B of every target */
    grok_train_lora_target *t;
    int64_t n_t;
    int64_t *index; /* [n_layers][GROK_LORA_N_TARGETS]: target of (layer, kind), or -1 */
} grok_train_lora;

/* Adapters of rank (the router's rank capped at n_experts) on every
 * layer's targets; A ~ N(0, 1/in) from seed, B = 0, so the adapted model
 * starts equal to the base. NULL with err for bad values (no target,
 * rank beyond a weight's smallest side, alpha <= 0) or no memory. */
grok_train_lora *grok_train_lora_create(const grok_hparams *hp, int64_t rank, float alpha, unsigned targets,
                                        uint64_t seed, char *err, size_t err_size);
void grok_train_lora_free(grok_train_lora *l);
/* The target adapting (layer, kind), or NULL. */
const grok_train_lora_target *grok_train_lora_find(const grok_train_lora *l, int64_t layer, int kind);
/* Parses "q,k,v,o,gate,up,down,router" (or the groups attn, experts, all)
 * into a target mask; 0 when s names something else. */
unsigned grok_train_lora_parse_targets(const char *s);
/* Writes the adapter (f32, atomically); with st also its Adam state, step
 * and sampler state (a checkpoint, still a valid adapter). */
int grok_train_lora_save(const char *path, const grok_train_lora *l, const char *base_name,
                         const grok_train_optim_state *st, char *err, size_t err_size);
/* Reads an adapter or (st not NULL) an adapter checkpoint for a base of
 * hp's shapes; refuses one made for other shapes. */
int grok_train_lora_load(const char *path, const grok_hparams *hp, grok_train_lora **l,
                         grok_train_optim_state *st, char *err, size_t err_size);

/* ---- training adapters over a frozen base (qlora.c) ----
 * The base is a grok_model (memory-mapped, any computable weight type,
 * tied or untied head), never copied or modified; only the adapters of a
 * grok_train_lora get a gradient. See qlora.c for the method. */
typedef struct {
    const int32_t *tokens; /* [n + 1]: inputs tokens[0..n), targets tokens[1..n] */
    const uint8_t *mask;   /* [n], or NULL for all: mask[i] != 0 when target tokens[i+1] counts */
    int64_t n;
} grok_train_seq;

typedef struct {
    grok_train_loss_cfg loss;
    float dropout;               /* LoRA dropout on each adapter's input, [0, 1) */
    uint64_t dropout_seed;       /* give each step its own */
    int64_t batch;               /* sequences in the global batch */
    const grok_train_comm *comm; /* NULL: one process; else this process holds the
                                    batch's sequences grok_gradsum_share gives it */
} grok_qlora_step_cfg;

typedef struct grok_qlora grok_qlora;

/* A trainer for steps of up to max_tok tokens (this process's share of a
 * batch) in sequences of up to max_seq; dropout: whether steps may use
 * it (room for the dropped inputs). l must outlive it; its values may
 * change between steps (the optimizer). NULL with err. */
grok_qlora *grok_qlora_create(const grok_model *base, const grok_train_lora *l, int64_t max_tok,
                              int64_t max_seq, bool dropout, grok_threadpool *pool, char *err,
                              size_t err_size);
void grok_qlora_free(grok_qlora *q);
/* Bytes the trainer holds for activations and scratch (the bound of
 * docs/finetune.md, without the base and the optimizer state). */
size_t grok_qlora_bytes(const grok_qlora *q);
/* Losses of this process's sequences seqs (grok_gradsum_share's share of
 * cfg->batch; all of them with one process) and, when grad is not NULL,
 * the gradient of out->total for the adapter's parameters ([l->p->n_params],
 * overwritten): the same bits on every process, and the same as one
 * process over the whole batch. Collective when cfg->comm is set. */
int grok_qlora_step(grok_qlora *q, const grok_train_seq *seqs, const grok_qlora_step_cfg *cfg,
                    grok_train_losses *out, float *grad, char *err, size_t err_size);
/* Logits [n_vocab] after the last of tokens[0..n) with the adapters. */
int grok_qlora_logits(grok_qlora *q, const int32_t *tokens, int64_t n, float *logits, char *err,
                      size_t err_size);

#endif
