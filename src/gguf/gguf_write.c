/*
 * gguf_write.c - the GGUF writer: collects kvs and tensor infos, then
 * writes GGUF v3 files either in one call or streamed tensor by tensor (so
 * a converter can produce a file far larger than memory). With a split
 * size it writes llama.cpp's gguf-split layout: NAME-0000i-of-0000N.gguf,
 * every split with split.no (u16, 0-based), split.count (u16) and
 * split.tensors.count (i32), the first split with all other kvs too.
 *
 * Every output goes to "<name>.tmp.<pid>" beside the target, is fsync'ed,
 * and is renamed only when the last byte of the last split has arrived,
 * so an error or an abandoned stream never leaves a file under a real
 * name; temporary files are removed on failure and by grok_gguf_writer_free.
 * The whole-file write is the streamed write fed from the tensors' own
 * pointers, so the two produce the same bytes by construction.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf_internal.h"
#include "util/buf.h"

#define OUT_BUF_SIZE (1u << 20)
/* Written bytes are handed to the disk every this many (Linux), so that
 * the disk works while the caller produces more and the final fsync finds
 * less left to do: for `grok convert` the fsync of the whole output at the
 * end was ~0.2 s of a ~0.5 s conversion of a 300 MB checkpoint. */
#define WRITEBACK_CHUNK (UINT64_C(8) << 20)

typedef struct {
    char name[GROK_GGUF_MAX_NAME + 1];
    uint32_t type;
    int32_t n_dims;
    int64_t ne[GROK_GGUF_MAX_DIMS];
    uint64_t nbytes;
    const void *data; /* not owned; may be NULL when streaming */
} wtensor;

/* One file to produce: tensors [first, first + count). */
typedef struct {
    char *path;
    char *tmp;
    int64_t first;
    int64_t count;
} woutput;

struct grok_gguf_writer {
    grok_gguf_kv *kvs;
    int64_t n_kv, cap_kv;
    wtensor *tensors;
    int64_t n_tensors, cap_tensors;
    uint64_t split_max;
    uint64_t bad_alignment; /* an invalid set_alignment, reported at write time */

    woutput *outs;
    int32_t n_outs;
    bool streaming; /* between begin and finish */
    bool done;      /* the last finish succeeded: outs name real files */
    uint64_t alignment;
    int fd;
    int32_t cur_out;
    int64_t cur_tensor;
    uint64_t cur_done; /* bytes of cur_tensor written so far */
    uint8_t *buf;
    size_t buf_n;
    uint64_t written;   /* bytes written to fd */
    uint64_t submitted; /* of those, handed to writeback */
};

/* ---------------------------------------------------------------------
 * kvs
 * --------------------------------------------------------------------- */
grok_gguf_writer *grok_gguf_writer_create(void) {
    grok_gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->fd = -1;
    return w;
}

static int64_t find_kv(const grok_gguf_writer *w, const char *key) {
    for (int64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) return i;
    return -1;
}

static bool key_ok(const char *key) {
    if (!key) return false;
    size_t n = strlen(key);
    return n > 0 && n <= GROK_GGUF_MAX_KEY;
}

/* Stores v (whose owned parts move into w) under key, replacing an
 * earlier value in place. On failure v is released. */
static int put_kv(grok_gguf_writer *w, const char *key, grok_gguf_kv *v) {
    int64_t i = find_kv(w, key);
    if (i >= 0) {
        grok_gguf_kv *kv = &w->kvs[i];
        char *k = kv->key;
        size_t klen = kv->key_len;
        kv->key = NULL;
        grok_gguf_kv_clear(kv);
        *kv = *v;
        kv->key = k;
        kv->key_len = klen;
        return 0;
    }
    if (w->n_kv == w->cap_kv) {
        int64_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        grok_gguf_kv *kvs = realloc(w->kvs, (size_t)cap * sizeof *kvs);
        if (!kvs) goto fail;
        w->kvs = kvs;
        w->cap_kv = cap;
    }
    v->key_len = strlen(key);
    v->key = malloc(v->key_len + 1);
    if (!v->key) goto fail;
    memcpy(v->key, key, v->key_len + 1);
    w->kvs[w->n_kv++] = *v;
    return 0;
fail:
    grok_gguf_kv_clear(v);
    return -1;
}

