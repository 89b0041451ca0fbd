/*
 * grok.h - the one public header of libgrok.
 *
 * libgrok loads Grok-architecture Mixture-of-Experts models from GGUF files and
 * runs them on the CPU, computing the model of GROK1.md (the official Grok-1
 * math) with f32 activations. Everything a program needs is declared here:
 * GGUF files, the SentencePiece tokenizer, the model and its per-sequence
 * contexts (KV caches), the sampler and the thread pool.
 *
 * A complete program (the header_example test compiles and runs this text):
 *
 *   char err[GROK_ERR_SIZE];
 *   grok_model *m = grok_model_load("model.gguf", err, sizeof err);
 *   if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *   grok_context_params cp = grok_context_default_params();
 *   grok_context *ctx = grok_context_create(m, &cp, err, sizeof err);
 *   size_t n;
 *   int32_t *ids = grok_tokenize(grok_model_tokenizer(m), "Hello", 5, true, &n);
 *   grok_sampler_params sp = grok_sampler_default_params();
 *   grok_sampler *s = grok_sampler_create(&sp, grok_model_hparams(m)->n_vocab);
 *   int32_t tok = -1;
 *   if (grok_decode(ctx, ids, (int64_t)n, NULL, err, sizeof err) == 0)
 *       tok = grok_sampler_sample(s, grok_context_logits(ctx), ids, n);
 *   free(ids); grok_sampler_free(s); grok_context_free(ctx); grok_model_free(m);
 *
 * Conventions:
 *  - Functions that can fail because of outside input take (char *err,
 *    size_t err_size), return NULL or a negative value, and write one line
 *    naming the file, field and offset (or flag, or value) that is wrong.
 *    Nothing in the library exits or aborts on bad input.
 *  - x_create / x_free pairs; x_free(NULL) is a no-op.
 *  - Every size, offset and element count is size_t or int64_t.
 */
#ifndef GROK_H
#define GROK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GROK_ERR_SIZE 512
#define GROK_VERSION "0.1.0"

/* ======================================================================
 * Tensor types: ggml's numbering, so GGUF files interoperate.
 * ====================================================================== */
typedef enum {
    GROK_TYPE_F32 = 0,
    GROK_TYPE_F16 = 1,
    GROK_TYPE_Q4_0 = 2,
    GROK_TYPE_Q4_1 = 3,
    GROK_TYPE_Q5_0 = 6,
    GROK_TYPE_Q5_1 = 7,
    GROK_TYPE_Q8_0 = 8,
    GROK_TYPE_Q8_1 = 9,
    GROK_TYPE_Q2_K = 10,
    GROK_TYPE_Q3_K = 11,
    GROK_TYPE_Q4_K = 12,
    GROK_TYPE_Q5_K = 13,
    GROK_TYPE_Q6_K = 14,
    GROK_TYPE_Q8_K = 15,
    GROK_TYPE_IQ2_XXS = 16,
    GROK_TYPE_IQ2_XS = 17,
    GROK_TYPE_IQ3_XXS = 18,
    GROK_TYPE_IQ1_S = 19,
    GROK_TYPE_IQ4_NL = 20,
    GROK_TYPE_IQ3_S = 21,
    GROK_TYPE_IQ2_S = 22,
    GROK_TYPE_IQ4_XS = 23,
    GROK_TYPE_I8 = 24,
    GROK_TYPE_I16 = 25,
    GROK_TYPE_I32 = 26,
    GROK_TYPE_I64 = 27,
    GROK_TYPE_F64 = 28,
    GROK_TYPE_IQ1_M = 29,
    GROK_TYPE_BF16 = 30,
    GROK_TYPE_TQ1_0 = 34,
    GROK_TYPE_TQ2_0 = 35,
    GROK_TYPE_MXFP4 = 39,
    GROK_TYPE_COUNT = 40
} grok_type;

/* Layout facts of a type, known for every type the GGUF format defines
 * (so files with types we cannot compute still parse and validate).
 * block_size is elements per block, type_size bytes per block; both are 0
 * for numbers that name no type. */
