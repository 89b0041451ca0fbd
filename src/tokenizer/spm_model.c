/*
 * spm_model.c - reads a SentencePiece .model file (a serialized ModelProto)
 * with a small protobuf decoder of our own, so libgrok needs no protobuf
 * library. Only what encoding and decoding depend on is kept: the pieces
 * (text, score, type), the trainer options (model type, byte fallback,
 * whitespace-as-suffix, split_digits, the special pieces, the unknown
 * surface) and the normalizer options. Anything we cannot reproduce
 * exactly - another model type, a normalization character map - is
 * rejected with a message rather than silently encoded differently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t base; /* file offset of p[0], for messages */
    size_t pos;
} pb_reader;

typedef struct {
    uint32_t field;
    uint32_t wire;
    uint64_t v;    /* varint / fixed value */
    pb_reader sub; /* length-delimited payload */
    size_t offset; /* file offset of the key */
} pb_field;

/* Reads one varint; -1 when it runs past the end or over 10 bytes. */
static int pb_varint(pb_reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->pos >= r->len) return -1;
        uint8_t b = r->p[r->pos++];
        if (shift == 63 && b > 1) return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Next field of r. Returns 1 with a field, 0 at the end, -1 on malformed
 * input (err written). */
static int pb_next(pb_reader *r, pb_field *f, const char *path, const char *msg, char *err, size_t err_size) {
    if (r->pos >= r->len) return 0;
    f->offset = r->base + r->pos;
    uint64_t key;
    if (pb_varint(r, &key) < 0) {
        snprintf(err, err_size, "%s: %s: truncated field key at byte %zu", path, msg, f->offset);
        return -1;
    }
    f->field = (uint32_t)(key >> 3);
    f->wire = (uint32_t)(key & 7);
    if (key >> 3 == 0 || key >> 3 > 536870911u) {
        snprintf(err, err_size, "%s: %s: invalid field number %llu at byte %zu", path, msg,
                 (unsigned long long)(key >> 3), f->offset);
        return -1;
    }
    switch (f->wire) {
    case 0:
        if (pb_varint(r, &f->v) < 0) {
            snprintf(err, err_size, "%s: %s: field %u: truncated varint at byte %zu", path, msg, f->field,
                     f->offset);
            return -1;
        }
        return 1;
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if (r->len - r->pos < n) {
            snprintf(err, err_size, "%s: %s: field %u: fixed value runs past the end at byte %zu", path, msg,
                     f->field, f->offset);
            return -1;
        }
        f->v = 0;
        for (size_t k = 0; k < n; k++) f->v |= (uint64_t)r->p[r->pos + k] << (8 * k);
        r->pos += n;
        return 1;
    }
    case 2: {
        uint64_t n;
        if (pb_varint(r, &n) < 0) {
            snprintf(err, err_size, "%s: %s: field %u: truncated length at byte %zu", path, msg, f->field,
                     f->offset);
            return -1;
        }
        if (n > r->len - r->pos) {
            snprintf(err, err_size,
                     "%s: %s: field %u: length %llu runs past the end (%zu bytes left) at byte %zu", path,
                     msg, f->field, (unsigned long long)n, r->len - r->pos, f->offset);
            return -1;
        }
        f->sub = (pb_reader){r->p + r->pos, (size_t)n, r->base + r->pos, 0};
        r->pos += (size_t)n;
        return 1;
    }
    default:
        snprintf(err, err_size, "%s: %s: field %u: unsupported wire type %u at byte %zu", path, msg, f->field,
                 f->wire, f->offset);
        return -1;
    }
}

/* Checks the wire type a known field must have. */
static int pb_expect(const pb_field *f, uint32_t wire, const char *path, const char *what, char *err,
                     size_t err_size) {
    if (f->wire == wire) return 0;
    snprintf(err, err_size, "%s: %s has wire type %u, expected %u, at byte %zu", path, what, f->wire, wire,
             f->offset);
    return -1;
}

typedef struct {
    int64_t model_type;
    bool byte_fallback, split_digits, treat_ws_suffix;
    pb_reader unk_surface, bos_piece, eos_piece, pad_piece;
    bool has_unk_surface;
    pb_reader norm_name;
    bool add_dummy_prefix, remove_extra_ws, escape_ws;
    size_t charsmap_len, denorm_charsmap_len;
    size_t charsmap_offset;
} spm_options;

