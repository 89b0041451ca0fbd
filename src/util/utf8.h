/*
 * utf8.h - UTF-8 validity checks (utf8.c).
 */
#ifndef GROK_UTF8_H
#define GROK_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), 0 if invalid. */
size_t grok_utf8_seq(const unsigned char *s, size_t n);
/* Whether s[0..len) is valid UTF-8. */
bool grok_utf8_valid(const char *s, size_t len);

#endif
