/*
 * quantize.c - re-encodes a GGUF model's weight matrices into another type.
 * Which type each matrix gets is decided first, for the whole file: one
 * type for all (--pure), or one of llama.cpp's file types ("mixes" such as
 * Q4_K_M), whose rules give a few sensitive matrices more bits (mix_type
 * below). Each matrix is then decoded to f32 a chunk of rows at a time and
 * encoded with the target type's reference encoder (ggml's rounding for
 * q8_0 and q4_0, so those files match what llama.cpp's quantizer writes;
 * the k-quants' own search, in ggml's format), the rows of a chunk split
 * across the thread pool. Data is streamed through the GGUF writer:
 * memory stays at one chunk, and the output appears under its name only
 * when complete.
 */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/kernels.h"
#include "model/quantize.h"

/* llama.cpp's LLAMA_FTYPE numbers (llama.h) of the file types written here. */
enum {
    FT_F32 = 0,
    FT_F16 = 1,
    FT_Q4_0 = 2,
    FT_Q8_0 = 7,
    FT_Q4_K_S = 14,
    FT_Q4_K_M = 15,
    FT_Q5_K_S = 16,
    FT_Q5_K_M = 17,
    FT_Q6_K = 18,
    FT_BF16 = 32
};

/* In llama-quantize's order. For a file of one type (grok new, grok
 * convert) the first entry with it as base names the file type: Q4_K_S for
 * q4_K, Q5_K_S for q5_K. */
static const grok_quant_mix MIXES[] = {
    {"Q4_0", FT_Q4_0, GROK_TYPE_Q4_0, "q4_0, output q6_K"},
    {"Q4_K_S", FT_Q4_K_S, GROK_TYPE_Q4_K,
     "q4_K, attn_v (4 first layers) and ffn_down (first 1/8) q5_K, output q6_K"},
    {"Q4_K_M", FT_Q4_K_M, GROK_TYPE_Q4_K, "q4_K, attn_v and ffn_down q6_K in half the layers, output q6_K"},
    {"Q5_K_S", FT_Q5_K_S, GROK_TYPE_Q5_K, "q5_K, output q6_K"},
    {"Q5_K_M", FT_Q5_K_M, GROK_TYPE_Q5_K, "q5_K, attn_v and ffn_down q6_K in half the layers, output q6_K"},
    {"Q6_K", FT_Q6_K, GROK_TYPE_Q6_K, "q6_K"},
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
    bool tied; /* no output.weight: token_embd is the output head too */
} mix_model;

/* The output head's error lands on every logit and it is one matrix: it
 * gets q6_K unless the mix is q8_0 already (rows that do not divide into
 * the mix's own blocks: q8_0), or --output-type's type. */
static grok_type output_head_type(const grok_quantize_params *p, const grok_gguf_tensor *t, int64_t block) {
    if (p->output_type >= 0) return (grok_type)p->output_type;
    if (t->ne[0] % block) return GROK_TYPE_Q8_0;
    return p->mix->base == GROK_TYPE_Q8_0 ? GROK_TYPE_Q8_0 : GROK_TYPE_Q6_K;
}

/* The type a matrix gets, before the block-size fallback. */
static grok_type mix_type(const mix_model *m, const grok_gguf_tensor *t) {
    const grok_quantize_params *p = m->p;
    const int ft = p->mix->ftype;
    const grok_type base = p->mix->base;
    const int64_t block = grok_type_get_traits((uint32_t)base)->block_size;
    const tensor_role role = role_of(t->name);
    const int64_t il = layer_of(t->name), nl = m->n_layers;
    /* --token-embedding-type and --output-type name the type outright */
    if (role == ROLE_TOKEN_EMBD && p->token_embd_type >= 0) return (grok_type)p->token_embd_type;
    if (role == ROLE_OUTPUT && p->output_type >= 0) return (grok_type)p->output_type;
    /* --pure; and the float types have no rules */
    if (p->pure || block == 1) return base;
    /* Grok-1 has 8 experts, the shape llama.cpp tuned for Mixtral: there
     * attention K and V get q8_0 in every mix (a few MB next to the
     * experts) and attention output q5_K in the 4-bit mixes. */
    const bool eight_experts = m->n_experts == 8;
    switch (role) {
    case ROLE_TOKEN_EMBD: /* a lookup table (one row read per token), unless tied */
        return m->tied ? output_head_type(p, t, block) : base;
    case ROLE_OUTPUT: return output_head_type(p, t, block);
    case ROLE_ATTN_V:
        /* V is what attention reads out, and small under GQA: the _M mixes
         * give it q6_K in the use_more_bits layers, Q4_K_S q5_K in the
         * first four layers. */
        if (eight_experts) return GROK_TYPE_Q8_0;
        if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && il >= 0 && more_bits_layer(il, nl)) return GROK_TYPE_Q6_K;
        if (ft == FT_Q4_K_S && il >= 0 && il < 4) return GROK_TYPE_Q5_K;
        return base;
    case ROLE_ATTN_K: return eight_experts ? GROK_TYPE_Q8_0 : base;
    case ROLE_ATTN_OUTPUT:
        return eight_experts && (ft == FT_Q4_K_S || ft == FT_Q4_K_M) ? GROK_TYPE_Q5_K : base;
    case ROLE_FFN_DOWN:
        /* The down projection's error goes straight into the residual
         * stream: q6_K in the use_more_bits layers for the _M mixes, q5_K
         * in the first eighth of the layers for Q4_K_S. */
        if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && il >= 0 && more_bits_layer(il, nl)) return GROK_TYPE_Q6_K;
        if (ft == FT_Q4_K_S && il >= 0 && il < nl / 8) return GROK_TYPE_Q5_K;
        return base;
    default: /* attn_q and ffn_gate/up_exps: the mix's type in every mix here */ return base;
    }
}

