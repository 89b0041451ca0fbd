/*
 * tok_gguf.c - the tokenizer in GGUF files, with llama.cpp's key names
 * (tokenizer.ggml.model = "llama": tokens, scores, token_type, the special
 * ids and add_bos/add_eos). llama.cpp's keys do not carry SentencePiece's
 * normalizer options, so for "llama" we assume what llama.cpp assumes
 * (dummy prefix on, extra whitespace kept, byte fallback when all 256 byte
 * pieces exist) and also write and read a few optional keys of our own so
 * that a converted .model decodes exactly as the original.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_BOS "tokenizer.ggml.bos_token_id"
#define KEY_EOS "tokenizer.ggml.eos_token_id"
#define KEY_UNK "tokenizer.ggml.unknown_token_id"
#define KEY_PAD "tokenizer.ggml.padding_token_id"
#define KEY_ADD_BOS "tokenizer.ggml.add_bos_token"
#define KEY_ADD_EOS "tokenizer.ggml.add_eos_token"
#define KEY_SPACE_PREFIX "tokenizer.ggml.add_space_prefix"
#define KEY_REMOVE_WS "tokenizer.ggml.remove_extra_whitespaces"
/* Our own: the text an unknown id decodes to (Grok-1's is "[UNK]"), and
 * SentencePiece's whitespace-as-suffix option. */
#define KEY_UNK_SURFACE "tokenizer.ggml.unknown_surface"
#define KEY_WS_SUFFIX "tokenizer.ggml.treat_whitespace_as_suffix"

static int get_flag(const grok_gguf_file *f, const char *key, bool dflt, bool *out, char *err,
                    size_t err_size) {
    int rc = grok_gguf_get_bool(f, key, out);
    if (rc == -1) {
        *out = dflt;
        return 0;
    }
    if (rc < 0) {
        snprintf(err, err_size, "%s: %s is not a bool", grok_gguf_path(f), key);
        return -1;
    }
    return 0;
}

