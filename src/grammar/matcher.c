/*
 * matcher.c - runs a grammar over generated tokens: which tokens may come
 * next (a mask over the vocabulary), and the state after one is taken.
 *
 * The state is llama.cpp's: a set of pushdown stacks whose tops are
 * terminals (a character class or a whole-token element), an empty stack
 * meaning the grammar may end there, and the bytes of a character a token
 * left unfinished. Here stacks are hash-consed: a frame is (position,
 * parent frame), interned once, so a stack is one frame id and a set of
 * stacks is one interned sorted id array. Transitions between sets are
 * memoised (a 128-entry row per set for ASCII bytes, a hash for other code
 * points), so walking the same text twice costs table lookups.
 *
 * The mask follows xgrammar's idea of splitting tokens into those a stack's
 * top decides alone and those that depend on what lies deeper. For every
 * stack of the state, its top KEY_DEPTH frames are cut off above a
 * BOUNDARY frame and the whole vocabulary is walked once from that short
 * stack (the tokens sorted bytewise, so a walk is a trie walk that shares
 * every common prefix and skips a whole subtree when its first bytes fail):
 * a token is accepted when it is consumed above the boundary, rejected when
 * it fails before reaching it, and uncertain when the cut-off rules end
 * before the token does. The accepted bitmap and the list of uncertain
 * tokens are cached under the short stack, which recurs wherever the same
 * rules meet the same context, so a step ORs a few cached bitmaps and walks
 * only its uncertain tokens against the real stacks. Stacks no deeper than
 * KEY_DEPTH are their own key and have no uncertain tokens.
 *
 * Bytes are decoded as strict UTF-8 (no overlong forms, surrogates or
 * values past U+10FFFF; llama.cpp decodes leniently), so every accepted
 * text is valid UTF-8. A token that ends inside a character is allowed
 * when some stack's class holds a character that begins with those bytes.
 * Tokens without text (control pieces) are never allowed by characters;
 * EOS only where a stack is empty, or where a <[id]> element names it.
 *
 * The caches belong to the grammar, are shared by all its matchers and
 * guarded by the grammar's mutex; each matcher also keeps its stacks as
 * plain position arrays, so the caches may be dropped (when they outgrow
 * CACHE_LIMIT) without losing any matcher's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar_internal.h"

/* frames of a stack's top that key its cached mask: 2 leaves too many tokens
 * uncertain in JSON strings; 3, 4 and 6 cost alike on the test grammars */
#define KEY_DEPTH 4
#define CACHE_LIMIT ((size_t)768 << 20) /* bytes of caches per grammar before they are dropped */
#define MAX_SET ((size_t)1 << 16)       /* stacks in one state: beyond, the grammar is too ambiguous */
/* byte steps and stack frames one call (a mask, taking a token, matching a
 * text) may spend: grammars whose every step reaches a different set of
 * thousands of stacks (a nullable item repeated thousands of times,
 * "([a-z]?){30000}") would otherwise take minutes and gigabytes per token;
 * the mask of a JSON schema over Grok-1's vocabulary, cold, needs some
 * millions */
#define WORK_LIMIT ((uint64_t)1 << 27)

#define FR_EMPTY 0u /* the empty stack: the grammar may end */
#define FR_BND 1u   /* below the cut of a short stack */
#define NO_ID UINT32_MAX

enum { F_EMPTY = 1, F_BND = 2, F_CHAR = 4, F_TOK = 8 };
enum { V_REJECT = 0, V_ACCEPT = 1, V_UNSURE = 2 };

/* ---- small containers ---- */

typedef struct {
    uint32_t *a;
    size_t n, cap;
} vec32;

static bool v32_push(vec32 *v, uint32_t x) {
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 64;
        uint32_t *a = realloc(v->a, c * sizeof *a);
        if (!a) return false;
        v->a = a;
        v->cap = c;
    }
    v->a[v->n++] = x;
    return true;
}

/* Open addressing, uint64 keys (UINT64_MAX is "empty"), uint32 values. */
typedef struct {
    uint64_t *k;
    uint32_t *v;
    size_t cap, n;
} u64map;

static inline size_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (size_t)x;
}

static uint32_t map_get(const u64map *m, uint64_t key) {
    if (!m->cap) return NO_ID;
    for (size_t h = mix64(key) & (m->cap - 1);; h = (h + 1) & (m->cap - 1)) {
        if (m->k[h] == key) return m->v[h];
        if (m->k[h] == UINT64_MAX) return NO_ID;
    }
}

static bool map_put(u64map *m, uint64_t key, uint32_t val, size_t *bytes) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t c = m->cap ? m->cap * 2 : 1024;
        uint64_t *k = malloc(c * sizeof *k);
        uint32_t *v = malloc(c * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return false;
        }
        memset(k, 0xFF, c * sizeof *k);
        for (size_t i = 0; i < m->cap; i++) {
            if (m->k[i] == UINT64_MAX) continue;
            size_t h = mix64(m->k[i]) & (c - 1);
            while (k[h] != UINT64_MAX) h = (h + 1) & (c - 1);
            k[h] = m->k[i];
            v[h] = m->v[i];
        }
        *bytes += (c - m->cap) * 12;
        free(m->k);
        free(m->v);
        m->k = k;
        m->v = v;
        m->cap = c;
    }
    size_t h = mix64(key) & (m->cap - 1);
    while (m->k[h] != UINT64_MAX && m->k[h] != key) h = (h + 1) & (m->cap - 1);
    if (m->k[h] == UINT64_MAX) m->n++;
    m->k[h] = key;
    m->v[h] = val;
    return true;
}

static void map_free(u64map *m) {
    free(m->k);
    free(m->v);
    memset(m, 0, sizeof *m);
}

/* ---- the cache ---- */

typedef struct {
    uint64_t *acc; /* [n_words] accepted whatever lies below the cut */
    uint32_t *unc; /* sorted ranks of the uncertain tokens */
    uint32_t n_unc;
} entry;

