/*
 * forward.c - the Grok-1 forward pass (GROK1.md, "Forward pass") over a
 * batch of tokens, with f32 activations. A sequence (grok_seq) holds what
 * a conversation keeps between steps: its KV cache, tokens and logits. A
 * runner (grok_runner) holds what a step needs while it runs: the thread
 * pool and the scratch, sized for n_batch tokens whichever sequences they
 * belong to, so a server needs one runner for all its slots. A context
 * (grok_context) is a runner with one sequence, for simple programs.
 *
 * A batch is processed layer by layer for all its tokens at once, so each
 * weight matrix is read once per batch, not once per token. The MoE block
 * groups the batch's tokens by the experts the router picked and runs each
 * selected expert once over its group; unselected experts are never read.
 * Attention is computed per (token, KV head) pair, the head's query group
 * together, across the thread pool against the sequence's cache (the
 * kernels are in src/kernels/attention.c), into which the batch's own keys and
 * values were written first (causal order inside the batch comes from each
 * token's position).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* A sequence: what one conversation keeps between steps. */
struct grok_seq {
    const grok_model *m;
    grok_dist sh;             /* the share of the model this process computes */
    int64_t n_ctx;            /* positions the cache holds */
    int64_t pos;              /* tokens in the cache */
    grok_type kv_type;        /* f32 or f16 */
    size_t kv_elt;            /* bytes per cached value */
    void *k_cache;            /* [n_layers][n_kv_heads][n_ctx][head_dim] (this share's layers and heads) */
    void *v_cache;            /* same */
    int32_t *tokens;          /* [n_ctx] the cached tokens (for PAD masking, prefix reuse) */
    float *logits;            /* [n_vocab] of the last token decoded */
    int64_t logits_pos;       /* the position count logits belong to (-1: none), so a copy
                         * knows whether they are its last token's */
    grok_routing_fn route_fn; /* the router's record of this sequence's tokens, or NULL */
    void *route_ud;
    grok_seq_params accounted; /* as counted in the model's memory plan, when counted */
    bool counted;
};

static size_t kv_off(const grok_seq *c, int64_t il, int64_t h, int64_t pos);

/* A runner: the threads and the scratch of one forward step of up to
 * n_batch tokens, whichever sequences they belong to. */
struct grok_runner {
    const grok_model *m;
    grok_dist sh;
    grok_threadpool *pool;
    bool own_pool;
    grok_kernel_mode mode;      /* the kernels its steps use (GROK_KERNELS_DEFAULT: the process's) */
    grok_kernel_mode step_mode; /* mode resolved for the step running */
    int64_t n_batch;
    float *h;             /* [n_batch][d_model] residual stream */
    float *x;             /* [n_batch][d_model] normed input of a block */
    float *q;             /* [n_batch][n_heads*head_dim] */
    float *k;             /* [n_batch][n_kv_heads*head_dim] */
    float *v;             /* [n_batch][n_kv_heads*head_dim] */
    float *att;           /* [n_batch][n_heads*head_dim] */
    float *proj;          /* [n_batch][d_model] output of Wo / of the MoE */
    float *rope_cs;       /* [n_batch][head_dim] cos then sin halves */
    float *scores;        /* [n_threads][G][scores_ctx] attention probabilities of a query group */
    int64_t scores_ctx;   /* positions a row of scores holds: the longest sequence seen */
    float *router;        /* [n_batch][n_experts] */
    int32_t *sel;         /* [n_batch][n_experts_used] selected experts */
    float *gates;         /* [n_batch][n_experts_used] their gate probabilities */
    int32_t *group;       /* [n_batch] tokens routed to one expert */
    float *gx;            /* [n_batch][d_model] gathered inputs of one expert */
    float *hg;            /* [n_batch][n_ff] gate branch, then the product */
    float *hu;            /* [n_batch][n_ff] linear branch */
    float *eo;            /* [n_batch][d_model] expert output */
    struct batch_tok *bt; /* [n_batch] who each token of the step belongs to */
    float *lbuf;          /* [lbuf_rows][n_vocab] logits of a multi-sequence step */
    int64_t lbuf_rows;
    float *vloc; /* [vloc_rows][v1-v0] this rank's logit columns (distributed) */
    int64_t vloc_rows;
    grok_step_stats last; /* what the last step read */
    bool nf_seen;         /* pipeline: this rank's layers went non-finite this step (message in nf_msg) */
    char nf_msg[GROK_ERR_SIZE];
    int64_t trace_at;           /* the routing trace's row of the step's first token */
    grok_matmul_input_fn in_fn; /* sees every product's input rows (imatrix), or NULL */
    void *in_ud;
};

/* The simple case: one runner that owns one sequence. */
struct grok_context {
    grok_runner *r;
    grok_seq *s;
};

/* One token of a forward step: the sequence whose cache it extends, its
 * position there, and where its logits go (NULL: not needed). */
typedef struct batch_tok {
    grok_seq *seq;
    int64_t pos;
    int32_t token;
    float *logits;
} batch_tok;

/* calloc of a*b*c bytes with overflow check. */
static void *alloc3(int64_t a, int64_t b, size_t c) {
    if (a <= 0 || b <= 0) return NULL;
    if ((uint64_t)a > SIZE_MAX / (uint64_t)b || (size_t)(a * b) > SIZE_MAX / c) return NULL;
    return calloc((size_t)(a * b), c);
}

/* ---- sequences ---- */

grok_seq_params grok_seq_default_params(void) {
    grok_seq_params p = {.n_ctx = 0, .kv_type = GROK_TYPE_F32};
    return p;
}

void grok_seq_free(grok_seq *s) {
    if (!s) return;
    if (s->counted) grok_model_seq_account((grok_model *)s->m, &s->accounted, -1);
    free(s->k_cache);
    free(s->v_cache);
    free(s->tokens);
    free(s->logits);
    free(s);
}

grok_seq *grok_seq_create(const grok_model *m, const grok_seq_params *p, char *err, size_t err_size) {
    const grok_hparams *hp = &m->hp;
    grok_seq_params dp = grok_seq_default_params();
    if (!p) p = &dp;
    if (p->kv_type != GROK_TYPE_F32 && p->kv_type != GROK_TYPE_F16) {
        snprintf(err, err_size, "KV cache type must be f32 or f16");
        return NULL;
    }
    if (p->n_ctx < 0) {
        snprintf(err, err_size, "context length must not be negative");
        return NULL;
    }
    grok_seq *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->m = m;
    s->sh = grok_model_share(m);
    s->n_ctx = p->n_ctx > 0 ? p->n_ctx : hp->n_ctx_train;
    s->kv_type = p->kv_type;
    s->kv_elt = p->kv_type == GROK_TYPE_F16 ? 2 : 4;
    /* Only this share's layers and KV heads are cached (at least one
     * element, so that an empty share still allocates). */
    const int64_t nkvh = s->sh.kvh1 - s->sh.kvh0, kvd = nkvh > 0 ? nkvh * hp->head_dim : 1;
    s->k_cache = alloc3((s->sh.l1 - s->sh.l0) * s->n_ctx, kvd, s->kv_elt);
    s->v_cache = alloc3((s->sh.l1 - s->sh.l0) * s->n_ctx, kvd, s->kv_elt);
    s->tokens = alloc3(s->n_ctx, 1, sizeof(int32_t));
    s->logits = alloc3(hp->n_vocab, 1, sizeof(float));
    if (!s->k_cache || !s->v_cache || !s->tokens || !s->logits) goto oom;
    s->logits_pos = -1;
    s->accounted = *p;
    s->accounted.n_ctx = s->n_ctx;
    s->counted = true;
    grok_model_seq_account((grok_model *)m, &s->accounted, 1); /* the model's bookkeeping: logically const */
    return s;
oom:
    snprintf(err, err_size, "out of memory for a KV cache of %" PRId64 " tokens",
             p->n_ctx > 0 ? p->n_ctx : hp->n_ctx_train);
    grok_seq_free(s);
    return NULL;
}