typedef struct {
    const char *name; /* "q8_0", "bf16", ... */
    int64_t block_size;
    int64_t type_size;
    bool can_compute; /* libgrok has kernels for it */
} grok_type_traits;

const grok_type_traits *grok_type_get_traits(uint32_t type);
/* Bytes of a row of n elements; -1 if n is not a multiple of the block size
 * or the type is unknown. */
int64_t grok_type_row_size(uint32_t type, int64_t n);
/* Type from a name such as "q8_0" or "F16" (case-insensitive); -1 if none. */
int grok_type_from_name(const char *name);

/* ======================================================================
 * GGUF files (v2 and v3 read, v3 written). src/gguf/
 * ====================================================================== */
typedef enum {
    GROK_GGUF_TYPE_UINT8 = 0,
    GROK_GGUF_TYPE_INT8 = 1,
    GROK_GGUF_TYPE_UINT16 = 2,
    GROK_GGUF_TYPE_INT16 = 3,
    GROK_GGUF_TYPE_UINT32 = 4,
    GROK_GGUF_TYPE_INT32 = 5,
    GROK_GGUF_TYPE_FLOAT32 = 6,
    GROK_GGUF_TYPE_BOOL = 7,
    GROK_GGUF_TYPE_STRING = 8,
    GROK_GGUF_TYPE_ARRAY = 9,
    GROK_GGUF_TYPE_UINT64 = 10,
    GROK_GGUF_TYPE_INT64 = 11,
    GROK_GGUF_TYPE_FLOAT64 = 12,
    GROK_GGUF_TYPE_COUNT
} grok_gguf_value_type;

#define GROK_GGUF_MAX_DIMS 4
#define GROK_GGUF_MAX_NAME 63 /* tensor names are at most 63 bytes, as in ggml */
#define GROK_GGUF_DEFAULT_ALIGNMENT 32

typedef struct grok_gguf_file grok_gguf_file;

/* One tensor of an opened file; owned by the grok_gguf_file. */
typedef struct {
    const char *name;               /* NUL-terminated */
    uint32_t type;                  /* grok_type */
    int32_t n_dims;                 /* 1..4 */
    int64_t ne[GROK_GGUF_MAX_DIMS]; /* ggml order: ne[0] is contiguous; unused dims are 1 */
    int64_t n_elements;
    uint64_t offset; /* from the start of its split's data section */
    size_t nbytes;
    const void *data; /* points into the memory map */
    int32_t split;    /* index of the split file holding it */
} grok_gguf_tensor;

/* Opens and validates a GGUF file (memory-mapped; no read pass over the
 * data). A path of the form NAME-00001-of-0000N.gguf opens all N splits as
 * one file. Returns NULL and writes err on any malformed input. */
grok_gguf_file *grok_gguf_open(const char *path, char *err, size_t err_size);
void grok_gguf_close(grok_gguf_file *f);

const char *grok_gguf_path(const grok_gguf_file *f);
uint32_t grok_gguf_version(const grok_gguf_file *f);
int32_t grok_gguf_n_splits(const grok_gguf_file *f);
uint64_t grok_gguf_alignment(const grok_gguf_file *f);
/* Total bytes of all split files. */
uint64_t grok_gguf_file_size(const grok_gguf_file *f);

int64_t grok_gguf_n_kv(const grok_gguf_file *f);
const char *grok_gguf_kv_key(const grok_gguf_file *f, int64_t i);
grok_gguf_value_type grok_gguf_kv_type(const grok_gguf_file *f, int64_t i);
/* Index of a key, or -1. */
int64_t grok_gguf_find_kv(const grok_gguf_file *f, const char *key);

/* Scalar getters. Numeric getters accept any integer/float kv whose value
 * is representable in the requested type. Return 0 on success, -1 when the
 * key is absent, -2 when it has an incompatible type or value. */
int grok_gguf_get_u64(const grok_gguf_file *f, const char *key, uint64_t *out);
int grok_gguf_get_i64(const grok_gguf_file *f, const char *key, int64_t *out);
int grok_gguf_get_f64(const grok_gguf_file *f, const char *key, double *out);
int grok_gguf_get_bool(const grok_gguf_file *f, const char *key, bool *out);
/* The string stays owned by f; *len may be NULL. */
int grok_gguf_get_str(const grok_gguf_file *f, const char *key, const char **out, size_t *len);

