/*
 * test_gguf.c - tests of the GGUF reader and writer: round trips of every
 * value type and of tensors of several types, v2 files, split sets,
 * streamed against whole writes, the writer's bytes against a file built
 * by hand from the format spec, a corpus of malformed files (one per
 * validation class, each checked for the field and offset named in the
 * error), every truncation of a valid file, a seeded byte-flip fuzz, and
 * that opening a large file does not touch its data.
 *
 * Hand-built files come from the small byte builder below, which follows
 * the GGUF spec independently of the library's writer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "grok.h"

#include "check.h"

static char tmpdir[512];

static const char *tpath(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (n && fwrite(p, 1, n, f) != n) exit(1);
    fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz + 1);
    if (fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* Counts entries of tmpdir whose name contains s (leftover temp files). */
static int count_files_with(const char *s) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, s)) n++;
    if (d) closedir(d);
    return n;
}

/* ---------------------------------------------------------------------
 * Byte builder following the GGUF spec
 * --------------------------------------------------------------------- */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_put(bb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void bb_u8(bb *b, uint8_t v) { bb_put(b, &v, 1); }
static void bb_u16(bb *b, uint16_t v) { bb_put(b, &v, 2); }
static void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static void bb_header(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
static void bb_kv_u32(bb *b, const char *key, uint32_t v) {
    bb_str(b, key);
    bb_u32(b, GROK_GGUF_TYPE_UINT32);
    bb_u32(b, v);
}
/* Tensor info; returns the offset of its offset field. */
static size_t bb_tensor(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                        uint64_t offset) {
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) bb_u64(b, ne[d]);
    bb_u32(b, type);
    size_t at = b->n;
    bb_u64(b, offset);
    return at;
}
static void bb_pad(bb *b, size_t align) {
    while (b->n % align) bb_u8(b, 0);
}
static void bb_fill(bb *b, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; i++) bb_u8(b, (uint8_t)(seed + i * 7));
}

/* ---------------------------------------------------------------------
 * Deterministic data
 * --------------------------------------------------------------------- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void *random_bytes(size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
    return p;
}

/* ---------------------------------------------------------------------
 * Round trip through the writer
 * --------------------------------------------------------------------- */
typedef struct {
    const char *name;
    grok_type type;
    int32_t n_dims;
    int64_t ne[4];
    size_t nbytes; /* from the block layouts of the ggml docs, not from the library */
    void *data;
} tspec;

static tspec TS[] = {
    {"tok_embd.weight", GROK_TYPE_F32, 2, {3, 2}, 3 * 2 * 4, NULL},
    {"blk.0.f16", GROK_TYPE_F16, 1, {64}, 64 * 2, NULL},
    {"blk.0.bf16", GROK_TYPE_BF16, 3, {5, 3, 2}, 5 * 3 * 2 * 2, NULL},
    {"blk.0.q8_0", GROK_TYPE_Q8_0, 2, {64, 2}, 2 * 2 * 34, NULL},
    {"blk.0.q4_K", GROK_TYPE_Q4_K, 4, {256, 1, 1, 2}, 2 * 144, NULL},
};
#define N_TS (sizeof TS / sizeof TS[0])

static void make_tensor_data(void) {
    for (size_t i = 0; i < N_TS; i++) TS[i].data = random_bytes(TS[i].nbytes);
}

static grok_gguf_writer *make_writer(bool with_data) {
    grok_gguf_writer *w = grok_gguf_writer_create();
    grok_gguf_writer_set_u8(w, "t.u8", 200);
    grok_gguf_writer_set_u32(w, "t.u32", 4000000000u);
    grok_gguf_writer_set_i32(w, "t.i32", -123456);
    grok_gguf_writer_set_u64(w, "t.u64", 0xFFFFFFFFFFFFFFF0ull);
    grok_gguf_writer_set_f32(w, "t.f32", 3.5f);
    grok_gguf_writer_set_bool(w, "t.bool", true);
    grok_gguf_writer_set_str(w, "t.str", "first");
    grok_gguf_writer_set_str(w, "general.name", "grok-test \xc3\xa9");
    grok_gguf_writer_set_str(w, "t.str", "replaced"); /* keeps its first position */
    int32_t ai[5] = {-1, 0, 1, 2147483647, -2147483647 - 1};
    grok_gguf_writer_set_arr(w, "t.arr.i32", GROK_GGUF_TYPE_INT32, ai, 5);
    float af[3] = {0.5f, -1.25f, 1e30f};
    grok_gguf_writer_set_arr(w, "t.arr.f32", GROK_GGUF_TYPE_FLOAT32, af, 3);
    uint8_t ab[4] = {1, 0, 0, 1};
    grok_gguf_writer_set_arr(w, "t.arr.bool", GROK_GGUF_TYPE_BOOL, ab, 4);
    double ad[2] = {1.0 / 3.0, -2e300};
    grok_gguf_writer_set_arr(w, "t.arr.f64", GROK_GGUF_TYPE_FLOAT64, ad, 2);
    int16_t as[3] = {-32768, 7, 32767};
    grok_gguf_writer_set_arr(w, "t.arr.i16", GROK_GGUF_TYPE_INT16, as, 3);
    uint64_t au[2] = {0, UINT64_MAX};
    grok_gguf_writer_set_arr(w, "t.arr.u64", GROK_GGUF_TYPE_UINT64, au, 2);
    grok_gguf_writer_set_arr(w, "t.arr.empty", GROK_GGUF_TYPE_UINT8, NULL, 0);
    const char *strs[4] = {"<s>", "", "\xe2\x96\x81hello", "</s>"};
    grok_gguf_writer_set_arr_str(w, "t.arr.str", strs, 4);
    for (size_t i = 0; i < N_TS; i++) {
        int64_t idx = grok_gguf_writer_add_tensor(w, TS[i].name, TS[i].type, TS[i].n_dims, TS[i].ne,
                                                  with_data ? TS[i].data : NULL);
        CHECK(idx == (int64_t)i, "add_tensor %s returned %" PRId64, TS[i].name, idx);
    }
    return w;
}

static void check_tensors(const grok_gguf_file *f, const char *what) {
    CHECK(grok_gguf_n_tensors(f) == (int64_t)N_TS, "%s: n_tensors %" PRId64, what, grok_gguf_n_tensors(f));
    for (size_t i = 0; i < N_TS && i < (size_t)grok_gguf_n_tensors(f); i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, (int64_t)i);
        CHECK(strcmp(t->name, TS[i].name) == 0, "%s: tensor %zu name %s", what, i, t->name);
        CHECK(grok_gguf_find_tensor(f, TS[i].name) == t, "%s: find_tensor %s", what, TS[i].name);
        CHECK(t->type == (uint32_t)TS[i].type, "%s: %s type %u", what, t->name, t->type);
        CHECK(t->n_dims == TS[i].n_dims, "%s: %s n_dims %d", what, t->name, t->n_dims);
        int64_t nel = 1;
        for (int d = 0; d < 4; d++) {
            int64_t want = d < TS[i].n_dims ? TS[i].ne[d] : 1;
            CHECK(t->ne[d] == want, "%s: %s ne[%d] = %" PRId64, what, t->name, d, t->ne[d]);
            nel *= want;
        }
        CHECK(t->n_elements == nel, "%s: %s n_elements", what, t->name);
        CHECK(t->nbytes == TS[i].nbytes, "%s: %s nbytes %zu want %zu", what, t->name, t->nbytes,
              TS[i].nbytes);
        CHECK(((uintptr_t)t->data % grok_gguf_alignment(f)) == 0, "%s: %s data misaligned", what, t->name);
        CHECK(t->nbytes == TS[i].nbytes && memcmp(t->data, TS[i].data, t->nbytes) == 0, "%s: %s data differs",
              what, t->name);
    }
    CHECK(grok_gguf_find_tensor(f, "missing") == NULL, "%s: find of a missing tensor", what);
}

