/*
 * imatrix.c - importance matrices: for every weight matrix, and for each
 * expert of a stacked expert tensor, the sum over the rows it read of the
 * squared input per column, and how many rows that was. Their ratio, the
 * mean squared activation per input column, is the weight a quantizer gives
 * each column's error (llama-imatrix's definition), and the row counts of
 * an expert tensor are how often the router chose each expert.
 *
 * Files move both ways with llama.cpp: its GGUF layout (general.type
 * "imatrix"; per weight "<name>.in_sum2" f32 [n_cols][n_mat] of raw sums
 * and "<name>.counts" f32 [1][n_mat]; imatrix.datasets, .chunk_count,
 * .chunk_size) and the legacy .dat layout (per entry the mean times the
 * number of chunks, with one count in chunks), which loses the per-expert
 * counts; reading one back multiplies by the chunk size, as llama.cpp does.
 * Sums are kept in double here so that long runs do not lose the small
 * terms; files hold f32.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grok.h"
#include "util/file.h"

typedef struct {
    char name[GROK_GGUF_MAX_NAME + 1];
    int64_t n_cols, n_mat; /* sums: [n_mat][n_cols] */
    double *sums;
    int64_t *counts; /* [n_counts]: n_mat, or 1 for a dense matrix or a legacy entry */
    int64_t n_counts;
} imx_entry;

struct grok_imatrix {
    imx_entry *e;
    int64_t n, cap;
    char **datasets;
    int64_t n_datasets;
    int64_t chunk_size, chunk_count;
    char bad[160]; /* the first non-finite input seen, or "" */
};

grok_imatrix *grok_imatrix_create(int64_t chunk_size) {
    grok_imatrix *im = calloc(1, sizeof *im);
    if (im) im->chunk_size = chunk_size > 0 ? chunk_size : 512;
    return im;
}

void grok_imatrix_free(grok_imatrix *im) {
    if (!im) return;
    for (int64_t i = 0; i < im->n; i++) free(im->e[i].sums), free(im->e[i].counts);
    for (int64_t i = 0; i < im->n_datasets; i++) free(im->datasets[i]);
    free(im->datasets);
    free(im->e);
    free(im);
}

int64_t grok_imatrix_n_entries(const grok_imatrix *im) { return im->n; }
int64_t grok_imatrix_chunk_count(const grok_imatrix *im) { return im->chunk_count; }
int64_t grok_imatrix_chunk_size(const grok_imatrix *im) { return im->chunk_size; }
void grok_imatrix_add_chunks(grok_imatrix *im, int64_t n) { im->chunk_count += n; }
const char *grok_imatrix_error(const grok_imatrix *im) { return im->bad[0] ? im->bad : NULL; }
const char *grok_imatrix_dataset(const grok_imatrix *im) {
    return im->n_datasets ? im->datasets[im->n_datasets - 1] : NULL;
}

int grok_imatrix_add_dataset(grok_imatrix *im, const char *name) {
    char **d = realloc(im->datasets, (size_t)(im->n_datasets + 1) * sizeof *d);
    if (!d) return -1;
    im->datasets = d;
    if (!(d[im->n_datasets] = strdup(name))) return -1;
    im->n_datasets++;
    return 0;
}

static imx_entry *find(const grok_imatrix *im, const char *name) {
    for (int64_t i = 0; i < im->n; i++)
        if (strcmp(im->e[i].name, name) == 0) return &im->e[i];
    return NULL;
}

/* The entry for name, created empty with that shape; NULL with err when
 * the name is too long, memory runs out or the shape disagrees. */