int64_t grok_seq_pos(const grok_seq *s) { return s->pos; }
int64_t grok_seq_n_ctx(const grok_seq *s) { return s->n_ctx; }
const int32_t *grok_seq_tokens(const grok_seq *s) { return s->tokens; }
const float *grok_seq_logits(const grok_seq *s) { return s->logits; }
void grok_seq_truncate(grok_seq *s, int64_t pos) {
    if (pos >= 0 && pos < s->pos) s->pos = pos;
}

int grok_seq_copy(grok_seq *dst, const grok_seq *src, int64_t n_tokens, char *err, size_t err_size) {
    if (!dst || !src) {
        snprintf(err, err_size, "seq_copy: no %s sequence given", dst ? "source" : "destination");
        return GROK_ERR_INPUT;
    }
    if (dst->m != src->m) {
        snprintf(err, err_size, "seq_copy: the sequences belong to different models");
        return GROK_ERR_INPUT;
    }
    if (dst->kv_type != src->kv_type) {
        snprintf(err, err_size, "seq_copy: KV cache types differ (%s into %s)",
                 grok_type_get_traits(src->kv_type)->name, grok_type_get_traits(dst->kv_type)->name);
        return GROK_ERR_INPUT;
    }
    if (n_tokens < 0 || n_tokens > src->pos) {
        snprintf(err, err_size, "seq_copy: %" PRId64 " tokens asked, the source holds %" PRId64, n_tokens,
                 src->pos);
        return GROK_ERR_INPUT;
    }
    if (n_tokens > dst->n_ctx) {
        snprintf(err, err_size,
                 "seq_copy: %" PRId64 " tokens do not fit the destination's context of %" PRId64, n_tokens,
                 dst->n_ctx);
        return GROK_ERR_CTX_FULL;
    }
    if (dst != src) {
        /* one head's positions are contiguous: a block per (layer, head) */
        const int64_t KVH = src->sh.kvh1 - src->sh.kvh0;
        const size_t bytes = (size_t)n_tokens * (size_t)src->m->hp.head_dim * src->kv_elt;
        for (int64_t il = src->sh.l0; il < src->sh.l1 && bytes; il++)
            for (int64_t h = 0; h < KVH; h++) {
                const size_t od = kv_off(dst, il, h, 0) * dst->kv_elt,
                             os = kv_off(src, il, h, 0) * src->kv_elt;
                memcpy((uint8_t *)dst->k_cache + od, (const uint8_t *)src->k_cache + os, bytes);
                memcpy((uint8_t *)dst->v_cache + od, (const uint8_t *)src->v_cache + os, bytes);
            }
        memcpy(dst->tokens, src->tokens, (size_t)n_tokens * sizeof(int32_t));
        if (n_tokens > 0 && n_tokens == src->logits_pos) {
            memcpy(dst->logits, src->logits, (size_t)src->m->hp.n_vocab * sizeof(float));
            dst->logits_pos = n_tokens;
        } else {
            dst->logits_pos = -1;
        }
    } else if (n_tokens != src->logits_pos) {
        dst->logits_pos = -1;
    }
    dst->pos = n_tokens;
    return GROK_OK;
}

/* ---- runners ---- */

grok_runner_params grok_runner_default_params(void) {
    grok_runner_params p = {.n_threads = 0, .pool = NULL, .n_batch = 256};
    return p;
}

