/*
 * gguf.c - the GGUF reader: opens a GGUF v2/v3 file (or all splits of a
 * gguf-split set) memory-mapped and zero-copy, validating every field of
 * the header, key/value section and tensor infos before anything is
 * trusted. Tensor data is never read here, so opening costs O(header) no
 * matter how large the file is. Every error names the file, the field and
 * the byte offset, because these files come from outside and a bad one must
 * be diagnosable without a hex editor.
 *
 * Parsing goes through a bounded cursor (need() before every read), counts
 * are checked against the bytes left before anything is allocated, so a
 * hostile header cannot make us allocate more than a small multiple of the
 * file size. Keys, strings and arrays are copied out of the map (they are
 * small next to the tensor data and owning them keeps the getters simple);
 * tensor data pointers point into the map.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gguf/gguf_internal.h"

/* Smallest encodings, used to reject counts that cannot fit in the bytes
 * left: a kv is key length (8) + a 1-byte key + type (4) + a 1-byte value;
 * a tensor info is name length (8) + n_dims (4) + one dim (8) + type (4) +
 * offset (8) (names may not be empty, but the bound needs no precision). */
#define MIN_KV_BYTES 14
#define MIN_TENSOR_INFO_BYTES 32

/* ---------------------------------------------------------------------
 * Name -> index hash map (open addressing), for duplicate detection and
 * lookups in O(1): a hostile file with a million tensors must not make
 * duplicate detection quadratic.
 * --------------------------------------------------------------------- */
typedef struct {
    const char *name; /* NULL: empty slot */
    size_t len;
    int64_t idx;
} map_slot;

