/*
 * convert.c - the checkpoint walker behind `grok convert`. It parses every
 * ckpt-0/tensorNNNNN_000 pickle (payloads untouched), infers the shapes,
 * checks each file fits its slot, declares the GGUF tensors, and then
 * streams each payload through a bounded window into the GGUF writer.
 *
 * Facts of the official format (xai-org/grok-1 checkpoint.py, model.py):
 * files follow the sorted order of parameter paths, so layers come in
 * lexicographic order of their index (0, 1, 10, 11, ..., 2, 20, ...); each
 * layer is 12 files: moe/linear, moe/linear_1, moe/linear_v,
 * multi_head_attention/key, /linear, /query, /value, rms_norm, rms_norm_1,
 * rms_norm_2, rms_norm_3, router/w. Matrices are stored [in, out] (experts
 * [E, in, out]) as int8 with bf16 scales of shape [..., S, out]: the input
 * rows fall into S contiguous blocks (S = 8 where the official code shards
 * the input dimension over 8 devices: attention output and moe/linear_1;
 * S = 1 elsewhere), and the weight is weight.astype(bf16) * scales, a bf16
 * product. GGUF wants each output row contiguous, so matrices are
 * transposed: row j of a GGUF tensor is column j of the official one.
 *
 * Values: q8_0 keeps the official int8 values and uses the scale as the
 * block's f16 d wherever it is exact in f16 (bf16 has 3 fewer mantissa bits,
 * so only the range can fail). f32 stores the exact product int8 * scale
 * (exact in f32: 8 + 8 significant bits), i.e. what q8_0 dequantizes to;
 * bf16 rounds that product to nearest even, which is bit for bit the bf16
 * product the official code computes; f16 rounds it to nearest even.
 */
#include "convert/convert.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/pickle.h"
#include "model/model.h"
#include "model/quantize.h"
#include "kernels/kernels.h"

#define SLOTS_PER_LAYER 12
/* Output buffers: OUT_BUFS of OUT_CHUNK bytes (or one output row when that
 * is larger). Small enough to still be in cache when the writer thread
 * copies them into the page cache (8 MB buffers made that copy ~3x
 * dearer); several, so the converting thread rarely waits for the writer
 * to be scheduled on a busy machine. */
#define OUT_CHUNK (UINT64_C(1) << 20)
#define OUT_BUFS 4
/* chunks of less input than this are converted by the calling thread */
#define PAR_MIN_BYTES (UINT64_C(512) << 10)
#define COL_GROUP 64
/* qcols rows are padded so that the 64 rows a transpose writes at once do
 * not share a handful of cache sets when `in` is a power of two */
#define QCOL_LD(in) ((in) + 64)

enum {
    S_GATE,   /* moe/linear      [E, d, ff]  -> ffn_gate_exps */
    S_DOWN,   /* moe/linear_1    [E, ff, d]  -> ffn_down_exps */
    S_UP,     /* moe/linear_v    [E, d, ff]  -> ffn_up_exps */
    S_K,      /* key             [d, kv*hd]  -> attn_k */
    S_O,      /* linear          [h*hd, d]   -> attn_output */
    S_Q,      /* query           [d, h*hd]   -> attn_q */
    S_V,      /* value           [d, kv*hd]  -> attn_v */
    S_NORM0,  /* rms_norm        -> attn_norm */
    S_NORM1,  /* rms_norm_1      -> attn_output_norm */
    S_NORM2,  /* rms_norm_2      -> ffn_norm */
    S_NORM3,  /* rms_norm_3      -> layer_output_norm */
    S_ROUTER, /* router/w        [d, E] -> ffn_gate_inp */
};

static const char *const SLOT_GGUF[SLOTS_PER_LAYER] = {
    "ffn_gate_exps", "ffn_down_exps", "ffn_up_exps",      "attn_k",   "attn_output",       "attn_q",
    "attn_v",        "attn_norm",     "attn_output_norm", "ffn_norm", "layer_output_norm", "ffn_gate_inp"};

static const char *const SLOT_OFFICIAL[SLOTS_PER_LAYER] = {"moe/linear",
                                                           "moe/linear_1",
                                                           "moe/linear_v",
                                                           "multi_head_attention/key",
                                                           "multi_head_attention/linear",
                                                           "multi_head_attention/query",
                                                           "multi_head_attention/value",
                                                           "rms_norm",
                                                           "rms_norm_1",
                                                           "rms_norm_2",
                                                           "rms_norm_3",
                                                           "router/w"};

grok_convert_params grok_convert_default_params(void) {
    const grok_hparams g = grok_hparams_grok1();
    grok_convert_params p = {0};
    p.name = "Grok-1";
    p.type = GROK_TYPE_Q8_0;
    p.embd_type = GROK_TYPE_F32;
    p.n_heads = g.n_heads;
    p.n_kv_heads = g.n_kv_heads;
    p.head_dim = 0; /* derived from the query's shape (Grok-1: 6144 / 48 = 128) */
    p.n_ctx = g.n_ctx_train;
    p.n_experts_used = g.n_experts_used;
    p.rope_base = g.rope_base;
    p.norm_eps = g.norm_eps;
    p.embedding_scale = g.embedding_scale;
    p.logit_scale = g.logit_scale;
    p.attn_scale = g.attn_scale;
    p.softcap = g.attn_softcap;
    return p;
}

/* ---- one output tensor's plan ---- */
typedef struct {
    char name[GROK_GGUF_MAX_NAME + 1];
    int file; /* index into the entries */
    grok_type type;
    int32_t n_dims;
    int64_t ne[GROK_GGUF_MAX_DIMS];
    bool transpose;  /* rows are columns of [in, out] matrices */
    int64_t n_mat;   /* matrices (experts) */
    int64_t in, out; /* per matrix, official orientation (transpose) or rows x cols */
} plan;

/* One conversion thread's scratch and counters (summed at the end). */
typedef struct {
    int8_t *qcols; /* COL_GROUP transposed int8 rows, QCOL_LD apart */
    float *v;      /* a row of values */
    float *x;      /* a gathered f32 column */
    int64_t q8_blocks, q8_inexact, q8_straddle;
} tscratch;