static void check_kvs(const grok_gguf_file *f, const char *what) {
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    const char *s;
    size_t len;
    CHECK(grok_gguf_get_u64(f, "t.u8", &u) == 0 && u == 200, "%s: t.u8", what);
    CHECK(grok_gguf_get_i64(f, "t.u32", &i) == 0 && i == 4000000000ll, "%s: t.u32 as i64", what);
    CHECK(grok_gguf_get_i64(f, "t.i32", &i) == 0 && i == -123456, "%s: t.i32", what);
    CHECK(grok_gguf_get_u64(f, "t.i32", &u) == -2, "%s: negative i32 read as u64 must be -2", what);
    CHECK(grok_gguf_get_u64(f, "t.u64", &u) == 0 && u == 0xFFFFFFFFFFFFFFF0ull, "%s: t.u64", what);
    CHECK(grok_gguf_get_i64(f, "t.u64", &i) == -2, "%s: huge u64 as i64 must be -2", what);
    /* 2^64-16 lies between two doubles (spacing 2048 there). */
    CHECK(grok_gguf_get_f64(f, "t.u64", &d) == -2, "%s: u64 not exactly representable as f64", what);
    CHECK(grok_gguf_get_f64(f, "t.u32", &d) == 0 && d == 4000000000.0, "%s: u32 as f64", what);
    CHECK(grok_gguf_get_f64(f, "t.f32", &d) == 0 && d == 3.5, "%s: t.f32", what);
    CHECK(grok_gguf_get_i64(f, "t.f32", &i) == -2, "%s: 3.5 as integer must be -2", what);
    CHECK(grok_gguf_get_f64(f, "t.i32", &d) == 0 && d == -123456.0, "%s: i32 as f64", what);
    CHECK(grok_gguf_get_bool(f, "t.bool", &b) == 0 && b, "%s: t.bool", what);
    CHECK(grok_gguf_get_bool(f, "t.u8", &b) == -2, "%s: u8 as bool must be -2", what);
    CHECK(grok_gguf_get_str(f, "t.str", &s, &len) == 0 && len == 8 && strcmp(s, "replaced") == 0, "%s: t.str",
          what);
    CHECK(grok_gguf_get_str(f, "t.u8", &s, NULL) == -2, "%s: u8 as str must be -2", what);
    CHECK(grok_gguf_get_str(f, "nope", &s, NULL) == -1, "%s: absent key must be -1", what);
    CHECK(grok_gguf_get_u64(f, "nope", &u) == -1, "%s: absent key must be -1", what);
    CHECK(grok_gguf_find_kv(f, "t.str") == 6, "%s: replaced key keeps its position (got %" PRId64 ")", what,
          grok_gguf_find_kv(f, "t.str"));
    CHECK(grok_gguf_kv_type(f, grok_gguf_find_kv(f, "t.u8")) == GROK_GGUF_TYPE_UINT8, "%s: t.u8 type", what);
    CHECK(grok_gguf_get_str(f, "general.name", &s, &len) == 0 && strcmp(s, "grok-test \xc3\xa9") == 0,
          "%s: general.name", what);

    grok_gguf_value_type et;
    uint64_t n;
    CHECK(grok_gguf_get_arr(f, "t.arr.i32", &et, &n) == 0 && et == GROK_GGUF_TYPE_INT32 && n == 5,
          "%s: t.arr.i32 shape", what);
    const int32_t *ai = grok_gguf_get_arr_data(f, "t.arr.i32");
    CHECK(ai && ai[0] == -1 && ai[3] == 2147483647 && ai[4] == -2147483647 - 1, "%s: t.arr.i32 values", what);
    const float *af = grok_gguf_get_arr_data(f, "t.arr.f32");
    CHECK(af && af[0] == 0.5f && af[1] == -1.25f && af[2] == 1e30f, "%s: t.arr.f32", what);
    const uint8_t *ab = grok_gguf_get_arr_data(f, "t.arr.bool");
    CHECK(grok_gguf_get_arr(f, "t.arr.bool", &et, &n) == 0 && et == GROK_GGUF_TYPE_BOOL && n == 4 && ab &&
              ab[0] == 1 && ab[1] == 0 && ab[3] == 1,
          "%s: t.arr.bool", what);
    const double *ad = grok_gguf_get_arr_data(f, "t.arr.f64");
    CHECK(ad && ((uintptr_t)ad % 8) == 0 && ad[0] == 1.0 / 3.0 && ad[1] == -2e300, "%s: t.arr.f64", what);
    const int16_t *as = grok_gguf_get_arr_data(f, "t.arr.i16");
    CHECK(as && as[0] == -32768 && as[2] == 32767, "%s: t.arr.i16", what);
    const uint64_t *au = grok_gguf_get_arr_data(f, "t.arr.u64");
    CHECK(au && au[1] == UINT64_MAX, "%s: t.arr.u64", what);
    CHECK(grok_gguf_get_arr(f, "t.arr.empty", &et, &n) == 0 && n == 0 && et == GROK_GGUF_TYPE_UINT8,
          "%s: empty array", what);
    CHECK(grok_gguf_get_arr(f, "t.arr.str", &et, &n) == 0 && et == GROK_GGUF_TYPE_STRING && n == 4,
          "%s: t.arr.str shape", what);
    CHECK(grok_gguf_get_arr_data(f, "t.arr.str") == NULL, "%s: string array has no data ptr", what);
    s = grok_gguf_get_arr_str(f, "t.arr.str", 2, &len);
    CHECK(s && len == 8 && strcmp(s, "\xe2\x96\x81hello") == 0, "%s: t.arr.str[2]", what);
    s = grok_gguf_get_arr_str(f, "t.arr.str", 1, &len);
    CHECK(s && len == 0 && s[0] == 0, "%s: t.arr.str[1] empty", what);
    CHECK(grok_gguf_get_arr_str(f, "t.arr.str", 4, &len) == NULL, "%s: index past the end", what);
    CHECK(grok_gguf_get_arr(f, "t.u8", &et, &n) == -2, "%s: scalar as array must be -2", what);
}

static void test_roundtrip(void) {
    char err[GROK_ERR_SIZE];
    grok_gguf_writer *w = make_writer(true);
    const char *path = tpath("rt.gguf");
    CHECK(grok_gguf_writer_write(w, path, err, sizeof err) == 0, "write: %s", err);
    CHECK(grok_gguf_writer_n_outputs(w) == 1 && strcmp(grok_gguf_writer_output_path(w, 0), path) == 0,
          "one output named as given");
    grok_gguf_writer_free(w);
    CHECK(count_files_with(".tmp.") == 0, "no temp files left");
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    CHECK(f != NULL, "open: %s", err);
    if (!f) return;
    struct stat st;
    stat(path, &st);
    CHECK(grok_gguf_version(f) == 3 && grok_gguf_n_splits(f) == 1 && grok_gguf_alignment(f) == 32,
          "version/splits/alignment");
    CHECK(grok_gguf_file_size(f) == (uint64_t)st.st_size, "file size");
    CHECK(strcmp(grok_gguf_path(f), path) == 0, "path");
    CHECK(grok_gguf_n_kv(f) == 16, "n_kv %" PRId64, grok_gguf_n_kv(f));
    check_kvs(f, "roundtrip");
    check_tensors(f, "roundtrip");

    /* copy_kvs then write again: the same kvs come back. */
    grok_gguf_writer *w2 = grok_gguf_writer_create();
    grok_gguf_writer_set_str(w2, "t.str", "kept");
    CHECK(grok_gguf_writer_copy_kvs(w2, f) == 0, "copy_kvs");
    const char *p2 = tpath("rt2.gguf");
    CHECK(grok_gguf_writer_write(w2, p2, err, sizeof err) == 0, "write copy: %s", err);
    grok_gguf_writer_free(w2);
    grok_gguf_file *f2 = grok_gguf_open(p2, err, sizeof err);
    CHECK(f2 != NULL, "open copy: %s", err);
    if (f2) {
        const char *s;
        CHECK(grok_gguf_get_str(f2, "t.str", &s, NULL) == 0 && strcmp(s, "kept") == 0,
              "copy_kvs skips keys already set");
        CHECK(grok_gguf_n_kv(f2) == grok_gguf_n_kv(f), "copy has every kv");
        grok_gguf_close(f2);
    }
    grok_gguf_close(f);
}