typedef struct {
    map_slot *slots;
    size_t cap; /* power of two */
    size_t n;
} name_map;

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int64_t map_find(const name_map *m, const char *name, size_t len) {
    if (m->cap == 0) return -1;
    size_t i = (size_t)hash_bytes(name, len) & (m->cap - 1);
    while (m->slots[i].name) {
        if (m->slots[i].len == len && memcmp(m->slots[i].name, name, len) == 0) return m->slots[i].idx;
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

static void map_put(map_slot *slots, size_t cap, map_slot s) {
    size_t i = (size_t)hash_bytes(s.name, s.len) & (cap - 1);
    while (slots[i].name) i = (i + 1) & (cap - 1);
    slots[i] = s;
}

/* Makes room for n more entries. */
static int map_reserve(name_map *m, size_t more) {
    size_t want = m->n + more;
    if (want < 4) want = 4;
    if (want * 2 <= m->cap) return 0;
    size_t cap = 8;
    while (cap < want * 2) cap *= 2;
    map_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].name) map_put(slots, cap, m->slots[i]);
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* The caller has reserved room and checked the name is absent. */
static void map_insert(name_map *m, const char *name, size_t len, int64_t idx) {
    map_put(m->slots, m->cap, (map_slot){name, len, idx});
    m->n++;
}

/* ---------------------------------------------------------------------
 * kv values
 * --------------------------------------------------------------------- */
size_t grok_gguf_scalar_size(grok_gguf_value_type t) {
    switch (t) {
    case GROK_GGUF_TYPE_UINT8:
    case GROK_GGUF_TYPE_INT8:
    case GROK_GGUF_TYPE_BOOL: return 1;
    case GROK_GGUF_TYPE_UINT16:
    case GROK_GGUF_TYPE_INT16: return 2;
    case GROK_GGUF_TYPE_UINT32:
    case GROK_GGUF_TYPE_INT32:
    case GROK_GGUF_TYPE_FLOAT32: return 4;
    case GROK_GGUF_TYPE_UINT64:
    case GROK_GGUF_TYPE_INT64:
    case GROK_GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

const char *grok_gguf_value_type_name(grok_gguf_value_type t) {
    static const char *const NAMES[GROK_GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64",
    };
    return (unsigned)t < GROK_GGUF_TYPE_COUNT ? NAMES[t] : "unknown";
}

void grok_gguf_kv_clear(grok_gguf_kv *kv) {
    free(kv->key);
    free(kv->str);
    free(kv->arr_data);
    free(kv->arr_strs);
    free(kv->arr_blob);
    memset(kv, 0, sizeof *kv);
}

/* Numeric arrays are cast by callers to the element type, so they get a
 * generous alignment; never zero bytes, so NULL means failure. */
static void *alloc_aligned(size_t bytes) {
    size_t n = (bytes + 63) / 64 * 64;
    if (n == 0) n = 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    memset((char *)p + bytes, 0, n - bytes);
    return p;
}

/* Room for a string array: a (ptr, len) table of n entries and one blob
 * of total_bytes holding the NUL-terminated copies. */
static int build_str_array(grok_gguf_kv *kv, uint64_t n, size_t total_bytes) {
    kv->arr_strs = malloc(n ? n * sizeof *kv->arr_strs : 1);
    kv->arr_blob = malloc(total_bytes ? total_bytes : 1);
    return kv->arr_strs && kv->arr_blob ? 0 : -1;
}

int grok_gguf_kv_copy(grok_gguf_kv *dst, const grok_gguf_kv *src) {
    memset(dst, 0, sizeof *dst);
    dst->type = src->type;
    dst->offset = src->offset;
    dst->v = src->v;
    dst->key = malloc(src->key_len + 1);
    if (!dst->key) goto oom;
    memcpy(dst->key, src->key, src->key_len + 1);
    dst->key_len = src->key_len;
    if (src->type == GROK_GGUF_TYPE_STRING) {
        dst->str = malloc(src->str_len + 1);
        if (!dst->str) goto oom;
        memcpy(dst->str, src->str, src->str_len + 1);
        dst->str_len = src->str_len;
    } else if (src->type == GROK_GGUF_TYPE_ARRAY) {
        dst->arr_type = src->arr_type;
        dst->arr_n = src->arr_n;
        if (src->arr_type == GROK_GGUF_TYPE_STRING) {
            size_t total = 0;
            for (uint64_t i = 0; i < src->arr_n; i++) total += src->arr_strs[i].len + 1;
            if (build_str_array(dst, src->arr_n, total) != 0) goto oom;
            size_t at = 0;
            for (uint64_t i = 0; i < src->arr_n; i++) {
                memcpy(dst->arr_blob + at, src->arr_strs[i].p, src->arr_strs[i].len + 1);
                dst->arr_strs[i] = (grok_gguf_str){dst->arr_blob + at, src->arr_strs[i].len};
                at += src->arr_strs[i].len + 1;
            }
        } else {
            size_t bytes = (size_t)src->arr_n * grok_gguf_scalar_size(src->arr_type);
            dst->arr_data = alloc_aligned(bytes);
            if (!dst->arr_data) goto oom;
            if (bytes) memcpy(dst->arr_data, src->arr_data, bytes);
        }
    }
    return 0;
oom:
    grok_gguf_kv_clear(dst);
    return -1;
}

/* Numeric coercions: a value converts when the target type holds it
 * exactly, so a u32 key read as i64 works but 3.5 read as an integer or
 * 2^60+1 read as a double does not silently change. */
static int kv_as_i64(const grok_gguf_kv *kv, int64_t *out) {
    double d;
    switch (kv->type) {
    case GROK_GGUF_TYPE_UINT8: *out = kv->v.u8; return 0;
    case GROK_GGUF_TYPE_INT8: *out = kv->v.i8; return 0;
    case GROK_GGUF_TYPE_UINT16: *out = kv->v.u16; return 0;
    case GROK_GGUF_TYPE_INT16: *out = kv->v.i16; return 0;
    case GROK_GGUF_TYPE_UINT32: *out = kv->v.u32; return 0;
    case GROK_GGUF_TYPE_INT32: *out = kv->v.i32; return 0;
    case GROK_GGUF_TYPE_INT64: *out = kv->v.i64; return 0;
    case GROK_GGUF_TYPE_UINT64:
        if (kv->v.u64 > (uint64_t)INT64_MAX) return -2;
        *out = (int64_t)kv->v.u64;
        return 0;
    case GROK_GGUF_TYPE_FLOAT32: d = kv->v.f32; break;
    case GROK_GGUF_TYPE_FLOAT64: d = kv->v.f64; break;
    default: return -2;
    }
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return -2;
    int64_t i = (int64_t)d;
    if ((double)i != d) return -2;
    *out = i;
    return 0;
}

static int kv_as_u64(const grok_gguf_kv *kv, uint64_t *out) {
    if (kv->type == GROK_GGUF_TYPE_UINT64) {
        *out = kv->v.u64;
        return 0;
    }
    double d;
    if (kv->type == GROK_GGUF_TYPE_FLOAT32 || kv->type == GROK_GGUF_TYPE_FLOAT64) {
        d = kv->type == GROK_GGUF_TYPE_FLOAT32 ? kv->v.f32 : kv->v.f64;
        if (!(d >= 0.0 && d < 18446744073709551616.0)) return -2;
        uint64_t u = (uint64_t)d;
        if ((double)u != d) return -2;
        *out = u;
        return 0;
    }
    int64_t i;
    if (kv_as_i64(kv, &i) != 0 || i < 0) return -2;
    *out = (uint64_t)i;
    return 0;
}

static int kv_as_f64(const grok_gguf_kv *kv, double *out) {
    int64_t i;
    switch (kv->type) {
    case GROK_GGUF_TYPE_FLOAT32: *out = kv->v.f32; return 0;
    case GROK_GGUF_TYPE_FLOAT64: *out = kv->v.f64; return 0;
    case GROK_GGUF_TYPE_UINT64: {
        double d = (double)kv->v.u64;
        if (d >= 18446744073709551616.0 || (uint64_t)d != kv->v.u64) return -2;
        *out = d;
        return 0;
    }
    default:
        if (kv_as_i64(kv, &i) != 0) return -2;
        double d = (double)i;
        if (d >= 9223372036854775808.0 || (int64_t)d != i) return -2;
        *out = d;
        return 0;
    }
}

/* ---------------------------------------------------------------------
 * The opened file
 * --------------------------------------------------------------------- */
typedef struct {
    char *path;
    const uint8_t *map; /* NULL for an empty file */
    uint64_t size;
    uint64_t avail;           /* bytes readable at map: size, or the first of unjoined pieces */
    grok_gguf_pieces *pieces; /* raw pieces read as this file, or NULL */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_start;
    grok_gguf_kv *kvs;
    int64_t n_kv;
    name_map kv_map;
    char (*names)[GROK_GGUF_MAX_NAME + 1]; /* tensor names of this split */
} grok_gguf_part;

struct grok_gguf_file {
    char *path;
    grok_gguf_part *parts;
    int32_t n_parts;
    grok_gguf_tensor *tensors; /* of all splits, in order */
    int64_t n_tensors;
    name_map tensor_map;
    uint64_t total_size;
};

static const grok_gguf_kv *part_find(const grok_gguf_part *p, const char *key) {
    int64_t i = map_find(&p->kv_map, key, strlen(key));
    return i < 0 ? NULL : &p->kvs[i];
}

/* ---------------------------------------------------------------------
 * Bounded cursor over one mapped file
 * --------------------------------------------------------------------- */
typedef struct {
    const char *path;
    const uint8_t *base;
    uint64_t size;  /* of the file */
    uint64_t avail; /* readable at base: size, or less for unjoined pieces */
    uint64_t pos;
    char ctx[192]; /* "kv 3 'general.name': " - what is being parsed */
    char *err;
    size_t err_size;
} cursor;

static int fail(cursor *c, uint64_t off, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->err && c->err_size)
        snprintf(c->err, c->err_size, "%s: %s%s at offset %" PRIu64, c->path, c->ctx, msg, off);
    return -1;
}

static uint64_t left(const cursor *c) { return c->avail - c->pos; }

/* Where the header is read from the first of pieces that could not be
 * joined, running out of it is not truncation. */
static const char *short_note(const cursor *c) {
    return c->avail < c->size ? " (the header runs past the first piece, whose size is not a multiple of the "
                                "page size: join the pieces with cat)"
                              : "";
}

static int need(cursor *c, uint64_t n, const char *field) {
    if (left(c) >= n) return 0;
    return fail(c, c->pos, "%s truncated: needs %" PRIu64 " bytes, file has %" PRIu64 " left%s", field, n,
                left(c), short_note(c));
}

static int rd_u32(cursor *c, const char *field, uint32_t *out) {
    if (need(c, 4, field) != 0) return -1;
    memcpy(out, c->base + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, const char *field, uint64_t *out) {
    if (need(c, 8, field) != 0) return -1;
    memcpy(out, c->base + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* A length-prefixed string, left in the map: its bytes must all be in the
 * file and its length at most max. */
static int rd_str(cursor *c, const char *field, uint64_t max, const uint8_t **s, uint64_t *len) {
    uint64_t at = c->pos;
    char lf[64];
    snprintf(lf, sizeof lf, "%s length", field);
    if (rd_u64(c, lf, len) != 0) return -1;
    if (*len > max) return fail(c, at, "%s length %" PRIu64 " > %" PRIu64, field, *len, max);
    if (*len > left(c))
        return fail(c, at, "%s length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes left)%s",
                    field, *len, left(c), short_note(c));
    *s = c->base + c->pos;
    c->pos += *len;
    return 0;
}

/* A name for messages: printable ASCII only, shortened. */
static void set_ctx(cursor *c, const char *what, int64_t i, const uint8_t *name, uint64_t len) {
    if (!name) {
        snprintf(c->ctx, sizeof c->ctx, "%s %" PRId64 ": ", what, i);
        return;
    }
    char clean[72];
    size_t n = len < 64 ? (size_t)len : 64, j;
    for (j = 0; j < n; j++) clean[j] = name[j] >= 0x20 && name[j] < 0x7f ? (char)name[j] : '?';
    clean[j] = 0;
    snprintf(c->ctx, sizeof c->ctx, "%s %" PRId64 " '%s%s': ", what, i, clean, len > 64 ? "..." : "");
}

static int parse_value(cursor *c, grok_gguf_kv *kv) {
    uint64_t at = c->pos;
    uint32_t t;
    if (rd_u32(c, "value type", &t) != 0) return -1;
    if (t >= GROK_GGUF_TYPE_COUNT) return fail(c, at, "unknown value type %" PRIu32, t);
    kv->type = (grok_gguf_value_type)t;
    kv->offset = c->pos;
    size_t sz = grok_gguf_scalar_size(kv->type);
    if (sz) {
        if (need(c, sz, "value") != 0) return -1;
        const uint8_t *p = c->base + c->pos;
        if (kv->type == GROK_GGUF_TYPE_BOOL) {
            if (p[0] > 1) return fail(c, c->pos, "bool value %u is not 0 or 1", p[0]);
            kv->v.b = p[0] != 0;
        } else {
            memcpy(&kv->v, p, sz);
        }
        c->pos += sz;
        return 0;
    }
    if (kv->type == GROK_GGUF_TYPE_STRING) {
        const uint8_t *s;
        uint64_t len;
        if (rd_str(c, "string", UINT64_MAX, &s, &len) != 0) return -1;
        kv->str = malloc((size_t)len + 1);
        if (!kv->str) return fail(c, at, "out of memory");
        memcpy(kv->str, s, (size_t)len);
        kv->str[len] = 0;
        kv->str_len = (size_t)len;
        return 0;
    }
    /* array */
    uint32_t et;
    at = c->pos;
    if (rd_u32(c, "array element type", &et) != 0) return -1;
    if (et >= GROK_GGUF_TYPE_COUNT) return fail(c, at, "unknown array element type %" PRIu32, et);
    if (et == GROK_GGUF_TYPE_ARRAY) return fail(c, at, "nested array (array of arrays) not supported");
    uint64_t n;
    at = c->pos;
    if (rd_u64(c, "array length", &n) != 0) return -1;
    size_t esz = et == GROK_GGUF_TYPE_STRING ? 8 : grok_gguf_scalar_size((grok_gguf_value_type)et);
    if (n > left(c) / esz)
        return fail(c, at, "array length %" PRIu64 " of %s cannot fit in the %" PRIu64 " bytes left%s", n,
                    grok_gguf_value_type_name((grok_gguf_value_type)et), left(c), short_note(c));
    kv->arr_type = (grok_gguf_value_type)et;
    kv->arr_n = n;
    if (et != GROK_GGUF_TYPE_STRING) {
        size_t bytes = (size_t)(n * esz);
        const uint8_t *p = c->base + c->pos;
        if (et == GROK_GGUF_TYPE_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (p[i] > 1)
                    return fail(c, c->pos + i,
                                "array element %" PRIu64 ": bool value %u is not "
                                "0 or 1",
                                i, p[i]);
        kv->arr_data = alloc_aligned(bytes);
        if (!kv->arr_data) return fail(c, at, "out of memory");
        memcpy(kv->arr_data, p, bytes);
        c->pos += bytes;
        return 0;
    }
    /* Strings: one pass to validate and size, one to copy. The total is
     * bounded by the file size, so the allocation is too. */
    uint64_t start = c->pos, total = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *s;
        uint64_t len;
        char field[48];
        snprintf(field, sizeof field, "array element %" PRIu64, i);
        if (rd_str(c, field, UINT64_MAX, &s, &len) != 0) return -1;
        total += len + 1;
    }
    if (build_str_array(kv, n, (size_t)total) != 0) return fail(c, at, "out of memory");
    c->pos = start;
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, c->base + c->pos, 8);
        memcpy(kv->arr_blob + off, c->base + c->pos + 8, (size_t)len);
        kv->arr_blob[off + len] = 0;
        kv->arr_strs[i] = (grok_gguf_str){kv->arr_blob + off, (size_t)len};
        off += (size_t)len + 1;
        c->pos += 8 + len;
    }
    return 0;
}

static int parse_kvs(cursor *c, grok_gguf_part *part, uint64_t n_kv) {
    part->kvs = calloc(n_kv ? n_kv : 1, sizeof *part->kvs);
    if (!part->kvs || map_reserve(&part->kv_map, (size_t)n_kv) != 0)
        return fail(c, c->pos, "out of memory for %" PRIu64 " kvs", n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        grok_gguf_kv *kv = &part->kvs[i];
        uint64_t at = c->pos, len;
        const uint8_t *key;
        set_ctx(c, "kv", (int64_t)i, NULL, 0);
        if (rd_str(c, "key", GROK_GGUF_MAX_KEY, &key, &len) != 0) return -1;
        if (len == 0) return fail(c, at, "empty key");
        set_ctx(c, "kv", (int64_t)i, key, len);
        if (memchr(key, 0, (size_t)len)) return fail(c, at + 8, "key contains a NUL byte");
        int64_t prev = map_find(&part->kv_map, (const char *)key, (size_t)len);
        if (prev >= 0) return fail(c, at, "duplicate key (first defined by kv %" PRId64 ")", prev);
        kv->key = malloc((size_t)len + 1);
        if (!kv->key) return fail(c, at, "out of memory");
        memcpy(kv->key, key, (size_t)len);
        kv->key[len] = 0;
        kv->key_len = (size_t)len;
        part->n_kv = (int64_t)i + 1; /* from here kv is owned by part */
        if (parse_value(c, kv) != 0) return -1;
        map_insert(&part->kv_map, kv->key, kv->key_len, (int64_t)i);
    }
    c->ctx[0] = 0;
    part->alignment = GROK_GGUF_DEFAULT_ALIGNMENT;
    const grok_gguf_kv *al = part_find(part, "general.alignment");
    if (al) {
        snprintf(c->ctx, sizeof c->ctx, "kv 'general.alignment': ");
        if (al->type != GROK_GGUF_TYPE_UINT32)
            return fail(c, al->offset - 4, "type %s, must be u32", grok_gguf_value_type_name(al->type));
        if (al->v.u32 == 0 || (al->v.u32 & (al->v.u32 - 1)) != 0)
            return fail(c, al->offset, "alignment %" PRIu32 " is not a power of two", al->v.u32);
        part->alignment = al->v.u32;
        c->ctx[0] = 0;
    }
    return 0;
}

/* ggml's names of the type numbers libgrok has no layout for: ones ggml
 * removed from GGUF files (the repacked 4-bit layouts, now made at load
 * time). Numbers past GROK_TYPE_COUNT are newer than this build (it knows
 * every type of ggml.h of llama.cpp de3ff81). */
static const char *unknown_type(uint32_t type) {
    static const char *const names[] = {
        [4] = "q4_2",      [5] = "q4_3",        [31] = "q4_0_4_4",   [32] = "q4_0_4_8",
        [33] = "q4_0_8_8", [36] = "iq4_nl_4_4", [37] = "iq4_nl_4_8", [38] = "iq4_nl_8_8"};
    return type < sizeof names / sizeof names[0] ? names[type] : NULL;
}

static uint64_t pad_to(uint64_t x, uint64_t align) { return (x + align - 1) / align * align; }

/* Tensor infos of one split, appended to f->tensors. Offsets must be
 * exactly where a writer packing the tensors in order would put them (as
 * ggml requires), which rules out overlap, gaps and reordering at once. */
static int parse_tensors(cursor *c, grok_gguf_file *f, grok_gguf_part *part, int32_t split, uint64_t n) {
    grok_gguf_tensor *grown = realloc(f->tensors, (size_t)(f->n_tensors + (int64_t)n + 1) * sizeof *grown);
    if (grown) f->tensors = grown;
    part->names = calloc(n ? n : 1, sizeof *part->names);
    if (!grown || !part->names || map_reserve(&f->tensor_map, (size_t)n) != 0)
        return fail(c, c->pos, "out of memory for %" PRIu64 " tensors", n);
    uint64_t *offset_at = malloc((n ? n : 1) * sizeof *offset_at); /* for messages */
    if (!offset_at) return fail(c, c->pos, "out of memory for %" PRIu64 " tensors", n);
    int rc = -1;
    uint64_t expected = 0, align = part->alignment;
    grok_gguf_tensor *ts = f->tensors + f->n_tensors;
    for (uint64_t i = 0; i < n; i++) {
        grok_gguf_tensor *t = &ts[i];
        uint64_t at = c->pos, len;
        const uint8_t *name;
        memset(t, 0, sizeof *t);
        set_ctx(c, "tensor", (int64_t)i, NULL, 0);
        if (rd_str(c, "name", GROK_GGUF_MAX_NAME, &name, &len) != 0) goto out;
        if (len == 0) {
            fail(c, at, "empty name");
            goto out;
        }
        set_ctx(c, "tensor", (int64_t)i, name, len);
        if (memchr(name, 0, (size_t)len)) {
            fail(c, at + 8, "name contains a NUL byte");
            goto out;
        }
        if (map_find(&f->tensor_map, (const char *)name, (size_t)len) >= 0) {
            fail(c, at, "duplicate tensor name");
            goto out;
        }
        memcpy(part->names[i], name, (size_t)len);
        t->name = part->names[i];
        t->split = split;
        map_insert(&f->tensor_map, t->name, (size_t)len, f->n_tensors); /* its global index */

        uint32_t n_dims;
        at = c->pos;
        if (rd_u32(c, "n_dims", &n_dims) != 0) goto out;
        if (n_dims == 0 || n_dims > GROK_GGUF_MAX_DIMS) {
            fail(c, at, "n_dims %" PRIu32 " %s", n_dims, n_dims ? "> 4" : "(must be 1..4)");
            goto out;
        }
        t->n_dims = (int32_t)n_dims;
        int64_t nel = 1;
        for (int d = 0; d < GROK_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < n_dims; d++) {
            uint64_t v;
            char field[16];
            snprintf(field, sizeof field, "ne[%" PRIu32 "]", d);
            at = c->pos;
            if (rd_u64(c, field, &v) != 0) goto out;
            if (v == 0 || v > (uint64_t)INT64_MAX) {
                fail(c, at, "%s = %" PRId64 " is not positive", field, (int64_t)v);
                goto out;
            }
            if (nel > INT64_MAX / (int64_t)v) {
                fail(c, at, "%s = %" PRIu64 ": element count overflows int64", field, v);
                goto out;
            }
            t->ne[d] = (int64_t)v;
            nel *= (int64_t)v;
        }
        t->n_elements = nel;
        at = c->pos;
        if (rd_u32(c, "type", &t->type) != 0) goto out;
        const grok_type_traits *tr = grok_type_get_traits(t->type);
        if (!tr) {
            const char *what = unknown_type(t->type);
            fail(c, at, "type %" PRIu32 "%s%s is not one this build knows%s", t->type, what ? " = " : "",
                 what ? what : "",
                 t->type < GROK_TYPE_COUNT ? " (ggml removed it from GGUF files: convert the model again)"
                                           : " (newer than this build)");
            goto out;
        }
        if (t->ne[0] % tr->block_size != 0) {
            fail(c, at, "ne[0] = %" PRId64 " is not a multiple of the block size %" PRId64 " of type %s",
                 t->ne[0], tr->block_size, tr->name);
            goto out;
        }
        int64_t row = grok_type_row_size(t->type, t->ne[0]);
        int64_t rows = nel / t->ne[0];
        if (row < 0 || row > INT64_MAX / rows) {
            fail(c, at, "byte size of %" PRId64 " elements of %s overflows", nel, tr->name);
            goto out;
        }
        uint64_t nbytes = (uint64_t)(row * rows);
        if (nbytes > c->size) {
            fail(c, at, "%" PRIu64 " bytes of data cannot fit in a file of %" PRIu64 " bytes", nbytes,
                 c->size);
            goto out;
        }
        t->nbytes = (size_t)nbytes;
        at = offset_at[i] = c->pos;
        if (rd_u64(c, "offset", &t->offset) != 0) goto out;
        if (t->offset % align != 0) {
            fail(c, at, "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, t->offset,
                 align);
            goto out;
        }
        if (t->offset != expected) {
            fail(c, at,
                 "data offset %" PRIu64 ", expected %" PRIu64 " (tensor data must follow "
                 "in order, without gaps or overlap)",
                 t->offset, expected);
            goto out;
        }
        expected += pad_to(nbytes, align); /* both <= file size: no overflow */
        f->n_tensors++;
    }
    /* The data section starts at the next aligned offset after the infos. */
    part->data_start = pad_to(c->pos, align);
    for (uint64_t i = 0; i < n; i++) {
        grok_gguf_tensor *t = &ts[i];
        set_ctx(c, "tensor", (int64_t)i, (const uint8_t *)t->name, strlen(t->name));
        uint64_t start = part->data_start + t->offset;
        if (start > c->size || t->nbytes > c->size - start) {
            fail(c, offset_at[i],
                 "data [%" PRIu64 ", %" PRIu64 ") runs past the end of the file (%" PRIu64 " bytes%s%s%s)",
                 start, start + t->nbytes, c->size, part->pieces ? " in all pieces, up to " : "",
                 part->pieces ? grok_gguf_pieces_path(part->pieces, grok_gguf_pieces_count(part->pieces) - 1)
                              : "",
                 part->pieces ? ": a piece is missing or short" : "");
            goto out;
        }
        if (part->pieces) {
            t->data = grok_gguf_pieces_at(part->pieces, start, t->nbytes, c->err, c->err_size);
            if (!t->data) goto out;
        } else {
            t->data = c->base + start;
        }
    }
    c->ctx[0] = 0;
    rc = 0;
out:
    free(offset_at);
    return rc;
}

static int map_file(grok_gguf_part *part, const char *path, char *err, size_t err_size) {
    int pc = grok_gguf_pieces_open(path, &part->pieces, err, err_size);
    if (pc < 0) return -1;
    if (pc > 0) {
        part->size = grok_gguf_pieces_size(part->pieces);
        part->map = grok_gguf_pieces_head(part->pieces, &part->avail);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    part->size = (uint64_t)st.st_size;
    if (part->size > 0) {
        void *m = mmap(NULL, (size_t)part->size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            snprintf(err, err_size, "%s: cannot map %" PRIu64 " bytes: %s", path, part->size,
                     strerror(errno));
            close(fd);
            return -1;
        }
        part->map = m;
    }
    part->avail = part->size;
    close(fd);
    return 0;
}

static int parse_part(grok_gguf_file *f, int32_t split, const char *path, char *err, size_t err_size) {
    grok_gguf_part *part = &f->parts[split];
    part->path = strdup(path);
    if (!part->path) {
        snprintf(err, err_size, "%s: out of memory", path);
        return -1;
    }
    if (map_file(part, path, err, err_size) != 0) return -1;
    f->total_size += part->size;
    cursor c = {.path = path,
                .base = part->map,
                .size = part->size,
                .avail = part->avail,
                .err = err,
                .err_size = err_size};
    snprintf(c.ctx, sizeof c.ctx, "header: ");
    if (need(&c, 4, "magic") != 0) return -1;
    if (memcmp(c.base, GROK_GGUF_MAGIC, 4) != 0)
        return fail(&c, 0, "bad magic %02x %02x %02x %02x (not a GGUF file)", c.base[0], c.base[1], c.base[2],
                    c.base[3]);
    c.pos = 4;
    if (rd_u32(&c, "version", &part->version) != 0) return -1;
    if (part->version == 1) return fail(&c, 4, "version 1 is not supported (only 2 and 3)");
    if (part->version != 2 && part->version != 3)
        return fail(&c, 4, "bad version %" PRIu32 " (only 2 and 3 are supported)", part->version);
    uint64_t n_tensors, n_kv;
    if (rd_u64(&c, "n_tensors", &n_tensors) != 0 || rd_u64(&c, "n_kv", &n_kv) != 0) return -1;
    if (n_tensors > left(&c) / MIN_TENSOR_INFO_BYTES)
        return fail(&c, 8, "n_tensors %" PRIu64 " cannot fit in the %" PRIu64 " bytes left", n_tensors,
                    left(&c));
    if (n_kv > left(&c) / MIN_KV_BYTES)
        return fail(&c, 16, "n_kv %" PRIu64 " cannot fit in the %" PRIu64 " bytes left", n_kv, left(&c));
    c.ctx[0] = 0;
    if (parse_kvs(&c, part, n_kv) != 0) return -1;
    return parse_tensors(&c, f, part, split, n_tensors);
}

/* NAME-00001-of-00003.gguf: the prefix length, this split (1-based) and the
 * count, as llama.cpp's gguf-split names them. */
static bool split_name(const char *path, size_t *prefix_len, int *k, int *n) {
    static const char PAT[] = "-#####-of-#####.gguf";
    size_t len = strlen(path), plen = sizeof PAT - 1;
    if (len <= plen) return false;
    const char *s = path + len - plen;
    int a = 0, b = 0;
    for (size_t i = 0; i < plen; i++) {
        if (PAT[i] == '#') {
            if (s[i] < '0' || s[i] > '9') return false;
            if (i < 6)
                a = a * 10 + (s[i] - '0');
            else
                b = b * 10 + (s[i] - '0');
        } else if (s[i] != PAT[i]) {
            return false;
        }
    }
    *prefix_len = len - plen;
    *k = a;
    *n = b;
    return true;
}

/* Checks an integer split key of split i; absent is an error when required. */
static int check_split_key(const grok_gguf_part *p, const char *key, int64_t want, bool required, char *err,
                           size_t err_size) {
    const grok_gguf_kv *kv = part_find(p, key);
    if (!kv) {
        if (!required) return 0;
        snprintf(err, err_size, "%s: kv '%s': missing in a split file at offset 0", p->path, key);
        return -1;
    }
    int64_t v;
    if (kv_as_i64(kv, &v) != 0) {
        snprintf(err, err_size, "%s: kv '%s': type %s is not an integer at offset %" PRIu64, p->path, key,
                 grok_gguf_value_type_name(kv->type), kv->offset);
        return -1;
    }
    if (v != want) {
        snprintf(err, err_size, "%s: kv '%s': value %" PRId64 ", expected %" PRId64 " at offset %" PRIu64,
                 p->path, key, v, want, kv->offset);
        return -1;
    }
    return 0;
}

grok_gguf_file *grok_gguf_open(const char *path, char *err, size_t err_size) {
    char dummy[GROK_ERR_SIZE];
    if (!err || err_size == 0) {
        err = dummy;
        err_size = sizeof dummy;
    }
    err[0] = 0;
    if (!path) {
        snprintf(err, err_size, "grok_gguf_open: no path");
        return NULL;
    }
    size_t plen = 0;
    int k = 0, n = 1;
    bool named = split_name(path, &plen, &k, &n);
    if (named && (n < 1 || k < 1 || k > n || n > 65535)) {
        snprintf(err, err_size, "%s: file name: split %d of %d is out of range at offset 0", path, k, n);
        return NULL;
    }
    if (!named) n = 1;
    grok_gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path)) || !(f->parts = calloc((size_t)n, sizeof *f->parts))) {
        snprintf(err, err_size, "%s: out of memory", path);
        grok_gguf_close(f);
        return NULL;
    }
    f->n_parts = n;
    char *spath = malloc(plen + 32);
    if (!spath) {
        snprintf(err, err_size, "%s: out of memory", path);
        grok_gguf_close(f);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *p = path;
        if (named) {
            snprintf(spath, plen + 32, "%.*s-%05d-of-%05d.gguf", (int)plen, path, i + 1, n);
            p = spath;
        }
        if (parse_part(f, i, p, err, err_size) != 0) goto fail;
        const grok_gguf_part *part = &f->parts[i];
        if (i == 0 && !named) {
            /* A lone file may carry split keys (gguf-split writes them even
             * for one split), but not claim to be part of a larger set. */
            if (check_split_key(part, "split.count", 1, false, err, err_size) != 0 ||
                check_split_key(part, "split.no", 0, false, err, err_size) != 0)
                goto fail;
        } else {
            if (check_split_key(part, "split.count", n, n > 1, err, err_size) != 0 ||
                check_split_key(part, "split.no", i, n > 1, err, err_size) != 0)
                goto fail;
        }
    }
    const grok_gguf_kv *tc = part_find(&f->parts[0], "split.tensors.count");
    for (int i = 0; i < n && (tc || n > 1); i++)
        if (check_split_key(&f->parts[i], "split.tensors.count", f->n_tensors, i == 0 && n > 1, err,
                            err_size) != 0)
            goto fail;
    free(spath);
    return f;
fail:
    free(spath);
    grok_gguf_close(f);
    return NULL;
}

void grok_gguf_close(grok_gguf_file *f) {
    if (!f) return;
    for (int32_t i = 0; f->parts && i < f->n_parts; i++) {
        grok_gguf_part *p = &f->parts[i];
        for (int64_t j = 0; j < p->n_kv; j++) grok_gguf_kv_clear(&p->kvs[j]);
        free(p->kvs);
        free(p->kv_map.slots);
        free(p->names);
        if (p->pieces)
            grok_gguf_pieces_close(p->pieces);
        else if (p->map)
            munmap((void *)p->map, (size_t)p->size);
        free(p->path);
    }
    free(f->parts);
    free(f->tensors);
    free(f->tensor_map.slots);
    free(f->path);
    free(f);
}

/* ---------------------------------------------------------------------
 * Accessors
 * --------------------------------------------------------------------- */
const char *grok_gguf_path(const grok_gguf_file *f) { return f->path; }
uint32_t grok_gguf_version(const grok_gguf_file *f) { return f->parts[0].version; }
int32_t grok_gguf_n_splits(const grok_gguf_file *f) { return f->n_parts; }
uint64_t grok_gguf_alignment(const grok_gguf_file *f) { return f->parts[0].alignment; }
uint64_t grok_gguf_file_size(const grok_gguf_file *f) { return f->total_size; }

int32_t grok_gguf_n_pieces(const grok_gguf_file *f) {
    int32_t n = 0;
    for (int32_t i = 0; i < f->n_parts; i++) n += grok_gguf_pieces_count(f->parts[i].pieces);
    return n;
}

uint64_t grok_gguf_bytes_copied(const grok_gguf_file *f) {
    uint64_t n = 0;
    for (int32_t i = 0; i < f->n_parts; i++) n += grok_gguf_pieces_copied(f->parts[i].pieces);
    return n;
}

uint64_t grok_gguf_tensor_file_offset(const grok_gguf_file *f, const grok_gguf_tensor *t) {
    return f->parts[t->split].data_start + t->offset;
}
const char *grok_gguf_split_path(const grok_gguf_file *f, int32_t split) {
    return split >= 0 && split < f->n_parts ? f->parts[split].path : NULL;
}
int64_t grok_gguf_n_kv(const grok_gguf_file *f) { return f->parts[0].n_kv; }

void grok_gguf_split_info(const grok_gguf_file *f, int32_t i, const char **path, uint64_t *size,
                          uint64_t *data_start) {
    const grok_gguf_part *pt = &f->parts[i];
    if (path) *path = pt->path;
    if (size) *size = pt->size;
    if (data_start) *data_start = pt->data_start;
}

/* The byte ranges a part's bytes are mapped at: the part's map, or each of
 * its pieces' maps. */
static int32_t part_n_maps(const grok_gguf_part *pt) {
    return pt->pieces ? grok_gguf_pieces_count(pt->pieces) : 1;
}
static const uint8_t *part_map(const grok_gguf_part *pt, int32_t k, uint64_t *len) {
    if (pt->pieces) return grok_gguf_pieces_map(pt->pieces, (int)k, len);
    *len = pt->size;
    return pt->map;
}

void grok_gguf_advise(const grok_gguf_file *f, const void *p, size_t len, int advice) {
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int32_t i = 0; i < f->n_parts; i++) {
        const grok_gguf_part *pt = &f->parts[i];
        for (int32_t k = 0; k < part_n_maps(pt); k++) {
            uint64_t n;
            const uint8_t *base = part_map(pt, k, &n);
            if (!base) continue;
            uintptr_t lo = (uintptr_t)base, hi = lo + n;
            if (p) {
                const uintptr_t a = (uintptr_t)p, b = a + len;
                if (b <= lo || a >= hi) continue;
                lo = a > lo ? a : lo, hi = b < hi ? b : hi;
            }
            lo = (lo + pg - 1) / pg * pg, hi = hi / pg * pg;
            if (hi > lo) madvise((void *)lo, hi - lo, advice);
        }
    }
}