#define SET_SCALAR(fn, ctype, gtype, field)                 \
    int fn(grok_gguf_writer *w, const char *key, ctype x) { \
        if (!w || !key_ok(key)) return -1;                  \
        grok_gguf_kv v = {.type = gtype};                   \
        v.v.field = x;                                      \
        return put_kv(w, key, &v);                          \
    }

SET_SCALAR(grok_gguf_writer_set_u8, uint8_t, GROK_GGUF_TYPE_UINT8, u8)
SET_SCALAR(grok_gguf_writer_set_u32, uint32_t, GROK_GGUF_TYPE_UINT32, u32)
SET_SCALAR(grok_gguf_writer_set_i32, int32_t, GROK_GGUF_TYPE_INT32, i32)
SET_SCALAR(grok_gguf_writer_set_u64, uint64_t, GROK_GGUF_TYPE_UINT64, u64)
SET_SCALAR(grok_gguf_writer_set_f32, float, GROK_GGUF_TYPE_FLOAT32, f32)
SET_SCALAR(grok_gguf_writer_set_bool, bool, GROK_GGUF_TYPE_BOOL, b)

int grok_gguf_writer_set_str(grok_gguf_writer *w, const char *key, const char *s) {
    if (!w || !key_ok(key) || !s) return -1;
    grok_gguf_kv v = {.type = GROK_GGUF_TYPE_STRING};
    v.str_len = strlen(s);
    v.str = malloc(v.str_len + 1);
    if (!v.str) return -1;
    memcpy(v.str, s, v.str_len + 1);
    return put_kv(w, key, &v);
}

int grok_gguf_writer_set_arr(grok_gguf_writer *w, const char *key, grok_gguf_value_type elem_type,
                             const void *data, uint64_t n) {
    size_t esz = grok_gguf_scalar_size(elem_type);
    if (!w || !key_ok(key) || esz == 0 || (n > 0 && !data) || n > SIZE_MAX / esz) return -1;
    grok_gguf_kv v = {.type = GROK_GGUF_TYPE_ARRAY, .arr_type = elem_type, .arr_n = n};
    size_t bytes = (size_t)n * esz;
    if (elem_type == GROK_GGUF_TYPE_BOOL)
        for (size_t i = 0; i < bytes; i++)
            if (((const uint8_t *)data)[i] > 1) return -1;
    /* Reuse the reader's copy so the array gets the same aligned storage. */
    grok_gguf_kv src = v;
    src.arr_data = (void *)data;
    src.key = "";
    if (grok_gguf_kv_copy(&v, &src) != 0) return -1;
    free(v.key);
    v.key = NULL;
    return put_kv(w, key, &v);
}

int grok_gguf_writer_set_arr_str(grok_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (!w || !key_ok(key) || (n > 0 && !strs) || n > SIZE_MAX / sizeof(grok_gguf_str)) return -1;
    grok_gguf_str *tmp = malloc(n ? (size_t)n * sizeof *tmp : 1);
    if (!tmp) return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            free(tmp);
            return -1;
        }
        tmp[i] = (grok_gguf_str){strs[i], strlen(strs[i])};
    }
    grok_gguf_kv src = {.type = GROK_GGUF_TYPE_ARRAY,
                        .arr_type = GROK_GGUF_TYPE_STRING,
                        .arr_n = n,
                        .arr_strs = tmp,
                        .key = ""};
    grok_gguf_kv v;
    int rc = grok_gguf_kv_copy(&v, &src);
    free(tmp);
    if (rc != 0) return -1;
    free(v.key);
    v.key = NULL;
    return put_kv(w, key, &v);
}