void grok_runner_free(grok_runner *r) {
    if (!r) return;
    if (r->own_pool) grok_threadpool_free(r->pool);
    void *bufs[] = {r->h,       r->x,      r->q,      r->k,   r->v,     r->att,   r->proj,
                    r->rope_cs, r->scores, r->router, r->sel, r->gates, r->group, r->gx,
                    r->hg,      r->hu,     r->eo,     r->bt,  r->lbuf,  r->vloc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(r);
}

grok_runner *grok_runner_create(const grok_model *m, const grok_runner_params *p, char *err,
                                size_t err_size) {
    const grok_hparams *hp = &m->hp;
    grok_runner_params dp = grok_runner_default_params();
    if (!p) p = &dp;
    if (p->n_batch < 0) {
        snprintf(err, err_size, "batch size must not be negative");
        return NULL;
    }
    grok_runner *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->m = m;
    r->sh = grok_model_share(m);
    r->mode = grok_model_kernel_mode(m);
    r->n_batch = p->n_batch > 0 ? p->n_batch : 256;
    if (p->pool) {
        r->pool = p->pool;
    } else {
        r->pool = grok_threadpool_create(p->n_threads);
        r->own_pool = true;
        if (!r->pool) goto oom;
    }
    /* the memory plan, the packed weights, the expert cache: the model's caches, logically const */
    grok_model_prepare((grok_model *)m, &r->sh, r->pool, r->n_batch);
    const int64_t B = r->n_batch, d = hp->d_model;
    /* Only this share's heads and FFN rows are computed (at least one
     * element each, so that an empty share still allocates). */
    const int64_t G = hp->n_heads / hp->n_kv_heads, nkvh = r->sh.kvh1 - r->sh.kvh0;
    const int64_t kvd = nkvh > 0 ? nkvh * hp->head_dim : 1, qd = kvd * (nkvh > 0 ? G : 1);
    const int64_t nff = r->sh.f1 > r->sh.f0 ? r->sh.f1 - r->sh.f0 : 1;
    r->h = alloc3(B, d, sizeof(float));
    r->x = alloc3(B, d, sizeof(float));
    r->q = alloc3(B, qd, sizeof(float));
    r->k = alloc3(B, kvd, sizeof(float));
    r->v = alloc3(B, kvd, sizeof(float));
    r->att = alloc3(B, qd, sizeof(float));
    r->proj = alloc3(B, d, sizeof(float));
    r->rope_cs = alloc3(B, hp->head_dim, sizeof(float));
    r->router = alloc3(B, hp->n_experts, sizeof(float));
    r->sel = alloc3(B, hp->n_experts_used, sizeof(int32_t));
    r->gates = alloc3(B, hp->n_experts_used, sizeof(float));
    r->group = alloc3(B, 1, sizeof(int32_t));
    r->gx = alloc3(B, d, sizeof(float));
    r->hg = alloc3(B, nff, sizeof(float));
    r->hu = alloc3(B, nff, sizeof(float));
    r->eo = alloc3(B, d, sizeof(float));
    r->bt = alloc3(B, 1, sizeof(batch_tok));
    if (!r->bt || !r->h || !r->x || !r->q || !r->k || !r->v || !r->att || !r->proj || !r->rope_cs ||
        !r->router || !r->sel || !r->gates || !r->group || !r->gx || !r->hg || !r->hu || !r->eo)
        goto oom;
    return r;
oom:
    snprintf(err, err_size, "out of memory for a runner of %" PRId64 " tokens a step",
             p->n_batch > 0 ? p->n_batch : 256);
    grok_runner_free(r);
    return NULL;
}

int64_t grok_runner_n_batch(const grok_runner *r) { return r->n_batch; }
grok_step_stats grok_runner_last_step(const grok_runner *r) { return r->last; }
void grok_runner_set_kernel_mode(grok_runner *r, grok_kernel_mode mode) { r->mode = mode; }
void grok_runner_set_input_hook(grok_runner *r, grok_matmul_input_fn fn, void *user) {
    r->in_fn = fn;
    r->in_ud = fn ? user : NULL;
}

/* Hands one product's input rows to the runner's hook. Only a single
 * process calls it: a rank of a split model holds a share of some inputs
 * (the down projections' columns), which is not what the weight reads. */
static void see_input(const grok_runner *r, int64_t layer, const char *what, int64_t expert, const float *x,
                      int64_t n_rows, int64_t n_cols) {
    if (!r->in_fn || r->sh.n_ranks > 1 || n_rows <= 0) return;
    char name[GROK_GGUF_MAX_NAME + 1];
    if (layer < 0)
        snprintf(name, sizeof name, "%s.weight", what);
    else
        snprintf(name, sizeof name, "blk.%" PRId64 ".%s.weight", layer, what);
    const grok_matmul_input in = {name, layer,  expert, expert < 0 ? 1 : r->m->hp.n_experts,
                                  x,    n_rows, n_cols};
    r->in_fn(r->in_ud, &in);
}

/* Grows the attention scratch to n_pos positions a row. */
static int ensure_scores(grok_runner *r, int64_t n_pos, char *err, size_t err_size) {
    if (n_pos <= r->scores_ctx) return 0;
    const grok_hparams *hp = &r->m->hp;
    const int64_t rows = (int64_t)grok_threadpool_size(r->pool) * (hp->n_heads / hp->n_kv_heads);
    float *b = alloc3(rows, n_pos, sizeof(float));
    if (!b) {
        snprintf(err, err_size, "out of memory for attention over %" PRId64 " positions", n_pos);
        return GROK_ERR_NOMEM;
    }
    free(r->scores);
    r->scores = b, r->scores_ctx = n_pos;
    return 0;
}

/* ---- the one-sequence context ---- */

grok_context_params grok_context_default_params(void) {
    grok_context_params p = {
        .n_ctx = 0, .kv_type = GROK_TYPE_F32, .n_threads = 0, .pool = NULL, .n_batch = 256};
    return p;
}

void grok_context_free(grok_context *c) {
    if (!c) return;
    grok_runner_free(c->r);
    grok_seq_free(c->s);
    free(c);
}

grok_context *grok_context_create(const grok_model *m, const grok_context_params *p, char *err,
                                  size_t err_size) {
    grok_context_params dp = grok_context_default_params();
    if (!p) p = &dp;
    grok_seq_params sp = {.n_ctx = p->n_ctx, .kv_type = p->kv_type};
    grok_runner_params rp = {.n_threads = p->n_threads, .pool = p->pool, .n_batch = p->n_batch};
    grok_context *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (!(c->s = grok_seq_create(m, &sp, err, err_size))) goto fail;
    /* a step longer than the cache could never run */
    if (rp.n_batch <= 0) rp.n_batch = 256;
    if (rp.n_batch > c->s->n_ctx) rp.n_batch = c->s->n_ctx;
    if (!(c->r = grok_runner_create(m, &rp, err, err_size))) goto fail;
    return c;
fail:
    grok_context_free(c);
    return NULL;
}

grok_runner *grok_context_runner(grok_context *c) { return c->r; }
grok_seq *grok_context_seq(grok_context *c) { return c->s; }
int64_t grok_context_pos(const grok_context *c) { return c->s->pos; }
int64_t grok_context_n_ctx(const grok_context *c) { return c->s->n_ctx; }
int64_t grok_context_n_batch(const grok_context *c) { return c->r->n_batch; }
const int32_t *grok_context_tokens(const grok_context *c) { return c->s->tokens; }
const float *grok_context_logits(const grok_context *c) { return c->s->logits; }
void grok_context_truncate(grok_context *c, int64_t pos) { grok_seq_truncate(c->s, pos); }
grok_step_stats grok_context_last_step(const grok_context *c) { return c->r->last; }

void grok_seq_set_routing_hook(grok_seq *s, grok_routing_fn fn, void *user) {
    s->route_fn = fn;
    s->route_ud = fn ? user : NULL;
}

void grok_context_set_routing_hook(grok_context *c, grok_routing_fn fn, void *user) {
    grok_seq_set_routing_hook(c->s, fn, user);
}

/* ---- elementwise pieces ---- */

static void rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (int64_t i = 0; i < n; i++) out[i] = w[i] * (x[i] * inv);
}

/* Half-split ("NeoX") rotation of one head vector by the angles in cs
 * (cos of the D/2 frequencies, then their sin). */
static void rope_apply(float *x, const float *cs, int64_t D) {
    const int64_t h = D / 2;
    for (int64_t i = 0; i < h; i++) {
        float c = cs[i], s = cs[h + i], a = x[i], b = x[i + h];
        x[i] = a * c - b * s;
        x[i + h] = b * c + a * s;
    }
}

static void rope_angles(float *cs, int64_t pos, int64_t D, float base) {
    const int64_t h = D / 2;
    for (int64_t i = 0; i < h; i++) {
        double theta = (double)pos / pow((double)base, (double)(2 * i) / (double)D);
        cs[i] = (float)cos(theta);
        cs[h + i] = (float)sin(theta);
    }
}

/* ---- attention ---- */

/* Jobs are (token, KV head) pairs, each taking the KV head's whole query
 * group so that every K and V row is read once per group; when there are
 * fewer pairs than threads (one token, few KV heads), each group is split
 * into `split` parts of its query heads. The kernels compute every head's
 * numbers the same way whatever part it is in, so the split (which
 * depends on the batch and the thread count) never changes a result. */
typedef struct {
    grok_runner *r;
    int64_t il, n, split;
} attn_job;

/* Element offset of (layer il, KV head h of this share, position pos) in
 * a cache laid out [layer][KV head][n_ctx][head_dim]: one head's keys (and
 * values) are contiguous across positions, so attention streams them. */
static size_t kv_off(const grok_seq *c, int64_t il, int64_t h, int64_t pos) {
    const int64_t KVH = c->sh.kvh1 - c->sh.kvh0, D = c->m->hp.head_dim;
    return (((size_t)(il - c->sh.l0) * (size_t)KVH + (size_t)h) * (size_t)c->n_ctx + (size_t)pos) * (size_t)D;
}

static void attn_task(void *arg, int ith, int nth) {
    const attn_job *j = arg;
    const grok_runner *S = j->r;
    const grok_hparams *hp = &S->m->hp;
    const int64_t D = hp->head_dim, G = hp->n_heads / hp->n_kv_heads;
    const int64_t KVH = S->sh.kvh1 - S->sh.kvh0, H = KVH * G, ld = S->scores_ctx;
    float *p = S->scores + (size_t)ith * (size_t)G * (size_t)ld; /* [G][scores_ctx] */
    const float cap = hp->attn_softcap, scale = hp->attn_scale;
    const int32_t pad = hp->pad_id;
    const grok_vec_kernels *vk = grok_vec_select_isa(S->step_mode, S->m->isa);
    const int64_t per_tok = KVH * j->split;

    for (int64_t job = ith; job < j->n * per_tok; job += nth) {
        const int64_t t = job / per_tok, kvh = job % per_tok / j->split, part = job % j->split;
        const int64_t g0 = G * part / j->split, nq = G * (part + 1) / j->split - g0;
        if (nq == 0) continue;
        const grok_seq *c = S->bt[t].seq; /* the cache this token attends over */
        const size_t row = (size_t)D * c->kv_elt;
        const size_t off = kv_off(c, j->il, kvh, 0) * c->kv_elt;
        const int64_t npos = S->bt[t].pos + 1; /* causal window: keys 0..pos */
        const int64_t head0 = kvh * G + g0;
        vk->scores((const uint8_t *)c->k_cache + off, row, c->kv_type, S->q + (t * H + head0) * D, nq, D,
                   npos, p, ld);
        for (int64_t g = 0; g < nq; g++) {
            float *pg = p + g * ld;
            vk->softcap(pg, npos, scale, cap);
            float mx = -INFINITY;
            bool any = false;
            for (int64_t s = 0; s < npos; s++) {
                if (pad >= 0 && c->tokens[s] == pad) {
                    pg[s] = -INFINITY;
                } else {
                    if (pg[s] > mx) mx = pg[s];
                    any = true;
                }
            }
            /* Every key masked (only PAD so far): the official code's -1e30
             * fill makes all scores equal, i.e. a plain average; over the
             * causal window here, since a cache cannot see later tokens. */
            double sum = (double)npos;
            if (any)
                sum = vk->exp_sum(pg, npos, mx);
            else
                for (int64_t s = 0; s < npos; s++) pg[s] = 1.0f;
            const float inv = (float)(1.0 / sum);
            for (int64_t s = 0; s < npos; s++) pg[s] *= inv;
        }
        vk->wsum((const uint8_t *)c->v_cache + off, row, c->kv_type, p, ld, nq, D, npos,
                 S->att + (t * H + head0) * D);
    }
}

