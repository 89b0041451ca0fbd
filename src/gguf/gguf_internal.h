/*
 * gguf_internal.h - what the GGUF reader (gguf.c) and writer (gguf_write.c)
 * share: the in-memory form of one key/value pair. The reader fills it from
 * a file with owned copies of every string and array, the writer fills it
 * from setters, so grok_gguf_writer_copy_kvs can copy any value type, including
 * the scalar types the public setters do not offer.
 */
#ifndef GGUF_INTERNAL_H
#define GGUF_INTERNAL_H

#include "grok.h"

#define GROK_GGUF_MAGIC "GGUF"
#define GROK_GGUF_MAX_KEY 65535 /* keys may be longer than tensor names, but not absurdly */

/* One string of a string array: NUL-terminated, len excludes the NUL
 * (the string itself may hold NUL bytes). */
typedef struct {
    const char *p;
    size_t len;
} grok_gguf_str;

typedef struct {
    char *key; /* NUL-terminated, no embedded NUL */
    size_t key_len;
    grok_gguf_value_type type;
    uint64_t offset; /* byte offset of the value in its file (reader only; for messages) */
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        bool b;
        uint64_t u64;
        int64_t i64;
        double f64;
    } v;
    char *str; /* GROK_GGUF_TYPE_STRING: NUL-terminated copy */
    size_t str_len;
    grok_gguf_value_type arr_type; /* GROK_GGUF_TYPE_ARRAY: element type and count */
    uint64_t arr_n;
    void *arr_data;          /* numeric elements, 64-byte aligned */
    grok_gguf_str *arr_strs; /* string elements, pointing into arr_blob */
    char *arr_blob;
} grok_gguf_kv;

/* Bytes of one element of a scalar type; 0 for string, array and unknown. */
size_t grok_gguf_scalar_size(grok_gguf_value_type t);
/* Releases what kv owns and zeroes it. */
void grok_gguf_kv_clear(grok_gguf_kv *kv);
/* Deep copy (the offset is kept); 0 on success, -1 when out of memory. */
int grok_gguf_kv_copy(grok_gguf_kv *dst, const grok_gguf_kv *src);
/* The i-th kv of an opened file (its first split), or NULL. */
const grok_gguf_kv *grok_gguf_kv_at(const grok_gguf_file *f, int64_t i);

/* Raw pieces of one file (pieces.c): NAME.gguf.part1of8 .. part8of8,
 * NAME.gguf-split-a, -b, ... */
typedef struct grok_gguf_pieces grok_gguf_pieces;
/* For a path named as the first piece, finds and maps all pieces: returns
 * 1 with *out set; 0 when path is not named as a piece; -1 with err (a
 * missing piece, a later piece given, a map failure). */
int grok_gguf_pieces_open(const char *path, grok_gguf_pieces **out, char *err, size_t err_size);
void grok_gguf_pieces_close(grok_gguf_pieces *p);
int grok_gguf_pieces_count(const grok_gguf_pieces *p); /* 0 for NULL */
uint64_t grok_gguf_pieces_size(const grok_gguf_pieces *p);
const char *grok_gguf_pieces_path(const grok_gguf_pieces *p, int i);
/* The bytes readable in place from the start: the joined file, or the
 * first piece when the pieces could not be joined. */
const uint8_t *grok_gguf_pieces_head(const grok_gguf_pieces *p, uint64_t *len);
/* n bytes at off of the joined file: in place, or (crossing a piece
 * boundary of unjoined pieces) a copy the pieces own; NULL with err when out
 * of memory. */
const void *grok_gguf_pieces_at(grok_gguf_pieces *p, uint64_t off, uint64_t n, char *err, size_t err_size);
uint64_t grok_gguf_pieces_copied(const grok_gguf_pieces *p); /* bytes copied so far; 0 for NULL */
/* Which piece a pointer into the pieces' maps lies in, and its offset in
 * that piece: 0, or -1 when it lies in a copy (across a boundary). */
int grok_gguf_pieces_locate(const grok_gguf_pieces *p, const void *ptr, int *piece, uint64_t *offset);
/* Piece i's bytes in the address space, and its length. */
const uint8_t *grok_gguf_pieces_map(const grok_gguf_pieces *p, int i, uint64_t *len);

/* The files an opened model's bytes lie in, in order: each split, or each
 * raw piece of a split cut into pieces (pieces.c). */
int32_t grok_gguf_n_files(const grok_gguf_file *f);
/* File i's path and size. */
const char *grok_gguf_file_path(const grok_gguf_file *f, int32_t i, uint64_t *size);
/* Where a pointer into an opened model's mappings lies: the file's index
 * (grok_gguf_n_files), its path and the byte offset in it; bytes that run
 * past that file's end go on at offset 0 of file + 1 (the next piece). 0 on
 * success, -1 when p is in none of the mappings (a buffer of the caller's,
 * a tensor copied across a piece boundary). */
int grok_gguf_locate(const grok_gguf_file *f, const void *p, int32_t *file, const char **path,
                     uint64_t *offset);

/* Split i's path, size and the start of its data section. */
void grok_gguf_split_info(const grok_gguf_file *f, int32_t i, const char **path, uint64_t *size,
                          uint64_t *data_start);

/* madvise over [p, p + len) of the mappings (whole pages inside it), or
 * over every mapping when p is NULL; advice only, errors ignored. */
void grok_gguf_advise(const grok_gguf_file *f, const void *p, size_t len, int advice);
/* The largest read-ahead window of the devices the files lie on (what a
 * fault on the mapping reads around the page it needs, unless MADV_RANDOM):
 * sysfs's read_ahead_kb of each file's device, else the kernel's default
 * 128 KiB. */
int64_t grok_gguf_read_ahead_bytes(const grok_gguf_file *f);
/* Drops the page cache of every file (split or piece; POSIX_FADV_DONTNEED): pages
 * no process has mapped leave memory. */
void grok_gguf_drop_cache(const grok_gguf_file *f);

#endif /* GGUF_INTERNAL_H */
