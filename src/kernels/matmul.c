/*
 * matmul.c - the matrix product of a weight matrix (any computable type,
 * read where it lies in the mapped file) with a batch of f32 activation
 * rows, over the persistent thread pool. Rows of W are split evenly across
 * the threads. In FAST mode, quantized weights meet activations quantized
 * once per product to 8 bits (block_q8a), so the inner loop is an integer
 * dot product. For batches, each thread walks its rows in tiles that fit
 * in L2 and runs every token over a tile, so each weight byte comes from
 * memory once per product however many tokens there are; on the 8-bit
 * path a multi-token dot takes up to 8 tokens per row at once, so each
 * weight block is also decoded once per 8 tokens rather than per token.
 * Weights with a packed copy (groups of 8 interleaved rows, kernels.h) go
 * through dot_x8, 8 rows a call. grok_matmul_ops runs several products in
 * one pass of the pool (one barrier, a shared input quantized once); a
 * single token's packed products keep their last rows back and deal them
 * out in chunks, so the threads finish together. A matrix with a LoRA
 * adapter attached gets its low-rank product added after its own.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

typedef struct {
    grok_matmul_op op;
    grok_dot_f32_fn dot;
    grok_dot_q8a_fn dotq;        /* set: use xq */
    grok_dot_q8a_multi_fn dotqm; /* set: batches go through it, GROUP tokens a call */
    grok_q8a_prep_fn prep;       /* run over xq when dotqm is used (kernels.h) */
    grok_dot_x8_fn dotx8;        /* set: w->packed is used, 8 rows a call */
    grok_dot_x16_fn dotx16;      /* and where set, 16 rows a call */
    block_q8a *xq;               /* [n_tok][cols/32] */
    int64_t xq_blocks;           /* blocks per token */
} matmul_job;

/* Bytes of weight rows per tile: comfortably inside a 512 KiB+ L2. */
#define TILE_BYTES (192 * 1024)
/* Tokens per multi-token dot call: the kernels tile 4 (AVX2) or 8
 * (AVX-512) tokens per pass over a row; 8 keeps the group's activations
 * (8 x 40 bytes per 32 columns, 28 KiB at 2816 columns) near L1. */
#define GROUP 8

/* The 8-bit path for batches: per tile of rows, per group of tokens, one
 * multi-token dot per row, so each weight block is loaded and prepared
 * once per group instead of once per token. */
static void matmul_rows_multi(const matmul_job *j, int64_t ta, int64_t tb) {
    const int64_t n = j->op.w->cols;
    for (int64_t t0 = 0; t0 < j->op.n_tok; t0 += GROUP) {
        const int64_t m = j->op.n_tok - t0 < GROUP ? j->op.n_tok - t0 : GROUP;
        const block_q8a *xs[GROUP];
        float out[GROUP];
        for (int64_t k = 0; k < m; k++) xs[k] = j->xq + (t0 + k) * j->xq_blocks;
        for (int64_t r = ta; r < tb; r++) {
            j->dotqm(j->op.w->data + (size_t)r * j->op.w->row_bytes, xs, m, n, out);
            for (int64_t k = 0; k < m; k++) j->op.y[(t0 + k) * j->op.ldy + r] = out[k];
        }
    }
}

/* Packed weights, groups [g0, g1) of 8 rows: each group goes through the
 * tokens GROUP at a time (for batches, in tiles of groups that stay in L2
 * while every token passes over them). */
static void matmul_packed_range(const matmul_job *j, int64_t g0, int64_t g1) {
    const int64_t n = j->op.w->cols;
    const size_t gbytes = GROK_PACK_ROWS * j->op.w->row_bytes;
    int64_t tile = j->op.n_tok == 1 ? g1 - g0 : (int64_t)(TILE_BYTES / gbytes);
    if (tile < 1) tile = 1;
    float out[GROUP * 2 * GROK_PACK_ROWS];
    for (int64_t ga = g0; ga < g1; ga += tile) {
        const int64_t gb = ga + tile < g1 ? ga + tile : g1;
        for (int64_t t0 = 0; t0 < j->op.n_tok; t0 += GROUP) {
            const int64_t m = j->op.n_tok - t0 < GROUP ? j->op.n_tok - t0 : GROUP;
            const block_q8a *xs[GROUP];
            for (int64_t k = 0; k < m; k++) xs[k] = j->xq + (t0 + k) * j->xq_blocks;
            for (int64_t g = ga; g < gb;) {
                const int64_t ng = j->dotx16 && g + 1 < gb ? 2 : 1, w = ng * GROK_PACK_ROWS;
                /* one token's rows are consecutive in y: written there directly */
                float *o = m == 1 ? j->op.y + t0 * j->op.ldy + g * GROK_PACK_ROWS : out;
                if (ng == 2)
                    j->dotx16(j->op.w->packed + (size_t)g * gbytes, gbytes, xs, m, n, o);
                else
                    j->dotx8(j->op.w->packed + (size_t)g * gbytes, xs, m, n, o);
                for (int64_t k = 0; k < m && o == out; k++)
                    memcpy(j->op.y + (t0 + k) * j->op.ldy + g * GROK_PACK_ROWS, out + k * w,
                           (size_t)w * sizeof(float));
                g += ng;
            }
        }
    }
}

