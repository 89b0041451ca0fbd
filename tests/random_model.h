/*
 * random_model.h - the small model the C tests of the forward pass share:
 * the given shape with random weights of one type and a placeholder
 * vocabulary of n_vocab pieces, written to GROK_TMP/NAME (GROK_TMP made
 * if missing; /tmp without it; the path goes to path_out unless NULL) and
 * loaded. Include after check.h: a failure is a failed CHECK and returns
 * NULL.
 */
#ifndef GROK_TEST_RANDOM_MODEL_H
#define GROK_TEST_RANDOM_MODEL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "model/model.h"

static inline grok_model *random_model(const char *name, const grok_hparams *hp, grok_type type,
                                       int64_t n_vocab, uint64_t seed, char *path_out, size_t path_cap) {
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char path[4096], err[GROK_ERR_SIZE];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    if (path_out) snprintf(path_out, path_cap, "%s", path);
    grok_tokenizer *tok = grok_tokenizer_placeholder(n_vocab, err, sizeof err);
    CHECK(tok, "placeholder vocab: %s", err);
    if (!tok) return NULL;
    const int rc = grok_model_write_random(path, hp, type, tok, false, seed, err, sizeof err);
    grok_tokenizer_free(tok);
    CHECK(rc == 0, "write %s: %s", path, err);
    if (rc) return NULL;
    grok_model *m = grok_model_load(path, err, sizeof err);
    CHECK(m, "load %s: %s", path, err);
    return m;
}

#endif
