/*
 * check.h - the one assertion macro of the C tests: CHECK(cond, fmt, ...)
 * counts the check, and on failure prints file:line, the condition and a
 * message, then carries on so one run reports every failure. Each test
 * ends with check_summary("name"), whose value is the exit status. Also
 * the tests' one reader of fixture files, check_read_file.
 */
#ifndef GROK_TEST_CHECK_H
#define GROK_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_count, check_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        check_count++;                                                          \
        if (!(cond)) {                                                          \
            if (++check_failures <= 50) {                                       \
                fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
                fprintf(stderr, __VA_ARGS__);                                   \
                fputc('\n', stderr);                                            \
            }                                                                   \
        }                                                                       \
    } while (0)

/* A whole file, NUL-terminated (malloc'd), its length in *len (may be
 * NULL); NULL when it cannot be read. */
static inline char *check_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = b ? (size_t)n : 0;
    return b;
}

static inline int check_summary(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
