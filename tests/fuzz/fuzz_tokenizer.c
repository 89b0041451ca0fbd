/*
 * fuzz_tokenizer.c - the encoder and decoder on a real SentencePiece model:
 * Grok-1's (../shared/tokenizers/grok-1.model) when it is there (see
 * fuzz_load_tokenizer).
 *
 * The first byte picks the mode. Text: the rest is encoded, every id must
 * be in range, the streamed decode must equal the whole one, and valid
 * UTF-8 without U+2581 must come back byte for byte (sentencepiece maps
 * U+2581 to a space, so text holding it cannot round-trip). Ids: the rest
 * is read as 24-bit ids (-1 and n_vocab among them) and decoded both ways.
 */
#include "fuzz.h"
#include "grok.h"
#include "server/server.h"
#include "util/utf8.h"
#include "tok_check.h"

static grok_tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_tok = fuzz_load_tokenizer("fuzz_tokenizer");
    return 0;
}

static bool has_2581(const uint8_t *s, size_t n) {
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == 0xe2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        size_t n_ids = 0, len = 0;
        int32_t *ids = grok_tokenize(g_tok, (const char *)p, n, data[0] & 2, &n_ids);
        FUZZ_CHECK(ids != NULL, "tokenize failed");
        for (size_t i = 0; i < n_ids; i++)
            FUZZ_CHECK(ids[i] >= 0 && ids[i] < grok_tokenizer_n_vocab(g_tok), "id %d out of range", ids[i]);
        char *back = fuzz_decode_both(g_tok, ids, n_ids, &len);
        if (grok_utf8_valid((const char *)p, n) && !has_2581(p, n))
            FUZZ_CHECK(len == n && memcmp(back, p, n) == 0,
                       "valid UTF-8 of %zu bytes decoded to %zu other bytes", n, len);
        free(back);
        free(ids);
    } else {
        size_t n_ids = n / 3, len = 0;
        int32_t *ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
        if (!ids) return 0;
        uint32_t nv = (uint32_t)grok_tokenizer_n_vocab(g_tok);
        for (size_t i = 0; i < n_ids; i++) {
            uint32_t v = (uint32_t)p[3 * i] | (uint32_t)p[3 * i + 1] << 8 | (uint32_t)p[3 * i + 2] << 16;
            ids[i] = (int32_t)(v % (nv + 2)) - 1; /* -1 and nv are no pieces */
        }
        free(fuzz_decode_both(g_tok, ids, n_ids, &len));
        free(ids);
    }
    return 0;
}
