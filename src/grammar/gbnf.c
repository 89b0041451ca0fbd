/*
 * gbnf.c - reads GBNF, llama.cpp's grammar format (its grammars/README.md
 * is the definition), into the element program of grammar_internal.h, so
 * the grammar files written for llama.cpp work unchanged:
 *
 *   rule ::= alternatives, "literal" with \x \u \U \t \r \n \\ \" \[ \] \-
 *   escapes, [classes] with ranges and ^, . (any character), (groups),
 *   * + ? {m} {m,} {m,n} repetition, # comments, <[id]> and <text> whole
 *   tokens and !<...> any token but one, newlines inside groups and after |.
 *
 * Repetitions are rewritten as llama.cpp rewrites them: S{m,n} becomes m
 * copies of S followed by a chain of n-m nested optional rules, S{m,}
 * m copies and a right-recursive rule. Where llama.cpp silently treats a
 * maximum above 2000 as unbounded, the bound is kept here; the size of the
 * expanded program is capped instead, with an error naming the place.
 *
 * Every error names its place as LINE:COLUMN (1-based, columns counted in
 * characters) and says what was expected. After parsing, every referenced
 * rule must be defined, the start rule must exist, and no rule may reach
 * itself without consuming input (left recursion, which a pushdown matcher
 * cannot run).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar_internal.h"
#include "util/utf8.h"

#define MAX_ELEMS ((size_t)1 << 22) /* elements after expanding repetitions */
#define MAX_RULES ((size_t)1 << 20)

typedef struct {
    grok_gelem *a;
    size_t n, cap;
} evec;

typedef struct {
    const char *src; /* NUL-terminated */
    size_t len;
    const grok_grammar_vocab *vocab;
    char **names;
    evec *rules;
    bool *defined;
    size_t *first_ref; /* offset of the first reference, for "undefined" */
    size_t *def_at;    /* offset of the definition */
    size_t n_sym, cap_sym;
    uint32_t *htab; /* name hash table of symbol ids + 1 */
    size_t hcap;
    size_t total; /* elements in all rules */
    char *err;
    size_t err_size;
    bool failed;
} gparser;

/* ---- errors ---- */

__attribute__((format(printf, 3, 4))) static const char *perr(gparser *p, const char *at, const char *fmt,
                                                              ...) {
    if (p->failed) return NULL;
    p->failed = true;
    size_t line, col;
    grok_utf8_line_col(p->src, (size_t)(at - p->src), &line, &col);
    int k = snprintf(p->err, p->err_size, "%zu:%zu: ", line, col);
    if (k < 0 || (size_t)k >= p->err_size) return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + k, p->err_size - (size_t)k, fmt, ap);
    va_end(ap);
    return NULL;
}

/* What a position shows, for messages: the next character or "end of input". */
static const char *shown(const char *pos, char *buf, size_t cap) {
    if (!*pos) return "end of input";
    unsigned char c = (unsigned char)*pos;
    if (c == '\n') return "a newline";
    if (c < 0x20 || c == 0x7F)
        snprintf(buf, cap, "byte 0x%02X", c);
    else if (c < 0x80)
        snprintf(buf, cap, "'%c'", c);
    else {
        size_t n = 1;
        while (n < 4 && ((unsigned char)pos[n] & 0xC0) == 0x80) n++;
        snprintf(buf, cap, "'%.*s'", (int)n, pos);
    }
    return buf;
}

/* ---- element vectors and symbols ---- */

static bool ev_push(gparser *p, evec *v, uint32_t type, uint32_t value, const char *at) {
    if (p->total >= MAX_ELEMS) {
        perr(p, at, "the grammar is too large once repetitions are expanded (more than %zu elements)",
             MAX_ELEMS);
        return false;
    }
    if (v->n == v->cap) {
        size_t c = v->cap ? v->cap * 2 : 16;
        grok_gelem *a = realloc(v->a, c * sizeof *a);
        if (!a) {
            perr(p, at, "out of memory");
            return false;
        }
        v->a = a;
        v->cap = c;
    }
    v->a[v->n++] = (grok_gelem){type, value};
    p->total++;
    return true;
}