typedef struct {
    const grok_convert_params *p;
    grok_convert_stats *st;
    char *err;
    size_t err_size;
    char **paths;
    grok_ckpt_entry *ent;
    int n_files;
    plan *plans;
    int n_plans;
    grok_gguf_writer *w;
    uint64_t window;
    uint64_t total_in, done_in;
    /* buffers */
    uint8_t *win;          /* checkpoint window */
    uint16_t *scales;      /* one matrix's scales */
    grok_threadpool *pool; /* NULL: one thread converts */
    int nth;
    tscratch *ts; /* nth of them */
    /* output: a ring; obuf[ocur] fills while the writer thread writes the
     * wcount buffers queued from whead on */
    uint8_t *obuf[OUT_BUFS];
    size_t olen[OUT_BUFS];
    size_t ocap, out_len;
    int ocur, whead, wcount;
    pthread_t wth;
    bool wth_started;
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    bool wquit, wfailed;
    char werr[GROK_ERR_SIZE];
} conv;

static int errf(conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int errf(conv *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->err_size, fmt, ap);
    va_end(ap);
    return -1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds tensor00000_000 .. tensorN-1_000 and nothing that breaks the
 * sequence. */
static int list_files(conv *c) {
    const char *dir = c->p->ckpt_dir;
    DIR *d = opendir(dir);
    if (!d) return errf(c, "%s: cannot open checkpoint directory: %s", dir, strerror(errno));
    int64_t max_idx = -1, count = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned idx, shard;
        char tail;
        if (sscanf(de->d_name, "tensor%5u_%3u%c", &idx, &shard, &tail) != 2 || strlen(de->d_name) != 15)
            continue;
        if (shard != 0) {
            closedir(d);
            return errf(c, "%s/%s: shard %u: only single-host checkpoints (_000) exist", dir, de->d_name,
                        shard);
        }
        count++;
        if ((int64_t)idx > max_idx) max_idx = idx;
    }
    closedir(d);
    if (count == 0) return errf(c, "%s: no tensorNNNNN_000 files: not a Grok-1 ckpt-0 directory", dir);
    if (max_idx + 1 != count)
        return errf(
            c, "%s: %" PRId64 " tensor files but the highest is tensor%05" PRId64 "_000: files are missing",
            dir, count, max_idx);
    if (count < 2 + SLOTS_PER_LAYER || (count - 2) % SLOTS_PER_LAYER)
        return errf(c, "%s: %" PRId64 " tensor files; 2 + 12 per layer expected", dir, count);
    c->n_files = (int)count;
    c->paths = calloc((size_t)count, sizeof *c->paths);
    c->ent = calloc((size_t)count, sizeof *c->ent);
    if (!c->paths || !c->ent) return errf(c, "out of memory");
    for (int k = 0; k < count; k++) {
        size_t n = strlen(dir) + 32;
        c->paths[k] = malloc(n);
        if (!c->paths[k]) return errf(c, "out of memory");
        snprintf(c->paths[k], n, "%s/tensor%05d_000", dir, k);
    }
    return 0;
}

static int check_dims(conv *c, int f, const grok_ckpt_array *a, const char *what, int n_dims,
                      const int64_t *want) {
    bool ok = a->n_dims == n_dims;
    for (int k = 0; ok && k < n_dims; k++) ok = a->shape[k] == want[k];
    if (ok) return 0;
    char got[160] = "", exp[160] = "";
    for (int k = 0; k < a->n_dims; k++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRId64, k ? "," : "", a->shape[k]);
    for (int k = 0; k < n_dims; k++)
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%" PRId64, k ? "," : "", want[k]);
    return errf(c, "%s: byte %" PRIu64 ": %s has shape [%s], its slot needs [%s]", c->paths[f], a->offset,
                what, got, exp);
}

/* Checks one file against its slot: plain f32 of the given shape, or a
 * quantized matrix (weight int8 of the shape, scales [.., S, out] with S
 * dividing in). Returns S (1 for plain arrays). */
static int64_t check_slot(conv *c, int f, const char *slot, bool matrix, int n_dims, const int64_t *shape,
                          int64_t want_S) {
    const grok_ckpt_entry *e = &c->ent[f];
    if (!matrix || !e->quantized) {
        if (e->quantized)
            return errf(c, "%s: %s is a QuantizedWeight8bit, a float32 array expected", c->paths[f], slot);
        if (e->weight.dtype != GROK_CKPT_F32)
            return errf(c, "%s: byte %" PRIu64 ": %s is %s, float32 expected", c->paths[f], e->weight.offset,
                        slot, grok_ckpt_dtype_name(e->weight.dtype));
        return check_dims(c, f, &e->weight, slot, n_dims, shape) < 0 ? -1 : 1;
    }
    if (check_dims(c, f, &e->weight, slot, n_dims, shape) < 0) return -1;
    int64_t S = e->scales.n_dims == n_dims ? e->scales.shape[n_dims - 2] : 0;
    int64_t in = shape[n_dims - 2];
    if (S != want_S || in % S) {
        return errf(c,
                    "%s: byte %" PRIu64 ": %s scales have %" PRId64 " blocks over the %" PRId64
                    " input rows, its slot needs %" PRId64,
                    c->paths[f], e->scales.offset, slot, S, in, want_S);
    }
    int64_t sw[3];
    for (int k = 0; k < n_dims; k++) sw[k] = shape[k];
    sw[n_dims - 2] = S;
    char what[128];
    snprintf(what, sizeof what, "%.100s scales", slot);
    if (check_dims(c, f, &e->scales, what, n_dims, sw) < 0) return -1;
    return S;
}

static int add_plan(conv *c, const char *name, int f, grok_type type, int n_dims, const int64_t *ne,
                    bool transpose, int64_t n_mat, int64_t in, int64_t out) {
    plan *pl = &c->plans[c->n_plans++];
    memset(pl, 0, sizeof *pl);
    snprintf(pl->name, sizeof pl->name, "%s", name);
    pl->file = f;
    pl->type = type;
    pl->n_dims = n_dims;
    for (int k = 0; k < GROK_GGUF_MAX_DIMS; k++) pl->ne[k] = k < n_dims ? ne[k] : 1;
    pl->transpose = transpose;
    pl->n_mat = n_mat;
    pl->in = in;
    pl->out = out;
    return 0;
}