int32_t grok_gguf_n_files(const grok_gguf_file *f) {
    int32_t n = 0;
    for (int32_t i = 0; i < f->n_parts; i++) n += part_n_maps(&f->parts[i]);
    return n;
}

const char *grok_gguf_file_path(const grok_gguf_file *f, int32_t i, uint64_t *size) {
    for (int32_t s = 0; s < f->n_parts; s++) {
        const grok_gguf_part *pt = &f->parts[s];
        if (i < part_n_maps(pt)) {
            uint64_t n;
            part_map(pt, i, &n);
            if (size) *size = n;
            return pt->pieces ? grok_gguf_pieces_path(pt->pieces, (int)i) : pt->path;
        }
        i -= part_n_maps(pt);
    }
    return NULL;
}

int64_t grok_gguf_read_ahead_bytes(const grok_gguf_file *f) {
    int64_t best = 0;
    for (int32_t i = 0; i < grok_gguf_n_files(f); i++) {
        struct stat st;
        if (stat(grok_gguf_file_path(f, i, NULL), &st)) continue;
        const unsigned ma = major(st.st_dev), mi = minor(st.st_dev);
        /* the backing device's (a disk, or a filesystem's own such as
         * btrfs), then a partition's disk */
        char path[3][96];
        snprintf(path[0], sizeof path[0], "/sys/class/bdi/%u:%u/read_ahead_kb", ma, mi);
        snprintf(path[1], sizeof path[1], "/sys/dev/block/%u:%u/queue/read_ahead_kb", ma, mi);
        snprintf(path[2], sizeof path[2], "/sys/dev/block/%u:%u/../queue/read_ahead_kb", ma, mi);
        for (int k = 0; k < 3; k++) {
            FILE *fp = fopen(path[k], "r");
            if (!fp) continue;
            long long kb = -1;
            const int got = fscanf(fp, "%lld", &kb);
            fclose(fp);
            if (got == 1 && kb >= 0) {
                if (kb * 1024 > best) best = kb * 1024;
                break;
            }
        }
    }
    return best > 0 ? best : (int64_t)128 * 1024;
}

