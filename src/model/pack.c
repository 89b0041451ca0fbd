/*
 * pack.c - the packed (row-interleaved) copy of a model's weights that
 * the FAST kernels read (kernels.h, GROK_PACK_ROWS). Built once, when the
 * first runner is created, for the share of the model this process
 * computes (its layers, KV heads, experts, FFN rows and vocabulary rows),
 * so a rank of a distributed model packs only what it reads. Each copy is
 * an anonymous mapping of the whole tensor's size, written only where the
 * share lies (untouched pages cost no memory), so rows and experts keep
 * the file's offsets. After packing a tensor, its file pages are dropped
 * from this process (MADV_DONTNEED on a read-only shared mapping: they
 * fault back in from the page cache if the EXACT or REFERENCE kernels
 * read them later), so resident memory stays about one copy of the
 * weights. The memory plan (memplan.c) decides whether to pack at all
 * (grok_model_params.pack = false or GROK_PACK=0 in the environment:
 * never) and whether the experts are packed here or by the expert cache,
 * slot by slot.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/model.h"

typedef struct {
    const grok_mat *w;
    const uint8_t *const *xd; /* where each matrix lies (grok_layer.xdata), or NULL: stride apart */
    uint8_t *dst;
    size_t stride;      /* bytes between matrices (experts) */
    int64_t e0, g0, g1; /* matrices from e0, groups [g0, g1) of each */
    int64_t n_groups;   /* (e1 - e0) * (g1 - g0) */
    size_t col_off;     /* row_size(c0): the column slice's start in a row */
    int64_t ncols;
} pack_job;

static void pack_task(void *arg, int ith, int nth) {
    const pack_job *j = arg;
    const int64_t per = j->g1 - j->g0;
    for (int64_t k = j->n_groups * ith / nth; k < j->n_groups * (ith + 1) / nth; k++) {
        const int64_t e = j->e0 + k / per;
        const size_t in = (size_t)(j->g0 + k % per) * GROK_PACK_ROWS * j->w->row_bytes,
                     at = (size_t)e * j->stride + in;
        grok_pack_x8(j->w->type, grok_expert_data(j->w, j->stride, j->xd, e) + in + j->col_off,
                     j->w->row_bytes, j->ncols, j->dst + at + GROK_PACK_ROWS * j->col_off);
    }
}

/* Packs rows [r0, r1) x columns [c0, c1) of matrices [e0, e1) of w (one
 * matrix when stride is 0; xd: where each lies, NULL: stride apart) into a
 * copy with the matrices stride apart. Leaves w unpacked if the type has no
 * packed layout or kernel, or its rows do not divide into groups. */
