/*
 * quantize.h - re-encoding a model file's weight matrices into another
 * type (grok quantize), as llama.cpp's named file types ("mixes" such as
 * Q4_K_M: most matrices of one type, a few sensitive ones with more bits)
 * or one type for all ("pure"). Internal to libgrok and the grok command.
 */
#ifndef GROK_QUANTIZE_H
#define GROK_QUANTIZE_H

#include "grok.h"

/* Called after each tensor: done of total tensors, and its name. */
typedef void (*grok_quantize_progress)(void *ud, int64_t done, int64_t total, const char *name);

/* One of llama.cpp's file types: its name as llama-quantize prints it, its
 * LLAMA_FTYPE number (written as general.file_type) and the type most of
 * its matrices get. */
typedef struct {
    const char *name;
    int ftype;
    grok_type base;
    const char *desc; /* what the rules do, for grok quantize --help */
} grok_quant_mix;

/* The file types grok quantize writes, in llama-quantize's order; i past
 * the end gives NULL. */
const grok_quant_mix *grok_quant_mix_at(int i);
/* The file type called name: case-insensitive, llama-quantize's aliases
 * (Q3_K = Q3_K_M, Q4_K = Q4_K_M, Q5_K = Q5_K_M) and its number ("15") included; NULL if
 * none. */
const grok_quant_mix *grok_quant_mix_find(const char *name);

typedef struct {
    const grok_quant_mix *mix;
    bool pure;                   /* every matrix gets mix->base: no per-tensor rules */
    int output_type;             /* grok_type for output.weight, or -1 for the mix's choice */
    int token_embd_type;         /* grok_type for token_embd.weight, or -1 */
    const grok_imatrix *imatrix; /* weighs the encoders' errors (types that take one), or NULL */
    const char *imatrix_path;    /* recorded as quantize.imatrix.file, or NULL */
    /* --expert-aware (needs imatrix): each stacked expert tensor is written
     * as one tensor per expert (blk.N.ffn_gate.E.weight, the layout of
     * llama.cpp's files before its PR #6387), with types shared out by the
     * experts' router use in the imatrix at the uniform tensor's bytes
     * (quant_experts.c). llama.cpp reads no file whose experts differ. */
    bool expert_aware;
    /* --dry-run: decide every tensor's type and the sizes, write nothing;
     * a missing imatrix or encoder is then not an error (llama-quantize's
     * --dry-run too plans without one) */
    bool dry_run;
    /* called once per tensor, in file order, with the type it gets (may be NULL) */
    void (*plan)(void *ud, const char *name, grok_type from, grok_type to, uint64_t bytes_out);
    void *plan_ud;
} grok_quantize_params;

/* What was written, for the summary line. */
typedef struct {
    int64_t n_tensors;
    int64_t n_of_type[GROK_TYPE_COUNT]; /* tensors written with each type */
    int64_t n_fallback;                 /* matrices whose rows did not fit the chosen type */
    int64_t n_imatrix;                  /* matrices encoded with importance weights */
    int64_t n_imatrix_missing;          /* matrices of a type that takes them, absent from the imatrix */
    int64_t n_elements;
    uint64_t bytes_in, bytes_out; /* tensor data, without headers and padding */
} grok_quantize_stats;

/* Writes in_path's metadata and tensors to out_path (atomically, through
 * the GGUF writer) with the weight matrices re-encoded as p asks: norms,
 * the router (ffn_gate_inp) and 1-D tensors keep their type, as llama.cpp
 * does; matrices whose rows do not divide into the chosen type's blocks
 * get llama.cpp's fallback type (said on stderr). Fails, naming the
 * tensor and type, where llama.cpp's rules need an imatrix that p lacks
 * (or lacks the tensor's entry) and where a type has no encoder yet.
 * general.file_type is set to p->mix->ftype. Rows are converted in
 * parallel on pool (may be NULL); stats (may be NULL) is filled on
 * success. With p->dry_run only the plan (p->plan, stats) is made. */
int grok_model_quantize(const char *in_path, const char *out_path, const grok_quantize_params *p,
                        grok_threadpool *pool, grok_quantize_progress progress, void *ud,
                        grok_quantize_stats *stats, char *err, size_t err_size);

/* --expert-aware's parts (quant_experts.c). The types that may stand in
 * for t0 in a matrix of cols columns (up to 2 steps either way in its
 * family: k-quants, i-quants, 32-blocks), t0 among them, into out[5];
 * returns how many. */
int grok_quant_expert_candidates(grok_type t0, int64_t cols, grok_type *out);
/* err_out[c] = sum over expert e's rows of sum_i w_i (x_i - y_i)^2, y the
 * row encoded as cand[c] and decoded, measured on max_rows of its rows
 * spread evenly and scaled to all of them. t is a stacked expert tensor
 * [cols, rows, experts]. 0, or -1 out of memory. */
int grok_quant_expert_errors(const grok_gguf_tensor *t, int64_t e, const float *w, const grok_type *cand,
                             int n_cand, int64_t max_rows, grok_threadpool *pool, double *err_out);
/* choice[e] in [0, n_cand) minimising sum_e cost[e][choice[e]] with
 * sum_e size[choice[e]] <= budget. 0, or -1 when not even the smallest
 * type of each fits. */
int grok_quant_expert_assign(int64_t n_exp, int n_cand, const double *cost, const uint64_t *size,
                             uint64_t budget, int *choice);

/* llama.cpp's LLAMA_FTYPE number for a file whose weights are all of type
 * (grok new, grok convert), or -1 when it has none in this set. */
int grok_llama_ftype(grok_type type);

#endif
