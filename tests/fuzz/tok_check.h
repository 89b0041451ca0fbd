/*
 * tok_check.h - what the targets that tokenize share: the real tokenizer
 * they load, and the check that the streaming decoder (one id at a time,
 * then a flush) gives exactly the whole decode.
 */
#ifndef GROK_FUZZ_TOK_CHECK_H
#define GROK_FUZZ_TOK_CHECK_H

#include "fuzz.h"
#include "grok.h"

/* The tokenizer the targets that need a real one use: GROK_FUZZ_TOKENIZER,
 * else Grok-1's from ../shared, else the small byte-fallback BPE model of
 * the fuzz_spm corpus (trained by spm_train; tests/fuzz/make_corpus.sh). */
static inline grok_tokenizer *fuzz_load_tokenizer(const char *who) {
    const char *paths[] = {getenv("GROK_FUZZ_TOKENIZER"),
                           GROK_SOURCE_DIR "/../shared/tokenizers/grok-1.model",
                           GROK_SOURCE_DIR "/tests/fuzz/corpus/fuzz_spm/bpe-bytes.model"};
    char err[GROK_ERR_SIZE];
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (!paths[i]) continue;
        grok_tokenizer *t = grok_tokenizer_load_spm(paths[i], err, sizeof err);
        if (t) {
            fprintf(stderr, "%s: tokenizer %s (%lld pieces)\n", who, paths[i],
                    (long long)grok_tokenizer_n_vocab(t));
            return t;
        }
    }
    fprintf(stderr, "%s: no tokenizer model found\n", who);
    exit(1);
}

/* Decodes ids whole and streamed; returns the whole decode (malloc'd). */
static inline char *fuzz_decode_both(const grok_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    char *whole = grok_detokenize(t, ids, n, len);
    FUZZ_CHECK(whole != NULL, "detokenize failed");
    size_t cap = n * (GROK_DETOK_MAX_PIECE + 8) + 16, pos = 0;
    char *streamed = malloc(cap);
    if (!streamed) return whole;
    grok_detok_stream st;
    grok_detok_stream_init(&st, true);
    for (size_t i = 0; i < n; i++) {
        size_t k = grok_detok_stream_push(&st, t, ids[i], streamed + pos, cap - pos);
        FUZZ_CHECK(k <= GROK_DETOK_MAX_PIECE + 8, "one id gave %zu bytes", k);
        pos += k;
    }
    pos += grok_detok_stream_flush(&st, streamed + pos, cap - pos);
    FUZZ_CHECK(pos == *len && memcmp(streamed, whole, pos) == 0,
               "streamed decode (%zu bytes) differs from the whole decode (%zu bytes)", pos, *len);
    free(streamed);
    return whole;
}

#endif