/* Alignment 64 set on the writer is honoured and read back. */
static void test_alignment(void) {
    char err[GROK_ERR_SIZE];
    grok_gguf_writer *w = make_writer(true);
    grok_gguf_writer_set_alignment(w, 64);
    const char *path = tpath("al64.gguf");
    CHECK(grok_gguf_writer_write(w, path, err, sizeof err) == 0, "write: %s", err);
    grok_gguf_writer_free(w);
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    CHECK(f && grok_gguf_alignment(f) == 64, "alignment 64: %s", f ? "" : err);
    if (f) {
        check_tensors(f, "align64");
        for (int64_t i = 0; i < grok_gguf_n_tensors(f); i++)
            CHECK(grok_gguf_tensor_at(f, i)->offset % 64 == 0, "offset aligned to 64");
        grok_gguf_close(f);
    }
    w = grok_gguf_writer_create();
    grok_gguf_writer_set_alignment(w, 48);
    CHECK(grok_gguf_writer_write(w, tpath("al48.gguf"), err, sizeof err) != 0 && strstr(err, "power of two"),
          "alignment 48 refused: %s", err);
    grok_gguf_writer_free(w);
}

/* The writer's bytes equal a file built by hand from the spec. */
static void test_writer_bytes(void) {
    char err[GROK_ERR_SIZE];
    float data[3] = {1.0f, -2.0f, 0.25f};
    grok_gguf_writer *w = grok_gguf_writer_create();
    grok_gguf_writer_set_u32(w, "general.quantization_version", 2);
    grok_gguf_writer_set_str(w, "general.architecture", "grok");
    int64_t ne[2] = {3, 1};
    grok_gguf_writer_add_tensor(w, "x", GROK_TYPE_F32, 2, ne, data);
    int64_t ne2[1] = {2};
    uint16_t h[2] = {0x3c00, 0xc000};
    grok_gguf_writer_add_tensor(w, "y", GROK_TYPE_F16, 1, ne2, h);
    const char *path = tpath("bytes.gguf");
    CHECK(grok_gguf_writer_write(w, path, err, sizeof err) == 0, "write: %s", err);
    grok_gguf_writer_free(w);

    bb b = {0};
    bb_header(&b, 3, 2, 2);
    bb_kv_u32(&b, "general.quantization_version", 2);
    bb_str(&b, "general.architecture");
    bb_u32(&b, GROK_GGUF_TYPE_STRING);
    bb_str(&b, "grok");
    bb_tensor(&b, "x", 2, (uint64_t[]){3, 1}, 0, 0);
    bb_tensor(&b, "y", 1, (uint64_t[]){2}, 1, 32); /* 12 bytes padded to 32 */
    bb_pad(&b, 32);
    bb_put(&b, data, 12);
    bb_pad(&b, 32);
    bb_put(&b, h, 4);
    bb_pad(&b, 32);
    size_t n;
    uint8_t *got = read_bytes(path, &n);
    CHECK(got && n == b.n && memcmp(got, b.p, n) == 0, "writer bytes differ from spec (%zu vs %zu)", n, b.n);
    free(got);
    free(b.p);
}

/* Streaming in odd-sized pieces gives the same bytes as a whole write. */
static void test_stream(void) {
    char err[GROK_ERR_SIZE];
    grok_gguf_writer *w = make_writer(true);
    const char *pa = tpath("whole.gguf"), *pb = tpath("stream.gguf");
    CHECK(grok_gguf_writer_write(w, pa, err, sizeof err) == 0, "whole: %s", err);
    grok_gguf_writer_free(w);

    /* All tensor bytes, concatenated, fed in 7-byte pieces that straddle tensors. */
    size_t total = 0;
    for (size_t i = 0; i < N_TS; i++) total += TS[i].nbytes;
    uint8_t *all = malloc(total);
    for (size_t i = 0, at = 0; i < N_TS; at += TS[i].nbytes, i++) memcpy(all + at, TS[i].data, TS[i].nbytes);
    w = make_writer(false);
    unlink(pb); /* from an earlier run */
    CHECK(grok_gguf_writer_begin(w, pb, err, sizeof err) == 0, "begin: %s", err);
    CHECK(access(pb, F_OK) != 0, "nothing under the real name while streaming");
    int rc = 0;
    for (size_t at = 0; at < total && rc == 0; at += 7)
        rc = grok_gguf_writer_write_data(w, all + at, total - at < 7 ? total - at : 7, err, sizeof err);
    CHECK(rc == 0, "write_data: %s", err);
    CHECK(grok_gguf_writer_finish(w, err, sizeof err) == 0, "finish: %s", err);
    grok_gguf_writer_free(w);
    size_t na, nb;
    uint8_t *a = read_bytes(pa, &na), *b = read_bytes(pb, &nb);
    CHECK(a && b && na == nb && memcmp(a, b, na) == 0, "streamed file differs from whole write");
    free(a);
    free(b);

    /* Missing bytes: finish fails, no file, no temp. */
    const char *pc = tpath("short.gguf");
    write_bytes(pc, "old", 3);
    w = make_writer(false);
    CHECK(grok_gguf_writer_begin(w, pc, err, sizeof err) == 0, "begin: %s", err);
    grok_gguf_writer_write_data(w, all, total - 1, err, sizeof err);
    CHECK(grok_gguf_writer_finish(w, err, sizeof err) != 0 && strstr(err, "blk.0.q4_K") &&
              strstr(err, "287 of 288"),
          "finish with a byte missing must fail: %s", err);
    grok_gguf_writer_free(w);
    size_t nc;
    uint8_t *c = read_bytes(pc, &nc);
    CHECK(c && nc == 3 && memcmp(c, "old", 3) == 0, "a failed write leaves the old file alone");
    free(c);
    CHECK(count_files_with(".tmp.") == 0, "no temp file after a failed finish");

    /* Too many bytes fail. */
    w = make_writer(false);
    grok_gguf_writer_begin(w, pc, err, sizeof err);
    uint8_t extra[1] = {0};
    grok_gguf_writer_write_data(w, all, total, err, sizeof err);
    CHECK(grok_gguf_writer_write_data(w, extra, 1, err, sizeof err) != 0, "extra bytes must fail");
    grok_gguf_writer_free(w);

    /* Freed mid-stream: temp removed. */
    w = make_writer(false);
    grok_gguf_writer_begin(w, tpath("abandoned.gguf"), err, sizeof err);
    grok_gguf_writer_write_data(w, all, 10, err, sizeof err);
    CHECK(count_files_with(".tmp.") == 1, "a temp file exists while streaming");
    grok_gguf_writer_free(w);
    CHECK(count_files_with(".tmp.") == 0 && access(tpath("abandoned.gguf"), F_OK) != 0,
          "free before finish removes the temp file");
    free(all);

    /* Whole write without data is refused. */
    w = make_writer(false);
    CHECK(grok_gguf_writer_write(w, tpath("nodata.gguf"), err, sizeof err) != 0 && strstr(err, "no data"),
          "write without data: %s", err);
    grok_gguf_writer_free(w);
}

