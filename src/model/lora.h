/*
 * lora.h - LoRA adapters (internal): the adapter GGUF's keys and tensor
 * names, applying an adapter to a loaded model, and folding one into a new
 * model file. The trainer (src/train/lora.c) writes adapters with the same
 * metadata writer; a model adapted at load time computes W x + s B (A x),
 * as the trainer's forward pass does, and a merged file (W + s B A) x.
 *
 * Format (llama.cpp's LoRA adapter convention): general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha; for every adapted weight W
 * (ggml ne = {in, out[, n_experts]}) two f32 tensors
 * "<W's name>.lora_a" ne = {in, rank[, n_experts]} and
 * "<W's name>.lora_b" ne = {rank, out[, n_experts]}, so that
 * W' = W + scale * (alpha / rank) * B A per expert. We add the rank and a
 * hash of the base's shapes, which applying checks.
 */
#ifndef GROK_LORA_H
#define GROK_LORA_H

#include "grok.h"

#define GROK_LORA_KEY_ALPHA "adapter.lora.alpha"
#define GROK_LORA_KEY_RANK "adapter.lora.rank"
#define GROK_LORA_KEY_BASE_HASH "adapter.grok.base_hash"
#define GROK_LORA_KEY_BASE_SHAPE "adapter.grok.base_shape"
#define GROK_LORA_KEY_BASE_NAME "adapter.grok.base_name"

/* The adaptable weights of a layer, by tensor name ("blk.N.<what>.weight"):
 * the attention projections q, k, v, o (the first GROK_LORA_N_ATTN), the
 * expert projections gate, up, down (3-D, one matrix per expert), then the
 * router. An adapter holds lora_a [r][in] and lora_b [out][r] per weight
 * (per expert), each tensor with its own rank r (the shapes say), scaled
 * by alpha / r as llama.cpp does. */
enum {
    GROK_LORA_T_Q,
    GROK_LORA_T_K,
    GROK_LORA_T_V,
    GROK_LORA_T_O,
    GROK_LORA_T_GATE,
    GROK_LORA_T_UP,
    GROK_LORA_T_DOWN,
    GROK_LORA_T_ROUTER,
    GROK_LORA_N_TARGETS
};
#define GROK_LORA_N_ATTN 4
extern const char *const grok_lora_target_names[GROK_LORA_N_TARGETS];
/* Short names for flags: q, k, v, o, gate, up, down, router. */
extern const char *const grok_lora_target_short[GROK_LORA_N_TARGETS];
/* Whether kind is one matrix per expert. */
static inline bool grok_lora_target_is_expert(int kind) {
    return kind == GROK_LORA_T_GATE || kind == GROK_LORA_T_UP || kind == GROK_LORA_T_DOWN;
}

/* A hash of the shapes that decide whether an adapter fits a model
 * (vocabulary, widths, layers, heads, experts); weight types and values do
 * not enter, so an adapter trained on a model also fits its quantized
 * copies. grok_lora_base_shape writes the same shapes readably. */
uint64_t grok_lora_base_hash(const grok_hparams *hp);
void grok_lora_base_shape(const grok_hparams *hp, char *buf, size_t size);

/* Writes the adapter keys (architecture, type, alpha, rank, base hash,
 * shape and name). base_name may be NULL. */
int grok_lora_write_meta(grok_gguf_writer *w, const grok_hparams *hp, const char *base_name, int64_t rank,
                         float alpha);

/* w[o][i] += s * sum_r b[o][r] * a[r][i] for one [rows][cols] matrix, with
 * a [rank][cols] and b [rows][rank]. */
void grok_lora_add(float *w, const float *a, const float *b, int64_t rows, int64_t cols, int64_t rank,
                   float s);

/* Applies the adapter at path to m without merging: the adapted matrices
 * keep their type and mapping, and carry A and (scale * alpha / r) B^T in
 * f32 (grok_mat_lora), which every product adds (memory: the adapter's
 * size). One adapter at a time; refuses an adapter made for other shapes.
 * On error the model is unchanged. */
int grok_model_apply_lora(grok_model *m, const char *path, float scale, char *err, size_t err_size);

/* Writes base with the adapter folded in to out_path (atomically): adapted
 * tensors in type (type < 0: each keeps its own type), every other tensor
 * and every key copied as it is. Memory: one f32 matrix at a time. */
int grok_lora_merge(const char *base_path, const char *adapter_path, const char *out_path, int type,
                    float scale, char *err, size_t err_size);

#endif