/* Threads split the groups evenly. */
static void matmul_packed_task(void *arg, int ith, int nth) {
    const matmul_job *j = arg;
    const int64_t groups = j->op.w->rows / GROK_PACK_ROWS;
    matmul_packed_range(j, groups * ith / nth, groups * (ith + 1) / nth);
}

static void matmul_task(void *arg, int ith, int nth) {
    const matmul_job *j = arg;
    const int64_t rows = j->op.w->rows, n = j->op.w->cols;
    const int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
    int64_t tile = (int64_t)(TILE_BYTES / (j->op.w->row_bytes ? j->op.w->row_bytes : 1));
    if (tile < 1) tile = 1;
    if (j->op.n_tok == 1) tile = r1 - r0; /* nothing to reuse: stream */
    for (int64_t ta = r0; ta < r1; ta += tile) {
        const int64_t tb = ta + tile < r1 ? ta + tile : r1;
        if (j->dotqm && j->op.n_tok > 1) {
            matmul_rows_multi(j, ta, tb);
            continue;
        }
        for (int64_t t = 0; t < j->op.n_tok; t++) {
            float *yt = j->op.y + t * j->op.ldy;
            if (j->dotq) {
                const block_q8a *xt = j->xq + t * j->xq_blocks;
                for (int64_t r = ta; r < tb; r++)
                    yt[r] = j->dotq(j->op.w->data + (size_t)r * j->op.w->row_bytes, xt, n);
            } else {
                const float *xt = j->op.x + t * j->op.ldx;
                for (int64_t r = ta; r < tb; r++)
                    yt[r] = j->dot(j->op.w->data + (size_t)r * j->op.w->row_bytes, xt, n);
            }
        }
    }
}

/* Several products in one pool pass (grok_matmul_ops): jobs that share
 * their input share one quantized copy of it. */
typedef struct {
    matmul_job *jobs;
    int n;
    bool threaded_one[GROK_MATMUL_MAX_OPS]; /* too few rows to split: thread 0 runs it */
    /* The tail of each single-token packed product is dealt in chunks
     * from a shared counter rather than split in equal halves: the
     * threads' shares of memory bandwidth are not equal from moment to
     * moment, and with equal halves the faster thread waited at every
     * barrier (11-13 % of a 2-thread q4_0 generation, perf; 5 % after).
     * Job i has its first head[i] groups split evenly, then chunks
     * [first[i], first[i + 1]) of chunk[i] groups each (first[i] ==
     * first[i + 1] for the other jobs). Which thread computes a group
     * changes none of its numbers. */
    int64_t first[GROK_MATMUL_MAX_OPS + 1], chunk[GROK_MATMUL_MAX_OPS], head[GROK_MATMUL_MAX_OPS];
    atomic_int_fast64_t next;
} ops_pass;

/* Bytes of packed weights per dealt chunk: a few microseconds of reading,
 * many chunks per product. */
#define CHUNK_BYTES (128 * 1024)
/* The first HEAD_PCT % of a dealt product's groups are still split evenly,
 * so each thread streams one long contiguous run before taking chunks:
 * dealing everything in chunks was no faster than equal halves, dealing
 * the last 15 % gained 3-4 % in 2-thread q4_0 generation over them and
 * the last 30 % lost 4-6 % (24-layer q4_0 model, 3 interleaved rounds). */
#define HEAD_PCT 85

/* Whether the multi-token dots want xq rewritten by prep after quantizing. */
static bool wants_prep(const matmul_job *j) { return j->dotqm && !j->dotx8 && j->op.n_tok > 1 && j->prep; }

static void quant_job(const matmul_job *j, int64_t t) {
    grok_quantize_q8a_isa(j->op.w->isa, j->op.x + t * j->op.ldx, j->xq + t * j->xq_blocks, j->op.w->cols);
    if (wants_prep(j)) j->prep(j->xq + t * j->xq_blocks, j->xq_blocks);
}

/* (job, token) pairs dealt round-robin; a job whose xq an earlier job
 * quantizes (shared input) is skipped. */
static bool owns_xq(const ops_pass *o, int i) {
    for (int k = 0; k < i; k++)
        if (o->jobs[k].xq == o->jobs[i].xq) return false;
    return o->jobs[i].xq != NULL;
}

