/*
 * fuzz_pickle.c - the checkpoint pickle reader (src/convert/pickle.c), the
 * allowlist interpreter that grok convert runs over every file of the
 * official checkpoint. A rejected input must come with "NAME: byte N: ..."
 * as every rejection in test_pickle does; an accepted one must describe
 * arrays whose payloads lie inside the file, and the scale check must run
 * over those payloads safely.
 */
#include <inttypes.h>

#include "convert/pickle.h"
#include "grok.h"
#include "fuzz.h"

static void check_array(const grok_ckpt_array *a, size_t size) {
    FUZZ_CHECK(a->n_dims >= 0 && a->n_dims <= GROK_CKPT_MAX_DIMS, "n_dims %d", a->n_dims);
    int64_t n = 1;
    for (int i = 0; i < a->n_dims; i++) {
        FUZZ_CHECK(a->shape[i] >= 0, "negative dimension");
        FUZZ_CHECK(!__builtin_mul_overflow(n, a->shape[i], &n), "accepted a shape whose product overflows");
    }
    FUZZ_CHECK(n == a->n_elements, "n_elements %" PRId64 " but the shape gives %" PRId64, a->n_elements, n);
    FUZZ_CHECK(a->nbytes == (uint64_t)a->n_elements * grok_ckpt_dtype_size(a->dtype), "nbytes");
    FUZZ_CHECK(a->offset <= size && a->nbytes <= size - a->offset,
               "payload [%" PRIu64 ", +%" PRIu64 ") outside the %zu-byte file", a->offset, a->nbytes, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    grok_ckpt_entry e;
    char err[GROK_ERR_SIZE] = "";
    if (grok_ckpt_pickle_parse_mem("fuzz.pkl", data, size, &e, err, sizeof err) != 0) {
        FUZZ_CHECK(strncmp(err, "fuzz.pkl: byte ", 15) == 0, "rejection without file and offset: '%s'", err);
        return 0;
    }
    check_array(&e.weight, size);
    if (e.quantized) {
        check_array(&e.scales, size);
        if (e.scales.dtype == GROK_CKPT_BF16 && e.scales.nbytes) {
            uint16_t *vals = malloc(e.scales.nbytes);
            if (!vals) return 0;
            memcpy(vals, data + e.scales.offset, e.scales.nbytes);
            err[0] = '\0';
            if (grok_ckpt_check_scales("fuzz.pkl", &e.scales, vals, err, sizeof err) != 0)
                FUZZ_CHECK(strncmp(err, "fuzz.pkl: byte ", 15) == 0, "scale rejection: '%s'", err);
            free(vals);
        }
    }
    return 0;
}