struct grok_gcache {
    /* frames: (position, parent) */
    uint32_t *fpos, *fpar, *exp_off, *exp_len, *key_of, *stamp;
    size_t n_fr, cap_fr;
    u64map fmap;
    vec32 exp_pool;
    uint32_t cur_stamp;
    /* sets of frames */
    uint32_t *s_off, *s_len;
    uint8_t *s_flags;
    int32_t *s_row;
    int32_t *s_high; /* the set every non-ASCII character leads to; -1: they differ, -2: not known */
    size_t n_set, cap_set;
    vec32 s_pool;
    uint32_t *s_htab;
    size_t s_hcap;
    int32_t *rows; /* 128 transitions per row, -1 = not computed */
    size_t n_rows, cap_rows;
    u64map cpmap; /* (set << 21 | code point) -> set */
    /* short-stack entries */
    u64map emap;
    entry *ents;
    size_t n_ent, cap_ent;
    /* scratch */
    vec32 work, res;
    struct wst *wst; /* [max_len + 1] */
    size_t bytes;
    uint64_t epoch;
    uint64_t spent; /* spent by the current call (WORK_LIMIT) */
    int key_depth;
    bool oom; /* out of memory or over WORK_LIMIT: the call fails, the cache is renewed */
};

/* Counts n units of the current call's work; past WORK_LIMIT the grammar
 * is too ambiguous to follow and the call fails as when out of memory. */
static inline bool spend(grok_gcache *c, uint64_t n) {
    c->spent += n;
    if (c->spent > WORK_LIMIT) c->oom = true;
    return !c->oom;
}

typedef struct wst {
    uint32_t set;
    uint32_t cp;  /* the bits of an unfinished character */
    int32_t high; /* where it leads whatever it is (s_high of its set), or -1 */
    uint8_t rem;  /* continuation bytes it still needs (0: at a character boundary) */
    uint8_t len;  /* its length in bytes */
    bool bnd;     /* a set on the way here held the boundary */
} wst;

static bool is_terminal(const grok_grammar *g, uint32_t pos) {
    uint32_t t = g->el[pos].type;
    return t == GE_CHAR || t == GE_CHAR_NOT || t == GE_CHAR_ANY || t == GE_TOKEN || t == GE_TOKEN_NOT;
}

static bool grow_frames(grok_gcache *c) {
    size_t cap = c->cap_fr ? c->cap_fr * 2 : 1024;
    uint32_t **arrs[] = {&c->fpos, &c->fpar, &c->exp_off, &c->exp_len, &c->key_of, &c->stamp};
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        uint32_t *a = realloc(*arrs[i], cap * sizeof *a);
        if (!a) return false;
        *arrs[i] = a;
    }
    c->bytes += (cap - c->cap_fr) * 6 * sizeof(uint32_t);
    c->cap_fr = cap;
    return true;
}

static uint32_t frame(grok_gcache *c, uint32_t pos, uint32_t par) {
    uint64_t key = (uint64_t)pos << 32 | par;
    uint32_t id = map_get(&c->fmap, key);
    if (id != NO_ID) return id;
    if (c->n_fr == c->cap_fr && !grow_frames(c)) goto oom;
    id = (uint32_t)c->n_fr++;
    c->fpos[id] = pos;
    c->fpar[id] = par;
    c->exp_len[id] = NO_ID;
    c->key_of[id] = NO_ID;
    c->stamp[id] = 0;
    if (!map_put(&c->fmap, key, id, &c->bytes)) goto oom;
    return id;
oom:
    c->oom = true;
    return FR_EMPTY;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static size_t sort_unique(uint32_t *a, size_t n) {
    if (n < 2) return n;
    qsort(a, n, sizeof *a, cmp_u32);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!m || a[i] != a[m - 1]) a[m++] = a[i];
    return m;
}

/* The stacks f stands for once every rule reference on top is entered:
 * frames whose top is a terminal, FR_EMPTY and FR_BND. Memoised per frame;
 * returns the offset into exp_pool and the count in *n. */
static uint32_t expand(const grok_grammar *g, grok_gcache *c, uint32_t f, uint32_t *n) {
    if (c->exp_len[f] != NO_ID) {
        *n = c->exp_len[f];
        return c->exp_off[f];
    }
    if (++c->cur_stamp == 0) {
        for (size_t i = 0; i < c->n_fr; i++) c->stamp[i] = 0;
        c->cur_stamp = 1;
    }
    uint32_t st = c->cur_stamp;
    c->work.n = 0;
    c->res.n = 0;
    bool ok = v32_push(&c->work, f);
    while (ok && c->work.n) {
        uint32_t x = c->work.a[--c->work.n];
        if (c->stamp[x] == st) continue;
        c->stamp[x] = st;
        if (!spend(c, 1)) {
            ok = false;
            break;
        }
        if (x == FR_EMPTY || x == FR_BND || is_terminal(g, c->fpos[x])) {
            ok = v32_push(&c->res, x);
            continue;
        }
        if (x != f && c->exp_len[x] != NO_ID) {
            for (uint32_t i = 0; ok && i < c->exp_len[x]; i++)
                ok = v32_push(&c->res, c->exp_pool.a[c->exp_off[x] + i]);
            continue;
        }
        uint32_t pos = c->fpos[x], par = c->fpar[x];
        const grok_gelem *e = &g->el[pos];
        /* a reference last in its alternative leaves nothing to come back to */
        uint32_t base = grok_ge_is_end(e + 1) ? par : frame(c, pos + 1, par);
        for (uint32_t a = g->rule_off[e->value];;) {
            ok = ok && v32_push(&c->work, grok_ge_is_end(&g->el[a]) ? base : frame(c, a, base));
            while (!grok_ge_is_end(&g->el[a])) a++;
            if (g->el[a].type == GE_END) break;
            a++;
        }
    }
    if (!ok || c->oom) {
        c->oom = true;
        *n = 0;
        return 0;
    }
    size_t m = sort_unique(c->res.a, c->res.n);
    uint32_t off = (uint32_t)c->exp_pool.n;
    for (size_t i = 0; i < m; i++)
        if (!v32_push(&c->exp_pool, c->res.a[i])) {
            c->oom = true;
            *n = 0;
            return 0;
        }
    c->bytes += m * sizeof(uint32_t);
    c->exp_off[f] = off;
    c->exp_len[f] = (uint32_t)m;
    *n = (uint32_t)m;
    return off;
}

/* The frame after the terminal on top of f was matched. */
static uint32_t after(const grok_grammar *g, grok_gcache *c, uint32_t f) {
    uint32_t np = g->next_of[c->fpos[f]];
    return grok_ge_is_end(&g->el[np]) ? c->fpar[f] : frame(c, np, c->fpar[f]);
}

static uint64_t set_hash(const uint32_t *a, size_t n) {
    uint64_t h = 1469598103934665603ull ^ n;
    for (size_t i = 0; i < n; i++) h = (h ^ a[i]) * 1099511628211ull;
    return h;
}