static int read_trainer(pb_reader r, spm_options *o, const char *path, char *err, size_t err_size) {
    pb_field f;
    int rc;
    while ((rc = pb_next(&r, &f, path, "trainer_spec", err, err_size)) == 1) {
        const char *name = NULL;
        pb_reader *str = NULL;
        switch (f.field) {
        case 3: name = "trainer_spec.model_type"; break;
        case 24: name = "trainer_spec.treat_whitespace_as_suffix"; break;
        case 25: name = "trainer_spec.split_digits"; break;
        case 35: name = "trainer_spec.byte_fallback"; break;
        case 44:
            name = "trainer_spec.unk_surface";
            str = &o->unk_surface;
            break;
        case 46:
            name = "trainer_spec.bos_piece";
            str = &o->bos_piece;
            break;
        case 47:
            name = "trainer_spec.eos_piece";
            str = &o->eos_piece;
            break;
        case 48:
            name = "trainer_spec.pad_piece";
            str = &o->pad_piece;
            break;
        default: continue;
        }
        if (pb_expect(&f, str ? 2 : 0, path, name, err, err_size) < 0) return -1;
        if (str) {
            *str = f.sub;
            if (f.field == 44) o->has_unk_surface = true;
            continue;
        }
        if (f.field == 3) o->model_type = (int64_t)f.v;
        if (f.field == 24) o->treat_ws_suffix = f.v != 0;
        if (f.field == 25) o->split_digits = f.v != 0;
        if (f.field == 35) o->byte_fallback = f.v != 0;
    }
    return rc;
}

static int read_normalizer(pb_reader r, spm_options *o, bool denorm, const char *path, char *err,
                           size_t err_size) {
    const char *msg = denorm ? "denormalizer_spec" : "normalizer_spec";
    pb_field f;
    int rc;
    while ((rc = pb_next(&r, &f, path, msg, err, err_size)) == 1) {
        if (f.field == 1 || f.field == 2) {
            if (pb_expect(&f, 2, path,
                          f.field == 1 ? "normalizer_spec.name" : "normalizer_spec.precompiled_charsmap", err,
                          err_size) < 0)
                return -1;
            if (denorm) {
                if (f.field == 2) o->denorm_charsmap_len = f.sub.len;
            } else if (f.field == 1) {
                o->norm_name = f.sub;
            } else {
                o->charsmap_len = f.sub.len;
                o->charsmap_offset = f.offset;
            }
        } else if (f.field >= 3 && f.field <= 5 && !denorm) {
            if (pb_expect(&f, 0, path, "normalizer_spec flag", err, err_size) < 0) return -1;
            if (f.field == 3) o->add_dummy_prefix = f.v != 0;
            if (f.field == 4) o->remove_extra_ws = f.v != 0;
            if (f.field == 5) o->escape_ws = f.v != 0;
        }
    }
    return rc;
}

/* First pass over one SentencePiece message: text, score, type. */
static int read_piece(pb_reader r, pb_reader *text, float *score, int32_t *type, const char *path, char *err,
                      size_t err_size) {
    pb_field f;
    int rc;
    bool has_text = false;
    *score = 0.0f;
    *type = GROK_TOKEN_NORMAL;
    while ((rc = pb_next(&r, &f, path, "piece", err, err_size)) == 1) {
        if (f.field == 1) {
            if (pb_expect(&f, 2, path, "piece.piece", err, err_size) < 0) return -1;
            *text = f.sub;
            has_text = true;
        } else if (f.field == 2) {
            if (pb_expect(&f, 5, path, "piece.score", err, err_size) < 0) return -1;
            uint32_t bits = (uint32_t)f.v;
            memcpy(score, &bits, sizeof bits);
        } else if (f.field == 3) {
            if (pb_expect(&f, 0, path, "piece.type", err, err_size) < 0) return -1;
            if (f.v < GROK_TOKEN_NORMAL || f.v > GROK_TOKEN_BYTE) {
                snprintf(err, err_size, "%s: piece.type %llu is not a known type at byte %zu", path,
                         (unsigned long long)f.v, f.offset);
                return -1;
            }
            *type = (int32_t)f.v;
        }
    }
    if (rc == 0 && !has_text) {
        snprintf(err, err_size, "%s: piece message at byte %zu has no text", path, r.base);
        return -1;
    }
    return rc;
}

static int32_t special_id(const grok_tokenizer *t, pb_reader piece, const char *dflt) {
    const char *s = piece.p ? (const char *)piece.p : dflt;
    size_t len = piece.p ? piece.len : strlen(dflt);
    int32_t id = grok_tok_piece_to_id(t, s, len);
    return id >= 0 && t->type[id] == GROK_TOKEN_CONTROL ? id : -1;
}

