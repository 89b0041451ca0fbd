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
    /* Experts stored one tensor each and not back to back (files written
     * before llama.cpp's PR #6387): where each expert of gate, up, down lies
     * in the map ([n_experts], the model owns them); NULL where expert e is
     * at data + e * stride. data is then expert 0's. Packed copies are
     * always stride apart. */
    const uint8_t **xdata[3];
    /* Per-expert tensors of different types (grok quantize --expert-aware):
     * each expert's type ([n_experts], owned by the model), or NULL where all
     * share the matrix's. gate/up/down then carry the largest expert's type
     * and size (for the memory plan's sums) and are never packed: the
     * products read each expert as stored, through grok_layer_expert. */
    const grok_type *xtype[3];
    float *layer_out_norm; /* [d_model] post-MoE RMSNorm */
} grok_layer;

/* Where expert e of a layer's matrix lies: w with stride and table xd (one
 * of grok_layer's gate/up/down, their strides and xdata). */
static inline const uint8_t *grok_expert_data(const grok_mat *w, size_t stride, const uint8_t *const *xd,
                                              int64_t e) {
    return xd ? xd[e] : w->data + (size_t)e * stride;
}
/* Expert e of a layer's gate (p 0), up (1) or down (2) matrix, its packed
 * copy with it when there is one. */
static inline grok_mat grok_layer_expert(const grok_layer *L, int p, int64_t e) {
    const grok_mat *w = p == 0 ? &L->gate : p == 1 ? &L->up : &L->down;
    const size_t stride = p == 0 ? L->gate_stride : p == 1 ? L->up_stride : L->down_stride;
    grok_mat v = grok_mat_offset(*w, (size_t)e * stride);
    v.data = grok_expert_data(w, stride, (const uint8_t *const *)L->xdata[p], e);
    if (L->xtype[p]) {
        v.type = L->xtype[p][e];
        v.row_bytes = (size_t)grok_type_row_size((uint32_t)v.type, v.cols);
        v.packed = NULL;
    }
    return v;
}

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
    grok_isa isa;             /* the level of every kernel on this model's weights (resolved at load) */
    const grok_dist *dist;    /* NULL: this process computes everything */
    grok_gguf_file *file;
    grok_tokenizer *tok;
    grok_mat token_embd; /* [n_vocab][d_model] */
    grok_mat output;     /* [n_vocab][d_model]; the embedding when tied */
    bool tied;
    float *output_norm; /* [d_model] */
    grok_layer *layers; /* [n_layers] */
    void **owned;       /* [n_owned] buffers the model frees (LoRA-merged copies, old files' expert tables) */
    int64_t n_owned;
    struct grok_pack_map {
        void *addr;
        size_t len;
    } * packs; /* packed weight copies (pack.c) */
    int64_t n_packs, packed_bytes;
    bool pack_done;
    grok_memory_plan plan; /* the plan made at the first runner (memplan.c) */
    bool planned;
    struct grok_xcache *xc;         /* the expert cache of the CACHE plan, else NULL */
    struct grok_route_trace *trace; /* routing being recorded, or NULL */
    struct grok_packfile *pf;       /* the packed file in use (packfile.c), or NULL */
    int64_t seq_bytes, n_seqs;      /* the sequences alive: their KV caches' bytes (memplan.c) */
    grok_seq_params last_seq;       /* the last sequence made (the plan's guess for those to come) */
};

/* The share a process computes: the hook's, or everything. */
grok_dist grok_model_share(const grok_model *m);

/* Makes the memory plan (once per model; later calls do nothing) for share
 * sh and a first runner of n_batch tokens on pool, then packs what it
 * packs and starts the expert cache; run by grok_runner_create. Falls back
 * to the mapped file (and logs why) when the cache cannot start. */
void grok_model_prepare(grok_model *m, const grok_dist *sh, grok_threadpool *pool, int64_t n_batch);
/* The plan for share sh and sequences like sp (NULL: the model's context)
 * run n_batch tokens a step on n_threads (memplan.c). */
int grok_plan_for(const grok_model *m, const grok_dist *sh, const grok_seq_params *sp, int64_t n_batch,
                  int n_threads, grok_memory_plan *out, char *err, size_t err_size);

/* 0, or -1 with err naming the field out of range. */
int grok_memory_params_check(const grok_memory_params *p, char *err, size_t err_size);
/* Bytes a sequence of n_ctx positions holds for share sh. */
int64_t grok_seq_bytes(const grok_model *m, const grok_dist *sh, int64_t n_ctx, grok_type kv_type);
/* A sequence like sp was made (+1) or freed (-1). A new one that the plan
 * left no room for takes it from the expert cache (fewer slots, down to
 * one), with a notice when even that is not enough. */
void grok_model_seq_account(grok_model *m, const grok_seq_params *sp, int delta);

/* ---- logging: one line per event, through the callback grok_set_log
 * installs (none: silent) ---- */
