/*
 * pieces.c - one GGUF file cut into raw pieces meant to be concatenated
 * (`cat` or `COPY /B`), as uploaders do for files over a hub's size limit:
 * NAME.gguf.part1of8 .. NAME.gguf.part8of8 (also zero-padded, part01of12),
 * and NAME.gguf-split-a, -split-b, ... Only the first piece starts with a
 * GGUF header; the rest are bytes. Given the first piece, the reader sees
 * the pieces as one file without copying them.
 *
 * Zero copy: the pieces are mapped at consecutive addresses of one reserved
 * region (MAP_FIXED over a PROT_NONE reservation), which works when every
 * piece but the last is a multiple of the page size, as `split -b 1G` or
 * `-b 48000000000` make them. Otherwise each piece is mapped on its own: a
 * tensor wholly inside one piece still points into its map, and the few
 * tensors that cross a piece boundary are read into memory (counted, so
 * `grok info` can say how much; a shared map of a memfd, so that advice
 * dropping pages never loses them). The header must then lie in the first
 * piece, which is megabytes where pieces are gigabytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf_internal.h"

#define MAX_PIECES 4096

struct grok_gguf_pieces {
    int n;
    char **paths;
    uint64_t *off, *size; /* each piece's place in the joined file, and its length */
    const uint8_t **maps; /* each piece on its own (not joined), or NULL */
    uint8_t *region;      /* the joined map, or NULL */
    uint64_t total;
    struct copy {
        void *p;
        size_t n;
    } * copies; /* tensors read across piece boundaries */
    int n_copies;
    uint64_t copied;
};

/* "NAME.partKofN": the length of "NAME.part", K, N and the digits of K. */
static bool part_style(const char *path, size_t *stem, long *k, long *n, int *kw) {
    size_t len = strlen(path), i = len;
    while (i > 0 && path[i - 1] >= '0' && path[i - 1] <= '9') i--;
    if (i == len || len - i > 6 || i < 2 || path[i - 1] != 'f' || path[i - 2] != 'o') return false;
    size_t nd = i;
    i -= 2;
    size_t kend = i;
    while (i > 0 && path[i - 1] >= '0' && path[i - 1] <= '9') i--;
    if (i == kend || kend - i > 6 || i < 5 || strncmp(path + i - 5, ".part", 5) != 0) return false;
    *stem = i;
    *k = strtol(path + i, NULL, 10);
    *n = strtol(path + nd, NULL, 10);
    *kw = (int)(kend - i);
    return true;
}

/* "NAME-split-a" (or -aa ...): the length of "NAME-split-", the letters' index
 * and count. */
static bool letter_style(const char *path, size_t *stem, long *k, int *w) {
    size_t len = strlen(path), i = len;
    while (i > 0 && path[i - 1] >= 'a' && path[i - 1] <= 'z') i--;
    if (i == len || len - i > 3 || i < 7 || strncmp(path + i - 7, "-split-", 7) != 0) return false;
    *stem = i;
    *w = (int)(len - i);
    *k = 0;
    for (size_t j = i; j < len; j++) *k = *k * 26 + (path[j] - 'a');
    return true;
}

