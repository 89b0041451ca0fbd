/*
 * fuzz.h - what the libFuzzer targets share: the input as a file (the
 * readers under test take paths and memory-map them, so each input is
 * written to one memfd that the target reopens through /proc/self/fd),
 * a finding reported as an abort with a message (libFuzzer keeps the
 * input that caused it), and the rule every reader must keep: a rejected
 * input comes with an error message.
 */
#ifndef GROK_FUZZ_H
#define GROK_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken invariant: libFuzzer reports the abort and saves the input. */
#define FUZZ_CHECK(cond, ...)                                                       \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "FUZZ FINDING %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* A rejection's message, printed when GROK_FUZZ_VERBOSE is set (to see
 * why a seed is refused). */
static inline void fuzz_note(const char *what, const char *err) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("GROK_FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "%s: %s\n", what, err);
}

/* Replaces the content of input file `slot` (0 or 1: targets that split
 * one input into two files use both) by data and returns its path, valid
 * until the next call for that slot. */
static inline const char *fuzz_file_at(int slot, const uint8_t *data, size_t size) {
    static int fds[2] = {-1, -1};
    static char paths[2][64];
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("grok-fuzz-input", 0);
        if (fds[slot] < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0) abort();
    for (size_t off = 0; off < size;) {
        ssize_t w = pwrite(fds[slot], data + off, size - off, (off_t)off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    return paths[slot];
}

static inline const char *fuzz_file(const uint8_t *data, size_t size) { return fuzz_file_at(0, data, size); }

/* Little-endian reads from the input, for targets that take parameters
 * from its first bytes. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fuzz_bytes;

static inline uint32_t fuzz_take_u32(fuzz_bytes *b) {
    uint32_t v = 0;
    for (int i = 0; i < 4 && b->n; i++, b->p++, b->n--) v |= (uint32_t)b->p[0] << (8 * i);
    return v;
}

static inline uint8_t fuzz_take_u8(fuzz_bytes *b) {
    if (!b->n) return 0;
    b->n--;
    return *b->p++;
}

#endif
