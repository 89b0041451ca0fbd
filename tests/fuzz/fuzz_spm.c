/*
 * fuzz_spm.c - the SentencePiece .model reader (src/tokenizer/spm_model.c,
 * a protobuf decoder of our own). A rejected image must come with a
 * message; an accepted one must give a tokenizer that encodes and decodes
 * any text safely (the input's own bytes and a fixed mixed text).
 */
#include "fuzz.h"
#include "grok.h"
#include "tok_check.h"
#include "tokenizer/tokenizer_internal.h"

/* Encodes text, checks the ids, decodes them both ways. */
static void fuzz_encode_decode(const grok_tokenizer *t, const char *text, size_t len) {
    size_t n = 0, dlen = 0;
    int32_t *ids = grok_tokenize(t, text, len, false, &n);
    FUZZ_CHECK(ids != NULL, "tokenize failed");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < grok_tokenizer_n_vocab(t), "id %d out of range", ids[i]);
    free(fuzz_decode_both(t, ids, n, &dlen));
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[GROK_ERR_SIZE] = "";
    grok_tokenizer *t = grok_tok_load_spm_bytes(data, size, "fuzz.model", err, sizeof err);
    if (!t) {
        fuzz_note("rejected", err);
        FUZZ_CHECK(err[0], "rejected without a message");
        return 0;
    }
    static const char mixed[] =
        "Hello  world\n\n\t 12345 <|mask|> \xe2\x96\x81x \xf0\x9f\x98\x80 \xff\xe2\x82";
    fuzz_encode_decode(t, mixed, sizeof mixed - 1);
    fuzz_encode_decode(t, (const char *)data, size < 512 ? size : 512);
    grok_tokenizer_free(t);
    return 0;
}