static void test_add_tensor_checks(void) {
    grok_gguf_writer *w = grok_gguf_writer_create();
    int64_t ne[4] = {32, 2, 1, 1};
    float x[64] = {0};
    CHECK(grok_gguf_writer_add_tensor(w, "a", GROK_TYPE_F32, 2, ne, x) == 0, "valid tensor");
    CHECK(grok_gguf_writer_add_tensor(w, "a", GROK_TYPE_F32, 2, ne, x) == -1, "duplicate name");
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = 0;
    CHECK(grok_gguf_writer_add_tensor(w, long_name, GROK_TYPE_F32, 2, ne, x) == -1, "64-byte name");
    long_name[63] = 0;
    CHECK(grok_gguf_writer_add_tensor(w, long_name, GROK_TYPE_F32, 2, ne, x) == 1, "63-byte name");
    CHECK(grok_gguf_writer_add_tensor(w, "b", GROK_TYPE_F32, 5, ne, x) == -1, "n_dims 5");
    CHECK(grok_gguf_writer_add_tensor(w, "b", GROK_TYPE_F32, 0, ne, x) == -1, "n_dims 0");
    int64_t bad[2] = {32, 0};
    CHECK(grok_gguf_writer_add_tensor(w, "b", GROK_TYPE_F32, 2, bad, x) == -1, "zero dim");
    int64_t odd[1] = {33};
    CHECK(grok_gguf_writer_add_tensor(w, "b", GROK_TYPE_Q8_0, 1, odd, x) == -1, "not a block multiple");
    CHECK(grok_gguf_writer_add_tensor(w, "b", (grok_type)4, 1, ne, x) == -1, "unknown type");
    int64_t huge[2] = {INT64_MAX / 2, 4};
    CHECK(grok_gguf_writer_add_tensor(w, "b", GROK_TYPE_F32, 2, huge, x) == -1, "overflow");
    CHECK(grok_gguf_writer_set_u32(w, "", 1) == -1, "empty key refused");
    CHECK(grok_gguf_writer_set_arr(w, "k", GROK_GGUF_TYPE_STRING, x, 1) == -1, "set_arr of strings");
    grok_gguf_writer_free(w);
}

/* ---------------------------------------------------------------------
 * Every scalar type and v2, from hand-built files
 * --------------------------------------------------------------------- */
static void bb_all_types(bb *b) {
    bb_str(b, "a.u8"), bb_u32(b, GROK_GGUF_TYPE_UINT8), bb_u8(b, 255);
    bb_str(b, "a.i8"), bb_u32(b, GROK_GGUF_TYPE_INT8), bb_u8(b, 0x80);
    bb_str(b, "a.u16"), bb_u32(b, GROK_GGUF_TYPE_UINT16), bb_u16(b, 65535);
    bb_str(b, "a.i16"), bb_u32(b, GROK_GGUF_TYPE_INT16), bb_u16(b, 0x8000);
    bb_str(b, "a.u32"), bb_u32(b, GROK_GGUF_TYPE_UINT32), bb_u32(b, 0xFFFFFFFFu);
    bb_str(b, "a.i32"), bb_u32(b, GROK_GGUF_TYPE_INT32), bb_u32(b, 0xFFFFFFFEu);
    float f = -0.75f;
    bb_str(b, "a.f32"), bb_u32(b, GROK_GGUF_TYPE_FLOAT32), bb_put(b, &f, 4);
    bb_str(b, "a.bool"), bb_u32(b, GROK_GGUF_TYPE_BOOL), bb_u8(b, 0);
    bb_str(b, "a.str"), bb_u32(b, GROK_GGUF_TYPE_STRING), bb_str(b, "grok");
    bb_str(b, "a.arr"), bb_u32(b, GROK_GGUF_TYPE_ARRAY), bb_u32(b, GROK_GGUF_TYPE_UINT16), bb_u64(b, 2);
    bb_u16(b, 1), bb_u16(b, 2);
    bb_str(b, "a.u64"), bb_u32(b, GROK_GGUF_TYPE_UINT64), bb_u64(b, 1ull << 40);
    bb_str(b, "a.i64"), bb_u32(b, GROK_GGUF_TYPE_INT64), bb_u64(b, (uint64_t)-5ll);
    double d = 2.5;
    bb_str(b, "a.f64"), bb_u32(b, GROK_GGUF_TYPE_FLOAT64), bb_put(b, &d, 8);
}

static void check_all_types(const grok_gguf_file *f, const char *what) {
    int64_t i;
    uint64_t u;
    double d;
    bool bo;
    const char *s;
    static const grok_gguf_value_type types[13] = {
        GROK_GGUF_TYPE_UINT8,  GROK_GGUF_TYPE_INT8,  GROK_GGUF_TYPE_UINT16,  GROK_GGUF_TYPE_INT16,
        GROK_GGUF_TYPE_UINT32, GROK_GGUF_TYPE_INT32, GROK_GGUF_TYPE_FLOAT32, GROK_GGUF_TYPE_BOOL,
        GROK_GGUF_TYPE_STRING, GROK_GGUF_TYPE_ARRAY, GROK_GGUF_TYPE_UINT64,  GROK_GGUF_TYPE_INT64,
        GROK_GGUF_TYPE_FLOAT64};
    for (int k = 0; k < 13; k++)
        CHECK(grok_gguf_kv_type(f, k) == types[k], "%s: kv %d type %s", what, k,
              grok_gguf_value_type_name(grok_gguf_kv_type(f, k)));
    CHECK(grok_gguf_get_u64(f, "a.u8", &u) == 0 && u == 255, "%s: u8", what);
    CHECK(grok_gguf_get_i64(f, "a.i8", &i) == 0 && i == -128, "%s: i8", what);
    CHECK(grok_gguf_get_u64(f, "a.u16", &u) == 0 && u == 65535, "%s: u16", what);
    CHECK(grok_gguf_get_i64(f, "a.i16", &i) == 0 && i == -32768, "%s: i16", what);
    CHECK(grok_gguf_get_u64(f, "a.u32", &u) == 0 && u == 0xFFFFFFFFu, "%s: u32", what);
    CHECK(grok_gguf_get_i64(f, "a.i32", &i) == 0 && i == -2, "%s: i32", what);
    CHECK(grok_gguf_get_f64(f, "a.f32", &d) == 0 && d == -0.75, "%s: f32", what);
    CHECK(grok_gguf_get_bool(f, "a.bool", &bo) == 0 && !bo, "%s: bool", what);
    CHECK(grok_gguf_get_str(f, "a.str", &s, NULL) == 0 && strcmp(s, "grok") == 0, "%s: str", what);
    const uint16_t *a = grok_gguf_get_arr_data(f, "a.arr");
    CHECK(a && a[0] == 1 && a[1] == 2, "%s: arr", what);
    CHECK(grok_gguf_get_u64(f, "a.u64", &u) == 0 && u == 1ull << 40, "%s: u64", what);
    CHECK(grok_gguf_get_i64(f, "a.i64", &i) == 0 && i == -5, "%s: i64", what);
    CHECK(grok_gguf_get_f64(f, "a.f64", &d) == 0 && d == 2.5, "%s: f64", what);
    CHECK(grok_gguf_get_i64(f, "a.f64", &i) == -2, "%s: 2.5 as int", what);
    CHECK(grok_gguf_get_f64(f, "a.i64", &d) == 0 && d == -5.0, "%s: i64 as f64", what);
}

static void test_all_types_and_v2(void) {
    char err[GROK_ERR_SIZE];
    for (uint32_t version = 2; version <= 3; version++) {
        bb b = {0};
        bb_header(&b, version, 1, 13);
        bb_all_types(&b);
        bb_tensor(&b, "w", 2, (uint64_t[]){4, 2}, GROK_TYPE_F32, 0);
        bb_pad(&b, 32);
        bb_fill(&b, 32, 1);
        const char *path = tpath(version == 2 ? "v2.gguf" : "v3types.gguf");
        write_bytes(path, b.p, b.n);
        grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
        CHECK(f != NULL, "v%u open: %s", version, err);
        if (f) {
            CHECK(grok_gguf_version(f) == version, "version %u", grok_gguf_version(f));
            check_all_types(f, version == 2 ? "v2" : "v3");
            const grok_gguf_tensor *t = grok_gguf_find_tensor(f, "w");
            CHECK(t && t->nbytes == 32 && memcmp(t->data, b.p + b.n - 32, 32) == 0, "v%u tensor", version);
            if (version == 3) {
                /* Every type survives copy_kvs + write + read. */
                grok_gguf_writer *w = grok_gguf_writer_create();
                CHECK(grok_gguf_writer_copy_kvs(w, f) == 0, "copy_kvs");
                const char *p2 = tpath("v3types_copy.gguf");
                CHECK(grok_gguf_writer_write(w, p2, err, sizeof err) == 0, "write: %s", err);
                grok_gguf_writer_free(w);
                grok_gguf_file *f2 = grok_gguf_open(p2, err, sizeof err);
                CHECK(f2 != NULL, "open copy: %s", err);
                if (f2) check_all_types(f2, "v3 copy");
                grok_gguf_close(f2);
            }
            grok_gguf_close(f);
        }
        free(b.p);
    }
}

