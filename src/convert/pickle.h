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

#define CKPT_MAX_DIMS 8

typedef enum { CKPT_F32 = 0, CKPT_I8 = 1, CKPT_BF16 = 2 } ckpt_dtype;

/* One numpy array of a checkpoint file: C order, little endian. */
typedef struct {
    ckpt_dtype dtype;
    int32_t n_dims;
    int64_t shape[CKPT_MAX_DIMS];
    int64_t n_elements;
    uint64_t offset; /* of the first payload byte in the file */
    uint64_t nbytes; /* n_elements * element size, checked against the pickle */
} ckpt_array;

/* What one file holds: a plain array (quantized false, in `weight`) or a
 * QuantizedWeight8bit (weight int8, scales bf16). */
typedef struct {
    bool quantized;
    ckpt_array weight;
    ckpt_array scales;
    uint64_t file_size;
} ckpt_entry;

size_t ckpt_dtype_size(ckpt_dtype t);
const char *ckpt_dtype_name(ckpt_dtype t);

/* Parses the pickle of the file at path (payloads skipped, never read).
 * Returns 0, or -1 with "PATH: byte OFF: what" in err. */
int ckpt_pickle_parse_file(const char *path, ckpt_entry *out, char *err, size_t err_size);
/* The same with a parser's memory reused from file to file (a checkpoint
 * has hundreds): create one, parse any number of files, free it. */
typedef struct ckpt_parser ckpt_parser;
ckpt_parser *ckpt_parser_create(void);
void ckpt_parser_free(ckpt_parser *p);
int ckpt_parser_parse_file(ckpt_parser *p, const char *path, ckpt_entry *out, char *err,
                           size_t err_size);
/* The same over bytes in memory; name is used in messages. */
int ckpt_pickle_parse_mem(const char *name, const uint8_t *data, size_t len, ckpt_entry *out,
                          char *err, size_t err_size);

/* Reads a bf16 array's payload (scales) into dst (n_elements values) from
 * the open file fd and rejects NaN or Inf, naming the byte offset. */
int ckpt_read_scales(int fd, const char *name, const ckpt_array *a, uint16_t *dst, char *err,
                     size_t err_size);
/* The same check over a payload already in memory at file offset base. */
int ckpt_check_scales(const char *name, const ckpt_array *a, const uint16_t *vals, char *err,
                      size_t err_size);

/* Reads exactly n bytes at off (retrying short reads); -1 on error/EOF. */
int ckpt_pread_full(int fd, void *dst, size_t n, uint64_t off);

#endif
