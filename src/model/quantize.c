/*
 * quantize.c - re-encodes a GGUF model's weight matrices into another type.
 * Which type each matrix gets is decided first, for the whole file: one
 * type for all (--pure), or one of llama.cpp's file types ("mixes" such as
 * Q4_K_M), whose rules give a few sensitive matrices more bits (mix_type
 * below; refused where llama.cpp's rules need an imatrix that is absent).
 * Each matrix is then decoded to f32 a chunk of rows at a time and encoded
 * with the target type's encoder (ggml's rounding for q8_0, and for q4_0
 * without an imatrix, so those files match what llama.cpp's quantizer
 * writes; this project's weighted searches for the others, in ggml's
 * formats), the rows of a chunk split across the thread pool. Data is
 * streamed through the GGUF writer and the input's pages dropped once
 * read: memory stays at one chunk, and the output appears under its name
 * only when complete.
 */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "gguf/gguf_internal.h"
#include "kernels/kernels.h"
#include "model/quantize.h"

/* llama.cpp's LLAMA_FTYPE numbers (llama.h) of the file types written here. */
enum {
    FT_F32 = 0,
    FT_F16 = 1,
    FT_Q4_0 = 2,
    FT_Q4_1 = 3,
    FT_Q8_0 = 7,
    FT_Q5_0 = 8,
    FT_Q5_1 = 9,
    FT_Q2_K = 10,
    FT_Q3_K_S = 11,
    FT_Q3_K_M = 12,
    FT_Q3_K_L = 13,
    FT_Q4_K_S = 14,
    FT_Q4_K_M = 15,
    FT_Q5_K_S = 16,
    FT_Q5_K_M = 17,
    FT_Q6_K = 18,
    FT_IQ2_XXS = 19,
    FT_IQ2_XS = 20,
    FT_Q2_K_S = 21,
    FT_IQ3_XS = 22,
    FT_IQ3_XXS = 23,
    FT_IQ1_S = 24,
    FT_IQ4_NL = 25,
    FT_IQ3_S = 26,
    FT_IQ3_M = 27,
    FT_IQ2_S = 28,
    FT_IQ2_M = 29,
    FT_IQ4_XS = 30,
    FT_IQ1_M = 31,
    FT_BF16 = 32
};

/* In llama-quantize's order. For a file of one type (grok new, grok
 * convert) the first entry with it as base names the file type: Q4_K_S for
 * q4_K, Q5_K_S for q5_K, Q3_K_S for q3_K, IQ2_XS for iq2_xs, IQ3_S for
 * iq3_s. The descriptions are for Grok-1's shape (8 experts, 6 query
 * heads per KV head, tied head); "imatrix" marks the mixes refused without
 * one. */
static const grok_quant_mix MIXES[] = {
    {"Q4_0", FT_Q4_0, GROK_TYPE_Q4_0, "q4_0, output q6_K (with an imatrix: ffn_down of the first 1/8 q4_1)"},
    {"Q4_1", FT_Q4_1, GROK_TYPE_Q4_1, "q4_1, output q6_K"},
    {"Q5_0", FT_Q5_0, GROK_TYPE_Q5_0, "q5_0, output q6_K (with an imatrix: ffn_down of the first 1/8 q5_1)"},
    {"Q5_1", FT_Q5_1, GROK_TYPE_Q5_1, "q5_1, output q6_K"},
    {"IQ2_XXS", FT_IQ2_XXS, GROK_TYPE_IQ2_XXS,
     "imatrix; iq2_xxs, attn_v/k q4_K, attn_output q5_K, ffn_down (first 1/8) q2_K, output q5_K"},
    {"IQ2_XS", FT_IQ2_XS, GROK_TYPE_IQ2_XS,
     "imatrix; iq2_xs, attn_v/k q4_K, attn_output q5_K, ffn_down (first 1/8) q2_K, output q5_K"},
    {"IQ2_S", FT_IQ2_S, GROK_TYPE_IQ2_XS,
     "imatrix; iq2_xs, attn_v/k q4_K, attn_output q5_K, ffn_down (first 1/8) iq3_s, output q5_K"},
    {"IQ2_M", FT_IQ2_M, GROK_TYPE_IQ2_S,
     "imatrix; iq2_s, attn_v/k q4_K, attn_output q5_K, ffn_down (first 1/8) iq3_s, output q5_K"},
    {"IQ1_S", FT_IQ1_S, GROK_TYPE_IQ1_S,
     "imatrix; iq1_s, attn_v/k q4_K, attn_output q5_K, ffn_down (first 1/8) q2_K, output q5_K"},
    {"IQ1_M", FT_IQ1_M, GROK_TYPE_IQ1_M,
     "imatrix; iq1_m, attn_v/k q4_K, attn_output q5_K, ffn_down (first 1/8) q2_K, output q5_K"},
    {"Q2_K", FT_Q2_K, GROK_TYPE_Q2_K, "q2_K, attn_v/k q8_0, attn_output q5_K, ffn_down q3_K, output q6_K"},
    {"Q2_K_S", FT_Q2_K_S, GROK_TYPE_Q2_K,
     "imatrix; q2_K, attn_v/k q8_0, ffn_down (first 1/8) q4_K, output q6_K"},
    {"IQ3_XXS", FT_IQ3_XXS, GROK_TYPE_IQ3_XXS,
     "imatrix; iq3_xxs, attn_q iq2_s, attn_v/k q8_0, attn_output q5_K, output q6_K"},
    {"IQ3_S", FT_IQ3_S, GROK_TYPE_IQ3_S, "iq3_s, attn_v/k q8_0, attn_output q5_K, output q6_K"},
    {"IQ3_M", FT_IQ3_M, GROK_TYPE_IQ3_S,
     "iq3_s, attn_v/k q8_0, attn_output q5_K, ffn_down q4_K in the more-bits layers, output q6_K"},
    {"IQ3_XS", FT_IQ3_XS, GROK_TYPE_IQ3_S,
     "imatrix; iq3_s, attn_q and middle ffn_gate/up iq3_xxs, attn_v/k q8_0, attn_output q5_K, output q6_K"},
    {"Q3_K_S", FT_Q3_K_S, GROK_TYPE_Q3_K, "q3_K, attn_v/k q8_0, attn_output q5_K, output q6_K"},
    {"Q3_K_M", FT_Q3_K_M, GROK_TYPE_Q3_K,
     "q3_K, attn_v/k q8_0, attn_output q5_K, ffn_down q4_K (first 1/16 q5_K), output q6_K"},
    {"Q3_K_L", FT_Q3_K_L, GROK_TYPE_Q3_K, "q3_K, attn_v/k q8_0, ffn_down q5_K, output q6_K"},
    {"IQ4_NL", FT_IQ4_NL, GROK_TYPE_IQ4_NL,
     "iq4_nl, attn_v/k q8_0, attn_output q5_K, ffn_down (first 1/8, no imatrix) q5_K, output q6_K"},
    {"IQ4_XS", FT_IQ4_XS, GROK_TYPE_IQ4_XS,
     "iq4_xs, attn_v/k q8_0, attn_output q5_K, ffn_down (first 1/8, no imatrix) q5_K, output q6_K"},
    {"Q4_K_S", FT_Q4_K_S, GROK_TYPE_Q4_K,
     "q4_K, attn_v/k q8_0, attn_output and ffn_down (first 1/8) q5_K, output q6_K"},
    {"Q4_K_M", FT_Q4_K_M, GROK_TYPE_Q4_K,
     "q4_K, attn_v/k q8_0, attn_output q5_K, ffn_down q6_K in the more-bits layers, output q6_K"},
    {"Q5_K_S", FT_Q5_K_S, GROK_TYPE_Q5_K, "q5_K, attn_v/k q8_0, output q6_K"},
    {"Q5_K_M", FT_Q5_K_M, GROK_TYPE_Q5_K,
     "q5_K, attn_v/k q8_0, ffn_down q6_K in the more-bits layers, output q6_K"},
    {"Q6_K", FT_Q6_K, GROK_TYPE_Q6_K, "q6_K, attn_v/k q8_0"},
    {"Q8_0", FT_Q8_0, GROK_TYPE_Q8_0, "q8_0"},
    {"F16", FT_F16, GROK_TYPE_F16, "f16"},
    {"BF16", FT_BF16, GROK_TYPE_BF16, "bf16"},
    {"F32", FT_F32, GROK_TYPE_F32, "f32"},
};
#define N_MIXES (int)(sizeof MIXES / sizeof MIXES[0])