/* The layer and expert counts (ARCH.block_count, ARCH.expert_count; the
 * layer count from the tensor names where the key is absent) and whether
 * the output head is the embedding. */
static void read_mix_model(const grok_gguf_file *f, const grok_quantize_params *p, mix_model *m) {
    const char *arch = NULL;
    char key[128];
    m->p = p;
    m->n_layers = m->n_experts = 0;
    if (grok_gguf_get_str(f, "general.architecture", &arch, NULL) == 0) {
        snprintf(key, sizeof key, "%s.block_count", arch);
        if (grok_gguf_get_i64(f, key, &m->n_layers) != 0) m->n_layers = 0;
        snprintf(key, sizeof key, "%s.expert_count", arch);
        if (grok_gguf_get_i64(f, key, &m->n_experts) != 0) m->n_experts = 0;
    }
    for (int64_t i = 0; i < grok_gguf_n_tensors(f); i++) {
        int64_t il = layer_of(grok_gguf_tensor_at(f, i)->name);
        if (il >= m->n_layers) m->n_layers = il + 1;
    }
    m->tied = grok_gguf_find_tensor(f, "output.weight") == NULL;
}

/* A type grok quantize can write: one it has an encoder for. */
static bool writable(int type) {
    return type >= 0 && type < GROK_TYPE_COUNT && grok_llama_ftype((grok_type)type) >= 0 &&
           grok_kernels_get((uint32_t)type) && grok_kernels_get((uint32_t)type)->from_f32;
}

