/*
 * buf.c - the growing text buffer of buf.h.
 */
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

bool grok_buf_add(char **b, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1) c *= 2;
        char *q = realloc(*b, c);
        if (!q) return false;
        *b = q;
        *cap = c;
    }
    if (n) memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = '\0';
    return true;
}