/* ---------------------------------------------------------------------
 * Splits
 * --------------------------------------------------------------------- */
static void test_split(void) {
    char err[GROK_ERR_SIZE];
    /* Six f32 tensors of 100 elements (400 bytes, 416 padded): two per
     * split of at most 1000 bytes, so three splits. */
    float *data[6];
    grok_gguf_writer *w = grok_gguf_writer_create();
    grok_gguf_writer *one = grok_gguf_writer_create();
    grok_gguf_writer_set_str(w, "general.architecture", "grok");
    grok_gguf_writer_set_str(one, "general.architecture", "grok");
    for (int i = 0; i < 6; i++) {
        data[i] = random_bytes(400);
        char name[32];
        snprintf(name, sizeof name, "blk.%d.w", i);
        int64_t ne[2] = {10, 10};
        grok_gguf_writer_add_tensor(w, name, GROK_TYPE_F32, 2, ne, data[i]);
        grok_gguf_writer_add_tensor(one, name, GROK_TYPE_F32, 2, ne, data[i]);
    }
    grok_gguf_writer_set_split_max_size(w, 1000);
    CHECK(grok_gguf_writer_write(w, tpath("sp.gguf"), err, sizeof err) == 0, "split write: %s", err);
    CHECK(grok_gguf_writer_write(one, tpath("sp_one.gguf"), err, sizeof err) == 0, "write: %s", err);
    CHECK(grok_gguf_writer_n_outputs(w) == 3, "3 outputs, got %d", grok_gguf_writer_n_outputs(w));
    CHECK(grok_gguf_writer_n_outputs(w) == 3 &&
              strcmp(grok_gguf_writer_output_path(w, 1), tpath("sp-00002-of-00003.gguf")) == 0,
          "split name %s", grok_gguf_writer_output_path(w, 1));
    grok_gguf_writer_free(w);
    grok_gguf_writer_free(one);

    /* Later splits carry only the three split keys. */
    size_t n;
    uint8_t *raw = read_bytes(tpath("sp-00002-of-00003.gguf"), &n);
    uint64_t n_kv = 0, n_t = 0;
    if (raw && n >= 24) memcpy(&n_t, raw + 8, 8), memcpy(&n_kv, raw + 16, 8);
    CHECK(n_kv == 3 && n_t == 2, "split 2 has 3 kvs (%" PRIu64 ") and 2 tensors", n_kv);
    free(raw);

    grok_gguf_file *ref = grok_gguf_open(tpath("sp_one.gguf"), err, sizeof err);
    const char *names[2] = {"sp-00001-of-00003.gguf", "sp-00003-of-00003.gguf"};
    for (int k = 0; k < 2; k++) {
        grok_gguf_file *f = grok_gguf_open(tpath(names[k]), err, sizeof err);
        CHECK(f != NULL, "open %s: %s", names[k], err);
        if (!f || !ref) continue;
        CHECK(grok_gguf_n_splits(f) == 3, "n_splits %d", grok_gguf_n_splits(f));
        CHECK(grok_gguf_n_tensors(f) == 6, "n_tensors %" PRId64, grok_gguf_n_tensors(f));
        int64_t i;
        CHECK(grok_gguf_get_i64(f, "split.count", &i) == 0 && i == 3, "split.count");
        CHECK(grok_gguf_kv_type(f, grok_gguf_find_kv(f, "split.count")) == GROK_GGUF_TYPE_UINT16 &&
                  grok_gguf_kv_type(f, grok_gguf_find_kv(f, "split.no")) == GROK_GGUF_TYPE_UINT16 &&
                  grok_gguf_kv_type(f, grok_gguf_find_kv(f, "split.tensors.count")) == GROK_GGUF_TYPE_INT32,
              "split key types as llama.cpp's gguf-split");
        const char *s;
        CHECK(grok_gguf_get_str(f, "general.architecture", &s, NULL) == 0, "kvs of the first split");
        for (int64_t t = 0; t < 6 && t < grok_gguf_n_tensors(f); t++) {
            const grok_gguf_tensor *a = grok_gguf_tensor_at(f, t), *b = grok_gguf_tensor_at(ref, t);
            CHECK(strcmp(a->name, b->name) == 0 && a->nbytes == b->nbytes &&
                      memcmp(a->data, b->data, a->nbytes) == 0 && a->split == t / 2,
                  "split tensor %" PRId64 " equals the single-file one (split %d)", t, a->split);
        }
        CHECK(grok_gguf_file_size(f) > grok_gguf_file_size(ref), "total size of splits");
        grok_gguf_close(f);
    }
    grok_gguf_close(ref);

    /* A tensor larger than the limit gets a split of its own. */
    w = grok_gguf_writer_create();
    float *big = random_bytes(4000);
    int64_t ne1[1] = {100}, ne2[1] = {1000};
    grok_gguf_writer_add_tensor(w, "a", GROK_TYPE_F32, 1, ne1, data[0]);
    grok_gguf_writer_add_tensor(w, "big", GROK_TYPE_F32, 1, ne2, big);
    grok_gguf_writer_add_tensor(w, "c", GROK_TYPE_F32, 1, ne1, data[1]);
    grok_gguf_writer_set_split_max_size(w, 1000);
    CHECK(grok_gguf_writer_write(w, tpath("big"), err, sizeof err) == 0, "write: %s", err);
    CHECK(grok_gguf_writer_n_outputs(w) == 3 &&
              strcmp(grok_gguf_writer_output_path(w, 2), tpath("big-00003-of-00003.gguf")) == 0,
          "big tensor alone: %d outputs", grok_gguf_writer_n_outputs(w));
    grok_gguf_writer_free(w);
    grok_gguf_file *f = grok_gguf_open(tpath("big-00002-of-00003.gguf"), err, sizeof err);
    CHECK(f && grok_gguf_find_tensor(f, "big") && grok_gguf_find_tensor(f, "big")->split == 1 &&
              memcmp(grok_gguf_find_tensor(f, "big")->data, big, 4000) == 0,
          "big split: %s", f ? "" : err);
    grok_gguf_close(f);
    free(big);

    /* A missing split is an error naming it. */
    unlink(tpath("sp-00003-of-00003.gguf"));
    f = grok_gguf_open(tpath("sp-00001-of-00003.gguf"), err, sizeof err);
    CHECK(!f && strstr(err, "sp-00003-of-00003.gguf"), "missing split: %s", err);
    grok_gguf_close(f);
    for (int i = 0; i < 6; i++) free(data[i]);
}

/* Hand-built split sets with inconsistent split keys. */
static void write_split(const char *prefix, int no, int count, int no_val, int count_val, int tcount_val,
                        bool with_keys) {
    bb b = {0};
    bb_header(&b, 3, 1, with_keys ? 3 : 0);
    if (with_keys) {
        bb_str(&b, "split.no"), bb_u32(&b, GROK_GGUF_TYPE_UINT16), bb_u16(&b, (uint16_t)no_val);
        bb_str(&b, "split.count"), bb_u32(&b, GROK_GGUF_TYPE_UINT16), bb_u16(&b, (uint16_t)count_val);
        bb_str(&b, "split.tensors.count"), bb_u32(&b, GROK_GGUF_TYPE_INT32);
        bb_u32(&b, (uint32_t)tcount_val);
    }
    char name[32];
    snprintf(name, sizeof name, "t%d", no);
    bb_tensor(&b, name, 1, (uint64_t[]){8}, GROK_TYPE_F32, 0);
    bb_pad(&b, 32);
    bb_fill(&b, 32, (uint8_t)no);
    char fname[256];
    snprintf(fname, sizeof fname, "%s-%05d-of-%05d.gguf", prefix, no + 1, count);
    write_bytes(tpath(fname), b.p, b.n);
    free(b.p);
}