static char *piece_name(const char *path, size_t stem, bool letters, long i, int w, const char *n_text) {
    size_t cap = stem + 32 + strlen(n_text);
    char *s = malloc(cap);
    if (!s) return NULL;
    if (letters) {
        char tail[8] = {0};
        for (int j = w - 1; j >= 0; j--, i /= 26) tail[j] = (char)('a' + i % 26);
        snprintf(s, cap, "%.*s%s", (int)stem, path, tail);
    } else {
        snprintf(s, cap, "%.*s%0*ldof%s", (int)stem, path, w, i + 1, n_text);
    }
    return s;
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

void grok_gguf_pieces_close(grok_gguf_pieces *p) {
    if (!p) return;
    for (int i = 0; i < p->n_copies; i++) munmap(p->copies[i].p, p->copies[i].n);
    free(p->copies);
    if (p->region) munmap(p->region, (size_t)p->total);
    for (int i = 0; i < p->n; i++) {
        if (p->maps && p->maps[i]) munmap((void *)p->maps[i], (size_t)p->size[i]);
        if (p->paths) free(p->paths[i]);
    }
    free(p->maps);
    free(p->paths);
    free(p->off);
    free(p->size);
    free(p);
}

/* Maps piece i at addr (MAP_FIXED) or anywhere (addr NULL). */
static int map_piece(grok_gguf_pieces *p, int i, void *addr, char *err, size_t err_size) {
    int fd = open(p->paths[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "%s: cannot open: %s", p->paths[i], strerror(errno));
        return -1;
    }
    void *m = mmap(addr, (size_t)p->size[i], PROT_READ, MAP_SHARED | (addr ? MAP_FIXED : 0), fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, err_size, "%s: cannot map %" PRIu64 " bytes: %s", p->paths[i], p->size[i], strerror(e));
        return -1;
    }
    if (!addr) p->maps[i] = m;
    return 0;
}

int grok_gguf_pieces_open(const char *path, grok_gguf_pieces **out, char *err, size_t err_size) {
    *out = NULL;
    size_t stem;
    long k, n = 0;
    int w;
    bool letters = false;
    char n_text[16] = "";
    if (part_style(path, &stem, &k, &n, &w)) {
        snprintf(n_text, sizeof n_text, "%s", strrchr(path, 'f') + 1);
        if (n < 1 || n > MAX_PIECES || k < 1 || k > n) {
            snprintf(err, err_size, "%s: file name: piece %ld of %ld is out of range", path, k, n);
            return -1;
        }
        k--;
    } else if (letter_style(path, &stem, &k, &w)) {
        letters = true;
    } else {
        return 0; /* not a piece */
    }
    if (k != 0) {
        char *first = piece_name(path, stem, letters, 0, w, n_text);
        snprintf(err, err_size, "%s: a piece after the first; give the first, %s", path, first ? first : "?");
        free(first);
        return -1;
    }
    grok_gguf_pieces *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    if (letters) { /* the count is where the names stop */
        long max = 1;
        for (int j = 0; j < w; j++) max *= 26;
        if (max > MAX_PIECES) max = MAX_PIECES;
        for (n = 1; n < max; n++) {
            char *s = piece_name(path, stem, true, n, w, n_text);
            if (!s) goto oom;
            bool there = exists(s);
            free(s);
            if (!there) break;
        }
    }
    p->paths = calloc((size_t)n, sizeof *p->paths);
    p->off = calloc((size_t)n, sizeof *p->off);
    p->size = calloc((size_t)n, sizeof *p->size);
    if (!p->paths || !p->off || !p->size) goto oom;
    p->n = (int)n;
    for (int i = 0; i < p->n; i++) {
        if (!(p->paths[i] = piece_name(path, stem, letters, i, w, n_text))) goto oom;
        struct stat st;
        if (stat(p->paths[i], &st) != 0) {
            snprintf(err, err_size, "%s: piece %d of %d is missing (%s)", p->paths[i], i + 1, p->n,
                     strerror(errno));
            goto fail;
        }
        if (!S_ISREG(st.st_mode) || st.st_size == 0) {
            snprintf(err, err_size, "%s: piece %d of %d is %s", p->paths[i], i + 1, p->n,
                     S_ISREG(st.st_mode) ? "empty" : "not a regular file");
            goto fail;
        }
        p->off[i] = p->total;
        p->size[i] = (uint64_t)st.st_size;
        p->total += p->size[i];
    }
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    bool joinable = true;
    for (int i = 0; i + 1 < p->n; i++) joinable = joinable && p->size[i] % page == 0;
    if (joinable) {
        void *r = mmap(NULL, (size_t)p->total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r == MAP_FAILED) {
            snprintf(err, err_size, "%s: cannot reserve %" PRIu64 " bytes of address space for %d pieces: %s",
                     path, p->total, p->n, strerror(errno));
            goto fail;
        }
        p->region = r;
        for (int i = 0; i < p->n; i++)
            if (map_piece(p, i, p->region + p->off[i], err, err_size) != 0) goto fail;
    } else {
        if (!(p->maps = calloc((size_t)p->n, sizeof *p->maps))) goto oom;
        for (int i = 0; i < p->n; i++)
            if (map_piece(p, i, NULL, err, err_size) != 0) goto fail;
    }
    *out = p;
    return 1;
oom:
    snprintf(err, err_size, "%s: out of memory", path);
fail:
    grok_gguf_pieces_close(p);
    return -1;
}