static void quant_task(void *arg, int ith, int nth) {
    const ops_pass *o = arg;
    int64_t u = 0;
    for (int i = 0; i < o->n; i++) {
        if (!owns_xq(o, i)) continue;
        for (int64_t t = 0; t < o->jobs[i].op.n_tok; t++, u++)
            if (u % nth == ith) quant_job(&o->jobs[i], t);
    }
}

static bool dealt(const matmul_job *j) { return j->dotx8 && j->op.n_tok == 1; }

static void ops_task(void *arg, int ith, int nth) {
    ops_pass *o = arg;
    for (int i = 0; i < o->n; i++) {
        const matmul_job *j = &o->jobs[i];
        void (*task)(void *, int, int) = j->dotx8 ? matmul_packed_task : matmul_task;
        if (o->threaded_one[i]) {
            if (ith == 0) task((void *)j, 0, 1);
        } else if (!dealt(j) || nth == 1) {
            task((void *)j, ith, nth);
        } else { /* the part before the dealt chunks, split evenly */
            const int64_t head = o->head[i];
            matmul_packed_range(j, head * ith / nth, head * (ith + 1) / nth);
        }
    }
    if (nth == 1) return;
    const int64_t total = o->first[o->n];
    int i = 0;
    for (int64_t c; (c = atomic_fetch_add_explicit(&o->next, 1, memory_order_relaxed)) < total;) {
        while (c >= o->first[i + 1]) i++;
        const int64_t groups = o->jobs[i].op.w->rows / GROK_PACK_ROWS;
        const int64_t g0 = o->head[i] + (c - o->first[i]) * o->chunk[i];
        matmul_packed_range(&o->jobs[i], g0, g0 + o->chunk[i] < groups ? g0 + o->chunk[i] : groups);
    }
}

/* An op's job with its kernels, the 8-bit ones where the type has them
 * (xq still unset). */
static matmul_job make_job(const grok_matmul_op *op, const grok_dot_kernels *k) {
    matmul_job j = {*op, k->dot_f32, NULL, NULL, NULL, NULL, NULL, NULL, 0};
    if (!k->dot_q8a || op->w->cols % QKA != 0) return j;
    j.xq_blocks = op->w->cols / QKA;
    j.dotq = k->dot_q8a, j.dotqm = k->dot_q8a_multi, j.prep = k->multi_prep;
    if (op->w->packed && k->dot_x8 && op->w->rows % GROK_PACK_ROWS == 0) j.dotx8 = k->dot_x8;
    /* 16 rows a call for batches only: q4_0 prompts 94-101 -> 114-131 tok/s,
     * while single tokens ran 10-15 % slower than 8 rows a call (24-layer
     * q4_0 model, 2 threads, this project's VM) */
    if (j.dotx8 && op->n_tok > 1) j.dotx16 = k->dot_x16;
    return j;
}

bool grok_mat_packable(const grok_mat *w) {
    const grok_dot_kernels *k = grok_dot_select_isa(w->type, GROK_KERNELS_FAST, w->isa);
    return k && k->dot_x8 && grok_pack_x8_type(w->type) && w->rows % GROK_PACK_ROWS == 0;
}

/* Whether job b can read job a's quantized input: the same activations
 * (rows, width, count) and the same form of them (prep or not). */
static bool same_input(const matmul_job *a, const matmul_job *b) {
    return a->op.x == b->op.x && a->op.ldx == b->op.ldx && a->op.w->cols == b->op.w->cols &&
           a->op.n_tok == b->op.n_tok && wants_prep(a) == wants_prep(b) &&
           (!wants_prep(a) || a->prep == b->prep);
}

/* y += B' (A x) for an op whose matrix carries an adapter: u = A x per
 * token (threads over tokens), then the transposed product with bt, so
 * every token's numbers stay independent of its batch. */
static void lora_apply(grok_threadpool *pool, grok_kernel_mode mode, const grok_matmul_op *op) {
    const grok_mat_lora *l = &op->w->lora;
    float stack_u[1024],
        *u = op->n_tok * l->rank <= 1024 ? stack_u : malloc(sizeof(float) * (size_t)(op->n_tok * l->rank));
    if (!u) return;
    const grok_mat a = {(const uint8_t *)l->a,          GROK_TYPE_F32, l->rank, op->w->cols,
                        sizeof(float) * (size_t)l->lda, NULL,          {0},     op->w->isa};
    const grok_mat bt = {(const uint8_t *)l->bt,         GROK_TYPE_F32, l->rank, op->w->rows,
                         sizeof(float) * (size_t)l->ldb, NULL,          {0},     op->w->isa};
    grok_matmul_tok_in(pool, mode, &a, op->x, op->ldx, u, l->rank, op->n_tok);
    grok_matmul_t_in(pool, mode, &bt, u, l->rank, op->y, op->ldy, op->n_tok);
    if (u != stack_u) free(u);
}

