/*
 * xcache.c - the expert cache of the CACHE memory plan (grok.h): a fixed
 * number of slots, each holding one (layer, expert) of this process's
 * share in the layout the resident model would use, filled by explicit
 * reads from the model file on I/O threads and emptied by an eviction
 * policy. Also the policies' simulator over routing traces (the same
 * policy code the cache runs) and the traces themselves.
 *
 * Reads bypass the page cache (O_DIRECT, in GROK_XCACHE_CHUNK pieces
 * aligned to 4 KiB, through a staging buffer per I/O thread, then packed
 * or copied into the slot) so the cgroup is not charged a second copy of
 * what the slot holds; where the file system refuses O_DIRECT, buffered
 * reads drop their pages after them (POSIX_FADV_DONTNEED).
 *
 * Requests are keys (layer, expert) in two queues: demand (the router has
 * chosen the expert; the forward pass will wait for it) before prefetch
 * (predicted for the next layer). A slot is taken for a key only when an
 * I/O thread starts on it, so a prediction cancelled before its read
 * evicts nothing. Slots whose key is held (acquired) or being read are
 * never evicted; a prefetch evicts neither the experts its layer's
 * router chose nor the other predictions of its step.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gguf/gguf_internal.h"
#include "model/model.h"
#include "util/clock.h"

/* ======================================================================
 * Eviction policies over keys 0..n_keys and slots 0..n_slots. The cache
 * and the simulator both drive them: access (a use of a resident key),
 * touch (a prefetch of a resident key: recency only), place (a key not
 * resident gets a slot: a free one, else a victim the caller allows).
 * ====================================================================== */
enum { ARC_NONE = 0, ARC_T1, ARC_T2, ARC_B1, ARC_B2 };

typedef struct {
    grok_cache_policy kind;
    int64_t n_slots, n_keys;
    int64_t *slot_key; /* [n_slots] -1: free */
    int64_t *key_slot; /* [n_keys] -1: not resident */
    uint64_t clock;
    uint64_t *last; /* [n_keys] time of the last use (ARC: of the list move) */
    double *freq;   /* [n_keys] LFU: uses, halved every n_keys * 8 uses */
    uint64_t n_uses;
    uint8_t *where; /* [n_keys] ARC list */
    int64_t nt1, nt2, nb1, nb2;
    double p; /* ARC's target size of T1 */
} xpolicy;

typedef bool (*evictable_fn)(void *ud, int64_t slot);

static void xp_free(xpolicy *x) {
    free(x->slot_key), free(x->key_slot), free(x->last), free(x->freq), free(x->where);
    memset(x, 0, sizeof *x);
}

static int xp_init(xpolicy *x, grok_cache_policy kind, int64_t n_slots, int64_t n_keys) {
    memset(x, 0, sizeof *x);
    x->kind = kind, x->n_slots = n_slots, x->n_keys = n_keys;
    x->slot_key = malloc((size_t)n_slots * sizeof *x->slot_key);
    x->key_slot = malloc((size_t)n_keys * sizeof *x->key_slot);
    x->last = calloc((size_t)n_keys, sizeof *x->last);
    x->freq = calloc((size_t)n_keys, sizeof *x->freq);
    x->where = calloc((size_t)n_keys, 1);
    if (!x->slot_key || !x->key_slot || !x->last || !x->freq || !x->where) {
        xp_free(x);
        return -1;
    }
    for (int64_t i = 0; i < n_slots; i++) x->slot_key[i] = -1;
    for (int64_t i = 0; i < n_keys; i++) x->key_slot[i] = -1;
    return 0;
}

static void xp_count_use(xpolicy *x, int64_t key) {
    x->freq[key] += 1;
    if (++x->n_uses % (uint64_t)(x->n_keys * 8) == 0)
        for (int64_t i = 0; i < x->n_keys; i++) x->freq[i] *= 0.5;
}

static void xp_access(xpolicy *x, int64_t key) {
    x->last[key] = ++x->clock;
    xp_count_use(x, key);
    if (x->kind == GROK_CACHE_ARC && x->where[key] == ARC_T1) x->where[key] = ARC_T2, x->nt1--, x->nt2++;
}

static void xp_touch(xpolicy *x, int64_t key) { x->last[key] = ++x->clock; }

/* The first use of a key read ahead of it (its first reference). */
static void xp_first_use(xpolicy *x, int64_t key) {
    x->last[key] = ++x->clock;
    xp_count_use(x, key);
}

/* The resident key the policy would evict among the allowed slots, in
 * list `list` for ARC (0: any); -1 if none. */
static int64_t xp_pick(const xpolicy *x, int list, evictable_fn ok, void *ud) {
    int64_t best = -1;
    for (int64_t s = 0; s < x->n_slots; s++) {
        const int64_t k = x->slot_key[s];
        if (k < 0 || (list && x->where[k] != list) || (ok && !ok(ud, s))) continue;
        if (best < 0) {
            best = s;
            continue;
        }
        const int64_t b = x->slot_key[best];
        bool better;
        if (x->kind == GROK_CACHE_LFU)
            better = x->freq[k] < x->freq[b] || (x->freq[k] == x->freq[b] && x->last[k] < x->last[b]);
        else
            better = x->last[k] < x->last[b];
        if (better) best = s;
    }
    return best;
}

/* ARC's ghost list `list` loses its least recent key. */
static void arc_drop_ghost(xpolicy *x, int list) {
    int64_t best = -1;
    for (int64_t k = 0; k < x->n_keys; k++)
        if (x->where[k] == list && (best < 0 || x->last[k] < x->last[best])) best = k;
    if (best < 0) return;
    x->where[best] = ARC_NONE;
    if (list == ARC_B1)
        x->nb1--;
    else
        x->nb2--;
}

/* ARC's REPLACE: the victim from T1 (to ghost B1) or T2 (to B2). */
static int64_t arc_replace(xpolicy *x, bool in_b2, evictable_fn ok, void *ud) {
    const bool from_t1 = x->nt1 >= 1 && ((in_b2 && (double)x->nt1 >= x->p) || (double)x->nt1 > x->p);
    int64_t s = xp_pick(x, from_t1 ? ARC_T1 : ARC_T2, ok, ud);
    if (s < 0) s = xp_pick(x, from_t1 ? ARC_T2 : ARC_T1, ok, ud);
    return s;
}

/* Empties slot s (its key leaves, to the ghost list for ARC when ghost). */
static void xp_evict(xpolicy *x, int64_t s, bool ghost) {
    const int64_t k = x->slot_key[s];
    if (k < 0) return;
    if (x->kind == GROK_CACHE_ARC) {
        const uint8_t w = x->where[k];
        if (w == ARC_T1) x->nt1--;
        if (w == ARC_T2) x->nt2--;
        x->where[k] = ARC_NONE;
        if (ghost && (w == ARC_T1 || w == ARC_T2)) {
            x->where[k] = w == ARC_T1 ? ARC_B1 : ARC_B2;
            if (w == ARC_T1)
                x->nb1++;
            else
                x->nb2++;
            x->last[k] = ++x->clock;
        }
    }
    x->slot_key[s] = -1;
    x->key_slot[k] = -1;
}