/* ---- MoE ---- */

/* Bytes of a (sliced) weight matrix: what one product reads of it. */
static int64_t mat_bytes(const grok_mat *w) { return w->rows * grok_type_row_size(w->type, w->cols); }

/* The top k of r[0..E) into out (ties: the lower index): the router's
 * choice, and route_hooks' prediction of the next layer's. */
static void top_k(const float *r, int64_t E, int64_t k, int32_t *out) {
    for (int64_t j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            bool taken = false;
            for (int64_t jj = 0; jj < j; jj++) taken |= out[jj] == e;
            if (!taken && (best < 0 || r[e] > r[best])) best = e;
        }
        out[j] = (int32_t)best;
    }
}

/* Router softmax and top-k (ties: the lower expert index), gates are the
 * raw probabilities (no renormalisation). PAD tokens are routed like any
 * other: the official Router can multiply by a padding mask, but
 * MoELayer.__call__ drops the mask before calling it. */
double grok_route_token(float *r, int64_t E, int64_t K, int32_t *sel, float *gates) {
    float mx = r[0];
    for (int64_t e = 1; e < E; e++) mx = fmaxf(mx, r[e]);
    double sum = 0;
    for (int64_t e = 0; e < E; e++) sum += (r[e] = expf(r[e] - mx));
    for (int64_t e = 0; e < E; e++) r[e] = (float)(r[e] / sum);
    top_k(r, E, K, sel);
    if (gates)
        for (int64_t k = 0; k < K; k++) gates[k] = r[sel[k]];
    return (double)mx + log(sum);
}

/* Layer il's routing of the batch's n tokens, each reported to its
 * sequence's routing hook (grok_routing: grok trace, grok serve). */
static void route(grok_runner *c, int64_t il, int64_t n) {
    const grok_hparams *hp = &c->m->hp;
    const int64_t E = hp->n_experts, K = hp->n_experts_used;
    for (int64_t t = 0; t < n; t++) {
        float *r = c->router + t * E;
        grok_route_token(r, E, K, c->sel + t * K, c->gates + t * K);
        const grok_seq *q = c->bt[t].seq;
        if (q->route_fn) {
            const grok_routing rec = {c->bt[t].pos,   c->bt[t].token,  il, E, K, r,
                                      c->sel + t * K, c->gates + t * K};
            q->route_fn(q->route_ud, &rec);
        }
    }
}

/* hg[i] = gelu(hg[i]) * hu[i] over [0, n), split across the pool when it
 * is large: a batched step's m tokens x n_ff tanh are ms on one core, while
 * one token of a small expert is cheaper than waking the pool. */
typedef struct {
    float *hg;
    const float *hu;
    int64_t n;
    grok_kernel_mode mode;
    grok_isa isa;
} glu_job;

static void glu_task(void *arg, int ith, int nth) {
    const glu_job *j = arg;
    const int64_t a = j->n * ith / nth, b = j->n * (ith + 1) / nth;
    grok_vec_select_isa(j->mode, j->isa)->gelu_mul(j->hg + a, j->hu + a, b - a);
}

/* Experts in waves: as many as fit the scratch rows (n_batch tokens'
 * worth), in order, with their gate and up products in one pass of the
 * pool and their down products in another, so a decode step wakes the
 * pool twice per layer for its experts rather than three times per expert.
 * An expert that takes every token of the step, in order (always so for a
 * single token), reads x where it lies, so its gate/up inputs are
 * quantized once for the whole wave. */
#define WAVE (GROK_MATMUL_MAX_OPS / 2)

static int moe(grok_runner *c, const grok_layer *L, int64_t il, int64_t n, char *err, size_t err_size) {
    const grok_hparams *hp = &c->m->hp;
    const int64_t d = hp->d_model, K = hp->n_experts_used, ff = c->sh.f1 - c->sh.f0;
    memset(c->proj, 0, (size_t)(n * d) * sizeof(float));
    if (ff <= 0) return 0;
    /* Through the expert cache, a wave holds no more experts than it has
     * slots (they are all held while the wave computes). */
    grok_xcache *xc = c->m->xc && grok_xcache_serves(c->m->xc, c->step_mode) ? c->m->xc : NULL;
    const int wave_max = xc && grok_xcache_slots(xc) < WAVE ? (int)grok_xcache_slots(xc) : WAVE;
    int64_t e = c->sh.e0;
    while (e < c->sh.e1) {
        int64_t at[WAVE + 1] = {0}, ew[WAVE];
        grok_mat gate[WAVE], up[WAVE], down[WAVE];
        grok_matmul_op ops[2 * WAVE];
        int nw = 0;
        for (; e < c->sh.e1 && nw < wave_max; e++) {
            int64_t m = 0;
            int32_t *grp = c->group + at[nw];
            bool all = true; /* every token of the step, in order */
            for (int64_t t = 0; t < n; t++)
                for (int64_t k = 0; k < K; k++)
                    if (c->sel[t * K + k] == e && c->gates[t * K + k] != 0) {
                        if (at[nw] + m == c->n_batch) goto full; /* the next wave takes it */
                        all &= m == t;
                        grp[m++] = (int32_t)(t * K + k);
                    }
            if (m == 0) continue; /* this expert's weights are not read at all */
            all &= m == n;
            const float *xin = c->x;
            if (!all) {
                xin = c->gx + at[nw] * d;
                for (int64_t i = 0; i < m; i++)
                    memcpy(c->gx + (at[nw] + i) * d, c->x + (grp[i] / K) * d, (size_t)d * sizeof(float));
            }
            /* this share's rows of expert e (all of them without a hook) */
            ew[nw] = e;
            if (xc) {
                if (grok_xcache_acquire(xc, il, e, &gate[nw], &up[nw], &down[nw], err, err_size)) {
                    for (int w = 0; w < nw; w++) grok_xcache_release(xc, il, ew[w]);
                    return GROK_ERR_IO;
                }
            } else {
                gate[nw] = grok_mat_rows(grok_layer_expert(L, 0, e), c->sh.f0, ff);
                up[nw] = grok_mat_rows(grok_layer_expert(L, 1, e), c->sh.f0, ff);
                down[nw] = grok_mat_cols(grok_layer_expert(L, 2, e), c->sh.f0, ff);
            }
            see_input(c, il, "ffn_gate_exps", e, xin, m, d);
            see_input(c, il, "ffn_up_exps", e, xin, m, d);
            ops[2 * nw] = (grok_matmul_op){&gate[nw], xin, d, c->hg + at[nw] * ff, ff, m};
            ops[2 * nw + 1] = (grok_matmul_op){&up[nw], xin, d, c->hu + at[nw] * ff, ff, m};
            at[nw + 1] = at[nw] + m;
            nw++;
        }
    full:
        if (nw == 0) continue;
        grok_matmul_ops_in(c->pool, c->step_mode, ops, 2 * nw);
        const int64_t rows = at[nw];
        glu_job gj = {c->hg, c->hu, rows * ff, c->step_mode, c->m->isa};
        if (rows * ff >= 16384)
            grok_threadpool_run(c->pool, glu_task, &gj); /* else not worth a barrier */
        else
            glu_task(&gj, 0, 1);
        for (int w = 0; w < nw; w++) {
            see_input(c, il, "ffn_down_exps", ew[w], c->hg + at[w] * ff, at[w + 1] - at[w], ff);
            ops[w] =
                (grok_matmul_op){&down[w], c->hg + at[w] * ff, ff, c->eo + at[w] * d, d, at[w + 1] - at[w]};
        }
        grok_matmul_ops_in(c->pool, c->step_mode, ops, nw);
        for (int w = 0; w < nw; w++) {
            c->last.expert_reads++;
            c->last.weight_bytes += mat_bytes(&gate[w]) + mat_bytes(&up[w]) + mat_bytes(&down[w]);
            for (int64_t i = at[w]; i < at[w + 1]; i++) {
                const int64_t t = c->group[i] / K;
                const float g = c->gates[c->group[i]];
                for (int64_t j = 0; j < d; j++) c->proj[t * d + j] += g * c->eo[i * d + j];
            }
            if (xc) grok_xcache_release(xc, il, ew[w]);
        }
    }
    return 0;
}