void grok_matmul_ops_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_matmul_op *ops, int n_ops) {
    if (n_ops > GROK_MATMUL_MAX_OPS) {
        grok_matmul_ops_in(pool, mode, ops, GROK_MATMUL_MAX_OPS);
        grok_matmul_ops_in(pool, mode, ops + GROK_MATMUL_MAX_OPS, n_ops - GROK_MATMUL_MAX_OPS);
        return;
    }
    if (mode == GROK_KERNELS_DEFAULT) mode = grok_kernels_mode();
    if (n_ops <= 0) return;
    matmul_job jobs[GROK_MATMUL_MAX_OPS];
    ops_pass o = {.jobs = jobs, .n = n_ops};
    /* Where each job's quantized input goes: where an earlier job's with
     * the same input went, else the next free blocks. */
    size_t at[GROK_MATMUL_MAX_OPS], need = 0;
    int64_t elems = 0;
    bool threaded = false;
    for (int i = 0; i < n_ops; i++) {
        jobs[i] = make_job(&ops[i], grok_dot_select_isa(ops[i].w->type, mode, ops[i].w->isa));
        o.threaded_one[i] = ops[i].w->rows < 16;
        threaded |= pool && !o.threaded_one[i];
        at[i] = SIZE_MAX;
        if (!jobs[i].xq_blocks) continue;
        for (int k = 0; k < i && at[i] == SIZE_MAX; k++)
            if (jobs[k].xq_blocks && same_input(&jobs[k], &jobs[i])) at[i] = at[k];
        if (at[i] == SIZE_MAX) {
            at[i] = need;
            need += (size_t)(jobs[i].op.n_tok * jobs[i].xq_blocks);
            elems += jobs[i].op.n_tok * jobs[i].op.w->cols;
        }
    }
    /* A decode step's activations fit on the stack (Grok-1's widest input,
     * n_ff = 32768, is 1024 blocks); batches get a heap buffer. */
    block_q8a stack_buf[2048];
    block_q8a *heap = NULL, *xq = NULL;
    if (need)
        xq = need <= sizeof stack_buf / sizeof stack_buf[0] ? stack_buf : (heap = malloc(need * sizeof *xq));
    for (int i = 0; i < n_ops; i++) {
        matmul_job *j = &jobs[i];
        if (xq && j->xq_blocks)
            j->xq = xq + at[i];
        else /* no memory (or no 8-bit path): the f32 dots */
            j->dotq = NULL, j->dotqm = NULL, j->prep = NULL, j->dotx8 = NULL, j->dotx16 = NULL;
    }
    o.first[0] = 0;
    for (int i = 0; i < n_ops; i++) {
        const matmul_job *j = &jobs[i];
        o.chunk[i] = 1;
        int64_t nc = 0;
        if (dealt(j) && !o.threaded_one[i]) {
            const size_t gbytes = GROK_PACK_ROWS * j->op.w->row_bytes;
            const int64_t groups = j->op.w->rows / GROK_PACK_ROWS;
            o.chunk[i] = gbytes < CHUNK_BYTES ? (int64_t)(CHUNK_BYTES / gbytes) : 1;
            o.head[i] = groups * HEAD_PCT / 100;
            nc = (groups - o.head[i] + o.chunk[i] - 1) / o.chunk[i];
        }
        o.first[i + 1] = o.first[i] + nc;
    }
    atomic_init(&o.next, 0);
    if (xq) { /* a few tokens quantize faster than the pool wakes up for them */
        if (threaded && elems > 65536)
            grok_threadpool_run(pool, quant_task, &o);
        else
            quant_task(&o, 0, 1);
    }
    if (threaded)
        grok_threadpool_run(pool, ops_task, &o);
    else
        ops_task(&o, 0, 1);
    free(heap);
    for (int i = 0; i < n_ops; i++)
        if (ops[i].w->lora.a && ops[i].n_tok > 0) lora_apply(pool, mode, &ops[i]);
}

void grok_matmul_ops(grok_threadpool *pool, const grok_matmul_op *ops, int n_ops) {
    grok_matmul_ops_in(pool, grok_kernels_mode(), ops, n_ops);
}

void grok_matmul_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_mat *w, const float *x,
                    int64_t ldx, float *y, int64_t ldy, int64_t n_tok) {
    const grok_matmul_op op = {w, x, ldx, y, ldy, n_tok};
    grok_matmul_ops_in(pool, mode, &op, 1);
}

void grok_matmul(grok_threadpool *pool, const grok_mat *w, const float *x, int64_t ldx, float *y, int64_t ldy,
                 int64_t n_tok) {
    grok_matmul_in(pool, grok_kernels_mode(), w, x, ldx, y, ldy, n_tok);
}
