/*
 * buf.c - the growing text buffer of buf.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* Room for need bytes in all, grown by doubling. */
static bool reserve(char **b, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *q = realloc(*b, c);
    if (!q) return false;
    *b = q;
    *cap = c;
    return true;
}

bool grok_buf_add(char **b, size_t *len, size_t *cap, const char *s, size_t n) {
    if (n > SIZE_MAX / 4 - *len || !reserve(b, cap, *len + n + 1)) return false;
    if (n) memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = '\0';
    return true;
}

bool grok_buf_adds(char **b, size_t *len, size_t *cap, const char *s) {
    return grok_buf_add(b, len, cap, s, strlen(s));
}

bool grok_buf_vaddf(char **b, size_t *len, size_t *cap, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    const int k = vsnprintf(NULL, 0, fmt, ap2); /* measure, then print into the room */
    va_end(ap2);
    if (k < 0 || (size_t)k > SIZE_MAX / 4 - *len || !reserve(b, cap, *len + (size_t)k + 1)) return false;
    vsnprintf(*b + *len, (size_t)k + 1, fmt, ap);
    *len += (size_t)k;
    return true;
}

bool grok_buf_addf(char **b, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const bool ok = grok_buf_vaddf(b, len, cap, fmt, ap);
    va_end(ap);
    return ok;
}

void grok_strbuf_add(grok_strbuf *b, const char *s, size_t n) {
    if (!b->oom && !grok_buf_add(&b->a, &b->n, &b->cap, s, n)) b->oom = true;
}

void grok_strbuf_adds(grok_strbuf *b, const char *s) { grok_strbuf_add(b, s, strlen(s)); }

void grok_strbuf_addf(grok_strbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    if (!grok_buf_vaddf(&b->a, &b->n, &b->cap, fmt, ap)) b->oom = true;
    va_end(ap);
}

char *grok_strbuf_take(grok_strbuf *b, size_t *n) {
    if (!b->oom && !b->a) grok_strbuf_add(b, "", 0);
    char *a = b->oom ? NULL : b->a;
    if (!a) free(b->a);
    if (n) *n = a ? b->n : 0;
    *b = (grok_strbuf){0};
    return a;
}