const grok_quant_mix *grok_quant_mix_at(int i) { return i >= 0 && i < N_MIXES ? &MIXES[i] : NULL; }

static const grok_quant_mix *mix_of_ftype(long ftype) {
    for (int i = 0; i < N_MIXES; i++)
        if (MIXES[i].ftype == ftype) return &MIXES[i];
    return NULL;
}

const grok_quant_mix *grok_quant_mix_find(const char *name) {
    for (int i = 0; i < N_MIXES; i++)
        if (strcasecmp(MIXES[i].name, name) == 0) return &MIXES[i];
    /* llama-quantize's aliases: a bare k-quant name means its _M mix */
    if (strcasecmp(name, "Q3_K") == 0) return mix_of_ftype(FT_Q3_K_M);
    if (strcasecmp(name, "Q4_K") == 0) return mix_of_ftype(FT_Q4_K_M);
    if (strcasecmp(name, "Q5_K") == 0) return mix_of_ftype(FT_Q5_K_M);
    if (name[0] < '0' || name[0] > '9') return NULL;
    char *end;
    long v = strtol(name, &end, 10);
    return *end == '\0' ? mix_of_ftype(v) : NULL;
}

int grok_llama_ftype(grok_type type) {
    for (int i = 0; i < N_MIXES; i++)
        if (MIXES[i].base == type) return MIXES[i].ftype;
    return -1;
}

/* Norms, the router and vectors stay as they are: they are small and the
 * router's choices are sensitive to rounding. */
static bool keep_type(const grok_gguf_tensor *t) {
    return t->n_dims < 2 || strstr(t->name, "norm") != NULL || strstr(t->name, "ffn_gate_inp") != NULL;
}

/* ---- the mixes: which type each matrix gets ----
 * The rules are llama.cpp's (llama_tensor_get_type in src/llama-quant.cpp)
 * for the file types above, restricted to the tensors a Grok file has:
 * token_embd, output, and per layer attn_q/k/v/output and the experts'
 * ffn_gate/up/down_exps (its four norms and the router stay as they are).
 * llama.cpp counts attn_v tensors in its layer-then-name order to place
 * a tensor among the layers; every Grok layer has exactly one, so that
 * count is the layer number, read here from the name. */

typedef enum {
    ROLE_OTHER,
    ROLE_TOKEN_EMBD,
    ROLE_OUTPUT,
    ROLE_ATTN_Q,
    ROLE_ATTN_K,
    ROLE_ATTN_V,
    ROLE_ATTN_OUTPUT,
    ROLE_FFN_GATE,
    ROLE_FFN_UP,
    ROLE_FFN_DOWN
} tensor_role;

static tensor_role role_of(const char *name) {
    static const struct {
        const char *part;
        tensor_role role;
    } parts[] = {{"attn_v.weight", ROLE_ATTN_V}, {"attn_k.weight", ROLE_ATTN_K},
                 {"attn_q.weight", ROLE_ATTN_Q}, {"attn_output.weight", ROLE_ATTN_OUTPUT},
                 {"ffn_up", ROLE_FFN_UP},        {"ffn_gate", ROLE_FFN_GATE},
                 {"ffn_down", ROLE_FFN_DOWN}};
    if (strcmp(name, "output.weight") == 0) return ROLE_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0) return ROLE_TOKEN_EMBD;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(name, parts[i].part)) return parts[i].role;
    return ROLE_OTHER;
}

/* N of a "blk.N." name, or -1. */
static int64_t layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0 || name[4] < '0' || name[4] > '9') return -1;
    char *end;
    long long v = strtoll(name + 4, &end, 10);
    return *end == '.' ? (int64_t)v : -1;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third layer between them, where the _M mixes spend more bits. */