static int get_id(const grok_gguf_file *f, const char *key, int64_t n, int32_t *out, char *err,
                  size_t err_size) {
    int64_t v;
    int rc = grok_gguf_get_i64(f, key, &v);
    if (rc == -1) {
        *out = -1;
        return 0;
    }
    if (rc < 0 || v < -1 || v >= n) {
        snprintf(err, err_size, "%s: %s is not an id in [0, %lld)", grok_gguf_path(f), key, (long long)n);
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

grok_tokenizer *grok_tokenizer_from_gguf(const grok_gguf_file *f, char *err, size_t err_size) {
    const char *path = grok_gguf_path(f);
    const char *model;
    size_t model_len;
    int rc = grok_gguf_get_str(f, KEY_MODEL, &model, &model_len);
    if (rc == -1) {
        snprintf(err, err_size, "%s: no %s key (the file has no tokenizer)", path, KEY_MODEL);
        return NULL;
    }
    if (rc < 0 || model_len != 5 || memcmp(model, "llama", 5) != 0) {
        snprintf(err, err_size, "%s: %s is '%.*s'; only 'llama' (SentencePiece) is supported", path,
                 KEY_MODEL, rc < 0 ? 0 : (int)(model_len > 32 ? 32 : model_len), rc < 0 ? "" : model);
        return NULL;
    }
    grok_gguf_value_type et;
    uint64_t n;
    if (grok_gguf_get_arr(f, KEY_TOKENS, &et, &n) != 0 || et != GROK_GGUF_TYPE_STRING) {
        snprintf(err, err_size, "%s: %s is missing or not a string array", path, KEY_TOKENS);
        return NULL;
    }
    if (n == 0 || n > INT32_MAX) {
        snprintf(err, err_size, "%s: %s has %llu tokens", path, KEY_TOKENS, (unsigned long long)n);
        return NULL;
    }
    const float *scores = NULL;
    const int32_t *types = NULL;
    uint64_t m;
    rc = grok_gguf_get_arr(f, KEY_SCORES, &et, &m);
    if (rc == 0) {
        if (et != GROK_GGUF_TYPE_FLOAT32 || m != n) {
            snprintf(err, err_size, "%s: %s must be %llu float32 values", path, KEY_SCORES,
                     (unsigned long long)n);
            return NULL;
        }
        scores = grok_gguf_get_arr_data(f, KEY_SCORES);
    } else if (rc != -1) {
        snprintf(err, err_size, "%s: %s is not an array", path, KEY_SCORES);
        return NULL;
    }
    rc = grok_gguf_get_arr(f, KEY_TYPES, &et, &m);
    if (rc == 0) {
        if ((et != GROK_GGUF_TYPE_INT32 && et != GROK_GGUF_TYPE_UINT32) || m != n) {
            snprintf(err, err_size, "%s: %s must be %llu int32 values", path, KEY_TYPES,
                     (unsigned long long)n);
            return NULL;
        }
        types = grok_gguf_get_arr_data(f, KEY_TYPES);
    } else if (rc != -1) {
        snprintf(err, err_size, "%s: %s is not an array", path, KEY_TYPES);
        return NULL;
    }
    grok_tokenizer *t = grok_tok_alloc((int64_t)n);
    if (!t) {
        snprintf(err, err_size, "%s: out of memory for %llu tokens", path, (unsigned long long)n);
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = grok_gguf_get_arr_str(f, KEY_TOKENS, i, &len);
        int32_t ty = types ? types[i] : GROK_TOKEN_NORMAL;
        if (ty == 0) ty = GROK_TOKEN_NORMAL; /* llama.cpp's "undefined" */
        if (!s || ty < GROK_TOKEN_NORMAL || ty > GROK_TOKEN_BYTE) {
            snprintf(err, err_size, "%s: token %llu: %s", path, (unsigned long long)i,
                     s ? "token_type is not 1..6" : "unreadable token string");
            goto fail;
        }
        if (grok_tok_set_piece(t, (int64_t)i, s, len, scores ? scores[i] : 0.0f, ty) < 0) {
            snprintf(err, err_size, "%s: out of memory", path);
            goto fail;
        }
    }
    int32_t unk;
    if (get_id(f, KEY_BOS, t->n, &t->bos, err, err_size) < 0 ||
        get_id(f, KEY_EOS, t->n, &t->eos, err, err_size) < 0 ||
        get_id(f, KEY_PAD, t->n, &t->pad, err, err_size) < 0 ||
        get_id(f, KEY_UNK, t->n, &unk, err, err_size) < 0)
        goto fail;
    /* Files without type information still name their unknown piece. */
    if (unk >= 0 && t->type[unk] == GROK_TOKEN_NORMAL) t->type[unk] = GROK_TOKEN_UNKNOWN;
    t->unk = unk;
    bool suffix;
    if (get_flag(f, KEY_ADD_BOS, false, &t->add_bos, err, err_size) < 0 ||
        get_flag(f, KEY_ADD_EOS, false, &t->add_eos, err, err_size) < 0 ||
        get_flag(f, KEY_SPACE_PREFIX, true, &t->add_dummy_prefix, err, err_size) < 0 ||
        get_flag(f, KEY_REMOVE_WS, false, &t->remove_extra_whitespaces, err, err_size) < 0 ||
        get_flag(f, KEY_WS_SUFFIX, false, &suffix, err, err_size) < 0)
        goto fail;
    t->treat_whitespace_as_suffix = suffix;
    const char *surface;
    size_t surface_len;
    rc = grok_gguf_get_str(f, KEY_UNK_SURFACE, &surface, &surface_len);
    if (rc == 0 && grok_tok_set_unk_surface(t, surface, surface_len) < 0) {
        snprintf(err, err_size, "%s: out of memory", path);
        goto fail;
    }
    if (rc < -1) {
        snprintf(err, err_size, "%s: %s is not a string", path, KEY_UNK_SURFACE);
        goto fail;
    }
    /* Byte fallback exactly when the vocabulary has every byte piece;
     * split_digits is informational: on when the digits are user-defined
     * pieces (which is what keeps them apart when encoding). */
    int nb = 0;
    for (uint64_t i = 0; i < n; i++) nb += t->type[i] == GROK_TOKEN_BYTE;
    t->byte_fallback = nb >= 256;
    if (grok_tok_finish(t, path, err, err_size) < 0) goto fail;
    int32_t seven = grok_tok_piece_to_id(t, "7", 1);
    t->split_digits = seven >= 0 && t->type[seven] == GROK_TOKEN_USER_DEFINED;
    int nbytes = 0;
    for (int b = 0; b < 256; b++) nbytes += t->byte_id[b] >= 0;
    if (nbytes < 256) t->byte_fallback = false;
    return t;
fail:
    grok_tokenizer_free(t);
    return NULL;
}

int grok_tokenizer_to_gguf(const grok_tokenizer *t, grok_gguf_writer *w) {
    size_t un = (size_t)t->n;
    const char **strs = malloc(un * sizeof *strs);
    int32_t *types = malloc(un * sizeof *types);
    if (!strs || !types) {
        free(strs);
        free(types);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < un; i++) {
        strs[i] = t->piece[i];
        types[i] = t->type[i];
        if (strlen(t->piece[i]) != t->len[i]) rc = -1; /* a NUL inside cannot be written */
    }
    if (rc == 0) {
        rc |= grok_gguf_writer_set_str(w, KEY_MODEL, "llama");
        rc |= grok_gguf_writer_set_arr_str(w, KEY_TOKENS, strs, (uint64_t)un);
        rc |= grok_gguf_writer_set_arr(w, KEY_SCORES, GROK_GGUF_TYPE_FLOAT32, t->score, (uint64_t)un);
        rc |= grok_gguf_writer_set_arr(w, KEY_TYPES, GROK_GGUF_TYPE_INT32, types, (uint64_t)un);
        if (t->bos >= 0) rc |= grok_gguf_writer_set_u32(w, KEY_BOS, (uint32_t)t->bos);
        if (t->eos >= 0) rc |= grok_gguf_writer_set_u32(w, KEY_EOS, (uint32_t)t->eos);
        if (t->unk >= 0) rc |= grok_gguf_writer_set_u32(w, KEY_UNK, (uint32_t)t->unk);
        if (t->pad >= 0) rc |= grok_gguf_writer_set_u32(w, KEY_PAD, (uint32_t)t->pad);
        rc |= grok_gguf_writer_set_bool(w, KEY_ADD_BOS, t->add_bos);
        rc |= grok_gguf_writer_set_bool(w, KEY_ADD_EOS, t->add_eos);
        rc |= grok_gguf_writer_set_bool(w, KEY_SPACE_PREFIX, t->add_dummy_prefix);
        rc |= grok_gguf_writer_set_bool(w, KEY_REMOVE_WS, t->remove_extra_whitespaces);
        if (t->treat_whitespace_as_suffix) rc |= grok_gguf_writer_set_bool(w, KEY_WS_SUFFIX, true);
        rc |= grok_gguf_writer_set_str(w, KEY_UNK_SURFACE, t->unk_surface);
    }
    free(strs);
    free(types);
    return rc != 0 ? -1 : 0;
}
