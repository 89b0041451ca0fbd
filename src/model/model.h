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
    float *attn_norm;     /* [d_model] pre-attention RMSNorm (owned f32 copy) */
    grok_mat wq;          /* [n_heads*head_dim][d_model] */
    grok_mat wk;          /* [n_kv_heads*head_dim][d_model] */
    grok_mat wv;          /* [n_kv_heads*head_dim][d_model] */
    grok_mat wo;          /* [d_model][n_heads*head_dim] */
    float *attn_out_norm; /* [d_model] post-attention RMSNorm */
    float *ffn_norm;      /* [d_model] pre-MoE RMSNorm */
    grok_mat router;      /* [n_experts][d_model] */
    grok_mat gate;        /* per expert [n_ff][d_model]; expert e at data + e*expert_stride */
    grok_mat up;          /* per expert [n_ff][d_model] (linear branch) */
    grok_mat down;        /* per expert [d_model][n_ff] */
    size_t gate_stride, up_stride, down_stride; /* bytes between experts */
    float *layer_out_norm;                      /* [d_model] post-MoE RMSNorm */
} grok_layer;

/* Distribution hook: the share of the model one process (an MPI rank)
 * computes, and the collectives that combine the shares. Tensor split:
 * attention is split by KV heads (with their query heads; the Wo product
 * over those heads' columns is a partial sum), the MoE by experts and/or
 * by rows of every expert's FFN (the down product over those rows is a
 * partial sum), the output head by vocabulary rows. Pipeline: each rank
 * runs whole layers [l0, l1) and hands the step's activations to the next
 * rank; rank 0 also does the embedding and the output head, so the last
 * rank hands the rows that want logits back to it (only rank 0 gets
 * logits). Without a hook (NULL) a process owns everything and the forward
 * pass is exactly the single-process one. The model never calls MPI
 * itself: the callbacks (src/dist/mpi.c) do. */
typedef struct grok_dist {
    int rank, n_ranks;
    bool pipeline;      /* split by layers (else by tensors) */
    int64_t l0, l1;     /* layers [l0, l1): all of them unless pipeline */
    int64_t kvh0, kvh1; /* KV heads [kvh0, kvh1) and their query heads */
    int64_t e0, e1;     /* experts [e0, e1) */
    int64_t f0, f1;     /* FFN rows [f0, f1) of each owned expert */
    int64_t v0, v1;     /* output-head rows (vocabulary ids) [v0, v1) */
    /* buf[0..n) = the sum of every rank's buf, the same bits on every rank.
     * 0, or -1 with err. */
    int (*allreduce_sum)(void *ud, float *buf, int64_t n, char *err, size_t err_size);
    /* full[rows][n_vocab] on every rank from each rank's local[rows][v1-v0]. */
    int (*gather_vocab)(void *ud, const float *local, float *full, int64_t rows, char *err, size_t err_size);
    /* pipeline: n floats to rank `to`, from rank `from` */
    int (*send_to)(void *ud, int to, const float *buf, int64_t n, char *err, size_t err_size);
    int (*recv_from)(void *ud, int from, float *buf, int64_t n, char *err, size_t err_size);
    void *ud;
} grok_dist;

struct grok_model {
    grok_hparams hp;
    grok_model_params params; /* as loaded (environment overrides applied where they are read) */
    const grok_dist *dist; /* NULL: this process computes everything */
    grok_gguf_file *file;
    grok_tokenizer *tok;
    grok_mat token_embd; /* [n_vocab][d_model] */
    grok_mat output;     /* [n_vocab][d_model]; the embedding when tied */
    bool tied;
    float *output_norm; /* [d_model] */
    grok_layer *layers; /* [n_layers] */
    void **owned; /* [n_owned] weight buffers the model frees (LoRA-merged copies, experts of old files) */
    int64_t n_owned;
    struct grok_pack_map {
        void *addr;
        size_t len;
    } * packs; /* packed weight copies (pack.c) */
    int64_t n_packs, packed_bytes;
    bool pack_done;
};

/* Builds the packed copies of the weights share sh reads, once per model
 * (later calls do nothing); run by the first grok_runner_create. Packing
 * is an optimisation: what cannot be packed (no memory, a type without a
 * packed kernel) stays on the unpacked path. */
void grok_model_pack(grok_model *m, const grok_dist *sh, grok_threadpool *pool);
/* Frees the packed copies (the matrices' packed pointers are the caller's to clear). */
void grok_model_unpack(grok_model *m);

/* Reads hyperparameters (general.architecture must be "grok"); defaults
 * for the Grok-1 constants when keys are absent. */
int grok_hparams_from_gguf(const grok_gguf_file *f, grok_hparams *hp, char *err, size_t err_size);
/* Checks shapes for sanity (positive, divisible, not absurd). */
int grok_hparams_validate(const grok_hparams *hp, const char *where, char *err, size_t err_size);
/* Writes the grok.* keys for hp. */
int grok_hparams_to_gguf(const grok_hparams *hp, grok_gguf_writer *w);

/* Attaches a distribution hook (not copied; it must outlive the model's
 * contexts) after checking its ranges: they lie inside the shapes, and
 * every column slice (Wo by heads, down by FFN rows) starts and ends on a
 * block of the weight's type. Must come before any context is created.
 * NULL detaches. */
int grok_model_set_dist(grok_model *m, const grok_dist *d, char *err, size_t err_size);

/* Writes a randomly initialised model with hp's shapes (n_vocab and
 * pad_id come from tok) and weights of type (norms and router in f32). */
int grok_model_write_random(const char *path, const grok_hparams *hp, grok_type type,
                            const grok_tokenizer *tok, bool untied, uint64_t seed, char *err,
                            size_t err_size);

/* The router of one token (GROK1.md): r[0..E) logits in, probabilities
 * out (softmax, summed in double); sel[0..K) the top K, ties to the lower
 * index; gates (may be NULL) = their raw probabilities (not renormalised).
 * Returns the logsumexp of the logits (the z-loss's). Both trainers route
 * with it too, so they choose what inference chooses. */
double grok_route_token(float *r, int64_t E, int64_t K, int32_t *sel, float *gates);

/* Tensor name of layer il: "blk.%d.<what>.weight". */
void grok_tensor_name(char *buf, size_t size, int64_t il, const char *what);

#endif