void grok_gguf_drop_cache(const grok_gguf_file *f) {
    for (int32_t i = 0; i < grok_gguf_n_files(f); i++) {
        int fd = open(grok_gguf_file_path(f, i, NULL), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

int grok_gguf_locate(const grok_gguf_file *f, const void *p, int32_t *file, const char **path,
                     uint64_t *offset) {
    const uint8_t *q = p;
    int32_t first = 0;
    for (int32_t i = 0; i < f->n_parts; first += part_n_maps(&f->parts[i]), i++) {
        const grok_gguf_part *pt = &f->parts[i];
        int k = 0;
        uint64_t at;
        if (pt->pieces) {
            if (grok_gguf_pieces_locate(pt->pieces, q, &k, &at)) continue;
        } else if (pt->map && q >= pt->map && q < pt->map + pt->size) {
            at = (uint64_t)(q - pt->map);
        } else {
            continue;
        }
        if (file) *file = first + k;
        if (path) *path = grok_gguf_file_path(f, first + k, NULL);
        if (offset) *offset = at;
        return 0;
    }
    return -1;
}

const grok_gguf_kv *grok_gguf_kv_at(const grok_gguf_file *f, int64_t i) {
    return f && i >= 0 && i < f->parts[0].n_kv ? &f->parts[0].kvs[i] : NULL;
}

const char *grok_gguf_kv_key(const grok_gguf_file *f, int64_t i) {
    const grok_gguf_kv *kv = grok_gguf_kv_at(f, i);
    return kv ? kv->key : NULL;
}

grok_gguf_value_type grok_gguf_kv_type(const grok_gguf_file *f, int64_t i) {
    const grok_gguf_kv *kv = grok_gguf_kv_at(f, i);
    return kv ? kv->type : GROK_GGUF_TYPE_COUNT;
}

int64_t grok_gguf_find_kv(const grok_gguf_file *f, const char *key) {
    if (!f || !key) return -1;
    return map_find(&f->parts[0].kv_map, key, strlen(key));
}

static const grok_gguf_kv *find(const grok_gguf_file *f, const char *key) {
    int64_t i = grok_gguf_find_kv(f, key);
    return i < 0 ? NULL : &f->parts[0].kvs[i];
}

int grok_gguf_get_u64(const grok_gguf_file *f, const char *key, uint64_t *out) {
    const grok_gguf_kv *kv = find(f, key);
    return kv ? kv_as_u64(kv, out) : -1;
}

int grok_gguf_get_i64(const grok_gguf_file *f, const char *key, int64_t *out) {
    const grok_gguf_kv *kv = find(f, key);
    return kv ? kv_as_i64(kv, out) : -1;
}

int grok_gguf_get_f64(const grok_gguf_file *f, const char *key, double *out) {
    const grok_gguf_kv *kv = find(f, key);
    return kv ? kv_as_f64(kv, out) : -1;
}

int grok_gguf_get_bool(const grok_gguf_file *f, const char *key, bool *out) {
    const grok_gguf_kv *kv = find(f, key);
    if (!kv) return -1;
    if (kv->type != GROK_GGUF_TYPE_BOOL) return -2;
    *out = kv->v.b;
    return 0;
}

int grok_gguf_get_str(const grok_gguf_file *f, const char *key, const char **out, size_t *len) {
    const grok_gguf_kv *kv = find(f, key);
    if (!kv) return -1;
    if (kv->type != GROK_GGUF_TYPE_STRING) return -2;
    *out = kv->str;
    if (len) *len = kv->str_len;
    return 0;
}

int grok_gguf_get_arr(const grok_gguf_file *f, const char *key, grok_gguf_value_type *elem_type,
                      uint64_t *n) {
    const grok_gguf_kv *kv = find(f, key);
    if (!kv) return -1;
    if (kv->type != GROK_GGUF_TYPE_ARRAY) return -2;
    if (elem_type) *elem_type = kv->arr_type;
    if (n) *n = kv->arr_n;
    return 0;
}

const void *grok_gguf_get_arr_data(const grok_gguf_file *f, const char *key) {
    const grok_gguf_kv *kv = find(f, key);
    if (!kv || kv->type != GROK_GGUF_TYPE_ARRAY || kv->arr_type == GROK_GGUF_TYPE_STRING) return NULL;
    return kv->arr_data;
}

const char *grok_gguf_get_arr_str(const grok_gguf_file *f, const char *key, uint64_t i, size_t *len) {
    const grok_gguf_kv *kv = find(f, key);
    if (!kv || kv->type != GROK_GGUF_TYPE_ARRAY || kv->arr_type != GROK_GGUF_TYPE_STRING || i >= kv->arr_n)
        return NULL;
    if (len) *len = kv->arr_strs[i].len;
    return kv->arr_strs[i].p;
}

int64_t grok_gguf_n_tensors(const grok_gguf_file *f) { return f->n_tensors; }

const grok_gguf_tensor *grok_gguf_tensor_at(const grok_gguf_file *f, int64_t i) {
    return f && i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const grok_gguf_tensor *grok_gguf_find_tensor(const grok_gguf_file *f, const char *name) {
    if (!f || !name) return NULL;
    int64_t i = map_find(&f->tensor_map, name, strlen(name));
    return i < 0 ? NULL : &f->tensors[i];
}
