/*
 * gguf_internal.h - what the GGUF reader (gguf.c) and writer (gguf_write.c)
 * share: the in-memory form of one key/value pair. The reader fills it from
 * a file with owned copies of every string and array, the writer fills it
 * from setters, so gguf_writer_copy_kvs can copy any value type, including
 * the scalar types the public setters do not offer.
 */
#ifndef GGUF_INTERNAL_H
#define GGUF_INTERNAL_H

#include "grok.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_MAX_KEY 65535 /* keys may be longer than tensor names, but not absurdly */

/* One string of a string array: NUL-terminated, len excludes the NUL
 * (the string itself may hold NUL bytes). */
typedef struct {
    const char *p;
    size_t len;
} gguf_str;

typedef struct {
    char *key; /* NUL-terminated, no embedded NUL */
    size_t key_len;
    gguf_value_type type;
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
    char *str; /* GGUF_TYPE_STRING: NUL-terminated copy */
    size_t str_len;
    gguf_value_type arr_type; /* GGUF_TYPE_ARRAY: element type and count */
    uint64_t arr_n;
    void *arr_data;     /* numeric elements, 64-byte aligned */
    gguf_str *arr_strs; /* string elements, pointing into arr_blob */
    char *arr_blob;
} gguf_kv;

/* Bytes of one element of a scalar type; 0 for string, array and unknown. */
size_t gguf_scalar_size(gguf_value_type t);
/* Releases what kv owns and zeroes it. */
void gguf_kv_clear(gguf_kv *kv);
/* Deep copy (the offset is kept); 0 on success, -1 when out of memory. */
int gguf_kv_copy(gguf_kv *dst, const gguf_kv *src);
/* The i-th kv of an opened file (its first split), or NULL. */
const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i);

#endif /* GGUF_INTERNAL_H */