static bool ev_append(gparser *p, evec *v, const grok_gelem *e, size_t n, const char *at) {
    for (size_t i = 0; i < n; i++)
        if (!ev_push(p, v, e[i].type, e[i].value, at)) return false;
    return true;
}

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static bool rehash(gparser *p, size_t cap) {
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return false;
    for (size_t i = 0; i < p->n_sym; i++) {
        size_t h = name_hash(p->names[i], strlen(p->names[i])) & (cap - 1);
        while (t[h]) h = (h + 1) & (cap - 1);
        t[h] = (uint32_t)i + 1;
    }
    free(p->htab);
    p->htab = t;
    p->hcap = cap;
    return true;
}

/* Adds a symbol (not yet defined); returns its id or -1. */
static int64_t add_symbol(gparser *p, const char *name, size_t n, const char *at) {
    if (p->n_sym >= MAX_RULES) {
        perr(p, at, "the grammar has too many rules (more than %zu)", MAX_RULES);
        return -1;
    }
    if (p->n_sym == p->cap_sym) {
        size_t c = p->cap_sym ? p->cap_sym * 2 : 64;
        char **nm = realloc(p->names, c * sizeof *nm);
        if (nm) p->names = nm;
        evec *r = realloc(p->rules, c * sizeof *r);
        if (r) p->rules = r;
        bool *d = realloc(p->defined, c * sizeof *d);
        if (d) p->defined = d;
        size_t *fr = realloc(p->first_ref, c * sizeof *fr);
        if (fr) p->first_ref = fr;
        size_t *da = realloc(p->def_at, c * sizeof *da);
        if (da) p->def_at = da;
        if (!nm || !r || !d || !fr || !da) {
            perr(p, at, "out of memory");
            return -1;
        }
        p->cap_sym = c;
    }
    if ((p->n_sym + 1) * 2 > p->hcap && !rehash(p, p->hcap ? p->hcap * 2 : 128)) {
        perr(p, at, "out of memory");
        return -1;
    }
    char *s = malloc(n + 1);
    if (!s) {
        perr(p, at, "out of memory");
        return -1;
    }
    memcpy(s, name, n);
    s[n] = '\0';
    size_t id = p->n_sym++;
    p->names[id] = s;
    p->rules[id] = (evec){0};
    p->defined[id] = false;
    p->first_ref[id] = (size_t)(at - p->src);
    p->def_at[id] = 0;
    size_t h = name_hash(s, n) & (p->hcap - 1);
    while (p->htab[h]) h = (h + 1) & (p->hcap - 1);
    p->htab[h] = (uint32_t)id + 1;
    return (int64_t)id;
}

static int64_t find_symbol(const gparser *p, const char *name, size_t n) {
    if (!p->hcap) return -1;
    size_t h = name_hash(name, n) & (p->hcap - 1);
    for (; p->htab[h]; h = (h + 1) & (p->hcap - 1)) {
        const char *s = p->names[p->htab[h] - 1];
        if (strlen(s) == n && memcmp(s, name, n) == 0) return (int64_t)p->htab[h] - 1;
    }
    return -1;
}

static int64_t symbol_id(gparser *p, const char *name, size_t n, const char *at) {
    int64_t id = find_symbol(p, name, n);
    return id >= 0 ? id : add_symbol(p, name, n, at);
}

/* A fresh rule for a group or repetition: BASE_N as llama.cpp names them. */
static int64_t generated_symbol(gparser *p, const char *base, const char *at) {
    char buf[320];
    int64_t id = -1;
    size_t k = p->n_sym;
    do {
        snprintf(buf, sizeof buf, "%.256s_%zu", base, k++);
    } while (find_symbol(p, buf, strlen(buf)) >= 0);
    id = add_symbol(p, buf, strlen(buf), at);
    if (id >= 0) p->defined[id] = true;
    return id;
}

static void set_rule(gparser *p, int64_t id, evec *v) {
    free(p->rules[id].a);
    p->rules[id] = *v;
    *v = (evec){0};
}

/* ---- lexical pieces ---- */

static bool is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static const char *skip_space(const char *pos, bool newline_ok) {
    for (;;) {
        if (*pos == ' ' || *pos == '\t' || (newline_ok && (*pos == '\r' || *pos == '\n'))) {
            pos++;
        } else if (*pos == '#') {
            while (*pos && *pos != '\r' && *pos != '\n') pos++;
        } else {
            return pos;
        }
    }
}

/* Strict UTF-8 decoding of one character of the NUL-terminated source
 * (a NUL ends any sequence, util/utf8.c); NULL on invalid input. */