static bool more_bits_layer(int64_t il, int64_t n) {
    return il < n / 8 || il >= 7 * n / 8 || (il - n / 8) % 3 == 2;
}

/* What the rules look at besides the tensor itself. */
typedef struct {
    const grok_quantize_params *p;
    int64_t n_layers, n_experts;
    int64_t n_gqa; /* query heads per KV head (head_count / head_count_kv), 0 if unknown */
    bool tied;     /* no output.weight: token_embd is the output head too */
} mix_model;

/* The mixes whose bulk is a 1- or 2-bit i-quant: llama.cpp's rules for
 * them form one group, which spends the bits it saves on attention and on
 * the first layers' down matrices. */
static bool very_low_bit(int ft) {
    return ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ2_S || ft == FT_IQ2_M || ft == FT_IQ1_S ||
           ft == FT_IQ1_M;
}

/* The output head's error lands on every logit and it is one matrix: it
 * gets q6_K unless the mix is q8_0 already, q5_K in the 1- and 2-bit
 * mixes (and IQ3_XXS), q8_0 where its rows do not divide into the mix's
 * own blocks; or --output-type's type. */
static grok_type output_head_type(const grok_quantize_params *p, const grok_gguf_tensor *t, int64_t block) {
    const int ft = p->mix->ftype;
    if (p->output_type >= 0) return (grok_type)p->output_type;
    if (t->ne[0] % block) return GROK_TYPE_Q8_0;
    if (very_low_bit(ft) || ft == FT_IQ3_XXS) return GROK_TYPE_Q5_K;
    return p->mix->base == GROK_TYPE_Q8_0 ? GROK_TYPE_Q8_0 : GROK_TYPE_Q6_K;
}

/* The type a matrix gets, before the block-size fallback. llama.cpp's
 * rules are one chain of cases per tensor role; they are kept in its
 * order, since an earlier case wins (IQ3_XXS's down matrices with an
 * imatrix, for one, fall through every case to the mix's type). */
static grok_type mix_type(const mix_model *m, const grok_gguf_tensor *t) {
    const grok_quantize_params *p = m->p;
    const int ft = p->mix->ftype;
    const grok_type base = p->mix->base;
    const int64_t block = grok_type_get_traits((uint32_t)base)->block_size;
    const tensor_role role = role_of(t->name);
    const int64_t il = layer_of(t->name), nl = m->n_layers;
    const bool imx = p->imatrix != NULL;
    /* Grok-1 has 8 experts, the shape llama.cpp tuned for Mixtral: there
     * attention K and V get q8_0 in most mixes (a few MB next to the
     * experts) and attention output q5_K in the 3- and 4-bit mixes. Its
     * 48 query heads share 8 KV heads (n_gqa 6): attn_v is 6 times smaller
     * than attn_q, so more bits there cost little. */
    const bool eight = m->n_experts == 8, gqa4 = m->n_gqa >= 4;
    const bool first8 = il >= 0 && il < nl / 8; /* the first eighth of the layers */
    const bool more = il >= 0 && more_bits_layer(il, nl);
    /* --token-embedding-type and --output-type name the type outright */
    if (role == ROLE_TOKEN_EMBD && p->token_embd_type >= 0) return (grok_type)p->token_embd_type;
    if (role == ROLE_OUTPUT && p->output_type >= 0) return (grok_type)p->output_type;
    /* --pure; and the float types have no rules */
    if (p->pure || block == 1) return base;
    if (role == ROLE_OUTPUT || (role == ROLE_TOKEN_EMBD && m->tied)) return output_head_type(p, t, block);
    if (role == ROLE_TOKEN_EMBD) {
        /* a lookup table (one row read per token): its rounding costs less
         * than a product's, but 1 and 2 bits are too few */
        if (ft == FT_IQ2_XXS || ft == FT_IQ2_XS || ft == FT_IQ1_S || ft == FT_IQ1_M) return GROK_TYPE_Q2_K;
        if (ft == FT_IQ2_S || ft == FT_IQ2_M || ft == FT_IQ3_XXS) return GROK_TYPE_IQ3_S;
        return base;
    }
    if (very_low_bit(ft)) {
        const bool s_m = ft == FT_IQ2_S || ft == FT_IQ2_M;
        switch (role) {
        case ROLE_ATTN_V:
            return gqa4 || m->n_experts >= 4 ? GROK_TYPE_Q4_K : s_m ? GROK_TYPE_IQ3_S : GROK_TYPE_Q2_K;
        case ROLE_ATTN_K: return eight ? GROK_TYPE_Q4_K : base;
        case ROLE_FFN_DOWN: return first8 ? (s_m ? GROK_TYPE_IQ3_S : GROK_TYPE_Q2_K) : base;
        case ROLE_ATTN_OUTPUT:
            if (eight) return GROK_TYPE_Q5_K;
            if (ft == FT_IQ1_S || ft == FT_IQ1_M) return GROK_TYPE_IQ2_XXS;
            return s_m ? GROK_TYPE_IQ3_S : base;
        default: return base;
        }
    }
    switch (role) {
    case ROLE_ATTN_V: {
        /* V is what attention reads out: more bits in every mix below 5,
         * q8_0 with 8 experts whatever the mix */
        grok_type v = base;
        if (ft == FT_Q2_K)
            v = gqa4 ? GROK_TYPE_Q4_K : GROK_TYPE_Q3_K;
        else if (ft == FT_Q2_K_S && gqa4)
            v = GROK_TYPE_Q4_K;
        else if (ft == FT_IQ3_XXS)
            v = gqa4 ? GROK_TYPE_Q4_K : !imx ? GROK_TYPE_IQ3_S : GROK_TYPE_IQ3_XXS;
        else if ((ft == FT_IQ3_XS || ft == FT_IQ3_S) && gqa4)
            v = GROK_TYPE_Q4_K;
        else if (ft == FT_IQ3_M)
            v = GROK_TYPE_Q4_K;
        else if (ft == FT_Q3_K_M)
            v = il >= 0 && il < 2 ? GROK_TYPE_Q5_K : GROK_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L)
            v = GROK_TYPE_Q5_K;
        else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && gqa4)
            v = GROK_TYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && more)
            v = GROK_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && il >= 0 && il < 4)
            v = GROK_TYPE_Q5_K;
        return eight ? GROK_TYPE_Q8_0 : v;
    }
    case ROLE_ATTN_K:
        if (eight) return GROK_TYPE_Q8_0;
        if (ft == FT_IQ3_XS) return GROK_TYPE_IQ3_XXS;
        return ft == FT_IQ3_XXS ? GROK_TYPE_IQ2_S : base;
    case ROLE_ATTN_Q:
        /* the 3-bit i-quant mixes save on Q, whose error the softmax damps */
        if (ft == FT_IQ3_XS) return GROK_TYPE_IQ3_XXS;
        return ft == FT_IQ3_XXS ? GROK_TYPE_IQ2_S : base;
    case ROLE_FFN_DOWN:
        /* The down projection's error goes straight into the residual
         * stream: more bits in the low mixes, and in the first layers
         * (the first eighth, or the more-bits layers) in the others. */
        if (ft == FT_Q2_K) return GROK_TYPE_Q3_K;
        if (ft == FT_Q2_K_S) return first8 ? GROK_TYPE_Q4_K : base;
        if (ft == FT_IQ3_XXS && !imx) return first8 ? GROK_TYPE_Q4_K : GROK_TYPE_Q3_K;
        if (ft == FT_Q3_K_M) return il >= 0 && il < nl / 16 ? GROK_TYPE_Q5_K : GROK_TYPE_Q4_K;
        if (ft == FT_IQ3_M && (first8 || (eight && more))) return GROK_TYPE_Q4_K;
        if (ft == FT_Q3_K_L) return GROK_TYPE_Q5_K;
        if (ft == FT_Q4_K_M) return more ? GROK_TYPE_Q6_K : base;
        if (first8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS) && !imx) return GROK_TYPE_Q5_K;
        if (ft == FT_Q5_K_M && more) return GROK_TYPE_Q6_K;
        if (ft == FT_Q4_K_S && first8) return GROK_TYPE_Q5_K;
        /* with an imatrix Q4_0 / Q5_0 guard the first down matrices with
         * the min of q4_1 / q5_1 (without one, llama.cpp keeps the old
         * files: those types go wrong on ffn_down then) */
        if ((ft == FT_Q4_0 || ft == FT_Q5_0) && imx && first8)
            return ft == FT_Q4_0 ? GROK_TYPE_Q4_1 : GROK_TYPE_Q5_1;
        return base;
    case ROLE_ATTN_OUTPUT:
        if (eight)
            return ft == FT_Q2_K || ft == FT_IQ3_XS || ft == FT_IQ3_XXS || ft == FT_Q3_K_S ||
                           ft == FT_Q3_K_M || ft == FT_IQ4_NL || ft == FT_Q4_K_S || ft == FT_Q4_K_M ||
                           ft == FT_IQ3_S || ft == FT_IQ3_M || ft == FT_IQ4_XS
                       ? GROK_TYPE_Q5_K
                       : base;
        if (ft == FT_Q2_K) return GROK_TYPE_Q3_K;
        if (ft == FT_IQ3_XXS) return GROK_TYPE_IQ3_S;
        if (ft == FT_Q3_K_M || ft == FT_IQ3_M) return GROK_TYPE_Q4_K;
        return ft == FT_Q3_K_L ? GROK_TYPE_Q5_K : base;
    case ROLE_FFN_GATE:
    case ROLE_FFN_UP:
        /* IQ3_XS saves on the middle layers' gate and up matrices */
        return ft == FT_IQ3_XS && il >= nl / 8 && il < 7 * nl / 8 ? GROK_TYPE_IQ3_XXS : base;
    default: return base;
    }
}