static int64_t free_slot(const xpolicy *x) {
    for (int64_t s = 0; s < x->n_slots; s++)
        if (x->slot_key[s] < 0) return s;
    return -1;
}

/* Key (not resident) gets a slot; use: the placement is a use (a demand),
 * not a prefetch. Returns the slot, its previous key in *evicted (-1:
 * none); -1 when no slot may be taken (or admit declined it). */
static int64_t xp_place(xpolicy *x, int64_t key, bool use, bool admit, evictable_fn ok, void *ud,
                        int64_t *evicted) {
    *evicted = -1;
    int64_t s = -1;
    /* admit: a read ahead is let in only over a victim used no more often
     * than its key (TinyLFU's admission; the counts are kept whatever the
     * policy), so a wrong prediction costs a read, not a useful expert too */
    if (admit && free_slot(x) < 0) {
        const int64_t v = x->kind == GROK_CACHE_ARC ? arc_replace(x, x->where[key] == ARC_B2, ok, ud)
                                                    : xp_pick(x, 0, ok, ud);
        if (v >= 0 && x->freq[x->slot_key[v]] > x->freq[key]) return -1;
    }
    if (x->kind != GROK_CACHE_ARC) {
        s = free_slot(x);
        if (s < 0) s = xp_pick(x, 0, ok, ud);
        if (s < 0) return -1;
        *evicted = x->slot_key[s];
        xp_evict(x, s, false);
    } else {
        const double c = (double)x->n_slots;
        const uint8_t w = x->where[key];
        if (w == ARC_B1 || w == ARC_B2) {
            const double d1 = x->nb1 ? (double)x->nb1 : 1, d2 = x->nb2 ? (double)x->nb2 : 1;
            double np = w == ARC_B1 ? x->p + (d2 / d1 > 1 ? d2 / d1 : 1) : x->p - (d1 / d2 > 1 ? d1 / d2 : 1);
            x->p = np < 0 ? 0 : np > c ? c : np; /* adapted before REPLACE picks its list */
            s = free_slot(x);
            if (s < 0) s = arc_replace(x, w == ARC_B2, ok, ud);
            if (s < 0) return -1;
            if (w == ARC_B1)
                x->nb1--;
            else
                x->nb2--;
            x->where[key] = ARC_NONE;
        } else {
            s = free_slot(x);
            const int64_t l1 = x->nt1 + x->nb1, all = l1 + x->nt2 + x->nb2;
            if (s < 0) {
                if (l1 >= x->n_slots && x->nt1 < x->n_slots) {
                    s = arc_replace(x, false, ok, ud);
                    if (s < 0) return -1;
                    arc_drop_ghost(x, ARC_B1);
                } else if (l1 >= x->n_slots) { /* T1 is the whole cache: its LRU goes, no ghost */
                    s = xp_pick(x, ARC_T1, ok, ud);
                    if (s < 0) s = xp_pick(x, 0, ok, ud);
                    if (s < 0) return -1;
                    *evicted = x->slot_key[s];
                    xp_evict(x, s, false);
                } else {
                    s = arc_replace(x, false, ok, ud);
                    if (s < 0) return -1;
                    if (all >= 2 * x->n_slots) arc_drop_ghost(x, ARC_B2);
                }
            }
        }
        if (x->slot_key[s] >= 0) {
            *evicted = x->slot_key[s];
            xp_evict(x, s, true);
        }
        x->where[key] = (w == ARC_B1 || w == ARC_B2) ? ARC_T2 : ARC_T1;
        if (x->where[key] == ARC_T1)
            x->nt1++;
        else
            x->nt2++;
        /* ghosts never outnumber the cache twice over */
        while (x->nb1 + x->nb2 > x->n_slots) arc_drop_ghost(x, x->nb1 > x->nb2 ? ARC_B1 : ARC_B2);
    }
    x->slot_key[s] = key;
    x->key_slot[key] = s;
    x->last[key] = ++x->clock;
    if (use) xp_count_use(x, key);
    return s;
}

/* ======================================================================
 * Simulation over a routing trace
 * ====================================================================== */

typedef struct {
    const xpolicy *x;
    const uint8_t *protect; /* [n_keys] */
} sim_guard;

static bool sim_ok(void *ud, int64_t s) {
    const sim_guard *g = ud;
    return !g->protect[g->x->slot_key[s]];
}

/* Belady's MIN: on a miss with a full cache, evict the key used furthest
 * ahead. Only demand uses; no prefetch. */
static grok_cache_sim_result sim_optimal(const int32_t *chosen, int64_t n_tokens, int64_t L, int64_t E,
                                         int64_t K, int64_t n_slots) {
    grok_cache_sim_result r = {0};
    const int64_t n = n_tokens * L * K;
    int64_t *next = malloc((size_t)(n > 0 ? n : 1) * sizeof *next),
            *seen = malloc((size_t)(L * E) * sizeof *seen);
    int64_t *res = malloc((size_t)n_slots * sizeof *res), *nxt = malloc((size_t)n_slots * sizeof *nxt);
    if (!next || !seen || !res || !nxt) goto out;
    for (int64_t k = 0; k < L * E; k++) seen[k] = INT64_MAX;
    for (int64_t i = n - 1; i >= 0; i--) {
        const int64_t l = i / K % L, e = chosen[i];
        if (e < 0) {
            next[i] = INT64_MAX;
            continue;
        }
        next[i] = seen[l * E + e];
        seen[l * E + e] = i;
    }
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t l = i / K % L, e = chosen[i];
        if (e < 0) continue;
        const int64_t key = l * E + e;
        r.lookups++;
        int64_t s = 0;
        while (s < used && res[s] != key) s++;
        if (s < used) {
            r.hits++;
            nxt[s] = next[i];
            continue;
        }
        r.reads++;
        if (used < n_slots) {
            res[used] = key, nxt[used] = next[i], used++;
            continue;
        }
        int64_t far = 0;
        for (int64_t j = 1; j < used; j++)
            if (nxt[j] > nxt[far]) far = j;
        res[far] = key, nxt[far] = next[i];
    }
out:
    free(next), free(seen), free(res), free(nxt);
    return r;
}