static void expect_open_fail(const char *path, const char *const *words, const char *what) {
    char err[GROK_ERR_SIZE] = "";
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    CHECK(f == NULL, "%s: open must fail", what);
    grok_gguf_close(f);
    for (int i = 0; words[i]; i++)
        CHECK(strstr(err, words[i]) != NULL, "%s: message lacks '%s': %s", what, words[i], err);
    CHECK(strstr(err, "offset") != NULL, "%s: message lacks an offset: %s", what, err);
}

static void test_split_validation(void) {
    char err[GROK_ERR_SIZE];
    write_split("ok", 0, 2, 0, 2, 2, true);
    write_split("ok", 1, 2, 1, 2, 2, true);
    grok_gguf_file *f = grok_gguf_open(tpath("ok-00001-of-00002.gguf"), err, sizeof err);
    CHECK(f && grok_gguf_n_tensors(f) == 2, "hand-built split set: %s", f ? "" : err);
    grok_gguf_close(f);

    write_split("badno", 0, 2, 0, 2, 2, true);
    write_split("badno", 1, 2, 0, 2, 2, true);
    expect_open_fail(tpath("badno-00001-of-00002.gguf"),
                     (const char *[]){"badno-00002-of-00002.gguf", "split.no", "expected 1", NULL},
                     "wrong split.no");
    write_split("badcount", 0, 2, 0, 2, 2, true);
    write_split("badcount", 1, 2, 1, 3, 2, true);
    expect_open_fail(tpath("badcount-00001-of-00002.gguf"), (const char *[]){"split.count", "value 3", NULL},
                     "wrong split.count");
    write_split("badtc", 0, 2, 0, 2, 5, true);
    write_split("badtc", 1, 2, 1, 2, 5, true);
    expect_open_fail(tpath("badtc-00001-of-00002.gguf"),
                     (const char *[]){"split.tensors.count", "value 5", "expected 2", NULL},
                     "wrong split.tensors.count");
    write_split("nokeys", 0, 2, 0, 0, 0, false);
    write_split("nokeys", 1, 2, 0, 0, 0, false);
    expect_open_fail(tpath("nokeys-00001-of-00002.gguf"), (const char *[]){"split.count", NULL},
                     "split set without split keys");
    /* A lone file that says it is one of three. */
    write_split("lone", 0, 3, 0, 3, 3, true);
    rename(tpath("lone-00001-of-00003.gguf"), tpath("lone.gguf"));
    expect_open_fail(tpath("lone.gguf"), (const char *[]){"split.count", "expected 1", NULL}, "lone split");
    expect_open_fail(tpath("x-00003-of-00002.gguf"), (const char *[]){"split 3 of 2", NULL},
                     "split number out of range");
}

/* ---------------------------------------------------------------------
 * Malformed files
 * --------------------------------------------------------------------- */
typedef struct {
    const char *what;
    bb b;
    const char *words[4];
    size_t offset; /* expected offset in the message */
} bad_case;

static bad_case cases[64];
static int n_cases;

static bb *new_case(const char *what) {
    bad_case *c = &cases[n_cases++];
    memset(c, 0, sizeof *c);
    c->what = what;
    return &c->b;
}

static void expect(const char *w0, const char *w1, size_t offset) {
    bad_case *c = &cases[n_cases - 1];
    c->words[0] = w0;
    c->words[1] = w1;
    c->offset = offset;
}

/* A valid header with one f32 tensor of 8 elements after optional kvs is
 * the base most cases vary. */
static void finish_one_tensor(bb *b) {
    bb_tensor(b, "t", 1, (uint64_t[]){8}, GROK_TYPE_F32, 0);
    bb_pad(b, 32);
    bb_fill(b, 32, 3);
}