typedef struct {
    const grok_type_kernels *src;
    uint32_t dst_type;
    const uint8_t *in;
    uint8_t *out;
    size_t in_row, out_row;
    int64_t rows, cols;
    float *scratch;    /* [n_threads][cols] */
    const float *imx;  /* [n_mat][cols] importance of each column, or NULL */
    int64_t row0;      /* the chunk's first row in the tensor */
    int64_t mat_rows;  /* rows per matrix (an expert's slice of a stacked tensor) */
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
 * err when the imatrix's shape disagrees. A floor of 1 % of the mean keeps
 * columns never active in the calibration text from weighing nothing. */
static int imatrix_weights(const grok_imatrix *im, const grok_gguf_tensor *t, float *w, char *err,
                           size_t err_size) {
    const int64_t cols = t->ne[0], n_mat = t->n_dims >= 3 ? t->ne[2] : 1;
    bool any = false;
    for (int64_t e = 0; e < n_mat; e++) {
        float *we = w + e * cols;
        int64_t count = 0;
        const int r = grok_imatrix_weights(im, t->name, n_mat > 1 ? e : -1, cols, we, &count);
        if (r == -1) return 0;
        if (r == -2) {
            snprintf(err, err_size, "imatrix: tensor %s: its entry does not fit %" PRId64 " columns x %" PRId64 " matrices",
                     t->name, cols, n_mat);
            return -1;
        }
        double mean = 0;
        for (int64_t c = 0; c < cols; c++) mean += we[c];
        mean /= (double)cols;
        for (int64_t c = 0; c < cols; c++) we[c] = count > 0 && mean > 0 ? we[c] + (float)(0.01 * mean) : 1.0f;
        any |= count > 0;
    }
    return any ? 1 : 0;
}

int grok_model_quantize(const char *in_path, const char *out_path, const grok_quantize_params *p,
                        grok_threadpool *pool, grok_quantize_progress progress, void *ud,
                        grok_quantize_stats *stats, char *err, size_t err_size) {
    if (!p || !p->mix || !writable((int)p->mix->base) || (p->output_type >= 0 && !writable(p->output_type)) ||
        (p->token_embd_type >= 0 && !writable(p->token_embd_type))) {
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
    if (!w || !types) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    if (p->imatrix) { /* what llama-quantize records of its imatrix */
        const char *ds = NULL;
        if (p->imatrix_path) grok_gguf_writer_set_str(w, "quantize.imatrix.file", p->imatrix_path);
        if ((ds = grok_imatrix_dataset(p->imatrix))) grok_gguf_writer_set_str(w, "quantize.imatrix.dataset", ds);
        grok_gguf_writer_set_i32(w, "quantize.imatrix.entries_count", (int32_t)grok_imatrix_n_entries(p->imatrix));
        grok_gguf_writer_set_i32(w, "quantize.imatrix.chunks_count", (int32_t)grok_imatrix_chunk_count(p->imatrix));
    }
    if (grok_gguf_writer_set_u32(w, "general.file_type", (uint32_t)p->mix->ftype) ||
        grok_gguf_writer_set_u32(w, "general.quantization_version", 2) || grok_gguf_writer_copy_kvs(w, f)) {
        snprintf(err, err_size, "%s: could not copy the metadata", in_path);
        goto done;
    }
    grok_gguf_writer_set_alignment(w, grok_gguf_alignment(f));
    size_t max_row = 0;
    int64_t max_cols = 0, max_imx = 0;
    for (int64_t i = 0; i < nt; i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        types[i] = (grok_type)t->type;
        if (!keep_type(t)) {
            grok_type want = mix_type(&mm, t);
            const grok_type_traits *tr = grok_type_get_traits((uint32_t)want);
            if (t->ne[0] % tr->block_size) {
                /* Rows that do not divide into the type's blocks: a k-quant's
                 * 256 falls back to q8_0 (llama.cpp too falls back to a 32-block
                 * type, q5_0 or q5_1 for q4_K and q5_K, which are not computed
                 * here), others keep their type. Grok-1's rows all divide by 256. */
                grok_type fb =
                    tr->block_size > 32 && t->ne[0] % 32 == 0 ? GROK_TYPE_Q8_0 : (grok_type)t->type;
                fprintf(stderr,
                        "grok quantize: %s: %" PRId64 " columns are not a multiple of %" PRId64 ", %s %s\n",
                        t->name, t->ne[0], tr->block_size,
                        fb == (grok_type)t->type ? "kept as" : "written as", grok_type_get_traits(fb)->name);
                want = fb;
                st.n_fallback++;
            }
            if (want != (grok_type)t->type && !grok_kernels_get(t->type)) {
                snprintf(err, err_size, "%s: tensor %s: cannot decode type %s to re-encode it", in_path,
                         t->name, grok_type_get_traits(t->type)->name);
                goto done;
            }
            types[i] = want;
        }
        if (types[i] != (grok_type)t->type) {
            size_t rb = (size_t)grok_type_row_size(t->type, t->ne[0]);
            size_t ob = (size_t)grok_type_row_size((uint32_t)types[i], t->ne[0]);
            if (rb > max_row) max_row = rb;
            if (ob > max_row) max_row = ob;
            if (t->ne[0] > max_cols) max_cols = t->ne[0];
            const int64_t nm = t->n_dims >= 3 ? t->ne[2] : 1;
            if (p->imatrix && grok_type_takes_imatrix(types[i]) && t->ne[0] * nm > max_imx) max_imx = t->ne[0] * nm;
        }
        st.n_of_type[types[i]]++;
        st.n_elements += t->n_elements;
        st.bytes_in += t->nbytes;
        st.bytes_out += types[i] == (grok_type)t->type
                            ? t->nbytes
                            : (uint64_t)grok_type_row_size((uint32_t)types[i], t->ne[0]) *
                                  (uint64_t)(t->n_elements / t->ne[0]);
        if (grok_gguf_writer_add_tensor(w, t->name, types[i], t->n_dims, t->ne, NULL) < 0) {
            snprintf(err, err_size, "%s: tensor %s: could not add it to the output", out_path, t->name);
            goto done;
        }
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
            if (p->imatrix && grok_type_takes_imatrix((uint32_t)types[i])) {
                const int got = imatrix_weights(p->imatrix, t, imx, err, err_size);
                if (got < 0) {
                    rc = -1;
                    break;
                }
                j.imx = got ? imx : NULL;
                st.n_imatrix += got;
                st.n_imatrix_missing += !got;
            }
            for (int64_t r0 = 0; r0 < rows && rc == 0; r0 += chunk_rows) {
                j.row0 = r0;
                j.in = (const uint8_t *)t->data + (size_t)r0 * j.in_row;
                j.rows = rows - r0 < chunk_rows ? rows - r0 : chunk_rows;
                if (pool && j.rows >= 2 * n_thr)
                    grok_threadpool_run(pool, conv_task, &j);
                else
                    conv_task(&j, 0, 1);
                if (atomic_load(&j.bad) != INT64_MAX) {
                    snprintf(err, err_size,
                             "%s: tensor %s: row %" PRId64 " holds NaN or Inf; not quantized (grok info --check "
                             "lists every such tensor)",
                             in_path, t->name, r0 + atomic_load(&j.bad));
                    rc = -1;
                    break;
                }
                rc = grok_gguf_writer_write_data(w, out, (size_t)j.rows * j.out_row, err, err_size);
            }
        }
        if (progress && rc == 0) progress(ud, i + 1, nt, t->name);
    }
    if (rc == 0) rc = grok_gguf_writer_finish(w, err, err_size);
    if (rc == 0 && stats) *stats = st;
    free(out), free(scratch), free(imx);
done:
    free(types);
    grok_gguf_writer_free(w);
    grok_gguf_close(f);
    return rc ? -1 : 0;
}