/* Interns a sorted, unique array of frames as a set id. */
static uint32_t set_of(const grok_grammar *g, grok_gcache *c, const uint32_t *a, size_t n) {
    if (c->oom) return 0;
    if ((c->n_set + 1) * 2 > c->s_hcap) {
        size_t cap = c->s_hcap ? c->s_hcap * 2 : 1024;
        uint32_t *t = calloc(cap, sizeof *t);
        if (!t) goto oom;
        for (size_t i = 0; i < c->n_set; i++) {
            size_t h = set_hash(c->s_pool.a + c->s_off[i], c->s_len[i]) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = (uint32_t)i + 1;
        }
        c->bytes += (cap - c->s_hcap) * sizeof *t;
        free(c->s_htab);
        c->s_htab = t;
        c->s_hcap = cap;
    }
    size_t h = set_hash(a, n) & (c->s_hcap - 1);
    for (; c->s_htab[h]; h = (h + 1) & (c->s_hcap - 1)) {
        uint32_t id = c->s_htab[h] - 1;
        if (c->s_len[id] == n && (n == 0 || !memcmp(c->s_pool.a + c->s_off[id], a, n * sizeof *a))) return id;
    }
    if (c->n_set == c->cap_set) {
        size_t cap = c->cap_set ? c->cap_set * 2 : 1024;
        uint32_t *o = realloc(c->s_off, cap * sizeof *o);
        if (o) c->s_off = o;
        uint32_t *l = realloc(c->s_len, cap * sizeof *l);
        if (l) c->s_len = l;
        uint8_t *fl = realloc(c->s_flags, cap);
        if (fl) c->s_flags = fl;
        int32_t *r = realloc(c->s_row, cap * sizeof *r);
        if (r) c->s_row = r;
        int32_t *hs = realloc(c->s_high, cap * sizeof *hs);
        if (hs) c->s_high = hs;
        if (!o || !l || !fl || !r || !hs) goto oom;
        c->bytes += (cap - c->cap_set) * 17;
        c->cap_set = cap;
    }
    uint32_t id = (uint32_t)c->n_set++;
    c->s_off[id] = (uint32_t)c->s_pool.n;
    c->s_len[id] = (uint32_t)n;
    c->s_row[id] = -1;
    c->s_high[id] = -2;
    uint8_t fl = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v32_push(&c->s_pool, a[i])) goto oom;
        uint32_t f = a[i];
        if (f == FR_EMPTY)
            fl |= F_EMPTY;
        else if (f == FR_BND)
            fl |= F_BND;
        else if (grok_ge_is_token(&g->el[c->fpos[f]]))
            fl |= F_TOK;
        else
            fl |= F_CHAR;
    }
    c->s_flags[id] = fl;
    c->bytes += n * sizeof(uint32_t);
    c->s_htab[h] = id + 1;
    return id;
oom:
    c->oom = true;
    return 0;
}

/* The set after code point cp (0 = the dead set). */
static uint32_t advance(const grok_grammar *g, grok_gcache *c, uint32_t set, uint32_t cp) {
    vec32 out = {0};
    bool ok = true;
    for (uint32_t i = 0; ok && i < c->s_len[set]; i++) {
        uint32_t f = c->s_pool.a[c->s_off[set] + i];
        if (f <= FR_BND) continue;
        int32_t k = g->cls_of[c->fpos[f]];
        if (k < 0 || !grok_cclass_has(g, &g->cls[k], cp)) continue;
        uint32_t n, off = expand(g, c, after(g, c, f), &n);
        ok = spend(c, n);
        for (uint32_t j = 0; ok && j < n; j++) ok = v32_push(&out, c->exp_pool.a[off + j]);
    }
    uint32_t r = 0;
    if (!ok) {
        c->oom = true;
    } else if (out.n > MAX_SET) {
        c->oom = true; /* far too ambiguous to follow */
    } else {
        size_t m = sort_unique(out.a, out.n);
        r = set_of(g, c, out.a, m);
    }
    free(out.a);
    return r;
}

static uint32_t next_ascii(const grok_grammar *g, grok_gcache *c, uint32_t set, uint32_t b) {
    int32_t row = c->s_row[set];
    if (row < 0) {
        if (c->n_rows == c->cap_rows) {
            size_t cap = c->cap_rows ? c->cap_rows * 2 : 64;
            int32_t *r = realloc(c->rows, cap * 128 * sizeof *r);
            if (!r) {
                c->oom = true;
                return 0;
            }
            c->bytes += (cap - c->cap_rows) * 128 * sizeof *r;
            c->rows = r;
            c->cap_rows = cap;
        }
        row = (int32_t)c->n_rows++;
        for (int i = 0; i < 128; i++) c->rows[(size_t)row * 128 + i] = -1;
        c->s_row[set] = row;
    }
    int32_t *cell = &c->rows[(size_t)row * 128 + b];
    if (*cell < 0) {
        uint32_t r = advance(g, c, set, b);
        cell = &c->rows[(size_t)c->s_row[set] * 128 + b]; /* rows may have moved */
        *cell = (int32_t)r;
    }
    return (uint32_t)*cell;
}

static uint32_t next_cp(const grok_grammar *g, grok_gcache *c, uint32_t set, uint32_t cp) {
    uint64_t key = (uint64_t)set << 21 | cp;
    uint32_t r = map_get(&c->cpmap, key);
    if (r != NO_ID) return r;
    r = advance(g, c, set, cp);
    if (!map_put(&c->cpmap, key, r, &c->bytes)) c->oom = true;
    return r;
}

/* Does class k hold every code point of [lo, hi] (merged ranges: one
 * range must hold them all)? */
static bool class_covers(const grok_grammar *g, const grok_cclass *k, uint32_t lo, uint32_t hi) {
    const grok_crange *r = g->ranges + k->r0;
    for (uint32_t i = 0; i < k->nr; i++)
        if (r[i].lo <= lo && r[i].hi >= hi) return true;
    return false;
}

/* When every stack's class holds either all non-ASCII characters or none
 * (strings, free text, '.'), every such character leads to one set:
 * computed once, so the bytes of multi-byte characters cost no class
 * lookups. Returns that set, or -1. */