/* What the expert cache and the routing trace learn from layer il's
 * router: the experts it chose (the cache starts reading them at once),
 * and those the next layer's router picks from the residual stream as it
 * is now, normed as that layer will norm it (Eliseev & Mazur's
 * speculative prefetch: Grok's routers are tiny), which the cache reads
 * ahead while this layer computes. Neither changes any result. */
static void route_hooks(grok_runner *S, int64_t il, int64_t n) {
    const grok_model *m = S->m;
    const grok_hparams *hp = &m->hp;
    grok_xcache *xc = m->xc && grok_xcache_serves(m->xc, S->step_mode) ? m->xc : NULL;
    grok_route_trace *tr = m->trace && m->trace->on ? m->trace : NULL;
    if (!xc && !tr) return;
    const int64_t E = hp->n_experts, K = hp->n_experts_used, d = hp->d_model;
    if (tr && il == S->sh.l0) S->trace_at = grok_route_trace_reserve(tr, n);
    const bool trace = tr && S->trace_at >= 0;
    uint8_t *mask = calloc((size_t)E, 1);
    int32_t *list = malloc((size_t)E * sizeof *list);
    if (!mask || !list) goto done;
    int64_t nl = 0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t k = 0; k < K; k++) {
            const int32_t e = S->sel[t * K + k];
            if (S->gates[t * K + k] != 0) mask[e] = 1;
            if (trace) tr->chosen[((S->trace_at + t) * tr->n_layers + il) * K + k] = e;
        }
    for (int64_t e = S->sh.e0; e < S->sh.e1; e++)
        if (mask[e]) list[nl++] = (int32_t)e;
    if (xc) grok_xcache_want(xc, il, list, nl);
    if (il + 1 >= S->sh.l1 || !(trace || (xc && m->params.memory.prefetch))) goto done;
    const grok_layer *N = &m->layers[il + 1];
    for (int64_t t = 0; t < n; t++) rmsnorm(S->gx + t * d, S->h + t * d, N->ffn_norm, d, hp->norm_eps);
    grok_matmul_in(S->pool, S->step_mode, &N->router, S->gx, d, S->router, E, n);
    memset(mask, 0, (size_t)E);
    for (int64_t t = 0; t < n; t++) {
        int32_t *pick = trace ? tr->predicted + ((S->trace_at + t) * tr->n_layers + il + 1) * K : list;
        top_k(S->router + t * E, E, K, pick);
        for (int64_t k = 0; k < K; k++) mask[pick[k]] = 1;
    }
    nl = 0;
    for (int64_t e = S->sh.e0; e < S->sh.e1; e++)
        if (mask[e]) list[nl++] = (int32_t)e;
    if (xc && m->params.memory.prefetch) grok_xcache_prefetch(xc, il + 1, list, nl);
done:
    free(mask), free(list);
}

/* ---- one batch ---- */

static void store_kv(grok_seq *c, int64_t il, int64_t pos, const float *k, const float *v) {
    const int64_t KVH = c->sh.kvh1 - c->sh.kvh0, D = c->m->hp.head_dim;
    const grok_type_kernels *kf = grok_kernels_get(GROK_TYPE_F16);
    for (int64_t h = 0; h < KVH; h++) {
        const size_t off = kv_off(c, il, h, pos);
        if (c->kv_type == GROK_TYPE_F32) {
            memcpy((float *)c->k_cache + off, k + h * D, (size_t)D * 4);
            memcpy((float *)c->v_cache + off, v + h * D, (size_t)D * 4);
        } else {
            kf->from_f32(k + h * D, (uint8_t *)c->k_cache + off * 2, D);
            kf->from_f32(v + h * D, (uint8_t *)c->v_cache + off * 2, D);
        }
    }
}

/* ---- non-finite activations ----
 * A NaN or Inf in the weights (or an overflow) turns the residual stream
 * non-finite, and from there every later layer and the logits: the step
 * ends with GROK_ERR_NONFINITE instead of handing back garbage. The
 * stream is tested after each sub-block (the embedding, attention, the
 * MoE) and the logits after the head: 2 d_model floats per token and
 * layer, nothing beside the weights a token reads. Only when a test fails
 * are the sub-block's intermediates (still in the scratch) looked at, to
 * name the tensor whose output first went bad. */
enum { NF_EMBD, NF_ATTN, NF_MOE, NF_HEAD };

/* Row of x[0..n)[d] holding NaN or Inf (all exponent bits set), or -1.
 * An integer test, so the loop vectorizes. */
static int64_t nonfinite_row(const float *x, int64_t n, int64_t d) {
    for (int64_t t = 0; t < n; t++) {
        uint32_t bad = 0;
        for (int64_t i = 0; i < d; i++) {
            uint32_t b;
            memcpy(&b, x + t * d + i, 4);
            bad |= (b & 0x7f800000u) == 0x7f800000u;
        }
        if (bad) return t;
    }
    return -1;
}

static bool row_bad(const float *x, int64_t t, int64_t d) { return nonfinite_row(x + t * d, 1, d) == 0; }

/* Writes what went non-finite for token t of the step (err) and returns
 * GROK_ERR_NONFINITE. */