static int file_of(int layer_rank, int slot) { return 2 + layer_rank * SLOTS_PER_LAYER + slot; }

/* Parses all files, infers the shapes and builds the output plan. */
static int build_plan(conv *c) {
    const grok_convert_params *p = c->p;
    grok_ckpt_parser *parser = grok_ckpt_parser_create();
    if (!parser) return errf(c, "out of memory");
    for (int f = 0; f < c->n_files; f++) {
        if (grok_ckpt_parser_parse_file(parser, c->paths[f], &c->ent[f], c->err, c->err_size) < 0) {
            grok_ckpt_parser_free(parser);
            return -1;
        }
        c->total_in += c->ent[f].weight.nbytes + c->ent[f].scales.nbytes;
    }
    grok_ckpt_parser_free(parser);
    int64_t L = (c->n_files - 2) / SLOTS_PER_LAYER;
    const grok_ckpt_entry *emb = &c->ent[0];
    if (emb->quantized || emb->weight.dtype != GROK_CKPT_F32 || emb->weight.n_dims != 2)
        return errf(c,
                    "%s: byte %" PRIu64 ": the embedding must be a float32 [vocab, d_model] "
                    "array",
                    c->paths[0], emb->weight.offset);
    int64_t V = emb->weight.shape[0], D = emb->weight.shape[1];
    if (V < 1 || D < 1) return errf(c, "%s: empty embedding", c->paths[0]);
    /* Shapes of layer 0 (file rank 0 is layer 0 in any order) fix E and ff. */
    const grok_ckpt_entry *g0 = &c->ent[file_of(0, S_GATE)];
    if (g0->weight.n_dims != 3)
        return errf(c, "%s: byte %" PRIu64 ": moe/linear must have 3 dimensions [E, d, ff]",
                    c->paths[file_of(0, S_GATE)], g0->weight.offset);
    int64_t E = g0->weight.shape[0], FF = g0->weight.shape[2];
    int64_t H = p->n_heads, KV = p->n_kv_heads, HD = p->head_dim;
    if (E < 1 || FF < 1) return errf(c, "%s: empty expert tensor", c->paths[file_of(0, S_GATE)]);
    if (p->n_experts_used < 1 || p->n_experts_used > E)
        return errf(c, "--experts-used %" PRId64 ": the checkpoint has %" PRId64 " experts",
                    p->n_experts_used, E);
    if (H % KV) return errf(c, "--heads %" PRId64 " is not a multiple of --kv-heads %" PRId64, H, KV);
    const grok_ckpt_entry *q0 = &c->ent[file_of(0, S_Q)];
    int64_t q_out = q0->weight.n_dims == 2 ? q0->weight.shape[1] : -1;
    if (q_out < 1)
        return errf(c, "%s: byte %" PRIu64 ": the query must be a [d_model, heads x head size] matrix",
                    c->paths[file_of(0, S_Q)], q0->weight.offset);
    /* The head size is the query's outputs over the heads unless a flag
     * says it; a flag that disagrees with the shape is an error. */
    if (HD == 0) {
        if (q_out % H)
            return errf(c,
                        "%s: query has %" PRId64 " outputs, not a multiple of --heads %" PRId64
                        " (the head size is derived from it when --head-dim is not given)",
                        c->paths[file_of(0, S_Q)], q_out, H);
        HD = q_out / H;
        c->st->head_dim_derived = true;
    } else if (q_out != H * HD) {
        return errf(c,
                    "%s: query has %" PRId64 " outputs but --heads %" PRId64 " x --head-dim %" PRId64
                    " = %" PRId64,
                    c->paths[file_of(0, S_Q)], q_out, H, HD, H * HD);
    }
    c->st->head_dim = HD;
    c->st->q_outputs = q_out;
    c->st->n_layers = L;
    c->st->d_model = D;
    c->st->n_vocab = V;
    c->st->n_ff = FF;
    c->st->n_experts = E;

    /* lexicographic order of layer indices = file order */
    char **lex = calloc((size_t)L, sizeof *lex);
    int *rank_of = calloc((size_t)L, sizeof *rank_of);
    if (!lex || !rank_of) {
        free(lex);
        free(rank_of);
        return errf(c, "out of memory");
    }
    for (int64_t l = 0; l < L; l++) {
        lex[l] = malloc(24);
        if (lex[l]) snprintf(lex[l], 24, "%" PRId64, l);
    }
    int rc = 0;
    for (int64_t l = 0; l < L; l++)
        if (!lex[l]) rc = errf(c, "out of memory");
    if (rc == 0) {
        qsort(lex, (size_t)L, sizeof *lex, cmp_str);
        for (int64_t r = 0; r < L; r++) rank_of[atoi(lex[r])] = (int)r;
    }
    for (int64_t l = 0; l < L; l++) free(lex[l]);
    free(lex);
    if (rc < 0) {
        free(rank_of);
        return -1;
    }

    c->plans = calloc((size_t)c->n_files, sizeof *c->plans);
    if (!c->plans) {
        free(rank_of);
        return errf(c, "out of memory");
    }
    grok_type T = p->type;
    int64_t ne[4];
    /* token_embd [D, V]: the official [V, D] rows as they are */
    if (check_slot(c, 0, "embeddings", false, 2, (int64_t[]){V, D}, 1) < 0) goto fail;
    if ((p->embd_type == GROK_TYPE_Q8_0) && D % 32) goto fail_q8;
    add_plan(c, "token_embd.weight", 0, p->embd_type, 2, (int64_t[]){D, V}, false, 1, V, D);
    if (check_slot(c, 1, "language_model/rms_norm", false, 1, (int64_t[]){D}, 1) < 0) goto fail;
    add_plan(c, "output_norm.weight", 1, GROK_TYPE_F32, 1, (int64_t[]){D}, false, 1, 1, D);
    for (int64_t l = 0; l < L; l++) {
        int r = rank_of[l];
        char name[GROK_GGUF_MAX_NAME + 1];
        for (int s = 0; s < SLOTS_PER_LAYER; s++) {
            int f = file_of(r, s);
            snprintf(name, sizeof name, "blk.%" PRId64 ".%s.weight", l, SLOT_GGUF[s]);
            char slot[96];
            snprintf(slot, sizeof slot, "decoder_layer_%" PRId64 "/%s", l, SLOT_OFFICIAL[s]);
            int64_t in = 0, out = 0, S;
            switch (s) {
            case S_GATE:
            case S_UP:
            case S_DOWN:
                in = s == S_DOWN ? FF : D;
                out = s == S_DOWN ? D : FF;
                S = check_slot(c, f, slot, true, 3, (int64_t[]){E, in, out}, s == S_DOWN ? 8 : 1);
                if (S < 0) goto fail;
                if (T == GROK_TYPE_Q8_0 && in % 32) goto fail_q8;
                ne[0] = in, ne[1] = out, ne[2] = E;
                add_plan(c, name, f, T, 3, ne, true, E, in, out);
                break;
            case S_K:
            case S_V:
            case S_Q:
            case S_O:
                in = s == S_O ? H * HD : D;
                out = s == S_O ? D : s == S_Q ? H * HD : KV * HD;
                S = check_slot(c, f, slot, true, 2, (int64_t[]){in, out}, s == S_O ? 8 : 1);
                if (S < 0) goto fail;
                if (T == GROK_TYPE_Q8_0 && in % 32) goto fail_q8;
                ne[0] = in, ne[1] = out;
                add_plan(c, name, f, T, 2, ne, true, 1, in, out);
                break;
            case S_ROUTER:
                if (check_slot(c, f, slot, false, 2, (int64_t[]){D, E}, 1) < 0) goto fail;
                ne[0] = D, ne[1] = E;
                add_plan(c, name, f, GROK_TYPE_F32, 2, ne, true, 1, D, E);
                break;
            default:
                if (check_slot(c, f, slot, false, 1, (int64_t[]){D}, 1) < 0) goto fail;
                add_plan(c, name, f, GROK_TYPE_F32, 1, (int64_t[]){D}, false, 1, 1, D);
                break;
            }
        }
    }
    free(rank_of);
    return 0;
fail_q8:
    errf(c,
         "q8_0 needs rows that are multiples of 32 elements (d_model %" PRId64 ", ffn %" PRId64
         ", heads x head_dim %" PRId64 ")",
         D, FF, H * HD);
fail:
    free(rank_of);
    return -1;
}