static imx_entry *entry(grok_imatrix *im, const char *name, int64_t n_cols, int64_t n_mat, int64_t n_counts,
                        char *err, size_t err_size) {
    imx_entry *e = find(im, name);
    if (e) {
        if (e->n_mat == 1 && n_mat > 1 && e->n_cols == n_cols * n_mat) {
            e->n_cols = n_cols, e->n_mat = n_mat; /* a legacy entry keeps the experts in one row */
        } else if (!(e->n_cols == n_cols && e->n_mat == n_mat) &&
                   !(n_mat == 1 && n_cols == e->n_cols * e->n_mat)) {
            snprintf(err, err_size,
                     "%s: %" PRId64 " x %" PRId64 " values here, %" PRId64 " x %" PRId64 " before", name,
                     n_mat, n_cols, e->n_mat, e->n_cols);
            return NULL;
        }
        if (e->n_counts == 1 && n_counts > 1) { /* broadcast a legacy count, as llama.cpp does */
            int64_t *c = malloc((size_t)n_counts * sizeof *c);
            if (!c) goto oom;
            for (int64_t i = 0; i < n_counts; i++) c[i] = e->counts[0];
            free(e->counts);
            e->counts = c, e->n_counts = n_counts;
        }
        return e;
    }
    if (strlen(name) > GROK_GGUF_MAX_NAME) {
        snprintf(err, err_size, "tensor name '%.40s...' is longer than %d bytes", name, GROK_GGUF_MAX_NAME);
        return NULL;
    }
    if (n_cols <= 0 || n_mat <= 0 || n_cols > (INT64_C(1) << 40) / n_mat) {
        snprintf(err, err_size, "%s: %" PRId64 " x %" PRId64 " values is not a valid shape", name, n_mat,
                 n_cols);
        return NULL;
    }
    if (im->n == im->cap) {
        int64_t cap = im->cap ? im->cap * 2 : 64;
        imx_entry *ne = realloc(im->e, (size_t)cap * sizeof *ne);
        if (!ne) goto oom;
        im->e = ne, im->cap = cap;
    }
    e = &im->e[im->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n_cols = n_cols, e->n_mat = n_mat, e->n_counts = n_counts;
    e->sums = calloc((size_t)(n_cols * n_mat), sizeof *e->sums);
    e->counts = calloc((size_t)n_counts, sizeof *e->counts);
    if (!e->sums || !e->counts) {
        free(e->sums), free(e->counts);
        goto oom;
    }
    im->n++;
    return e;
oom:
    snprintf(err, err_size, "%s: out of memory", name);
    return NULL;
}

void grok_imatrix_hook(void *user, const grok_matmul_input *in) {
    grok_imatrix *im = user;
    if (im->bad[0]) return;
    const bool ex = in->expert >= 0;
    char err[160];
    imx_entry *e = entry(im, in->tensor, in->n_cols, in->n_experts, ex ? in->n_experts : 1, err, sizeof err);
    if (!e) {
        snprintf(im->bad, sizeof im->bad, "%s", err);
        return;
    }
    double *acc = e->sums + (ex ? in->expert : 0) * in->n_cols;
    for (int64_t r = 0; r < in->n_rows; r++) {
        const float *x = in->x + r * in->n_cols;
        for (int64_t j = 0; j < in->n_cols; j++) {
            if (!isfinite(x[j])) {
                snprintf(im->bad, sizeof im->bad,
                         "%s: non-finite input (%g) in column %" PRId64 " of a row%s%.0" PRId64, in->tensor,
                         (double)x[j], j, ex ? " of expert " : "", ex ? in->expert : 0);
                return;
            }
            acc[j] += (double)x[j] * x[j];
        }
    }
    e->counts[ex && e->n_counts > 1 ? in->expert : 0] += in->n_rows;
}

int grok_imatrix_weights(const grok_imatrix *im, const char *tensor, int64_t expert, int64_t n_cols,
                         float *out, int64_t *count) {
    const imx_entry *e = find(im, tensor);
    if (!e) return -1;
    const int64_t slice = expert < 0 ? 0 : expert;
    if (n_cols * (slice + 1) > e->n_cols * e->n_mat || (e->n_mat > 1 && e->n_cols != n_cols)) return -2;
    const int64_t c = e->counts[e->n_counts > 1 ? slice : 0];
    if (count) *count = c;
    for (int64_t j = 0; j < n_cols; j++)
        out[j] = c > 0 ? (float)(e->sums[slice * n_cols + j] / (double)c) : 0.0f;
    return 0;
}

int grok_imatrix_entry(const grok_imatrix *im, int64_t i, const char **tensor, int64_t *n_cols,
                       int64_t *n_mat, const int64_t **counts, int64_t *n_counts) {
    if (i < 0 || i >= im->n) return -1;
    const imx_entry *e = &im->e[i];
    if (tensor) *tensor = e->name;
    if (n_cols) *n_cols = e->n_cols;
    if (n_mat) *n_mat = e->n_mat;
    if (counts) *counts = e->counts;
    if (n_counts) *n_counts = e->n_counts;
    return 0;
}

/* ---- writing ---- */

static int cmp_names(const void *a, const void *b) {
    return strcmp((*(const imx_entry *const *)a)->name, (*(const imx_entry *const *)b)->name);
}

static bool has_data(const imx_entry *e) {
    for (int64_t i = 0; i < e->n_counts; i++)
        if (e->counts[i] > 0) return true;
    return false;
}

/* The entries with data, by name (llama.cpp's order), or NULL. */
static const imx_entry **sorted(const grok_imatrix *im, int64_t *n) {
    const imx_entry **v = malloc((size_t)(im->n + 1) * sizeof *v);
    if (!v) return NULL;
    *n = 0;
    for (int64_t i = 0; i < im->n; i++)
        if (has_data(&im->e[i])) v[(*n)++] = &im->e[i];
    qsort(v, (size_t)*n, sizeof *v, cmp_names);
    return v;
}

static int save_gguf(const grok_imatrix *im, const char *path, char *err, size_t err_size) {
    int64_t n;
    const imx_entry **v = sorted(im, &n);
    grok_gguf_writer *w = grok_gguf_writer_create();
    float **bufs = calloc((size_t)(2 * n + 1), sizeof *bufs);
    int rc = -1;
    if (!v || !w || !bufs) {
        snprintf(err, err_size, "%s: out of memory", path);
        goto done;
    }
    grok_gguf_writer_set_str(w, "general.type", "imatrix");
    grok_gguf_writer_set_arr_str(w, "imatrix.datasets", (const char *const *)im->datasets,
                                 (uint64_t)im->n_datasets);
    grok_gguf_writer_set_u32(w, "imatrix.chunk_count", (uint32_t)im->chunk_count);
    grok_gguf_writer_set_u32(w, "imatrix.chunk_size", (uint32_t)im->chunk_size);
    for (int64_t i = 0; i < n; i++) {
        const imx_entry *e = v[i];
        const int64_t nv = e->n_cols * e->n_mat;
        float *s = bufs[2 * i] = malloc((size_t)nv * sizeof *s);
        float *c = bufs[2 * i + 1] = malloc((size_t)e->n_mat * sizeof *c);
        if (!s || !c) {
            snprintf(err, err_size, "%s: out of memory", path);
            goto done;
        }
        for (int64_t j = 0; j < nv; j++) s[j] = (float)e->sums[j];
        for (int64_t j = 0; j < e->n_mat; j++) c[j] = (float)e->counts[e->n_counts > 1 ? j : 0];
        char name[2 * GROK_GGUF_MAX_NAME];
        const int64_t ne_s[2] = {e->n_cols, e->n_mat}, ne_c[2] = {1, e->n_mat};
        snprintf(name, sizeof name, "%s.in_sum2", e->name);
        /* ggml drops trailing dimensions of 1: a dense matrix's are 1-D */
        const int32_t nd = e->n_mat > 1 ? 2 : 1;
        const int64_t a = grok_gguf_writer_add_tensor(w, name, GROK_TYPE_F32, nd, ne_s, s);
        snprintf(name, sizeof name, "%s.counts", e->name);
        const int64_t b = grok_gguf_writer_add_tensor(w, name, GROK_TYPE_F32, nd, ne_c, c);
        if (a < 0 || b < 0) {
            snprintf(err, err_size, "%s: cannot add tensor %s (name over %d bytes?)", path, name,
                     GROK_GGUF_MAX_NAME);
            goto done;
        }
    }
    rc = grok_gguf_writer_write(w, path, err, err_size);
done:
    if (bufs)
        for (int64_t i = 0; i < 2 * n; i++) free(bufs[i]);
    free(bufs);
    free(v);
    grok_gguf_writer_free(w);
    return rc;
}

static bool put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

static int save_dat(const grok_imatrix *im, const char *path, char *err, size_t err_size) {
    int64_t n;
    const imx_entry **v = sorted(im, &n);
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp) {
        snprintf(err, err_size, "%s: path too long", path);
        free(v);
        return -1;
    }
    FILE *f = NULL;
    const int fd = v ? mkstemp(tmp) : -1;
    if (fd < 0 || !(f = fdopen(fd, "wb"))) {
        snprintf(err, err_size, "%s: %s", path, v ? strerror(errno) : "out of memory");
        free(v);
        return -1;
    }
    bool ok = true;
    const int32_t ne = (int32_t)n, cs = (int32_t)im->chunk_size;
    ok &= put(f, &ne, 4);
    float *tmpv = NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        const imx_entry *e = v[i];
        const int32_t len = (int32_t)strlen(e->name), nval = (int32_t)(e->n_cols * e->n_mat);
        int64_t mx = 0;
        for (int64_t j = 0; j < e->n_counts; j++) mx = e->counts[j] > mx ? e->counts[j] : mx;
        const int32_t ncall = (int32_t)((mx + cs - 1) / cs); /* rounded up: never a zero */
        float *nb = realloc(tmpv, (size_t)nval * sizeof *nb);
        if (!nb) {
            ok = false;
            break;
        }
        tmpv = nb;
        for (int64_t j = 0; j < nval; j++) {
            const int64_t c = e->counts[e->n_counts > 1 ? j / e->n_cols : 0];
            tmpv[j] = (float)((c > 0 ? e->sums[j] / (double)c : 1.0) * ncall); /* no data: 1, as llama.cpp */
        }
        ok &= put(f, &len, 4) && put(f, e->name, (size_t)len) && put(f, &ncall, 4) && put(f, &nval, 4) &&
              put(f, tmpv, (size_t)nval * 4);
    }
    free(tmpv);
    const int32_t last = (int32_t)im->chunk_count;
    const char *ds = im->n_datasets ? im->datasets[im->n_datasets - 1] : "";
    const int32_t dl = (int32_t)strlen(ds);
    ok &= put(f, &last, 4) && put(f, &dl, 4) && put(f, ds, (size_t)dl);
    ok &= fflush(f) == 0;
    const int saved = errno;
    ok &= fclose(f) == 0;
    free(v);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, err_size, "%s: %s", path, strerror(ok ? errno : saved));
        remove(tmp);
        return -1;
    }
    return 0;
}