/* llama.cpp's fallback for rows that do not divide into a type's blocks:
 * the 256-value i-quants go to iq4_nl, q2_K and q3_K to q4_0, q4_K to
 * q5_0, q5_K to q5_1, q6_K to q8_0 (all blocks of 32), and when even those
 * do not fit, f16. */
static grok_type fallback_type(grok_type want, int64_t cols) {
    const int64_t block = grok_type_get_traits((uint32_t)want)->block_size;
    if (cols % block == 0) return want;
    grok_type fb = want;
    switch (want) {
    case GROK_TYPE_IQ1_S:
    case GROK_TYPE_IQ1_M:
    case GROK_TYPE_IQ2_XXS:
    case GROK_TYPE_IQ2_XS:
    case GROK_TYPE_IQ2_S:
    case GROK_TYPE_IQ3_XXS:
    case GROK_TYPE_IQ3_S:
    case GROK_TYPE_IQ4_XS: fb = GROK_TYPE_IQ4_NL; break;
    case GROK_TYPE_Q2_K:
    case GROK_TYPE_Q3_K: fb = GROK_TYPE_Q4_0; break;
    case GROK_TYPE_Q4_K: fb = GROK_TYPE_Q5_0; break;
    case GROK_TYPE_Q5_K: fb = GROK_TYPE_Q5_1; break;
    case GROK_TYPE_Q6_K: fb = GROK_TYPE_Q8_0; break;
    default: break;
    }
    return cols % grok_type_get_traits((uint32_t)fb)->block_size ? GROK_TYPE_F16 : fb;
}

/* llama.cpp refuses these without importance data (tensor_requires_imatrix):
 * the 1- and 2-bit i-quants and iq3_xxs, whose grids are too coarse to
 * place well without knowing which columns matter, and q2_K in a Q2_K_S
 * file. The embedding and the output head never need it. */
static bool needs_imatrix(const grok_gguf_tensor *t, grok_type type, int ft) {
    const tensor_role role = role_of(t->name);
    if (role == ROLE_TOKEN_EMBD || role == ROLE_OUTPUT) return false;
    switch (type) {
    case GROK_TYPE_IQ3_XXS:
    case GROK_TYPE_IQ2_XXS:
    case GROK_TYPE_IQ2_XS:
    case GROK_TYPE_IQ2_S:
    case GROK_TYPE_IQ1_M:
    case GROK_TYPE_IQ1_S: return true;
    case GROK_TYPE_Q2_K: return ft == FT_Q2_K_S;
    default: return false;
    }
}