grok_cache_sim_result grok_cache_simulate(const int32_t *chosen, const int32_t *predicted, int64_t n_tokens,
                                          int64_t L, int64_t E, int64_t K, int64_t n_slots,
                                          grok_cache_policy policy, int prefetch, bool optimal) {
    grok_cache_sim_result r = {0};
    if (n_slots < 1 || L < 1 || E < 1 || K < 1) return r;
    if (n_slots > L * E) n_slots = L * E;
    if (optimal) return sim_optimal(chosen, n_tokens, L, E, K, n_slots);
    xpolicy x;
    uint8_t *protect = calloc((size_t)(L * E), 1), *pref = calloc((size_t)(L * E), 1);
    if (!protect || !pref || xp_init(&x, policy, n_slots, L * E)) {
        free(protect), free(pref);
        return r;
    }
    sim_guard g = {&x, protect};
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t l = 0; l < L; l++) {
            const int32_t *ch = chosen + (t * L + l) * K;
            memset(protect, 0, (size_t)(L * E));
            for (int64_t k = 0; k < K; k++)
                if (ch[k] >= 0) protect[l * E + ch[k]] = 1;
            for (int64_t k = 0; k < K; k++) {
                if (ch[k] < 0) continue;
                const int64_t key = l * E + ch[k];
                r.lookups++;
                if (x.key_slot[key] >= 0) {
                    r.hits++;
                    if (pref[key]) {
                        r.prefetch_used++, pref[key] = 0;
                        xp_first_use(&x, key);
                    } else {
                        xp_access(&x, key);
                    }
                } else {
                    int64_t ev;
                    /* a demand may evict anything but its layer's other choices */
                    if (xp_place(&x, key, true, false, sim_ok, &g, &ev) < 0)
                        xp_place(&x, key, true, false, NULL, NULL, &ev);
                    if (ev >= 0) pref[ev] = 0;
                    r.reads++;
                }
            }
            if (!prefetch || l + 1 >= L || !predicted) continue;
            const int32_t *pr = predicted + (t * L + l + 1) * K;
            for (int64_t k = 0; k < K; k++)
                if (pr[k] >= 0) protect[(l + 1) * E + pr[k]] = 1;
            for (int64_t k = 0; k < K; k++) {
                if (pr[k] < 0) continue;
                const int64_t key = (l + 1) * E + pr[k];
                if (x.key_slot[key] >= 0) {
                    xp_touch(&x, key);
                    continue;
                }
                int64_t ev;
                if (xp_place(&x, key, false, prefetch == 1, sim_ok, &g, &ev) < 0) continue;
                if (ev >= 0) pref[ev] = 0;
                pref[key] = 1;
                r.reads++, r.prefetch_reads++;
            }
        }
    xp_free(&x);
    free(protect), free(pref);
    return r;
}

/* ======================================================================
 * Routing traces
 * ====================================================================== */

int64_t grok_route_trace_reserve(grok_route_trace *t, int64_t n) {
    if (t->n_tokens + n > t->cap) {
        int64_t cap = t->cap ? t->cap : 256;
        while (cap < t->n_tokens + n) cap *= 2;
        const size_t row = (size_t)(t->n_layers * t->k) * sizeof(int32_t);
        int32_t *c = realloc(t->chosen, (size_t)cap * row);
        if (c) t->chosen = c;
        int32_t *p = c ? realloc(t->predicted, (size_t)cap * row) : NULL;
        if (p) t->predicted = p;
        if (!c || !p) return -1;
        t->cap = cap;
    }
    const int64_t at = t->n_tokens;
    const size_t cells = (size_t)(n * t->n_layers * t->k);
    for (size_t i = 0; i < cells; i++) {
        t->chosen[(size_t)at * (size_t)(t->n_layers * t->k) + i] = -1;
        t->predicted[(size_t)at * (size_t)(t->n_layers * t->k) + i] = -1;
    }
    t->n_tokens += n;
    return at;
}

void grok_model_trace_routing(grok_model *m, bool on) {
    if (on) {
        grok_route_trace_free(m);
        m->trace = calloc(1, sizeof *m->trace);
        if (m->trace)
            m->trace->n_layers = m->hp.n_layers, m->trace->k = m->hp.n_experts_used, m->trace->on = true;
    } else if (m->trace) {
        m->trace->on = false;
    }
}

void grok_route_trace_free(grok_model *m) {
    if (!m->trace) return;
    free(m->trace->chosen), free(m->trace->predicted), free(m->trace);
    m->trace = NULL;
}

int64_t grok_model_routing(const grok_model *m, const int32_t **chosen, const int32_t **predicted) {
    if (!m->trace) return 0;
    if (chosen) *chosen = m->trace->chosen;
    if (predicted) *predicted = m->trace->predicted;
    return m->trace->n_tokens;
}

/* ======================================================================
 * The cache
 * ====================================================================== */

enum { K_ABSENT = 0, K_QUEUED, K_LOADING, K_READY };

/* One of an expert's three matrices as a slot holds it. */
typedef struct {
    const grok_mat *src; /* layer 0's matrix of expert 0 (type, shapes, row_bytes) */
    bool packed;         /* the slot holds the packed layout */
    size_t off;          /* where it starts in the slot */
    int64_t r0, r1;      /* rows read (of one expert's matrix) */
    int64_t c0, c1;      /* columns kept */
} xpart;

/* Where one expert's matrix (of a layer, gate, up or down) lies. */
typedef struct {
    int fdi;      /* the file holding it (xc->fds): one the model lies in, or the packed file; -1: memory */
    uint64_t off; /* its row 0 there */
    const uint8_t
        *mem; /* fdi -1: its bytes (copied across a piece boundary at load, or merged with an adapter) */
    bool packed_src; /* it lies there packed (the packed file) */
    bool direct;     /* the slot's bytes lie contiguous there: read straight into the slot */
} xsrc;

typedef struct {
    grok_xcache *xc;
    int id;
    uint8_t *stage; /* aligned staging buffer */
    size_t stage_len;
    double read_s; /* time in read calls of the fill under way */
} xio;

struct grok_xcache {
    const grok_model *m;
    grok_dist sh;
    int64_t nl, ne, n_keys, n_slots;
    size_t stride; /* bytes between slots */
    int64_t slot_bytes;
    uint8_t *mem;
    size_t mem_len;
    xpart part[3]; /* gate, up, down */
    xsrc *src;     /* [n_layers of the share][3][n_experts of the share] */
    int *fds;      /* [n files + 1]: the files the model lies in (grok_gguf_n_files), then the packed file */
    uint64_t *fsize; /* [n files + 1] their sizes */
    bool *fd_direct; /* opened O_DIRECT (cleared if a read finds it refused) */
    uint32_t *pad;   /* [n_slots][3] where a part's bytes start in its room (reads straight from the file) */
    int n_fds;

    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_mutex_t turn; /* the MoE block of one forward pass at a time */
    xpolicy pol;
    uint8_t *kstate;      /* [n_keys] */
    int32_t *pins;        /* [n_keys] */
    uint64_t *want_epoch; /* [n_keys] the step-layer that chose it last */
    uint64_t *pref_epoch; /* [n_keys] the step-layer that predicted it last */
    bool *slot_pref;      /* [n_slots] filled by a prefetch, not yet used */
    bool *slot_loading;   /* [n_slots] */
    uint64_t epoch;
    int64_t *qd, *qp; /* FIFO rings of keys, n_keys each */
    int64_t qd_head, qd_n, qp_head, qp_n;
    bool *q_demand; /* [n_keys] queued in qd (else in qp) */
    int64_t pred_layer;
    uint8_t *pred_mask;   /* [n_experts] the prediction for pred_layer */
    uint8_t *chosen_mask; /* [n_experts] scratch of want */
    bool *slot_fresh;     /* [n_slots] filled, not acquired since */
    bool stop;
    bool failed; /* a read failed: the steps fail with fail_msg */
    char fail_msg[512];
    int n_io;
    pthread_t *threads;
    xio *io;
    grok_cache_stats st;
};

