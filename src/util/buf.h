/*
 * buf.h - the growing NUL-terminated byte buffer (buf.c): the one append
 * used wherever text is built piece by piece (the chat template, the
 * server's responses and metrics, request bodies, grammars, JSON Schemas
 * and tool calls).
 *
 * Two faces of one buffer: grok_buf_add works on three fields that may
 * live inside another struct (a choice's text, a tool call's arguments);
 * grok_strbuf bundles them with a sticky out-of-memory flag, so a builder
 * appends freely and checks once at the end (grok_strbuf_take).
 */
#ifndef GROK_BUF_H
#define GROK_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Appends s[0..n) to *b (len bytes used of cap, kept NUL-terminated,
 * grown by doubling; *b may start NULL); false when out of memory, with
 * *b unchanged. */
bool grok_buf_add(char **b, size_t *len, size_t *cap, const char *s, size_t n);
/* grok_buf_add of the NUL-terminated s. */
bool grok_buf_adds(char **b, size_t *len, size_t *cap, const char *s);
/* grok_buf_add of printf's output. */
bool grok_buf_addf(char **b, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool grok_buf_vaddf(char **b, size_t *len, size_t *cap, const char *fmt, va_list ap);

typedef struct {
    char *a;       /* the text, NUL-terminated; NULL until the first append */
    size_t n, cap; /* bytes used and allocated */
    bool oom;      /* an append failed: every later one is a no-op */
} grok_strbuf;

void grok_strbuf_add(grok_strbuf *b, const char *s, size_t n);
void grok_strbuf_adds(grok_strbuf *b, const char *s);
void grok_strbuf_addf(grok_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (malloc'd, the caller frees it; "" when nothing was added),
 * its length in *n (may be NULL); NULL after an out-of-memory, with the
 * buffer freed. The buffer is empty afterwards. */
char *grok_strbuf_take(grok_strbuf *b, size_t *n);

#endif