static int32_t high_set(const grok_grammar *g, grok_gcache *c, uint32_t set) {
    if (c->s_high[set] != -2) return c->s_high[set];
    bool uniform = true;
    for (uint32_t i = 0; uniform && i < c->s_len[set]; i++) {
        uint32_t f = c->s_pool.a[c->s_off[set] + i];
        if (f <= FR_BND) continue;
        int32_t k = g->cls_of[c->fpos[f]];
        if (k < 0) continue; /* a whole-token element reads no characters */
        const grok_cclass *cl = &g->cls[k];
        bool any = grok_cclass_meets(g, cl, 0x80, 0x10FFFF);
        bool all = class_covers(g, cl, 0x80, 0xD7FF) && class_covers(g, cl, 0xE000, 0x10FFFF);
        if (any && !all) uniform = false;
    }
    int32_t r = uniform ? (int32_t)advance(g, c, set, 0x4E00) : -1; /* any non-ASCII character will do */
    c->s_high[set] = r;
    return r;
}

/* Does some stack's class hold a character beginning with the unfinished
 * bytes of s? */
static bool partial_viable(const grok_grammar *g, const grok_gcache *c, const wst *s) {
    uint32_t sh = 6u * s->rem;
    uint32_t lo = s->cp << sh, hi = lo | ((1u << sh) - 1);
    uint32_t min = s->len == 2 ? 0x80 : s->len == 3 ? 0x800 : 0x10000;
    if (lo < min) lo = min;
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (s->len == 3 && s->rem == 2 && s->cp == 0xD) hi = 0xD7FF; /* no surrogates */
    if (lo > hi) return false;
    for (uint32_t i = 0; i < c->s_len[s->set]; i++) {
        uint32_t f = c->s_pool.a[c->s_off[s->set] + i];
        if (f <= FR_BND) continue;
        int32_t k = g->cls_of[c->fpos[f]];
        if (k >= 0 && grok_cclass_meets(g, &g->cls[k], lo, hi)) return true;
    }
    return false;
}

enum { W_LIVE = 1, W_END_OK = 2 };

/* One byte. Returns W_LIVE when more bytes may follow, W_END_OK when the
 * text may stop after it. */
static int wstep(const grok_grammar *g, grok_gcache *c, wst *s, uint32_t b) {
    if (!spend(c, 1)) return 0;
    if (s->rem == 0) {
        if (b < 0x80) {
            s->set = next_ascii(g, c, s->set, b);
            goto boundary;
        }
        if (b >= 0xC2 && b <= 0xDF)
            s->len = 2, s->cp = b & 0x1F;
        else if (b >= 0xE0 && b <= 0xEF)
            s->len = 3, s->cp = b & 0x0F;
        else if (b >= 0xF0 && b <= 0xF4)
            s->len = 4, s->cp = b & 0x07;
        else
            return 0;
        s->rem = (uint8_t)(s->len - 1);
        s->high = high_set(g, c, s->set);
        if (s->high >= 0) return s->high ? W_LIVE | W_END_OK : 0;
    } else {
        if ((b & 0xC0) != 0x80) return 0;
        if (s->rem == s->len - 1) { /* the second byte narrows what the first allowed */
            if ((s->len == 3 && s->cp == 0x0 && b < 0xA0) || (s->len == 3 && s->cp == 0xD && b > 0x9F) ||
                (s->len == 4 && s->cp == 0x0 && b < 0x90) || (s->len == 4 && s->cp == 0x4 && b > 0x8F))
                return 0;
        }
        s->cp = s->cp << 6 | (b & 0x3F);
        if (--s->rem == 0) {
            s->set = s->high >= 0 ? (uint32_t)s->high : next_cp(g, c, s->set, s->cp);
            s->high = -1;
            goto boundary;
        }
        if (s->high >= 0) return W_LIVE | W_END_OK;
    }
    return partial_viable(g, c, s) ? W_LIVE | W_END_OK : 0;
boundary:;
    uint8_t fl = c->s_flags[s->set];
    if (fl & F_BND) s->bnd = true;
    return ((fl & F_CHAR) ? W_LIVE : 0) | (c->s_len[s->set] ? W_END_OK : 0);
}

/* ---- walking the vocabulary ---- */

typedef void (*emit_fn)(void *ctx, uint32_t rank, int verdict);