static int nonfinite(grok_runner *S, int where, int64_t il, int64_t t, char *err, size_t err_size) {
    const grok_model *m = S->m;
    const grok_hparams *hp = &m->hp;
    const int64_t d = hp->d_model, G = hp->n_heads / hp->n_kv_heads;
    const int64_t KVH = S->sh.kvh1 - S->sh.kvh0, qd = KVH * G * hp->head_dim, kvd = KVH * hp->head_dim;
    const grok_layer *L = where == NF_ATTN || where == NF_MOE ? &m->layers[il] : NULL;
    char what[320];
    const char *norm = NULL;
    switch (where) {
    case NF_EMBD:
        snprintf(what, sizeof what, "in the embedding: row %" PRId32 " of token_embd.weight", S->bt[t].token);
        break;
    case NF_ATTN:
        norm = row_bad(L->attn_norm, 0, d) ? "attn_norm" : NULL;
        if (!norm && row_bad(S->q, t, qd)) norm = "attn_q";
        if (!norm && row_bad(S->k, t, kvd)) norm = "attn_k";
        if (!norm && row_bad(S->v, t, kvd)) norm = "attn_v";
        if (!norm && row_bad(S->att, t, qd)) norm = "(the attention over the cached keys and values)";
        if (!norm && row_bad(S->proj, t, d)) norm = "attn_output";
        if (!norm && row_bad(L->attn_out_norm, 0, d)) norm = "attn_output_norm";
        if (norm && norm[0] == '(')
            snprintf(what, sizeof what, "at layer %" PRId64 ", in attention %s", il, norm);
        else if (norm)
            snprintf(what, sizeof what,
                     "at layer %" PRId64 ", in attention: the output of blk.%" PRId64 ".%s.weight", il, il,
                     norm);
        else
            snprintf(what, sizeof what,
                     "at layer %" PRId64 ": the residual stream overflowed after attention", il);
        break;
    case NF_MOE: {
        const int64_t K = hp->n_experts_used;
        norm = row_bad(L->ffn_norm, 0, d)             ? "ffn_norm"
               : row_bad(S->router, t, hp->n_experts) ? "ffn_gate_inp"
                                                      : NULL;
        if (norm) {
            snprintf(what, sizeof what,
                     "at layer %" PRId64 ", in the MoE block: the output of blk.%" PRId64 ".%s.weight", il,
                     il, norm);
        } else if (row_bad(S->proj, t, d)) {
            char ex[96] = "";
            for (int64_t k = 0; k < K && strlen(ex) < sizeof ex - 16; k++)
                snprintf(ex + strlen(ex), sizeof ex - strlen(ex), "%s%" PRId32, k ? ", " : "",
                         S->sel[t * K + k]);
            snprintf(what, sizeof what,
                     "at layer %" PRId64 ", in the MoE block: the output of expert%s %s (blk.%" PRId64
                     ".ffn_gate_exps, ffn_up_exps, ffn_down_exps)",
                     il, K > 1 ? "s" : "", ex, il);
        } else if (row_bad(L->layer_out_norm, 0, d)) {
            snprintf(what, sizeof what,
                     "at layer %" PRId64 ", in the MoE block: the output of blk.%" PRId64
                     ".layer_output_norm.weight",
                     il, il);
        } else {
            snprintf(what, sizeof what,
                     "at layer %" PRId64 ": the residual stream overflowed after the MoE block", il);
        }
        break;
    }
    default:
        snprintf(what, sizeof what, "in the logits: the output of %s",
                 row_bad(m->output_norm, 0, d) ? "output_norm.weight"
                 : m->tied                     ? "the output head (token_embd.weight, tied)"
                                               : "the output head (output.weight)");
    }
    snprintf(err, err_size,
             "decode: NaN or Inf %s (token %" PRId32 " at position %" PRId64 " of its sequence)", what,
             S->bt[t].token, S->bt[t].pos);
    return GROK_ERR_NONFINITE;
}

/* After a sub-block: GROK_ERR_NONFINITE when the stream went bad. In a
 * pipeline the step must still run through every rank (the next one
 * waits for this one's rows), so the first failure is only noted, and
 * rank 0 reports it when the step ends. */
static int check_stream(grok_runner *S, int where, int64_t il, int64_t n, char *err, size_t err_size) {
    const int64_t t = nonfinite_row(S->h, n, S->m->hp.d_model);
    if (t < 0) return 0;
    if (!(S->sh.n_ranks > 1 && S->sh.pipeline)) return nonfinite(S, where, il, t, err, err_size);
    if (!S->nf_seen) nonfinite(S, where, il, t, S->nf_msg, sizeof S->nf_msg);
    S->nf_seen = true;
    return 0;
}

/* The output head distributed: this rank's vocabulary rows for the cnt
 * normed rows in S->x, scaled, then every rank's columns gathered into the
 * rows that want logits (staged through lbuf unless they are consecutive). */
static int dist_head(grok_runner *S, int64_t n, int64_t cnt, float *first, bool contiguous, char *err,
                     size_t err_size) {
    const grok_model *m = S->m;
    const grok_dist *ds = &S->sh;
    const int64_t d = m->hp.d_model, V = m->hp.n_vocab, nv = ds->v1 - ds->v0;
    if (S->vloc_rows < cnt) {
        float *b = realloc(S->vloc, (size_t)cnt * (size_t)(nv > 0 ? nv : 1) * sizeof(float));
        if (!b) goto oom;
        S->vloc = b, S->vloc_rows = cnt;
    }
    if (!contiguous && S->lbuf_rows < cnt) {
        float *b = realloc(S->lbuf, (size_t)cnt * (size_t)V * sizeof(float));
        if (!b) goto oom;
        S->lbuf = b, S->lbuf_rows = cnt;
    }
    if (nv > 0) {
        grok_mat out = grok_mat_rows(m->output, ds->v0, nv);
        grok_matmul_in(S->pool, S->step_mode, &out, S->x, d, S->vloc, nv, cnt);
        for (int64_t i = 0; i < cnt * nv; i++) S->vloc[i] *= m->hp.logit_scale;
    }
    float *full = contiguous ? first : S->lbuf;
    if (ds->gather_vocab(ds->ud, S->vloc, full, cnt, err, err_size)) return GROK_ERR_DIST;
    if (!contiguous)
        for (int64_t t = 0, r = 0; t < n; t++)
            if (S->bt[t].logits) memcpy(S->bt[t].logits, S->lbuf + (r++) * V, (size_t)V * sizeof(float));
    return 0;
oom:
    snprintf(err, err_size, "out of memory for %" PRId64 " rows of logits", cnt);
    return GROK_ERR_NOMEM;
}

/* After the head: the logits of the tokens that want them. In a pipeline
 * rank 0 also reports what its own layers noted (check_stream). */
static int check_logits(grok_runner *S, int64_t n, char *err, size_t err_size) {
    if (S->nf_seen) {
        snprintf(err, err_size, "%s", S->nf_msg);
        return GROK_ERR_NONFINITE;
    }
    for (int64_t t = 0; t < n; t++)
        if (S->bt[t].logits && nonfinite_row(S->bt[t].logits, 1, S->m->hp.n_vocab) == 0) {
            if (S->sh.n_ranks > 1 && S->sh.pipeline)
                snprintf(err, err_size,
                         "decode: NaN or Inf in the logits, from layers another rank computes (token %" PRId32
                         " at position %" PRId64 " of its sequence)",
                         S->bt[t].token, S->bt[t].pos);
            else
                nonfinite(S, NF_HEAD, 0, t, err, err_size);
            return GROK_ERR_NONFINITE;
        }
    return 0;
}

/* Runs the step described by S->bt[0..n) (n <= S->n_batch), using S's
 * scratch and pool. Each token's K/V go into its own sequence's cache
 * before attention, so tokens of one sequence in the same step see each
 * other causally. Logits are computed only for tokens that ask for them.
 * Distributed (S->sh.n_ranks > 1), this process computes its share: split
 * by tensors, the partial sums of Wo and of the MoE are summed across
 * ranks; in a pipeline, the residual stream comes from the previous rank
 * and goes to the next, and rank 0 finishes with the output head. Fails
 * on a failed collective, and with GROK_ERR_NONFINITE when the residual
 * stream or the logits hold NaN or Inf (check_stream). */
