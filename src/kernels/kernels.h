/*
 * kernels.h - the numeric kernels of libgrok (internal).
 *
 * Weights stay in their file type and are read where they lie; kernels
 * turn rows of any computable type into f32 on the fly. Each type has a
 * scalar reference implementation here; faster variants (SIMD, quantized
 * activations) plug in behind the same table and are tested against it.
 */
#ifndef GROK_KERNELS_H
#define GROK_KERNELS_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "grok.h"

#define QK8_0 32
typedef struct {
    uint16_t d; /* f16 scale */
    int8_t qs[QK8_0];
} block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must match ggml's layout");

#define QK4_0 32
typedef struct {
    uint16_t d;            /* f16 scale */
    uint8_t qs[QK4_0 / 2]; /* element j: low nibble of qs[j]; element j+16: high nibble; value d*(q-8) */
} block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 must match ggml's layout");

/* k-quants: super-blocks of 256 values (ggml's QK_K) split into
 * sub-blocks whose scales are themselves quantized against one or two f16
 * super-block scales. Byte layouts are ggml's, so GGUF files carry them. */
#define QK_K 256

/* Q4_K: 8 sub-blocks of 32; value = d*sc*q - dmin*m with q 0..15 and a
 * 6-bit sc and m per sub-block packed into scales[12]: for j < 4, sc is the
 * low 6 bits of scales[j] and m those of scales[j+4]; for j >= 4, the low
 * nibbles of sc and m are the two nibbles of scales[j+4] and their top two
 * bits are the top two bits of scales[j-4] (sc) and scales[j] (m). In each
 * 64-value chunk, qs[32] holds the first 32 values in its low nibbles and
 * the next 32 in its high nibbles. */
typedef struct {
    uint16_t d, dmin; /* f16 */
    uint8_t scales[12];
    uint8_t qs[QK_K / 2];
} block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K must match ggml's layout");

/* Q5_K: Q4_K with q 0..31; the 5th bit of value l (0..31) of sub-block s
 * is bit s of qh[l]. */