/* ---- output ----
 * Converted bytes collect in one of two buffers; a full buffer goes to a
 * writer thread, which feeds it to the GGUF writer while the next one
 * fills, so the write() copies into the page cache overlap the reading
 * and converting. The writer thread alone touches the grok_gguf_writer between
 * grok_gguf_writer_begin and the final flush. */
static void *writer_main(void *arg) {
    conv *c = arg;
    pthread_mutex_lock(&c->wmu);
    for (;;) {
        while (c->wcount == 0 && !c->wquit) pthread_cond_wait(&c->wcv, &c->wmu);
        if (c->wcount == 0) break;
        const uint8_t *d = c->obuf[c->whead];
        size_t n = c->olen[c->whead];
        bool failed = c->wfailed;
        pthread_mutex_unlock(&c->wmu);
        int rc = failed ? -1 : grok_gguf_writer_write_data(c->w, d, n, c->werr, sizeof c->werr);
        pthread_mutex_lock(&c->wmu);
        if (rc < 0) c->wfailed = true;
        c->whead = (c->whead + 1) % OUT_BUFS;
        c->wcount--;
        pthread_cond_broadcast(&c->wcv);
    }
    pthread_mutex_unlock(&c->wmu);
    return NULL;
}

/* Waits until at most `most` buffers are queued; -1 with the writer's
 * message if a write failed. */
static int writer_wait(conv *c, int most) {
    if (!c->wth_started) return 0;
    pthread_mutex_lock(&c->wmu);
    while (c->wcount > most) pthread_cond_wait(&c->wcv, &c->wmu);
    bool failed = c->wfailed;
    pthread_mutex_unlock(&c->wmu);
    if (failed) return errf(c, "%s", c->werr);
    return 0;
}

static void writer_stop(conv *c) {
    if (!c->wth_started) return;
    pthread_mutex_lock(&c->wmu);
    c->wquit = true;
    pthread_cond_broadcast(&c->wcv);
    pthread_mutex_unlock(&c->wmu);
    pthread_join(c->wth, NULL);
    c->wth_started = false;
}

/* Queues the filled buffer for the writer thread (or writes it here when no
 * thread could be started) and moves on to the next free one. */
static int flush_out(conv *c) {
    if (c->out_len == 0) return 0;
    if (!c->wth_started) {
        if (grok_gguf_writer_write_data(c->w, c->obuf[c->ocur], c->out_len, c->err, c->err_size) < 0)
            return -1;
    } else {
        pthread_mutex_lock(&c->wmu);
        c->olen[c->ocur] = c->out_len;
        c->wcount++;
        pthread_cond_broadcast(&c->wcv);
        pthread_mutex_unlock(&c->wmu);
        c->ocur = (c->ocur + 1) % OUT_BUFS;
        if (writer_wait(c, OUT_BUFS - 1) < 0) /* until obuf[ocur] is written */
            return -1;
    }
    c->st->bytes_out += c->out_len;
    c->out_len = 0;
    return 0;
}

/* n contiguous output bytes (n <= ocap). */
static uint8_t *out_reserve(conv *c, size_t n) {
    if (c->out_len + n > c->ocap && flush_out(c) < 0) return NULL;
    uint8_t *p = c->obuf[c->ocur] + c->out_len;
    c->out_len += n;
    return p;
}

