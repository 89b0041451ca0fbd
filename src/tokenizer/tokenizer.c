/*
 * tokenizer.c - SentencePiece BPE encoding and decoding, written to give the
 * same ids and text as sentencepiece 0.1.97 (the reference Grok-1 was
 * released with). The steps mirror SentencePiece's own: the identity
 * normalizer (dummy-prefix space, spaces to U+2581, each invalid UTF-8 byte
 * to U+FFFD), a split into characters where user-defined pieces are kept
 * whole and frozen, greedy merging of the best-scoring adjacent pair
 * (leftmost on ties) through a binary heap, and byte fallback for symbols
 * that are not in the vocabulary. Also the vocabulary tables, the
 * placeholder vocabulary and the streaming decoder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"
#include "util/utf8.h"

#define SPACE_SYMBOL "\xe2\x96\x81" /* U+2581, what SentencePiece writes for ' ' */
#define REPLACEMENT "\xef\xbf\xbd"  /* U+FFFD */

/* ---------------------------------------------------------------------
 * Vocabulary tables
 * --------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33; /* murmur's finalizer: every bit of the input reaches the low bits */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

grok_tokenizer *grok_tok_alloc(int64_t n) {
    if (n < 0 || (uint64_t)n > (SIZE_MAX / 8) / sizeof(char *)) return NULL;
    grok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    size_t un = (size_t)n ? (size_t)n : 1;
    t->n = n;
    t->piece = calloc(un, sizeof *t->piece);
    t->len = calloc(un, sizeof *t->len);
    t->score = calloc(un, sizeof *t->score);
    t->type = calloc(un, sizeof *t->type);
    t->unk = t->bos = t->eos = t->pad = -1;
    t->add_dummy_prefix = true;
    t->escape_whitespaces = true;
    if (!t->piece || !t->len || !t->score || !t->type) {
        grok_tokenizer_free(t);
        return NULL;
    }
    return t;
}

int grok_tok_set_piece(grok_tokenizer *t, int64_t i, const char *s, size_t len, float score, int32_t type) {
    if (i < 0 || i >= t->n || len > UINT32_MAX - 1) return -1;
    char *p = malloc(len + 1);
    if (!p) return -1;
    memcpy(p, s, len);
    p[len] = 0;
    free(t->piece[i]);
    t->piece[i] = p;
    t->len[i] = (uint32_t)len;
    t->score[i] = score;
    t->type[i] = type;
    return 0;
}

int grok_tok_set_unk_surface(grok_tokenizer *t, const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (!p) return -1;
    memcpy(p, s, len);
    p[len] = 0;
    free(t->unk_surface);
    t->unk_surface = p;
    return 0;
}

static int32_t table_find(const grok_tokenizer *t, const struct tok_slot *table, const char *s, size_t len) {
    uint64_t h = hash_bytes(s, len), i = h & t->h_mask;
    uint32_t tag = (uint32_t)(h >> 32);
    for (;;) {
        int32_t id = table[i].id;
        if (id < 0) return -1;
        if (table[i].tag == tag && t->len[id] == len && memcmp(t->piece[id], s, len) == 0) return id;
        i = (i + 1) & t->h_mask;
    }
}

/* Returns 1 when inserted, 0 when the piece is already there. */
static int table_insert(grok_tokenizer *t, struct tok_slot *table, int32_t id) {
    uint64_t h = hash_bytes(t->piece[id], t->len[id]), i = h & t->h_mask;
    while (table[i].id >= 0) {
        int32_t o = table[i].id;
        if (t->len[o] == t->len[id] && memcmp(t->piece[o], t->piece[id], t->len[id]) == 0) return 0;
        i = (i + 1) & t->h_mask;
    }
    table[i].id = id;
    table[i].tag = (uint32_t)(h >> 32);
    return 1;
}

int32_t grok_tok_piece_to_id(const grok_tokenizer *t, const char *s, size_t len) {
    int32_t id = table_find(t, t->h_reserved, s, len);
    return id >= 0 ? id : table_find(t, t->h_normal, s, len);
}

/* <0xNN> with upper-case hex, as SentencePiece names byte pieces; -1 if
 * the piece is not of that form. */