int grok_gguf_pieces_count(const grok_gguf_pieces *p) { return p ? p->n : 0; }
uint64_t grok_gguf_pieces_size(const grok_gguf_pieces *p) { return p->total; }
uint64_t grok_gguf_pieces_copied(const grok_gguf_pieces *p) { return p ? p->copied : 0; }
const char *grok_gguf_pieces_path(const grok_gguf_pieces *p, int i) { return p->paths[i]; }

const uint8_t *grok_gguf_pieces_head(const grok_gguf_pieces *p, uint64_t *len) {
    *len = p->region ? p->total : p->size[0];
    return p->region ? p->region : p->maps[0];
}

/* The piece holding byte off of the joined file (binary search). */
static int piece_of(const grok_gguf_pieces *p, uint64_t off) {
    int lo = 0, hi = p->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (p->off[mid] <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

const void *grok_gguf_pieces_at(grok_gguf_pieces *p, uint64_t off, uint64_t n, char *err, size_t err_size) {
    if (p->region) return p->region + off;
    int i = piece_of(p, off);
    if (off + n <= p->off[i] + p->size[i]) return p->maps[i] + (off - p->off[i]);
    /* Across a boundary: the bytes, piece by piece, into memory that
     * behaves like the file's pages: a shared map of an anonymous file, so
     * advice that drops pages (the packer's MADV_DONTNEED once it has its
     * own copy) leaves the data there to be faulted back, as for a map of
     * the pieces. */
    struct copy *grown = realloc(p->copies, sizeof *grown * (size_t)(p->n_copies + 1));
    if (!grown) {
        snprintf(err, err_size, "%s: out of memory", p->paths[i]);
        return NULL;
    }
    p->copies = grown;
    int fd = memfd_create("grok-gguf-piece-copy", MFD_CLOEXEC);
    uint8_t *buf = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)n) == 0)
        buf = mmap(NULL, (size_t)n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    if (fd >= 0) close(fd);
    if (buf == MAP_FAILED) {
        snprintf(err, err_size, "%s: no memory for %" PRIu64 " bytes crossing from piece %d to the next: %s",
                 p->paths[i], n, i + 1, strerror(e));
        return NULL;
    }
    p->copies[p->n_copies++] = (struct copy){buf, (size_t)n};
    for (uint64_t done = 0; done < n; i++) {
        uint64_t from = off + done - p->off[i], take = p->size[i] - from;
        if (take > n - done) take = n - done;
        memcpy(buf + done, p->maps[i] + from, (size_t)take);
        done += take;
    }
    mprotect(buf, (size_t)n, PROT_READ);
    p->copied += n;
    return buf;
}

int grok_gguf_pieces_locate(const grok_gguf_pieces *p, const void *ptr, int *piece, uint64_t *offset) {
    const uint8_t *q = ptr;
    for (int i = 0; i < p->n; i++) {
        const uint8_t *base = p->region ? p->region + p->off[i] : p->maps[i];
        if (q >= base && q < base + p->size[i]) {
            *piece = i;
            *offset = (uint64_t)(q - base);
            return 0;
        }
    }
    return -1; /* in a copy across a boundary, or not ours */
}

const uint8_t *grok_gguf_pieces_map(const grok_gguf_pieces *p, int i, uint64_t *len) {
    *len = p->size[i];
    return p->region ? p->region + p->off[i] : p->maps[i];
}
