/*
 * quantize.c - re-encodes a GGUF model's weight matrices into another type.
 * Each matrix is decoded to f32 a chunk of rows at a time and encoded with
 * the target type's reference encoder (ggml's rounding for q8_0 and q4_0,
 * so those files match what llama.cpp's quantizer writes; the k-quants'
 * own search, in ggml's format), the rows of a chunk split across the
 * thread pool. Data is streamed through the GGUF writer:
 * memory stays at one chunk, and the output appears under its name only
 * when complete.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/quantize.h"

int grok_llama_ftype(grok_type type) {
    switch (type) {
    case GROK_TYPE_F32: return 0;
    case GROK_TYPE_F16: return 1;
    case GROK_TYPE_Q4_0: return 2;
    case GROK_TYPE_Q8_0: return 7;
    case GROK_TYPE_Q4_K: return 14; /* LLAMA_FTYPE_MOSTLY_Q4_K_S */
    case GROK_TYPE_Q5_K: return 16; /* LLAMA_FTYPE_MOSTLY_Q5_K_S */
    case GROK_TYPE_Q6_K: return 18; /* LLAMA_FTYPE_MOSTLY_Q6_K */
    case GROK_TYPE_BF16: return 32;
    default: return -1;
    }
}

/* Norms, the router and vectors stay as they are: they are small and the
 * router's choices are sensitive to rounding. */
static bool keep_type(const gguf_tensor *t) {
    return t->n_dims < 2 || strstr(t->name, "norm") != NULL || strstr(t->name, "ffn_gate_inp") != NULL;
}

typedef struct {
    const grok_type_kernels *src, *dst;
    const uint8_t *in;
    uint8_t *out;
    size_t in_row, out_row;
    int64_t rows, cols;
    float *scratch; /* [n_threads][cols] */
} conv_job;

static void conv_task(void *arg, int ith, int nth) {
    const conv_job *j = arg;
    float *f = j->scratch + (size_t)ith * (size_t)j->cols;
    for (int64_t r = j->rows * ith / nth; r < j->rows * (ith + 1) / nth; r++) {
        j->src->to_f32(j->in + (size_t)r * j->in_row, f, j->cols);
        j->dst->from_f32(f, j->out + (size_t)r * j->out_row, j->cols);
    }
}

int grok_model_quantize(const char *in_path, const char *out_path, grok_type type,
                        grok_threadpool *pool, grok_quantize_progress progress, void *ud, char *err,
                        size_t err_size) {
    const grok_type_kernels *dk = grok_kernels_get(type);
    if (!dk || grok_llama_ftype(type) < 0) {
        snprintf(err, err_size, "%s: cannot quantize to type %u", out_path, (unsigned)type);
        return -1;
    }
    gguf_file *f = gguf_open(in_path, err, err_size);
    if (!f) return -1;
    gguf_writer *w = gguf_writer_create();
    const int64_t nt = gguf_n_tensors(f);
    grok_type *types = calloc((size_t)(nt > 0 ? nt : 1), sizeof *types);
    int rc = -1;
    if (!w || !types) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    if (gguf_writer_set_u32(w, "general.file_type", (uint32_t)grok_llama_ftype(type)) ||
        gguf_writer_set_u32(w, "general.quantization_version", 2) || gguf_writer_copy_kvs(w, f)) {
        snprintf(err, err_size, "%s: could not copy the metadata", in_path);
        goto done;
    }
    gguf_writer_set_alignment(w, gguf_alignment(f));
    size_t max_row = 0;
    int64_t max_cols = 0;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        types[i] = (grok_type)t->type;
        if (!keep_type(t) && t->type != (uint32_t)type) {
            grok_type want = type;
            const grok_type_traits *tr = grok_type_get_traits((uint32_t)type);
            if (t->ne[0] % tr->block_size) {
                /* Rows that do not divide into the type's blocks: a k-quant's
                 * 256 falls back to q8_0 (llama.cpp too falls back to a 32-block
                 * type; its q5_0 / q5_1 are not computed here), others keep
                 * their type. Grok-1's rows all divide by 256. */
                want = tr->block_size > 32 && t->ne[0] % 32 == 0 ? GROK_TYPE_Q8_0 : (grok_type)t->type;
                fprintf(stderr, "grok quantize: %s: %" PRId64 " columns are not a multiple of %" PRId64
                                ", %s %s\n", t->name, t->ne[0], tr->block_size,
                        want == (grok_type)t->type ? "kept as" : "written as", grok_type_get_traits(want)->name);
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
        }
        if (gguf_writer_add_tensor(w, t->name, types[i], t->n_dims, t->ne, NULL) < 0) {
            snprintf(err, err_size, "%s: tensor %s: could not add it to the output", out_path, t->name);
            goto done;
        }
    }
    const int n_thr = grok_threadpool_size(pool);
    /* chunks of ~8 MiB of output rows */
    const int64_t chunk_rows = max_row ? (int64_t)((8u << 20) / max_row) + 1 : 1;
    uint8_t *out = max_row ? malloc((size_t)chunk_rows * max_row) : NULL;
    float *scratch = max_cols ? malloc((size_t)n_thr * (size_t)max_cols * sizeof(float)) : NULL;
    if ((max_row && !out) || (max_cols && !scratch)) {
        free(out), free(scratch);
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    if (gguf_writer_begin(w, out_path, err, err_size)) {
        free(out), free(scratch);
        goto done;
    }
    rc = 0;
    for (int64_t i = 0; i < nt && rc == 0; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (types[i] == (grok_type)t->type) {
            rc = gguf_writer_write_data(w, t->data, t->nbytes, err, err_size);
        } else {
            const int64_t rows = t->n_elements / t->ne[0];
            conv_job j = {grok_kernels_get(t->type), grok_kernels_get(types[i]), t->data, out,
                          (size_t)grok_type_row_size(t->type, t->ne[0]),
                          (size_t)grok_type_row_size((uint32_t)types[i], t->ne[0]), 0, t->ne[0], scratch};
            for (int64_t r0 = 0; r0 < rows && rc == 0; r0 += chunk_rows) {
                j.in = (const uint8_t *)t->data + (size_t)r0 * j.in_row;
                j.rows = rows - r0 < chunk_rows ? rows - r0 : chunk_rows;
                if (pool && j.rows >= 2 * n_thr)
                    grok_threadpool_run(pool, conv_task, &j);
                else
                    conv_task(&j, 0, 1);
                rc = gguf_writer_write_data(w, out, (size_t)j.rows * j.out_row, err, err_size);
            }
        }
        if (progress && rc == 0) progress(ud, i + 1, nt, t->name);
    }
    if (rc == 0) rc = gguf_writer_finish(w, err, err_size);
    free(out), free(scratch);
done:
    free(types);
    gguf_writer_free(w);
    gguf_close(f);
    return rc ? -1 : 0;
}