static grok_tokenizer *parse_model(const uint8_t *data, size_t size, const char *path, char *err,
                                   size_t err_size) {
    spm_options o = {.model_type = 1, .add_dummy_prefix = true, .remove_extra_ws = true, .escape_ws = true};
    pb_reader r = {data, size, 0, 0};
    pb_field f;
    int rc;
    int64_t n_pieces = 0;
    /* Pass 1: count pieces, read the specs. */
    while ((rc = pb_next(&r, &f, path, "ModelProto", err, err_size)) == 1) {
        if (f.field == 1) {
            if (pb_expect(&f, 2, path, "ModelProto.pieces", err, err_size) < 0) return NULL;
            n_pieces++;
        } else if (f.field == 2) {
            if (pb_expect(&f, 2, path, "ModelProto.trainer_spec", err, err_size) < 0 ||
                read_trainer(f.sub, &o, path, err, err_size) < 0)
                return NULL;
        } else if (f.field == 3 || f.field == 5) {
            if (pb_expect(&f, 2, path, "ModelProto.normalizer_spec", err, err_size) < 0 ||
                read_normalizer(f.sub, &o, f.field == 5, path, err, err_size) < 0)
                return NULL;
        }
    }
    if (rc < 0) return NULL;
    if (n_pieces == 0) {
        snprintf(err, err_size, "%s: no pieces (not a SentencePiece model?)", path);
        return NULL;
    }
    if (o.model_type != 2) {
        snprintf(err, err_size, "%s: trainer_spec.model_type is %lld; only BPE (2) is supported", path,
                 (long long)o.model_type);
        return NULL;
    }
    if (o.charsmap_len > 0) {
        snprintf(err, err_size,
                 "%s: normalizer '%.*s' has a character map (byte %zu); only the identity "
                 "normalizer is supported",
                 path, (int)(o.norm_name.len > 64 ? 64 : o.norm_name.len),
                 o.norm_name.p ? (const char *)o.norm_name.p : "", o.charsmap_offset);
        return NULL;
    }
    if (o.denorm_charsmap_len > 0) {
        snprintf(err, err_size, "%s: denormalizer_spec has a character map; not supported", path);
        return NULL;
    }
    grok_tokenizer *t = grok_tok_alloc(n_pieces);
    if (!t) {
        snprintf(err, err_size, "%s: out of memory for %lld pieces", path, (long long)n_pieces);
        return NULL;
    }
    /* Pass 2: the pieces. */
    r.pos = 0;
    int64_t i = 0;
    while ((rc = pb_next(&r, &f, path, "ModelProto", err, err_size)) == 1) {
        if (f.field != 1) continue;
        pb_reader text = {0};
        float score;
        int32_t type;
        if (read_piece(f.sub, &text, &score, &type, path, err, err_size) < 0) goto fail;
        if (type == GROK_TOKEN_BYTE && !o.byte_fallback) {
            snprintf(err, err_size,
                     "%s: byte piece %lld at byte %zu although trainer_spec.byte_fallback is off", path,
                     (long long)i, f.offset);
            goto fail;
        }
        if (grok_tok_set_piece(t, i, (const char *)text.p, text.len, score, type) < 0) {
            snprintf(err, err_size, "%s: out of memory", path);
            goto fail;
        }
        i++;
    }
    t->add_dummy_prefix = o.add_dummy_prefix;
    t->remove_extra_whitespaces = o.remove_extra_ws;
    t->escape_whitespaces = o.escape_ws;
    t->treat_whitespace_as_suffix = o.treat_ws_suffix;
    t->byte_fallback = o.byte_fallback;
    t->split_digits = o.split_digits;
    if (o.has_unk_surface &&
        grok_tok_set_unk_surface(t, (const char *)o.unk_surface.p, o.unk_surface.len) < 0) {
        snprintf(err, err_size, "%s: out of memory", path);
        goto fail;
    }
    if (grok_tok_finish(t, path, err, err_size) < 0) goto fail;
    /* SentencePiece finds the special ids by their piece text. */
    t->bos = special_id(t, o.bos_piece, "<s>");
    t->eos = special_id(t, o.eos_piece, "</s>");
    t->pad = special_id(t, o.pad_piece, "<pad>");
    t->add_bos = false; /* SentencePiece's own encode adds nothing */
    t->add_eos = false;
    return t;
fail:
    grok_tokenizer_free(t);
    return NULL;
}

grok_tokenizer *grok_tokenizer_load_spm(const char *path, char *err, size_t err_size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            size_t nc = cap ? cap * 2 : (1u << 20);
            uint8_t *nd = realloc(data, nc);
            if (!nd) {
                snprintf(err, err_size, "%s: out of memory reading the file", path);
                free(data);
                fclose(fp);
                return NULL;
            }
            data = nd;
            cap = nc;
        }
        size_t got = fread(data + size, 1, cap - size, fp);
        size += got;
        if (got == 0) break;
    }
    bool bad = ferror(fp) != 0;
    fclose(fp);
    if (bad) {
        snprintf(err, err_size, "%s: read error at byte %zu", path, size);
        free(data);
        return NULL;
    }
    grok_tokenizer *t = parse_model(data, size, path, err, err_size);
    free(data);
    return t;
}

grok_tokenizer *grok_tok_load_spm_bytes(const void *data, size_t size, const char *name, char *err,
                                        size_t err_size) {
    return parse_model(data, size, name, err, err_size);
}