static int progress(conv *c, uint64_t n) {
    c->done_in += n;
    c->st->bytes_in += n;
    if (c->p->progress) c->p->progress(c->p->progress_ud, c->done_in, c->total_in);
    if (c->p->cancel && *c->p->cancel) return errf(c, "%s: interrupted", c->p->out_path);
    return 0;
}

/* Q8_0 of 32 values by the best of two candidate scales (ggml's amax/127,
 * and the given hint), each rounded to f16 before the quants are chosen. */
static void q8_requant(const float *x, float hint, uint8_t *blk) {
    float amax = 0.0f;
    for (int k = 0; k < 32; k++) amax = fmaxf(amax, fabsf(x[k]));
    float cand[2] = {amax / 127.0f, fabsf(hint)};
    double best_err = INFINITY;
    for (int c = 0; c < 2; c++) {
        uint16_t dh = grok_fp32_to_fp16(cand[c]);
        float d = grok_fp16_to_fp32(dh);
        if (!(d > 0.0f) || isinf(d)) continue;
        int8_t q[32];
        double e = 0;
        for (int k = 0; k < 32; k++) {
            float v = roundf(x[k] / d);
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            q[k] = (int8_t)v;
            double r = (double)x[k] - (double)q[k] * d;
            e += r * r;
        }
        if (e < best_err) {
            best_err = e;
            memcpy(blk, &dh, 2);
            memcpy(blk + 2, q, 32);
        }
    }
    if (best_err == INFINITY) /* all zero (or unrepresentably tiny) */
        memset(blk, 0, 34);
}

/* Completes a Q8_0 row of n values whose quants are already in place (at
 * byte 2 of each 34-byte block): a block takes its official scale as d when
 * that is exact in f16 and the block lies inside one scale block of blk_len
 * elements; otherwise (rare) it is requantized from its exact values. The
 * scale lookups step from scale block to scale block, so a row costs a few
 * divisions, not two per block. */
static void q8_finish_row(tscratch *t, uint8_t *row, int64_t n, const uint16_t *sc, int64_t blk_len,
                          int64_t sc_stride) {
    float *v = t->v;
    int64_t nb = n / 32;
    t->q8_blocks += nb;
    for (int64_t b = 0; b < nb;) {
        int64_t blk = b * 32 / blk_len;
        int64_t end = (blk + 1) * blk_len; /* first element of the next scale block */
        float s = grok_bf16_to_fp32(sc[blk * sc_stride]);
        uint16_t dh = grok_fp32_to_fp16(s);
        bool exact = grok_fp16_to_fp32(dh) == s;
        int64_t bend = end / 32 < nb ? end / 32 : nb; /* blocks wholly before `end` */
        for (; b < bend; b++) {
            uint8_t *o = row + b * 34;
            if (exact) {
                memcpy(o, &dh, 2);
                continue;
            }
            t->q8_inexact++;
            for (int64_t k = 0; k < 32; k++) v[k] = (float)(int8_t)o[2 + k] * s;
            q8_requant(v, s, o);
        }
        if (b < nb && b * 32 < end) { /* this block crosses into the next scale block */
            uint8_t *o = row + b * 34;
            int64_t i0 = b * 32;
            t->q8_straddle++;
            for (int64_t k = 0; k < 32; k++)
                v[k] = (float)(int8_t)o[2 + k] * grok_bf16_to_fp32(sc[((i0 + k) / blk_len) * sc_stride]);
            q8_requant(v, s, o);
            b++;
        }
    }
}

/* Bytes of one output row of n values. */
static int64_t row_bytes(grok_type t, int64_t n) {
    return t == GROK_TYPE_Q8_0 ? n / 32 * 34 : t == GROK_TYPE_F32 ? n * 4 : n * 2;
}

/* Writes one output row of n values to o (row_bytes(t, n) bytes). q: the
 * int8 values (NULL for plain f32 rows, given in x); sc: the scale of each
 * element's scale block, blk_len elements per block; v: n floats of
 * scratch. Quantized rows for a Q8_0 output do not come here: they are
 * transposed straight into their blocks (q8_finish_row). */
static void emit_row(grok_type t, const int8_t *q, const float *x, int64_t n, const uint16_t *sc,
                     int64_t blk_len, int64_t sc_stride, float *v, uint8_t *o) {
    if (q) {
        for (int64_t s0 = 0; s0 < n; s0 += blk_len) {
            float sv = grok_bf16_to_fp32(sc[(s0 / blk_len) * sc_stride]);
            int64_t e = n - s0 < blk_len ? n : s0 + blk_len;
            for (int64_t i = s0; i < e; i++) v[i] = (float)q[i] * sv;
        }
        x = v;
    }
    switch (t) {
    case GROK_TYPE_F32: memcpy(o, x, (size_t)n * 4); break;
    case GROK_TYPE_BF16:
    case GROK_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = t == GROK_TYPE_BF16 ? grok_fp32_to_bf16(x[i]) : grok_fp32_to_fp16(x[i]);
            memcpy(o + 2 * i, &h, 2);
        }
        break;
    default: /* Q8_0: valid_type admits nothing else */
        for (int64_t b = 0; b < n / 32; b++) q8_requant(x + b * 32, 0.0f, o + b * 34);
        break;
    }
}

/* Where element i of an output row lands: plain bytes, or the quants of
 * 34-byte Q8_0 blocks (2 bytes of d, then 32 int8). */
static inline int64_t tpos(int64_t i, bool q8) { return q8 ? i / 32 * 34 + 2 + i % 32 : i; }

/* Transposes an 8x8 byte tile held as eight little-endian rows in place:
 * swapping 4x4, then 2x2, then single-byte blocks across the diagonal. */
static inline void tr8x8(uint64_t x[8]) {
    static const uint64_t mask[3] = {UINT64_C(0x00000000FFFFFFFF), UINT64_C(0x0000FFFF0000FFFF),
                                     UINT64_C(0x00FF00FF00FF00FF)};
    for (int st = 0, sh = 4; st < 3; st++, sh >>= 1)
        for (int r = 0; r < 8; r++)
            if (!(r & sh)) {
                uint64_t t = ((x[r] >> (8 * sh)) ^ x[r + sh]) & mask[st];
                x[r + sh] ^= t;
                x[r] ^= t << (8 * sh);
            }
}