static bool ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int grok_imatrix_save(const grok_imatrix *im, const char *path, bool legacy, char *err, size_t err_size) {
    return legacy || ends_with(path, ".dat") ? save_dat(im, path, err, err_size)
                                             : save_gguf(im, path, err, err_size);
}

/* ---- reading ---- */

typedef struct {
    const unsigned char *p;
    size_t n, at;
    const char *path;
    char *err;
    size_t err_size;
} cursor;

static bool rd_i32(cursor *c, int32_t *v, const char *what) {
    if (c->n - c->at < 4) {
        snprintf(c->err, c->err_size, "%s: byte %zu: file ends inside %s", c->path, c->at, what);
        return false;
    }
    memcpy(v, c->p + c->at, 4);
    c->at += 4;
    return true;
}

/* A file's chunk count added to the total: written back as a u32 (llama.cpp's
 * type, and ours), so a total past INT32_MAX is refused rather than wrapped. */
static int add_chunks(grok_imatrix *im, int64_t v, const char *path, const char *what, char *err,
                      size_t err_size) {
    if (v > INT32_MAX - im->chunk_count) {
        snprintf(err, err_size, "%s: %s %" PRId64 " (after %" PRId64 " from other files) is out of range", path,
                 what, v, im->chunk_count);
        return -1;
    }
    im->chunk_count += v;
    return 0;
}

