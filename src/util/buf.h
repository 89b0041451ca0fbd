/*
 * buf.h - a growing NUL-terminated byte buffer (buf.c): the one append
 * used wherever text is built piece by piece (the chat template, the
 * server's responses, grammars and tool calls).
 */
#ifndef GROK_BUF_H
#define GROK_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* Appends s[0..n) to *b (len bytes used of cap, kept NUL-terminated,
 * grown by doubling; *b may start NULL); false when out of memory, with
 * *b unchanged. */
bool grok_buf_add(char **b, size_t *len, size_t *cap, const char *s, size_t n);

#endif