static int forward(grok_runner *S, int64_t n, char *err, size_t err_size) {
    const grok_model *m = S->m;
    const grok_hparams *hp = &m->hp;
    const grok_dist *ds = &S->sh;
    const bool pipe = ds->n_ranks > 1 && ds->pipeline, dist = ds->n_ranks > 1 && !pipe;
    const int64_t d = hp->d_model, D = hp->head_dim, G = hp->n_heads / hp->n_kv_heads;
    const int64_t KVH = ds->kvh1 - ds->kvh0, H = KVH * G; /* this share's heads */
    const int64_t qd = H * D, kvd = KVH * D, V = hp->n_vocab;
    /* Row slices of Wq/Wk/Wv and the column slice of Wo for those heads
     * (the whole matrices without a hook). */
    grok_mat wq, wk, wv, wo;
    const grok_type_kernels *ek = grok_kernels_get(m->token_embd.type);
    const batch_tok *bt = S->bt;

    S->step_mode = S->mode == GROK_KERNELS_DEFAULT ? grok_kernels_mode() : S->mode;
    S->last.steps++;
    S->last.tokens += n;
    S->last.weight_bytes += n * (int64_t)m->token_embd.row_bytes;
    for (int64_t t = 0; t < n; t++) {
        if (!pipe || ds->rank == 0) {
            ek->to_f32(m->token_embd.data + (size_t)bt[t].token * m->token_embd.row_bytes, S->h + t * d, d);
            for (int64_t i = 0; i < d; i++) S->h[t * d + i] *= hp->embedding_scale;
        }
        rope_angles(S->rope_cs + t * D, bt[t].pos, D, hp->rope_base);
        bt[t].seq->tokens[bt[t].pos] = bt[t].token;
    }
    if (pipe && ds->rank > 0 && ds->recv_from(ds->ud, ds->rank - 1, S->h, n * d, err, err_size))
        return GROK_ERR_DIST;
    S->nf_seen = false;
    int rc = !pipe || ds->rank == 0 ? check_stream(S, NF_EMBD, 0, n, err, err_size) : 0;
    if (rc) return rc;
    for (int64_t il = ds->l0; il < ds->l1; il++) {
        const grok_layer *L = &m->layers[il];
        wq = grok_mat_rows(L->wq, ds->kvh0 * G * D, qd);
        wk = grok_mat_rows(L->wk, ds->kvh0 * D, kvd);
        wv = grok_mat_rows(L->wv, ds->kvh0 * D, kvd);
        wo = grok_mat_cols(L->wo, ds->kvh0 * G * D, qd);
        S->last.weight_bytes +=
            mat_bytes(&wq) + mat_bytes(&wk) + mat_bytes(&wv) + mat_bytes(&wo) + mat_bytes(&L->router);
        for (int64_t t = 0; t < n; t++) rmsnorm(S->x + t * d, S->h + t * d, L->attn_norm, d, hp->norm_eps);
        const grok_matmul_op qkv[3] = {
            {&wq, S->x, d, S->q, qd, n}, {&wk, S->x, d, S->k, kvd, n}, {&wv, S->x, d, S->v, kvd, n}};
        see_input(S, il, "attn_q", -1, S->x, n, d);
        see_input(S, il, "attn_k", -1, S->x, n, d);
        see_input(S, il, "attn_v", -1, S->x, n, d);
        grok_matmul_ops_in(S->pool, S->step_mode, qkv, 3);
        for (int64_t t = 0; t < n; t++) {
            for (int64_t h = 0; h < H; h++) rope_apply(S->q + t * qd + h * D, S->rope_cs + t * D, D);
            for (int64_t h = 0; h < KVH; h++) rope_apply(S->k + t * kvd + h * D, S->rope_cs + t * D, D);
            store_kv(bt[t].seq, il, bt[t].pos, S->k + t * kvd, S->v + t * kvd);
        }
        attn_job aj = {.r = S, .il = il, .n = n, .split = 1};
        while (aj.split < G && n * KVH * aj.split < grok_threadpool_size(S->pool)) aj.split++;
        grok_threadpool_run(S->pool, attn_task, &aj);
        see_input(S, il, "attn_output", -1, S->att, n, qd);
        if (qd > 0)
            grok_matmul_in(S->pool, S->step_mode, &wo, S->att, qd, S->proj, d, n);
        else
            memset(S->proj, 0, (size_t)(n * d) * sizeof(float));
        if (dist && ds->allreduce_sum(ds->ud, S->proj, n * d, err, err_size)) return GROK_ERR_DIST;
        for (int64_t t = 0; t < n; t++) {
            rmsnorm(S->x + t * d, S->proj + t * d, L->attn_out_norm, d, hp->norm_eps);
            for (int64_t i = 0; i < d; i++) S->h[t * d + i] += S->x[t * d + i];
        }
        if ((rc = check_stream(S, NF_ATTN, il, n, err, err_size))) return rc;
        for (int64_t t = 0; t < n; t++) rmsnorm(S->x + t * d, S->h + t * d, L->ffn_norm, d, hp->norm_eps);
        see_input(S, il, "ffn_gate_inp", -1, S->x, n, d);
        grok_matmul_in(S->pool, S->step_mode, &L->router, S->x, d, S->router, hp->n_experts, n);
        route(S, il, n);
        grok_xcache *xc = m->xc && grok_xcache_serves(m->xc, S->step_mode) ? m->xc : NULL;
        if (xc) grok_xcache_lock(xc); /* one forward pass's MoE at a time holds slots */
        route_hooks(S, il, n);
        rc = moe(S, L, il, n, err, err_size);
        if (xc) grok_xcache_unlock(xc);
        if (rc) return rc;
        if (dist && ds->allreduce_sum(ds->ud, S->proj, n * d, err, err_size)) return GROK_ERR_DIST;
        for (int64_t t = 0; t < n; t++) {
            rmsnorm(S->x + t * d, S->proj + t * d, L->layer_out_norm, d, hp->norm_eps);
            for (int64_t i = 0; i < d; i++) S->h[t * d + i] += S->x[t * d + i];
        }
        if ((rc = check_stream(S, NF_MOE, il, n, err, err_size))) return rc;
    }
    /* The output head is the largest matrix: run it once over the rows that
     * want logits, straight into the caller's buffer when those rows are
     * consecutive in it (grok logits), else through lbuf. */
    int64_t cnt = 0;
    float *first = NULL;
    bool contiguous = true;
    for (int64_t t = 0; t < n; t++) {
        if (!bt[t].logits) continue;
        if (!first) first = bt[t].logits;
        if (bt[t].logits != first + cnt * V) contiguous = false;
        if (pipe) /* the rows travel to rank 0, which norms them */
            memcpy(S->proj + cnt * d, S->h + t * d, (size_t)d * sizeof(float));
        else
            rmsnorm(S->x + cnt * d, S->h + t * d, m->output_norm, d, hp->norm_eps);
        cnt++;
    }
    if (pipe) {
        const int next = (ds->rank + 1) % ds->n_ranks, last = ds->n_ranks - 1;
        if (ds->rank < last && ds->send_to(ds->ud, next, S->h, n * d, err, err_size)) return GROK_ERR_DIST;
        if (ds->rank != 0 && cnt == 0) return 0;
        if (ds->rank == last)
            return ds->send_to(ds->ud, 0, S->proj, cnt * d, err, err_size) ? GROK_ERR_DIST : 0;
        if (ds->rank != 0) return 0;
        if (cnt == 0) return S->nf_seen ? (snprintf(err, err_size, "%s", S->nf_msg), GROK_ERR_NONFINITE) : 0;
        if (ds->recv_from(ds->ud, last, S->proj, cnt * d, err, err_size)) return GROK_ERR_DIST;
        for (int64_t r = 0; r < cnt; r++)
            rmsnorm(S->x + r * d, S->proj + r * d, m->output_norm, d, hp->norm_eps);
    }
    if (cnt == 0) return 0;
    S->last.weight_bytes += mat_bytes(&m->output) * (ds->v1 - ds->v0) / V;
    if (dist)
        return (rc = dist_head(S, n, cnt, first, contiguous, err, err_size))
                   ? rc
                   : check_logits(S, n, err, err_size);
    if (!contiguous && S->lbuf_rows < cnt) {
        float *b = realloc(S->lbuf, (size_t)cnt * (size_t)V * sizeof(float));
        if (b) S->lbuf = b, S->lbuf_rows = cnt;
    }
    see_input(S, -1, m->tied ? "token_embd" : "output", -1, S->x, cnt, d);
    if (contiguous || S->lbuf_rows >= cnt) {
        float *out = contiguous ? first : S->lbuf;
        grok_matmul_in(S->pool, S->step_mode, &m->output, S->x, d, out, V, cnt);
        if (!contiguous)
            for (int64_t t = 0, r = 0; t < n; t++)
                if (bt[t].logits) memcpy(bt[t].logits, S->lbuf + (r++) * V, (size_t)V * sizeof(float));
    } else { /* no memory for the staging rows: one row at a time */
        for (int64_t t = 0, r = 0; t < n; t++)
            if (bt[t].logits)
                grok_matmul_in(S->pool, S->step_mode, &m->output, S->x + (r++) * d, d, bt[t].logits, V, 1);
    }
    for (int64_t t = 0; t < n; t++)
        if (bt[t].logits)
            for (int64_t i = 0; i < V; i++) bt[t].logits[i] *= hp->logit_scale;
    return check_logits(S, n, err, err_size);
}

