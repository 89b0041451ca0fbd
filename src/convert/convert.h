/*
 * convert.h - turning the official Grok-1 checkpoint (a ckpt-0 directory of
 * pickle files) into a GGUF file, streaming in bounded memory. Used by
 * `grok convert` (src/cli/cmd_convert.c); internal to libgrok, not part of
 * the public header.
 */
#ifndef GROK_CONVERT_H
#define GROK_CONVERT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "grok.h"

typedef struct {
    const char *ckpt_dir;  /* the directory holding tensor00000_000 ... */
    const char *tokenizer; /* SentencePiece .model */
    const char *out_path;
    const char *name;    /* general.name */
    grok_type type;      /* of the weight matrices: q8_0, bf16, f16, f32 */
    grok_type embd_type; /* of token_embd: f32 (default), bf16, f16, q8_0 */
    int64_t n_heads, n_kv_heads, n_ctx, n_experts_used;
    int64_t head_dim; /* 0: the query's outputs / n_heads */
    float rope_base, norm_eps, embedding_scale, logit_scale, attn_scale, softcap;
    uint64_t split_max_size; /* 0: one file */
    uint64_t window;         /* bytes of checkpoint held at once; 0: default */
    int n_threads;           /* converting threads; <= 0: one per core */
    /* progress: called after each chunk, may be NULL */
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    /* a line for the user (what was derived), may be NULL; same ud */
    void (*note)(void *ud, const char *msg);
    void *progress_ud;
    /* set (e.g. by a signal handler) to stop; the output is then removed */
    volatile sig_atomic_t *cancel;
} grok_convert_params;

typedef struct {
    int64_t n_tensors;
    int64_t n_files;
    uint64_t bytes_in;   /* checkpoint bytes read */
    uint64_t bytes_out;  /* tensor bytes written */
    int64_t q8_blocks;   /* Q8_0 blocks made from official int8 blocks */
    int64_t q8_inexact;  /* of those, blocks whose scale was not exact in f16 (requantized) */
    int64_t q8_straddle; /* blocks crossing an official scale block (requantized) */
    int64_t n_layers, d_model, n_vocab, n_ff, n_experts;
    int64_t head_dim, q_outputs; /* the head size used, and the query's outputs */
    bool head_dim_derived;       /* no head_dim given: q_outputs / n_heads */
} grok_convert_stats;

/* Default parameters: Grok-1's constants (the head size derived from the
 * shapes), q8_0, f32 embedding. */
grok_convert_params grok_convert_default_params(void);

#define GROK_CONVERT_DEFAULT_WINDOW (UINT64_C(256) << 20)

/* Runs the conversion. Returns 0, or -1 with a message naming the file,
 * field and byte offset (or the parameter) in err. The output appears
 * (renamed from a temporary name) only when complete. */
int grok_convert(const grok_convert_params *p, grok_convert_stats *st, char *err, size_t err_size);

#endif