static size_t common_prefix(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
    size_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Walks the tokens of ranks[0..n) (ascending; NULL: every token with
 * text) from start, reporting each one's verdict. */
static void walk(const grok_grammar *g, grok_gcache *c, wst start, const uint32_t *ranks, size_t n,
                 emit_fn emit, void *ctx) {
    const grok_grammar_vocab *v = g->vocab;
    wst *st = c->wst;
    st[0] = start;
    size_t valid = 0;
    int64_t dead_d = -1;
    int dead_v = V_REJECT;
    const uint8_t *pb = NULL;
    size_t pl = 0;
    if (!ranks) n = v->n_sorted;
    for (size_t k = 0; k < n && !c->oom; k++) {
        uint32_t rank = ranks ? ranks[k] : (uint32_t)k;
        const uint8_t *b = v->sbytes + v->soff[rank];
        size_t len = v->slen[rank];
        size_t l = ranks ? (pb ? common_prefix(pb, pl, b, len) : 0) : v->lcp[rank];
        pb = b;
        pl = len;
        if (dead_d >= 0 && (int64_t)l > dead_d) {             /* fails at the same byte as the one before */
            if (!ranks && dead_v == V_REJECT && dead_d < 2) { /* the whole subtree: nothing to report */
                k = (dead_d == 0 ? v->end1[rank] : v->end2[rank]) - 1;
                continue;
            }
            emit(ctx, rank, dead_v);
            continue;
        }
        dead_d = -1;
        size_t d = l < valid ? l : valid;
        int verdict = V_ACCEPT;
        for (; d < len; d++) {
            wst s = st[d];
            int r = wstep(g, c, &s, b[d]);
            if (!(r & (d + 1 == len ? W_END_OK : W_LIVE))) {
                verdict = s.bnd ? V_UNSURE : V_REJECT;
                dead_d = (int64_t)d;
                dead_v = verdict;
                break;
            }
            st[d + 1] = s;
        }
        valid = dead_d >= 0 ? (size_t)dead_d : len;
        emit(ctx, rank, verdict);
    }
}

typedef struct {
    const grok_grammar_vocab *v;
    uint64_t *acc;
    vec32 *unc;
    bool oom;
} emit_ctx;

static void emit_entry(void *ctx, uint32_t rank, int verdict) {
    emit_ctx *e = ctx;
    if (verdict == V_ACCEPT) {
        uint32_t id = e->v->sorted[rank];
        e->acc[id >> 6] |= 1ull << (id & 63);
    } else if (verdict == V_UNSURE && e->unc && !v32_push(e->unc, rank)) {
        e->oom = true;
    }
}

/* ---- short-stack keys and their entries ---- */

/* f cut to its top key_depth frames above FR_BND; f itself when it is no
 * deeper than that. */
static uint32_t key_of(grok_gcache *c, uint32_t f) {
    if (c->key_of[f] != NO_ID) return c->key_of[f];
    uint32_t pos[64];
    int d = c->key_depth > 64 ? 64 : c->key_depth;
    uint32_t x = f;
    int k = 0;
    while (k < d && x != FR_EMPTY) {
        pos[k++] = c->fpos[x];
        x = c->fpar[x];
    }
    uint32_t key = f;
    if (x != FR_EMPTY) {
        key = FR_BND;
        for (int i = k - 1; i >= 0; i--) key = frame(c, pos[i], key);
    }
    if (!c->oom) c->key_of[f] = key;
    return key;
}

static entry *entry_of(const grok_grammar *g, grok_gcache *c, uint32_t key) {
    uint32_t e = map_get(&c->emap, key);
    if (e != NO_ID) return &c->ents[e];
    const grok_grammar_vocab *v = g->vocab;
    if (c->n_ent == c->cap_ent) {
        size_t cap = c->cap_ent ? c->cap_ent * 2 : 64;
        entry *a = realloc(c->ents, cap * sizeof *a);
        if (!a) goto oom;
        c->ents = a;
        c->cap_ent = cap;
    }
    entry en = {calloc(v->n_words, sizeof(uint64_t)), NULL, 0};
    if (!en.acc) goto oom;
    vec32 unc = {0};
    emit_ctx ctx = {v, en.acc, &unc, false};
    wst s = {set_of(g, c, &key, 1), 0, -1, 0, 0, false};
    walk(g, c, s, NULL, 0, emit_entry, &ctx);
    if (ctx.oom || c->oom) {
        free(en.acc);
        free(unc.a);
        goto oom;
    }
    en.unc = unc.a;
    en.n_unc = (uint32_t)unc.n;
    c->bytes += v->n_words * sizeof(uint64_t) + unc.cap * sizeof(uint32_t) + sizeof en;
    c->ents[c->n_ent] = en;
    if (!map_put(&c->emap, key, (uint32_t)c->n_ent, &c->bytes)) {
        free(en.acc);
        free(en.unc);
        goto oom;
    }
    return &c->ents[c->n_ent++];
oom:
    c->oom = true;
    return NULL;
}

/* ---- cache lifetime ---- */

static void cache_clear(grok_gcache *c) {
    free(c->fpos);
    free(c->fpar);
    free(c->exp_off);
    free(c->exp_len);
    free(c->key_of);
    free(c->stamp);
    map_free(&c->fmap);
    free(c->exp_pool.a);
    free(c->s_off);
    free(c->s_len);
    free(c->s_flags);
    free(c->s_row);
    free(c->s_high);
    free(c->s_pool.a);
    free(c->s_htab);
    free(c->rows);
    map_free(&c->cpmap);
    map_free(&c->emap);
    for (size_t i = 0; i < c->n_ent; i++) {
        free(c->ents[i].acc);
        free(c->ents[i].unc);
    }
    free(c->ents);
    free(c->work.a);
    free(c->res.a);
    free(c->wst);
    uint64_t epoch = c->epoch;
    int kd = c->key_depth;
    memset(c, 0, sizeof *c);
    c->epoch = epoch + 1;
    c->key_depth = kd;
}

void grok_gcache_free(grok_gcache *c) {
    if (!c) return;
    cache_clear(c);
    free(c);
}

/* Frames 0 and 1 and the dead set 0; false when out of memory. */
static bool cache_init(const grok_grammar *g, grok_gcache *c) {
    if (!grow_frames(c)) return false;
    c->n_fr = 2;
    for (uint32_t i = 0; i < 2; i++) {
        c->fpos[i] = c->fpar[i] = NO_ID;
        c->exp_off[i] = 0;
        c->exp_len[i] = NO_ID;
        c->key_of[i] = i;
        c->stamp[i] = 0;
    }
    size_t ml = g->vocab ? g->vocab->max_len : 0;
    c->wst = malloc((ml + 2) * sizeof *c->wst);
    if (!c->wst) return false;
    set_of(g, c, NULL, 0); /* set 0: no stack at all */
    return !c->oom;
}

/* The grammar's cache, made or renewed as needed (mutex held). */
static grok_gcache *cache(grok_grammar *g) {
    grok_gcache *c = g->cache;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return NULL;
        c->key_depth = KEY_DEPTH;
        g->cache = c;
        if (!cache_init(g, c)) {
            cache_clear(c);
            return NULL;
        }
        return c;
    }
    if (c->oom || c->bytes > CACHE_LIMIT) {
        cache_clear(c);
        if (!cache_init(g, c)) {
            cache_clear(c);
            return NULL;
        }
    }
    c->spent = 0; /* one call to the cache per public call */
    return c;
}

/* ---- matchers ---- */

struct grok_matcher {
    grok_grammar *g;
    /* the state: stacks as positions, top first (an empty one: may end) */
    uint32_t *pos;
    size_t n_pos, cap_pos;
    uint32_t *stk_off, *stk_len;
    size_t n_stk, cap_stk;
    uint32_t cp;
    uint8_t rem, len;
    bool ended; /* EOS was taken */
    /* the same state in the cache, valid while epoch matches */
    uint32_t set;
    uint64_t epoch;
    bool synced;
};

/* Writes the cache's set into the matcher's own arrays. */
static bool export_state(grok_matcher *m, grok_gcache *c, uint32_t set) {
    size_t ns = c->s_len[set];
    if (ns > m->cap_stk) {
        uint32_t *o = realloc(m->stk_off, ns * sizeof *o),
                 *l = o ? realloc(m->stk_len, ns * sizeof *l) : NULL;
        if (o) m->stk_off = o;
        if (l) m->stk_len = l;
        if (!o || !l) return false;
        m->cap_stk = ns;
    }
    m->n_pos = 0;
    for (size_t i = 0; i < ns; i++) {
        uint32_t f = c->s_pool.a[c->s_off[set] + i];
        m->stk_off[i] = (uint32_t)m->n_pos;
        for (uint32_t x = f; x != FR_EMPTY; x = c->fpar[x]) {
            if (m->n_pos == m->cap_pos) {
                size_t cap = m->cap_pos ? m->cap_pos * 2 : 64;
                uint32_t *p = realloc(m->pos, cap * sizeof *p);
                if (!p) return false;
                m->pos = p;
                m->cap_pos = cap;
            }
            m->pos[m->n_pos++] = c->fpos[x];
        }
        m->stk_len[i] = (uint32_t)(m->n_pos - m->stk_off[i]);
    }
    m->n_stk = ns;
    m->set = set;
    m->epoch = c->epoch;
    m->synced = true;
    return true;
}