/* The layer and expert counts (ARCH.block_count, ARCH.expert_count; the
 * layer count from the tensor names where the key is absent), the query
 * heads per KV head and whether the output head is the embedding. */
static void read_mix_model(const grok_gguf_file *f, const grok_quantize_params *p, mix_model *m) {
    const char *arch = NULL;
    char key[128];
    m->p = p;
    m->n_layers = m->n_experts = m->n_gqa = 0;
    if (grok_gguf_get_str(f, "general.architecture", &arch, NULL) == 0) {
        int64_t nh = 0, nkv = 0;
        snprintf(key, sizeof key, "%s.block_count", arch);
        if (grok_gguf_get_i64(f, key, &m->n_layers) != 0) m->n_layers = 0;
        snprintf(key, sizeof key, "%s.expert_count", arch);
        if (grok_gguf_get_i64(f, key, &m->n_experts) != 0) m->n_experts = 0;
        snprintf(key, sizeof key, "%s.attention.head_count", arch);
        if (grok_gguf_get_i64(f, key, &nh) != 0) nh = 0;
        snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
        if (grok_gguf_get_i64(f, key, &nkv) != 0) nkv = nh; /* llama.cpp's default: no GQA */
        m->n_gqa = nkv > 0 ? nh / nkv : 0;
    }
    for (int64_t i = 0; i < grok_gguf_n_tensors(f); i++) {
        int64_t il = layer_of(grok_gguf_tensor_at(f, i)->name);
        if (il >= m->n_layers) m->n_layers = il + 1;
    }
    m->tied = grok_gguf_find_tensor(f, "output.weight") == NULL;
}

/* A type grok quantize can name: one of llama.cpp's file types' bases. */
static bool nameable(int type) {
    return type >= 0 && type < GROK_TYPE_COUNT && grok_llama_ftype((grok_type)type) >= 0;
}

typedef struct {
    const grok_type_kernels *src;
    uint32_t dst_type;
    const uint8_t *in;
    uint8_t *out;
    size_t in_row, out_row;
    int64_t rows, cols;
    float *scratch;      /* [n_threads][cols] */
    const float *imx;    /* [n_mat][cols] importance of each column, or NULL */
    int64_t row0;        /* the chunk's first row in the tensor */
    int64_t mat_rows;    /* rows per matrix (an expert's slice of a stacked tensor) */
    _Atomic int64_t bad; /* the first row (of this chunk) holding NaN or Inf, or INT64_MAX */
} conv_job;

static void conv_task(void *arg, int ith, int nth) {
    conv_job *j = arg;
    float *f = j->scratch + (size_t)ith * (size_t)j->cols;
    for (int64_t r = j->rows * ith / nth; r < j->rows * (ith + 1) / nth; r++) {
        j->src->to_f32(j->in + (size_t)r * j->in_row, f, j->cols);
        bool finite = true;
        for (int64_t c = 0; c < j->cols; c++) finite &= isfinite(f[c]) != 0;
        if (!finite) { /* refused: the encoders would carry it on as a NaN scale */
            int64_t cur = atomic_load(&j->bad);
            while (r < cur && !atomic_compare_exchange_weak(&j->bad, &cur, r)) {}
            return;
        }
        const float *w = j->imx ? j->imx + ((j->row0 + r) / j->mat_rows) * j->cols : NULL;
        grok_from_f32_weighted(j->dst_type, f, j->out + (size_t)r * j->out_row, j->cols, w);
    }
}

/* The importance of each column of tensor t for each of its matrices
 * (experts) into w [n_mat][cols]: 1 (no data, 0), filled (1), or -1 with
 * err when the imatrix's shape disagrees. */
static int imatrix_weights(const grok_imatrix *im, const grok_gguf_tensor *t, float *w, int64_t *counts,
                           char *err, size_t err_size) {
    const int64_t cols = t->ne[0], n_mat = t->n_dims >= 3 ? t->ne[2] : 1;
    bool any = false;
    for (int64_t e = 0; e < n_mat; e++) {
        float *we = w + e * cols;
        int64_t count = 0;
        const int r = grok_imatrix_weights(im, t->name, n_mat > 1 ? e : -1, cols, we, &count);
        if (counts) counts[e] = r == 0 ? count : 0;
        if (r == -1) return 0;
        if (r == -2) {
            snprintf(err, err_size,
                     "imatrix: tensor %s: its entry does not fit %" PRId64 " columns x %" PRId64 " matrices",
                     t->name, cols, n_mat);
            return -1;
        }
        double mean = 0;
        for (int64_t c = 0; c < cols; c++) mean += we[c];
        mean /= (double)cols;
        /* The raw mean squares, as llama-quantize passes them (it gives an
         * expert with no tokens all ones, as here). Only a column that is
         * exactly zero (never active) is raised, to 1e-6 of the mean, so a
         * block of such columns still has a determinate fit (ggml's weights
         * are then all zero); a matrix with no data at all counts alike. */
        const float tiny = (float)(1e-6 * mean);
        for (int64_t c = 0; c < cols; c++) we[c] = count > 0 && mean > 0 ? fmaxf(we[c], tiny) : 1.0f;
        any |= count > 0;
    }
    return any ? 1 : 0;
}

/* blk.N.ffn_gate_exps.weight -> blk.N.ffn_gate.E.weight */
static void expert_name(char *out, size_t size, const char *stacked, int64_t e) {
    const char *x = strstr(stacked, "_exps.weight");
    snprintf(out, size, "%.*s.%" PRId64 ".weight", (int)(x ? x - stacked : (ptrdiff_t)strlen(stacked)),
             stacked, e);
}

/* Whether --expert-aware shares out stacked expert tensor t (re-encoded as
 * t0): the experts' gate, up and down matrices of a file that stacks them. */
static bool expert_aware_tensor(const grok_quantize_params *p, const grok_gguf_tensor *t, grok_type t0) {
    const tensor_role r = role_of(t->name);
    return p->expert_aware && p->imatrix && t->n_dims == 3 && t->ne[2] > 1 &&
           strstr(t->name, "_exps.weight") &&
           (r == ROLE_FFN_GATE || r == ROLE_FFN_UP || r == ROLE_FFN_DOWN) && t0 != (grok_type)t->type;
}

