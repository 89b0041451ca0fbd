/*
 * utf8.c - UTF-8, the one definition libgrok and the server share
 * (request bodies, chat templates, grammars, training data, the
 * tokenizer): RFC 3629, so overlong forms, surrogates and code points past
 * U+10FFFF are invalid.
 */
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

size_t grok_utf8_decode(const unsigned char *s, size_t n, uint32_t *out) {
    unsigned c = s[0];
    if (c < 0x80) {
        if (out) *out = c;
        return 1;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0)
        len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n) return 0;
    /* stops at the first byte that is no continuation, so a NUL-terminated
     * string may pass n = 4 without being read past its end */
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    if (out) *out = cp;
    return len;
}

size_t grok_utf8_seq(const unsigned char *s, size_t n) { return grok_utf8_decode(s, n, NULL); }

int64_t grok_utf8_invalid_at(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = grok_utf8_seq(u + i, len - i);
        if (!k) return (int64_t)i;
        i += k;
    }
    return -1;
}

bool grok_utf8_valid(const char *s, size_t len) { return grok_utf8_invalid_at(s, len) < 0; }

bool grok_utf8_incomplete(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (need == 0 || n >= need) return false;
    for (size_t k = 1; k < n; k++)
        if ((s[k] & 0xC0) != 0x80) return false;
    if (n >= 2) { /* the second byte's range excludes overlongs, surrogates and > U+10FFFF */
        unsigned d = s[1];
        if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) ||
            (c == 0xF4 && d > 0x8F))
            return false;
    }
    return true;
}

char *grok_utf8_sanitize(const char *s, size_t len, size_t *out_len) {
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *o = malloc(len * 3 + 1);
    if (!o) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t n = grok_utf8_seq(u + i, len - i);
        if (n) {
            memcpy(o + k, s + i, n);
            k += n;
            i += n;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    o[k] = '\0';
    if (out_len) *out_len = k;
    return o;
}

void grok_utf8_line_col(const char *s, size_t off, size_t *line, size_t *col) {
    size_t l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n')
            l++, c = 1;
        else if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    }
    *line = l;
    *col = c;
}