static int load_dat(grok_imatrix *im, const char *path, const unsigned char *p, size_t n, char *err,
                    size_t err_size) {
    cursor c = {p, n, 0, path, err, err_size};
    int32_t ne;
    if (!rd_i32(&c, &ne, "the entry count")) return -1;
    if (ne < 0 || (size_t)ne > n / 12) {
        snprintf(err, err_size, "%s: byte 0: %d entries cannot fit %zu bytes (not an imatrix .dat file?)",
                 path, (int)ne, n);
        return -1;
    }
    const int64_t cs = im->chunk_size;
    for (int32_t i = 0; i < ne; i++) {
        int32_t len, ncall, nval;
        const size_t at = c.at;
        if (!rd_i32(&c, &len, "a name length")) return -1;
        if (len <= 0 || len > GROK_GGUF_MAX_NAME || (size_t)len > n - c.at) {
            snprintf(err, err_size,
                     "%s: byte %zu: entry %d: name length %d is not in [1, %d] or runs past the end", path,
                     at, (int)i, (int)len, GROK_GGUF_MAX_NAME);
            return -1;
        }
        char name[GROK_GGUF_MAX_NAME + 1];
        memcpy(name, p + c.at, (size_t)len);
        name[len] = '\0';
        c.at += (size_t)len;
        if (memchr(name, '\0', (size_t)len)) {
            snprintf(err, err_size, "%s: byte %zu: entry %d: the name holds a NUL byte", path, at + 4,
                     (int)i);
            return -1;
        }
        if (!rd_i32(&c, &ncall, "a call count") || !rd_i32(&c, &nval, "a value count")) return -1;
        if (ncall < 0 || nval <= 0 || (size_t)nval > (n - c.at) / 4) {
            snprintf(err, err_size, "%s: byte %zu: entry '%s': %d chunks, %d values (%zu bytes left)", path,
                     c.at - 8, name, (int)ncall, (int)nval, n - c.at);
            return -1;
        }
        imx_entry *e = entry(im, name, nval, 1, 1, err, err_size);
        if (!e) return -1;
        for (int32_t j = 0; j < nval; j++) {
            float x;
            memcpy(&x, p + c.at + 4 * (size_t)j, 4);
            if (!isfinite(x) || x < 0) {
                snprintf(err, err_size, "%s: byte %zu: entry '%s' value %d is %g, not a finite mean square",
                         path, c.at + 4 * (size_t)j, name, (int)j, (double)x);
                return -1;
            }
            e->sums[j] += (double)x * (double)cs;
        }
        for (int64_t j = 0; j < e->n_counts; j++) e->counts[j] += (int64_t)ncall * cs;
        c.at += 4 * (size_t)nval;
    }
    if (c.at == n) return 0; /* files before the trailer existed */
    int32_t last, dl;
    if (!rd_i32(&c, &last, "the chunk count")) return -1;
    if (last < 0) {
        snprintf(err, err_size, "%s: byte %zu: chunk count %d", path, c.at - 4, (int)last);
        return -1;
    }
    if (add_chunks(im, last, path, "the chunk count", err, err_size)) return -1;
    if (c.at == n) return 0;
    if (!rd_i32(&c, &dl, "the dataset name length")) return -1;
    if (dl < 0 || (size_t)dl != n - c.at) {
        snprintf(err, err_size, "%s: byte %zu: dataset name of %d bytes, %zu bytes left", path, c.at - 4,
                 (int)dl, n - c.at);
        return -1;
    }
    char *ds = malloc((size_t)dl + 1);
    if (!ds) return snprintf(err, err_size, "%s: out of memory", path), -1;
    memcpy(ds, p + c.at, (size_t)dl);
    ds[dl] = '\0';
    const int rc = dl > 0 ? grok_imatrix_add_dataset(im, ds) : 0;
    free(ds);
    return rc;
}

