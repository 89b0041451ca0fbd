/*
 * utf8.h - UTF-8 (RFC 3629) in one place (utf8.c): validity, decoding,
 * the first bad byte, whether a tail may still grow into a character, and
 * sanitising to valid text. The tokenizer, the grammar and schema readers,
 * the chat templates, the training data reader and the server all use it.
 */
#ifndef GROK_UTF8_H
#define GROK_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), 0 if invalid. */
size_t grok_utf8_seq(const unsigned char *s, size_t n);
/* As grok_utf8_seq, and the code point in *cp when valid. */
size_t grok_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Whether s[0..len) is valid UTF-8. */
bool grok_utf8_valid(const char *s, size_t len);
/* Byte offset of the first invalid sequence of s[0..len), or -1. */
int64_t grok_utf8_invalid_at(const char *s, size_t len);
/* Whether s[0..n) (n >= 1) is the start of a valid character that more
 * bytes could complete: a stream must wait before judging it. */
bool grok_utf8_incomplete(const unsigned char *s, size_t n);
/* A malloc'd NUL-terminated copy of s[0..len) with every invalid byte
 * replaced by U+FFFD (EF BF BD), its length in *out_len (may be NULL);
 * NULL when out of memory. */
char *grok_utf8_sanitize(const char *s, size_t len, size_t *out_len);
/* Where byte off of s is, for messages: its 1-based line and column, the
 * column counted in characters (bytes that are not continuations). */
void grok_utf8_line_col(const char *s, size_t off, size_t *line, size_t *col);

#endif