static void build_bad_cases(void) {
    bb *b;
    size_t at;
    b = new_case("bad magic");
    bb_put(b, "GGUG", 4), bb_u32(b, 3), bb_u64(b, 0), bb_u64(b, 0);
    expect("bad magic", NULL, 0);
    b = new_case("bad version");
    bb_header(b, 7, 0, 0);
    expect("version 7", NULL, 4);
    b = new_case("version 1");
    bb_header(b, 1, 0, 0);
    expect("version 1", NULL, 4);
    b = new_case("n_tensors too large");
    bb_header(b, 3, 1ull << 40, 0);
    expect("n_tensors", NULL, 8);
    b = new_case("n_tensors overflow");
    bb_header(b, 3, UINT64_MAX, 0);
    expect("n_tensors", NULL, 8);
    b = new_case("n_kv too large");
    bb_header(b, 3, 0, 1000);
    bb_kv_u32(b, "a", 1);
    expect("n_kv", NULL, 16);
    b = new_case("key length past the end");
    bb_header(b, 3, 0, 1);
    bb_u64(b, 1000), bb_put(b, "abcdefghijklmnop", 16);
    expect("key length", "past the end", 24);
    b = new_case("key length huge");
    bb_header(b, 3, 0, 1);
    bb_u64(b, UINT64_MAX - 3), bb_put(b, "abcdefghijklmnop", 16);
    expect("key length", NULL, 24);
    b = new_case("key length over the cap");
    bb_header(b, 3, 0, 1);
    bb_u64(b, 70000);
    for (int i = 0; i < 70000; i++) bb_u8(b, 'k');
    bb_u32(b, GROK_GGUF_TYPE_UINT8), bb_u8(b, 1);
    expect("kv 0", "key length 70000 > 65535", 24);
    b = new_case("empty key");
    bb_header(b, 3, 0, 1);
    bb_str(b, ""), bb_u32(b, GROK_GGUF_TYPE_UINT32), bb_u32(b, 1), bb_u64(b, 0);
    expect("empty key", NULL, 24);
    b = new_case("key with NUL");
    bb_header(b, 3, 0, 1);
    bb_u64(b, 3), bb_put(b, "a\0b", 3), bb_u32(b, GROK_GGUF_TYPE_UINT32), bb_u32(b, 1), bb_u64(b, 0);
    expect("NUL", NULL, 32);
    b = new_case("unknown kv type");
    bb_header(b, 3, 0, 1);
    bb_str(b, "k");
    at = b->n;
    bb_u32(b, 13), bb_u64(b, 0), bb_u64(b, 0);
    expect("kv 0 'k'", "unknown value type 13", at);
    b = new_case("string length past the end");
    bb_header(b, 3, 0, 1);
    bb_str(b, "k"), bb_u32(b, GROK_GGUF_TYPE_STRING);
    at = b->n;
    bb_u64(b, 1ull << 62), bb_put(b, "xyz", 3);
    expect("string length", "past the end", at);
    b = new_case("array length too large");
    bb_header(b, 3, 0, 1);
    bb_str(b, "arr"), bb_u32(b, GROK_GGUF_TYPE_ARRAY), bb_u32(b, GROK_GGUF_TYPE_UINT64);
    at = b->n;
    bb_u64(b, 1ull << 61), bb_u64(b, 1), bb_u64(b, 2);
    expect("kv 0 'arr'", "array length", at);
    b = new_case("string array element past the end");
    bb_header(b, 3, 0, 1);
    bb_str(b, "arr"), bb_u32(b, GROK_GGUF_TYPE_ARRAY), bb_u32(b, GROK_GGUF_TYPE_STRING), bb_u64(b, 2);
    bb_str(b, "ok");
    at = b->n;
    bb_u64(b, 100), bb_put(b, "short", 5);
    expect("array element 1 length", "past the end", at);
    b = new_case("unknown array element type");
    bb_header(b, 3, 0, 1);
    bb_str(b, "arr"), bb_u32(b, GROK_GGUF_TYPE_ARRAY);
    at = b->n;
    bb_u32(b, 99), bb_u64(b, 0), bb_u64(b, 0);
    expect("unknown array element type 99", NULL, at);
    b = new_case("nested array");
    bb_header(b, 3, 0, 1);
    bb_str(b, "arr"), bb_u32(b, GROK_GGUF_TYPE_ARRAY);
    at = b->n;
    bb_u32(b, GROK_GGUF_TYPE_ARRAY), bb_u64(b, 1), bb_u32(b, GROK_GGUF_TYPE_UINT8), bb_u64(b, 0);
    expect("nested array", NULL, at);
    b = new_case("bool value 2");
    bb_header(b, 3, 0, 1);
    bb_str(b, "flag"), bb_u32(b, GROK_GGUF_TYPE_BOOL);
    at = b->n;
    bb_u8(b, 2), bb_u64(b, 0);
    expect("bool value 2", NULL, at);
    b = new_case("duplicate key");
    bb_header(b, 3, 0, 2);
    bb_kv_u32(b, "dup", 1);
    at = b->n;
    bb_kv_u32(b, "dup", 2);
    expect("kv 1 'dup'", "duplicate key", at);
    b = new_case("alignment not a power of two");
    bb_header(b, 3, 1, 1);
    bb_str(b, "general.alignment"), bb_u32(b, GROK_GGUF_TYPE_UINT32);
    at = b->n;
    bb_u32(b, 48);
    finish_one_tensor(b);
    expect("general.alignment", "48 is not a power of two", at);
    b = new_case("alignment zero");
    bb_header(b, 3, 1, 1);
    bb_str(b, "general.alignment"), bb_u32(b, GROK_GGUF_TYPE_UINT32);
    at = b->n;
    bb_u32(b, 0);
    finish_one_tensor(b);
    expect("general.alignment", "alignment 0", at);
    b = new_case("alignment of the wrong type");
    bb_header(b, 3, 1, 1);
    bb_str(b, "general.alignment");
    at = b->n;
    bb_u32(b, GROK_GGUF_TYPE_UINT64), bb_u64(b, 32);
    finish_one_tensor(b);
    expect("general.alignment", "must be u32", at);
    b = new_case("tensor name 64 bytes");
    bb_header(b, 3, 1, 0);
    bb_tensor(b, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", 1, (uint64_t[]){8}, 0,
              0);
    bb_pad(b, 32), bb_fill(b, 32, 0);
    expect("tensor 0", "name length 64 > 63", 24);
    b = new_case("empty tensor name");
    bb_header(b, 3, 1, 0);
    bb_tensor(b, "", 1, (uint64_t[]){8}, 0, 0);
    bb_pad(b, 32), bb_fill(b, 32, 0);
    expect("tensor 0", "empty name", 24);
    b = new_case("n_dims 5");
    bb_header(b, 3, 1, 0);
    bb_str(b, "blk.0.attn_q.weight");
    at = b->n;
    bb_u32(b, 5);
    for (int i = 0; i < 5; i++) bb_u64(b, 1);
    bb_u32(b, 0), bb_u64(b, 0);
    expect("tensor 0 'blk.0.attn_q.weight'", "n_dims 5 > 4", at);
    b = new_case("n_dims 0");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t");
    at = b->n;
    bb_u32(b, 0), bb_u32(b, 0), bb_u64(b, 0), bb_u64(b, 0);
    expect("tensor 0 't'", "n_dims 0", at);
    b = new_case("zero dimension");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t"), bb_u32(b, 2), bb_u64(b, 8);
    at = b->n;
    bb_u64(b, 0), bb_u32(b, 0), bb_u64(b, 0);
    expect("tensor 0 't'", "ne[1] = 0", at);
    b = new_case("negative dimension");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t"), bb_u32(b, 1);
    at = b->n;
    bb_u64(b, (uint64_t)-8ll), bb_u32(b, 0), bb_u64(b, 0);
    expect("tensor 0 't'", "ne[0] = -8", at);
    b = new_case("element count overflow");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t"), bb_u32(b, 3), bb_u64(b, 1ull << 31), bb_u64(b, 1ull << 31);
    at = b->n;
    bb_u64(b, 1ull << 31), bb_u32(b, 0), bb_u64(b, 0);
    expect("ne[2]", "overflows", at);
    b = new_case("row not a multiple of the block size");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t"), bb_u32(b, 1), bb_u64(b, 33);
    at = b->n;
    bb_u32(b, GROK_TYPE_Q8_0), bb_u64(b, 0);
    bb_pad(b, 32), bb_fill(b, 64, 0);
    expect("ne[0] = 33", "block size 32", at);
    b = new_case("unknown tensor type");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t"), bb_u32(b, 1), bb_u64(b, 32);
    at = b->n;
    bb_u32(b, 4), bb_u64(b, 0);
    bb_pad(b, 32), bb_fill(b, 64, 0);
    expect("tensor 0 't'", "type 4 = q4_2 is not one this build knows (ggml removed it", at);
    b = new_case("tensor type past the table");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t"), bb_u32(b, 1), bb_u64(b, 32);
    at = b->n;
    bb_u32(b, 1000), bb_u64(b, 0);
    bb_pad(b, 32), bb_fill(b, 64, 0);
    expect("type 1000 is not one this build knows (newer than this build)", NULL, at);
    b = new_case("a ggml type newer than this build");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t"), bb_u32(b, 1), bb_u64(b, 32);
    at = b->n;
    bb_u32(b, 43), bb_u64(b, 0);
    bb_pad(b, 32), bb_fill(b, 64, 0);
    expect("tensor 0 't'", "type 43 is not one this build knows (newer than this build)", at);
    b = new_case("duplicate tensor name");
    bb_header(b, 3, 2, 0);
    bb_tensor(b, "same", 1, (uint64_t[]){8}, 0, 0);
    at = b->n;
    bb_tensor(b, "same", 1, (uint64_t[]){8}, 0, 32);
    bb_pad(b, 32), bb_fill(b, 64, 0);
    expect("tensor 1 'same'", "duplicate tensor name", at);
    b = new_case("offset not aligned");
    bb_header(b, 3, 2, 0);
    bb_tensor(b, "a", 1, (uint64_t[]){4}, 0, 0);
    at = bb_tensor(b, "b", 1, (uint64_t[]){4}, 0, 16);
    bb_pad(b, 32), bb_fill(b, 64, 0);
    expect("tensor 1 'b'", "offset 16 is not a multiple of the alignment 32", at);
    b = new_case("overlapping tensors");
    bb_header(b, 3, 2, 0);
    bb_tensor(b, "a", 1, (uint64_t[]){16}, 0, 0);
    at = bb_tensor(b, "b", 1, (uint64_t[]){16}, 0, 32);
    bb_pad(b, 32), bb_fill(b, 128, 0);
    expect("offset 32, expected 64", NULL, at);
    b = new_case("gap between tensors");
    bb_header(b, 3, 2, 0);
    bb_tensor(b, "a", 1, (uint64_t[]){4}, 0, 0);
    at = bb_tensor(b, "b", 1, (uint64_t[]){4}, 0, 64);
    bb_pad(b, 32), bb_fill(b, 96, 0);
    expect("offset 64, expected 32", NULL, at);
    b = new_case("out of order");
    bb_header(b, 3, 2, 0);
    at = bb_tensor(b, "a", 1, (uint64_t[]){8}, 0, 32);
    bb_tensor(b, "b", 1, (uint64_t[]){8}, 0, 0);
    bb_pad(b, 32), bb_fill(b, 64, 0);
    expect("tensor 0 'a'", "offset 32, expected 0", at);
    b = new_case("data past the end");
    bb_header(b, 3, 1, 0);
    at = bb_tensor(b, "t", 1, (uint64_t[]){16}, 0, 0);
    bb_pad(b, 32), bb_fill(b, 63, 0);
    expect("tensor 0 't'", "runs past the end", at);
    b = new_case("data bigger than the file");
    bb_header(b, 3, 1, 0);
    bb_str(b, "t"), bb_u32(b, 2), bb_u64(b, 1ull << 20), bb_u64(b, 1ull << 20);
    at = b->n;
    bb_u32(b, 0), bb_u64(b, 0);
    expect("cannot fit", NULL, at);
    b = new_case("truncated in the header");
    bb_put(b, "GGUF", 4), bb_u32(b, 3), bb_u32(b, 0);
    expect("n_tensors truncated", NULL, 8);
}