static int piece_to_byte(const char *p, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    const char *a = strchr(hex, p[3]), *b = strchr(hex, p[4]);
    if (!p[3] || !p[4] || !a || !b) return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

static int cmp_ud(const void *pa, const void *pb, void *ctx);

int grok_tok_finish(grok_tokenizer *t, const char *what, char *err, size_t err_size) {
    if (t->n < 1 || t->n > INT32_MAX) {
        snprintf(err, err_size, "%s: vocabulary size %lld is out of range", what, (long long)t->n);
        return -1;
    }
    uint64_t slots = 16;
    while (slots < (uint64_t)t->n * 4) slots *= 2; /* load <= 1/4: misses end fast */
    t->h_mask = slots - 1;
    t->h_normal = malloc(slots * sizeof *t->h_normal);
    t->h_reserved = malloc(slots * sizeof *t->h_reserved);
    t->ud = malloc((size_t)t->n * sizeof(int32_t));
    if (!t->h_normal || !t->h_reserved || !t->ud) {
        snprintf(err, err_size, "%s: out of memory", what);
        return -1;
    }
    memset(t->h_normal, 0xff, slots * sizeof *t->h_normal);
    memset(t->h_reserved, 0xff, slots * sizeof *t->h_reserved);
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    int64_t n_ud = 0, n_bytes = 0;
    int32_t unk = -1;
    for (int64_t i = 0; i < t->n; i++) {
        int32_t ty = t->type[i];
        if (!t->piece[i] || t->len[i] == 0) {
            snprintf(err, err_size, "%s: piece %lld is empty", what, (long long)i);
            return -1;
        }
        if (ty < GROK_TOKEN_NORMAL || ty > GROK_TOKEN_BYTE) {
            snprintf(err, err_size, "%s: piece %lld has unknown type %d", what, (long long)i, (int)ty);
            return -1;
        }
        bool normal = ty == GROK_TOKEN_NORMAL || ty == GROK_TOKEN_USER_DEFINED || ty == GROK_TOKEN_UNUSED;
        if (!table_insert(t, normal ? t->h_normal : t->h_reserved, (int32_t)i)) {
            snprintf(err, err_size, "%s: piece %lld ('%.40s') is already defined", what, (long long)i,
                     t->piece[i]);
            return -1;
        }
        if (ty == GROK_TOKEN_USER_DEFINED) t->ud[n_ud++] = (int32_t)i;
        if (ty == GROK_TOKEN_UNKNOWN) {
            if (unk >= 0) {
                snprintf(err, err_size, "%s: piece %lld is a second unknown piece", what, (long long)i);
                return -1;
            }
            unk = (int32_t)i;
        }
        if (ty == GROK_TOKEN_BYTE) {
            int b = piece_to_byte(t->piece[i], t->len[i]);
            if (b < 0) {
                snprintf(err, err_size, "%s: byte piece %lld ('%.40s') is not of the form <0xNN>", what,
                         (long long)i, t->piece[i]);
                return -1;
            }
            if (t->byte_id[b] < 0) n_bytes++;
            t->byte_id[b] = (int32_t)i;
        }
    }
    if (unk < 0) {
        snprintf(err, err_size, "%s: the vocabulary has no unknown piece", what);
        return -1;
    }
    if (t->unk >= 0 && t->unk != unk) {
        snprintf(err, err_size, "%s: unknown id %d is not the unknown piece (%d)", what, (int)t->unk,
                 (int)unk);
        return -1;
    }
    t->unk = unk;
    if (t->byte_fallback && n_bytes != 256) {
        snprintf(err, err_size, "%s: byte fallback is on but only %lld of 256 byte pieces exist", what,
                 (long long)n_bytes);
        return -1;
    }
    int32_t *ids[3] = {&t->bos, &t->eos, &t->pad};
    const char *names[3] = {"bos", "eos", "pad"};
    for (int k = 0; k < 3; k++)
        if (*ids[k] >= t->n || *ids[k] < -1) {
            snprintf(err, err_size, "%s: %s id %d is out of range [0, %lld)", what, names[k], (int)*ids[k],
                     (long long)t->n);
            return -1;
        }
    if (!t->unk_surface && grok_tok_set_unk_surface(t, " \xe2\x81\x87 ", 5) < 0) {
        snprintf(err, err_size, "%s: out of memory", what);
        return -1;
    }
    /* Where the encoder may cut the text (see grok_tokenize). */
    t->has_unused = false;
    t->space_cut_safe = true;
    for (int64_t i = 0; i < t->n; i++) {
        if (t->type[i] == GROK_TOKEN_UNUSED) t->has_unused = true;
        const char *p = t->piece[i];
        for (uint32_t j = 1; j + 3 <= t->len[i]; j++)
            if (memcmp(p + j, SPACE_SYMBOL, 3) == 0 && (j < 3 || memcmp(p + j - 3, SPACE_SYMBOL, 3) != 0))
                t->space_cut_safe = false;
    }
    /* Group user-defined pieces by first byte, longest first. */
    qsort_r(t->ud, (size_t)n_ud, sizeof(int32_t), cmp_ud, t);
    int64_t k = 0;
    for (int b = 0; b < 256; b++) {
        t->ud_start[b] = k;
        while (k < n_ud && (unsigned char)t->piece[t->ud[k]][0] == b) k++;
    }
    t->ud_start[256] = n_ud;
    return 0;
}

static int cmp_ud(const void *pa, const void *pb, void *ctx) {
    const grok_tokenizer *t = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    unsigned char fa = (unsigned char)t->piece[a][0], fb = (unsigned char)t->piece[b][0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (t->len[a] != t->len[b]) return t->len[a] > t->len[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

void grok_tokenizer_free(grok_tokenizer *t) {
    if (!t) return;
    if (t->piece)
        for (int64_t i = 0; i < t->n; i++) free(t->piece[i]);
    free(t->piece);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->h_normal);
    free(t->h_reserved);
    free(t->ud);
    free(t->unk_surface);
    free(t);
}

int64_t grok_tokenizer_n_vocab(const grok_tokenizer *t) { return t->n; }

const char *grok_tokenizer_piece(const grok_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->len[id];
    return t->piece[id];
}

float grok_tokenizer_score(const grok_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n ? t->score[id] : 0.0f;
}

int grok_tokenizer_type(const grok_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n ? t->type[id] : 0;
}

int32_t grok_tokenizer_bos(const grok_tokenizer *t) { return t->bos; }
int32_t grok_tokenizer_eos(const grok_tokenizer *t) { return t->eos; }
int32_t grok_tokenizer_unk(const grok_tokenizer *t) { return t->unk; }
int32_t grok_tokenizer_pad(const grok_tokenizer *t) { return t->pad; }
bool grok_tokenizer_add_bos(const grok_tokenizer *t) { return t->add_bos; }
bool grok_tokenizer_add_eos(const grok_tokenizer *t) { return t->add_eos; }
void grok_tokenizer_set_add_bos(grok_tokenizer *t, bool v) { t->add_bos = v; }
void grok_tokenizer_set_add_eos(grok_tokenizer *t, bool v) { t->add_eos = v; }

/* ---------------------------------------------------------------------
 * Placeholder vocabulary
 * --------------------------------------------------------------------- */

grok_tokenizer *grok_tokenizer_placeholder(int64_t n_vocab, char *err, size_t err_size) {
    if (n_vocab < 4 || n_vocab > INT32_MAX) {
        snprintf(err, err_size, "placeholder tokenizer: n_vocab %lld is out of range [4, %d]",
                 (long long)n_vocab, INT32_MAX);
        return NULL;
    }
    grok_tokenizer *t = grok_tok_alloc(n_vocab);
    if (!t) {
        snprintf(err, err_size, "placeholder tokenizer: out of memory");
        return NULL;
    }
    static const char *const special[4] = {"[PAD]", "[BOS]", "[EOS]", "[UNK]"};
    static const int32_t special_type[4] = {GROK_TOKEN_CONTROL, GROK_TOKEN_CONTROL, GROK_TOKEN_CONTROL,
                                            GROK_TOKEN_UNKNOWN};
    int rc = 0;
    int64_t i = 0;
    for (; i < 4; i++) rc |= grok_tok_set_piece(t, i, special[i], strlen(special[i]), 0.0f, special_type[i]);
    for (int b = 0; b < 256 && i < n_vocab; b++, i++) {
        char p[8];
        snprintf(p, sizeof p, "<0x%02X>", b);
        rc |= grok_tok_set_piece(t, i, p, 6, 0.0f, GROK_TOKEN_BYTE);
    }
    /* Then the space symbol and printable ASCII, and after that filler
     * pieces that text never produces (their names cannot be formed from
     * single characters since nothing merges into them). */
    static const char ascii[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                ".,;:!?'\"-()[]{}<>/\\|@#$%^&*_+=~`";
    if (i < n_vocab) rc |= grok_tok_set_piece(t, i++, SPACE_SYMBOL, 3, 0.0f, GROK_TOKEN_NORMAL);
    for (size_t k = 0; ascii[k] && i < n_vocab; k++, i++)
        rc |= grok_tok_set_piece(t, i, &ascii[k], 1, -(float)(k + 1), GROK_TOKEN_NORMAL);
    for (int64_t k = 0; i < n_vocab; k++, i++) {
        char p[32];
        int len = snprintf(p, sizeof p, "[unused%lld]", (long long)k);
        rc |= grok_tok_set_piece(t, i, p, (size_t)len, -1e9f, GROK_TOKEN_UNUSED);
    }
    t->pad = 0;
    t->bos = 1;
    t->eos = 2;
    t->unk = 3;
    t->byte_fallback = n_vocab >= 260;
    /* The dummy prefix only where U+2581 is a piece; otherwise it would
     * come back from byte pieces as U+2581 instead of vanishing. */
    t->add_dummy_prefix = n_vocab >= 261;
    if (rc != 0) {
        snprintf(err, err_size, "placeholder tokenizer: out of memory");
        grok_tokenizer_free(t);
        return NULL;
    }
    if (grok_tok_finish(t, "placeholder tokenizer", err, err_size) < 0) {
        grok_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* ---------------------------------------------------------------------
 * UTF-8, with SentencePiece's rules: overlong forms, surrogates and code
 * points past U+10FFFF are invalid, and an invalid sequence counts as one
 * byte (grok_utf8_seq of util/utf8.c is exactly that rule).
 * --------------------------------------------------------------------- */

/* SentencePiece's OneCharLen: the length a lead byte announces. */
static size_t one_char_len(unsigned char c) {
    static const unsigned char tbl[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return tbl[c >> 4];
}

/* Longest user-defined piece that prefixes s, or 0. */
static size_t ud_match(const grok_tokenizer *t, const char *s, size_t len) {
    unsigned char b = (unsigned char)s[0];
    for (int64_t k = t->ud_start[b]; k < t->ud_start[b + 1]; k++) {
        int32_t id = t->ud[k];
        if (t->len[id] <= len && memcmp(t->piece[id], s, t->len[id]) == 0) return t->len[id];
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * Normalizer (identity rules; no character map)
 * --------------------------------------------------------------------- */

/* One unit of input: a user-defined piece, a valid character, or one
 * invalid byte that stands for U+FFFD. Returns the bytes consumed and
 * sets out and out_len to the normalized text of the unit. */
static size_t norm_unit(const grok_tokenizer *t, const char *s, size_t len, const char **out,
                        size_t *out_len) {
    size_t m = ud_match(t, s, len);
    if (m > 0) {
        *out = s;
        *out_len = m;
        return m;
    }
    size_t v = grok_utf8_seq((const unsigned char *)s, len);
    if (v == 0) {
        *out = REPLACEMENT;
        *out_len = 3;
        return 1;
    }
    *out = s;
    *out_len = v;
    return v;
}

static void put_unit(const grok_tokenizer *t, char *dst, size_t *pos, const char *u, size_t n) {
    for (size_t k = 0; k < n; k++) {
        if (u[k] == ' ' && t->escape_whitespaces) {
            memcpy(dst + *pos, SPACE_SYMBOL, 3);
            *pos += 3;
        } else {
            dst[(*pos)++] = u[k];
        }
    }
}

/* Writes the normalized text into a malloc'd buffer (NULL: no memory). */
static char *normalize(const grok_tokenizer *t, const char *text, size_t len, size_t *out_len) {
    *out_len = 0;
    if (len > (SIZE_MAX - 16) / 3) return NULL;
    char *dst = malloc(len * 3 + 8);
    if (!dst) return NULL;
    size_t pos = 0, i = 0;
    const char *u;
    size_t un;
    if (t->remove_extra_whitespaces) {
        while (i < len) {
            size_t c = norm_unit(t, text + i, len - i, &u, &un);
            if (!(un == 1 && u[0] == ' ')) break;
            i += c;
        }
    }
    if (i == len) return dst;
    if (!t->treat_whitespace_as_suffix && t->add_dummy_prefix) put_unit(t, dst, &pos, " ", 1);
    bool prev_space = t->remove_extra_whitespaces;
    while (i < len) {
        size_t c = norm_unit(t, text + i, len - i, &u, &un);
        while (prev_space && un > 0 && u[0] == ' ') {
            u++;
            un--;
        }
        if (un > 0) {
            put_unit(t, dst, &pos, u, un);
            prev_space = u[un - 1] == ' ';
        }
        i += c;
        if (!t->remove_extra_whitespaces) prev_space = false;
    }
    if (t->remove_extra_whitespaces) {
        const char *sp = t->escape_whitespaces ? SPACE_SYMBOL : " ";
        size_t sl = t->escape_whitespaces ? 3 : 1;
        while (pos >= sl && memcmp(dst + pos - sl, sp, sl) == 0) pos -= sl;
    }
    if (t->treat_whitespace_as_suffix && t->add_dummy_prefix) put_unit(t, dst, &pos, " ", 1);
    *out_len = pos;
    return dst;
}

/* ---------------------------------------------------------------------
 * BPE
 * --------------------------------------------------------------------- */

typedef struct {
    size_t start; /* offset in the normalized text */
    size_t len;   /* 0 once merged into its left neighbour */
    int64_t prev, next;
    bool freeze;
} symbol;

typedef struct {
    float score;
    int64_t left, right;
    size_t size;
} pair;

typedef struct {
    pair *a;
    size_t n, cap;
} heap;

/* a comes out before b: higher score, then the leftmost. */
static bool pair_before(const pair *a, const pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(heap *h, pair p) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 256;
        pair *na = realloc(h->a, nc * sizeof *na);
        if (!na) return false;
        h->a = na;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &h->a[parent])) break;
        h->a[i] = h->a[parent];
        i = parent;
    }
    h->a[i] = p;
    return true;
}

static pair heap_pop(heap *h) {
    pair top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pair_before(&h->a[c + 1], &h->a[c])) c++;
        if (!pair_before(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0) h->a[i] = last;
    return top;
}

/* SentencePiece remembers, for each UNUSED piece that could be formed,
 * the latest pair that formed it (keyed by the piece's text), so that an
 * unused piece in the result is split back into its parts. */
typedef struct {
    size_t start, len, left_len; /* key: norm[start, start+len) */
} rev_entry;

typedef struct {
    rev_entry *e;
    bool *used;
    size_t mask, count;
} rev_map;

static bool rev_put(rev_map *m, const char *norm, size_t start, size_t len, size_t left_len) {
    if (m->count * 2 >= m->mask + 1 || !m->e) {
        size_t nslots = m->e ? (m->mask + 1) * 2 : 64;
        rev_entry *ne = malloc(nslots * sizeof *ne);
        bool *nu = calloc(nslots, sizeof *nu);
        if (!ne || !nu) {
            free(ne);
            free(nu);
            return false;
        }
        for (size_t k = 0; m->e && k <= m->mask; k++) {
            if (!m->used[k]) continue;
            uint64_t j = hash_bytes(norm + m->e[k].start, m->e[k].len) & (nslots - 1);
            while (nu[j]) j = (j + 1) & (nslots - 1);
            ne[j] = m->e[k];
            nu[j] = true;
        }
        free(m->e);
        free(m->used);
        m->e = ne;
        m->used = nu;
        m->mask = nslots - 1;
    }
    uint64_t j = hash_bytes(norm + start, len) & m->mask;
    while (m->used[j]) {
        if (m->e[j].len == len && memcmp(norm + m->e[j].start, norm + start, len) == 0) break;
        j = (j + 1) & m->mask;
    }
    if (!m->used[j]) m->count++;
    m->used[j] = true;
    m->e[j] = (rev_entry){start, len, left_len};
    return true;
}

static const rev_entry *rev_get(const rev_map *m, const char *norm, const char *s, size_t len) {
    if (!m->e) return NULL;
    uint64_t j = hash_bytes(s, len) & m->mask;
    while (m->used[j]) {
        if (m->e[j].len == len && memcmp(norm + m->e[j].start, s, len) == 0) return &m->e[j];
        j = (j + 1) & m->mask;
    }
    return NULL;
}

typedef struct {
    int32_t *a;
    size_t n, cap;
    bool prev_unk;
    bool oom;
} id_list;

static void ids_push(id_list *l, int32_t id) {
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        int32_t *na = realloc(l->a, nc * sizeof *na);
        if (!na) {
            l->oom = true;
            return;
        }
        l->a = na;
        l->cap = nc;
    }
    l->a[l->n++] = id;
}

/* One final piece: what SentencePieceProcessor does with the model's
 * output (control ids kept, unknowns to bytes or merged into one unk). */
static void emit_piece(const grok_tokenizer *t, id_list *out, const char *w, size_t len, int32_t id) {
    if (id < 0) id = t->unk;
    bool is_unk = t->type[id] == GROK_TOKEN_UNKNOWN;
    if (t->type[id] == GROK_TOKEN_CONTROL) {
        ids_push(out, id);
    } else if (is_unk && t->byte_fallback) {
        for (size_t k = 0; k < len; k++) {
            int32_t b = t->byte_id[(unsigned char)w[k]];
            ids_push(out, b >= 0 ? b : t->unk);
        }
    } else if (!(is_unk && out->prev_unk)) {
        ids_push(out, id);
    }
    out->prev_unk = is_unk;
}

static void resegment(const grok_tokenizer *t, const rev_map *rev, const char *norm, id_list *out,
                      const char *w, size_t len) {
    int32_t id = grok_tok_piece_to_id(t, w, len);
    if (id >= 0 && t->type[id] == GROK_TOKEN_UNUSED) {
        const rev_entry *e = rev_get(rev, norm, w, len);
        if (e && e->left_len > 0 && e->left_len < len) {
            resegment(t, rev, norm, out, w, e->left_len);
            resegment(t, rev, norm, out, w + e->left_len, len - e->left_len);
            return;
        }
    }
    emit_piece(t, out, w, len, id);
}

typedef struct {
    const grok_tokenizer *t;
    const char *norm;
    symbol *sym;
    heap h;
    rev_map rev;
    bool oom;
} bpe_state;

static void maybe_add_pair(bpe_state *st, int64_t left, int64_t right) {
    if (left < 0 || right < 0) return;
    symbol *l = &st->sym[left], *r = &st->sym[right];
    if (l->freeze || r->freeze) return;
    size_t size = l->len + r->len;
    int32_t id = table_find(st->t, st->t->h_normal, st->norm + l->start, size);
    if (id < 0) return;
    pair p = {st->t->score[id], left, right, size};
    if (!heap_push(&st->h, p)) st->oom = true;
    if (st->t->type[id] == GROK_TOKEN_UNUSED && !rev_put(&st->rev, st->norm, l->start, size, l->len))
        st->oom = true;
}

/* Merges the symbols of one chunk and emits their ids. */
static void bpe_chunk(bpe_state *st, int64_t ns, id_list *out) {
    symbol *sym = st->sym;
    st->h.n = 0;
    for (int64_t i = 1; i < ns; i++) maybe_add_pair(st, i - 1, i);
    while (st->h.n > 0 && !st->oom) {
        pair top = heap_pop(&st->h);
        symbol *l = &sym[top.left], *r = &sym[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size) continue;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = top.left;
        r->len = 0;
        maybe_add_pair(st, l->prev, top.left);
        maybe_add_pair(st, top.left, l->next);
    }
    if (st->oom) return;
    for (int64_t i = 0; i != -1; i = sym[i].next)
        resegment(st->t, &st->rev, st->norm, out, st->norm + sym[i].start, sym[i].len);
}

/* Symbols at least this many go into one chunk before we look for a cut. */
#define CHUNK_MIN 64

int32_t *grok_tokenize(const grok_tokenizer *t, const char *text, size_t len, bool add_special, size_t *n) {
    *n = 0;
    id_list out = {0};
    if (add_special && t->add_bos && t->bos >= 0) ids_push(&out, t->bos);
    size_t nlen = 0;
    char *norm = len ? normalize(t, text, len, &nlen) : NULL;
    if (len && !norm) return NULL;
    bpe_state st = {.t = t, .norm = norm};
    int64_t cap = 0, ns = 0;
    /* The text is cut into chunks where no merge can cross (beside a
     * user-defined piece, which never merges, or before a U+2581 that
     * follows another character when no piece has U+2581 after another
     * character), so the working set stays in cache and the result is
     * the same as merging the whole text at once. */
    bool cuts = !t->has_unused;
    bool prev_space = false;
    for (size_t i = 0; i < nlen;) {
        size_t m = ud_match(t, norm + i, nlen - i);
        bool freeze = m > 0;
        if (!freeze) {
            m = one_char_len((unsigned char)norm[i]);
            if (m > nlen - i) m = nlen - i;
        }
        bool space = m == 3 && memcmp(norm + i, SPACE_SYMBOL, 3) == 0;
        if (cuts && ns >= CHUNK_MIN &&
            (freeze || st.sym[ns - 1].freeze || (t->space_cut_safe && space && !prev_space))) {
            st.sym[ns - 1].next = -1;
            bpe_chunk(&st, ns, &out);
            if (st.oom) goto fail;
            ns = 0;
        }
        if (ns == cap) {
            int64_t nc = cap ? cap * 2 : 256;
            symbol *nsym = realloc(st.sym, (size_t)nc * sizeof *nsym);
            if (!nsym) goto fail;
            st.sym = nsym;
            cap = nc;
        }
        st.sym[ns] = (symbol){i, m, ns - 1, ns + 1, freeze};
        ns++;
        i += m;
        prev_space = space;
    }
    if (ns > 0) {
        st.sym[ns - 1].next = -1;
        bpe_chunk(&st, ns, &out);
        if (st.oom) goto fail;
    }
    if (add_special && t->add_eos && t->eos >= 0) ids_push(&out, t->eos);
    if (out.oom) goto fail;
    free(st.sym);
    free(st.h.a);
    free(st.rev.e);
    free(st.rev.used);
    free(norm);
    if (!out.a) out.a = malloc(sizeof(int32_t));
    *n = out.n;
    return out.a;
fail:
    free(st.sym);
    free(st.h.a);
    free(st.rev.e);
    free(st.rev.used);
    free(norm);
    free(out.a);
    return NULL;
}

/* ---------------------------------------------------------------------
 * Decoding
 * --------------------------------------------------------------------- */

typedef struct {
    char *a;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom || n == 0) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + n + 1) nc *= 2;
        char *na = realloc(b->a, nc);
        if (!na) {
            b->oom = true;
            return;
        }
        b->a = na;
        b->cap = nc;
    }
    memcpy(b->a + b->n, s, n);
    b->n += n;
}

/* Decodes a run of bytes from byte pieces: whole characters as they are,
 * every byte of an invalid sequence as U+FFFD. */
static void put_bytes(sbuf *b, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t v = grok_utf8_seq(s + i, n - i);
        if (v == 0) {
            sb_put(b, REPLACEMENT, 3);
            i++;
        } else {
            sb_put(b, (const char *)s + i, v);
            i += v;
        }
    }
}

/* The text of a non-byte piece. *at_start: no text yet and no dummy
 * prefix consumed (SentencePiece's is_bos_ws); updated. */
static void put_piece(const grok_tokenizer *t, sbuf *b, int32_t id, bool *at_start) {
    int ty = t->type[id];
    if (ty == GROK_TOKEN_CONTROL) return;
    size_t before = b->n;
    if (ty == GROK_TOKEN_UNKNOWN) {
        sb_put(b, t->unk_surface, strlen(t->unk_surface));
        if (b->n > before) *at_start = false;
        return;
    }
    const char *p = t->piece[id];
    size_t len = t->len[id];
    bool consumed = false;
    if (*at_start && (t->add_dummy_prefix || t->remove_extra_whitespaces) && len >= 3 &&
        memcmp(p, SPACE_SYMBOL, 3) == 0) {
        p += 3;
        len -= 3;
        consumed = !t->remove_extra_whitespaces;
    }
    size_t run = 0;
    for (size_t k = 0; k < len;) {
        if (k + 3 <= len && memcmp(p + k, SPACE_SYMBOL, 3) == 0) {
            sb_put(b, p + run, k - run);
            sb_put(b, " ", 1);
            k += 3;
            run = k;
        } else {
            k++;
        }
    }
    sb_put(b, p + run, len - run);
    if (consumed || b->n > before) *at_start = false;
}

size_t grok_token_text(const grok_tokenizer *t, int32_t id, char *out, size_t cap) {
    if (!t || id < 0 || id >= t->n) return 0;
    if (t->type[id] == GROK_TOKEN_BYTE) {
        if (cap) out[0] = (char)piece_to_byte(t->piece[id], t->len[id]);
        return cap ? 1 : 0;
    }
    sbuf b = {0};
    bool at_start = false; /* in the middle of a text: a leading space stays */
    put_piece(t, &b, id, &at_start);
    size_t n = b.oom ? 0 : b.n < cap ? b.n : cap;
    if (n) memcpy(out, b.a, n);
    free(b.a);
    return n;
}

char *grok_detokenize(const grok_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    sbuf b = {0};
    bool at_start = true;
    unsigned char *bytes = NULL;
    size_t nb = 0;
    if (n > 0) {
        bytes = malloc(n);
        if (!bytes) return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n) continue; /* not a piece: nothing to show */
        if (t->type[id] == GROK_TOKEN_BYTE) {
            bytes[nb++] = (unsigned char)piece_to_byte(t->piece[id], t->len[id]);
            continue;
        }
        if (nb > 0) {
            put_bytes(&b, bytes, nb);
            nb = 0;
            at_start = false;
        }
        put_piece(t, &b, id, &at_start);
    }
    put_bytes(&b, bytes, nb);
    free(bytes);
    sb_put(&b, "", 0);
    if (!b.oom && !b.a) b.a = malloc(1);
    if (b.oom || !b.a) {
        free(b.a);
        return NULL;
    }
    b.a[b.n] = 0;
    if (len) *len = b.n;
    return b.a;
}