int64_t grok_xcache_slots(const grok_xcache *xc) { return xc->n_slots; }

bool grok_xcache_serves(const grok_xcache *xc, grok_kernel_mode mode) {
    if (mode == GROK_KERNELS_FAST) return true;
    return !xc->part[0].packed && !xc->part[1].packed && !xc->part[2].packed;
}

void grok_xcache_lock(grok_xcache *xc) { pthread_mutex_lock(&xc->turn); }
void grok_xcache_unlock(grok_xcache *xc) { pthread_mutex_unlock(&xc->turn); }

static int64_t key_of(const grok_xcache *xc, int64_t il, int64_t e) {
    return (il - xc->sh.l0) * xc->ne + (e - xc->sh.e0);
}

/* Whether the resident path would read w's rows [r0, r1) packed (pack.c's
 * conditions and grok_mat_rows'). */
static bool packs(const grok_mat *w, int64_t r0, int64_t r1) {
    return grok_mat_packable(w) && r0 % GROK_PACK_ROWS == 0 && (r1 - r0) % GROK_PACK_ROWS == 0;
}

/* ---- queues (under mu) ---- */

static void q_push(int64_t *q, int64_t *head, int64_t *n, int64_t cap, int64_t key, bool front) {
    if (front) {
        *head = (*head + cap - 1) % cap;
        q[*head] = key;
    } else {
        q[(*head + *n) % cap] = key;
    }
    (*n)++;
}

static int64_t q_pop(int64_t *q, int64_t *head, int64_t *n, int64_t cap) {
    const int64_t k = q[*head];
    *head = (*head + 1) % cap;
    (*n)--;
    return k;
}

/* Queues key for reading (it is absent). Stale entries (cancelled, or
 * moved to the demand queue) are skipped when popped. */
static void enqueue(grok_xcache *xc, int64_t key, bool demand, bool front) {
    if (xc->kstate[key] == K_QUEUED && (xc->q_demand[key] || !demand)) return;
    if (xc->kstate[key] != K_QUEUED && xc->kstate[key] != K_ABSENT) return;
    xc->kstate[key] = K_QUEUED;
    xc->q_demand[key] = demand;
    /* a ring holds each key at most once live; a stale copy may remain, so
     * the rings have room for two per key */
    if (demand)
        q_push(xc->qd, &xc->qd_head, &xc->qd_n, 2 * xc->n_keys, key, front);
    else
        q_push(xc->qp, &xc->qp_head, &xc->qp_n, 2 * xc->n_keys, key, false);
    pthread_cond_broadcast(&xc->work);
}

/* What a new read may evict: never a slot held or being read; a demand
 * first spares the experts its layer chose (else they are read twice),
 * a prediction also the step's other predictions. */
enum { EV_PREFETCH = 0, EV_DEMAND = 1, EV_ANY = 2 };
typedef struct {
    grok_xcache *xc;
    int level;
} evict_guard;

static bool can_evict(void *ud, int64_t s) {
    const evict_guard *g = ud;
    const grok_xcache *xc = g->xc;
    const int64_t k = xc->pol.slot_key[s];
    if (k < 0) return true;
    if (xc->slot_loading[s] || xc->pins[k] > 0) return false;
    if (g->level == EV_ANY) return true;
    if (xc->want_epoch[k] == xc->epoch) return false;
    if (g->level == EV_DEMAND) return true;
    if (xc->slot_pref[s] && xc->pref_epoch[k] + 1 >= xc->epoch) return false;
    return true;
}

/* ---- reading ---- */

/* Reads [a, a + len) of file fdi into buf, going on at the start of the
 * next file (the next raw piece) where the bytes the caller needs, the
 * first need, run past this one's end. A short read at the last file's end
 * is fine past need (O_DIRECT's 4 KiB widening). Returns the bytes read, or
 * -1 with err. */
static int64_t read_files(xio *io, int fdi, uint64_t a, uint8_t *buf, size_t len, size_t need, char *err,
                          size_t err_size) {
    grok_xcache *xc = io->xc;
    const int last = xc->n_fds - 2; /* the model's last file; the packed file is never continued */
    size_t got = 0;
    const double t0 = grok_now();
    while (got < len) {
        bool *direct = &xc->fd_direct[fdi];
        ssize_t r = pread(xc->fds[fdi], buf + got, len - got, (off_t)a);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && *direct && errno == EINVAL) { /* the file system takes no O_DIRECT after all */
            int fl = fcntl(xc->fds[fdi], F_GETFL);
            if (fl >= 0 && fcntl(xc->fds[fdi], F_SETFL, fl & ~O_DIRECT) == 0) {
                *direct = false;
                continue;
            }
        }
        if (r < 0) {
            snprintf(err, err_size, "%s: read at byte %" PRIu64 ": %s",
                     fdi <= last ? grok_gguf_file_path(xc->m->file, fdi, NULL) : "packed file", a,
                     strerror(errno));
            return -1;
        }
        if (!*direct) posix_fadvise(xc->fds[fdi], (off_t)a, r > 0 ? (off_t)r : 0, POSIX_FADV_DONTNEED);
        got += (size_t)r, a += (uint64_t)r;
        if (r > 0) continue;
        /* this file's end */
        if (got >= need || fdi >= last || a < xc->fsize[fdi]) break;
        fdi++, a = 0;
        if (xc->fds[fdi] < 0) {
            snprintf(err, err_size, "%s: not open", grok_gguf_file_path(xc->m->file, fdi, NULL));
            return -1;
        }
    }
    io->read_s += grok_now() - t0;
    if (got < need) {
        snprintf(err, err_size, "file ends %zu bytes into a read of %zu", got, need);
        return -1;
    }
    return (int64_t)got;
}

/* [off, off + len) of an expert's source s (off from its row 0), through the
 * staging buffer (or in place when it lies in memory). O_DIRECT wants
 * 4 KiB-aligned offsets and lengths: the range is widened to them. */
static const uint8_t *read_range(xio *io, const xsrc *s, uint64_t off, size_t len, int64_t *nread, char *err,
                                 size_t err_size) {
    if (s->fdi < 0) return s->mem + off;
    const uint64_t A = 4096, at = s->off + off;
    const bool direct = io->xc->fd_direct[s->fdi];
    const uint64_t a = direct ? at / A * A : at, b = direct ? (at + len + A - 1) / A * A : at + len;
    if (b - a > io->stage_len) {
        snprintf(err, err_size, "read of %zu bytes exceeds the staging buffer", len);
        return NULL;
    }
    const int64_t got =
        read_files(io, s->fdi, a, io->stage, (size_t)(b - a), (size_t)(at + len - a), err, err_size);
    if (got < 0) return NULL;
    *nread += got;
    return io->stage + (at - a);
}

/* Fills slot s with expert e of layer il. A part that lies in the file as
 * the slot holds it is read straight into its room (O_DIRECT needs the
 * 4 KiB alignment: it lands pad bytes in); the others come through the
 * staging buffer in chunks of whole 8-row groups, then are packed or
 * copied. */
