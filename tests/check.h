/*
 * check.h - the one assertion macro of the C tests: CHECK(cond, fmt, ...)
 * counts the check, and on failure prints file:line, the condition and a
 * message, then carries on so one run reports every failure. Each test
 * ends with check_summary("name"), whose value is the exit status.
 */
#ifndef GROK_TEST_CHECK_H
#define GROK_TEST_CHECK_H

#include <stdio.h>

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

static inline int check_summary(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
