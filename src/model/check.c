/*
 * check.c - the data check of `grok info --check` (llama.cpp's
 * --check-tensors): every value of a tensor decoded by its type's own
 * decoder and tested for NaN and Inf. Decoding rather than reading the
 * scales field by field covers every type that has a decoder, those added
 * later included, and is exact for the scales too: a block whose scale (or
 * min, or any sub-scale) is NaN or Inf decodes to non-finite values only,
 * since anything multiplied by it is (Inf times a zero quant is NaN), and
 * finite f16/f32 scales times bounded quants stay finite.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "model/model.h"

typedef struct {
    const grok_gguf_tensor *t;
    const grok_type_kernels *k;
    int64_t rows, cols;
    size_t row_bytes;
    int64_t *count; /* [threads] */
    int64_t *first; /* [threads]: each thread's first bad element, or -1 */
    atomic_bool oom;
} check_job;

static void check_rows(void *arg, int ith, int nth) {
    check_job *j = arg;
    j->count[ith] = 0;
    j->first[ith] = -1;
    const int64_t r0 = j->rows * ith / nth, r1 = j->rows * (ith + 1) / nth;
    if (r0 == r1) return;
    float *v = malloc((size_t)j->cols * sizeof *v);
    if (!v) {
        atomic_store(&j->oom, true);
        return;
    }
    const uint8_t *data = j->t->data;
    for (int64_t r = r0; r < r1; r++) {
        j->k->to_f32(data + (size_t)r * j->row_bytes, v, j->cols);
        int64_t bad = 0, at = -1;
        for (int64_t c = 0; c < j->cols; c++)
            if (!isfinite(v[c])) {
                if (at < 0) at = c;
                bad++;
            }
        if (bad && j->first[ith] < 0) j->first[ith] = r * j->cols + at;
        j->count[ith] += bad;
    }
    free(v);
}

int64_t grok_tensor_count_nonfinite(const grok_gguf_tensor *t, grok_threadpool *pool, int64_t *first) {
    *first = -1;
    const grok_type_kernels *k = grok_kernels_get(t->type);
    if (!k || !k->to_f32 || t->n_elements == 0) return t->n_elements == 0 && k ? 0 : -1;
    check_job j = {.t = t, .k = k, .cols = t->ne[0]};
    j.rows = t->n_elements / j.cols;
    j.row_bytes = (size_t)grok_type_row_size(t->type, j.cols);
    const int nth = grok_threadpool_size(pool);
    j.count = calloc((size_t)nth, sizeof *j.count);
    j.first = calloc((size_t)nth, sizeof *j.first);
    int64_t n = -2;
    if (j.count && j.first) {
        grok_threadpool_run(pool, check_rows, &j);
        n = atomic_load(&j.oom) ? -2 : 0;
        for (int i = 0; i < nth && n >= 0; i++) {
            n += j.count[i];
            if (j.first[i] >= 0 && (*first < 0 || j.first[i] < *first)) *first = j.first[i];
        }
    }
    free(j.count);
    free(j.first);
    return n;
}
