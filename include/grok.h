/*
 * grok.h - the one public header of libgrok.
 *
 * libgrok loads Grok-architecture Mixture-of-Experts models from GGUF files and
 * runs them on the CPU, computing the model of GROK1.md (the official Grok-1
 * math) with f32 activations. Everything a program needs is declared here:
 * GGUF files, the SentencePiece tokenizer, the model and its per-sequence
 * contexts (KV caches), the sampler, grammars that constrain what it may draw
 * (GBNF and JSON Schema) and the thread pool.
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
 *  - Every public name starts with grok_ or GROK_, so libgrok links beside
 *    ggml and other libraries.
 *
 * Threads:
 *  - A grok_model is read-only once loaded (its packed weights are built
 *    under a lock by the first runner): any number of threads may use one
 *    model at once, each through its own runners and sequences.
 *  - A grok_runner (thread pool and scratch of one forward step) and a
 *    grok_seq (one sequence's KV cache) are used by one thread at a time:
 *    a decode call on a runner must not overlap another call on the same
 *    runner or on any of the sequences it is given. Two runners may decode
 *    at the same time over distinct sequences.
 *  - A grok_context (a runner with its own sequence) follows the same rule.
 *  - grok_threadpool_run must not be entered from two threads at once on
 *    one pool; a pool shared by runners (grok_runner_params.pool) must be
 *    used by one decode at a time.
 *  - A tokenizer is read-only after loading: tokenize and detokenize from
 *    any thread. A sampler belongs to one thread; a detok stream too.
 *  - The kernel mode is a process-wide default (GROK_KERNELS) that a
 *    model's parameters (grok_model_params.kernels) and each runner
 *    (grok_runner_set_kernel_mode) override.
 *  - The instruction set is a model's (grok_model_params.isa): every
 *    kernel on its weights (dot products, packed layouts, the f32 tiles,
 *    attention and activation quantization) uses the model's, so models
 *    of one process may use different ones at the same time. A model
 *    given none takes the process default, which grok_kernels_set_isa_cap
 *    caps before its first use; GROK_ISA overrides both.
 */
