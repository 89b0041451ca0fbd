/*
 * fuzz_imatrix.c - importance-matrix files (src/model/imatrix.c), as
 * grok quantize --imatrix and grok imatrix --in-file read them: llama.cpp's
 * imatrix GGUF or its legacy .dat (told apart by the magic). A refused file
 * must come with a message; an accepted one must give entries whose every
 * weight (what the quantizer multiplies errors by) is finite and not
 * negative, and loading it a second time (grok imatrix merges files so)
 * must succeed or be refused with a message too.
 */
#include <math.h>

#include "fuzz.h"
#include "grok.h"

static void walk(const grok_imatrix *im) {
    for (int64_t i = 0; i < grok_imatrix_n_entries(im); i++) {
        const char *name = NULL;
        int64_t n_cols = 0, n_mat = 0, n_counts = 0;
        const int64_t *counts = NULL;
        FUZZ_CHECK(grok_imatrix_entry(im, i, &name, &n_cols, &n_mat, &counts, &n_counts) == 0, "entry %lld",
                   (long long)i);
        FUZZ_CHECK(name && n_cols > 0 && n_mat > 0, "entry %lld: name or shape", (long long)i);
        for (int64_t k = 0; k < n_counts; k++) FUZZ_CHECK(counts[k] >= 0, "entry '%s': negative count", name);
        if (n_cols > (1 << 20)) continue; /* the shape is checked above; the values only for a sane size */
        float *w = malloc((size_t)n_cols * sizeof *w);
        if (!w) return;
        for (int64_t e = 0; e < (n_mat > 1 ? n_mat : 1) && e < 16; e++) {
            int64_t cnt = 0;
            const int rc = grok_imatrix_weights(im, name, n_mat > 1 ? e : -1, n_cols, w, &cnt);
            FUZZ_CHECK(rc == 0, "entry '%s' (expert %lld) not found by name: %d", name, (long long)e, rc);
            for (int64_t c = 0; c < n_cols && rc == 0; c++)
                FUZZ_CHECK(isfinite(w[c]) && w[c] >= 0, "entry '%s' column %lld: weight %g", name,
                           (long long)c, (double)w[c]);
        }
        free(w);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    char err[GROK_ERR_SIZE] = "";
    grok_imatrix *im = grok_imatrix_create(0);
    if (!im) return 0;
    if (grok_imatrix_load(im, path, err, sizeof err) != 0) {
        fuzz_note("load", err);
        FUZZ_CHECK(err[0], "imatrix load refused the file without a message");
        grok_imatrix_free(im);
        return 0;
    }
    walk(im);
    err[0] = '\0';
    if (grok_imatrix_load(im, path, err, sizeof err) != 0)
        FUZZ_CHECK(err[0], "the second load refused the file without a message");
    else
        walk(im);
    grok_imatrix_free(im);
    return 0;
}
