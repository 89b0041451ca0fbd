/*
 * packfile.c - the packed layout (kernels.h, GROK_PACK_ROWS) kept in a
 * file beside the model, MODEL.gguf.grokpack, so it is made once instead
 * of at every start: `grok pack` (or `grok quantize --pack`) writes it,
 * and a model that finds it maps it instead of packing into anonymous
 * memory. Mapped, the packed pages are the page cache's: shared by every
 * process that maps them (MPI ranks on one node, a restarted server),
 * free to start warm, and evictable under memory pressure. The expert
 * cache reads its slots straight from it (no packing on the I/O thread).
 *
 * The file holds, for every matrix the resident model would pack, that
 * whole tensor packed (all rows, all experts: packing keeps the tensor's
 * size and offsets), each at a 4 KiB-aligned offset, after a 4 KiB header
 * and a table of (tensor name, offset, bytes). It belongs to one model
 * file, identified by what is cheap to check at every start yet changes
 * with any other file: the model's size, its modification time, a hash of
 * its header and tensor table (names, types, shapes, offsets, metadata),
 * and a hash of 64 4 KiB blocks sampled across its data. A full hash of a
 * 300 GB model would take minutes at every start (the time the file is
 * there to save); what this misses is a rewrite in place that keeps size,
 * mtime, header and those 64 blocks, and changes only weights between
 * them, which no tool that writes models does by accident.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf_internal.h"
#include "model/model.h"

#define PF_MAGIC "GROKPAK1"
#define PF_VERSION 1
#define PF_ALIGN 4096
#define PF_HEADER 4096
#define PF_SAMPLES 64
#define PF_NAME 64

typedef struct {
    char name[PF_NAME];
    uint64_t offset, nbytes;
    const grok_mat *w;    /* the model's matrix it packs (resolved at open), or NULL: none now */
    const uint8_t *wdata; /* w's data then (a LoRA merge after would change it) */
} pf_entry;

struct grok_packfile {
    char *path;
    uint8_t *map;
    size_t len;
    pf_entry *e;
    uint32_t n;
};

typedef struct {
    uint64_t size;
    int64_t mtime_ns;
    uint64_t header_hash, sample_hash;
} pf_identity;

/* ---- little-endian fields ---- */
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The model's identity: every file it lies in (splits, or their raw
 * pieces), each file's stat, the split headers and samples of each file's
 * data. */
static int identity(const grok_gguf_file *f, pf_identity *id, char *err, size_t err_size) {
    memset(id, 0, sizeof *id);
    id->header_hash = id->sample_hash = 0xcbf29ce484222325ull;
    uint8_t *buf = malloc(1 << 16);
    if (!buf) return snprintf(err, err_size, "out of memory"), -1;
    int rc = -1;
    int32_t fi = 0;
    for (int32_t s = 0; s < grok_gguf_n_splits(f); s++) {
        uint64_t split_size, ds;
        grok_gguf_split_info(f, s, NULL, &split_size, &ds);
        for (uint64_t done = 0; done < split_size && fi < grok_gguf_n_files(f); fi++) {
            uint64_t size;
            const char *path = grok_gguf_file_path(f, fi, &size);
            const uint64_t start = done == 0 ? ds : 0; /* the data's start in this file */
            done += size;
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) != 0) {
                snprintf(err, err_size, "%s: %s", path, strerror(errno));
                if (fd >= 0) close(fd);
                goto out;
            }
            id->size += (uint64_t)st.st_size;
            const int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            if (mt > id->mtime_ns) id->mtime_ns = mt;
            for (uint64_t at = 0; at < start;) { /* header and tensor table */
                const size_t n = start - at < (1 << 16) ? (size_t)(start - at) : (1 << 16);
                ssize_t r = pread(fd, buf, n, (off_t)at);
                if (r <= 0) break;
                id->header_hash = fnv(id->header_hash, buf, (size_t)r);
                at += (uint64_t)r;
            }
            for (int i = 0; i < PF_SAMPLES && size > start + 4096; i++) {
                const uint64_t at = start + (size - start - 4096) / (PF_SAMPLES - 1) * (uint64_t)i;
                ssize_t r = pread(fd, buf, 4096, (off_t)at);
                if (r > 0) id->sample_hash = fnv(id->sample_hash, buf, (size_t)r);
            }
            close(fd);
        }
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

/* The matrices a packed file holds: (matrix, tensor name, matrices in the tensor). */
typedef struct {
    const grok_mat *w;
    char name[PF_NAME];
    int64_t n_mats;
    size_t stride;
    const uint8_t *const *xd; /* where each expert lies, or NULL: stride apart (grok_layer.xdata) */
    int64_t layer;            /* -1: the output head */
} pf_mat;

