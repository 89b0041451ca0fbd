/*
 * file.c - grok_read_file of file.h, through the growing buffer of buf.h
 * (a pipe has no size to ask for in advance).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/file.h"

char *grok_read_file(const char *path, size_t *len, char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    grok_strbuf b = {0};
    char chunk[1 << 16];
    size_t r;
    while (!b.oom && (r = fread(chunk, 1, sizeof chunk, f)) > 0) grok_strbuf_add(&b, chunk, r);
    const int bad = ferror(f), e = errno;
    fclose(f);
    if (bad || b.oom) {
        snprintf(err, err_size, "%s: %s", path, b.oom ? "out of memory" : e ? strerror(e) : "read error");
        free(b.a);
        return NULL;
    }
    return grok_strbuf_take(&b, len);
}