static int fill(xio *io, int64_t il, int64_t e, int64_t slot, int64_t *nread, char *err, size_t err_size) {
    grok_xcache *xc = io->xc;
    uint8_t *dst = xc->mem + (size_t)slot * xc->stride;
    for (int p = 0; p < 3; p++) {
        const xpart *pt = &xc->part[p];
        const xsrc *s = &xc->src[((il - xc->sh.l0) * 3 + p) * xc->ne + (e - xc->sh.e0)];
        const size_t rb = pt->src->row_bytes;
        const size_t coff = (size_t)grok_type_row_size(pt->src->type, pt->c0);
        const int64_t ncols = pt->c1 - pt->c0;
        const size_t keep = (size_t)grok_type_row_size(pt->src->type, ncols);
        xc->pad[slot * 3 + p] = 0;
        if (s->direct) {
            const size_t len = (size_t)(pt->r1 - pt->r0) * rb;
            uint8_t *room = dst + pt->off;
            if (s->fdi < 0) {
                memcpy(room, s->mem + (size_t)pt->r0 * rb, len);
                continue;
            }
            const uint64_t at = s->off + (uint64_t)pt->r0 * rb;
            const uint64_t a = at / 4096 * 4096, b = (at + len + 4095) / 4096 * 4096;
            const int64_t got =
                read_files(io, s->fdi, a, room, (size_t)(b - a), (size_t)(at + len - a), err, err_size);
            if (got < 0) return -1;
            *nread += got;
            xc->pad[slot * 3 + p] = (uint32_t)(at - a);
            continue;
        }
        int64_t rows_per = (int64_t)((size_t)GROK_XCACHE_CHUNK / rb) / GROK_PACK_ROWS * GROK_PACK_ROWS;
        if (rows_per < GROK_PACK_ROWS) rows_per = GROK_PACK_ROWS;
        for (int64_t r = pt->r0; r < pt->r1; r += rows_per) {
            const int64_t nr = r + rows_per < pt->r1 ? rows_per : pt->r1 - r;
            const uint8_t *rows = read_range(io, s, (uint64_t)r * rb, (size_t)nr * rb, nread, err, err_size);
            if (!rows) return -1;
            uint8_t *out = dst + pt->off + (size_t)(r - pt->r0) * rb;
            if (pt->packed && s->packed_src) { /* packed groups: the column slice of each */
                for (int64_t g = 0; g < nr; g += GROK_PACK_ROWS)
                    memcpy(out + (size_t)g * rb + GROK_PACK_ROWS * coff,
                           rows + (size_t)g * rb + GROK_PACK_ROWS * coff, GROK_PACK_ROWS * keep);
            } else if (pt->packed) {
                for (int64_t g = 0; g < nr; g += GROK_PACK_ROWS)
                    grok_pack_x8(pt->src->type, rows + (size_t)g * rb + coff, rb, ncols,
                                 out + (size_t)g * rb + GROK_PACK_ROWS * coff);
            } else if (coff == 0 && keep == rb) {
                memcpy(out, rows, (size_t)nr * rb);
            } else {
                for (int64_t i = 0; i < nr; i++)
                    memcpy(out + (size_t)i * rb + coff, rows + (size_t)i * rb + coff, keep);
            }
        }
    }
    return 0;
}

static void *io_main(void *arg) {
    xio *io = arg;
    grok_xcache *xc = io->xc;
    pthread_mutex_lock(&xc->mu);
    for (;;) {
        while (!xc->stop && xc->qd_n == 0 && xc->qp_n == 0) pthread_cond_wait(&xc->work, &xc->mu);
        if (xc->stop) break;
        const bool demand = xc->qd_n > 0;
        const int64_t key = demand ? q_pop(xc->qd, &xc->qd_head, &xc->qd_n, 2 * xc->n_keys)
                                   : q_pop(xc->qp, &xc->qp_head, &xc->qp_n, 2 * xc->n_keys);
        if (xc->kstate[key] != K_QUEUED || xc->q_demand[key] != demand) continue; /* stale */
        evict_guard g = {xc, demand ? EV_DEMAND : EV_PREFETCH}, any = {xc, EV_ANY};
        int64_t ev, s;
        const bool admit = !demand && xc->m->params.memory.prefetch == 1;
        while ((s = xp_place(&xc->pol, key, false, admit, can_evict, &g, &ev)) < 0 &&
               (!demand || (s = xp_place(&xc->pol, key, false, false, can_evict, &any, &ev)) < 0)) {
            if (!demand) break;
            /* every slot is held or being read: one will be released */
            pthread_cond_wait(&xc->done, &xc->mu);
            if (xc->stop) goto out;
        }
        if (s < 0) { /* a prediction with no slot it may take: dropped */
            xc->kstate[key] = K_ABSENT;
            continue;
        }
        if (ev >= 0) xc->kstate[ev] = K_ABSENT;
        xc->slot_pref[s] = !demand;
        xc->slot_loading[s] = true;
        xc->kstate[key] = K_LOADING;
        if (!demand) xc->st.prefetches++;
        pthread_mutex_unlock(&xc->mu);
        const int64_t il = xc->sh.l0 + key / xc->ne, e = xc->sh.e0 + key % xc->ne;
        char err[256];
        int64_t nread = 0;
        const double t0 = grok_now();
        io->read_s = 0;
        const int rc = fill(io, il, e, s, &nread, err, sizeof err);
        const double dt = grok_now() - t0;
        pthread_mutex_lock(&xc->mu);
        if (rc) { /* the disk failed or the file shrank under us: every step from now on fails */
            if (!xc->failed)
                snprintf(xc->fail_msg, sizeof xc->fail_msg, "%s: layer %" PRId64 " expert %" PRId64 ": %s",
                         grok_gguf_path(xc->m->file), il, e, err);
            xc->failed = true;
            xc->slot_loading[s] = false;
            xc->kstate[key] = K_ABSENT;
            xp_evict(&xc->pol, s, false);
            pthread_cond_broadcast(&xc->done);
            continue;
        }
        xc->slot_loading[s] = false;
        xc->slot_fresh[s] = true;
        xc->kstate[key] = K_READY;
        xc->st.reads++;
        xc->st.bytes_read += nread;
        xc->st.io_busy_s += dt;
        xc->st.io_read_s += io->read_s;
        pthread_cond_broadcast(&xc->done);
    }
out:
    pthread_mutex_unlock(&xc->mu);
    return NULL;
}

/* ---- the forward pass's side ---- */

/* A step-layer's use of key k: a hit, a late hit (its read is queued or
 * under way), or a miss; counted once per step-layer (under mu). */
static void count_lookup(grok_xcache *xc, int64_t k) {
    xc->want_epoch[k] = xc->epoch;
    xc->st.lookups++;
    if (xc->kstate[k] == K_READY)
        xc->st.hits++;
    else if (xc->kstate[k] == K_LOADING || xc->kstate[k] == K_QUEUED)
        xc->st.late_hits++;
    else
        xc->st.misses++;
}