/* Arrays: element type, length, and the elements. Numeric arrays are
 * copied into aligned memory at open time, so the pointer may be cast to
 * the element type. String arrays: one element at a time. */
int grok_gguf_get_arr(const grok_gguf_file *f, const char *key, grok_gguf_value_type *elem_type, uint64_t *n);
const void *grok_gguf_get_arr_data(const grok_gguf_file *f, const char *key);
const char *grok_gguf_get_arr_str(const grok_gguf_file *f, const char *key, uint64_t i, size_t *len);

int64_t grok_gguf_n_tensors(const grok_gguf_file *f);
const grok_gguf_tensor *grok_gguf_tensor_at(const grok_gguf_file *f, int64_t i);
const grok_gguf_tensor *grok_gguf_find_tensor(const grok_gguf_file *f, const char *name);

const char *grok_gguf_value_type_name(grok_gguf_value_type t);

/* ---- writer ----
 * Collects kvs and tensor infos, then writes either all at once
 * (grok_gguf_writer_write, every tensor's data given) or streamed
 * (grok_gguf_writer_begin, then each tensor's bytes in order with
 * grok_gguf_writer_write_data, then grok_gguf_writer_finish). Output goes to a
 * temporary name beside the target and is renamed when complete, so a
 * failed or interrupted write never leaves a partial file under the real
 * name. With a split size set, writes NAME-0000i-of-0000N.gguf files in
 * llama.cpp's gguf-split layout (split.no, split.count,
 * split.tensors.count). */
typedef struct grok_gguf_writer grok_gguf_writer;

grok_gguf_writer *grok_gguf_writer_create(void);
void grok_gguf_writer_free(grok_gguf_writer *w); /* aborts an unfinished stream: removes temp files */

/* Setting a key twice replaces its value (order of first setting kept). */
int grok_gguf_writer_set_u8(grok_gguf_writer *w, const char *key, uint8_t v);
int grok_gguf_writer_set_u32(grok_gguf_writer *w, const char *key, uint32_t v);
int grok_gguf_writer_set_i32(grok_gguf_writer *w, const char *key, int32_t v);
int grok_gguf_writer_set_u64(grok_gguf_writer *w, const char *key, uint64_t v);
int grok_gguf_writer_set_f32(grok_gguf_writer *w, const char *key, float v);
int grok_gguf_writer_set_bool(grok_gguf_writer *w, const char *key, bool v);
int grok_gguf_writer_set_str(grok_gguf_writer *w, const char *key, const char *v);
/* Numeric array of n elements of elem_type (copied). */
int grok_gguf_writer_set_arr(grok_gguf_writer *w, const char *key, grok_gguf_value_type elem_type,
                             const void *data, uint64_t n);