/* --expert-aware: the type of each expert of t (re-encoded as t0) into xt,
 * from the imatrix's per-expert token counts and each candidate type's
 * measured error on the expert's rows (quant_experts.c), in the bytes of
 * t0 plus *carry, what the tensors before it left unspent (a few experts
 * rarely fill their budget exactly; carried on, the file's total stays
 * within one type step of one expert of the uniform mix's). 1 when shared
 * out, 0 when every expert keeps t0, -1 with err. */
static int share_experts(const grok_quantize_params *p, const grok_gguf_tensor *t, grok_type t0,
                         grok_threadpool *pool, grok_type *xt, uint64_t *carry, char *err, size_t err_size) {
    const int64_t cols = t->ne[0], rows = t->ne[1], E = t->ne[2];
    grok_type cand[5];
    const int nc = grok_quant_expert_candidates(t0, cols, cand);
    float *w = malloc(sizeof *w * (size_t)(cols * E));
    int64_t *counts = calloc((size_t)E, sizeof *counts);
    double *cost = malloc(sizeof *cost * (size_t)(E * nc));
    int *choice = malloc(sizeof *choice * (size_t)E);
    uint64_t size[5];
    int rc = -1;
    for (int64_t e = 0; e < E; e++) xt[e] = t0;
    if (!w || !counts || !cost || !choice) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    const int got = imatrix_weights(p->imatrix, t, w, counts, err, err_size);
    double mean = 0;
    for (int64_t e = 0; e < E; e++) mean += (double)counts[e] / (double)E;
    if (got <= 0 || mean <= 0 || nc < 2 || !grok_kernels_get(t->type)) {
        rc = got < 0 ? -1 : 0;
        if (!rc)
            fprintf(stderr, "grok quantize: %s: %s, every expert %s\n", t->name,
                    !grok_kernels_get(t->type) ? "its type cannot be decoded to measure the errors"
                    : nc < 2                   ? "no other type fits its rows"
                                               : "the imatrix has no token counts for it",
                    grok_type_get_traits((uint32_t)t0)->name);
        goto done;
    }
    for (int c = 0; c < nc; c++)
        size[c] = (uint64_t)grok_type_row_size((uint32_t)cand[c], cols) * (uint64_t)rows;
    const uint64_t budget =
        (uint64_t)grok_type_row_size((uint32_t)t0, cols) * (uint64_t)rows * (uint64_t)E + *carry;
    for (int64_t e = 0; e < E; e++) {
        /* 256 rows are enough to rank the types (every expert the same rows) */
        if (grok_quant_expert_errors(t, e, w + e * cols, cand, nc, 256, pool, cost + e * nc)) {
            snprintf(err, err_size, "out of memory");
            goto done;
        }
        /* an unused expert still counts a little: the text is a sample */
        const double use = (double)counts[e] + 0.01 * mean;
        for (int c = 0; c < nc; c++) cost[e * nc + c] *= use;
    }
    if (grok_quant_expert_assign(E, nc, cost, size, budget, choice)) {
        rc = 0; /* cannot be: t0 itself fits */
        goto done;
    }
    char line[1024];
    int n = snprintf(line, sizeof line, "grok quantize: %s: experts (share of tokens, type):", t->name);
    for (int64_t e = 0; e < E; e++) {
        xt[e] = cand[choice[e]];
        if (n > 0 && (size_t)n < sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " %" PRId64 " %.1f%% %s%s", e,
                          100.0 * (double)counts[e] / (mean * (double)E),
                          grok_type_get_traits((uint32_t)xt[e])->name, e + 1 < E ? "," : "");
    }
    fprintf(stderr, "%s\n", line);
    rc = 0; /* all of t0: the stacked tensor stays as it is */
    uint64_t used = 0;
    for (int64_t e = 0; e < E; e++) rc |= xt[e] != t0, used += size[choice[e]];
    if (rc) *carry = budget - used;
done:
    free(w), free(counts), free(cost), free(choice);
    return rc;
}

/* Encodes rows [r_begin, r_end) of t as j->dst_type into the output, a
 * chunk of chunk_rows at a time, dropping the input's pages as it goes. */
static int encode_rows(grok_gguf_file *f, const grok_gguf_tensor *t, conv_job *j, int64_t r_begin,
                       int64_t r_end, int64_t chunk_rows, grok_threadpool *pool, grok_gguf_writer *w,
                       const char *in_path, char *err, size_t err_size) {
    const int n_thr = grok_threadpool_size(pool);
    int rc = 0;
    for (int64_t r0 = r_begin; r0 < r_end && rc == 0; r0 += chunk_rows) {
        j->row0 = r0;
        j->in = (const uint8_t *)t->data + (size_t)r0 * j->in_row;
        j->rows = r_end - r0 < chunk_rows ? r_end - r0 : chunk_rows;
        if (pool && j->rows >= 2 * n_thr)
            grok_threadpool_run(pool, conv_task, j);
        else
            conv_task(j, 0, 1);
        if (atomic_load(&j->bad) != INT64_MAX) {
            snprintf(err, err_size,
                     "%s: tensor %s: row %" PRId64 " holds NaN or Inf; not quantized (grok info --check "
                     "lists every such tensor)",
                     in_path, t->name, r0 + atomic_load(&j->bad));
            return -1;
        }
        rc = grok_gguf_writer_write_data(w, j->out, (size_t)j->rows * j->out_row, err, err_size);
        grok_gguf_advise(f, j->in, (size_t)j->rows * j->in_row, MADV_DONTNEED); /* see below */
    }
    return rc;
}