static const char *utf8_char(const char *s, uint32_t *out) {
    size_t n = grok_utf8_decode((const unsigned char *)s, 4, out);
    return n ? s + n : NULL;
}

static const char *parse_hex(gparser *p, const char *pos, int digits, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        char c = pos[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return perr(p, pos + i, "expecting %d hex digits after the escape", digits);
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return pos + digits;
}

/* One character of a literal or class, escapes included. */
static const char *parse_char(gparser *p, const char *pos, uint32_t *out) {
    char b[16];
    if (*pos == '\\') {
        switch (pos[1]) {
        case 'x': return parse_hex(p, pos + 2, 2, out);
        case 'u': return parse_hex(p, pos + 2, 4, out);
        case 'U': return parse_hex(p, pos + 2, 8, out);
        case 't': *out = '\t'; return pos + 2;
        case 'r': *out = '\r'; return pos + 2;
        case 'n': *out = '\n'; return pos + 2;
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-': *out = (unsigned char)pos[1]; return pos + 2;
        default:
            return perr(p, pos, "unknown escape \\%s (known: \\x \\u \\U \\t \\r \\n \\\\ \\\" \\[ \\] \\-)",
                        pos[1] ? shown(pos + 1, b, sizeof b) : "at the end of input");
        }
    }
    if (!*pos) return perr(p, pos, "unexpected end of input");
    const char *q = utf8_char(pos, out);
    if (!q) return perr(p, pos, "invalid UTF-8");
    return q;
}

static const char *parse_uint(gparser *p, const char *pos, uint64_t *out, uint64_t max) {
    if (!(*pos >= '0' && *pos <= '9')) {
        char b[16];
        return perr(p, pos, "expecting an integer, found %s", shown(pos, b, sizeof b));
    }
    uint64_t v = 0;
    const char *start = pos;
    while (*pos >= '0' && *pos <= '9') {
        v = v * 10 + (uint64_t)(*pos - '0');
        if (v > max) return perr(p, start, "number too large (at most %llu)", (unsigned long long)max);
        pos++;
    }
    *out = v;
    return pos;
}

/* <[id]> or <text>: a whole token. */
static const char *parse_token(gparser *p, const char *pos, uint32_t *out) {
    const char *start = pos;
    pos++; /* '<' */
    if (*pos == '[') {
        uint64_t id = 0;
        pos = parse_uint(p, pos + 1, &id, UINT32_MAX);
        if (!pos) return NULL;
        if (*pos != ']') return perr(p, pos, "expecting ']' to close the token id");
        if (pos[1] != '>') return perr(p, pos + 1, "expecting '>' to close the token");
        if (p->vocab && (int64_t)id >= p->vocab->n_vocab)
            return perr(p, start, "token id %llu is outside the vocabulary of %lld tokens",
                        (unsigned long long)id, (long long)p->vocab->n_vocab);
        *out = (uint32_t)id;
        return pos + 2;
    }
    while (*pos && *pos != '>') pos++;
    if (*pos != '>') return perr(p, start, "expecting '>' to close the token");
    pos++;
    if (!p->vocab) return perr(p, start, "a token written as text needs the model's vocabulary (use <[id]>)");
    int64_t id = grok_grammar_vocab_find(p->vocab, start, (size_t)(pos - start));
    if (id < 0) return perr(p, start, "'%.*s' is not one token of the vocabulary", (int)(pos - start), start);
    *out = (uint32_t)id;
    return pos;
}

/* ---- rules ---- */

static const char *parse_alternates(gparser *p, const char *pos, const char *name, int64_t id, bool nested);

/* Rewrites the last symbol rule->a[last..] as it repeated min..max times
 * (max UINT64_MAX: no bound). */
static bool repeat(gparser *p, evec *rule, size_t last, uint64_t min, uint64_t max, const char *name,
                   const char *at) {
    size_t n_sym = rule->n - last;
    grok_gelem *sym = malloc((n_sym ? n_sym : 1) * sizeof *sym);
    if (!sym) {
        perr(p, at, "out of memory");
        return false;
    }
    memcpy(sym, rule->a + last, n_sym * sizeof *sym);
    bool ok = true;
    if (min == 0) {
        p->total -= n_sym;
        rule->n = last;
    }
    for (uint64_t i = 1; ok && i < min; i++) ok = ev_append(p, rule, sym, n_sym, at);
    bool unbounded = max == UINT64_MAX;
    uint64_t n_opt = unbounded ? 1 : max - min;
    int64_t prev = -1;
    for (uint64_t i = 0; ok && i < n_opt; i++) {
        /* S' ::= S S' | (unbounded), or S'(k) ::= S S'(k-1) | ... S'(1) ::= S | */
        int64_t rid = generated_symbol(p, name, at);
        evec r = {0};
        ok = rid >= 0 && ev_append(p, &r, sym, n_sym, at);
        if (ok && (unbounded || i > 0)) ok = ev_push(p, &r, GE_REF, (uint32_t)(unbounded ? rid : prev), at);
        ok = ok && ev_push(p, &r, GE_ALT, 0, at) && ev_push(p, &r, GE_END, 0, at);
        if (ok) set_rule(p, rid, &r);
        free(r.a);
        prev = rid;
    }
    if (ok && n_opt > 0) ok = ev_push(p, rule, GE_REF, (uint32_t)prev, at);
    free(sym);
    return ok;
}

static const char *parse_sequence(gparser *p, const char *pos, const char *name, evec *rule, bool nested) {
    size_t last = rule->n; /* where the last symbol starts; == n: none yet */
    char b[16];
    while (*pos) {
        const char *at = pos;
        if (*pos == '"') {
            pos++;
            last = rule->n;
            while (*pos != '"') {
                if (!*pos) return perr(p, at, "unterminated string literal");
                uint32_t c;
                if (!(pos = parse_char(p, pos, &c))) return NULL;
                if (!ev_push(p, rule, GE_CHAR, c, at)) return NULL;
            }
            pos = skip_space(pos + 1, nested);
        } else if (*pos == '[') {
            pos++;
            uint32_t start = GE_CHAR;
            if (*pos == '^') {
                pos++;
                start = GE_CHAR_NOT;
            }
            last = rule->n;
            if (*pos == ']')
                return perr(
                    p, at,
                    "empty character class (it would match nothing; llama.cpp reads it as no symbol at all)");
            while (*pos != ']') {
                if (!*pos) return perr(p, at, "unterminated character class");
                uint32_t c;
                const char *lo_at = pos;
                if (!(pos = parse_char(p, pos, &c))) return NULL;
                if (!ev_push(p, rule, rule->n > last ? GE_CHAR_ALT : start, c, at)) return NULL;
                if (pos[0] == '-' && pos[1] != ']') {
                    if (!pos[1]) return perr(p, at, "unterminated character class");
                    uint32_t hi;
                    if (!(pos = parse_char(p, pos + 1, &hi))) return NULL;
                    if (hi < c) return perr(p, lo_at, "range end U+%04X is below its start U+%04X", hi, c);
                    if (!ev_push(p, rule, GE_RNG_UPPER, hi, at)) return NULL;
                }
            }
            pos = skip_space(pos + 1, nested);
        } else if (*pos == '<' || *pos == '!') {
            uint32_t type = GE_TOKEN, id = 0;
            if (*pos == '!') {
                type = GE_TOKEN_NOT;
                if (*++pos != '<') return perr(p, pos, "expecting '<' after '!'");
            }
            if (!(pos = parse_token(p, pos, &id))) return NULL;
            last = rule->n;
            if (!ev_push(p, rule, type, id, at)) return NULL;
            pos = skip_space(pos, nested);
        } else if (is_word(*pos)) {
            const char *e = pos;
            while (is_word(*e)) e++;
            int64_t id = symbol_id(p, pos, (size_t)(e - pos), pos);
            if (id < 0) return NULL;
            last = rule->n;
            if (!ev_push(p, rule, GE_REF, (uint32_t)id, at)) return NULL;
            pos = skip_space(e, nested);
        } else if (*pos == '(') {
            pos = skip_space(pos + 1, true);
            int64_t id = generated_symbol(p, name, at);
            if (id < 0) return NULL;
            if (!(pos = parse_alternates(p, pos, name, id, true))) return NULL;
            if (*pos != ')') {
                size_t ol, oc;
                grok_utf8_line_col(p->src, (size_t)(at - p->src), &ol, &oc);
                return perr(p, pos, "expecting ')' to close the group opened at %zu:%zu, found %s", ol, oc,
                            shown(pos, b, sizeof b));
            }
            last = rule->n;
            if (!ev_push(p, rule, GE_REF, (uint32_t)id, at)) return NULL;
            pos = skip_space(pos + 1, nested);
        } else if (*pos == '.') {
            last = rule->n;
            if (!ev_push(p, rule, GE_CHAR_ANY, 0, at)) return NULL;
            pos = skip_space(pos + 1, nested);
        } else if (*pos == '*' || *pos == '+' || *pos == '?' || *pos == '{') {
            uint64_t min = 0, max = UINT64_MAX;
            if (*pos == '+') min = 1;
            if (*pos == '?') max = 1;
            if (*pos == '{') {
                pos = skip_space(pos + 1, nested);
                if (!(pos = parse_uint(p, pos, &min, MAX_ELEMS))) return NULL;
                pos = skip_space(pos, nested);
                if (*pos == '}') {
                    max = min;
                } else if (*pos == ',') {
                    pos = skip_space(pos + 1, nested);
                    if (*pos >= '0' && *pos <= '9') {
                        if (!(pos = parse_uint(p, pos, &max, MAX_ELEMS))) return NULL;
                        pos = skip_space(pos, nested);
                    }
                    if (*pos != '}')
                        return perr(p, pos, "expecting '}' to close the repetition, found %s",
                                    shown(pos, b, sizeof b));
                    if (max < min)
                        return perr(p, at, "repetition {%llu,%llu}: the maximum is below the minimum",
                                    (unsigned long long)min, (unsigned long long)max);
                } else {
                    return perr(p, pos, "expecting ',' or '}' in the repetition, found %s",
                                shown(pos, b, sizeof b));
                }
                pos = skip_space(pos + 1, nested);
            } else {
                pos = skip_space(pos + 1, nested);
            }
            if (last == rule->n) return perr(p, at, "'%c' has no symbol before it to repeat", *at);
            /* last stays: "a+?" repeats the repetition, as in llama.cpp */
            if (!repeat(p, rule, last, min, max, name, at)) return NULL;
        } else {
            break;
        }
    }
    return pos;
}

static const char *parse_alternates(gparser *p, const char *pos, const char *name, int64_t id, bool nested) {
    evec rule = {0};
    pos = parse_sequence(p, pos, name, &rule, nested);
    while (pos && *pos == '|') {
        if (!ev_push(p, &rule, GE_ALT, 0, pos))
            pos = NULL;
        else
            pos = parse_sequence(p, skip_space(pos + 1, true), name, &rule, nested);
    }
    if (pos && !ev_push(p, &rule, GE_END, 0, pos)) pos = NULL;
    if (pos) set_rule(p, id, &rule);
    free(rule.a);
    return pos;
}

static const char *parse_rule(gparser *p, const char *pos) {
    char b[16];
    const char *name = pos;
    while (is_word(*pos)) pos++;
    if (pos == name) return perr(p, pos, "expecting a rule name, found %s", shown(pos, b, sizeof b));
    size_t nlen = (size_t)(pos - name);
    pos = skip_space(pos, false);
    if (!(pos[0] == ':' && pos[1] == ':' && pos[2] == '='))
        return perr(p, pos, "expecting '::=' after the rule name '%.*s', found %s", (int)nlen, name,
                    shown(pos, b, sizeof b));
    int64_t id = symbol_id(p, name, nlen, name);
    if (id < 0) return NULL;
    p->defined[id] = true; /* a later definition replaces an earlier one, as in llama.cpp */
    p->def_at[id] = (size_t)(name - p->src);
    char *nm = p->names[id];
    pos = skip_space(pos + 3, true);
    if (!(pos = parse_alternates(p, pos, nm, id, false))) return NULL;
    if (*pos == '\r')
        pos += pos[1] == '\n' ? 2 : 1;
    else if (*pos == '\n')
        pos++;
    else if (*pos)
        return perr(p, pos, "expecting a newline or the end after the rule, found %s",
                    shown(pos, b, sizeof b));
    return skip_space(pos, true);
}

/* ---- checks on the whole grammar ---- */

/* Can rule r derive the empty string?  Fixpoint over all rules. */
static bool *nullable_rules(const gparser *p) {
    bool *nul = calloc(p->n_sym ? p->n_sym : 1, sizeof *nul);
    if (!nul) return NULL;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t r = 0; r < p->n_sym; r++) {
            if (nul[r]) continue;
            const evec *v = &p->rules[r];
            bool alt_ok = true;
            for (size_t i = 0; i < v->n; i++) {
                const grok_gelem *e = &v->a[i];
                if (grok_ge_is_end(e)) {
                    if (alt_ok) {
                        nul[r] = true;
                        changed = true;
                        break;
                    }
                    alt_ok = true;
                } else if (e->type == GE_REF) {
                    if (!nul[e->value]) alt_ok = false;
                } else if (e->type != GE_CHAR_ALT && e->type != GE_RNG_UPPER) {
                    alt_ok = false;
                }
            }
        }
    }
    return nul;
}

