/*
 * grammar_internal.h - the compiled form of a grammar, shared by the GBNF
 * parser (gbnf.c, which builds it), the matcher (matcher.c, which runs it
 * over tokens) and the JSON Schema converter (schema.c, which writes GBNF
 * and hands it to the parser).
 *
 * A grammar is llama.cpp's element program: every rule is a run of
 * elements, its alternatives separated by GE_ALT and closed by GE_END; a
 * character class is a GE_CHAR / GE_CHAR_NOT / GE_CHAR_ANY element followed
 * by GE_CHAR_ALT and GE_RNG_UPPER elements that extend it. All rules live in
 * one array, so a position in the grammar is one uint32 index into it.
 * Classes are also kept as sorted code point ranges (matcher's fast path).
 */
#ifndef GROK_GRAMMAR_INTERNAL_H
#define GROK_GRAMMAR_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grok.h"

enum {
    GE_END = 0,       /* end of a rule */
    GE_ALT = 1,       /* start of the next alternative */
    GE_REF = 2,       /* value: rule id */
    GE_CHAR = 3,      /* value: code point; starts a class */
    GE_CHAR_NOT = 4,  /* starts a negated class */
    GE_RNG_UPPER = 5, /* makes the previous char the lower end of a range */
    GE_CHAR_ALT = 6,  /* one more char of the class */
    GE_CHAR_ANY = 7,  /* '.': any code point */
    GE_TOKEN = 8,     /* value: token id, matched as a whole token */
    GE_TOKEN_NOT = 9  /* any whole token but this one */
};

typedef struct {
    uint32_t type;
    uint32_t value;
} grok_gelem;

typedef struct {
    uint32_t lo, hi; /* inclusive code point range */
} grok_crange;

typedef struct {
    uint64_t ascii[2]; /* membership of code points 0..127 */
    uint32_t r0, nr;   /* ranges[r0 .. r0+nr), sorted, disjoint, positive */
} grok_cclass;

typedef struct grok_gcache grok_gcache; /* matcher.c */

struct grok_grammar {
    /* immutable once parsed */
    grok_gelem *el; /* [n_el] every rule, each closed by GE_END */
    size_t n_el;
    uint32_t *rule_off; /* [n_rules] first element of each rule */
    char **rule_name;   /* [n_rules] */
    size_t n_rules;
    uint32_t root;
    int32_t *cls_of;   /* [n_el] class index at a class's first element, else -1 */
    uint32_t *next_of; /* [n_el] position after a terminal (class or token element) */
    grok_cclass *cls;
    size_t n_cls;
    grok_crange *ranges;
    size_t n_ranges;
    const grok_grammar_vocab *vocab; /* NULL: text matching only, no masks */

    /* matcher caches, shared by every matcher of this grammar */
    pthread_mutex_t mu;
    int64_t refs;
    grok_gcache *cache;
};

/* True for the elements that end an alternative. */
static inline bool grok_ge_is_end(const grok_gelem *e) { return e->type == GE_END || e->type == GE_ALT; }
static inline bool grok_ge_is_token(const grok_gelem *e) {
    return e->type == GE_TOKEN || e->type == GE_TOKEN_NOT;
}

/* Class membership of code point c. */
bool grok_cclass_has(const grok_grammar *g, const grok_cclass *k, uint32_t c);
/* Does the class hold any code point of [lo, hi]? */
bool grok_cclass_meets(const grok_grammar *g, const grok_cclass *k, uint32_t lo, uint32_t hi);

/* The vocabulary as the matcher sees it: every token's bytes as they appear
 * in the middle of a text, and the tokens that have bytes sorted
 * bytewise (a flattened trie: lcp[i] is the length of the prefix sorted
 * token i shares with sorted token i-1). */
struct grok_grammar_vocab {
    const grok_tokenizer *tok;
    int64_t n_vocab;
    int32_t eos;
    uint8_t *bytes;        /* all tokens' bytes */
    uint32_t *off, *len;   /* [n_vocab] */
    uint32_t *sorted;      /* [n_sorted] token ids with text, by bytes */
    uint32_t *lcp;         /* [n_sorted] */
    uint8_t *sbytes;       /* the sorted tokens' bytes, in sorted order (walks read it in sequence) */
    uint32_t *soff, *slen; /* [n_sorted] */
    uint32_t *end1, *end2; /* [n_sorted] the first sorted token after i that differs from it in its
                           * first byte / first two bytes: the end of i's subtree there */
    uint32_t *rank;        /* [n_vocab] index in sorted, UINT32_MAX for tokens without text */
    size_t n_sorted;
    uint32_t max_len;
    size_t n_words;    /* uint64 words of a mask */
    uint64_t *textual; /* [n_words] the tokens that have text */
};

/* The token whose text is exactly s[0..n) (or, for control and
 * user-defined pieces, whose piece is), or -1. */
int64_t grok_grammar_vocab_find(const grok_grammar_vocab *v, const char *s, size_t n);

/* Matcher-side teardown of the caches (matcher.c). */
void grok_gcache_free(grok_gcache *c);

#endif