int grok_model_quantize(const char *in_path, const char *out_path, const grok_quantize_params *p,
                        grok_threadpool *pool, grok_quantize_progress progress, void *ud,
                        grok_quantize_stats *stats, char *err, size_t err_size) {
    if (!p || !p->mix || !nameable((int)p->mix->base) || (p->output_type >= 0 && !nameable(p->output_type)) ||
        (p->token_embd_type >= 0 && !nameable(p->token_embd_type))) {
        snprintf(err, err_size, "%s: cannot quantize to the types asked for", out_path);
        return -1;
    }
    grok_gguf_file *f = grok_gguf_open(in_path, err, err_size);
    if (!f) return -1;
    grok_gguf_writer *w = grok_gguf_writer_create();
    const int64_t nt = grok_gguf_n_tensors(f);
    grok_type *types = calloc((size_t)(nt > 0 ? nt : 1), sizeof *types);
    grok_quantize_stats st;
    memset(&st, 0, sizeof st);
    st.n_tensors = nt;
    mix_model mm;
    read_mix_model(f, p, &mm);
    int rc = -1;
    /* one row of importance data, to see that the imatrix has a tensor's entry */
    int64_t max_ne0 = 1;
    for (int64_t i = 0; i < nt; i++)
        if (grok_gguf_tensor_at(f, i)->ne[0] > max_ne0) max_ne0 = grok_gguf_tensor_at(f, i)->ne[0];
    float *imx_probe = p->imatrix ? malloc((size_t)max_ne0 * sizeof(float)) : NULL;
    /* --expert-aware: each expert's type, [nt][max_exp], where split[i] */
    int64_t max_exp = 1;
    for (int64_t i = 0; i < nt; i++)
        if (grok_gguf_tensor_at(f, i)->n_dims >= 3 && grok_gguf_tensor_at(f, i)->ne[2] > max_exp)
            max_exp = grok_gguf_tensor_at(f, i)->ne[2];
    grok_type *xtypes =
        p->expert_aware ? calloc((size_t)((nt > 0 ? nt : 1) * max_exp), sizeof *xtypes) : NULL;
    bool *split = p->expert_aware ? calloc((size_t)(nt > 0 ? nt : 1), sizeof *split) : NULL;
    if (!w || !types || (p->expert_aware && (!xtypes || !split))) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    if (p->imatrix) { /* what llama-quantize records of its imatrix */
        const char *ds = NULL;
        if (p->imatrix_path) grok_gguf_writer_set_str(w, "quantize.imatrix.file", p->imatrix_path);
        if ((ds = grok_imatrix_dataset(p->imatrix)))
            grok_gguf_writer_set_str(w, "quantize.imatrix.dataset", ds);
        grok_gguf_writer_set_i32(w, "quantize.imatrix.entries_count",
                                 (int32_t)grok_imatrix_n_entries(p->imatrix));
        grok_gguf_writer_set_i32(w, "quantize.imatrix.chunks_count",
                                 (int32_t)grok_imatrix_chunk_count(p->imatrix));
    }
    if (grok_gguf_writer_set_u32(w, "general.file_type", (uint32_t)p->mix->ftype) ||
        grok_gguf_writer_set_u32(w, "general.quantization_version", 2) || grok_gguf_writer_copy_kvs(w, f)) {
        snprintf(err, err_size, "%s: could not copy the metadata", in_path);
        goto done;
    }
    grok_gguf_writer_set_alignment(w, grok_gguf_alignment(f));
    size_t max_row = 0;
    int64_t max_cols = 0, max_imx = 0;
    uint64_t carry = 0; /* --expert-aware: bytes the shared-out tensors left unspent */
    for (int64_t i = 0; i < nt; i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        types[i] = (grok_type)t->type;
        if (!keep_type(t)) {
            const grok_type rule = mix_type(&mm, t);
            const grok_type want = fallback_type(rule, t->ne[0]);
            if (want != rule) {
                fprintf(stderr,
                        "grok quantize: %s: %" PRId64 " columns are not a multiple of %" PRId64
                        ", written as %s\n",
                        t->name, t->ne[0], grok_type_get_traits((uint32_t)rule)->block_size,
                        grok_type_get_traits((uint32_t)want)->name);
                st.n_fallback++;
            }
            if (needs_imatrix(t, want, p->mix->ftype) && !p->dry_run) {
                const char *why = NULL;
                /* the last expert: an entry with fewer experts does not fit */
                const int probe =
                    !p->imatrix || !imx_probe
                        ? -1
                        : grok_imatrix_weights(p->imatrix, t->name, t->n_dims >= 3 ? t->ne[2] - 1 : -1,
                                               t->ne[0], imx_probe, NULL);
                if (!p->imatrix)
                    why = "needs an importance matrix (--imatrix FILE, from grok imatrix or llama-imatrix)";
                else if (probe == -1)
                    why = "needs importance data, and the imatrix has no entry for it";
                else if (probe == -2)
                    why = "needs importance data, and the imatrix's entry for it does not fit its shape";
                if (why) {
                    snprintf(err, err_size,
                             "%s: %s: tensor %s would be %s, which %s (as llama-quantize refuses it)",
                             out_path, p->mix->name, t->name, grok_type_get_traits((uint32_t)want)->name,
                             why);
                    goto done;
                }
            }
            if (want != (grok_type)t->type && !grok_type_can_encode((uint32_t)want) && !p->dry_run) {
                snprintf(err, err_size,
                         "%s: %s: tensor %s would be %s, which grok quantize has no encoder for yet",
                         out_path, p->mix->name, t->name, grok_type_get_traits((uint32_t)want)->name);
                goto done;
            }
            if (want != (grok_type)t->type && !grok_kernels_get(t->type) && !p->dry_run) {
                snprintf(err, err_size, "%s: tensor %s: cannot decode type %s to re-encode it", in_path,
                         t->name, grok_type_get_traits(t->type)->name);
                goto done;
            }
            types[i] = want;
            if (expert_aware_tensor(p, t, want)) {
                const int s = share_experts(p, t, want, pool, xtypes + i * max_exp, &carry, err, err_size);
                if (s < 0) goto done;
                split[i] = s > 0;
            }
        }
        if (types[i] != (grok_type)t->type) {
            size_t rb = (size_t)grok_type_row_size(t->type, t->ne[0]);
            size_t ob = (size_t)grok_type_row_size((uint32_t)types[i], t->ne[0]);
            if (rb > max_row) max_row = rb;
            if (ob > max_row) max_row = ob;
            if (t->ne[0] > max_cols) max_cols = t->ne[0];
            const int64_t nm = t->n_dims >= 3 ? t->ne[2] : 1;
            if (p->imatrix && grok_type_takes_imatrix(types[i]) && t->ne[0] * nm > max_imx)
                max_imx = t->ne[0] * nm;
            for (int64_t e = 0; split && split[i] && e < nm; e++) {
                const size_t xb = (size_t)grok_type_row_size((uint32_t)xtypes[i * max_exp + e], t->ne[0]);
                if (xb > max_row) max_row = xb;
                if (p->imatrix && t->ne[0] * nm > max_imx) max_imx = t->ne[0] * nm;
            }
        }
        if (split && split[i]) { /* one tensor per expert, each of its type */
            const int64_t ne[2] = {t->ne[0], t->ne[1]};
            st.n_elements += t->n_elements;
            st.bytes_in += t->nbytes;
            st.n_tensors += t->ne[2] - 1;
            for (int64_t e = 0; e < t->ne[2]; e++) {
                const grok_type xt = xtypes[i * max_exp + e];
                const uint64_t nb = (uint64_t)grok_type_row_size((uint32_t)xt, t->ne[0]) * (uint64_t)t->ne[1];
                char name[128];
                expert_name(name, sizeof name, t->name, e);
                st.n_of_type[xt]++;
                st.bytes_out += nb;
                if (p->plan) p->plan(p->plan_ud, name, (grok_type)t->type, xt, nb);
                if (grok_gguf_writer_add_tensor(w, name, xt, 2, ne, NULL) < 0) {
                    snprintf(err, err_size, "%s: tensor %s: could not add it to the output", out_path, name);
                    goto done;
                }
            }
            continue;
        }
        const uint64_t nb = types[i] == (grok_type)t->type
                                ? t->nbytes
                                : (uint64_t)grok_type_row_size((uint32_t)types[i], t->ne[0]) *
                                      (uint64_t)(t->n_elements / t->ne[0]);
        st.n_of_type[types[i]]++;
        st.n_elements += t->n_elements;
        st.bytes_in += t->nbytes;
        st.bytes_out += nb;
        if (p->plan) p->plan(p->plan_ud, t->name, (grok_type)t->type, types[i], nb);
        if (grok_gguf_writer_add_tensor(w, t->name, types[i], t->n_dims, t->ne, NULL) < 0) {
            snprintf(err, err_size, "%s: tensor %s: could not add it to the output", out_path, t->name);
            goto done;
        }
    }
    if (p->dry_run) {
        if (stats) *stats = st;
        rc = 0;
        goto done;
    }
    const int n_thr = grok_threadpool_size(pool);
    /* chunks of ~8 MiB of output rows */
    const int64_t chunk_rows = max_row ? (int64_t)((8u << 20) / max_row) + 1 : 1;
    uint8_t *out = max_row ? malloc((size_t)chunk_rows * max_row) : NULL;
    float *scratch = max_cols ? malloc((size_t)n_thr * (size_t)max_cols * sizeof(float)) : NULL;
    float *imx = max_imx ? malloc((size_t)max_imx * sizeof(float)) : NULL;
    if ((max_row && !out) || (max_cols && !scratch) || (max_imx && !imx)) {
        free(out), free(scratch), free(imx);
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    if (grok_gguf_writer_begin(w, out_path, err, err_size)) {
        free(out), free(scratch), free(imx);
        goto done;
    }
    rc = 0;
    for (int64_t i = 0; i < nt && rc == 0; i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        if (types[i] == (grok_type)t->type) {
            rc = grok_gguf_writer_write_data(w, t->data, t->nbytes, err, err_size);
        } else {
            const int64_t rows = t->n_elements / t->ne[0];
            const int64_t n_mat = t->n_dims >= 3 ? t->ne[2] : 1;
            conv_job j = {grok_kernels_get(t->type),
                          (uint32_t)types[i],
                          t->data,
                          out,
                          (size_t)grok_type_row_size(t->type, t->ne[0]),
                          (size_t)grok_type_row_size((uint32_t)types[i], t->ne[0]),
                          0,
                          t->ne[0],
                          scratch,
                          NULL,
                          0,
                          rows / n_mat,
                          INT64_MAX};
            const float *wimx = NULL; /* the importances, where the imatrix has them */
            if (p->imatrix && (grok_type_takes_imatrix((uint32_t)types[i]) || (split && split[i]))) {
                const int got = imatrix_weights(p->imatrix, t, imx, NULL, err, err_size);
                if (got < 0) {
                    rc = -1;
                    break;
                }
                j.imx = wimx = got ? imx : NULL;
                st.n_imatrix += got;
                st.n_imatrix_missing += !got;
            }
            if (split && split[i]) { /* expert by expert, each its own type */
                for (int64_t e = 0; e < n_mat && rc == 0; e++) {
                    j.dst_type = (uint32_t)xtypes[i * max_exp + e];
                    j.out_row = (size_t)grok_type_row_size(j.dst_type, t->ne[0]);
                    j.imx = grok_type_takes_imatrix(j.dst_type) ? wimx : NULL; /* as for a whole tensor */
                    rc = encode_rows(f, t, &j, e * (rows / n_mat), (e + 1) * (rows / n_mat), chunk_rows, pool,
                                     w, in_path, err, err_size);
                }
            } else {
                rc = encode_rows(f, t, &j, 0, rows, chunk_rows, pool, w, in_path, err, err_size);
            }
        }
        /* done with its bytes: drop them from this process's pages (they
         * stay in the page cache), so the resident set stays at about one
         * chunk (a copied tensor: one tensor) however large the file */
        grok_gguf_advise(f, t->data, (size_t)t->nbytes, MADV_DONTNEED);
        if (progress && rc == 0) progress(ud, i + 1, nt, t->name);
    }
    if (rc == 0) rc = grok_gguf_writer_finish(w, err, err_size);
    if (rc == 0 && stats) *stats = st;
    free(out), free(scratch), free(imx);
done:
    free(types);
    free(xtypes), free(split);
    free(imx_probe);
    grok_gguf_writer_free(w);
    grok_gguf_close(f);
    return rc ? -1 : 0;
}