typedef struct {
    uint16_t d, dmin; /* f16 */
    uint8_t scales[12];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K must match ggml's layout");

/* Q6_K: 16 sub-blocks of 16; value = d*scales[k]*(q-32), q 0..63. Per half
 * of 128 values (ql[64], qh[32], scales[8] each): value l < 32 takes the low
 * nibble of ql[l], l+32 that of ql[l+32], l+64 the high nibble of ql[l],
 * l+96 that of ql[l+32]; their top two bits are bits 0-1, 2-3, 4-5, 6-7 of
 * qh[l]. */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d; /* f16 */
} block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K must match ggml's layout");

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block. */
static inline void grok_kq_scale_min(const uint8_t *scales, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = scales[j] & 63, *m = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
        *m = (uint8_t)((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

/* Activations quantized once per matrix product for the integer dot
 * products (internal, never stored in a file): 32 int8 with an f32 scale,
 * and the sum of the 32 quants, which formats with an offset (q4_0's -8)
 * or a per-block minimum need. An f32 scale keeps the activation error to
 * the int8 rounding alone (ggml's q8_0 activations round the scale to f16). */
#define QKA 32
typedef struct {
    float d;
    int32_t sum;
    int8_t qs[QKA];
} block_q8a;
_Static_assert(sizeof(block_q8a) == 40, "block_q8a is 40 bytes");

/* What a block holding NaN or Inf becomes, in every encoder (q8_0, q4_0:
 * an f16 NaN scale, zero values) and in every variant of the activation
 * quantizer (below): the non-finite value is carried forward as NaN, so
 * every product it enters is NaN and the run-time check sees it, never
 * as finite garbage, and no float-to-int conversion meets it. */
#define GROK_FP16_NAN ((uint16_t)0x7e00)
static inline void grok_q8a_nonfinite(block_q8a *y) {
    y->d = __builtin_nanf("");
    y->sum = 0;
    for (int j = 0; j < QKA; j++) y->qs[j] = 0;
}

float grok_fp16_to_fp32(uint16_t h);
uint16_t grok_fp32_to_fp16(float f); /* round to nearest even */
float grok_bf16_to_fp32(uint16_t h);
uint16_t grok_fp32_to_bf16(float f); /* round to nearest even, NaN kept quiet */

/* Per-type kernels. Rows hold n elements (a multiple of the block size). */
typedef struct {
    /* dst[0..n) = the values of the row */
    void (*to_f32)(const void *src, float *dst, int64_t n);
    /* dst = the row encoded from src (ggml's reference rounding) */
    void (*from_f32)(const float *src, void *dst, int64_t n);
    /* sum_i row[i] * x[i], x in f32 */
    float (*dot_f32)(const void *row, const float *x, int64_t n);
} grok_type_kernels;

/* The k-quant encoders (kquants.c): a weighted least-squares search for
 * each sub-block's scale (and min), then the sub-block scales quantized
 * against the super-block's. Not ggml's search, but the same format. */
void grok_q4_K_from_f32(const float *src, void *dst, int64_t n);
void grok_q5_K_from_f32(const float *src, void *dst, int64_t n);
void grok_q6_K_from_f32(const float *src, void *dst, int64_t n);
/* The encoders that weigh each value's error by an importance matrix
 * (imx[0..n): the mean squared input of each value's column; grok
 * imatrix). Other types, or imx NULL: the type's from_f32. */
bool grok_type_takes_imatrix(uint32_t type);
/* Whether grok_from_f32_weighted can encode type at all. */
bool grok_type_can_encode(uint32_t type);
void grok_from_f32_weighted(uint32_t type, const float *src, void *dst, int64_t n, const float *imx);

/* NULL for types without kernels. These are the scalar references. */
const grok_type_kernels *grok_kernels_get(uint32_t type);

/* ---- kernel selection ----
 * The modes (grok_kernel_mode) are declared in grok.h. The process-wide
 * default is FAST; GROK_KERNELS=fast|exact|reference in the environment
 * sets it at start-up, grok_kernels_set_mode later. A runner whose mode is
 * GROK_KERNELS_DEFAULT follows it at every step; one given a mode (by
 * grok_model_params.kernels or grok_runner_set_kernel_mode) keeps it. */
void grok_kernels_set_mode(grok_kernel_mode mode);
/* The process-wide default (never GROK_KERNELS_DEFAULT). */
grok_kernel_mode grok_kernels_mode(void);
const char *grok_kernel_mode_name(grok_kernel_mode mode);
/* GROK_KERNELS from the environment, or GROK_KERNELS_DEFAULT when unset:
 * it overrides a model's parameters. */
grok_kernel_mode grok_kernels_env_mode(void);

/* CPU features found at run time (cpu.c). */
typedef struct {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512vbmi, avx_vnni, neon;
} grok_cpu_features;
const grok_cpu_features *grok_cpu(void);
/* grok_kernels_isa and grok_kernels_set_isa_cap are grok.h's. */

/* Instruction-set levels. The x86 ones are ordered: a cap keeps the
 * levels at or below it. AVX512VBMI is AVX512VNNI with the kernels that
 * need VBMI and BITALG (grok_dot_avx512vbmi), a level of its own so that
 * GROK_ISA=avx512vnni can measure the gather kernels on a CPU that has
 * both. NEON stands apart: on aarch64 any cap but scalar keeps it, and a
 * neon cap on x86 caps nothing. DEFAULT (0, what a zeroed grok_mat
 * holds) is the process's level, resolved where a kernel is chosen. */
typedef enum {
    GROK_ISA_DEFAULT = 0,
    GROK_ISA_SCALAR,
    GROK_ISA_AVX2,
    GROK_ISA_AVX512VNNI,
    GROK_ISA_AVX512VBMI,
    GROK_ISA_NEON,
    GROK_ISA_COUNT
} grok_isa;
/* Whether a resolved level runs the AVX2 kernels (the AVX-512 ones build on them). */
static inline bool grok_isa_has_avx2(grok_isa isa) {
    return isa >= GROK_ISA_AVX2 && isa <= GROK_ISA_AVX512VBMI;
}
/* "scalar", "avx2", "avx512vnni", "avx512vbmi", "neon" (DEFAULT: the
 * process's level's name). */
const char *grok_isa_name(grok_isa isa);
/* The level a name means; GROK_ISA_COUNT for an unknown name or NULL. */
grok_isa grok_isa_from_name(const char *name);
/* The level kernels for isa run at: DEFAULT gives the process's (the
 * CPU's best under grok_kernels_set_isa_cap and GROK_ISA, fixed at its
 * first use), any other the CPU's best under that cap. */
grok_isa grok_isa_resolve(grok_isa isa);
/* The level of a model loaded with cap (a grok_model_params.isa name;
 * NULL: the process's): GROK_ISA, when set, overrides cap. GROK_ISA_COUNT,
 * with err naming the name, for an unknown one. */
grok_isa grok_isa_for_model(const char *cap, char *err, size_t err_size);

/* Dot products of one weight row of n elements. */
typedef float (*grok_dot_f32_fn)(const void *row, const float *x, int64_t n);
/* Software prefetch for the SIMD dot products, which stream weight rows
 * once per token: asking for the bytes 2 KiB ahead raised 2-thread q8_0
 * generation from 15.6 to 22.4-24.6 tok/s on a 16-core Xeon (d_model 2048
 * model, grok bench; 4 and 8 KiB were no better). Prefetches never fault,
 * so running past the end of a row or mapping is harmless. */
#define GROK_PREFETCH_AHEAD 2048
#define GROK_PREFETCH(p) __builtin_prefetch((const char *)(p) + GROK_PREFETCH_AHEAD, 0, 3)

typedef float (*grok_dot_q8a_fn)(const void *row, const block_q8a *x, int64_t n);
/* The 8-bit dot of one weight row with nx >= 1 tokens at once:
 * out[t] = dot_q8a(row, x[t], n). Each weight block is loaded, and its
 * |w| and scale formed, once per group of tokens (4 with AVX2, 8 with
 * AVX-512) with the accumulators in registers, so batches cost far less
 * than nx single dots. Every variant does per token the same operations
 * in the same order as its own dot_q8a, so out[t] equals dot_q8a's result
 * bit for bit: a sequence's numbers do not depend on what it is batched
 * with (the server's continuous batching, chunked prefill). */
typedef void (*grok_dot_q8a_multi_fn)(const void *row, const block_q8a *const *x, int64_t nx, int64_t n,
                                      float *out);
/* Rewrites quantized activations in place into the form a dot_q8a_multi
 * takes (for a kernel that wants, say, unsigned quants), so that work is
 * done once per token and product rather than once per weight row. */
typedef void (*grok_q8a_prep_fn)(block_q8a *x, int64_t nblocks);
/* Row-interleaved ("packed") weights: groups of 8 consecutive rows
 * stored block column by block column, so one vector instruction works on
 * 8 rows at once and the per-block scale arithmetic (f16 scales, int to
 * float, multiply-add) is done once per 8 rows instead of once per row.
 * A group of 8 rows takes exactly the bytes of its 8 rows, so a packed
 * copy of a tensor has the tensor's size and the same offsets for rows
 * and experts; a column slice starting at column c0 starts 8 *
 * row_size(c0) bytes into each group. Per 32-column block b of a group:
 *   q4_0: uint16 d[8] (row r's f16 scale), then 4 chunks of 32 bytes:
 *         byte 4r+i of chunk c is row r's qs[4c+i] (low nibble: value
 *         4c+i, high nibble: value 16+4c+i). 144 bytes.
 *   q8_0: uint16 d[8], then 8 chunks of 32 bytes: byte 4r+i of chunk c is
 *         row r's quant 4c+i plus 128 (as an unsigned byte). 272 bytes.
 *   q4_K (per 256-column super-block): uint16 d[8], uint16 dmin[8], then
 *         scales[12][8] (byte 8j+r: row r's scales[j]), then 32 chunks of
 *         32 bytes: byte 4r+i of chunk k is row r's qs[4k+i] (so chunks
 *         8c..8c+7 carry sub-blocks 2c in their low nibbles and 2c+1 in
 *         their high ones). 1152 bytes.
 *   q5_K: q4_K's 1152 bytes, then 8 chunks of 32 bytes: byte 4r+i of
 *         chunk k is row r's qh[4k+i]. 1408 bytes.
 *   q6_K (per 256-column super-block): uint16 d[8], int8 scales[16][8]
 *         (byte 8j+r: row r's scales[j]), then 32 chunks of 32 bytes with
 *         byte 4r+i of chunk k row r's ql[4k+i], then 16 chunks with byte
 *         4r+i of chunk k row r's qh[4k+i]. So in half h, chunks 16h+j,
 *         16h+8+j of ql and 8h+j of qh (j < 8) carry values 4j..4j+3 of the
 *         half's four 32-value blocks. 1680 bytes.
 *   the i-quants (IQ2_XXS ... IQ1_M): per super-block, each field of the 8
 *         rows side by side (src/kernels/iq_packed.c has the layouts).
 * The packed form lives only in memory (built when a context is created,
 * see src/model/pack.c); files keep ggml's layout. */
#define GROK_PACK_ROWS 8
/* The version of the packed layouts above, kept in packed files
 * (src/model/packfile.c): change it whenever an existing type's layout
 * changes, so that files written before are refused, not misread. A type
 * that gains a layout needs no change (older files simply lack it). */
#define GROK_PACK_LAYOUT 1
/* out[t * 8 + r] = the 8-bit dot of row r of the packed group with x[t],
 * t < nx. Per token the operations are the same whatever nx, so a token's
 * results do not depend on its batch (as for dot_q8a_multi). */
typedef void (*grok_dot_x8_fn)(const uint8_t *group, const block_q8a *const *x, int64_t nx, int64_t n,
                               float *out);
/* Two packed groups at once (16 rows: group, and group + stride), out[t *
 * 16 + r]; each row's result equals dot_x8's bit for bit, so how groups
 * pair up (which depends on the thread count) changes no number. */
typedef void (*grok_dot_x16_fn)(const uint8_t *group, size_t stride, const block_q8a *const *x, int64_t nx,
                                int64_t n, float *out);
/* The 8 rows at rows, rows + row_bytes, ... (n columns each) to their packed group. */
void grok_pack_x8(grok_type type, const uint8_t *rows, size_t row_bytes, int64_t n, uint8_t *dst);
/* Whether type has a packed layout (grok_pack_x8 takes it). */
bool grok_pack_x8_type(grok_type type);

typedef struct {
    grok_dot_f32_fn dot_f32;             /* f32 activations */
    grok_dot_q8a_fn dot_q8a;             /* 8-bit activations; NULL when the type has no integer path */
    grok_dot_q8a_multi_fn dot_q8a_multi; /* NULL: call dot_q8a per token (its ISA has no multi) */
    grok_q8a_prep_fn multi_prep;         /* NULL: dot_q8a_multi takes x as grok_quantize_q8a leaves it;
                                  * else only x this has rewritten (and dot_q8a never does) */
    grok_dot_x8_fn dot_x8;               /* packed groups of 8 rows with 8-bit activations as
                            * grok_quantize_q8a leaves them; NULL: no packed path */
    grok_dot_x16_fn dot_x16;             /* NULL: groups go one at a time through dot_x8 */
} grok_dot_kernels;

/* Scalar reference dots (dot_q8a: exact integer sums per block). */
const grok_dot_kernels *grok_dot_reference(uint32_t type);
/* The dots the given mode uses for type at level isa (grok_isa_resolve's;
 * never NULL for a computable type); grok_dot_select at the process's. */
const grok_dot_kernels *grok_dot_select_isa(uint32_t type, grok_kernel_mode mode, grok_isa isa);
const grok_dot_kernels *grok_dot_select(uint32_t type, grok_kernel_mode mode);
/* x[0..n) to n/32 blocks (n a multiple of 32): d = max|x|/127, q = round(x/d)
 * (to nearest, ties to even), sum = the sum of the 32 q; a block whose
 * max|x| is below 2^-120 (where 127/max could overflow) becomes zeros, a
 * block holding NaN or Inf becomes grok_q8a_nonfinite's (d NaN, zeros).
 * The scalar definition; every variant gives the same bytes for any x. */
void grok_quantize_q8a_ref(const float *x, block_q8a *y, int64_t n);
/* grok_quantize_q8a_ref by the fastest variant of level isa (the
 * process's for grok_quantize_q8a): every matrix product with 8-bit
 * activations starts here, and the scalar loop (libm fmaxf and lrintf per
 * element) cost 1-2 % of a token. */
void grok_quantize_q8a_isa(grok_isa isa, const float *x, block_q8a *y, int64_t n);
void grok_quantize_q8a(const float *x, block_q8a *y, int64_t n);
/* The AVX2 variant (x86_avx2.c); only on a CPU with AVX2. */
void grok_quantize_q8a_avx2(const float *x, block_q8a *y, int64_t n);
/* The NEON variant (arm_neon.c); the scalar one where the build is not aarch64. */
void grok_quantize_q8a_neon(const float *x, block_q8a *y, int64_t n);

/* SIMD variants (NULL members where the CPU or the build has none). */
void grok_dot_avx2(uint32_t type, grok_dot_kernels *out);
void grok_dot_avx512(uint32_t type, grok_dot_kernels *out);
/* grok_dot_avx512 with the kernels that need AVX-512 VBMI and BITALG too
 * (the packed IQ2_XXS, IQ3_XXS and IQ3_S dots: signs and codebooks by byte
 * permutes; grok_cpu()->avx512vbmi says both are there): the FAST
 * kernels of level GROK_ISA_AVX512VBMI. */
void grok_dot_avx512vbmi(uint32_t type, grok_dot_kernels *out);
void grok_dot_neon(uint32_t type, grok_dot_kernels *out);

/* A low-rank adapter that rides on a matrix (LoRA applied at inference
 * without merging): every grok_matmul / grok_matmul_ops product with the
 * matrix then adds B' (A x), with A [rank][cols] and B' = scale * B stored
 * transposed as bt [rank][rows], both f32, after the base product (which
 * keeps its own kernels). Views of the matrix slice it along. a == NULL:
 * no adapter. */
typedef struct {
    const float *a;  /* A: row k of this view at a + k * lda */
    const float *bt; /* B'^T: row k at bt + k * ldb, starting at this view's first row */
    int64_t rank, lda, ldb;
    size_t w_stride;             /* bytes between the weight's matrices (experts); 0: one */
    int64_t a_stride, bt_stride; /* floats between the experts' A and bt */
} grok_mat_lora;

/* A weight matrix as stored: rows of cols elements, each row row_bytes
 * long and contiguous (ggml's ne[0] = cols, ne[1] = rows). */
typedef struct {
    const uint8_t *data;
    grok_type type;
    int64_t rows;
    int64_t cols;
    size_t row_bytes;
    /* The same rows packed (see GROK_PACK_ROWS), or NULL. Used by FAST-mode
     * products when the kernels have a dot_x8; the other modes read data. */
    const uint8_t *packed;
    grok_mat_lora lora; /* an adapter applied with every product, or none (lora.a NULL) */
    /* The level of every kernel that reads these rows: a model's weights
     * carry the model's (grok_model_params.isa); DEFAULT: the process's. */
    grok_isa isa;
} grok_mat;
/* Whether FAST-mode products would read w packed: the type has a packed
 * layout and a dot_x8 at w's level, and the rows divide into groups (what
 * the packers and the packed file test before packing w). */
bool grok_mat_packable(const grok_mat *w);

/* Views of part of a matrix, keeping the packed copy where the part still
 * starts and ends on groups of 8 rows. */
static inline grok_mat grok_mat_offset(grok_mat w, size_t bytes) { /* e.g. the e-th expert */
    w.data += bytes;
    if (w.packed) w.packed += bytes;
    if (w.lora.a && w.lora.w_stride) { /* the adapter of that expert */
        const int64_t e = (int64_t)(bytes / w.lora.w_stride);
        w.lora.a += e * w.lora.a_stride, w.lora.bt += e * w.lora.bt_stride;
    }
    return w;
}
static inline grok_mat grok_mat_rows(grok_mat w, int64_t r0, int64_t nrows) {
    w.data += (size_t)r0 * w.row_bytes;
    if (w.packed && (r0 % GROK_PACK_ROWS == 0 && nrows % GROK_PACK_ROWS == 0))
        w.packed += (size_t)r0 * w.row_bytes;
    else
        w.packed = NULL;
    if (w.lora.a) w.lora.bt += r0;
    w.rows = nrows;
    return w;
}
/* Columns [c0, c0 + ncols); c0 on a block boundary. Rows keep their stride. */
static inline grok_mat grok_mat_cols(grok_mat w, int64_t c0, int64_t ncols) {
    const size_t off = (size_t)grok_type_row_size(w.type, c0);
    w.data += off;
    if (w.packed) w.packed += GROK_PACK_ROWS * off;
    if (w.lora.a) w.lora.a += c0;
    w.cols = ncols;
    return w;
}

/* Y[t][r] = sum_c W[r][c] * X[t][c] for t < n_tok, r < W->rows.
 * X is [n_tok][ldx] (ldx >= cols), Y is [n_tok][ldy]. Rows are split across
 * the pool's threads; each weight row is read once for all tokens. The
 * kernels are those of grok_kernels_mode(); the _in variants take the
 * mode (a runner's) instead. A matrix carrying an adapter (w->lora) gets
 * B' (A x) added, per token, by grok_matmul_tok and grok_matmul_t. */
void grok_matmul(grok_threadpool *pool, const grok_mat *w, const float *x, int64_t ldx, float *y, int64_t ldy,
                 int64_t n_tok);

/* Several products run in one pass of the pool: one wake-up and one
 * barrier instead of one per product, and products whose inputs are the
 * same (x, ldx, cols and n_tok) quantize it once. Each product's rows are
 * split across the threads as grok_matmul splits them, so every result
 * equals grok_matmul's bit for bit. More than GROK_MATMUL_MAX_OPS
 * products go in several passes. */
#define GROK_MATMUL_MAX_OPS 16
typedef struct {
    const grok_mat *w;
    const float *x;
    int64_t ldx;
    float *y;
    int64_t ldy;
    int64_t n_tok;
} grok_matmul_op;
void grok_matmul_ops(grok_threadpool *pool, const grok_matmul_op *ops, int n_ops);
void grok_matmul_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_mat *w, const float *x,
                    int64_t ldx, float *y, int64_t ldy, int64_t n_tok);
void grok_matmul_ops_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_matmul_op *ops, int n_ops);

/* ---- products for backward passes (matmul_t.c) ----
 * dx[t][c] += sum_k dy[t][k] * W[k][c] for t < n_tok, k < W->rows,
 * c < W->cols: the product with W's transpose, read from W in its stored
 * type (any type with to_f32; f32 rows are read in place). dy is
 * [n_tok][lddy] (lddy >= rows), dx is [n_tok][lddx]. Each thread owns
 * whole blocks of columns and dequantizes GROK_MATMUL_T_ROWS rows of them
 * at a time, so no f32 copy of W is ever made. Every dx element is one
 * chain of fused multiply-adds over k = 0, 1, ... starting from its value
 * in dx, in every variant: the same bits for any thread count, ISA, mode
 * and any set of other tokens in the call. dx must not overlap dy or W. */
#define GROK_MATMUL_T_ROWS 32
void grok_matmul_t(grok_threadpool *pool, const grok_mat *w, const float *dy, int64_t lddy, float *dx,
                   int64_t lddx, int64_t n_tok);
void grok_matmul_t_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_mat *w, const float *dy,
                      int64_t lddy, float *dx, int64_t lddx, int64_t n_tok);