/* Left recursion: a rule that reaches itself through leftmost references,
 * each preceded only by rules that may be empty. Returns a rule on such a
 * cycle, or -1. (llama.cpp's check counts a rule as possibly empty only
 * when it has an empty alternative; this one follows nullable rules too.) */
static int64_t left_recursive(const gparser *p, const bool *nul) {
    size_t n = p->n_sym;
    uint8_t *color = calloc(n ? n : 1, 1); /* 0 new, 1 on the path, 2 done */
    int64_t *stack = malloc((n ? n : 1) * sizeof *stack);
    size_t *iter = malloc((n ? n : 1) * sizeof *iter);
    bool *lead = malloc((n ? n : 1) * sizeof *lead); /* iterator: still at a leftmost place */
    int64_t found = -1;
    if (!color || !stack || !iter || !lead) goto done;
    for (size_t s = 0; s < n && found < 0; s++) {
        if (color[s]) continue;
        size_t sp = 0;
        stack[sp] = (int64_t)s;
        iter[sp] = 0;
        lead[sp] = true;
        color[s] = 1;
        sp++;
        while (sp && found < 0) {
            size_t top = sp - 1;
            const evec *v = &p->rules[stack[top]];
            bool pushed = false;
            while (iter[top] < v->n) {
                const grok_gelem *e = &v->a[iter[top]++];
                if (grok_ge_is_end(e)) {
                    lead[top] = true;
                    continue;
                }
                if (!lead[top]) continue;
                if (e->type == GE_REF) {
                    size_t r = e->value;
                    if (!nul[r]) lead[top] = false;
                    if (color[r] == 1) {
                        found = (int64_t)r;
                        break;
                    }
                    if (color[r] == 0) {
                        color[r] = 1;
                        stack[sp] = (int64_t)r;
                        iter[sp] = 0;
                        lead[sp] = true;
                        sp++;
                        pushed = true;
                        break;
                    }
                } else if (e->type != GE_CHAR_ALT && e->type != GE_RNG_UPPER) {
                    lead[top] = false;
                }
            }
            if (found >= 0 || pushed) continue;
            color[stack[top]] = 2;
            sp--;
        }
    }
done:
    free(color);
    free(stack);
    free(iter);
    free(lead);
    return found;
}