void grok_xcache_want(grok_xcache *xc, int64_t il, const int32_t *experts, int64_t n) {
    pthread_mutex_lock(&xc->mu);
    xc->epoch++;
    uint8_t *chosen = xc->chosen_mask;
    memset(chosen, 0, (size_t)xc->ne);
    for (int64_t i = 0; i < n; i++) chosen[experts[i] - xc->sh.e0] = 1;
    xc->st.chosen += n;
    if (xc->pred_layer == il) {
        for (int64_t e = 0; e < xc->ne; e++) {
            if (!xc->pred_mask[e]) continue;
            xc->st.predicted++;
            xc->st.predicted_right += chosen[e];
            /* a wrong prediction not started yet: no read, no eviction */
            const int64_t k = key_of(xc, il, xc->sh.e0 + e);
            if (!chosen[e] && xc->kstate[k] == K_QUEUED && !xc->q_demand[k]) xc->kstate[k] = K_ABSENT;
        }
    }
    xc->pred_layer = -1;
    /* as many reads as there are slots start now, in the order the MoE
     * will take the experts; the rest start when it gets to them */
    for (int64_t i = 0; i < n && i < xc->n_slots; i++) {
        const int64_t k = key_of(xc, il, experts[i]);
        count_lookup(xc, k);
        enqueue(xc, k, true, false);
    }
    pthread_mutex_unlock(&xc->mu);
}

void grok_xcache_prefetch(grok_xcache *xc, int64_t il, const int32_t *experts, int64_t n) {
    pthread_mutex_lock(&xc->mu);
    xc->pred_layer = il;
    memset(xc->pred_mask, 0, (size_t)xc->ne);
    for (int64_t i = 0; i < n; i++) {
        if (experts[i] < xc->sh.e0 || experts[i] >= xc->sh.e1) continue;
        xc->pred_mask[experts[i] - xc->sh.e0] = 1;
        const int64_t k = key_of(xc, il, experts[i]);
        xc->pref_epoch[k] = xc->epoch;
        if (xc->kstate[k] == K_READY || xc->kstate[k] == K_LOADING)
            xp_touch(&xc->pol, k);
        else
            enqueue(xc, k, false, false);
    }
    pthread_mutex_unlock(&xc->mu);
}

/* The three matrices of expert e over slot memory p, as moe() would make
 * them from the resident copy: rows [f0, f1) of gate and up, columns
 * [f0, f1) of down. Packed parts keep the file's rows in data (the f32
 * fallback of grok_matmul_ops reads them). */
static grok_mat part_mat(const grok_xcache *xc, int p, const grok_layer *L, int64_t e, const uint8_t *slot,
                         uint32_t pad) {
    const xpart *pt = &xc->part[p];
    grok_mat v = grok_layer_expert(L, p, e);
    v.packed = NULL;
    const uint8_t *at = slot + pt->off + pad;
    if (p < 2) {
        v = grok_mat_rows(v, pt->r0, pt->r1 - pt->r0);
    } else {
        v = grok_mat_cols(v, pt->c0, pt->c1 - pt->c0);
        at += (pt->packed ? GROK_PACK_ROWS : 1) * (size_t)grok_type_row_size(v.type, pt->c0);
    }
    if (pt->packed)
        v.packed = at;
    else
        v.data = at;
    return v;
}

int grok_xcache_acquire(grok_xcache *xc, int64_t il, int64_t e, grok_mat *gate, grok_mat *up, grok_mat *down,
                        char *err, size_t err_size) {
    const int64_t k = key_of(xc, il, e);
    pthread_mutex_lock(&xc->mu);
    xc->pins[k]++;
    if (xc->want_epoch[k] != xc->epoch) count_lookup(xc, k); /* not among the reads want started */
    if (xc->kstate[k] == K_ABSENT || (xc->kstate[k] == K_QUEUED && !xc->q_demand[k]))
        enqueue(xc, k, true, true);
    if (xc->kstate[k] != K_READY) {
        const double t0 = grok_now();
        while (xc->kstate[k] != K_READY && !xc->failed) pthread_cond_wait(&xc->done, &xc->mu);
        xc->st.io_wait_s += grok_now() - t0;
    }
    if (xc->failed) {
        xc->pins[k]--;
        snprintf(err, err_size, "expert cache: %s", xc->fail_msg);
        pthread_mutex_unlock(&xc->mu);
        return -1;
    }
    const int64_t s = xc->pol.key_slot[k];
    if (xc->slot_pref[s]) xc->slot_pref[s] = false, xc->st.prefetches_used++;
    if (xc->slot_fresh[s]) /* the reference that had it read (ARC: stays in T1) */
        xc->slot_fresh[s] = false, xp_first_use(&xc->pol, k);
    else
        xp_access(&xc->pol, k);
    pthread_mutex_unlock(&xc->mu);
    const grok_layer *L = &xc->m->layers[il];
    const uint8_t *slot = xc->mem + (size_t)s * xc->stride;
    const uint32_t *pad = xc->pad + s * 3;
    *gate = part_mat(xc, 0, L, e, slot, pad[0]);
    *up = part_mat(xc, 1, L, e, slot, pad[1]);
    *down = part_mat(xc, 2, L, e, slot, pad[2]);
    return 0;
}

void grok_xcache_release(grok_xcache *xc, int64_t il, int64_t e) {
    pthread_mutex_lock(&xc->mu);
    xc->pins[key_of(xc, il, e)]--;
    pthread_cond_broadcast(&xc->done);
    pthread_mutex_unlock(&xc->mu);
}

grok_cache_stats grok_xcache_stats(const grok_xcache *xc) {
    pthread_mutex_lock((pthread_mutex_t *)&xc->mu);
    grok_cache_stats s = xc->st;
    pthread_mutex_unlock((pthread_mutex_t *)&xc->mu);
    return s;
}

void grok_xcache_reset_stats(grok_xcache *xc) {
    pthread_mutex_lock(&xc->mu);
    xc->st = (grok_cache_stats){0};
    pthread_mutex_unlock(&xc->mu);
}

grok_cache_stats grok_model_cache_stats(const grok_model *m) {
    return m->xc ? grok_xcache_stats(m->xc) : (grok_cache_stats){0};
}

void grok_model_cache_reset(grok_model *m) {
    if (m->xc) grok_xcache_reset_stats(m->xc);
}

void grok_xcache_shrink(grok_xcache *xc, int64_t n) {
    pthread_mutex_lock(&xc->turn); /* no step holds slots */
    pthread_mutex_lock(&xc->mu);
    if (n < 1) n = 1;
    const int64_t old = xc->n_slots;
    if (n < old) {
        xc->n_slots = n;
        xc->pol.n_slots = n; /* no new read lands beyond n */
        for (;;) {
            bool busy = false;
            for (int64_t s = n; s < old; s++) busy |= xc->slot_loading[s];
            if (!busy) break;
            pthread_cond_wait(&xc->done, &xc->mu);
        }
        for (int64_t s = n; s < old; s++) {
            const int64_t k = xc->pol.slot_key[s];
            if (k >= 0) xc->kstate[k] = K_ABSENT;
            xp_evict(&xc->pol, s, false);
            xc->slot_pref[s] = xc->slot_fresh[s] = false;
        }
        madvise(xc->mem + (size_t)n * xc->stride, (size_t)(old - n) * xc->stride, MADV_DONTNEED);
    }
    pthread_mutex_unlock(&xc->mu);
    pthread_mutex_unlock(&xc->turn);
}