/* The chain of grok_matmul_t on one tile: dx[t][c] = the fma chain over
 * k < kt of dy[t][k] * w[k*ldw + c], for t < nt <= 4, c < nc. Variants by
 * level (SCALAR = fmaf; AVX512VBMI's is AVX512VNNI's); NULL where this CPU
 * or build has none, or for DEFAULT. All give the same bits (tests
 * compare). */
typedef void (*grok_fma_tile_fn)(const float *w, int64_t ldw, int64_t kt, const float *dy, int64_t lddy,
                                 int64_t nt, float *dx, int64_t lddx, int64_t nc);
grok_fma_tile_fn grok_matmul_t_tile(grok_isa isa);
/* y[t][r] = sum_c W[r][c] * x[t][c] (overwriting y) by the chains of
 * grok_matmul_t: W's rows dequantized GROK_MATMUL_T_ROWS at a time by the
 * type's to_f32, each y element one chain of fused multiply-adds over the
 * columns in order: f32 activations, the same bits for any thread count,
 * ISA and batch. The EXACT kernels of grok_matmul compute the same product
 * with the type's f32 dot, which for quantized types is the scalar
 * reference (the SIMD dots are 8-bit); this is the fast f32 one. */
void grok_matmul_tiles(grok_threadpool *pool, const grok_mat *w, const float *x, int64_t ldx, float *y,
                       int64_t ldy, int64_t n_tok);