static int64_t list_mats(const grok_model *m, pf_mat *out) {
    int64_t n = 0;
    const grok_hparams *hp = &m->hp;
    for (int64_t il = 0; il < hp->n_layers; il++) {
        const grok_layer *L = &m->layers[il];
        const grok_mat *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        const char *what[] = {"attn_q",        "attn_k",      "attn_v",       "attn_output",
                              "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
        const size_t strides[] = {0, 0, 0, 0, L->gate_stride, L->up_stride, L->down_stride};
        for (int i = 0; i < 7; i++) {
            if (!grok_mat_packable(w[i]) || (i >= 4 && L->xtype[i - 4])) continue; /* experts of mixed types */
            if (out) {
                out[n].w = w[i];
                grok_tensor_name(out[n].name, PF_NAME, il, what[i]);
                out[n].n_mats = i >= 4 ? hp->n_experts : 1;
                out[n].stride = strides[i];
                out[n].xd = i >= 4 ? (const uint8_t *const *)L->xdata[i - 4] : NULL;
                out[n].layer = il;
            }
            n++;
        }
    }
    if (grok_mat_packable(&m->output)) {
        if (out) {
            out[n].w = &m->output;
            snprintf(out[n].name, PF_NAME, "%s", m->tied ? GROK_TN_TOKEN_EMBD : GROK_TN_OUTPUT);
            out[n].n_mats = 1;
            out[n].stride = 0;
            out[n].xd = NULL;
            out[n].layer = -1;
        }
        n++;
    }
    return n;
}

static size_t mat_tensor_bytes(const pf_mat *p) {
    return (size_t)(p->n_mats - 1) * p->stride + (size_t)p->w->rows * p->w->row_bytes;
}

void grok_packfile_default_path(const grok_model *m, char *buf, size_t size) {
    const char *path;
    grok_gguf_split_info(m->file, 0, &path, NULL, NULL);
    snprintf(buf, size, "%s.grokpack", path);
}

/* ---- writing ---- */

typedef struct {
    const grok_mat *w;
    const uint8_t *src;
    uint8_t *dst;
    int64_t g0, n_groups;
} pf_job;

static void pf_task(void *arg, int ith, int nth) {
    const pf_job *j = arg;
    const size_t gb = GROK_PACK_ROWS * j->w->row_bytes;
    for (int64_t g = j->n_groups * ith / nth; g < j->n_groups * (ith + 1) / nth; g++)
        grok_pack_x8(j->w->type, j->src + (size_t)(j->g0 + g) * gb, j->w->row_bytes, j->w->cols,
                     j->dst + (size_t)g * gb);
}

static bool write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

int grok_model_write_packfile(const grok_model *m, const char *path, grok_threadpool *pool, char *err,
                              size_t err_size) {
    char def[4096];
    if (!path) {
        grok_packfile_default_path(m, def, sizeof def);
        path = def;
    }
    const int64_t n = list_mats(m, NULL);
    pf_mat *mats = calloc((size_t)(n > 0 ? n : 1), sizeof *mats);
    uint8_t *hdr = calloc(1, PF_HEADER), *buf = NULL;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = NULL;
    int rc = -1;
    if (!mats || !hdr) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    list_mats(m, mats);
    if (n == 0) {
        snprintf(err, err_size, "%s: no matrix of a type with a packed layout: nothing to write",
                 grok_gguf_path(m->file));
        goto out;
    }
    pf_identity id;
    if (identity(m->file, &id, err, err_size)) goto out;
    const size_t table = (size_t)n * (PF_NAME + 16);
    uint64_t at = (PF_HEADER + table + PF_ALIGN - 1) / PF_ALIGN * PF_ALIGN;
    const uint64_t data_start = at;
    memcpy(hdr, PF_MAGIC, 8);
    put32(hdr + 8, PF_VERSION), put32(hdr + 12, GROK_PACK_LAYOUT);
    put64(hdr + 16, id.size), put64(hdr + 24, (uint64_t)id.mtime_ns);
    put64(hdr + 32, id.header_hash), put64(hdr + 40, id.sample_hash);
    put32(hdr + 48, (uint32_t)n), put64(hdr + 56, data_start);
    uint8_t *tab = calloc(1, table);
    if (!tab) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy(tab + (size_t)i * (PF_NAME + 16), mats[i].name, strlen(mats[i].name));
        put64(tab + (size_t)i * (PF_NAME + 16) + PF_NAME, at);
        put64(tab + (size_t)i * (PF_NAME + 16) + PF_NAME + 8, mat_tensor_bytes(&mats[i]));
        at = (at + mat_tensor_bytes(&mats[i]) + PF_ALIGN - 1) / PF_ALIGN * PF_ALIGN;
    }
    f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, err_size, "%s: cannot create: %s", tmp, strerror(errno));
        free(tab);
        goto out;
    }
    bool ok = write_all(f, hdr, PF_HEADER) && write_all(f, tab, table);
    free(tab);
    static const uint8_t zeros[PF_ALIGN];
    uint64_t pos = PF_HEADER + table;
    /* a chunk of whole groups at a time: packing is a shuffle within 8 rows */
    const size_t CHUNK = (size_t)64 << 20;
    buf = malloc(CHUNK + (size_t)GROK_PACK_ROWS * 1048576);
    if (!buf) ok = false;
    for (int64_t i = 0; i < n && ok; i++) {
        const uint64_t want = (pos + PF_ALIGN - 1) / PF_ALIGN * PF_ALIGN;
        ok = write_all(f, zeros, (size_t)(want - pos));
        pos = want;
        const grok_mat *w = mats[i].w;
        const size_t gb = GROK_PACK_ROWS * w->row_bytes;
        if (gb > CHUNK + (size_t)GROK_PACK_ROWS * 1048576) {
            snprintf(err, err_size, "%s: rows of %zu bytes are too long to pack", mats[i].name, w->row_bytes);
            ok = false;
            break;
        }
        const int64_t groups_per_mat = w->rows / GROK_PACK_ROWS;
        for (int64_t e = 0; e < mats[i].n_mats && ok; e++) {
            const uint8_t *src = grok_expert_data(w, mats[i].stride, mats[i].xd, e);
            const int64_t per = CHUNK / gb > 0 ? (int64_t)(CHUNK / gb) : 1;
            for (int64_t g0 = 0; g0 < groups_per_mat && ok; g0 += per) {
                pf_job j = {w, src, buf, g0, g0 + per < groups_per_mat ? per : groups_per_mat - g0};
                if (pool)
                    grok_threadpool_run(pool, pf_task, &j);
                else
                    pf_task(&j, 0, 1);
                ok = write_all(f, buf, (size_t)j.n_groups * gb);
                pos += (size_t)j.n_groups * gb;
            }
            /* the file's pages are done with: not a second copy in the page cache */
            grok_gguf_advise(m->file, src, (size_t)w->rows * w->row_bytes, MADV_DONTNEED);
            /* experts are stride apart: the bytes between them (none for
             * ggml's layout) would be padding */
            if (e + 1 < mats[i].n_mats && mats[i].stride > (size_t)w->rows * w->row_bytes) {
                const size_t gap = mats[i].stride - (size_t)w->rows * w->row_bytes;
                for (size_t z = 0; z < gap && ok; z += PF_ALIGN)
                    ok = write_all(f, zeros, gap - z < PF_ALIGN ? gap - z : PF_ALIGN);
                pos += gap;
            }
        }
    }
    if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = false;
    f = NULL;
    if (!ok) {
        if (!err[0]) snprintf(err, err_size, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, err_size, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    free(mats), free(hdr), free(buf);
    return rc;
}

/* ---- reading ---- */

void grok_packfile_close(grok_packfile *pf) {
    if (!pf) return;
    if (pf->map) munmap(pf->map, pf->len);
    free(pf->e), free(pf->path), free(pf);
}

grok_packfile *grok_packfile_open(const grok_model *m, const char *path, bool *absent, char *err,
                                  size_t err_size) {
    *absent = false;
    grok_packfile *pf = calloc(1, sizeof *pf);
    pf_mat *mats = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *absent = errno == ENOENT;
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        free(pf);
        return NULL;
    }
    struct stat st;
    if (!pf || fstat(fd, &st) != 0 || st.st_size < PF_HEADER) {
        snprintf(err, err_size, "%s: not a packed file (%lld bytes)", path, (long long)(pf ? st.st_size : 0));
        goto fail;
    }
    pf->len = (size_t)st.st_size;
    pf->map = mmap(NULL, pf->len, PROT_READ, MAP_SHARED, fd, 0);
    if (pf->map == MAP_FAILED) {
        pf->map = NULL;
        snprintf(err, err_size, "%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    const uint8_t *h = pf->map;
    if (memcmp(h, PF_MAGIC, 8) != 0) {
        snprintf(err, err_size, "%s: byte 0: bad magic (not a grok packed file)", path);
        goto fail;
    }
    if (get32(h + 8) != PF_VERSION || get32(h + 12) != GROK_PACK_LAYOUT) {
        snprintf(err, err_size,
                 "%s: byte 8: version %u, packed layout %u; this grok writes %u, %u (run grok pack again)",
                 path, get32(h + 8), get32(h + 12), PF_VERSION, GROK_PACK_LAYOUT);
        goto fail;
    }
    pf_identity id;
    if (identity(m->file, &id, err, err_size)) goto fail;
    const char *what = get64(h + 16) != id.size                ? "size"
                       : (int64_t)get64(h + 24) != id.mtime_ns ? "modification time"
                       : get64(h + 32) != id.header_hash       ? "header and tensor table"
                       : get64(h + 40) != id.sample_hash       ? "sampled data"
                                                               : NULL;
    if (what) {
        snprintf(err, err_size, "%s: written for another version of %s (its %s differs): run grok pack again",
                 path, grok_gguf_path(m->file), what);
        goto fail;
    }
    pf->n = get32(h + 48);
    const uint64_t table_end = PF_HEADER + (uint64_t)pf->n * (PF_NAME + 16);
    if (table_end > pf->len || get64(h + 56) > pf->len) {
        snprintf(err, err_size, "%s: byte 48: %u tensors do not fit in %zu bytes", path, pf->n, pf->len);
        goto fail;
    }
    pf->e = calloc(pf->n ? pf->n : 1, sizeof *pf->e);
    const int64_t n_mats = list_mats(m, NULL);
    mats = calloc((size_t)n_mats + 1, sizeof *mats);
    if (!pf->e || !mats) goto fail;
    list_mats(m, mats);
    for (uint32_t i = 0; i < pf->n; i++) {
        const uint8_t *t = h + PF_HEADER + (size_t)i * (PF_NAME + 16);
        pf_entry *e = &pf->e[i];
        memcpy(e->name, t, PF_NAME - 1);
        e->offset = get64(t + PF_NAME), e->nbytes = get64(t + PF_NAME + 8);
        const pf_mat *pm = NULL;
        for (int64_t k = 0; k < n_mats && !pm; k++)
            if (strcmp(mats[k].name, e->name) == 0) pm = &mats[k];
        /* a matrix the model no longer packs (merged with an adapter) keeps its entry unused */
        if ((pm && mat_tensor_bytes(pm) != e->nbytes) || e->offset % PF_ALIGN || e->offset > pf->len ||
            e->nbytes > pf->len - e->offset) {
            snprintf(err, err_size,
                     "%s: table entry %u ('%s', %" PRIu64 " bytes at %" PRIu64
                     "): not the model's matrix of that name, or out of the file",
                     path, i, e->name, e->nbytes, e->offset);
            goto fail;
        }
        e->w = pm ? pm->w : NULL;
        e->wdata = pm ? pm->w->data : NULL;
    }
    free(mats);
    pf->path = strdup(path);
    close(fd);
    return pf;
fail:
    free(mats);
    close(fd);
    grok_packfile_close(pf);
    return NULL;
}

const uint8_t *grok_packfile_find(const grok_packfile *pf, const grok_mat *w, const char **path,
                                  uint64_t *offset) {
    for (uint32_t i = 0; pf && i < pf->n; i++) {
        const pf_entry *e = &pf->e[i];
        if (e->w == w && w->data == e->wdata) {
            if (path) *path = pf->path;
            if (offset) *offset = e->offset;
            return pf->map + e->offset;
        }
    }
    return NULL;
}

/* The packed file's copies of the matrices share sh reads (the experts
 * too unless !experts): their packed pointers into the map, the ranges
 * asked for ahead (MADV_WILLNEED: a cold start streams them in). */
int64_t grok_model_use_packfile(grok_model *m, const grok_dist *sh, bool experts) {
    int64_t bytes = 0;
    pf_mat *mats = calloc((size_t)(list_mats(m, NULL) + 1), sizeof *mats);
    if (!mats) return 0;
    const int64_t n = list_mats(m, mats);
    for (int64_t i = 0; i < n; i++) {
        const pf_mat *pm = &mats[i];
        if ((pm->n_mats > 1 || pm->stride) && !experts) continue;
        const bool mine =
            pm->layer >= 0 ? pm->layer >= sh->l0 && pm->layer < sh->l1 : !sh->pipeline || sh->rank == 0;
        const uint8_t *p = mine ? grok_packfile_find(m->pf, pm->w, NULL, NULL) : NULL;
        if (!p) continue;
        ((grok_mat *)pm->w)->packed = p; /* the model's own matrix (list_mats lists them const) */
        const size_t span = mat_tensor_bytes(pm);
        bytes += (int64_t)span;
        const uintptr_t a = (uintptr_t)p / 4096 * 4096;
        madvise((void *)a, span + ((uintptr_t)p - a), MADV_WILLNEED);
    }
    free(mats);
    return bytes;
}