static void pack_mat(grok_model *m, grok_threadpool *pool, grok_mat *w, size_t stride,
                     const uint8_t *const *xd, int64_t e0, int64_t e1, int64_t r0, int64_t r1, int64_t c0,
                     int64_t c1) {
    if (w->packed || !grok_mat_packable(w) || r1 <= r0 || c1 <= c0 || e1 <= e0)
        return;
    const size_t mat_bytes = (size_t)w->rows * w->row_bytes, span = (size_t)(e1 - 1) * stride + mat_bytes;
    struct grok_pack_map *pk = realloc(m->packs, sizeof *pk * (size_t)(m->n_packs + 1));
    if (!pk) return;
    m->packs = pk;
    uint8_t *buf =
        mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (buf == MAP_FAILED) return; /* no room: the unpacked path still works */
                                   /* Huge pages where the kernel allows them: a 4 KiB page fault per 4 KiB
     * written made packing fault-bound (~70% of its time in a VM), and the
     * dots' streams cross fewer TLB entries. Advice only: errors are fine. */
#ifdef MADV_HUGEPAGE
    madvise(buf, span, MADV_HUGEPAGE);
#endif
    pack_job j = {w,
                  xd,
                  buf,
                  stride,
                  e0,
                  r0 / GROK_PACK_ROWS,
                  (r1 + GROK_PACK_ROWS - 1) / GROK_PACK_ROWS,
                  0,
                  (size_t)grok_type_row_size(w->type, c0),
                  c1 - c0};
    j.n_groups = (e1 - e0) * (j.g1 - j.g0);
    if (pool && j.n_groups >= 16)
        grok_threadpool_run(pool, pack_task, &j);
    else
        pack_task(&j, 0, 1);
    m->packs[m->n_packs++] = (struct grok_pack_map){buf, span};
    m->packed_bytes += (int64_t)((size_t)(e1 - e0) * (size_t)(j.g1 - j.g0) * GROK_PACK_ROWS *
                                 (size_t)grok_type_row_size(w->type, c1 - c0));
    w->packed = buf;
    /* the file's pages of this tensor leave this process (whole pages only;
     * never a buffer of our own, which the advice would zero) */
    for (int64_t i = 0; i < m->n_owned; i++)
        if (w->data == m->owned[i]) return;
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int64_t e = xd ? e0 : 0; e < (xd ? e1 : 1); e++) {
        const uint8_t *p = xd ? xd[e] : w->data;
        const uintptr_t a = ((uintptr_t)p + pg - 1) / pg * pg,
                        b = ((uintptr_t)p + (xd ? mat_bytes : span)) / pg * pg;
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
    }
}

static pthread_mutex_t g_pack_lock = PTHREAD_MUTEX_INITIALIZER;

void grok_model_pack(grok_model *m, const grok_dist *sh, grok_threadpool *pool, bool experts) {
    pthread_mutex_lock(&g_pack_lock);
    if (!m->pack_done) {
        const grok_hparams *hp = &m->hp;
        const int64_t D = hp->head_dim, G = hp->n_heads / hp->n_kv_heads, d = hp->d_model;
        const int64_t q0 = sh->kvh0 * G * D, q1 = sh->kvh1 * G * D, k0 = sh->kvh0 * D, k1 = sh->kvh1 * D;
        for (int64_t il = sh->l0; il < sh->l1; il++) {
            grok_layer *L = &m->layers[il];
            pack_mat(m, pool, &L->wq, 0, NULL, 0, 1, q0, q1, 0, d);
            pack_mat(m, pool, &L->wk, 0, NULL, 0, 1, k0, k1, 0, d);
            pack_mat(m, pool, &L->wv, 0, NULL, 0, 1, k0, k1, 0, d);
            pack_mat(m, pool, &L->wo, 0, NULL, 0, 1, 0, d, q0, q1);
            if (!experts) continue;
            const uint8_t *const *const *xd = (const uint8_t *const *const *)L->xdata;
            /* experts of different types (--expert-aware) stay as stored */
            if (!L->xtype[0])
                pack_mat(m, pool, &L->gate, L->gate_stride, xd[0], sh->e0, sh->e1, sh->f0, sh->f1, 0, d);
            if (!L->xtype[1])
                pack_mat(m, pool, &L->up, L->up_stride, xd[1], sh->e0, sh->e1, sh->f0, sh->f1, 0, d);
            if (!L->xtype[2])
                pack_mat(m, pool, &L->down, L->down_stride, xd[2], sh->e0, sh->e1, 0, d, sh->f0, sh->f1);
        }
        if (!sh->pipeline || sh->rank == 0)
            pack_mat(m, pool, &m->output, 0, NULL, 0, 1, sh->v0, sh->v1, 0, d);
        m->pack_done = true;
    }
    pthread_mutex_unlock(&g_pack_lock);
}

void grok_model_unpack(grok_model *m) {
    for (int64_t i = 0; i < m->n_packs; i++) munmap(m->packs[i].addr, m->packs[i].len);
    free(m->packs);
    m->packs = NULL, m->n_packs = 0, m->packed_bytes = 0;
}

int64_t grok_model_packed_bytes(const grok_model *m) { return m->packed_bytes; }