void grok_matmul_tiles_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_mat *w, const float *x,
                          int64_t ldx, float *y, int64_t ldy, int64_t n_tok);
/* y[t][r] = dot(M[r], x[t]) as grok_matmul computes it (the mode's
 * dot_f32), with the threads splitting the tokens instead of the rows:
 * for matrices of a few rows (LoRA's A) applied to many tokens. */
void grok_matmul_tok(grok_threadpool *pool, const grok_mat *m, const float *x, int64_t ldx, float *y,
                     int64_t ldy, int64_t n_tok);
void grok_matmul_tok_in(grok_threadpool *pool, grok_kernel_mode mode, const grok_mat *m, const float *x,
                        int64_t ldx, float *y, int64_t ldy, int64_t n_tok);

/* ---- attention and vector math (attention.c, x86_attention.c) ----
 * Attention over one KV head's cache for the nq query heads that share it
 * (grouped-query attention), so each K and V row is read once per group.
 * Cache rows are f32 or f16 (kv_type), row s at k + s * stride bytes, D
 * elements each; query g is q[g*D .. g*D+D).
 *   scores: out[g*ld + s] = dot(K_s, q_g), s < n, g < nq
 *   wsum:   out[g*D + i] = sum over s < n of w[g*ld + s] * V_s[i]
 * Each (s, g) score and each (g, i) output is computed by the same
 * operations in the same order whichever heads and positions a call
 * covers, so splitting a group's heads across threads, or the batch a
 * token is in, cannot change its result.
 *   softcap:  x = cap * tanh(x * scale / cap)
 *   exp_sum:  x = exp(x - mx) (-inf gives 0); returns the sum of the results
 *   tanh:     x = tanh(x)
 *   gelu_mul: g = gelu_tanh(g) * u, gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * The elementwise functions give each element a result that does not
 * depend on n or on where the element lies in the array. */