/* ---------------------------------------------------------------------
 * Streaming decoder
 * --------------------------------------------------------------------- */

void grok_detok_stream_init(grok_detok_stream *s, bool at_start) {
    memset(s, 0, sizeof *s);
    s->at_start = at_start;
}

static size_t out_put(char *out, size_t cap, size_t pos, const char *s, size_t n) {
    if (n == 0) return pos;
    size_t room = pos < cap ? cap - pos : 0;
    if (n > room) n = room;
    memcpy(out + pos, s, n);
    return pos + n;
}

/* Emits the pending bytes that are decided; with all, also an incomplete
 * tail (as U+FFFD per byte, as a run of byte pieces ends in decode). */
static size_t stream_drain(grok_detok_stream *s, char *out, size_t cap, size_t pos, bool all) {
    const unsigned char *p = (const unsigned char *)s->pending;
    size_t i = 0;
    while (i < s->n_pending) {
        if (!all && grok_utf8_incomplete(p + i, s->n_pending - i)) break;
        size_t v = grok_utf8_seq(p + i, s->n_pending - i);
        if (v == 0) {
            pos = out_put(out, cap, pos, REPLACEMENT, 3);
            i++;
        } else {
            pos = out_put(out, cap, pos, (const char *)p + i, v);
            i += v;
        }
    }
    memmove(s->pending, s->pending + i, s->n_pending - i);
    s->n_pending -= i;
    return pos;
}