/* The matcher's state as a set of the current cache (mutex held). */
static bool sync_state(grok_matcher *m, grok_gcache *c) {
    if (m->synced && m->epoch == c->epoch) return true;
    const grok_grammar *g = m->g;
    uint32_t *tops = malloc((m->n_stk ? m->n_stk : 1) * sizeof *tops);
    if (!tops) return false;
    for (size_t i = 0; i < m->n_stk; i++) {
        uint32_t f = FR_EMPTY;
        for (size_t j = m->stk_len[i]; j-- > 0;) f = frame(c, m->pos[m->stk_off[i] + j], f);
        tops[i] = f;
    }
    size_t n = sort_unique(tops, m->n_stk);
    m->set = set_of(g, c, tops, n);
    free(tops);
    m->epoch = c->epoch;
    m->synced = !c->oom;
    return m->synced;
}

grok_matcher *grok_matcher_create(grok_grammar *g) {
    if (!g) return NULL;
    grok_matcher *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->g = grok_grammar_retain(g);
    pthread_mutex_lock(&g->mu);
    grok_gcache *c = cache(g);
    bool ok = false;
    if (c) {
        /* the start: every alternative of the root rule entered */
        uint32_t n = 0, off = 0;
        vec32 tops = {0};
        ok = true;
        for (uint32_t a = g->rule_off[g->root]; ok;) {
            uint32_t f = grok_ge_is_end(&g->el[a]) ? FR_EMPTY : frame(c, a, FR_EMPTY);
            off = expand(g, c, f, &n);
            for (uint32_t j = 0; ok && j < n; j++) ok = v32_push(&tops, c->exp_pool.a[off + j]);
            while (!grok_ge_is_end(&g->el[a])) a++;
            if (g->el[a].type == GE_END) break;
            a++;
        }
        ok = ok && !c->oom;
        if (ok) {
            size_t k = sort_unique(tops.a, tops.n);
            uint32_t set = set_of(g, c, tops.a, k);
            ok = !c->oom && export_state(m, c, set);
        }
        free(tops.a);
    }
    pthread_mutex_unlock(&g->mu);
    if (!ok) {
        grok_matcher_free(m);
        return NULL;
    }
    return m;
}

void grok_matcher_free(grok_matcher *m) {
    if (!m) return;
    grok_grammar_free(m->g);
    free(m->pos);
    free(m->stk_off);
    free(m->stk_len);
    free(m);
}

grok_matcher *grok_matcher_clone(const grok_matcher *m) {
    if (!m) return NULL;
    grok_matcher *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    *n = *m;
    n->pos = malloc((m->cap_pos ? m->cap_pos : 1) * sizeof *n->pos);
    n->stk_off = malloc((m->cap_stk ? m->cap_stk : 1) * sizeof *n->stk_off);
    n->stk_len = malloc((m->cap_stk ? m->cap_stk : 1) * sizeof *n->stk_len);
    if (!n->pos || !n->stk_off || !n->stk_len) {
        free(n->pos);
        free(n->stk_off);
        free(n->stk_len);
        free(n);
        return NULL;
    }
    if (m->n_pos) memcpy(n->pos, m->pos, m->n_pos * sizeof *n->pos);
    if (m->n_stk) {
        memcpy(n->stk_off, m->stk_off, m->n_stk * sizeof *n->stk_off);
        memcpy(n->stk_len, m->stk_len, m->n_stk * sizeof *n->stk_len);
    }
    grok_grammar_retain(n->g);
    return n;
}

/* Is some stack empty (mutex not needed: the matcher's own arrays)? */
static bool has_empty(const grok_matcher *m) {
    for (size_t i = 0; i < m->n_stk; i++)
        if (m->stk_len[i] == 0) return true;
    return false;
}

bool grok_matcher_can_end(const grok_matcher *m) { return m && !m->ended && m->rem == 0 && has_empty(m); }

bool grok_matcher_is_done(const grok_matcher *m) {
    return m && (m->ended || (m->rem == 0 && m->n_stk == 1 && m->stk_len[0] == 0));
}

typedef struct {
    const grok_grammar_vocab *v;
    uint64_t *mask;
} mask_ctx;

static void emit_mask(void *ctx, uint32_t rank, int verdict) {
    mask_ctx *e = ctx;
    if (verdict == V_ACCEPT) {
        uint32_t id = e->v->sorted[rank];
        e->mask[id >> 6] |= 1ull << (id & 63);
    }
}

static int64_t popcount_mask(const uint64_t *mask, size_t n) {
    int64_t k = 0;
    for (size_t i = 0; i < n; i++) k += __builtin_popcountll(mask[i]);
    return k;
}