typedef struct {
    void (*scores)(const uint8_t *k, size_t stride, grok_type kv_type, const float *q, int64_t nq, int64_t D,
                   int64_t n, float *out, int64_t ld);
    void (*wsum)(const uint8_t *v, size_t stride, grok_type kv_type, const float *w, int64_t ld, int64_t nq,
                 int64_t D, int64_t n, float *out);
    void (*softcap)(float *x, int64_t n, float scale, float cap);
    double (*exp_sum)(float *x, int64_t n, float mx);
    void (*tanh)(float *x, int64_t n);
    void (*gelu_mul)(float *g, const float *u, int64_t n);
} grok_vec_kernels;
/* Scalar references (libm tanhf/expf, the reference dots). */
const grok_vec_kernels *grok_vec_reference(void);
/* What the mode uses at level isa (grok_isa_resolve's; the process's for
 * grok_vec_select): the reference in REFERENCE mode or without SIMD, else
 * the level's (FAST and EXACT alike). */
const grok_vec_kernels *grok_vec_select_isa(grok_kernel_mode mode, grok_isa isa);
const grok_vec_kernels *grok_vec_select(grok_kernel_mode mode);
/* AVX2/FMA/F16C variants; false (out untouched) where the build or the
 * CPU has none. */
bool grok_vec_avx2(grok_vec_kernels *out);

#endif