static void test_bad_files(void) {
    build_bad_cases();
    char err[GROK_ERR_SIZE];
    const char *path = tpath("bad.gguf");
    for (int i = 0; i < n_cases; i++) {
        bad_case *c = &cases[i];
        write_bytes(path, c->b.p, c->b.n);
        err[0] = 0;
        grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
        CHECK(f == NULL, "%s: open must fail", c->what);
        grok_gguf_close(f);
        CHECK(strncmp(err, path, strlen(path)) == 0, "%s: message names the file: %s", c->what, err);
        for (int k = 0; k < 4 && c->words[k]; k++)
            CHECK(strstr(err, c->words[k]) != NULL, "%s: message lacks '%s': %s", c->what, c->words[k], err);
        char off[48];
        snprintf(off, sizeof off, "at offset %zu", c->offset);
        CHECK(strstr(err, off) != NULL, "%s: message lacks '%s': %s", c->what, off, err);
        if (i < 3 || getenv("GROK_GGUF_TEST_VERBOSE")) printf("  %s -> %s\n", c->what, err);
        free(c->b.p);
    }
    printf("malformed corpus: %d files\n", n_cases);
}

/* ---------------------------------------------------------------------
 * Truncation sweep and fuzz
 * --------------------------------------------------------------------- */
/* A valid small file whose last tensor needs no padding, so every proper
 * prefix lacks bytes the format requires. */
static bb small_valid_file(void) {
    bb b = {0};
    bb_header(&b, 3, 2, 5);
    bb_kv_u32(&b, "general.alignment", 32);
    bb_str(&b, "name"), bb_u32(&b, GROK_GGUF_TYPE_STRING), bb_str(&b, "tiny");
    bb_str(&b, "toks"), bb_u32(&b, GROK_GGUF_TYPE_ARRAY), bb_u32(&b, GROK_GGUF_TYPE_STRING), bb_u64(&b, 3);
    bb_str(&b, "a"), bb_str(&b, ""), bb_str(&b, "ccc");
    bb_str(&b, "scores"), bb_u32(&b, GROK_GGUF_TYPE_ARRAY), bb_u32(&b, GROK_GGUF_TYPE_FLOAT32);
    bb_u64(&b, 3), bb_u32(&b, 0), bb_u32(&b, 0x3f800000), bb_u32(&b, 0x40000000);
    bb_str(&b, "ok"), bb_u32(&b, GROK_GGUF_TYPE_BOOL), bb_u8(&b, 1);
    bb_tensor(&b, "q", 2, (uint64_t[]){32, 1}, GROK_TYPE_Q8_0, 0);
    bb_tensor(&b, "f", 1, (uint64_t[]){8}, GROK_TYPE_F32, 64);
    bb_pad(&b, 32);
    bb_fill(&b, 34, 9);
    bb_pad(&b, 32);
    bb_fill(&b, 32, 5);
    return b;
}

static void test_truncation(void) {
    char err[GROK_ERR_SIZE];
    bb b = small_valid_file();
    const char *path = tpath("trunc.gguf");
    write_bytes(path, b.p, b.n);
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    CHECK(f != NULL && grok_gguf_n_tensors(f) == 2, "the full small file opens: %s", err);
    grok_gguf_close(f);
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        write_bytes(path, b.p, n);
        err[0] = 0;
        f = grok_gguf_open(path, err, sizeof err);
        if (f || !strstr(err, "at offset")) {
            if (bad++ < 5) fprintf(stderr, "prefix %zu: %s\n", n, f ? "opened" : err);
        }
        grok_gguf_close(f);
    }
    CHECK(bad == 0, "%d of %zu prefixes did not fail with an offset", bad, b.n);
    printf("truncation sweep: %zu prefixes\n", b.n);
    free(b.p);
}

static void test_fuzz(void) {
    char err[GROK_ERR_SIZE];
    bb b = small_valid_file();
    const char *path = tpath("fuzz.gguf");
    uint8_t *m = malloc(b.n);
    rng_state = 12345;
    int opened = 0, iters = 4000;
    uint64_t sink = 0;
    for (int it = 0; it < iters; it++) {
        memcpy(m, b.p, b.n);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++) {
            /* Mostly the header, where the structure is. */
            size_t pos = (size_t)(rnd() % (rnd() % 4 ? 200 : b.n));
            switch (rnd() % 4) {
            case 0: m[pos] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 1: m[pos] = (uint8_t)rnd(); break;
            case 2: m[pos] = 0xff; break;
            default: m[pos] = 0; break;
            }
        }
        size_t n = rnd() % 8 == 0 ? (size_t)(rnd() % b.n) : b.n;
        write_bytes(path, m, n);
        grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
        if (!f) continue;
        opened++;
        /* Touch everything an accepted file exposes. */
        for (int64_t i = 0; i < grok_gguf_n_kv(f); i++) {
            const char *key = grok_gguf_kv_key(f, i);
            uint64_t u, nn;
            grok_gguf_value_type et;
            const char *s;
            size_t len;
            grok_gguf_get_u64(f, key, &u);
            if (grok_gguf_get_str(f, key, &s, &len) == 0) sink += len + (uint8_t)s[len];
            if (grok_gguf_get_arr(f, key, &et, &nn) == 0) {
                if (et == GROK_GGUF_TYPE_STRING)
                    for (uint64_t j = 0; j < nn; j++) sink += grok_gguf_get_arr_str(f, key, j, &len)[len];
                else
                    for (uint64_t j = 0; j < nn; j++)
                        sink += ((const uint8_t *)grok_gguf_get_arr_data(f, key))[j];
            }
        }
        for (int64_t i = 0; i < grok_gguf_n_tensors(f); i++) {
            const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
            CHECK(t->offset + t->nbytes <= grok_gguf_file_size(f), "fuzz: tensor within the file");
            for (size_t j = 0; j < t->nbytes; j++) sink += ((const uint8_t *)t->data)[j];
        }
        grok_gguf_close(f);
    }
    printf("fuzz: %d mutations, %d still opened (checksum %" PRIu64 ")\n", iters, opened, sink);
    free(m);
    free(b.p);
}

/* Opening a 1 GiB file touches none of its data pages. */
static void test_open_is_header_only(void) {
    char err[GROK_ERR_SIZE];
    const uint64_t ne0 = 1ull << 28; /* f32: 1 GiB */
    bb b = {0};
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "huge", 1, &ne0, GROK_TYPE_F32, 0);
    bb_pad(&b, 32);
    const char *path = tpath("huge.gguf");
    write_bytes(path, b.p, b.n);
    if (truncate(path, (off_t)(b.n + (ne0 * 4))) != 0) {
        printf("SKIP large-file check: cannot make a sparse file: %s\n", strerror(errno));
        free(b.p);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(f != NULL, "open 1 GiB file: %s", err);
    if (f) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, 0);
        long page = sysconf(_SC_PAGESIZE);
        uintptr_t start = ((uintptr_t)t->data + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
        size_t len = ((uintptr_t)t->data + t->nbytes - start) / (size_t)page * (size_t)page;
        unsigned char *vec = malloc(len / (size_t)page + 1);
        size_t resident = 0;
        if (mincore((void *)start, len, vec) == 0) {
            for (size_t i = 0; i < len / (size_t)page; i++) resident += vec[i] & 1;
            CHECK(resident == 0, "%zu data pages were read by open", resident);
        }
        free(vec);
        printf("open of a 1 GiB file: %.3f ms, %zu data pages resident\n",
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6, resident);
        grok_gguf_close(f);
    }
    unlink(path);
    free(b.p);
}

int main(void) {
    const char *base = getenv("GROK_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", base && *base ? base : "/tmp/grok_test_gguf");
    for (char *q = tmpdir + 1; *q; q++) /* mkdir -p */
        if (*q == '/') {
            *q = 0;
            mkdir(tmpdir, 0755);
            *q = '/';
        }
    mkdir(tmpdir, 0755);
    make_tensor_data();
    test_roundtrip();
    test_alignment();
    test_writer_bytes();
    test_stream();
    test_add_tensor_checks();
    test_all_types_and_v2();
    test_split();
    test_split_validation();
    test_bad_files();
    test_truncation();
    test_fuzz();
    test_open_is_header_only();
    for (size_t i = 0; i < N_TS; i++) free(TS[i].data);
    return check_summary("test_gguf");
}