static bool is_count(float x) { return isfinite(x) && x >= 0 && x == floorf(x) && x < 9.0e15f; }

static int load_gguf(grok_imatrix *im, const char *path, char *err, size_t err_size) {
    grok_gguf_file *g = grok_gguf_open(path, err, err_size);
    if (!g) return -1;
    int rc = -1;
    const char *type;
    if (grok_gguf_get_str(g, "general.type", &type, NULL) == 0 && strcmp(type, "imatrix") != 0) {
        snprintf(err, err_size, "%s: general.type is '%s', not 'imatrix'", path, type);
        goto done;
    }
    const int64_t nt = grok_gguf_n_tensors(g);
    for (int64_t i = 0; i < nt; i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(g, i);
        const size_t len = strlen(t->name);
        if (ends_with(t->name, ".counts")) {
            char s[2 * GROK_GGUF_MAX_NAME];
            snprintf(s, sizeof s, "%.*s.in_sum2", (int)(len - 7), t->name);
            if (!grok_gguf_find_tensor(g, s)) {
                snprintf(err, err_size, "%s: tensor %s has no %s beside it", path, t->name, s);
                goto done;
            }
            continue;
        }
        if (!ends_with(t->name, ".in_sum2")) {
            snprintf(err, err_size, "%s: tensor %s is neither NAME.in_sum2 nor NAME.counts", path, t->name);
            goto done;
        }
        char base[2 * GROK_GGUF_MAX_NAME], cn[2 * GROK_GGUF_MAX_NAME + 16];
        snprintf(base, sizeof base, "%.*s", (int)(len - 8), t->name);
        snprintf(cn, sizeof cn, "%s.counts", base);
        const grok_gguf_tensor *ct = grok_gguf_find_tensor(g, cn);
        if (!ct) {
            snprintf(err, err_size, "%s: tensor %s has no %s beside it", path, t->name, cn);
            goto done;
        }
        const int64_t ncols = t->ne[0], nmat = t->ne[1];
        if (t->type != GROK_TYPE_F32 || ct->type != GROK_TYPE_F32 || t->ne[2] != 1 || t->ne[3] != 1 ||
            ct->ne[0] != 1 || ct->ne[1] != nmat || ct->ne[2] != 1 || ct->ne[3] != 1) {
            snprintf(err, err_size,
                     "%s: %s [%" PRId64 " x %" PRId64 "] and %s [%" PRId64 " x %" PRId64
                     "] are not f32 [n_cols x n_mat] and f32 [1 x n_mat]",
                     path, t->name, t->ne[0], t->ne[1], cn, ct->ne[0], ct->ne[1]);
            goto done;
        }
        const float *cv = ct->data, *sv = t->data;
        for (int64_t j = 0; j < nmat; j++)
            if (!is_count(cv[j])) {
                snprintf(err, err_size, "%s: %s[%" PRId64 "] is %g, not a count", path, cn, j, (double)cv[j]);
                goto done;
            }
        for (int64_t j = 0; j < ncols * nmat; j++)
            if (!isfinite(sv[j]) || sv[j] < 0) {
                snprintf(err, err_size, "%s: %s[%" PRId64 "] is %g, not a finite sum of squares", path,
                         t->name, j, (double)sv[j]);
                goto done;
            }
        /* one count for a dense matrix, one per expert for a stacked one */
        imx_entry *e = entry(im, base, ncols, nmat, nmat, err, err_size);
        if (!e) goto done;
        for (int64_t j = 0; j < ncols * nmat; j++) e->sums[j] += sv[j];
        for (int64_t j = 0; j < nmat; j++) e->counts[e->n_counts > 1 ? j : 0] += (int64_t)cv[j];
    }
    int64_t v;
    if (grok_gguf_get_i64(g, "imatrix.chunk_count", &v) == 0 && v > 0 &&
        add_chunks(im, v, path, "imatrix.chunk_count", err, err_size))
        goto done;
    if (grok_gguf_get_i64(g, "imatrix.chunk_size", &v) == 0 && v > 0) im->chunk_size = v;
    grok_gguf_value_type et;
    uint64_t nd;
    if (grok_gguf_get_arr(g, "imatrix.datasets", &et, &nd) == 0 && et == GROK_GGUF_TYPE_STRING)
        for (uint64_t i = 0; i < nd; i++) {
            const char *s = grok_gguf_get_arr_str(g, "imatrix.datasets", i, NULL);
            if (s && grok_imatrix_add_dataset(im, s)) {
                snprintf(err, err_size, "%s: out of memory", path);
                goto done;
            }
        }
    rc = 0;
done:
    grok_gguf_close(g);
    return rc;
}

int grok_imatrix_load(grok_imatrix *im, const char *path, char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char magic[4] = {0};
    const size_t got = fread(magic, 1, 4, f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        fclose(f);
        return load_gguf(im, path, err, err_size);
    }
    fclose(f);
    /* legacy: small enough to read whole (a float per input column) */
    size_t n = 0;
    char *buf = grok_read_file(path, &n, err, err_size);
    if (!buf) return -1;
    const int rc = load_dat(im, path, (const unsigned char *)buf, n, err, err_size);
    free(buf);
    return rc;
}
