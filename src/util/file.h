/*
 * file.h - reading a whole file into memory (file.c): prompts, grammars,
 * schemas, evaluation texts and legacy importance matrices, from regular
 * files, pipes or /dev/stdin alike.
 */
#ifndef GROK_FILE_H
#define GROK_FILE_H

#include <stddef.h>

/* The bytes of path, malloc'd and NUL-terminated (so text can be used as a
 * string; the length in *len counts the bytes read, NULs inside included).
 * NULL with err naming the path and the reason when it cannot be opened or
 * read, or memory runs out. */
char *grok_read_file(const char *path, size_t *len, char *err, size_t err_size);

#endif