void grok_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the expert cache (xcache.c) ----
 * Slots each hold one (layer, expert) of this share's experts, laid out as
 * the resident copy would be (packed where the resident path packs, the
 * file's rows where it does not), so a product over a slot gives the bits
 * the resident model gives. The forward pass, per layer: want (the
 * router's choice, as soon as it is known: reads start), prefetch (the
 * next layer's predicted experts), then acquire / release around each
 * expert's products. Acquire blocks until the slot is filled; at most
 * grok_xcache_slots() experts may be held at once by one forward pass,
 * and the MoE blocks of concurrent passes over one model take turns
 * (grok_xcache_lock). */
#define GROK_XCACHE_CHUNK ((int64_t)4 << 20) /* bytes per read */
typedef struct grok_xcache grok_xcache;
grok_xcache *grok_xcache_create(const grok_model *m, const grok_dist *sh, const grok_memory_plan *plan,
                                char *err, size_t err_size);
void grok_xcache_free(grok_xcache *xc);
/* Lowers the number of slots in use to n (>= 1): the others are emptied
 * and their memory returned. Waits for reads under way; not during a step. */
void grok_xcache_shrink(grok_xcache *xc, int64_t n);
/* Bytes of one I/O thread's staging buffer for share sh. */
int64_t grok_xcache_stage_bytes(const grok_model *m, const grok_dist *sh);
int64_t grok_xcache_slots(const grok_xcache *xc);
/* Whether the cache serves products in kernel mode `mode` (a packed slot
 * serves only the FAST kernels; the others read the mapped file). */
bool grok_xcache_serves(const grok_xcache *xc, grok_kernel_mode mode);
void grok_xcache_lock(grok_xcache *xc);
void grok_xcache_unlock(grok_xcache *xc);
/* experts[0..n): layer il's chosen experts (this share's, ascending). */
void grok_xcache_want(grok_xcache *xc, int64_t il, const int32_t *experts, int64_t n);
void grok_xcache_prefetch(grok_xcache *xc, int64_t il, const int32_t *experts, int64_t n);
/* Holds expert e of layer il, filled, and sets its three matrices (this
 * share's rows of gate and up, columns of down) over the slot. -1 with err
 * (nothing held) when reading the model file failed, now or before. */
int grok_xcache_acquire(grok_xcache *xc, int64_t il, int64_t e, grok_mat *gate, grok_mat *up, grok_mat *down,
                        char *err, size_t err_size);
void grok_xcache_release(grok_xcache *xc, int64_t il, int64_t e);
grok_cache_stats grok_xcache_stats(const grok_xcache *xc);
void grok_xcache_reset_stats(grok_xcache *xc);

/* ---- packed files (packfile.c) ---- */
typedef struct grok_packfile grok_packfile;
/* MODEL.gguf.grokpack for m's file (its first split). */
void grok_packfile_default_path(const grok_model *m, char *buf, size_t size);
/* Opens and checks path against m's file; NULL with err when it cannot be
 * used (*absent: it does not exist). */
grok_packfile *grok_packfile_open(const grok_model *m, const char *path, bool *absent, char *err,
                                  size_t err_size);
void grok_packfile_close(grok_packfile *pf);
/* The packed copy of the model's matrix w (all its experts, stride apart)
 * in the mapped packed file, and its path and offset there; NULL when the
 * file holds no copy of it. */
const uint8_t *grok_packfile_find(const grok_packfile *pf, const grok_mat *w, const char **path,
                                  uint64_t *offset);
/* Points the packed copies of share sh's matrices (the experts too unless
 * !experts) into m->pf, asking for them ahead; the bytes so pointed. */
int64_t grok_model_use_packfile(grok_model *m, const grok_dist *sh, bool experts);

/* ---- routing traces (xcache.c) ---- */
typedef struct grok_route_trace {
    bool on; /* recording (else kept for reading) */
    int64_t n_tokens, cap, n_layers, k;
    int32_t *chosen;    /* [cap][n_layers][k] */
    int32_t *predicted; /* [cap][n_layers][k], -1: none */
} grok_route_trace;
/* Room for n more tokens: the index of the first, or -1 (no memory: the
 * trace stops growing). */
int64_t grok_route_trace_reserve(grok_route_trace *t, int64_t n);
void grok_route_trace_free(grok_model *m);

/* Builds the packed copies of the weights share sh reads, once per model
 * (later calls do nothing), the experts too unless !experts (the cache
 * holds them); run by grok_model_prepare. Packing
 * is an optimisation: what cannot be packed (no memory, a type without a
 * packed kernel) stays on the unpacked path. */
void grok_model_pack(grok_model *m, const grok_dist *sh, grok_threadpool *pool, bool experts);
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

/* The values of tensor t that are NaN or Inf, every one decoded by its
 * type's decoder (so every block scale is checked too), rows split over
 * pool; *first: the element index of the first (-1 if none). Returns -1
 * for a type without a decoder, -2 when out of memory. (check.c) */
int64_t grok_tensor_count_nonfinite(const grok_gguf_tensor *t, grok_threadpool *pool, int64_t *first);

/* The router of one token (GROK1.md): r[0..E) logits in, probabilities
 * out (softmax, summed in double); sel[0..K) the top K, ties to the lower
 * index; gates (may be NULL) = their raw probabilities (not renormalised).
 * Returns the logsumexp of the logits (the z-loss's). Both trainers route
 * with it too, so they choose what inference chooses. */
double grok_route_token(float *r, int64_t E, int64_t K, int32_t *sel, float *gates);

/* Tensor name of layer il: "blk.%d.<what>.weight". */
void grok_tensor_name(char *buf, size_t size, int64_t il, const char *what);

#endif