#ifndef GROK_H
#define GROK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what libgrok.so exports: the library is built with
 * -fvisibility=hidden, so only the declarations of this header are visible
 * to programs (and nothing internal can clash with another library's). */
#if defined(__GNUC__) || defined(__clang__)
#define GROK_API __attribute__((visibility("default")))
#else
#define GROK_API
#endif

#define GROK_ERR_SIZE 512
#define GROK_VERSION "0.2.0"
#define GROK_VERSION_MAJOR 0
#define GROK_VERSION_MINOR 2
#define GROK_VERSION_PATCH 0

/* The library's version ("0.2.0"), which may differ from the header's
 * GROK_VERSION when a program runs against another libgrok.so. */
GROK_API const char *grok_version(void);

/* Return codes of the decode calls (and of other calls where noted): 0 on
 * success, or one of these with a message in err. */
enum {
    GROK_OK = 0,
    GROK_ERR_INPUT = -1,     /* bad arguments: no tokens, ids out of range, a sequence of another model */
    GROK_ERR_CTX_FULL = -2,  /* the tokens do not fit the sequence's cache (nothing was appended) */
    GROK_ERR_NOMEM = -3,     /* out of memory */
    GROK_ERR_DIST = -4,      /* a collective across MPI ranks failed */
    GROK_ERR_NONFINITE = -5, /* a NaN or infinity appeared in the activations: err names the layer,
                              * the sub-block and the tensor whose output went bad; nothing was
                              * appended (grok info --check finds such weights in a file) */
    GROK_ERR_IO = -6         /* reading weights from the model file failed */
};

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
    GROK_TYPE_NVFP4 = 40,
    GROK_TYPE_Q1_0 = 41,
    GROK_TYPE_Q2_0 = 42,
    GROK_TYPE_COUNT = 43
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

GROK_API const grok_type_traits *grok_type_get_traits(uint32_t type);
/* Bytes of a row of n elements; -1 if n is not a multiple of the block size
 * or the type is unknown. */
GROK_API int64_t grok_type_row_size(uint32_t type, int64_t n);
/* Type from a name such as "q8_0" or "F16" (case-insensitive); -1 if none. */
GROK_API int grok_type_from_name(const char *name);

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
 * one file; the first of raw pieces meant to be concatenated
 * (NAME.gguf.part1ofN, NAME.gguf-split-a) opens all pieces as one file,
 * mapped in place (docs/gguf.md). Returns NULL and writes err on any
 * malformed input. */
GROK_API grok_gguf_file *grok_gguf_open(const char *path, char *err, size_t err_size);
GROK_API void grok_gguf_close(grok_gguf_file *f);

GROK_API const char *grok_gguf_path(const grok_gguf_file *f);
GROK_API uint32_t grok_gguf_version(const grok_gguf_file *f);
GROK_API int32_t grok_gguf_n_splits(const grok_gguf_file *f);
GROK_API uint64_t grok_gguf_alignment(const grok_gguf_file *f);
/* Total bytes of all split files. */
GROK_API uint64_t grok_gguf_file_size(const grok_gguf_file *f);
/* Raw pieces read as one file (0: none), and the bytes of tensors that
 * crossed a boundary between pieces that could not be mapped at
 * consecutive addresses and were read into memory (0: all in place). */
GROK_API int32_t grok_gguf_n_pieces(const grok_gguf_file *f);
GROK_API uint64_t grok_gguf_bytes_copied(const grok_gguf_file *f);
/* llama.cpp's name of a general.file_type value ("Q4_K_M", "IQ3_XS"), NULL
 * when it is none; *removed (may be NULL) says llama.cpp dropped it. */
GROK_API const char *grok_llama_ftype_name(uint32_t ftype, bool *removed);
/* Where tensor t's data starts in its split file (bytes from its start),
 * and that file's path (NULL for a split that does not exist). */
GROK_API uint64_t grok_gguf_tensor_file_offset(const grok_gguf_file *f, const grok_gguf_tensor *t);
GROK_API const char *grok_gguf_split_path(const grok_gguf_file *f, int32_t split);

GROK_API int64_t grok_gguf_n_kv(const grok_gguf_file *f);
GROK_API const char *grok_gguf_kv_key(const grok_gguf_file *f, int64_t i);
GROK_API grok_gguf_value_type grok_gguf_kv_type(const grok_gguf_file *f, int64_t i);
/* Index of a key, or -1. */
GROK_API int64_t grok_gguf_find_kv(const grok_gguf_file *f, const char *key);

/* Scalar getters. Numeric getters accept any integer/float kv whose value
 * is representable in the requested type. Return 0 on success, -1 when the
 * key is absent, -2 when it has an incompatible type or value. */
GROK_API int grok_gguf_get_u64(const grok_gguf_file *f, const char *key, uint64_t *out);
GROK_API int grok_gguf_get_i64(const grok_gguf_file *f, const char *key, int64_t *out);
GROK_API int grok_gguf_get_f64(const grok_gguf_file *f, const char *key, double *out);
GROK_API int grok_gguf_get_bool(const grok_gguf_file *f, const char *key, bool *out);
/* The string stays owned by f; *len may be NULL. */
GROK_API int grok_gguf_get_str(const grok_gguf_file *f, const char *key, const char **out, size_t *len);

/* Arrays: element type, length, and the elements. Numeric arrays are
 * copied into aligned memory at open time, so the pointer may be cast to
 * the element type. String arrays: one element at a time. */
GROK_API int grok_gguf_get_arr(const grok_gguf_file *f, const char *key, grok_gguf_value_type *elem_type,
                               uint64_t *n);
GROK_API const void *grok_gguf_get_arr_data(const grok_gguf_file *f, const char *key);
GROK_API const char *grok_gguf_get_arr_str(const grok_gguf_file *f, const char *key, uint64_t i, size_t *len);

GROK_API int64_t grok_gguf_n_tensors(const grok_gguf_file *f);
GROK_API const grok_gguf_tensor *grok_gguf_tensor_at(const grok_gguf_file *f, int64_t i);
GROK_API const grok_gguf_tensor *grok_gguf_find_tensor(const grok_gguf_file *f, const char *name);

GROK_API const char *grok_gguf_value_type_name(grok_gguf_value_type t);

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

GROK_API grok_gguf_writer *grok_gguf_writer_create(void);
/* Aborts an unfinished stream: removes its temporary files. */
GROK_API void grok_gguf_writer_free(grok_gguf_writer *w);

/* Setting a key twice replaces its value (order of first setting kept). */
GROK_API int grok_gguf_writer_set_u8(grok_gguf_writer *w, const char *key, uint8_t v);
GROK_API int grok_gguf_writer_set_u32(grok_gguf_writer *w, const char *key, uint32_t v);
GROK_API int grok_gguf_writer_set_i32(grok_gguf_writer *w, const char *key, int32_t v);
GROK_API int grok_gguf_writer_set_u64(grok_gguf_writer *w, const char *key, uint64_t v);
GROK_API int grok_gguf_writer_set_f32(grok_gguf_writer *w, const char *key, float v);
GROK_API int grok_gguf_writer_set_bool(grok_gguf_writer *w, const char *key, bool v);
GROK_API int grok_gguf_writer_set_str(grok_gguf_writer *w, const char *key, const char *v);
/* Numeric array of n elements of elem_type (copied). */
GROK_API int grok_gguf_writer_set_arr(grok_gguf_writer *w, const char *key, grok_gguf_value_type elem_type,
                                      const void *data, uint64_t n);
GROK_API int grok_gguf_writer_set_arr_str(grok_gguf_writer *w, const char *key, const char *const *strs,
                                          uint64_t n);
/* Copies every kv of f (except split.* and those already set in w). */
GROK_API int grok_gguf_writer_copy_kvs(grok_gguf_writer *w, const grok_gguf_file *f);

/* Adds a tensor; data may be NULL when streaming. The data is not copied:
 * it must stay valid until the file is written. Returns its index or -1. */
GROK_API int64_t grok_gguf_writer_add_tensor(grok_gguf_writer *w, const char *name, grok_type type,
                                             int32_t n_dims, const int64_t *ne, const void *data);
/* 0 = no splitting. Splits fall between tensors. */
GROK_API void grok_gguf_writer_set_split_max_size(grok_gguf_writer *w, uint64_t max_bytes);
GROK_API void grok_gguf_writer_set_alignment(grok_gguf_writer *w, uint64_t alignment);

GROK_API int grok_gguf_writer_write(grok_gguf_writer *w, const char *path, char *err, size_t err_size);
GROK_API int grok_gguf_writer_begin(grok_gguf_writer *w, const char *path, char *err, size_t err_size);
/* Appends bytes of the current tensor; a tensor may come in several calls. */
GROK_API int grok_gguf_writer_write_data(grok_gguf_writer *w, const void *data, size_t n, char *err,
                                         size_t err_size);
GROK_API int grok_gguf_writer_finish(grok_gguf_writer *w, char *err, size_t err_size);
/* The paths written (one, or one per split), valid until grok_gguf_writer_free. */
GROK_API int32_t grok_gguf_writer_n_outputs(const grok_gguf_writer *w);
GROK_API const char *grok_gguf_writer_output_path(const grok_gguf_writer *w, int32_t i);

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
GROK_API grok_tokenizer *grok_tokenizer_load_spm(const char *path, char *err, size_t err_size);
/* From a GGUF file's tokenizer.ggml.* keys (model "llama"). */
GROK_API grok_tokenizer *grok_tokenizer_from_gguf(const grok_gguf_file *f, char *err, size_t err_size);
/* A stand-in vocabulary of n pieces for random test models: control
 * [PAD] [BOS] [EOS], [UNK], then byte pieces and single letters as room
 * allows. n >= 4. */
GROK_API grok_tokenizer *grok_tokenizer_placeholder(int64_t n_vocab, char *err, size_t err_size);
GROK_API void grok_tokenizer_free(grok_tokenizer *t);
/* Writes tokenizer.ggml.* keys (tokens, scores, token_type, special ids,
 * add_bos/add_eos and the SentencePiece options we need) into w. */
GROK_API int grok_tokenizer_to_gguf(const grok_tokenizer *t, grok_gguf_writer *w);

GROK_API int64_t grok_tokenizer_n_vocab(const grok_tokenizer *t);
GROK_API const char *grok_tokenizer_piece(const grok_tokenizer *t, int32_t id, size_t *len);
GROK_API float grok_tokenizer_score(const grok_tokenizer *t, int32_t id);
GROK_API int grok_tokenizer_type(const grok_tokenizer *t, int32_t id);
GROK_API int32_t grok_tokenizer_bos(const grok_tokenizer *t); /* -1 if none */
GROK_API int32_t grok_tokenizer_eos(const grok_tokenizer *t);
GROK_API int32_t grok_tokenizer_unk(const grok_tokenizer *t);
GROK_API int32_t grok_tokenizer_pad(const grok_tokenizer *t);
GROK_API bool grok_tokenizer_add_bos(const grok_tokenizer *t);
GROK_API bool grok_tokenizer_add_eos(const grok_tokenizer *t);
GROK_API void grok_tokenizer_set_add_bos(grok_tokenizer *t, bool v);
GROK_API void grok_tokenizer_set_add_eos(grok_tokenizer *t, bool v);

/* Encodes len bytes of text (any bytes; invalid UTF-8 handled as
 * SentencePiece does). With add_special, BOS/EOS are added as the
 * tokenizer's add_bos/add_eos say. Returns a malloc'd array (free it) and
 * its length in *n; NULL only when out of memory. */
GROK_API int32_t *grok_tokenize(const grok_tokenizer *t, const char *text, size_t len, bool add_special,
                                size_t *n);
/* Decodes ids to a malloc'd NUL-terminated string (length in *len): the
 * inverse of grok_tokenize on valid UTF-8, the dummy-prefix space removed
 * as SentencePiece's decode does. Control tokens decode to nothing. */
GROK_API char *grok_detokenize(const grok_tokenizer *t, const int32_t *ids, size_t n, size_t *len);

/* The same into a caller's buffers, as llama.h does: grok_tokenize_into
 * writes up to cap ids and returns how many the text encodes to (a value
 * above cap means the buffer was too small: call again with that size);
 * grok_detokenize_into writes up to cap - 1 bytes and a NUL (cap >= 1) and
 * returns the whole text's length. Both return -1 when out of memory. */
GROK_API int64_t grok_tokenize_into(const grok_tokenizer *t, const char *text, size_t len, bool add_special,
                                    int32_t *out, int64_t cap);
GROK_API int64_t grok_detokenize_into(const grok_tokenizer *t, const int32_t *ids, size_t n, char *out,
                                      size_t cap);

/* Streaming decoder for generation: push one id at a time, get back only
 * complete UTF-8 characters (byte pieces are held until their character
 * is whole). at_start: the first piece pushed begins the text, so its
 * dummy-prefix space is dropped (as grok_detokenize does). */
typedef struct {
    char pending[8];
    size_t n_pending;
    bool at_start;
} grok_detok_stream;

GROK_API void grok_detok_stream_init(grok_detok_stream *s, bool at_start);
/* Writes up to cap bytes to out and returns how many; never more than
 * GROK_DETOK_MAX_PIECE + 8 are produced for one id. */
#define GROK_DETOK_MAX_PIECE 256
GROK_API size_t grok_detok_stream_push(grok_detok_stream *s, const grok_tokenizer *t, int32_t id, char *out,
                                       size_t cap);
/* Emits what is left (an incomplete character as U+FFFD). */
GROK_API size_t grok_detok_stream_flush(grok_detok_stream *s, char *out, size_t cap);

/* The bytes token id stands for in the middle of a text (a continuation
 * keeps a piece's leading space; a byte piece is its one raw byte, which
 * may be part of a character; control pieces are nothing), at most cap of
 * them written to out. Returns how many. */
GROK_API size_t grok_token_text(const grok_tokenizer *t, int32_t id, char *out, size_t cap);

/* ======================================================================
 * Thread pool: persistent workers; each job gets (ith, nth). src/util/
 * ====================================================================== */
typedef struct grok_threadpool grok_threadpool;
typedef void (*grok_task_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: one per online core. */
GROK_API grok_threadpool *grok_threadpool_create(int n_threads);
GROK_API void grok_threadpool_free(grok_threadpool *p);
GROK_API int grok_threadpool_size(const grok_threadpool *p);
/* Runs fn(arg, i, n) on every thread (the caller is thread 0) and returns
 * when all are done. */
GROK_API void grok_threadpool_run(grok_threadpool *p, grok_task_fn fn, void *arg);

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
GROK_API grok_hparams grok_hparams_grok1(void);
/* Parameter counts from shapes: all, and those used per token (attention,
 * router, n_experts_used experts, output head). */
GROK_API int64_t grok_hparams_n_params(const grok_hparams *hp);
GROK_API int64_t grok_hparams_n_params_active(const grok_hparams *hp);

typedef struct grok_model grok_model;

/* Which kernels compute the products.
 * FAST: the best kernels for this CPU; weights of a block-quantized type
 *   meet activations quantized to 8 bits in integer dot products, as ggml
 *   does (relative error ~0.3 % per product from the 8-bit activations).
 * EXACT: the best kernels for this CPU with f32 activations: the f32
 *   product up to summation order (grok logits uses it, so an independent
 *   reference can check the model number for number).
 * REFERENCE: the scalar kernels, the ground truth the others are tested
 *   against.
 * DEFAULT: the process-wide mode (FAST unless GROK_KERNELS or
 *   grok_kernels_set_mode say otherwise), read at every step. */
typedef enum {
    GROK_KERNELS_DEFAULT = -1,
    GROK_KERNELS_FAST = 0,
    GROK_KERNELS_EXACT = 1,
    GROK_KERNELS_REFERENCE = 2
} grok_kernel_mode;

/* How weights live in memory: the plan the first runner makes (see the
 * "Memory" section below). */
typedef enum {
    GROK_PLAN_AUTO = 0,   /* chosen by the limit */
    GROK_PLAN_PACKED = 1, /* every weight packed in memory */
    GROK_PLAN_CACHE = 2,  /* dense weights packed, experts through the cache */
    GROK_PLAN_MMAP = 3    /* the file's pages only */
} grok_plan_kind;

typedef enum {
    GROK_CACHE_LRU = 0, /* least recently used */
    GROK_CACHE_LFU = 1, /* least frequently used (counts kept for evicted keys, halved as they age) */
    GROK_CACHE_ARC = 2  /* adaptive replacement (recency and frequency lists with ghosts) */
} grok_cache_policy;

/* How weights live in memory (the "Memory" section below). */
typedef struct {
    int64_t limit;            /* bytes this process may use: 0 = find it (cgroup, MemAvailable), < 0 = none */
    grok_plan_kind plan;      /* GROK_PLAN_AUTO: by the limit; else forced */
    int64_t cache_slots;      /* CACHE: slots; 0 = as many as the limit leaves room for */
    grok_cache_policy policy; /* eviction policy of the expert cache */
    int prefetch;             /* read ahead the next layer's experts as its router predicts them from the
                               * current hidden state: 0 never; 1 (default) when admitted: only over a
                               * victim used no more often (TinyLFU admission); 2 always */
    int io_threads;           /* threads reading into the cache (0 = 2) */
    bool buffered_io;         /* read through the page cache (dropping the pages after) instead of O_DIRECT */
    int64_t n_contexts;       /* sequences (KV caches) to leave room for, 0 = 1 */
    const char *pack_file; /* the packed copy to map (grok_model_write_packfile): NULL = MODEL.gguf.grokpack
                               * when it is there, "" = none; must outlive the first runner */
} grok_memory_params;

/* How a model is loaded. Environment variables, where set, override these
 * (GROK_PACK=0 turns packing off, GROK_KERNELS=fast|exact|reference sets
 * the mode, GROK_ISA the instruction set), so a program can be measured
 * both ways without a rebuild. */
typedef struct {
    bool pack;                 /* build the packed (row-interleaved) copy the FAST kernels read (true);
                                * false: the mapped file only, whatever the memory plan */
    grok_kernel_mode kernels;  /* the mode of this model's runners (GROK_KERNELS_DEFAULT) */
    const char *isa;           /* cap on the instruction set of this model's kernels: "scalar", "avx2",
                                * "avx512vnni", "avx512vbmi" or "neon" (a cap above the CPU's gives the
                                * CPU's best; an unknown name fails the load); NULL: the process default
                                * (grok_kernels_isa) */
    grok_memory_params memory; /* grok_memory_default_params() */
} grok_model_params;

GROK_API grok_model_params grok_model_default_params(void);

/* The process's default instruction set: "avx512vbmi" (AVX-512 VNNI with
 * the kernels that need VBMI and BITALG), "avx512vnni", "avx2", "neon" or
 * "scalar" (the best the CPU has, under the cap). */
GROK_API const char *grok_kernels_isa(void);
/* Caps the default instruction set ("scalar", "avx2", "avx512vnni",
 * "avx512vbmi", "neon"; NULL: no cap), as GROK_ISA does, for models loaded
 * without grok_model_params.isa. It must come before the default's first
 * use (the first such model, or a kernel call outside a model), and
 * GROK_ISA, when set, overrides it. Returns 0, or -1 for an unknown name
 * or once the default is fixed (nothing changes then). */
GROK_API int grok_kernels_set_isa_cap(const char *isa);

/* Opens a model file (memory-mapped, zero-copy) and checks that every
 * required tensor is present with the shape and a type the
 * hyperparameters demand. The tokenizer is loaded when the file has one.
 * grok_model_load uses the default parameters. */
GROK_API grok_model *grok_model_load(const char *path, char *err, size_t err_size);
GROK_API grok_model *grok_model_load_params(const char *path, const grok_model_params *p, char *err,
                                            size_t err_size);
GROK_API void grok_model_free(grok_model *m);
GROK_API const grok_hparams *grok_model_hparams(const grok_model *m);
GROK_API const grok_gguf_file *grok_model_gguf(const grok_model *m);
/* NULL when the file carries no vocabulary. */
GROK_API const grok_tokenizer *grok_model_tokenizer(const grok_model *m);
/* Bytes of weights read to decode one token (the active parameters). */
GROK_API int64_t grok_model_bytes_per_token(const grok_model *m);
/* Bytes of weights held in the packed (row-interleaved) form the fast
 * kernels read; 0 before the first runner is created or without packing. */
GROK_API int64_t grok_model_packed_bytes(const grok_model *m);
/* The kernel mode the model's runners start with: GROK_KERNELS from the
 * environment if set, else the parameters' (possibly DEFAULT). */
GROK_API grok_kernel_mode grok_model_kernel_mode(const grok_model *m);
/* The instruction set the model's kernels use (grok_kernels_isa's names):
 * grok_model_params.isa's cap, or the default, or GROK_ISA's where set. */
GROK_API const char *grok_model_isa(const grok_model *m);

/* ---- sequences, runners and contexts ----
 * A sequence (grok_seq) is what one conversation keeps between steps: its
 * KV cache, its tokens, its position and its last logits. A runner
 * (grok_runner) is what computes: a thread pool and the scratch of one
 * forward step of up to n_batch tokens, which may belong to several
 * sequences at once (continuous batching). A server keeps one runner and a
 * sequence per slot; a simple program uses a grok_context, which is a
 * runner with one sequence of its own. */
typedef struct grok_seq grok_seq;
typedef struct grok_runner grok_runner;

typedef struct {
    int64_t n_ctx;     /* KV cache length; 0 = the model's context */
    grok_type kv_type; /* GROK_TYPE_F32 or GROK_TYPE_F16 */
} grok_seq_params;

GROK_API grok_seq_params grok_seq_default_params(void);
GROK_API grok_seq *grok_seq_create(const grok_model *m, const grok_seq_params *p, char *err, size_t err_size);
GROK_API void grok_seq_free(grok_seq *s);
/* Tokens in the KV cache. */
GROK_API int64_t grok_seq_pos(const grok_seq *s);
GROK_API int64_t grok_seq_n_ctx(const grok_seq *s);
/* Forgets cached tokens from pos on (0 = all). */
GROK_API void grok_seq_truncate(grok_seq *s, int64_t pos);
/* The last decoded token's logits [n_vocab]. */
GROK_API const float *grok_seq_logits(const grok_seq *s);
/* The tokens in the cache, [grok_seq_pos] of them (to reuse a shared
 * prompt prefix: compare, then grok_seq_truncate to the common part). */
GROK_API const int32_t *grok_seq_tokens(const grok_seq *s);
/* Makes dst hold src's first n_tokens cached tokens (their keys and values
 * copied, so that several samples of one prompt compute it once): dst's
 * earlier content is dropped and its position becomes n_tokens. When
 * n_tokens is the position of src's last decode, its logits are copied
 * too (dst can sample at once); otherwise dst's logits are not its last
 * token's until it decodes, as after grok_seq_truncate. What dst then
 * computes equals, bit for bit, what it computes after decoding those
 * tokens itself. Both belong to one model and have one KV type; dst ==
 * src truncates. Returns 0, GROK_ERR_INPUT (n_tokens beyond src's position,
 * another model or KV type) or GROK_ERR_CTX_FULL (dst's context is too
 * short), with err; on an error dst is unchanged. */
GROK_API int grok_seq_copy(grok_seq *dst, const grok_seq *src, int64_t n_tokens, char *err, size_t err_size);

/* ---- the router's record (MoE microscope, expert caches) ----
 * A hook attached to a sequence sees, for every token of that sequence
 * and every layer, what the router computed: its softmax over all experts
 * and the experts it chose with their gates. It is called on the thread
 * that runs the forward step, synchronously, right after the layer's
 * selection and before any expert of that layer is computed (so an expert
 * cache may fetch the chosen experts in it); within a step, layer by
 * layer, and in a layer for the step's tokens in order (a step may also
 * hold other sequences' tokens: they go to their own hooks). The pointers
 * are valid only during the call. A sequence without a hook pays one NULL
 * test per token and layer. On a distributed model only the layers this
 * process computes are seen (all of them, except in a pipeline split). */
typedef struct {
    int64_t pos;            /* the token's position in its sequence */
    int32_t token;          /* its id */
    int64_t layer;          /* 0 .. n_layers - 1 */
    int64_t n_experts;      /* E */
    int64_t n_used;         /* K */
    const float *probs;     /* [E] router softmax (f32, as the experts use it) */
    const int32_t *experts; /* [K] chosen experts, highest probability first (ties: lower index) */
    const float *gates;     /* [K] their gates: probs[experts[k]], not renormalised */
} grok_routing;
typedef void (*grok_routing_fn)(void *user, const grok_routing *r);
/* Attaches fn (NULL detaches); user is passed back unchanged. */
GROK_API void grok_seq_set_routing_hook(grok_seq *s, grok_routing_fn fn, void *user);

typedef struct {
    int n_threads;         /* used when pool is NULL; <= 0 = all cores */
    grok_threadpool *pool; /* shared pool (not owned), or NULL to make one */
    int64_t n_batch;       /* most tokens one forward step takes (256) */
} grok_runner_params;

GROK_API grok_runner_params grok_runner_default_params(void);
/* The first runner of a model builds its packed weights (once). */
GROK_API grok_runner *grok_runner_create(const grok_model *m, const grok_runner_params *p, char *err,
                                         size_t err_size);
GROK_API void grok_runner_free(grok_runner *r);
GROK_API int64_t grok_runner_n_batch(const grok_runner *r);
/* Overrides the model's kernel mode for this runner's steps. */
GROK_API void grok_runner_set_kernel_mode(grok_runner *r, grok_kernel_mode mode);

/* Appends n tokens to s and runs the model over them, in steps of up to
 * the runner's n_batch. all_logits, if not NULL, receives [n][n_vocab]
 * logits; the last token's logits are always kept in grok_seq_logits.
 * Returns 0 or a GROK_ERR_ code; ids out of range or a full cache are
 * refused before anything is appended, and after GROK_ERR_NONFINITE the
 * steps already run are taken back (the sequence is as before the call). */
GROK_API int grok_runner_decode(grok_runner *r, grok_seq *s, const int32_t *tokens, int64_t n,
                                float *all_logits, char *err, size_t err_size);

/* One forward step for several sequences at once (continuous batching):
 * sequence i appends n[i] >= 1 tokens[i] and afterwards holds its last
 * token's logits in grok_seq_logits(seqs[i]). All sequences belong to the
 * runner's model and are distinct, and the total token count is at most
 * the runner's n_batch. Every weight is read once for the whole step, and
 * each sequence's numbers are those it gets alone. On a refused request
 * nothing is appended to any sequence. Returns 0 or a GROK_ERR_ code. */
GROK_API int grok_decode_multi(grok_runner *r, grok_seq *const *seqs, const int32_t *const *tokens,
                               const int64_t *n, int64_t n_seqs, char *err, size_t err_size);
/* The same, and sequence i's logits at every one of its positions in
 * all_logits[i] ([n[i]][n_vocab]) where all_logits and all_logits[i] are
 * not NULL (prompt log-probabilities); the other sequences compute only
 * their last token's. */
GROK_API int grok_decode_multi_logits(grok_runner *r, grok_seq *const *seqs, const int32_t *const *tokens,
                                      const int64_t *n, float *const *all_logits, int64_t n_seqs, char *err,
                                      size_t err_size);

/* What the runner's last decode call read: forward steps, tokens, bytes of
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
GROK_API grok_step_stats grok_runner_last_step(const grok_runner *r);

/* ---- what each weight matrix reads (importance matrices) ----
 * A hook attached to a runner sees the input rows of every product with a
 * weight matrix, as the product reads them (f32, after the norms; for the
 * down projections, gelu(gate) * up), named by the weight's GGUF tensor
 * name. An expert tensor is seen per expert, with only the rows of the
 * tokens routed to it, so the counts of its rows are the expert's token
 * counts. It is called synchronously on the thread running the step,
 * before each product; the pointers are valid only during the call. It is
 * not called on a model distributed across MPI ranks. grok imatrix is
 * built on it. */
typedef struct {
    const char *tensor; /* "blk.3.attn_q.weight", "blk.3.ffn_down_exps.weight", "output.weight" */
    int64_t layer;      /* -1 for the output head */
    int64_t expert;     /* the slice of a stacked expert tensor, or -1 for a dense matrix */
    int64_t n_experts;  /* slices of the tensor: n_experts for expert tensors, else 1 */
    const float *x;     /* [n_rows][n_cols] */
    int64_t n_rows, n_cols;
} grok_matmul_input;
typedef void (*grok_matmul_input_fn)(void *user, const grok_matmul_input *in);
/* Attaches fn (NULL detaches); user is passed back unchanged. */
GROK_API void grok_runner_set_input_hook(grok_runner *r, grok_matmul_input_fn fn, void *user);

/* An importance matrix (src/model/imatrix.c): per weight matrix, and per
 * expert of a stacked expert tensor, the sum of squared inputs per column
 * and the number of rows read, as llama-imatrix collects them. Attach
 * grok_imatrix_hook with the imatrix as user to collect; it is not
 * thread-safe (one runner at a time). Files: llama.cpp's imatrix GGUF,
 * or its legacy .dat (by the name's .dat suffix or legacy = true), both
 * read by grok_imatrix_load, which adds a file's sums to what is held;
 * chunk_size converts the legacy file's per-chunk means (512 when <= 0). */
typedef struct grok_imatrix grok_imatrix;
GROK_API grok_imatrix *grok_imatrix_create(int64_t chunk_size);
GROK_API void grok_imatrix_free(grok_imatrix *im);
GROK_API void grok_imatrix_hook(void *imatrix, const grok_matmul_input *in);
/* The first problem the hook met (a non-finite input, a shape that
 * disagrees with a loaded file, no memory), or NULL; collection stops. */
GROK_API const char *grok_imatrix_error(const grok_imatrix *im);
GROK_API int grok_imatrix_add_dataset(grok_imatrix *im, const char *name);
/* The last dataset named (the text it was collected on), or NULL. */
GROK_API const char *grok_imatrix_dataset(const grok_imatrix *im);
GROK_API void grok_imatrix_add_chunks(grok_imatrix *im, int64_t n);
GROK_API int64_t grok_imatrix_chunk_count(const grok_imatrix *im);
GROK_API int64_t grok_imatrix_chunk_size(const grok_imatrix *im);
GROK_API int grok_imatrix_load(grok_imatrix *im, const char *path, char *err, size_t err_size);
GROK_API int grok_imatrix_save(const grok_imatrix *im, const char *path, bool legacy, char *err,
                               size_t err_size);
/* The mean squared input of each of n_cols columns of a tensor (expert
 * slice e, or -1 for a dense matrix) into out, and the rows behind it
 * (*count, may be NULL); 0, -1 when the tensor is absent, -2 when its
 * shape does not fit. */
GROK_API int grok_imatrix_weights(const grok_imatrix *im, const char *tensor, int64_t expert, int64_t n_cols,
                                  float *out, int64_t *count);
/* Entry i (0 .. n_entries-1): its tensor name, shape and row counts (one,
 * or one per expert); 0, or -1 out of range. */
GROK_API int64_t grok_imatrix_n_entries(const grok_imatrix *im);
GROK_API int grok_imatrix_entry(const grok_imatrix *im, int64_t i, const char **tensor, int64_t *n_cols,
                                int64_t *n_mat, const int64_t **counts, int64_t *n_counts);

/* ---- the one-sequence context ---- */
typedef struct {
    int64_t n_ctx;         /* KV cache length; 0 = the model's context */
    grok_type kv_type;     /* GROK_TYPE_F32 or GROK_TYPE_F16 */
    int n_threads;         /* used when pool is NULL; <= 0 = all cores */
    grok_threadpool *pool; /* shared pool (not owned), or NULL to make one */
    int64_t n_batch;       /* tokens per forward step when processing a prompt (at most n_ctx) */
} grok_context_params;

GROK_API grok_context_params grok_context_default_params(void);

typedef struct grok_context grok_context;

GROK_API grok_context *grok_context_create(const grok_model *m, const grok_context_params *p, char *err,
                                           size_t err_size);
GROK_API void grok_context_free(grok_context *c);
/* The context's runner and sequence (owned by it). */
GROK_API grok_runner *grok_context_runner(grok_context *c);
GROK_API grok_seq *grok_context_seq(grok_context *c);
/* grok_runner_decode on the context's own runner and sequence. */
GROK_API int grok_decode(grok_context *c, const int32_t *tokens, int64_t n, float *all_logits, char *err,
                         size_t err_size);
/* The sequence's and the runner's accessors, for the context's own. */
GROK_API int64_t grok_context_pos(const grok_context *c);
GROK_API int64_t grok_context_n_ctx(const grok_context *c);
GROK_API int64_t grok_context_n_batch(const grok_context *c);
GROK_API void grok_context_truncate(grok_context *c, int64_t pos);
GROK_API const float *grok_context_logits(const grok_context *c);
GROK_API const int32_t *grok_context_tokens(const grok_context *c);
GROK_API grok_step_stats grok_context_last_step(const grok_context *c);
/* grok_seq_set_routing_hook on the context's sequence. */
GROK_API void grok_context_set_routing_hook(grok_context *c, grok_routing_fn fn, void *user);

/* ======================================================================
 * Memory: a plan by the memory limit, and the expert cache for models
 * larger than it. src/model/memplan.c, src/model/xcache.c
 *
 * At its first runner (grok_runner_create, grok_context_create) the model
 * plans how its weights live in memory, from the memory this process may
 * use (the tightest cgroup v1 or v2 limit along its cgroup path less what
 * the group already holds outside the page cache, MemAvailable, or
 * grok_memory_params.limit):
 *  - PACKED: every weight in the packed form the fast kernels read
 *    (anonymous memory), when it fits;
 *  - CACHE: the dense weights (attention, router, norms, embedding and
 *    output) packed, and the experts in a fixed number of (layer, expert)
 *    slots in the packed layout, filled by explicit reads from the file on
 *    I/O threads (O_DIRECT, so the page cache holds no second copy) and
 *    evicted by a policy; the router of the next layer, applied to the
 *    current hidden state, predicts which experts to read ahead;
 *  - MMAP: weights read where they lie in the mapped file (page cache
 *    only), when not even the dense weights and two slots fit.
 * The logits are the same bits in every plan that packs (PACKED, CACHE at
 * any number of slots). Without a distribution hook a model computes its
 * whole share; with one, each rank plans for its own share.
 * ====================================================================== */

/* The defaults: those grok_memory_set_default gave, else: the limit
 * found, the plan by it, as many slots as fit, LFU, prefetch on, 2 I/O
 * threads, O_DIRECT, one context. */
GROK_API grok_memory_params grok_memory_default_params(void);
/* Where the library's one-line notices go (the memory plan, a fallback):
 * fn(ud, line) with no newline; none (the default) keeps them silent. */
GROK_API void grok_set_log(void (*fn)(void *ud, const char *line), void *ud);
/* The parameters models loaded from now on start with (process-wide; the
 * grok command sets them from its --mem-* flags). */
GROK_API void grok_memory_set_default(const grok_memory_params *p);
/* Sets how the model plans its memory; before its first context (else -1
 * with err). The parameters are copied. */
GROK_API int grok_model_set_memory(grok_model *m, const grok_memory_params *p, char *err, size_t err_size);

typedef struct {
    grok_plan_kind kind;
    int64_t limit;              /* the bytes planned for; -1 when no limit was found */
    char limit_source[192];     /* where the limit came from, e.g. "cgroup v1 /sys/fs/cgroup/memory/x" */
    int64_t weight_bytes;       /* this share's weights */
    int64_t dense_bytes;        /* its weights other than the experts */
    int64_t expert_bytes;       /* one (layer, expert) slot */
    int64_t n_expert_keys;      /* (layer, expert) pairs of this share */
    int64_t cache_slots;        /* CACHE: slots; PACKED: all keys; MMAP: 0 */
    int64_t reserve_bytes;      /* KV caches, scratch, I/O buffers and headroom */
    int64_t reserve_bytes_seqs; /* ... of which for the sequences' KV caches */
    int64_t resident_bytes;     /* what the plan keeps resident (weights in memory + reserve) */
    grok_cache_policy policy;
    int prefetch;
    bool direct_io;           /* CACHE: reads bypass the page cache */
    int64_t read_ahead_bytes; /* MMAP: what a fault reads around its page (the device's read-ahead); 0 when
                                 * the limit leaves the page cache too little room for that (MADV_RANDOM:
                                 * each fault reads its page only), or in the other plans */
    char pack_file[256];      /* the packed file mapped, "" when none */
} grok_memory_plan;

/* The plan the model runs with; NULL before its first runner. */
GROK_API const grok_memory_plan *grok_model_memory_plan(const grok_model *m);
/* What the first runner would plan for a runner like rp and sequences
 * like sp (NULL: the defaults; n_contexts of them, besides any made),
 * without doing it. 0, or -1 with err. */
GROK_API int grok_model_plan_memory(const grok_model *m, const grok_seq_params *sp,
                                    const grok_runner_params *rp, grok_memory_plan *out, char *err,
                                    size_t err_size);
/* Writes the packed layout of every matrix the fast kernels read packed
 * into path (NULL: MODEL.gguf.grokpack beside the model), atomically,
 * packing on pool (NULL: one thread). A model that finds it there maps it
 * instead of packing at every start, and its expert cache reads from it. */
GROK_API int grok_model_write_packfile(const grok_model *m, const char *path, grok_threadpool *pool,
                                       char *err, size_t err_size);
/* One line describing a plan (no newline). */
GROK_API void grok_memory_plan_describe(const grok_memory_plan *p, char *buf, size_t size);
GROK_API const char *grok_plan_name(grok_plan_kind k);
GROK_API const char *grok_cache_policy_name(grok_cache_policy p);
/* Parses "lru", "lfu", "arc"; -1 if none. */
GROK_API int grok_cache_policy_from_name(const char *name);
/* Parses a size: bytes, or a number with K, M, G or T (powers of 1024,
 * optionally followed by "iB" or "B"), e.g. "1.5G", "512MiB". -1 if malformed. */
GROK_API int64_t grok_parse_size(const char *s);
/* The memory this process may use, as the plan finds it (limit 0), and
 * where it came from; -1 when there is no limit to find. */
GROK_API int64_t grok_memory_available(char *source, size_t source_size);

/* What the expert cache did since the model's first context (or the last
 * grok_model_cache_reset). All zero in the other plans. */
typedef struct {
    int64_t lookups;         /* (layer, expert) uses by forward steps */
    int64_t hits;            /* ... found in a slot, read */
    int64_t late_hits;       /* ... being read already (by a prefetch) */
    int64_t misses;          /* ... that had to be read */
    int64_t reads;           /* slots filled */
    int64_t bytes_read;      /* from the file */
    int64_t prefetches;      /* reads started by a prediction */
    int64_t prefetches_used; /* ... whose expert was then used */
    int64_t predicted;       /* experts predicted for the next layer */
    int64_t predicted_right; /* ... that its router then chose */
    int64_t chosen;          /* experts chosen by the routers (per layer and step) */
    double io_wait_s;        /* compute waiting for slots */
    double io_busy_s;        /* summed over the I/O threads: reading and packing */
    double io_read_s;        /* ... of which waiting in read calls */
} grok_cache_stats;
GROK_API grok_cache_stats grok_model_cache_stats(const grok_model *m);
GROK_API void grok_model_cache_reset(grok_model *m);
/* Sequential read rate of the disk holding the model's file, in bytes/s,
 * measured by reading up to max_bytes of it as the cache reads (O_DIRECT
 * where the file system allows, the cache's chunk size and threads);
 * -1 on failure. */
GROK_API double grok_model_read_rate(const grok_model *m, int64_t max_bytes);

/* ---- routing traces: which experts each token used, to choose an
 * eviction policy by replaying them ---- */
/* Starts recording afresh (on) or stops (the trace is kept until the next
 * start or the model's end): every token decoded appends, for each layer,
 * the experts its router chose and those predicted for it from the
 * previous layer, in token order (whatever the batching). One forward pass
 * at a time while recording. */
GROK_API void grok_model_trace_routing(grok_model *m, bool on);
/* Tokens recorded; chosen[t][layer][k] and predicted[t][layer][k] (k <
 * n_experts_used; -1 where layer 0 has no prediction) stay owned by m. */
GROK_API int64_t grok_model_routing(const grok_model *m, const int32_t **chosen, const int32_t **predicted);

typedef struct {
    int64_t lookups, hits, reads, prefetch_reads, prefetch_used;
} grok_cache_sim_result;
/* Replays tokens [0, n_tokens) of a trace (layout as grok_model_routing's)
 * of a model with n_layers x n_experts keys through a cache of n_slots
 * slots under policy, with the predictions read ahead as
 * grok_memory_params.prefetch says (0 none, 1 admitted, 2 always), as the
 * cache would. optimal: Belady's MIN (evicts the key used furthest ahead;
 * no prefetch), the bound no demand-only policy beats. */
GROK_API grok_cache_sim_result grok_cache_simulate(const int32_t *chosen, const int32_t *predicted,
                                                   int64_t n_tokens, int64_t n_layers, int64_t n_experts,
                                                   int64_t k, int64_t n_slots, grok_cache_policy policy,
                                                   int prefetch, bool optimal);

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

GROK_API grok_sampler_params grok_sampler_default_params(void);

typedef struct grok_sampler grok_sampler;
GROK_API grok_sampler *grok_sampler_create(const grok_sampler_params *p, int64_t n_vocab);
GROK_API void grok_sampler_free(grok_sampler *s);
/* Picks the next token from logits [n_vocab] (not modified); history is
 * the sequence so far (for penalties), may be NULL when n_history is 0. */
GROK_API int32_t grok_sampler_sample(grok_sampler *s, const float *logits, const int32_t *history,
                                     size_t n_history);
/* The same, drawing only among the tokens whose bit is set in mask
 * ([ceil(n_vocab / 64)] words, token i in bit i % 64 of word i / 64; NULL:
 * all). Disallowed tokens are removed before penalties, temperature and the
 * filters, so the draw is exactly the renormalised distribution over the
 * allowed tokens and greedy picks the best allowed one. Returns -1 when the
 * mask allows nothing. */
GROK_API int32_t grok_sampler_sample_masked(grok_sampler *s, const float *logits, const uint64_t *mask,
                                            const int32_t *history, size_t n_history);
/* The probabilities after all filters, for logprobs: fills probs
 * [n_vocab]; the sampler must have sampled at least once. */
GROK_API const float *grok_sampler_last_probs(const grok_sampler *s);

/* Stop strings: finds the earliest occurrence of any stop string in text.
 * Returns its offset or -1; *partial is set to the length of the longest
 * suffix of text that is a prefix of a stop string (text to hold back
 * while streaming). */
GROK_API int64_t grok_find_stop(const char *text, size_t len, const char *const *stops, size_t n_stops,
                                size_t *partial);

/* ======================================================================
 * Grammars: constrained generation (GBNF, JSON Schema). src/grammar/
 *
 *   grok_grammar_vocab *v = grok_grammar_vocab_create(tok, err, sizeof err);
 *   grok_grammar *g = grok_grammar_parse(text, len, NULL, v, err, sizeof err);
 *   grok_matcher *m = grok_matcher_create(g);
 *   each step: grok_matcher_fill_mask(m, mask);
 *              tok = grok_sampler_sample_masked(s, logits, mask, hist, n);
 *              grok_matcher_accept_token(m, tok);
 *   stop at EOS or when grok_matcher_is_done(m).
 *
 * A grammar is immutable once parsed and may be shared by matchers on any
 * threads (its caches take a lock); a matcher belongs to one sequence and
 * one thread at a time. docs/structured-output.md has the details.
 * ====================================================================== */

/* The tokens of a vocabulary as a grammar sees them (their text, sorted);
 * made once per tokenizer, which must outlive it and every grammar made
 * with it. */
typedef struct grok_grammar_vocab grok_grammar_vocab;
GROK_API grok_grammar_vocab *grok_grammar_vocab_create(const grok_tokenizer *t, char *err, size_t err_size);
GROK_API void grok_grammar_vocab_free(grok_grammar_vocab *v);
GROK_API int64_t grok_grammar_vocab_n_vocab(const grok_grammar_vocab *v);

typedef struct grok_grammar grok_grammar;
/* Parses GBNF, llama.cpp's grammar format. root names the start rule
 * (NULL: "root"). v may be NULL for text matching only (no masks, and no
 * <token> written as text). Errors read "LINE:COLUMN: what is wrong". */
GROK_API grok_grammar *grok_grammar_parse(const char *text, size_t len, const char *root,
                                          const grok_grammar_vocab *v, char *err, size_t err_size);
/* Reference counting: retain adds one, free drops one (the last frees). */
GROK_API grok_grammar *grok_grammar_retain(grok_grammar *g);
GROK_API void grok_grammar_free(grok_grammar *g);
GROK_API int64_t grok_grammar_n_rules(const grok_grammar *g);
/* Does the grammar match the whole of text? *fail_at (may be NULL): the
 * length of the longest prefix it can read, when not. */
GROK_API bool grok_grammar_accepts(grok_grammar *g, const char *text, size_t len, size_t *fail_at);

/* JSON Schema -> GBNF text (malloc'd, NUL-terminated; its start rule is
 * "root"). Refuses keywords it cannot enforce, naming each with its JSON
 * pointer ("/properties/tags: 'uniqueItems' is not supported"). */
GROK_API char *grok_json_schema_to_gbnf(const char *schema, size_t len, char *err, size_t err_size);
/* The same with the start rule named start and every other rule but the
 * shared JSON primitives (json-*, fmt-*, ws) named start-..., so several
 * schemas' rules can be put into one grammar. */
GROK_API char *grok_json_schema_to_gbnf_rules(const char *schema, size_t len, const char *start, char *err,
                                              size_t err_size);

typedef struct grok_matcher grok_matcher;
/* A matcher at the start of the grammar (holds a reference to g). */
GROK_API grok_matcher *grok_matcher_create(grok_grammar *g);
GROK_API grok_matcher *grok_matcher_clone(const grok_matcher *m);
GROK_API void grok_matcher_free(grok_matcher *m);
/* Sets the bit of every token that may come next (see
 * grok_sampler_sample_masked for the layout; EOS where the grammar may
 * end) and returns how many; -1 when the grammar has no vocabulary or is
 * too ambiguous to follow (more than 65536 stacks), or out of memory. */
GROK_API int64_t grok_matcher_fill_mask(grok_matcher *m, uint64_t *mask);
/* Moves past token id (0), or refuses it and stays (-1). EOS ends it. */
GROK_API int grok_matcher_accept_token(grok_matcher *m, int32_t id);
/* Moves past len bytes of text (0), or refuses them and stays (-1). */
GROK_API int grok_matcher_accept_text(grok_matcher *m, const char *text, size_t len);
/* The grammar may end here (EOS is allowed). */
GROK_API bool grok_matcher_can_end(const grok_matcher *m);
/* Nothing but the end can follow (or EOS was taken). */
GROK_API bool grok_matcher_is_done(const grok_matcher *m);

#ifdef __cplusplus
}
#endif
#endif /* GROK_H */