/* ---- set-up ---- */

void grok_xcache_free(grok_xcache *xc) {
    if (!xc) return;
    if (xc->threads) {
        pthread_mutex_lock(&xc->mu);
        xc->stop = true;
        pthread_cond_broadcast(&xc->work);
        pthread_cond_broadcast(&xc->done);
        pthread_mutex_unlock(&xc->mu);
        for (int i = 0; i < xc->n_io; i++) pthread_join(xc->threads[i], NULL);
    }
    for (int i = 0; xc->io && i < xc->n_io; i++) free(xc->io[i].stage);
    for (int i = 0; xc->fds && i < xc->n_fds; i++)
        if (xc->fds[i] >= 0) close(xc->fds[i]);
    if (xc->mem) munmap(xc->mem, xc->mem_len);
    xp_free(&xc->pol);
    free(xc->io), free(xc->threads), free(xc->fds), free(xc->fsize), free(xc->fd_direct), free(xc->src);
    free(xc->kstate), free(xc->pins), free(xc->want_epoch), free(xc->pref_epoch), free(xc->slot_pref);
    free(xc->slot_loading), free(xc->qd), free(xc->qp), free(xc->q_demand), free(xc->pred_mask);
    free(xc->chosen_mask), free(xc->slot_fresh), free(xc->pad);
    pthread_mutex_destroy(&xc->mu);
    pthread_mutex_destroy(&xc->turn);
    pthread_cond_destroy(&xc->work);
    pthread_cond_destroy(&xc->done);
    free(xc);
}

static int open_src(grok_xcache *xc, int fdi, const char *path, bool buffered, char *err, size_t err_size) {
    if (xc->fds[fdi] >= 0) return 0;
    int fd = buffered ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    xc->fd_direct[fdi] = fd >= 0;
    if (fd < 0) fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    xc->fds[fdi] = fd;
    const off_t end = lseek(fd, 0, SEEK_END);
    xc->fsize[fdi] = end > 0 ? (uint64_t)end : 0;
    return 0;
}

/* Where part p of expert e of a layer (w its matrix there) is read from:
 * the packed file when it holds them packed and the slot wants them
 * packed, else the file the model's bytes lie in (memory, for bytes the
 * model copied); straight into the slot when the slot's bytes lie
 * contiguous there in its layout (a share of whole rows: all but the down
 * matrix's column slice of an FFN-split rank). */
static int src_of(grok_xcache *xc, const grok_layer *L, int p, int64_t e, bool buffered, xsrc *out, char *err,
                  size_t err_size) {
    const xpart *pt = &xc->part[p];
    const grok_mat *w = p == 0 ? &L->gate : p == 1 ? &L->up : &L->down;
    const size_t stride = p == 0 ? L->gate_stride : p == 1 ? L->up_stride : L->down_stride;
    const char *path;
    uint64_t off;
    const bool whole_rows = p < 2 || (pt->c0 == 0 && pt->c1 == w->cols);
    memset(out, 0, sizeof *out);
    if (pt->packed && xc->m->pf && grok_packfile_find(xc->m->pf, w, &path, &off)) {
        out->fdi = xc->n_fds - 1;
        out->off = off + (uint64_t)e * stride; /* packed copies are stride apart */
        out->packed_src = true;
        out->direct = whole_rows;
        return open_src(xc, out->fdi, path, buffered, err, err_size);
    }
    const uint8_t *data = grok_layer_expert(L, p, e).data;
    int32_t fi;
    out->direct = whole_rows && !pt->packed;
    if (grok_gguf_locate(xc->m->file, data, &fi, &path, &off)) {
        out->fdi = -1; /* the model holds these bytes itself */
        out->mem = data;
        return 0;
    }
    out->fdi = fi;
    out->off = off;
    return open_src(xc, fi, path, buffered, err, err_size);
}

/* A chunk (or one 8-row group when rows are longer, or the largest
 * matrix of an expert when smaller), plus the 4 KiB widening at both ends. */
int64_t grok_xcache_stage_bytes(const grok_model *m, const grok_dist *sh) {
    const grok_layer *L = &m->layers[sh->l0 < sh->l1 ? sh->l0 : 0];
    const grok_mat *w[3] = {&L->gate, &L->up, &L->down};
    size_t stage = 0;
    for (int p = 0; p < 3; p++) {
        const size_t rows = p < 2 ? (size_t)(sh->f1 - sh->f0) : (size_t)w[p]->rows;
        size_t s = rows * w[p]->row_bytes;
        if (s > (size_t)GROK_XCACHE_CHUNK) s = (size_t)GROK_XCACHE_CHUNK;
        if (s < GROK_PACK_ROWS * w[p]->row_bytes) s = GROK_PACK_ROWS * w[p]->row_bytes;
        if (s > stage) stage = s;
    }
    return (int64_t)stage + 2 * 4096;
}