size_t grok_detok_stream_push(grok_detok_stream *s, const grok_tokenizer *t, int32_t id, char *out,
                              size_t cap) {
    if (id < 0 || id >= t->n) return 0;
    if (t->type[id] == GROK_TOKEN_BYTE) {
        /* At most 3 bytes wait (an incomplete character), so this fits. */
        s->pending[s->n_pending++] = (char)piece_to_byte(t->piece[id], t->len[id]);
        s->at_start = false;
        return stream_drain(s, out, cap, 0, false);
    }
    size_t pos = stream_drain(s, out, cap, 0, true);
    sbuf b = {0};
    put_piece(t, &b, id, &s->at_start);
    pos = out_put(out, cap, pos, b.a, b.n);
    free(b.a);
    return pos;
}

size_t grok_detok_stream_flush(grok_detok_stream *s, char *out, size_t cap) {
    return stream_drain(s, out, cap, 0, true);
}

int64_t grok_tokenize_into(const grok_tokenizer *t, const char *text, size_t len, bool add_special,
                           int32_t *out, int64_t cap) {
    size_t n = 0;
    int32_t *ids = grok_tokenize(t, text, len, add_special, &n);
    if (!ids) return -1;
    for (size_t i = 0; i < n && (int64_t)i < cap; i++) out[i] = ids[i];
    free(ids);
    return (int64_t)n;
}

int64_t grok_detokenize_into(const grok_tokenizer *t, const int32_t *ids, size_t n, char *out, size_t cap) {
    size_t len = 0;
    char *text = grok_detokenize(t, ids, n, &len);
    if (!text) return -1;
    if (cap > 0) {
        const size_t k = len < cap - 1 ? len : cap - 1;
        memcpy(out, text, k);
        out[k] = 0;
    }
    free(text);
    return (int64_t)len;
}