int64_t grok_matcher_fill_mask(grok_matcher *m, uint64_t *mask) {
    if (!m || !mask || !m->g->vocab) return -1;
    grok_grammar *g = m->g;
    const grok_grammar_vocab *v = g->vocab;
    memset(mask, 0, v->n_words * sizeof *mask);
    if (m->ended) return 0;
    pthread_mutex_lock(&g->mu);
    grok_gcache *c = cache(g);
    int64_t rc = -1;
    if (!c || !sync_state(m, c)) goto done;
    uint32_t set = m->set;
    uint32_t ns = c->s_len[set];
    mask_ctx mc = {v, mask};
    if (m->rem) { /* inside a character: only its continuation bytes can come */
        wst s = {set, m->cp, -1, m->rem, m->len, false};
        walk(g, c, s, NULL, 0, emit_mask, &mc);
        rc = c->oom ? -1 : popcount_mask(mask, v->n_words);
        goto done;
    }
    bool eos = false;
    /* first what the short stacks decide alone, then the rest against the real stacks */
    for (uint32_t i = 0; i < ns && !c->oom; i++) {
        uint32_t f = c->s_pool.a[c->s_off[set] + i];
        if (f == FR_EMPTY) {
            eos = true;
            continue;
        }
        const grok_gelem *e = &g->el[c->fpos[f]];
        if (e->type == GE_TOKEN) {
            if ((int64_t)e->value < v->n_vocab) mask[e->value >> 6] |= 1ull << (e->value & 63);
            continue;
        }
        if (e->type == GE_TOKEN_NOT) {
            uint64_t keep = 0;
            if ((int64_t)e->value < v->n_vocab) keep = mask[e->value >> 6] & (1ull << (e->value & 63));
            for (size_t w = 0; w < v->n_words; w++) mask[w] |= v->textual[w];
            if ((int64_t)e->value < v->n_vocab)
                mask[e->value >> 6] = (mask[e->value >> 6] & ~(1ull << (e->value & 63))) | keep;
            continue;
        }
        entry *en = entry_of(g, c, key_of(c, f));
        if (!en) break;
        for (size_t w = 0; w < v->n_words; w++) mask[w] |= en->acc[w];
    }
    vec32 todo = {0};
    for (uint32_t i = 0; i < ns && !c->oom; i++) {
        uint32_t f = c->s_pool.a[c->s_off[set] + i];
        if (f == FR_EMPTY || grok_ge_is_token(&g->el[c->fpos[f]])) continue;
        uint32_t key = key_of(c, f);
        if (key == f) continue; /* the whole stack: nothing was uncertain */
        entry *en = entry_of(g, c, key);
        if (!en) break;
        todo.n = 0;
        for (uint32_t j = 0; j < en->n_unc; j++) {
            uint32_t id = v->sorted[en->unc[j]];
            if (!((mask[id >> 6] >> (id & 63)) & 1) && !v32_push(&todo, en->unc[j])) c->oom = true;
        }
        if (todo.n && !c->oom) {
            uint32_t one = set_of(g, c, &f, 1);
            wst s = {one, 0, -1, 0, 0, false};
            walk(g, c, s, todo.a, todo.n, emit_mask, &mc);
        }
    }
    free(todo.a);
    if (eos && v->eos >= 0) mask[v->eos >> 6] |= 1ull << (v->eos & 63);
    rc = c->oom ? -1 : popcount_mask(mask, v->n_words);
done:
    pthread_mutex_unlock(&g->mu);
    if (rc < 0) memset(mask, 0, v->n_words * sizeof *mask);
    return rc;
}

/* Consumes bytes from the state (mutex held); false when they do not fit. */
static bool take_bytes(grok_matcher *m, grok_gcache *c, const uint8_t *b, size_t n, wst *out) {
    wst s = {m->set, m->cp, -1, m->rem, m->len, false};
    for (size_t i = 0; i < n; i++) {
        int r = wstep(m->g, c, &s, b[i]);
        if (!(r & (i + 1 == n ? W_END_OK : W_LIVE)) || c->oom) return false;
    }
    *out = s;
    return true;
}

static int commit(grok_matcher *m, grok_gcache *c, const wst *s) {
    if (!export_state(m, c, s->set)) return -1;
    m->cp = s->cp;
    m->rem = s->rem;
    m->len = s->len;
    return 0;
}

int grok_matcher_accept_token(grok_matcher *m, int32_t id) {
    if (!m || m->ended) return -1;
    grok_grammar *g = m->g;
    const grok_grammar_vocab *v = g->vocab;
    if (!v || id < 0 || id >= v->n_vocab) return -1;
    pthread_mutex_lock(&g->mu);
    grok_gcache *c = cache(g);
    int rc = -1;
    if (!c || !sync_state(m, c)) goto done;
    uint32_t set = m->set;
    /* stacks whose top is a whole-token element that takes id */
    vec32 tok = {0};
    bool eos_end = false, ok = true;
    for (uint32_t i = 0; ok && i < c->s_len[set] && m->rem == 0; i++) {
        uint32_t f = c->s_pool.a[c->s_off[set] + i];
        if (f == FR_EMPTY) {
            eos_end = id == v->eos;
            continue;
        }
        const grok_gelem *e = &g->el[c->fpos[f]];
        bool takes = (e->type == GE_TOKEN && e->value == (uint32_t)id) ||
                     (e->type == GE_TOKEN_NOT && e->value != (uint32_t)id && v->len[id] > 0 && id != v->eos);
        if (!takes) continue;
        uint32_t n, off = expand(g, c, after(g, c, f), &n);
        for (uint32_t j = 0; ok && j < n; j++) ok = v32_push(&tok, c->exp_pool.a[off + j]);
    }
    wst s = {0, 0, -1, 0, 0, false};
    bool by_text = ok && v->len[id] > 0 && take_bytes(m, c, v->bytes + v->off[id], v->len[id], &s);
    if (!ok || c->oom) goto done_free;
    if (tok.n && (!by_text || s.rem == 0)) {
        /* join the stacks the token moved as a whole with those its text moved */
        if (by_text)
            for (uint32_t j = 0; ok && j < c->s_len[s.set]; j++)
                ok = v32_push(&tok, c->s_pool.a[c->s_off[s.set] + j]);
        size_t k = sort_unique(tok.a, tok.n);
        s = (wst){set_of(g, c, tok.a, k), 0, -1, 0, 0, false};
        by_text = ok && !c->oom;
    }
    if (by_text) {
        rc = commit(m, c, &s);
    } else if (eos_end) {
        m->ended = true;
        rc = 0;
    }
done_free:
    free(tok.a);
done:
    pthread_mutex_unlock(&g->mu);
    return rc;
}