int grok_gguf_writer_copy_kvs(grok_gguf_writer *w, const grok_gguf_file *f) {
    if (!w || !f) return -1;
    for (int64_t i = 0; i < grok_gguf_n_kv(f); i++) {
        const grok_gguf_kv *kv = grok_gguf_kv_at(f, i);
        if (strncmp(kv->key, "split.", 6) == 0 || find_kv(w, kv->key) >= 0) continue;
        grok_gguf_kv v;
        if (grok_gguf_kv_copy(&v, kv) != 0) return -1;
        char *k = v.key;
        v.key = NULL;
        int rc = put_kv(w, k, &v);
        free(k);
        if (rc != 0) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * tensors and layout
 * --------------------------------------------------------------------- */
int64_t grok_gguf_writer_add_tensor(grok_gguf_writer *w, const char *name, grok_type type, int32_t n_dims,
                                    const int64_t *ne, const void *data) {
    if (!w || w->streaming || !name || !ne || n_dims < 1 || n_dims > GROK_GGUF_MAX_DIMS) return -1;
    size_t len = strlen(name);
    const grok_type_traits *tr = grok_type_get_traits((uint32_t)type);
    if (len == 0 || len > GROK_GGUF_MAX_NAME || !tr) return -1;
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return -1;
    int64_t nel = 1;
    for (int32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || nel > INT64_MAX / ne[d]) return -1;
        nel *= ne[d];
    }
    int64_t row = grok_type_row_size((uint32_t)type, ne[0]);
    if (row < 0 || row > INT64_MAX / (nel / ne[0])) return -1;
    if (w->n_tensors == w->cap_tensors) {
        int64_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *ts = realloc(w->tensors, (size_t)cap * sizeof *ts);
        if (!ts) return -1;
        w->tensors = ts;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, len + 1);
    t->type = (uint32_t)type;
    t->n_dims = n_dims;
    for (int d = 0; d < GROK_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->nbytes = (uint64_t)(row * (nel / ne[0]));
    t->data = data;
    return w->n_tensors++;
}

void grok_gguf_writer_set_split_max_size(grok_gguf_writer *w, uint64_t max_bytes) {
    if (w) w->split_max = max_bytes;
}

void grok_gguf_writer_set_alignment(grok_gguf_writer *w, uint64_t alignment) {
    if (!w) return;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > UINT32_MAX) {
        w->bad_alignment = alignment ? alignment : UINT64_MAX;
        return;
    }
    w->bad_alignment = 0;
    /* The key is what tells readers the alignment, so it is the setting. */
    grok_gguf_writer_set_u32(w, "general.alignment", (uint32_t)alignment);
}

int32_t grok_gguf_writer_n_outputs(const grok_gguf_writer *w) { return w && w->done ? w->n_outs : 0; }

const char *grok_gguf_writer_output_path(const grok_gguf_writer *w, int32_t i) {
    return w && w->done && i >= 0 && i < w->n_outs ? w->outs[i].path : NULL;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static void free_outs(grok_gguf_writer *w) {
    for (int32_t i = 0; i < w->n_outs; i++) {
        free(w->outs[i].path);
        free(w->outs[i].tmp);
    }
    free(w->outs);
    w->outs = NULL;
    w->n_outs = 0;
}

/* Splits tensors into outputs (each output's padded data <= split_max
 * when a tensor allows it) and names them. */
static int plan(grok_gguf_writer *w, const char *path, char *err, size_t err_size) {
    free_outs(w);
    w->done = false;
    int64_t n = 1;
    uint64_t cur = 0;
    for (int64_t i = 0, in_cur = 0; i < w->n_tensors; i++, in_cur++) {
        uint64_t sz = pad_to(w->tensors[i].nbytes, w->alignment);
        if (w->split_max && in_cur > 0 && cur + sz > w->split_max) {
            n++;
            cur = 0;
            in_cur = 0;
        }
        cur += sz;
    }
    if (n > 65535) {
        snprintf(err, err_size, "%s: %" PRId64 " splits needed, at most 65535 (split.count is u16)", path, n);
        return -1;
    }
    w->outs = calloc((size_t)n, sizeof *w->outs);
    if (!w->outs) goto oom;
    w->n_outs = (int32_t)n;
    size_t plen = strlen(path);
    if (plen >= 5 && strcmp(path + plen - 5, ".gguf") == 0) plen -= 5;
    char *base = strndup(path, plen);
    if (!base) goto oom;
    cur = 0;
    int32_t o = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        uint64_t sz = pad_to(w->tensors[i].nbytes, w->alignment);
        if (w->split_max && w->outs[o].count > 0 && cur + sz > w->split_max) {
            o++;
            w->outs[o].first = i;
            cur = 0;
        }
        w->outs[o].count++;
        cur += sz;
    }
    pid_t pid = getpid();
    for (int32_t i = 0; i < w->n_outs; i++) {
        woutput *out = &w->outs[i];
        if (n == 1)
            out->path = strdup(path);
        else if (asprintf(&out->path, "%s-%05d-of-%05d.gguf", base, i + 1, (int)n) < 0)
            out->path = NULL;
        if (!out->path) break;
        if (asprintf(&out->tmp, "%s.tmp.%d", out->path, (int)pid) < 0) {
            out->tmp = NULL;
            break;
        }
    }
    free(base);
    if (!w->outs[w->n_outs - 1].tmp) goto oom;
    return 0;
oom:
    snprintf(err, err_size, "%s: out of memory", path);
    free_outs(w);
    return -1;
}

/* ---------------------------------------------------------------------
 * serialization
 * --------------------------------------------------------------------- */
/* The header is built in a grok_strbuf (binary: its NUL terminator is
 * never written out). */
static void put(grok_strbuf *b, const void *data, size_t n) { grok_strbuf_add(b, (const char *)data, n); }

static void put_u32(grok_strbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(grok_strbuf *b, uint64_t v) { put(b, &v, 8); }

static void put_str(grok_strbuf *b, const char *s, size_t len) {
    put_u64(b, len);
    put(b, s, len);
}

static void put_kv_bytes(grok_strbuf *b, const grok_gguf_kv *kv) {
    put_str(b, kv->key, kv->key_len);
    put_u32(b, (uint32_t)kv->type);
    if (kv->type == GROK_GGUF_TYPE_BOOL) {
        uint8_t v = kv->v.b ? 1 : 0;
        put(b, &v, 1);
    } else if (kv->type == GROK_GGUF_TYPE_STRING) {
        put_str(b, kv->str, kv->str_len);
    } else if (kv->type == GROK_GGUF_TYPE_ARRAY) {
        put_u32(b, (uint32_t)kv->arr_type);
        put_u64(b, kv->arr_n);
        if (kv->arr_type == GROK_GGUF_TYPE_STRING)
            for (uint64_t i = 0; i < kv->arr_n; i++) put_str(b, kv->arr_strs[i].p, kv->arr_strs[i].len);
        else
            put(b, kv->arr_data, (size_t)kv->arr_n * grok_gguf_scalar_size(kv->arr_type));
    } else {
        put(b, &kv->v, grok_gguf_scalar_size(kv->type));
    }
}

/* The header of output o, padded to the alignment. */
static int build_header(const grok_gguf_writer *w, int32_t o, grok_strbuf *b) {
    const woutput *out = &w->outs[o];
    bool split = w->n_outs > 1;
    put(b, GROK_GGUF_MAGIC, 4);
    put_u32(b, 3);
    put_u64(b, (uint64_t)out->count);
    put_u64(b, 0); /* n_kv, patched below */
    uint64_t n_kv = 0;
    for (int64_t i = 0; i < w->n_kv; i++) {
        const grok_gguf_kv *kv = &w->kvs[i];
        /* Ours replace any split keys the caller set; later splits carry
         * only the split keys and the alignment they need to be read. */
        if (split && strncmp(kv->key, "split.", 6) == 0) continue;
        if (o > 0 && strcmp(kv->key, "general.alignment") != 0) continue;
        put_kv_bytes(b, kv);
        n_kv++;
    }
    if (split) {
        grok_gguf_kv k = {.key = "split.no", .key_len = 8, .type = GROK_GGUF_TYPE_UINT16};
        k.v.u16 = (uint16_t)o;
        put_kv_bytes(b, &k);
        k = (grok_gguf_kv){.key = "split.count", .key_len = 11, .type = GROK_GGUF_TYPE_UINT16};
        k.v.u16 = (uint16_t)w->n_outs;
        put_kv_bytes(b, &k);
        k = (grok_gguf_kv){.key = "split.tensors.count", .key_len = 19, .type = GROK_GGUF_TYPE_INT32};
        k.v.i32 = (int32_t)w->n_tensors;
        put_kv_bytes(b, &k);
        n_kv += 3;
    }
    uint64_t offset = 0;
    for (int64_t i = out->first; i < out->first + out->count; i++) {
        const wtensor *t = &w->tensors[i];
        put_str(b, t->name, strlen(t->name));
        put_u32(b, (uint32_t)t->n_dims);
        for (int32_t d = 0; d < t->n_dims; d++) put_u64(b, (uint64_t)t->ne[d]);
        put_u32(b, t->type);
        put_u64(b, offset);
        offset += pad_to(t->nbytes, w->alignment);
    }
    static const uint8_t zeros[64];
    uint64_t pad = pad_to(b->n, w->alignment) - b->n;
    while (pad > 0) {
        size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        put(b, zeros, k);
        pad -= k;
    }
    if (b->oom) return -1;
    memcpy(b->a + 16, &n_kv, 8);
    return 0;
}

/* ---------------------------------------------------------------------
 * output files
 * --------------------------------------------------------------------- */
static int write_all(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int io_fail(grok_gguf_writer *w, const char *what, char *err, size_t err_size) {
    const char *p = w->cur_out < w->n_outs ? w->outs[w->cur_out].tmp : "?";
    snprintf(err, err_size, "%s: %s: %s", p, what, strerror(errno));
    return -1;
}

/* write_all plus early writeback: starting the disk writes as the data
 * arrives overlaps them with the rest of the work. Advisory only: an I/O
 * error still surfaces at the final fsync. */
static int write_out(grok_gguf_writer *w, const void *data, size_t n) {
    if (write_all(w->fd, data, n) != 0) return -1;
    w->written += n;
#ifdef __linux__
    if (w->written - w->submitted >= WRITEBACK_CHUNK) {
        (void)sync_file_range(w->fd, (off_t)w->submitted, (off_t)(w->written - w->submitted),
                              SYNC_FILE_RANGE_WRITE);
        w->submitted = w->written;
    }
#endif
    return 0;
}

static int flush_buf(grok_gguf_writer *w, char *err, size_t err_size) {
    if (w->buf_n && write_out(w, w->buf, w->buf_n) != 0) return io_fail(w, "write failed", err, err_size);
    w->buf_n = 0;
    return 0;
}

static int out_bytes(grok_gguf_writer *w, const void *data, size_t n, char *err, size_t err_size) {
    if (w->buf_n + n <= OUT_BUF_SIZE) {
        memcpy(w->buf + w->buf_n, data, n);
        w->buf_n += n;
        return 0;
    }
    if (flush_buf(w, err, err_size) != 0) return -1;
    if (n >= OUT_BUF_SIZE) {
        if (write_out(w, data, n) != 0) return io_fail(w, "write failed", err, err_size);
        return 0;
    }
    memcpy(w->buf, data, n);
    w->buf_n = n;
    return 0;
}

static int open_out(grok_gguf_writer *w, int32_t o, char *err, size_t err_size) {
    w->cur_out = o;
    w->fd = open(w->outs[o].tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) return io_fail(w, "cannot create", err, err_size);
    w->written = w->submitted = 0;
    grok_strbuf b = {0};
    if (build_header(w, o, &b) != 0) {
        free(b.a);
        snprintf(err, err_size, "%s: out of memory for the header", w->outs[o].path);
        return -1;
    }
    int rc = out_bytes(w, b.a, b.n, err, err_size);
    free(b.a);
    return rc;
}

static int close_out(grok_gguf_writer *w, char *err, size_t err_size) {
    if (flush_buf(w, err, err_size) != 0) return -1;
    if (fsync(w->fd) != 0) return io_fail(w, "fsync failed", err, err_size);
    int rc = close(w->fd);
    w->fd = -1;
    if (rc != 0) return io_fail(w, "close failed", err, err_size);
    return 0;
}

/* Ends a stream that will not complete: no temporary file survives. */
static void abort_stream(grok_gguf_writer *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    for (int32_t i = 0; i < w->n_outs; i++)
        if (w->outs[i].tmp) unlink(w->outs[i].tmp);
    w->streaming = false;
    free(w->buf);
    w->buf = NULL;
    w->buf_n = 0;
}

int grok_gguf_writer_begin(grok_gguf_writer *w, const char *path, char *err, size_t err_size) {
    char dummy[GROK_ERR_SIZE];
    if (!err || err_size == 0) {
        err = dummy;
        err_size = sizeof dummy;
    }
    if (!w || !path) {
        snprintf(err, err_size, "grok_gguf_writer_begin: no writer or path");
        return -1;
    }
    if (w->streaming) {
        snprintf(err, err_size, "%s: a stream is already open", path);
        return -1;
    }
    if (w->bad_alignment) {
        snprintf(err, err_size, "%s: alignment %" PRIu64 " is not a power of two <= 2^31", path,
                 w->bad_alignment);
        return -1;
    }
    w->alignment = GROK_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = find_kv(w, "general.alignment");
    if (ai >= 0) {
        const grok_gguf_kv *kv = &w->kvs[ai];
        if (kv->type != GROK_GGUF_TYPE_UINT32 || kv->v.u32 == 0 || (kv->v.u32 & (kv->v.u32 - 1))) {
            snprintf(err, err_size, "%s: kv 'general.alignment' must be a u32 power of two", path);
            return -1;
        }
        w->alignment = kv->v.u32;
    }
    if (w->n_tensors > INT32_MAX) {
        snprintf(err, err_size, "%s: %" PRId64 " tensors, at most 2^31-1", path, w->n_tensors);
        return -1;
    }
    if (plan(w, path, err, err_size) != 0) return -1;
    w->buf = malloc(OUT_BUF_SIZE);
    if (!w->buf) {
        snprintf(err, err_size, "%s: out of memory", path);
        return -1;
    }
    w->streaming = true;
    w->cur_tensor = 0;
    w->cur_done = 0;
    if (open_out(w, 0, err, err_size) != 0) {
        abort_stream(w);
        return -1;
    }
    return 0;
}

int grok_gguf_writer_write_data(grok_gguf_writer *w, const void *data, size_t n, char *err, size_t err_size) {
    char dummy[GROK_ERR_SIZE];
    if (!err || err_size == 0) {
        err = dummy;
        err_size = sizeof dummy;
    }
    if (!w || !w->streaming) {
        snprintf(err, err_size, "grok_gguf_writer_write_data: no stream open");
        return -1;
    }
    if (n > 0 && !data) {
        snprintf(err, err_size, "grok_gguf_writer_write_data: NULL data");
        abort_stream(w);
        return -1;
    }
    static const uint8_t zeros[64];
    const uint8_t *p = data;
    while (n > 0) {
        if (w->cur_tensor >= w->n_tensors) {
            snprintf(err, err_size, "%s: %zu bytes more than the tensors hold", w->outs[w->cur_out].path, n);
            abort_stream(w);
            return -1;
        }
        const woutput *out = &w->outs[w->cur_out];
        if (w->cur_tensor >= out->first + out->count) {
            if (close_out(w, err, err_size) != 0 || open_out(w, w->cur_out + 1, err, err_size) != 0) {
                abort_stream(w);
                return -1;
            }
        }
        const wtensor *t = &w->tensors[w->cur_tensor];
        uint64_t room = t->nbytes - w->cur_done;
        size_t k = n < room ? n : (size_t)room;
        if (out_bytes(w, p, k, err, err_size) != 0) {
            abort_stream(w);
            return -1;
        }
        p += k;
        n -= k;
        w->cur_done += k;
        if (w->cur_done == t->nbytes) {
            uint64_t pad = pad_to(t->nbytes, w->alignment) - t->nbytes;
            while (pad > 0) {
                size_t z = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
                if (out_bytes(w, zeros, z, err, err_size) != 0) {
                    abort_stream(w);
                    return -1;
                }
                pad -= z;
            }
            w->cur_tensor++;
            w->cur_done = 0;
        }
    }
    return 0;
}

int grok_gguf_writer_finish(grok_gguf_writer *w, char *err, size_t err_size) {
    char dummy[GROK_ERR_SIZE];
    if (!err || err_size == 0) {
        err = dummy;
        err_size = sizeof dummy;
    }
    if (!w || !w->streaming) {
        snprintf(err, err_size, "grok_gguf_writer_finish: no stream open");
        return -1;
    }
    if (w->cur_tensor < w->n_tensors) {
        const wtensor *t = &w->tensors[w->cur_tensor];
        snprintf(err, err_size,
                 "%s: tensor %" PRId64 " '%s': %" PRIu64 " of %" PRIu64 " bytes written; %" PRId64
                 " tensors incomplete",
                 w->outs[w->cur_out].path, w->cur_tensor, t->name, w->cur_done, t->nbytes,
                 w->n_tensors - w->cur_tensor);
        abort_stream(w);
        return -1;
    }
    if (close_out(w, err, err_size) != 0) {
        abort_stream(w);
        return -1;
    }
    for (int32_t i = 0; i < w->n_outs; i++) {
        if (rename(w->outs[i].tmp, w->outs[i].path) != 0) {
            snprintf(err, err_size, "%s: cannot rename to %s: %s", w->outs[i].tmp, w->outs[i].path,
                     strerror(errno));
            abort_stream(w); /* removes the temporaries not yet renamed */
            return -1;
        }
    }
    /* Make the renames durable too. */
    char *dir = strdup(w->outs[0].path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    w->streaming = false;
    w->done = true;
    free(w->buf);
    w->buf = NULL;
    return 0;
}

int grok_gguf_writer_write(grok_gguf_writer *w, const char *path, char *err, size_t err_size) {
    char dummy[GROK_ERR_SIZE];
    if (!err || err_size == 0) {
        err = dummy;
        err_size = sizeof dummy;
    }
    if (!w) {
        snprintf(err, err_size, "grok_gguf_writer_write: no writer");
        return -1;
    }
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (!w->tensors[i].data) {
            snprintf(err, err_size, "%s: tensor %" PRId64 " '%s': no data given", path ? path : "?", i,
                     w->tensors[i].name);
            return -1;
        }
    if (grok_gguf_writer_begin(w, path, err, err_size) != 0) return -1;
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (grok_gguf_writer_write_data(w, w->tensors[i].data, (size_t)w->tensors[i].nbytes, err, err_size) !=
            0)
            return -1;
    return grok_gguf_writer_finish(w, err, err_size);
}

void grok_gguf_writer_free(grok_gguf_writer *w) {
    if (!w) return;
    if (w->streaming) abort_stream(w);
    free(w->buf);
    free_outs(w);
    for (int64_t i = 0; i < w->n_kv; i++) grok_gguf_kv_clear(&w->kvs[i]);
    free(w->kvs);
    free(w->tensors);
    free(w);
}