int grok_gguf_writer_set_arr_str(grok_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copies every kv of f (except split.* and those already set in w). */
int grok_gguf_writer_copy_kvs(grok_gguf_writer *w, const grok_gguf_file *f);

/* Adds a tensor; data may be NULL when streaming. The data is not copied:
 * it must stay valid until the file is written. Returns its index or -1. */
int64_t grok_gguf_writer_add_tensor(grok_gguf_writer *w, const char *name, grok_type type, int32_t n_dims,
                                    const int64_t *ne, const void *data);
/* 0 = no splitting. Splits fall between tensors. */
void grok_gguf_writer_set_split_max_size(grok_gguf_writer *w, uint64_t max_bytes);
void grok_gguf_writer_set_alignment(grok_gguf_writer *w, uint64_t alignment);

int grok_gguf_writer_write(grok_gguf_writer *w, const char *path, char *err, size_t err_size);
int grok_gguf_writer_begin(grok_gguf_writer *w, const char *path, char *err, size_t err_size);
/* Appends bytes of the current tensor; a tensor may come in several calls. */
int grok_gguf_writer_write_data(grok_gguf_writer *w, const void *data, size_t n, char *err, size_t err_size);
int grok_gguf_writer_finish(grok_gguf_writer *w, char *err, size_t err_size);
/* The paths written (one, or one per split), valid until grok_gguf_writer_free. */
int32_t grok_gguf_writer_n_outputs(const grok_gguf_writer *w);
const char *grok_gguf_writer_output_path(const grok_gguf_writer *w, int32_t i);

/* ======================================================================
 * Tokenizer: SentencePiece BPE, identical to sentencepiece 0.1.97.
 * src/tokenizer/
 * ====================================================================== */
typedef struct grok_tokenizer grok_tokenizer;

/* SentencePiece piece types, as in sentencepiece_model.proto and
 * tokenizer.ggml.token_type. */
enum {
    GROK_TOKEN_NORMAL = 1,
    GROK_TOKEN_UNKNOWN = 2,
    GROK_TOKEN_CONTROL = 3,
    GROK_TOKEN_USER_DEFINED = 4,
    GROK_TOKEN_UNUSED = 5,
    GROK_TOKEN_BYTE = 6
};

/* From a SentencePiece .model file (protobuf, read by our own reader). */
grok_tokenizer *grok_tokenizer_load_spm(const char *path, char *err, size_t err_size);
/* From a GGUF file's tokenizer.ggml.* keys (model "llama"). */
grok_tokenizer *grok_tokenizer_from_gguf(const grok_gguf_file *f, char *err, size_t err_size);
/* A stand-in vocabulary of n pieces for random test models: control
 * [PAD] [BOS] [EOS], [UNK], then byte pieces and single letters as room
 * allows. n >= 4. */
grok_tokenizer *grok_tokenizer_placeholder(int64_t n_vocab, char *err, size_t err_size);
void grok_tokenizer_free(grok_tokenizer *t);
/* Writes tokenizer.ggml.* keys (tokens, scores, token_type, special ids,
 * add_bos/add_eos and the SentencePiece options we need) into w. */
int grok_tokenizer_to_gguf(const grok_tokenizer *t, grok_gguf_writer *w);

int64_t grok_tokenizer_n_vocab(const grok_tokenizer *t);
const char *grok_tokenizer_piece(const grok_tokenizer *t, int32_t id, size_t *len);
float grok_tokenizer_score(const grok_tokenizer *t, int32_t id);
int grok_tokenizer_type(const grok_tokenizer *t, int32_t id);
int32_t grok_tokenizer_bos(const grok_tokenizer *t); /* -1 if none */
int32_t grok_tokenizer_eos(const grok_tokenizer *t);
int32_t grok_tokenizer_unk(const grok_tokenizer *t);
int32_t grok_tokenizer_pad(const grok_tokenizer *t);
bool grok_tokenizer_add_bos(const grok_tokenizer *t);
bool grok_tokenizer_add_eos(const grok_tokenizer *t);
void grok_tokenizer_set_add_bos(grok_tokenizer *t, bool v);
void grok_tokenizer_set_add_eos(grok_tokenizer *t, bool v);

/* Encodes len bytes of text (any bytes; invalid UTF-8 handled as
 * SentencePiece does). With add_special, BOS/EOS are added as the
 * tokenizer's add_bos/add_eos say. Returns a malloc'd array (free it) and
 * its length in *n; NULL only when out of memory. */
int32_t *grok_tokenize(const grok_tokenizer *t, const char *text, size_t len, bool add_special, size_t *n);
/* Decodes ids to a malloc'd NUL-terminated string (length in *len): the
 * inverse of grok_tokenize on valid UTF-8, the dummy-prefix space removed
 * as SentencePiece's decode does. Control tokens decode to nothing. */
char *grok_detokenize(const grok_tokenizer *t, const int32_t *ids, size_t n, size_t *len);

/* Streaming decoder for generation: push one id at a time, get back only
 * complete UTF-8 characters (byte pieces are held until their character
 * is whole). at_start: the first piece pushed begins the text, so its
 * dummy-prefix space is dropped (as grok_detokenize does). */
typedef struct {
    char pending[8];
    size_t n_pending;
    bool at_start;
} grok_detok_stream;

void grok_detok_stream_init(grok_detok_stream *s, bool at_start);
/* Writes up to cap bytes to out and returns how many; never more than
 * GROK_DETOK_MAX_PIECE + 8 are produced for one id. */
#define GROK_DETOK_MAX_PIECE 256
size_t grok_detok_stream_push(grok_detok_stream *s, const grok_tokenizer *t, int32_t id, char *out,
                              size_t cap);
/* Emits what is left (an incomplete character as U+FFFD). */
size_t grok_detok_stream_flush(grok_detok_stream *s, char *out, size_t cap);

/* ======================================================================
 * Thread pool: persistent workers; each job gets (ith, nth). src/util/
 * ====================================================================== */
typedef struct grok_threadpool grok_threadpool;
typedef void (*grok_task_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: one per online core. */
grok_threadpool *grok_threadpool_create(int n_threads);
void grok_threadpool_free(grok_threadpool *p);
int grok_threadpool_size(const grok_threadpool *p);
/* Runs fn(arg, i, n) on every thread (the caller is thread 0) and returns
 * when all are done. */
void grok_threadpool_run(grok_threadpool *p, grok_task_fn fn, void *arg);

/* ======================================================================
 * Model: hyperparameters and weights bound to a GGUF file. src/model/
 * ====================================================================== */
typedef struct {
    int64_t n_vocab;
    int64_t d_model;
    int64_t n_layers;
    int64_t n_heads;
    int64_t n_kv_heads;
    int64_t head_dim; /* d_model / n_heads unless grok.attention.key_length says */
    int64_t n_ff;     /* per-expert FFN width */
    int64_t n_experts;
    int64_t n_experts_used;
    int64_t n_ctx_train;
    float rope_base;
    float norm_eps;
    float embedding_scale; /* 78.38367176906169 for Grok-1 */
    float logit_scale;     /* output multiplier, 0.5773502691896257 */
    float attn_scale;      /* attention multiplier, 0.08838834764831845 */
    float attn_softcap;    /* 30 */
    int32_t pad_id;        /* keys equal to it are masked; -1: none */
} grok_hparams;

/* Grok-1's released shapes and constants. */
grok_hparams grok_hparams_grok1(void);
/* Parameter counts from shapes: all, and those used per token (attention,
 * router, n_experts_used experts, output head). */
int64_t grok_hparams_n_params(const grok_hparams *hp);
int64_t grok_hparams_n_params_active(const grok_hparams *hp);

typedef struct grok_model grok_model;

/* Opens a model file (memory-mapped, zero-copy) and checks that every
 * required tensor is present with the shape and a type the
 * hyperparameters demand. The tokenizer is loaded when the file has one. */
grok_model *grok_model_load(const char *path, char *err, size_t err_size);
void grok_model_free(grok_model *m);
const grok_hparams *grok_model_hparams(const grok_model *m);
const grok_gguf_file *grok_model_gguf(const grok_model *m);
/* NULL when the file carries no vocabulary. */
const grok_tokenizer *grok_model_tokenizer(const grok_model *m);
/* Bytes of weights read to decode one token (the active parameters). */
int64_t grok_model_bytes_per_token(const grok_model *m);
/* Bytes of weights held in the packed (row-interleaved) form the fast
 * kernels read; 0 before the first context is created or with GROK_PACK=0. */
int64_t grok_model_packed_bytes(const grok_model *m);

/* ---- per-sequence state ---- */
typedef struct {
    int64_t n_ctx;         /* KV cache length; 0 = the model's context */
    grok_type kv_type;     /* GROK_TYPE_F32 or GROK_TYPE_F16 */
    int n_threads;         /* used when pool is NULL; <= 0 = all cores */
    grok_threadpool *pool; /* shared pool (not owned), or NULL to make one */
    int64_t n_batch;       /* tokens per forward when processing a prompt */
} grok_context_params;

grok_context_params grok_context_default_params(void);

typedef struct grok_context grok_context;

grok_context *grok_context_create(const grok_model *m, const grok_context_params *p, char *err,
                                  size_t err_size);
void grok_context_free(grok_context *c);
/* Tokens in the KV cache. */
int64_t grok_context_pos(const grok_context *c);
int64_t grok_context_n_ctx(const grok_context *c);
/* Forgets cached tokens from pos on (0 = all). */
void grok_context_truncate(grok_context *c, int64_t pos);

/* Appends n tokens at the current position and runs the model over them
 * as one batch (split into n_batch chunks). all_logits, if not NULL,
 * receives [n][n_vocab] logits; the last token's logits are always kept in
 * grok_context_logits. Fails (err) on ids out of range or a full cache. */
int grok_decode(grok_context *c, const int32_t *tokens, int64_t n, float *all_logits, char *err,
                size_t err_size);
const float *grok_context_logits(const grok_context *c);

/* One forward step for several sequences at once (continuous batching):
 * sequence i appends n[i] >= 1 tokens[i] to ctxs[i] and afterwards holds
 * its last token's logits in grok_context_logits(ctxs[i]). All contexts
 * must belong to the same model and be distinct; the step runs on ctxs[0]'s
 * thread pool and scratch, so the total token count may not exceed its
 * n_batch. Every weight is read once for the whole step. On error nothing
 * is appended to any context. */
int grok_decode_multi(grok_context *const *ctxs, const int32_t *const *tokens, const int64_t *n,
                      int64_t n_seqs, char *err, size_t err_size);
/* The same, and sequence i's logits at every one of its positions in
 * all_logits[i] ([n[i]][n_vocab]) where all_logits and all_logits[i] are
 * not NULL (prompt log-probabilities); the other sequences compute only
 * their last token's. */
int grok_decode_multi_logits(grok_context *const *ctxs, const int32_t *const *tokens, const int64_t *n,
                             float *const *all_logits, int64_t n_seqs, char *err, size_t err_size);
int64_t grok_context_n_batch(const grok_context *c);

/* What the last grok_decode or grok_decode_multi call that ran on this
 * context (the first of a multi step) read: forward steps, tokens, bytes of
 * weights (each matrix or expert counted once per step however many tokens
 * use it; the looked-up embedding rows once per token) and experts computed
 * (one per layer and selected expert per step). On a distributed model,
 * this process's share. */
typedef struct {
    int64_t steps;
    int64_t tokens;
    int64_t weight_bytes;
    int64_t expert_reads;
} grok_step_stats;
grok_step_stats grok_context_last_step(const grok_context *c);
/* The tokens in the cache, [grok_context_pos] of them (to reuse a shared
 * prompt prefix: compare, then grok_context_truncate to the common part). */
const int32_t *grok_context_tokens(const grok_context *c);

/* ======================================================================
 * Sampler. src/sampler/
 * ====================================================================== */
typedef struct {
    float temperature;     /* <= 0: greedy (argmax, lower id wins ties) */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* 1: off; official nucleus semantics, ties kept */
    float min_p;           /* 0: off */
    float repeat_penalty;  /* 1: off (llama.cpp's definition) */
    int32_t repeat_last_n; /* history window for the penalties; -1 = all */
    float presence_penalty;
    float frequency_penalty;
    uint64_t seed;
} grok_sampler_params;

grok_sampler_params grok_sampler_default_params(void);

typedef struct grok_sampler grok_sampler;
grok_sampler *grok_sampler_create(const grok_sampler_params *p, int64_t n_vocab);
void grok_sampler_free(grok_sampler *s);
/* Picks the next token from logits [n_vocab] (not modified); history is
 * the sequence so far (for penalties), may be NULL when n_history is 0. */
int32_t grok_sampler_sample(grok_sampler *s, const float *logits, const int32_t *history, size_t n_history);
/* The probabilities after all filters, for logprobs: fills probs
 * [n_vocab]; the sampler must have sampled at least once. */
const float *grok_sampler_last_probs(const grok_sampler *s);

/* Stop strings: finds the earliest occurrence of any stop string in text.
 * Returns its offset or -1; *partial is set to the length of the longest
 * suffix of text that is a prefix of a stop string (text to hold back
 * while streaming). */
int64_t grok_find_stop(const char *text, size_t len, const char *const *stops, size_t n_stops,
                       size_t *partial);

#ifdef __cplusplus
}
#endif
#endif /* GROK_H */
