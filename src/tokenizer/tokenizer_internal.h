/*
 * tokenizer_internal.h - the tokenizer's private layout, shared by the three
 * places that fill it (the .model reader, the GGUF reader, the placeholder
 * vocabulary) and the encoder/decoder. A tokenizer is built in two steps:
 * grok_tok_alloc() reserves n pieces, the loader sets pieces and options, then
 * grok_tok_finish() checks the vocabulary the way SentencePiece does when it
 * loads a model and builds the lookup tables.
 */
#ifndef GROK_TOKENIZER_INTERNAL_H
#define GROK_TOKENIZER_INTERNAL_H

#include "grok.h"

struct grok_tokenizer {
    int64_t n;     /* pieces */
    char **piece;  /* [n] NUL-terminated copies */
    uint32_t *len; /* [n] byte lengths (pieces may not contain NUL in practice) */
    float *score;  /* [n] */
    int32_t *type; /* [n] GROK_TOKEN_* */

    /* Two hash tables of piece ids, as SentencePiece keeps them: "normal"
     * holds NORMAL, USER_DEFINED and UNUSED pieces (the ones BPE may merge
     * into), "reserved" holds CONTROL, UNKNOWN and BYTE pieces. */
    struct tok_slot {
        int32_t id;
        uint32_t tag;
    } * h_normal, *h_reserved;
    uint64_t h_mask; /* both tables have h_mask + 1 slots; tag: high hash bits */

    int32_t byte_id[256]; /* id of <0xNN>, -1 when absent */
    /* User-defined pieces grouped by first byte, longest first within a
     * group, for longest-prefix matching. */
    int32_t *ud;
    int64_t ud_start[257];

    int32_t unk, bos, eos, pad;
    bool add_bos, add_eos;
    bool add_dummy_prefix;
    bool remove_extra_whitespaces;
    bool escape_whitespaces;
    bool treat_whitespace_as_suffix;
    bool byte_fallback;
    bool split_digits;   /* a trainer option; encoding does not depend on it */
    char *unk_surface;   /* what an <unk> id decodes to */
    bool has_unused;     /* some piece is UNUSED: no chunked encoding */
    bool space_cut_safe; /* no piece has U+2581 right after another character */
};

grok_tokenizer *grok_tok_alloc(int64_t n);
/* Copies the piece; returns -1 when out of memory. */
int grok_tok_set_piece(grok_tokenizer *t, int64_t i, const char *s, size_t len, float score, int32_t type);
int grok_tok_set_unk_surface(grok_tokenizer *t, const char *s, size_t len);
/* Validates and indexes. what names the source in error messages. On error
 * writes err and returns -1 (the caller frees t). */
int grok_tok_finish(grok_tokenizer *t, const char *what, char *err, size_t err_size);

/* Id of a piece looked up as SentencePiece's PieceToId does (reserved
 * table first, then normal), or -1 when absent. */
int32_t grok_tok_piece_to_id(const grok_tokenizer *t, const char *s, size_t len);

/* Parses a .model image held in memory (the fuzz tests use it). */
grok_tokenizer *grok_tok_load_spm_bytes(const void *data, size_t size, const char *name, char *err,
                                        size_t err_size);

#endif
