/*
 * pickle.h - the strict reader of the official Grok-1 checkpoint files
 * (ckpt-0/tensorNNNNN_000). Each file is a Python pickle (protocol 4, as
 * pickle.dump wrote it) of either a numpy array or a
 * __main__.QuantizedWeight8bit holding an int8 `weight` and an
 * ml_dtypes.bfloat16 `scales` array. The reader is an allowlist
 * interpreter: it understands exactly the opcodes and globals such files
 * use, executes nothing, and reports anything else as an error naming the
 * file and byte offset. Array payloads are not read: only their offset and
 * size are recorded, so that the converter can stream them.
 */
#ifndef GROK_CONVERT_PICKLE_H
#define GROK_CONVERT_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GROK_CKPT_MAX_DIMS 8

typedef enum { GROK_CKPT_F32 = 0, GROK_CKPT_I8 = 1, GROK_CKPT_BF16 = 2 } grok_ckpt_dtype;

/* One numpy array of a checkpoint file: C order, little endian. */
typedef struct {
    grok_ckpt_dtype dtype;
    int32_t n_dims;
    int64_t shape[GROK_CKPT_MAX_DIMS];
    int64_t n_elements;
    uint64_t offset; /* of the first payload byte in the file */
    uint64_t nbytes; /* n_elements * element size, checked against the pickle */
} grok_ckpt_array;

/* What one file holds: a plain array (quantized false, in `weight`) or a
 * QuantizedWeight8bit (weight int8, scales bf16). */
typedef struct {
    bool quantized;
    grok_ckpt_array weight;
    grok_ckpt_array scales;
    uint64_t file_size;
} grok_ckpt_entry;

size_t grok_ckpt_dtype_size(grok_ckpt_dtype t);
const char *grok_ckpt_dtype_name(grok_ckpt_dtype t);

/* Parses the pickle of the file at path (payloads skipped, never read).
 * Returns 0, or -1 with "PATH: byte OFF: what" in err. */
int grok_ckpt_pickle_parse_file(const char *path, grok_ckpt_entry *out, char *err, size_t err_size);
/* The same with a parser's memory reused from file to file (a checkpoint
 * has hundreds): create one, parse any number of files, free it. */
typedef struct grok_ckpt_parser grok_ckpt_parser;
grok_ckpt_parser *grok_ckpt_parser_create(void);
void grok_ckpt_parser_free(grok_ckpt_parser *p);
int grok_ckpt_parser_parse_file(grok_ckpt_parser *p, const char *path, grok_ckpt_entry *out, char *err,
                                size_t err_size);
/* The same over bytes in memory; name is used in messages. */
int grok_ckpt_pickle_parse_mem(const char *name, const uint8_t *data, size_t len, grok_ckpt_entry *out,
                               char *err, size_t err_size);

/* Reads a bf16 array's payload (scales) into dst (n_elements values) from
 * the open file fd and rejects NaN or Inf, naming the byte offset. */
int grok_ckpt_read_scales(int fd, const char *name, const grok_ckpt_array *a, uint16_t *dst, char *err,
                          size_t err_size);
/* The same check over a payload already in memory at file offset base. */
int grok_ckpt_check_scales(const char *name, const grok_ckpt_array *a, const uint16_t *vals, char *err,
                           size_t err_size);

/* Reads exactly n bytes at off (retrying short reads); -1 on error/EOF. */
int grok_ckpt_pread_full(int fd, void *dst, size_t n, uint64_t off);

#endif