/* ---- the compiled form ---- */

static int cmp_range(const void *a, const void *b) {
    const grok_crange *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Builds the class starting at el[i]; returns the position after it. */
static size_t build_class(grok_grammar *g, size_t i, grok_crange **tmp, size_t *tmp_cap, size_t *cap_ranges,
                          bool *oom) {
    bool neg = g->el[i].type == GE_CHAR_NOT;
    size_t n = 0, j = i;
    bool any = false;
    do {
        if (g->el[j].type == GE_CHAR_ANY) {
            any = true;
            j++;
            continue;
        }
        uint32_t lo = g->el[j].value, hi = lo;
        if (g->el[j + 1].type == GE_RNG_UPPER) {
            hi = g->el[j + 1].value;
            j += 2;
        } else {
            j++;
        }
        if (n == *tmp_cap) {
            size_t c = *tmp_cap ? *tmp_cap * 2 : 16;
            grok_crange *t = realloc(*tmp, c * sizeof *t);
            if (!t) {
                *oom = true;
                return j;
            }
            *tmp = t;
            *tmp_cap = c;
        }
        (*tmp)[n++] = (grok_crange){lo, hi};
    } while (g->el[j].type == GE_CHAR_ALT);
    if (any) {
        n = 0;
        if (*tmp_cap == 0) {
            *tmp = malloc(16 * sizeof **tmp);
            if (!*tmp) {
                *oom = true;
                return j;
            }
            *tmp_cap = 16;
        }
        (*tmp)[n++] = (grok_crange){0, 0x10FFFF};
        neg = false;
    }
    qsort(*tmp, n, sizeof **tmp, cmp_range);
    size_t m = 0; /* merge */
    for (size_t k = 0; k < n; k++) {
        if (m && (*tmp)[k].lo <= (*tmp)[m - 1].hi + 1) {
            if ((*tmp)[k].hi > (*tmp)[m - 1].hi) (*tmp)[m - 1].hi = (*tmp)[k].hi;
        } else {
            (*tmp)[m++] = (*tmp)[k];
        }
    }
    /* the final ranges: as they are, or the complement in [0, 0x10FFFF] */
    size_t need = g->n_ranges + m + 1;
    if (need > *cap_ranges) {
        size_t c = *cap_ranges ? *cap_ranges * 2 : 64;
        while (c < need) c *= 2;
        grok_crange *r = realloc(g->ranges, c * sizeof *r);
        if (!r) {
            *oom = true;
            return j;
        }
        g->ranges = r;
        *cap_ranges = c;
    }
    grok_cclass k = {{0, 0}, (uint32_t)g->n_ranges, 0};
    if (!neg) {
        for (size_t q = 0; q < m; q++) g->ranges[g->n_ranges++] = (*tmp)[q];
    } else {
        uint32_t from = 0;
        for (size_t q = 0; q < m; q++) {
            if ((*tmp)[q].lo > from) g->ranges[g->n_ranges++] = (grok_crange){from, (*tmp)[q].lo - 1};
            from = (*tmp)[q].hi + 1;
        }
        if (from <= 0x10FFFF) g->ranges[g->n_ranges++] = (grok_crange){from, 0x10FFFF};
    }
    k.nr = (uint32_t)(g->n_ranges - k.r0);
    for (uint32_t q = 0; q < k.nr; q++) {
        grok_crange r = g->ranges[k.r0 + q];
        for (uint32_t c = r.lo; c <= r.hi && c < 128; c++) k.ascii[c >> 6] |= 1ull << (c & 63);
    }
    g->cls_of[i] = (int32_t)g->n_cls;
    g->cls[g->n_cls++] = k;
    return j;
}

bool grok_cclass_has(const grok_grammar *g, const grok_cclass *k, uint32_t c) {
    if (c < 128) return (k->ascii[c >> 6] >> (c & 63)) & 1;
    return grok_cclass_meets(g, k, c, c);
}

bool grok_cclass_meets(const grok_grammar *g, const grok_cclass *k, uint32_t lo, uint32_t hi) {
    const grok_crange *r = g->ranges + k->r0;
    size_t a = 0, b = k->nr;
    while (a < b) { /* first range ending at or after lo */
        size_t mid = (a + b) / 2;
        if (r[mid].hi < lo)
            a = mid + 1;
        else
            b = mid;
    }
    return a < k->nr && r[a].lo <= hi;
}

static grok_grammar *compile(gparser *p, int64_t root) {
    grok_grammar *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->n_rules = p->n_sym;
    g->rule_off = malloc(p->n_sym * sizeof *g->rule_off);
    g->rule_name = calloc(p->n_sym, sizeof *g->rule_name);
    g->el = malloc((p->total + 1) * sizeof *g->el);
    if (!g->rule_off || !g->rule_name || !g->el) goto oom;
    size_t n = 0;
    for (size_t r = 0; r < p->n_sym; r++) {
        g->rule_off[r] = (uint32_t)n;
        memcpy(g->el + n, p->rules[r].a, p->rules[r].n * sizeof *g->el);
        n += p->rules[r].n;
        g->rule_name[r] = p->names[r];
        p->names[r] = NULL;
    }
    g->n_el = n;
    g->root = (uint32_t)root;
    g->cls_of = malloc((n ? n : 1) * sizeof *g->cls_of);
    g->next_of = malloc((n ? n : 1) * sizeof *g->next_of);
    g->cls = malloc((n ? n : 1) * sizeof *g->cls);
    if (!g->cls_of || !g->next_of || !g->cls) goto oom;
    size_t tmp_cap = 0, cap_ranges = 0;
    grok_crange *tmp = NULL;
    bool oom = false;
    for (size_t i = 0; i < n; i++) {
        g->cls_of[i] = -1;
        g->next_of[i] = (uint32_t)i + 1;
    }
    for (size_t i = 0; i < n && !oom; i++) {
        uint32_t t = g->el[i].type;
        if (t == GE_CHAR || t == GE_CHAR_NOT || t == GE_CHAR_ANY) {
            size_t j = build_class(g, i, &tmp, &tmp_cap, &cap_ranges, &oom);
            g->next_of[i] = (uint32_t)j;
            i = j - 1;
        }
    }
    free(tmp);
    if (oom) goto oom;
    pthread_mutex_init(&g->mu, NULL);
    g->refs = 1;
    return g;
oom:
    free(g->cls_of);
    free(g->next_of);
    free(g->cls);
    free(g->ranges);
    if (g->rule_name)
        for (size_t r = 0; r < g->n_rules; r++) free(g->rule_name[r]);
    free(g->rule_name);
    free(g->rule_off);
    free(g->el);
    free(g);
    return NULL;
}

static void parser_free(gparser *p) {
    for (size_t i = 0; i < p->n_sym; i++) {
        free(p->names[i]);
        free(p->rules[i].a);
    }
    free(p->names);
    free(p->rules);
    free(p->defined);
    free(p->first_ref);
    free(p->def_at);
    free(p->htab);
}

grok_grammar *grok_grammar_parse(const char *text, size_t len, const char *root, const grok_grammar_vocab *v,
                                 char *err, size_t err_size) {
    char dummy[8];
    if (!err || !err_size) err = dummy, err_size = sizeof dummy;
    err[0] = '\0';
    if (!text) len = 0;
    if (memchr(text ? text : "", 0, len)) {
        size_t at = (size_t)((const char *)memchr(text, 0, len) - text);
        size_t line, col;
        grok_utf8_line_col(text, at, &line, &col);
        snprintf(err, err_size, "%zu:%zu: the grammar contains a NUL byte", line, col);
        return NULL;
    }
    char *src = malloc(len + 1);
    if (!src) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (len) memcpy(src, text, len);
    src[len] = '\0';
    gparser p = {.src = src, .len = len, .vocab = v, .err = err, .err_size = err_size};
    const char *pos = skip_space(src, true);
    while (pos && *pos) pos = parse_rule(&p, pos);
    grok_grammar *g = NULL;
    if (!p.failed) {
        for (size_t i = 0; i < p.n_sym && !p.failed; i++)
            if (!p.defined[i]) perr(&p, src + p.first_ref[i], "undefined rule '%s'", p.names[i]);
    }
    const char *rname = root ? root : "root";
    int64_t rid = p.failed ? -1 : find_symbol(&p, rname, strlen(rname));
    if (!p.failed && (rid < 0 || !p.defined[rid])) {
        p.failed = true;
        snprintf(err, err_size, "1:1: the grammar has no rule named '%s'", rname);
    }
    if (!p.failed) {
        bool *nul = nullable_rules(&p);
        int64_t lr = nul ? left_recursive(&p, nul) : -1;
        if (!nul)
            perr(&p, src, "out of memory");
        else if (lr >= 0)
            perr(&p, src + p.def_at[lr],
                 "left recursion: rule '%s' can reach itself without consuming input (rewrite it "
                 "right-recursively)",
                 p.names[lr]);
        free(nul);
    }
    if (!p.failed) {
        g = compile(&p, rid);
        if (!g)
            snprintf(err, err_size, "out of memory");
        else
            g->vocab = v;
    }
    parser_free(&p);
    free(src);
    return g;
}

grok_grammar *grok_grammar_retain(grok_grammar *g) {
    if (!g) return NULL;
    pthread_mutex_lock(&g->mu);
    g->refs++;
    pthread_mutex_unlock(&g->mu);
    return g;
}

void grok_grammar_free(grok_grammar *g) {
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    int64_t left = --g->refs;
    pthread_mutex_unlock(&g->mu);
    if (left > 0) return;
    grok_gcache_free(g->cache);
    pthread_mutex_destroy(&g->mu);
    for (size_t r = 0; r < g->n_rules; r++) free(g->rule_name[r]);
    free(g->rule_name);
    free(g->rule_off);
    free(g->el);
    free(g->cls_of);
    free(g->next_of);
    free(g->cls);
    free(g->ranges);
    free(g);
}

int64_t grok_grammar_n_rules(const grok_grammar *g) { return g ? (int64_t)g->n_rules : 0; }