int grok_matcher_accept_text(grok_matcher *m, const char *text, size_t len) {
    if (!m || m->ended) return -1;
    if (len == 0) return 0;
    grok_grammar *g = m->g;
    pthread_mutex_lock(&g->mu);
    grok_gcache *c = cache(g);
    int rc = -1;
    wst s = {0, 0, -1, 0, 0, false};
    if (c && sync_state(m, c) && take_bytes(m, c, (const uint8_t *)text, len, &s)) rc = commit(m, c, &s);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* The longest prefix of text the grammar can read, for messages. */
size_t grok_matcher_prefix_len(grok_matcher *m, const char *text, size_t len) {
    if (!m || m->ended) return 0;
    grok_grammar *g = m->g;
    pthread_mutex_lock(&g->mu);
    grok_gcache *c = cache(g);
    size_t i = 0;
    if (c && sync_state(m, c)) {
        wst s = {m->set, m->cp, -1, m->rem, m->len, false};
        for (; i < len; i++) {
            wst t = s;
            if (!(wstep(g, c, &t, (uint8_t)text[i]) & W_END_OK) || c->oom) break;
            s = t;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return i;
}

bool grok_grammar_accepts(grok_grammar *g, const char *text, size_t len, size_t *fail_at) {
    grok_matcher *m = grok_matcher_create(g);
    if (!m) {
        if (fail_at) *fail_at = 0;
        return false;
    }
    bool ok = grok_matcher_accept_text(m, text, len) == 0 && grok_matcher_can_end(m);
    if (!ok && fail_at) {
        grok_matcher *n = grok_matcher_create(g);
        *fail_at = n ? grok_matcher_prefix_len(n, text, len) : 0;
        grok_matcher_free(n);
    }
    grok_matcher_free(m);
    return ok;
}

/* ---- the vocabulary ---- */

typedef struct {
    const uint8_t *b;
    uint32_t len, id;
} tok_key;

static int cmp_tok(const void *a, const void *b) {
    const tok_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->b, y->b, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

void grok_grammar_vocab_free(grok_grammar_vocab *v) {
    if (!v) return;
    free(v->bytes);
    free(v->off);
    free(v->len);
    free(v->sorted);
    free(v->lcp);
    free(v->end1);
    free(v->end2);
    free(v->sbytes);
    free(v->soff);
    free(v->slen);
    free(v->rank);
    free(v->textual);
    free(v);
}

grok_grammar_vocab *grok_grammar_vocab_create(const grok_tokenizer *t, char *err, size_t err_size) {
    int64_t n = t ? grok_tokenizer_n_vocab(t) : 0;
    if (n <= 0 || n > INT32_MAX) {
        snprintf(err, err_size, "the grammar needs a vocabulary");
        return NULL;
    }
    grok_grammar_vocab *v = calloc(1, sizeof *v);
    tok_key *keys = malloc((size_t)n * sizeof *keys);
    char buf[GROK_DETOK_MAX_PIECE * 4 + 16];
    if (!v || !keys) goto oom;
    v->tok = t;
    v->n_vocab = n;
    v->eos = grok_tokenizer_eos(t);
    v->n_words = ((size_t)n + 63) / 64;
    v->off = malloc((size_t)n * sizeof *v->off);
    v->len = malloc((size_t)n * sizeof *v->len);
    v->rank = malloc((size_t)n * sizeof *v->rank);
    v->textual = calloc(v->n_words, sizeof *v->textual);
    if (!v->off || !v->len || !v->rank || !v->textual) goto oom;
    size_t total = 0, cap = 0;
    for (int64_t id = 0; id < n; id++) {
        size_t k = grok_token_text(t, (int32_t)id, buf, sizeof buf);
        if (memchr(buf, 0, k)) k = 0; /* a NUL byte ends the text, as in llama.cpp: never allowed */
        if (total + k > cap) {
            size_t c = cap ? cap * 2 : (size_t)n * 8;
            while (c < total + k) c *= 2;
            uint8_t *b = realloc(v->bytes, c);
            if (!b) goto oom;
            v->bytes = b;
            cap = c;
        }
        if (k) memcpy(v->bytes + total, buf, k);
        v->off[id] = (uint32_t)total;
        v->len[id] = (uint32_t)k;
        total += k;
        if (k > v->max_len) v->max_len = (uint32_t)k;
    }
    size_t m = 0;
    for (int64_t id = 0; id < n; id++) {
        v->rank[id] = UINT32_MAX;
        if (v->len[id] == 0 || id == v->eos) continue;
        keys[m++] = (tok_key){v->bytes + v->off[id], v->len[id], (uint32_t)id};
    }
    qsort(keys, m, sizeof *keys, cmp_tok);
    v->sorted = malloc((m ? m : 1) * sizeof *v->sorted);
    v->lcp = malloc((m ? m : 1) * sizeof *v->lcp);
    if (!v->sorted || !v->lcp) goto oom;
    for (size_t i = 0; i < m; i++) {
        uint32_t id = keys[i].id;
        v->sorted[i] = id;
        v->rank[id] = (uint32_t)i;
        v->textual[id >> 6] |= 1ull << (id & 63);
        v->lcp[i] = i ? (uint32_t)common_prefix(keys[i - 1].b, keys[i - 1].len, keys[i].b, keys[i].len) : 0;
    }
    v->n_sorted = m;
    v->sbytes = malloc(total ? total : 1);
    v->soff = malloc((m ? m : 1) * sizeof *v->soff);
    v->slen = malloc((m ? m : 1) * sizeof *v->slen);
    if (!v->sbytes || !v->soff || !v->slen) goto oom;
    for (size_t i = 0, at = 0; i < m; i++) {
        memcpy(v->sbytes + at, keys[i].b, keys[i].len);
        v->soff[i] = (uint32_t)at;
        v->slen[i] = keys[i].len;
        at += keys[i].len;
    }
    v->end1 = malloc((m ? m : 1) * sizeof *v->end1);
    v->end2 = malloc((m ? m : 1) * sizeof *v->end2);
    if (!v->end1 || !v->end2) goto oom;
    for (size_t i = m; i-- > 0;) {
        bool more = i + 1 < m;
        v->end1[i] = more && v->lcp[i + 1] >= 1 ? v->end1[i + 1] : (uint32_t)i + 1;
        v->end2[i] = more && v->lcp[i + 1] >= 2 ? v->end2[i + 1] : (uint32_t)i + 1;
    }
    free(keys);
    return v;
oom:
    snprintf(err, err_size, "out of memory building the grammar's vocabulary index");
    free(keys);
    grok_grammar_vocab_free(v);
    return NULL;
}

int64_t grok_grammar_vocab_n_vocab(const grok_grammar_vocab *v) { return v ? v->n_vocab : 0; }

int64_t grok_grammar_vocab_find(const grok_grammar_vocab *v, const char *s, size_t n) {
    size_t lo = 0, hi = v->n_sorted;
    tok_key want = {(const uint8_t *)s, (uint32_t)n, 0};
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t id = v->sorted[mid];
        tok_key k = {v->bytes + v->off[id], v->len[id], 0};
        int c = cmp_tok(&k, &want);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < v->n_sorted) {
        uint32_t id = v->sorted[lo];
        if (v->len[id] == n && !memcmp(v->bytes + v->off[id], s, n)) return id;
    }
    for (int64_t id = 0; id < v->n_vocab; id++) { /* control pieces have no text: by their piece */
        int ty = grok_tokenizer_type(v->tok, (int32_t)id);
        if (ty != GROK_TOKEN_CONTROL && ty != GROK_TOKEN_USER_DEFINED) continue;
        size_t pl;
        const char *p = grok_tokenizer_piece(v->tok, (int32_t)id, &pl);
        if (p && pl == n && !memcmp(p, s, n)) return id;
    }
    return -1;
}