/* dst row j (dst_ld bytes apart) gets column j of the rows x cols int8
 * matrix at src (rows ld bytes apart), at the positions tpos gives. Whole
 * 8x8 tiles go through registers, so neither side is touched a byte at a
 * time with a large stride (a byte-wise column walk with a power-of-two
 * stride was most of the converter's time). */
static void transpose_i8(const uint8_t *src, int64_t ld, int64_t rows, int64_t cols, uint8_t *dst,
                         int64_t dst_ld, bool q8) {
    int64_t r8 = rows & ~(int64_t)7, c8 = cols & ~(int64_t)7;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    r8 = 0; /* the tile trick assumes little-endian rows; bytes one by one */
#endif
    for (int64_t i = 0; i < r8; i += 8) {
        int64_t p = tpos(i, q8); /* 8 | i, so the 8 bytes stay in one block */
        for (int64_t j = 0; j < c8; j += 8) {
            uint64_t x[8];
            for (int r = 0; r < 8; r++) memcpy(&x[r], src + (i + r) * ld + j, 8);
            tr8x8(x);
            for (int r = 0; r < 8; r++) memcpy(dst + (j + r) * dst_ld + p, &x[r], 8);
        }
        for (int64_t j = c8; j < cols; j++)
            for (int64_t r = 0; r < 8; r++) dst[j * dst_ld + tpos(i + r, q8)] = src[(i + r) * ld + j];
    }
    for (int64_t i = r8; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[j * dst_ld + tpos(i, q8)] = src[i * ld + j];
}

/* Streams a tensor whose rows are the stored rows (embedding, norms). */
static int stream_rows(conv *c, const plan *pl, int fd) {
    const grok_ckpt_array *a = &c->ent[pl->file].weight;
    int64_t rowb = pl->out * 4;
    int64_t rows_per = (int64_t)(c->window / (uint64_t)rowb);
    if (rows_per < 1) rows_per = 1;
    int64_t ob = row_bytes(pl->type, pl->out);
    for (int64_t r0 = 0; r0 < pl->in; r0 += rows_per) {
        int64_t nr = pl->in - r0 < rows_per ? pl->in - r0 : rows_per;
        uint64_t off = a->offset + (uint64_t)(r0 * rowb);
        if (grok_ckpt_pread_full(fd, c->win, (size_t)(nr * rowb), off) < 0)
            return errf(c, "%s: byte %" PRIu64 ": read failed", c->paths[pl->file], off);
        for (int64_t r = 0; r < nr; r++) {
            float *x = (float *)(c->win + r * rowb);
            for (int64_t i = 0; i < pl->out; i++)
                if (!isfinite(x[i]))
                    return errf(c, "%s: byte %" PRIu64 ": value is not finite", c->paths[pl->file],
                                off + (uint64_t)(r * rowb + i * 4));
            uint8_t *o = out_reserve(c, (size_t)ob);
            if (!o) return -1;
            emit_row(pl->type, NULL, x, pl->out, NULL, 1, 0, c->ts[0].v, o);
        }
        if (progress(c, (uint64_t)(nr * rowb)) < 0) return -1;
    }
    return 0;
}

/* One chunk of a transposed tensor: output rows for columns
 * [col0, col0 + ncols) of the window, each rb bytes at dst. */
typedef struct {
    conv *c;
    grok_type type;
    bool quantized;
    const uint8_t *src; /* the window: in rows of ld elements */
    int64_t ld, in, col0, ncols;
    uint8_t *dst;
    int64_t rb;
    const uint16_t *scales; /* of the chunk's first column; columns are 1 apart */
    int64_t blk_len, sc_stride;
} tjob;

/* Thread ith of nth converts its share of the chunk's columns (whole
 * 8-column tiles), COL_GROUP at a time to stay in cache. */
static void tjob_run(void *arg, int ith, int nth) {
    const tjob *jb = arg;
    tscratch *t = &jb->c->ts[ith];
    int64_t units = (jb->ncols + 7) / 8;
    int64_t a = units * ith / nth * 8, b = units * (ith + 1) / nth * 8;
    if (b > jb->ncols) b = jb->ncols;
    size_t es = jb->quantized ? 1 : 4;
    for (int64_t g0 = a; g0 < b; g0 += COL_GROUP) {
        int64_t ng = b - g0 < COL_GROUP ? b - g0 : COL_GROUP;
        const uint8_t *src = jb->src + (size_t)(jb->col0 + g0) * es;
        uint8_t *dst = jb->dst + g0 * jb->rb;
        if (jb->quantized && jb->type == GROK_TYPE_Q8_0) {
            /* the official int8 values go straight into their blocks; only
             * the d fields are left to fill */
            transpose_i8(src, jb->ld, jb->in, ng, dst, jb->rb, true);
            for (int64_t g = 0; g < ng; g++)
                q8_finish_row(t, dst + g * jb->rb, jb->in, jb->scales + g0 + g, jb->blk_len, jb->sc_stride);
        } else if (jb->quantized) {
            transpose_i8(src, jb->ld, jb->in, ng, (uint8_t *)t->qcols, QCOL_LD(jb->in), false);
            for (int64_t g = 0; g < ng; g++)
                emit_row(jb->type, t->qcols + g * QCOL_LD(jb->in), NULL, jb->in, jb->scales + g0 + g,
                         jb->blk_len, jb->sc_stride, t->v, dst + g * jb->rb);
        } else {
            const float *fs = (const float *)src;
            for (int64_t g = 0; g < ng; g++) {
                for (int64_t i = 0; i < jb->in; i++) t->x[i] = fs[i * jb->ld + g];
                emit_row(jb->type, NULL, t->x, jb->in, NULL, 1, 0, t->v, dst + g * jb->rb);
            }
        }
    }
}

/* Streams a transposed tensor: for each matrix [in, out], output row j is
 * column j. Columns are read in strips that fit the window, and converted
 * in chunks that fit an output buffer, each split over the thread pool. */
static int stream_transposed(conv *c, const plan *pl, int fd) {
    const grok_ckpt_entry *e = &c->ent[pl->file];
    const grok_ckpt_array *a = &e->weight;
    size_t es = grok_ckpt_dtype_size(a->dtype);
    int64_t in = pl->in, out = pl->out;
    int64_t S = e->quantized ? e->scales.shape[e->scales.n_dims - 2] : 1;
    int64_t blk_len = in / S;
    int64_t W = (int64_t)(c->window / ((uint64_t)in * es));
    if (W < 1) W = 1;
    if (W > out) W = out;
    int64_t rb = row_bytes(pl->type, in);
    int64_t cw = (int64_t)c->ocap / rb; /* columns per output chunk; ocap >= rb */
    for (int64_t m = 0; m < pl->n_mat; m++) {
        uint64_t base = a->offset + (uint64_t)(m * in * out) * es;
        if (e->quantized) {
            grok_ckpt_array sa = e->scales;
            sa.n_elements = S * out;
            sa.nbytes = (uint64_t)(S * out) * 2;
            sa.offset = e->scales.offset + (uint64_t)(m * S * out) * 2;
            if (grok_ckpt_read_scales(fd, c->paths[pl->file], &sa, c->scales, c->err, c->err_size) < 0)
                return -1;
        }
        for (int64_t j0 = 0; j0 < out; j0 += W) {
            int64_t w = out - j0 < W ? out - j0 : W;
            if (w == out) {
                if (grok_ckpt_pread_full(fd, c->win, (size_t)(in * out) * es, base) < 0)
                    return errf(c, "%s: byte %" PRIu64 ": read failed", c->paths[pl->file], base);
            } else {
                for (int64_t i = 0; i < in; i++) {
                    uint64_t off = base + (uint64_t)(i * out + j0) * es;
                    if (grok_ckpt_pread_full(fd, c->win + (size_t)(i * w) * es, (size_t)w * es, off) < 0)
                        return errf(c, "%s: byte %" PRIu64 ": read failed", c->paths[pl->file], off);
                }
            }
            if (!e->quantized) {
                const float *fs = (const float *)c->win;
                for (int64_t i = 0; i < in; i++)
                    for (int64_t g = 0; g < w; g++)
                        if (!isfinite(fs[i * w + g]))
                            return errf(c, "%s: byte %" PRIu64 ": value is not finite", c->paths[pl->file],
                                        base + (uint64_t)(i * out + j0 + g) * 4);
            }
            for (int64_t k0 = 0; k0 < w; k0 += cw) {
                int64_t nc = w - k0 < cw ? w - k0 : cw;
                uint8_t *o = out_reserve(c, (size_t)(nc * rb));
                if (!o) return -1;
                tjob jb = {.c = c,
                           .type = pl->type,
                           .quantized = e->quantized,
                           .src = c->win,
                           .ld = w,
                           .in = in,
                           .col0 = k0,
                           .ncols = nc,
                           .dst = o,
                           .rb = rb,
                           .scales = c->scales + j0 + k0,
                           .blk_len = blk_len,
                           .sc_stride = out};
                /* small chunks are not worth waking the pool for */
                if (c->pool && (uint64_t)(nc * in) * es >= PAR_MIN_BYTES)
                    grok_threadpool_run(c->pool, tjob_run, &jb);
                else
                    tjob_run(&jb, 0, 1);
            }
            if (progress(c, (uint64_t)(in * w) * es) < 0) return -1;
        }
    }
    if (e->quantized && progress(c, e->scales.nbytes) < 0) return -1;
    return 0;
}

static int set_metadata(conv *c, const grok_tokenizer *tok) {
    const grok_convert_params *p = c->p;
    const grok_convert_stats *s = c->st;
    grok_gguf_writer *w = c->w;
    /* The shapes come from the checkpoint, the rest from the flags. */
    grok_hparams hp = grok_hparams_grok1();
    hp.n_vocab = s->n_vocab, hp.d_model = s->d_model, hp.n_layers = s->n_layers;
    hp.n_ff = s->n_ff, hp.n_experts = s->n_experts;
    hp.n_heads = p->n_heads, hp.n_kv_heads = p->n_kv_heads, hp.head_dim = s->head_dim;
    hp.n_ctx_train = p->n_ctx, hp.n_experts_used = p->n_experts_used;
    hp.rope_base = p->rope_base, hp.norm_eps = p->norm_eps;
    hp.embedding_scale = p->embedding_scale, hp.logit_scale = p->logit_scale;
    hp.attn_scale = p->attn_scale, hp.attn_softcap = p->softcap;
    int rc = grok_hparams_to_gguf(&hp, w);
    rc |= grok_gguf_writer_set_str(w, "general.name", p->name);
    rc |= grok_gguf_writer_set_u32(w, "general.file_type", (uint32_t)grok_llama_ftype(p->type));
    if (p->type == GROK_TYPE_Q8_0 || p->embd_type == GROK_TYPE_Q8_0)
        rc |= grok_gguf_writer_set_u32(w, "general.quantization_version", 2);
    rc |= grok_tokenizer_to_gguf(tok, w);
    rc |= grok_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0);
    if (rc) return errf(c, "%s: cannot set metadata (out of memory?)", p->out_path);
    return 0;
}