/* Checks ids and room before anything is written. */
static int check_tokens(const grok_seq *c, const int32_t *tokens, int64_t n, const char *what, char *err,
                        size_t err_size) {
    const int64_t V = c->m->hp.n_vocab;
    if (n <= 0) {
        snprintf(err, err_size, "%s: no tokens given", what);
        return GROK_ERR_INPUT;
    }
    if (n > c->n_ctx - c->pos) {
        snprintf(err, err_size,
                 "%s: %" PRId64 " tokens do not fit: %" PRId64 " of the context's %" PRId64
                 " positions are used",
                 what, n, c->pos, c->n_ctx);
        return GROK_ERR_CTX_FULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V) {
            snprintf(err, err_size, "%s: token %" PRId64 " has id %" PRId32 ", outside [0, %" PRId64 ")",
                     what, i, tokens[i], V);
            return GROK_ERR_INPUT;
        }
    return 0;
}

int grok_runner_decode(grok_runner *r, grok_seq *c, const int32_t *tokens, int64_t n, float *all_logits,
                       char *err, size_t err_size) {
    if (c->m != r->m) {
        snprintf(err, err_size, "decode: the sequence belongs to another model");
        return GROK_ERR_INPUT;
    }
    int rc = check_tokens(c, tokens, n, "decode", err, err_size);
    if (rc) return rc;
    if ((rc = ensure_scores(r, c->n_ctx, err, err_size))) return rc;
    r->last = (grok_step_stats){0};
    const int64_t V = c->m->hp.n_vocab, pos0 = c->pos;
    for (int64_t i = 0; i < n; i += r->n_batch) {
        int64_t nb = n - i < r->n_batch ? n - i : r->n_batch;
        for (int64_t t = 0; t < nb; t++) {
            r->bt[t] = (batch_tok){c, c->pos + t, tokens[i + t], NULL};
            if (all_logits) r->bt[t].logits = all_logits + (i + t) * V;
        }
        bool last_chunk = i + nb == n;
        if (!all_logits && last_chunk) r->bt[nb - 1].logits = c->logits;
        if (last_chunk) c->logits_pos = -1; /* until the step succeeds */
        if ((rc = forward(r, nb, err, err_size))) {
            c->pos = pos0; /* the earlier chunks are taken back too: nothing is appended */
            return rc;
        }
        if (all_logits && last_chunk) memcpy(c->logits, all_logits + (n - 1) * V, (size_t)V * sizeof(float));
        c->pos += nb;
    }
    c->logits_pos = c->pos;
    return 0;
}

int grok_decode(grok_context *c, const int32_t *tokens, int64_t n, float *all_logits, char *err,
                size_t err_size) {
    return grok_runner_decode(c->r, c->s, tokens, n, all_logits, err, err_size);
}

int grok_decode_multi(grok_runner *r, grok_seq *const *seqs, const int32_t *const *tokens, const int64_t *n,
                      int64_t n_seqs, char *err, size_t err_size) {
    return grok_decode_multi_logits(r, seqs, tokens, n, NULL, n_seqs, err, err_size);
}

int grok_decode_multi_logits(grok_runner *r, grok_seq *const *seqs, const int32_t *const *tokens,
                             const int64_t *n, float *const *all_logits, int64_t n_seqs, char *err,
                             size_t err_size) {
    if (n_seqs <= 0) {
        snprintf(err, err_size, "decode_multi: no sequences given");
        return GROK_ERR_INPUT;
    }
    const int64_t V = r->m->hp.n_vocab;
    int64_t total = 0, longest = 0;
    for (int64_t i = 0; i < n_seqs; i++) {
        char what[64];
        snprintf(what, sizeof what, "decode_multi: sequence %" PRId64, i);
        if (seqs[i]->m != r->m) {
            snprintf(err, err_size, "%s belongs to another model", what);
            return GROK_ERR_INPUT;
        }
        for (int64_t j = 0; j < i; j++)
            if (seqs[j] == seqs[i]) {
                snprintf(err, err_size, "%s repeats sequence %" PRId64, what, j);
                return GROK_ERR_INPUT;
            }
        int rc = check_tokens(seqs[i], tokens[i], n[i], what, err, err_size);
        if (rc) return rc;
        total += n[i];
        if (seqs[i]->n_ctx > longest) longest = seqs[i]->n_ctx;
    }
    if (total > r->n_batch) {
        snprintf(err, err_size, "decode_multi: %" PRId64 " tokens exceed the batch size %" PRId64, total,
                 r->n_batch);
        return GROK_ERR_INPUT;
    }
    int rc = ensure_scores(r, longest, err, err_size);
    if (rc) return rc;
    r->last = (grok_step_stats){0};
    int64_t t = 0;
    for (int64_t i = 0; i < n_seqs; i++) {
        float *all = all_logits ? all_logits[i] : NULL;
        for (int64_t k = 0; k < n[i]; k++, t++)
            r->bt[t] = (batch_tok){seqs[i], seqs[i]->pos + k, tokens[i][k],
                                   all             ? all + k * V
                                   : k == n[i] - 1 ? seqs[i]->logits
                                                   : NULL};
    }
    for (int64_t i = 0; i < n_seqs; i++) seqs[i]->logits_pos = -1; /* until the step succeeds */
    if ((rc = forward(r, total, err, err_size))) return rc;
    for (int64_t i = 0; i < n_seqs; i++) {
        if (all_logits && all_logits[i])
            memcpy(seqs[i]->logits, all_logits[i] + (n[i] - 1) * V, (size_t)V * sizeof(float));
        seqs[i]->pos += n[i];
        seqs[i]->logits_pos = seqs[i]->pos;
    }
    return 0;
}
