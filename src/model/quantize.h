/*
 * quantize.h - re-encoding a model file's weight matrices into another
 * type (grok quantize). Internal to libgrok and the grok command.
 */
#ifndef GROK_QUANTIZE_H
#define GROK_QUANTIZE_H

#include "grok.h"

/* Called after each tensor: done of total tensors, and its name. */
typedef void (*grok_quantize_progress)(void *ud, int64_t done, int64_t total, const char *name);

/* Writes in_path's metadata and tensors to out_path (atomically, through
 * the GGUF writer) with every weight matrix re-encoded as type; norms,
 * the router (ffn_gate_inp) and 1-D tensors keep their type, as llama.cpp
 * does; matrices whose rows do not divide into a k-quant's 256-blocks are
 * written as q8_0. general.file_type is set to llama.cpp's file-type
 * number for type.
 * Rows are converted in parallel on pool (may be NULL). */
int grok_model_quantize(const char *in_path, const char *out_path, grok_type type,
                        grok_threadpool *pool, grok_quantize_progress progress, void *ud, char *err,
                        size_t err_size);

/* llama.cpp's LLAMA_FTYPE number for a file whose weights are mostly of
 * type, or -1 when it has none in this set. */
int grok_llama_ftype(grok_type type);

#endif