static bool valid_type(grok_type t) {
    return t == GROK_TYPE_Q8_0 || t == GROK_TYPE_BF16 || t == GROK_TYPE_F16 || t == GROK_TYPE_F32;
}

int grok_convert(const grok_convert_params *p, grok_convert_stats *st, char *err, size_t err_size) {
    conv cv = {.p = p, .st = st, .err = err, .err_size = err_size};
    conv *c = &cv;
    memset(st, 0, sizeof *st);
    grok_tokenizer *tok = NULL;
    bool wsync_made = false; /* the writer thread and its mutex and condition exist */
    int rc = -1;
    if (!valid_type(p->type) || !valid_type(p->embd_type)) {
        errf(c, "--type/--embd-type: q8_0, bf16, f16 or f32 expected");
        goto done;
    }
    if (p->n_heads < 1 || p->n_kv_heads < 1 || p->head_dim < 0 || p->n_ctx < 1) {
        errf(c, "--heads, --kv-heads, --head-dim and --ctx must be positive");
        goto done;
    }
    c->window = p->window ? p->window : GROK_CONVERT_DEFAULT_WINDOW;
    if (list_files(c) < 0 || build_plan(c) < 0) goto done;
    if (st->head_dim_derived && p->note) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "head size %" PRId64 " = query outputs %" PRId64 " / --heads %" PRId64
                 " (derived: no --head-dim given)",
                 st->head_dim, st->q_outputs, p->n_heads);
        p->note(p->progress_ud, msg);
    }
    st->n_files = c->n_files;
    tok = grok_tokenizer_load_spm(p->tokenizer, err, err_size);
    if (!tok) goto done;
    if (grok_tokenizer_n_vocab(tok) != st->n_vocab) {
        errf(c, "%s: %" PRId64 " pieces, but the checkpoint embedding has %" PRId64 " rows", p->tokenizer,
             grok_tokenizer_n_vocab(tok), st->n_vocab);
        goto done;
    }
    grok_tokenizer_set_add_bos(tok, false); /* the official runner adds no BOS */
    grok_tokenizer_set_add_eos(tok, false);
    c->w = grok_gguf_writer_create();
    if (!c->w) {
        errf(c, "out of memory");
        goto done;
    }
    if (set_metadata(c, tok) < 0) goto done;
    /* buffers sized by the largest row: in <= max(D, FF, H*HD) */
    int64_t max_in = 1, max_scales = 1;
    for (int k = 0; k < c->n_plans; k++) {
        const plan *pl = &c->plans[k];
        if (grok_gguf_writer_add_tensor(c->w, pl->name, pl->type, pl->n_dims, pl->ne, NULL) < 0) {
            errf(c, "%s: cannot add tensor %s", p->out_path, pl->name);
            goto done;
        }
        int64_t rowlen = pl->transpose ? pl->in : pl->out;
        if (rowlen > max_in) max_in = rowlen;
        const grok_ckpt_entry *e = &c->ent[pl->file];
        if (e->quantized && e->scales.n_elements > max_scales) max_scales = e->scales.n_elements;
    }
    if (p->split_max_size) grok_gguf_writer_set_split_max_size(c->w, p->split_max_size);
    /* the window must hold at least one row / column strip */
    uint64_t need = (uint64_t)max_in * 4;
    if (c->window < need) c->window = need;
    c->win = malloc(c->window);
    c->scales = malloc((size_t)max_scales * 2);
    c->ocap = OUT_CHUNK > (uint64_t)max_in * 4 ? OUT_CHUNK : (size_t)max_in * 4;
    bool ok = true;
    for (int b = 0; b < OUT_BUFS; b++) ok = ok && (c->obuf[b] = malloc(c->ocap));
    c->nth = 1;
    if (p->n_threads != 1) {
        c->pool = grok_threadpool_create(p->n_threads);
        if (c->pool) c->nth = grok_threadpool_size(c->pool);
    }
    c->ts = calloc((size_t)c->nth, sizeof *c->ts);
    ok = ok && c->win && c->scales && c->ts;
    for (int t = 0; ok && t < c->nth; t++) {
        c->ts[t].qcols = malloc((size_t)COL_GROUP * (size_t)QCOL_LD(max_in));
        c->ts[t].v = malloc((size_t)max_in * sizeof(float));
        c->ts[t].x = malloc((size_t)max_in * sizeof(float));
        ok = c->ts[t].qcols && c->ts[t].v && c->ts[t].x;
    }
    if (!ok) {
        errf(c, "out of memory (window of %" PRIu64 " bytes)", c->window);
        goto done;
    }
    if (grok_gguf_writer_begin(c->w, p->out_path, err, err_size) < 0) goto done;
    if (pthread_mutex_init(&c->wmu, NULL) == 0) {
        if (pthread_cond_init(&c->wcv, NULL) == 0) {
            c->wth_started = pthread_create(&c->wth, NULL, writer_main, c) == 0;
            if (!c->wth_started) pthread_cond_destroy(&c->wcv);
        }
        if (!c->wth_started) pthread_mutex_destroy(&c->wmu);
    }
    wsync_made = c->wth_started; /* without the thread, flush_out writes from here */
    for (int k = 0; k < c->n_plans; k++) {
        const plan *pl = &c->plans[k];
        int fd = open(c->paths[pl->file], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            errf(c, "%s: cannot open: %s", c->paths[pl->file], strerror(errno));
            goto done;
        }
        int r = pl->transpose ? stream_transposed(c, pl, fd) : stream_rows(c, pl, fd);
        close(fd);
        if (r < 0) goto done;
        st->n_tensors++;
    }
    if (flush_out(c) < 0 || writer_wait(c, 0) < 0) goto done;
    writer_stop(c); /* the writer is ours again */
    for (int t = 0; t < c->nth; t++) {
        st->q8_blocks += c->ts[t].q8_blocks;
        st->q8_inexact += c->ts[t].q8_inexact;
        st->q8_straddle += c->ts[t].q8_straddle;
    }
    if (grok_gguf_writer_finish(c->w, err, err_size) < 0) goto done;
    rc = 0;
done:
    writer_stop(c); /* before the writer it uses goes */
    if (wsync_made) {
        pthread_cond_destroy(&c->wcv);
        pthread_mutex_destroy(&c->wmu);
    }
    grok_gguf_writer_free(c->w); /* removes the temporary output of an unfinished stream */
    grok_tokenizer_free(tok);
    if (c->paths)
        for (int k = 0; k < c->n_files; k++) free(c->paths[k]);
    free(c->paths);
    free(c->ent);
    free(c->plans);
    free(c->win);
    for (int b = 0; b < OUT_BUFS; b++) free(c->obuf[b]);
    if (c->ts)
        for (int t = 0; t < c->nth; t++) {
            free(c->ts[t].qcols);
            free(c->ts[t].v);
            free(c->ts[t].x);
        }
    free(c->ts);
    grok_threadpool_free(c->pool);
    free(c->scales);
    return rc;
}