grok_xcache *grok_xcache_create(const grok_model *m, const grok_dist *sh, const grok_memory_plan *plan,
                                char *err, size_t err_size) {
    for (int64_t il = sh->l0; il < sh->l1; il++)
        if (m->layers[il].xtype[0] || m->layers[il].xtype[1] || m->layers[il].xtype[2]) {
            /* its slots are one packed layout per layer */
            snprintf(err, err_size,
                     "layer %" PRId64 "'s experts differ in type (grok quantize --expert-aware)", il);
            return NULL;
        }
    grok_xcache *xc = calloc(1, sizeof *xc);
    if (!xc) goto oom;
    pthread_mutex_init(&xc->mu, NULL);
    pthread_mutex_init(&xc->turn, NULL);
    pthread_cond_init(&xc->work, NULL);
    pthread_cond_init(&xc->done, NULL);
    xc->m = m;
    xc->sh = *sh;
    xc->nl = sh->l1 - sh->l0, xc->ne = sh->e1 - sh->e0;
    xc->n_keys = xc->nl * xc->ne;
    xc->n_slots = plan->cache_slots < xc->n_keys ? plan->cache_slots : xc->n_keys;
    xc->pred_layer = -1;
    if (xc->n_keys <= 0 || xc->n_slots <= 0 || sh->f1 <= sh->f0) {
        snprintf(err, err_size, "no experts to cache in this share");
        goto fail;
    }
    const grok_layer *L0 = &m->layers[sh->l0];
    const int64_t d = m->hp.d_model;
    const grok_mat *mats[3] = {&L0->gate, &L0->up, &L0->down};
    size_t off = 0;
    size_t max_rb = 0;
    for (int p = 0; p < 3; p++) {
        xpart *pt = &xc->part[p];
        pt->src = mats[p];
        if (p < 2)
            pt->r0 = sh->f0, pt->r1 = sh->f1, pt->c0 = 0, pt->c1 = d;
        else
            pt->r0 = 0, pt->r1 = d, pt->c0 = sh->f0, pt->c1 = sh->f1;
        pt->packed = packs(mats[p], pt->r0, pt->r1);
        pt->off = off;
        /* room for a read straight from the file: 4 KiB-aligned, widened to 4 KiB at both ends */
        off += (size_t)(pt->r1 - pt->r0) * mats[p]->row_bytes + 2 * 4096;
        off = (off + 4095) / 4096 * 4096;
        if (mats[p]->row_bytes > max_rb) max_rb = mats[p]->row_bytes;
        /* every layer's matrices must have layer 0's type (they are read
         * with one geometry) */
        for (int64_t il = sh->l0; il < sh->l1; il++) {
            const grok_layer *L = &m->layers[il];
            const grok_mat *w = p == 0 ? &L->gate : p == 1 ? &L->up : &L->down;
            if (w->type != mats[p]->type) {
                snprintf(err, err_size,
                         "layer %" PRId64 "'s experts are %s, layer %" PRId64
                         "'s %s: the cache needs one type per matrix",
                         il, grok_type_get_traits(w->type)->name, sh->l0,
                         grok_type_get_traits(mats[p]->type)->name);
                goto fail;
            }
        }
    }
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    xc->stride = (off + pg - 1) / pg * pg;
    xc->slot_bytes = plan->expert_bytes;
    if ((size_t)xc->n_slots > SIZE_MAX / xc->stride) goto oom;
    xc->mem_len = (size_t)xc->n_slots * xc->stride;
    xc->mem =
        mmap(NULL, xc->mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (xc->mem == MAP_FAILED) {
        xc->mem = NULL;
        goto oom;
    }
#ifdef MADV_HUGEPAGE
    /* whole slots are written: huge pages cost nothing extra (not so for
     * an FFN-row share, whose down columns are a sparse part of each row) */
    if (sh->f0 == 0 && sh->f1 == m->hp.n_ff) madvise(xc->mem, xc->mem_len, MADV_HUGEPAGE);
#endif
    xc->n_fds = grok_gguf_n_files(m->file) + 1;
    xc->fds = malloc((size_t)xc->n_fds * sizeof *xc->fds);
    xc->fsize = calloc((size_t)xc->n_fds, sizeof *xc->fsize);
    xc->fd_direct = calloc((size_t)xc->n_fds, sizeof *xc->fd_direct);
    xc->src = calloc((size_t)(xc->nl * 3 * xc->ne), sizeof *xc->src);
    if (!xc->fds || !xc->fsize || !xc->fd_direct || !xc->src) goto oom;
    for (int i = 0; i < xc->n_fds; i++) xc->fds[i] = -1;
    /* every piece of the model, opened now: a read may run on into the next */
    for (int i = 0; i + 1 < xc->n_fds; i++)
        if (open_src(xc, i, grok_gguf_file_path(m->file, i, NULL), !plan->direct_io, err, err_size))
            goto fail;
    for (int64_t il = sh->l0; il < sh->l1; il++)
        for (int p = 0; p < 3; p++)
            for (int64_t e = sh->e0; e < sh->e1; e++)
                if (src_of(xc, &m->layers[il], p, e, !plan->direct_io,
                           &xc->src[((il - sh->l0) * 3 + p) * xc->ne + (e - sh->e0)], err, err_size))
                    goto fail;
    if (xp_init(&xc->pol, plan->policy, xc->n_slots, xc->n_keys)) goto oom;
    const size_t nk = (size_t)xc->n_keys, ns = (size_t)xc->n_slots;
    xc->kstate = calloc(nk, 1);
    xc->pins = calloc(nk, sizeof *xc->pins);
    xc->want_epoch = calloc(nk, sizeof *xc->want_epoch);
    xc->pref_epoch = calloc(nk, sizeof *xc->pref_epoch);
    xc->slot_pref = calloc(ns, sizeof *xc->slot_pref);
    xc->slot_loading = calloc(ns, sizeof *xc->slot_loading);
    xc->qd = malloc(2 * nk * sizeof *xc->qd);
    xc->qp = malloc(2 * nk * sizeof *xc->qp);
    xc->q_demand = calloc(nk, sizeof *xc->q_demand);
    xc->pred_mask = calloc((size_t)xc->ne, 1);
    xc->chosen_mask = calloc((size_t)xc->ne, 1);
    xc->slot_fresh = calloc(ns, sizeof *xc->slot_fresh);
    xc->pad = calloc(ns * 3, sizeof *xc->pad);
    if (!xc->chosen_mask || !xc->slot_fresh || !xc->pad || !xc->kstate || !xc->pins || !xc->want_epoch ||
        !xc->pref_epoch || !xc->slot_pref || !xc->slot_loading || !xc->qd || !xc->qp || !xc->q_demand ||
        !xc->pred_mask)
        goto oom;
    xc->n_io = m->params.memory.io_threads > 0 ? m->params.memory.io_threads : 2;
    xc->io = calloc((size_t)xc->n_io, sizeof *xc->io);
    xc->threads = calloc((size_t)xc->n_io, sizeof *xc->threads);
    if (!xc->io || !xc->threads) goto oom;
    const size_t stage = (size_t)grok_xcache_stage_bytes(m, sh);
    (void)max_rb;
    for (int i = 0; i < xc->n_io; i++) {
        xc->io[i] = (xio){xc, i, NULL, stage, 0};
        if (posix_memalign((void **)&xc->io[i].stage, 4096, stage)) {
            xc->io[i].stage = NULL;
            goto oom;
        }
    }
    for (int i = 0; i < xc->n_io; i++)
        if (pthread_create(&xc->threads[i], NULL, io_main, &xc->io[i])) {
            xc->n_io = i;
            snprintf(err, err_size, "cannot start the expert cache's I/O threads");
            goto fail;
        }
    return xc;
oom:
    snprintf(err, err_size, "out of memory for an expert cache of %" PRId64 " slots", plan->cache_slots);
fail:
    grok_xcache_free(xc);
    return NULL;
}

double grok_model_read_rate(const grok_model *m, int64_t max_bytes) {
    const grok_gguf_file *f = m->file;
    const grok_layer *L = &m->layers[0];
    const char *path;
    uint64_t start;
    if (grok_gguf_locate(f, grok_layer_expert(L, 0, 0).data, NULL, &path, &start)) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    bool direct = fd >= 0;
    if (fd < 0) fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    const off_t size = lseek(fd, 0, SEEK_END);
    start = start / 4096 * 4096;
    if (size <= 0 || (uint64_t)size <= start) {
        close(fd);
        return -1;
    }
    int64_t n = (int64_t)((uint64_t)size - start);
    if (n > max_bytes) n = max_bytes;
    const size_t chunk = (size_t)GROK_XCACHE_CHUNK;
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, chunk)) {
        close(fd);
        return -1;
    }
    if (!direct) posix_fadvise(fd, (off_t)start, (off_t)n, POSIX_FADV_DONTNEED);
    const double t0 = grok_now();
    int64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf, chunk, (off_t)(start + (uint64_t)got));
        if (r <= 0) break;
        got += r;
    }
    const double dt = grok_now() - t0;
    if (!direct) posix_fadvise(fd, (off_t)start, (off_t)n, POSIX_FADV_DONTNEED);
    free(buf);
    close(fd);
    return got > 0 && dt > 0 ? (double)got / dt : -1;
}
