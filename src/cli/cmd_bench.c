/*
 * cmd_bench.c - `grok bench`: how fast a model runs here and how close
 * that is to the machine's limit. Generation of one token reads every
 * active weight once, so its speed limit is memory bandwidth: the command
 * measures prompt and generation tokens/s, the bytes of weights each
 * generated token reads, and the bandwidth this many threads can draw
 * (a STREAM triad, in a child process so its arrays do not count in the
 * reported peak RSS), and prints efficiency = tok/s x bytes/token /
 * bandwidth.
 *
 * A fast wrong kernel must not look good: before timing, the model's own
 * matrices are multiplied by the timed kernels and by the scalar reference
 * on the same inputs, and the first positions are run through the whole
 * model both ways; the command exits 1 when they differ by more than the
 * tolerances below.
 *
 * Under mpirun every rank loads its share and makes the same forward
 * calls; rank 0 picks each generated token (and broadcasts it), probes the
 * bandwidth and prints. The reference run of the check is then distributed
 * too, so it checks the kernels on each rank's share, not the split itself
 * (tests/mpi_test.sh compares split and single-process logits).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "dist/dist.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "util/rng.h"

/* The check has two parts.
 * Kernels: the model's own matrices (layer 0's attention and first
 * expert, the output head) times seeded random activations, in the timed
 * mode, against the scalar reference on the same inputs (for 8-bit
 * activations: the reference integer dot on the same quantized x). Only
 * summation order differs, so max|dy| / max|y| <= TOL_KERNEL; a wrong
 * kernel gives errors of order 1.
 * Logits: the first positions through the whole model, the timed mode
 * against the reference, as max|a-b| / max|a| over a row. With f32
 * activations this is summation order (~1e-6, TOL_EXACT). 8-bit
 * activations add ~0.3% per product, which compounds over layers: 2% on a
 * d_model 64 model, 13% on d_model 2048 with 8 layers (random weights),
 * so TOL_FAST only catches gross failures; the kernel check is the
 * strict one. */
#define TOL_KERNEL 1e-4
#define TOL_EXACT 1e-3
#define TOL_FAST 0.5

/* ---- batched steps (--batch) ---- */

#define MAX_BATCH_SIZES 8
#define BATCH_PROMPT 32 /* tokens each batched sequence reads before the timed steps */

typedef struct {
    int64_t n;             /* sequences per step */
    double step_s;         /* mean step of the best round */
    double min_s;          /* the fastest single step (least disturbed by other work) */
    double bytes, experts; /* weight bytes and experts per layer, per step (mean) */
} batch_result;

/* Parses "1,4,8" into sizes in [1, max]. */
static bool parse_batch(const char *arg, int64_t max, batch_result *out, int *n_out) {
    int n = 0;
    const char *p = arg;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || v > max || n == MAX_BATCH_SIZES || (*end && *end != ',')) return false;
        out[n++] = (batch_result){.n = v};
        p = *end ? end + 1 : end;
    }
    *n_out = n;
    return n > 0;
}

/* Greedy next token of every sequence, into next[]. */
static void argmax_all(grok_seq *const *cs, int64_t n, int64_t V, int32_t *next) {
    for (int64_t i = 0; i < n; i++) {
        const float *lg = grok_seq_logits(cs[i]);
        int32_t best = 0;
        for (int64_t v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        next[i] = best;
    }
}

/* For each size: that many sequences each read their own pseudo-random
 * BATCH_PROMPT-token prompt, then n_gen steps decode one greedy token per sequence in one
 * grok_decode_multi call, as grok serve's generating slots do. Rounds run
 * the sizes interleaved so that the shared machine's noise hits them alike;
 * each size keeps its fastest round. */
static int bench_batches(grok_model *m, grok_threadpool *pool, grok_type kv_type, int64_t n_gen,
                         int64_t rounds, batch_result *res, int n_res, char *err, size_t err_size) {
    const grok_hparams *hp = grok_model_hparams(m);
    const int64_t bp = BATCH_PROMPT;
    int32_t prompt[BATCH_PROMPT];
    int64_t nmax = 0;
    for (int i = 0; i < n_res; i++) nmax = res[i].n > nmax ? res[i].n : nmax;
    grok_seq **cs = calloc((size_t)nmax, sizeof *cs);
    grok_runner *run = NULL;
    int32_t *next = malloc((size_t)nmax * sizeof *next);
    const int32_t **tp = malloc((size_t)nmax * sizeof *tp);
    int64_t *ns = malloc((size_t)nmax * sizeof *ns);
    int rc = -1;
    if (!cs || !next || !tp || !ns) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    grok_seq_params sp = grok_seq_default_params();
    sp.kv_type = kv_type;
    sp.n_ctx = bp + n_gen + 1;
    grok_runner_params rp = grok_runner_default_params();
    rp.pool = pool;
    rp.n_batch = nmax > bp ? nmax : bp;
    if (!(run = grok_runner_create(m, &rp, err, err_size))) goto done;
    for (int64_t i = 0; i < nmax; i++)
        if (!(cs[i] = grok_seq_create(m, &sp, err, err_size))) goto done;
    for (int64_t r = 0; r < rounds; r++)
        for (int k = 0; k < n_res; k++) {
            const int64_t n = res[k].n;
            for (int64_t i = 0; i < n; i++) {
                grok_seq_truncate(cs[i], 0);
                uint64_t st = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
                for (int64_t q = 0; q < bp; q++) { /* avoiding PAD, as the prompt above */
                    st = st * 6364136223846793005ull + 1442695040888963407ull;
                    int32_t id = (int32_t)((st >> 33) % (uint64_t)hp->n_vocab);
                    prompt[q] = id == hp->pad_id ? (id + 1) % (int32_t)hp->n_vocab : id;
                }
                if (grok_runner_decode(run, cs[i], prompt, bp, NULL, err, err_size)) goto done;
                ns[i] = 1;
                tp[i] = &next[i];
            }
            double bytes = 0, experts = 0, t0 = grok_now();
            for (int64_t g = 0; g < n_gen; g++) {
                argmax_all(cs, n, hp->n_vocab, next);
                double ts = grok_now();
                if (grok_decode_multi(run, cs, tp, ns, n, err, err_size)) goto done;
                ts = grok_now() - ts;
                if ((r == 0 && g == 0) || ts < res[k].min_s) res[k].min_s = ts;
                grok_step_stats st = grok_runner_last_step(run);
                bytes += (double)st.weight_bytes;
                experts += (double)st.expert_reads;
            }
            double dt = (grok_now() - t0) / (double)n_gen;
            if (r == 0 || dt < res[k].step_s) res[k].step_s = dt;
            res[k].bytes = bytes / (double)n_gen;
            res[k].experts = experts / (double)n_gen / (double)hp->n_layers;
        }
    rc = 0;
done:
    for (int64_t i = 0; cs && i < nmax; i++) grok_seq_free(cs[i]);
    grok_runner_free(run);
    free(cs), free(next), free(tp), free(ns);
    return rc;
}

/* ---- STREAM triad ---- */
typedef struct {
    double *a, *b, *c;
    int64_t n;
    double s;
    int init;
} triad_job;

static void triad_task(void *arg, int ith, int nth) {
    triad_job *j = arg;
    int64_t i0 = j->n * ith / nth, i1 = j->n * (ith + 1) / nth;
    double *a = j->a, *b = j->b, *c = j->c, s = j->s;
    if (j->init) { /* first touch by the thread that will use the pages */
        for (int64_t i = i0; i < i1; i++) a[i] = 0, b[i] = 1, c[i] = 2;
        return;
    }
    for (int64_t i = i0; i < i1; i++) a[i] = b[i] + s * c[i];
}

/* Elements per array: the three arrays together at least twice the
 * last-level cache (some server CPUs have hundreds of MiB of L3), and at
 * least 2^24 (384 MiB in all). */
static int64_t triad_elems(void) {
    int64_t n = (int64_t)1 << 24;
#ifdef _SC_LEVEL3_CACHE_SIZE
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0 && (int64_t)l3 * 2 / 24 > n) n = (int64_t)l3 * 2 / 24;
#endif
    if (n > (int64_t)1 << 27) n = (int64_t)1 << 27;
    return n;
}

static double triad_gb_s(int threads, int64_t n) {
    triad_job j = {malloc((size_t)n * 8), malloc((size_t)n * 8), malloc((size_t)n * 8), n, 3.0, 1};
    grok_threadpool *pool = grok_threadpool_create(threads);
    double best = 0;
    if (j.a && j.b && j.c && pool) {
        grok_threadpool_run(pool, triad_task, &j);
        j.init = 0;
        for (int rep = 0; rep < 8; rep++) {
            double t0 = grok_now();
            grok_threadpool_run(pool, triad_task, &j);
            double dt = grok_now() - t0;
            double gbs = 24.0 * (double)n / dt / 1e9;
            if (gbs > best) best = gbs;
        }
        /* keep the stores observable */
        if (j.a[n / 2] != 1 + 3.0 * 2) best = -1;
    }
    grok_threadpool_free(pool);
    free(j.a), free(j.b), free(j.c);
    return best;
}

/* Runs the probe in a child so its arrays do not show in our peak RSS. */
static double stream_probe(int threads, int64_t n) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        double v = triad_gb_s(threads, n);
        ssize_t w = write(fd[1], &v, sizeof v);
        _exit(w == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fd[1]);
    double v = -1;
    if (read(fd[0], &v, sizeof v) != (ssize_t)sizeof v) v = -1;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    return v;
}

/* ---- logits check ---- */
static double max_rel_err(const float *a, const float *b, int64_t rows, int64_t V, int64_t *top1) {
    double worst = 0;
    *top1 = 0;
    for (int64_t r = 0; r < rows; r++) {
        double mag = 0, diff = 0;
        int64_t ia = 0, ib = 0;
        for (int64_t i = 0; i < V; i++) {
            const float x = a[r * V + i], y = b[r * V + i];
            if (!isfinite(x) || !isfinite(y)) return INFINITY;
            mag = fmax(mag, fabs(x));
            diff = fmax(diff, fabs((double)x - y));
            if (x > a[r * V + ia]) ia = i;
            if (y > b[r * V + ib]) ib = i;
        }
        *top1 += ia == ib;
        double e = diff / (mag > 0 ? mag : 1e-30);
        if (e > worst) worst = e;
    }
    return worst;
}

/* One matrix in the timed mode against the reference dots; returns
 * max|dy| / max|y_ref|. */
static double check_matrix(grok_threadpool *pool, const grok_mat *w, grok_kernel_mode mode, uint64_t seed) {
    const int64_t rows = w->rows, cols = w->cols;
    float *x = malloc((size_t)cols * sizeof(float)), *y = malloc((size_t)rows * sizeof(float));
    block_q8a *xq = malloc((size_t)(cols / QKA + 1) * sizeof(block_q8a));
    double worst = INFINITY;
    if (x && y && xq) {
        grok_rng r = {seed};
        for (int64_t i = 0; i < cols; i++) x[i] = grok_rng_normal(&r);
        grok_kernel_mode saved = grok_kernels_mode();
        grok_kernels_set_mode(mode);
        grok_matmul(pool, w, x, cols, y, rows, 1);
        grok_kernels_set_mode(saved);
        const grok_dot_kernels *ref = grok_dot_reference(w->type);
        const bool q8 = grok_dot_select_isa(w->type, mode, w->isa)->dot_q8a && cols % QKA == 0;
        if (q8) grok_quantize_q8a_isa(w->isa, x, xq, cols);
        double mag = 0, diff = 0;
        for (int64_t i = 0; i < rows; i++) {
            const uint8_t *row = w->data + (size_t)i * w->row_bytes;
            double want = q8 ? ref->dot_q8a(row, xq, cols) : ref->dot_f32(row, x, cols);
            if (!isfinite(y[i])) diff = INFINITY;
            mag = fmax(mag, fabs(want));
            diff = fmax(diff, fabs(want - y[i]));
        }
        worst = diff / (mag > 0 ? mag : 1e-30);
    }
    free(x), free(y), free(xq);
    return worst;
}

static double check_kernels(grok_threadpool *pool, const grok_model *m, grok_kernel_mode mode) {
    const grok_layer *L = &m->layers[0];
    const grok_mat x[3] = {grok_layer_expert(L, 0, 0), grok_layer_expert(L, 1, 0),
                           grok_layer_expert(L, 2, 0)};
    const grok_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &x[0], &x[1], &x[2], &m->output};
    double worst = 0;
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        double e = check_matrix(pool, mats[i], mode, 1000 + i);
        if (!(e <= worst)) worst = e; /* NaN counts as a failure */
    }
    return worst;
}

/* Logits of ids[0..k) from a fresh cache under the given kernel mode. */
static int logits_in_mode(grok_context *c, grok_kernel_mode mode, const int32_t *ids, int64_t k, float *out,
                          char *err, size_t err_size) {
    grok_runner *r = grok_context_runner(c);
    grok_runner_set_kernel_mode(r, mode);
    grok_context_truncate(c, 0);
    int rc = grok_decode(c, ids, k, out, err, err_size);
    grok_runner_set_kernel_mode(r, GROK_KERNELS_DEFAULT); /* back to the process's mode */
    return rc;
}

/* ---- constrained generation (--grammar) ---- */

typedef struct {
    int64_t tokens, completions;
    double decode_s, mask_s, accept_s, sample_s, plain_s; /* totals */
    double mask_median_s, mask_max_s;
} grammar_pass;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n_gen tokens after the prompt, each drawn (seeded, default sampling)
 * from those g allows; the same logits are also sampled without the mask
 * to time the difference. */
static int grammar_pass_run(grok_context *c, const int32_t *ids, int64_t n_prompt, int64_t n_gen, int64_t V,
                            grok_grammar *g, int32_t eos, grammar_pass *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    grok_sampler_params sp = grok_sampler_default_params();
    sp.seed = 42;
    grok_sampler *smp = grok_sampler_create(&sp, V), *plain = grok_sampler_create(&sp, V);
    uint64_t *mask = malloc(((size_t)V + 63) / 64 * sizeof *mask);
    int32_t *hist = malloc((size_t)(n_prompt + n_gen) * sizeof *hist);
    double *steps = malloc((size_t)n_gen * sizeof *steps);
    grok_matcher *mt = grok_matcher_create(g);
    int rc = -1;
    if (!smp || !plain || !mask || !hist || !steps || !mt) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    memcpy(hist, ids, (size_t)n_prompt * sizeof *hist);
    grok_context_truncate(c, n_prompt - 1); /* fresh logits after the prompt */
    if (grok_decode(c, ids + n_prompt - 1, 1, NULL, err, err_size)) goto done;
    for (int64_t i = 0; i < n_gen; i++) {
        size_t nh = (size_t)(n_prompt + i);
        double t0 = grok_now();
        int64_t allowed = grok_matcher_fill_mask(mt, mask);
        double t1 = grok_now();
        if (allowed <= 0) {
            snprintf(err, err_size, "the grammar allows no token after %" PRId64 " tokens", i);
            goto done;
        }
        int32_t tok = grok_matcher_is_done(mt)
                          ? eos
                          : grok_sampler_sample_masked(smp, grok_context_logits(c), mask, hist, nh);
        double t2 = grok_now();
        (void)grok_sampler_sample(plain, grok_context_logits(c), hist, nh);
        double t3 = grok_now();
        bool restart = tok == eos || grok_matcher_accept_token(mt, tok) != 0;
        double t4 = grok_now();
        if (restart || grok_matcher_is_done(mt)) { /* complete: the next one starts here */
            out->completions++;
            grok_matcher_free(mt);
            if (!(mt = grok_matcher_create(g))) {
                snprintf(err, err_size, "out of memory");
                goto done;
            }
        }
        hist[nh] = tok;
        if (grok_decode(c, &tok, 1, NULL, err, err_size)) goto done;
        double t5 = grok_now();
        steps[i] = t1 - t0;
        out->mask_s += t1 - t0;
        out->sample_s += t2 - t1;
        out->plain_s += t3 - t2;
        out->accept_s += t4 - t3;
        out->decode_s += t5 - t4;
        out->tokens++;
    }
    qsort(steps, (size_t)n_gen, sizeof *steps, cmp_double);
    out->mask_median_s = steps[n_gen / 2];
    out->mask_max_s = steps[n_gen - 1];
    rc = 0;
done:
    grok_matcher_free(mt);
    grok_sampler_free(smp);
    grok_sampler_free(plain);
    free(mask);
    free(hist);
    free(steps);
    return rc;
}

/* What the grammar adds to a token: its mask, taking the token, and
 * sampling with the mask where that is slower than without (it is usually
 * faster: fewer candidates), as a share of the decode step. */
static double pass_overhead(const grammar_pass *p) {
    double extra = p->sample_s > p->plain_s ? p->sample_s - p->plain_s : 0;
    return (p->mask_s + p->accept_s + extra) / p->decode_s;
}

static void print_pass(const char *name, const grammar_pass *p, bool json) {
    double n = (double)p->tokens;
    if (json) {
        printf("\"%s\": {\"tokens\": %" PRId64 ", \"completions\": %" PRId64 ", \"decode_ms\": %.4f, "
               "\"mask_ms\": %.4f, \"mask_ms_median\": %.4f, \"mask_ms_max\": %.4f, \"accept_ms\": %.4f, "
               "\"sample_ms\": %.4f, \"sample_unmasked_ms\": %.4f, \"overhead\": %.5f}",
               name, p->tokens, p->completions, p->decode_s / n * 1e3, p->mask_s / n * 1e3,
               p->mask_median_s * 1e3, p->mask_max_s * 1e3, p->accept_s / n * 1e3, p->sample_s / n * 1e3,
               p->plain_s / n * 1e3, pass_overhead(p));
        return;
    }
    printf("grammar %-8s %" PRId64 " tokens (%" PRId64
           " complete): decode %.2f ms/token; mask %.3f ms (median %.3f, "
           "max %.2f), take %.3f ms, sampling %.3f ms masked vs %.3f ms not: overhead %.2f %% of a decode "
           "step\n",
           name, p->tokens, p->completions, p->decode_s / n * 1e3, p->mask_s / n * 1e3,
           p->mask_median_s * 1e3, p->mask_max_s * 1e3, p->accept_s / n * 1e3, p->sample_s / n * 1e3,
           p->plain_s / n * 1e3, pass_overhead(p) * 100);
}

typedef struct {
    cli_model_args m;
    int64_t n_prompt, n_gen, n_check, stream_mib, rounds;
    int kernels; /* grok_kernel_mode */
    const char *batches, *grammar, *schema;
    bool json, no_stream, sim;
} bench_args;

static const char *const BENCH_KERNELS[] = {"fast", "exact", "reference",
                                            NULL}; /* grok_kernel_mode's order */
static const cli_opt BENCH_OPTS[] = {
    CLI_OPT_I64(bench_args, n_prompt, "--prompt", "-p", "N", 1, 1 << 20, "prompt tokens, decoded in one call",
                NULL),
    CLI_OPT_I64(bench_args, n_gen, "--gen", "-n", "N", 1, 1 << 20, "generated tokens, one decode each", NULL),
    CLI_OPT_ENUM(bench_args, kernels, "--kernels", NULL, BENCH_KERNELS,
                 "fast: 8-bit activations; exact: f32 activations; reference: the scalar kernels", NULL),
    CLI_OPT_I64(bench_args, n_check, "--check", NULL, "N", 0, 64,
                "positions checked against the reference kernels; 0 = off", NULL),
    CLI_OPT_FLAG(bench_args, no_stream, "--no-stream", NULL,
                 "skip the bandwidth probe (efficiency reported as 0)"),
    CLI_OPT_I64(bench_args, stream_mib, "--stream-mib", NULL, "N", 3, 1 << 20,
                "size of the probe's three arrays together", "auto: see below"),
    /* --batch is a prompt batch in the other commands: this list has its own name, the old spelling kept */
    CLI_OPT_STR(
        bench_args, batches, "--batch-sizes", "--batch", "LIST",
        "also decode N sequences together per step (grok serve's batched step), for each N of a comma "
        "list such as 1,4,8: aggregate tok/s, time (mean of the best round, and the fastest step), weight "
        "bytes and experts per step",
        ""),
    CLI_OPT_I64(bench_args, rounds, "--rounds", NULL, "R", 1, 100,
                "batched measurements interleaved over R rounds, best kept", NULL),
    CLI_OPT_STR(
        bench_args, grammar, "--grammar", NULL, "FILE",
        "also generate -n tokens constrained by a GBNF grammar (twice: with the grammar's caches cold, then "
        "warm; a grammar that completes starts again) and time per token the decode step, the token mask, "
        "taking the token, and sampling with the mask against without it; overhead = mask + take (+ the "
        "sampling difference where masked is slower), as a share of the decode step",
        ""),
    CLI_OPT_STR(bench_args, schema, "--json-schema", NULL, "FILE", "the same with a JSON Schema's grammar",
                ""),
    CLI_OPT_FLAG(bench_args, json, "--json", NULL, "print one JSON object instead of text"),
    CLI_OPT_FLAG(
        bench_args, sim, "--cache-sim", NULL,
        "replay the routing of the timed tokens through expert caches of several sizes and policies (see "
        "grok perplexity --help)"),
};
static const char *const BENCH_MODEL_OMIT[] = {"--lora", "--lora-scale", "--ctx", "--batch", NULL};

static const char BENCH_NOTES[] =
    "Bandwidth follows the STREAM convention: a triad a[i] = b[i] + s*c[i] over\n"
    "three arrays of doubles (together twice the L3 cache, at least 384 MiB), split\n"
    "across the threads, counts 24 bytes per element (write-allocate traffic not\n"
    "counted); best of 8 runs.\n\n"
    "Under mpirun every rank runs its share (--mpi-split) and rank 0 prints; --json\n"
    "adds mpi_ranks, mpi_split and mpi_sent_bytes_per_token (rank 0's, generation).\n\n"
    "The memory plan (grok help: --mem-limit, --mem-plan, ...) is printed; with the\n"
    "expert cache, generation's hit rate, disk bytes and I/O wait per token, the\n"
    "disk's O_DIRECT read rate and the I/O bound (that rate over the bytes read per\n"
    "token) too.";

/* What bench_run measured, for the printers. */
typedef struct {
    const char *model_path, *kv;
    grok_threadpool *pool;
    grok_kernel_mode mode;
    const grok_model *m;
    const grok_memory_plan *plan;
    grok_cache_stats cst;
    int64_t n_prompt, n_gen, n_check, top1, bpt;
    double t_prompt, t_gen, prompt_tps, gen_tps, bw, eff, rss_mb, anon_mb, file_mb, sent_per_tok;
    double err_fast, err_exact, err_kernel, read_rate, io_bound, disk_per_tok;
    bool check_ok, dist, sim, cached;
    const batch_result *batches;
    int n_batches;
    const grammar_pass *gcold, *gwarm;
} bench_report;

/* --json: one object on stdout. */
static void bench_print_json(const bench_report *r) {
    printf("{\"model\": \"");
    for (const char *s = r->model_path; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    printf("\", \"threads\": %d, \"kernels\": \"%s\", \"isa\": \"%s\", \"kv_type\": \"%s\", "
           "\"n_prompt\": %" PRId64 ", \"n_gen\": %" PRId64 ", \"prompt_tok_s\": %.4f, \"gen_tok_s\": %.4f, "
           "\"bytes_per_token\": %" PRId64 ", \"bandwidth_gb_s\": %.3f, \"efficiency\": %.4f, "
           "\"peak_rss_mb\": %.1f, \"packed_mb\": %.1f, \"check_positions\": %" PRId64
           ", \"check_max_rel_err\": %.3g, "
           "\"check_exact_max_rel_err\": %.3g, \"check_kernel_max_rel_err\": %.3g, \"check_top1_agree\": "
           "%" PRId64 ", \"check_ok\": %s",
           grok_threadpool_size(r->pool), grok_kernel_mode_name(r->mode), grok_kernels_isa(), r->kv,
           r->n_prompt, r->n_gen, r->prompt_tps, r->gen_tps, r->bpt, r->bw, r->eff, r->rss_mb,
           (double)grok_model_packed_bytes(r->m) / 1e6, r->n_check, r->err_fast, r->err_exact, r->err_kernel,
           r->top1, r->check_ok ? "true" : "false");
    if (r->dist)
        printf(", \"mpi_ranks\": %d, \"mpi_split\": \"%s\", \"mpi_sent_bytes_per_token\": %.0f",
               grok_dist_size(), grok_split_name(grok_dist_split()), r->sent_per_tok);
    printf(", \"rss_anon_mb\": %.1f, \"rss_file_mb\": %.1f", r->anon_mb, r->file_mb);
    cli_print_memory_json(stdout, r->m, r->n_gen);
    if (r->sim) cli_print_cache_sim(stdout, r->m, true);
    if (r->cached)
        printf(", \"disk_read_rate_mb_s\": %.1f, \"io_bound_tok_s\": %.4f, \"io_bound_fraction\": %.4f",
               r->read_rate / 1e6, r->io_bound, r->io_bound > 0 ? r->gen_tps / r->io_bound : 0);
    printf(", \"batch\": [");
    for (int k = 0; k < r->n_batches; k++)
        printf("%s{\"n\": %" PRId64 ", \"tok_s\": %.4f, \"step_ms\": %.4f, \"step_ms_min\": %.4f, "
               "\"bytes_per_step\": %.0f, \"experts_per_layer\": %.4f}",
               k ? ", " : "", r->batches[k].n, (double)r->batches[k].n / r->batches[k].step_s,
               r->batches[k].step_s * 1e3, r->batches[k].min_s * 1e3, r->batches[k].bytes,
               r->batches[k].experts);
    printf("]");
    if (r->gcold->tokens) {
        printf(", \"grammar\": {");
        print_pass("cold", r->gcold, true);
        printf(", ");
        print_pass("warm", r->gwarm, true);
        printf("}");
    }
    printf("}\n");
}

/* The text report on stdout. */
static void bench_print_text(const bench_report *r) {
    printf("model            %s\n", r->model_path);
    printf("kernels          %s (%s), %d threads, %s KV cache\n", grok_kernel_mode_name(r->mode),
           grok_kernels_isa(), grok_threadpool_size(r->pool), r->kv);
    printf("prompt           %.2f tok/s (%" PRId64 " tokens in %.3f s)\n", r->prompt_tps, r->n_prompt,
           r->t_prompt);
    printf("generation       %.2f tok/s (%" PRId64 " tokens in %.3f s)\n", r->gen_tps, r->n_gen, r->t_gen);
    printf("bytes per token  %.1f MB of weights\n", (double)r->bpt / 1e6);
    printf("bandwidth        %.2f GB/s (STREAM triad, %d threads)\n", r->bw, grok_threadpool_size(r->pool));
    printf("efficiency       %.1f %% of bandwidth\n", r->eff * 100);
    printf("peak RSS         %.1f MB%s; after generation %.1f MB anonymous, %.1f MB of mapped files\n",
           r->rss_mb, r->dist ? " (rank 0)" : "", r->anon_mb, r->file_mb);
    printf("packed weights   %.1f MB (rows interleaved for the fast kernels; GROK_PACK=0 turns it off)\n",
           (double)grok_model_packed_bytes(r->m) / 1e6);
    if (r->plan) {
        char line[768];
        grok_memory_plan_describe(r->plan, line, sizeof line);
        printf("memory           %s\n", line);
    }
    if (r->cached)
        printf("expert cache     %.1f %% hits (%" PRId64 " of %" PRId64 " lookups, %" PRId64
               " more already being read), %.1f MB read from disk per token, I/O wait %.1f ms per token; "
               "prediction right %.1f %%; disk %.0f MB/s (O_DIRECT, measured): I/O bound %.2f tok/s, "
               "%.0f %% of it reached\n",
               r->cst.lookups ? 100.0 * (double)r->cst.hits / (double)r->cst.lookups : 0, r->cst.hits,
               r->cst.lookups, r->cst.late_hits, r->disk_per_tok / 1e6,
               r->cst.io_wait_s * 1e3 / (double)r->n_gen,
               r->cst.predicted ? 100.0 * (double)r->cst.predicted_right / (double)r->cst.predicted : 0,
               r->read_rate / 1e6, r->io_bound, r->io_bound > 0 ? 100 * r->gen_tps / r->io_bound : 0);
    if (r->dist)
        printf("mpi              %d ranks, split by %s, rank 0 sent %.1f KiB per generated token "
               "(efficiency: all ranks' bytes over rank 0's bandwidth probe)\n",
               grok_dist_size(), grok_split_name(grok_dist_split()), r->sent_per_tok / 1024);
    if (r->sim) cli_print_cache_sim(stdout, r->m, false);
    for (int k = 0; k < r->n_batches; k++)
        printf("batch %-3" PRId64 "       %.2f tok/s, %.2f ms/step (%.2fx batch %" PRId64
               "; fastest step %.2f ms, "
               "%.2fx), %.1f MB of weights per step (%.2fx), %.2f experts per layer\n",
               r->batches[k].n, (double)r->batches[k].n / r->batches[k].step_s, r->batches[k].step_s * 1e3,
               r->batches[k].step_s / r->batches[0].step_s, r->batches[0].n, r->batches[k].min_s * 1e3,
               r->batches[k].min_s / r->batches[0].min_s, r->batches[k].bytes / 1e6,
               r->batches[k].bytes / r->batches[0].bytes, r->batches[k].experts);
    if (r->gcold->tokens) {
        print_pass("cold", r->gcold, false);
        print_pass("warm", r->gwarm, false);
    }
    if (r->n_check)
        printf("check            %s: kernels %.3g (tol %g); logits max rel err %.3g (tol %g), exact path "
               "%.3g "
               "(tol %g), top-1 %" PRId64 "/%" PRId64 "\n",
               r->check_ok ? "ok" : "FAILED", r->err_kernel, TOL_KERNEL, r->err_fast,
               r->mode == GROK_KERNELS_FAST ? TOL_FAST : TOL_EXACT, r->err_exact, TOL_EXACT, r->top1,
               r->n_check);
}

/* The command line into a; -1 to go on, else the exit status. */
static int bench_parse(int argc, char **argv, bench_args *a) {
    *a = (bench_args){.n_prompt = 512, .n_gen = 128, .n_check = 4, .rounds = 3, .kernels = GROK_KERNELS_FAST};
    cli_model_args_init(&a->m);
    cli_cmd cmd = {.name = "bench",
                   .usage = "-m MODEL [options]",
                   .about = "Measures prompt and generation speed, peak memory, bytes of weights read per\n"
                            "generated token and the memory bandwidth (STREAM triad), and prints the\n"
                            "generation efficiency = gen tok/s x bytes per token / bandwidth. Checks the\n"
                            "timed kernels' logits against the scalar reference first (exit 1 on mismatch).",
                   .notes = BENCH_NOTES,
                   .memory = true};
    CLI_ADD_TABLE(&cmd, "Measures", BENCH_OPTS, a);
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a->m, BENCH_MODEL_OMIT);
    return cli_parse(&cmd, argc, argv);
}

/* The flags' combinations, and the batch sizes; 0, or 2 after a message. */
static int bench_validate(const bench_args *a, batch_result *batches, int *n_batches) {
    if (!a->m.model) {
        cli_error("bench", "-m MODEL is required (see grok bench --help)");
        return 2;
    }
    if (a->batches && !parse_batch(a->batches, 256, batches, n_batches)) {
        cli_error("bench", "--batch-sizes '%s' is not a comma list of at most %d sizes in 1..256", a->batches,
                  MAX_BATCH_SIZES);
        return 2;
    }
    const bool leader = grok_dist_rank() == 0, dist = grok_dist_size() > 1;
    if (dist && *n_batches) { /* every rank would pick its own greedy tokens from logits only rank 0 has */
        if (leader) cli_error("bench", "--batch-sizes is not supported under mpirun (run it in one process)");
        return 2;
    }
    if (dist && (a->grammar || a->schema)) {
        if (leader) cli_error("bench", "--grammar is not supported under mpirun (run it in one process)");
        return 2;
    }
    if (a->grammar && a->schema) {
        cli_error("bench", "--grammar and --json-schema exclude each other");
        return 2;
    }
    return 0;
}

static int bench_run(const bench_args *a, batch_result *batches, int n_batches);

int cmd_bench(int argc, char **argv) {
    bench_args a;
    batch_result batches[MAX_BATCH_SIZES];
    int n_batches = 0;
    int rc = bench_parse(argc, argv, &a);
    if (rc >= 0) return rc;
    if ((rc = bench_validate(&a, batches, &n_batches))) return rc;
    return bench_run(&a, batches, n_batches);
}

/* A bench run: what it holds (freed by bench_free) and, in rep, what it
 * measured so far. */
typedef struct {
    const bench_args *a;
    bool leader;
    grok_model *m;
    grok_threadpool *pool;
    grok_context *c;
    int32_t *ids;     /* the prompt, then the generated tokens */
    float *ref, *got; /* [n_check][V] logits */
    int64_t V;
    batch_result *batches; /* [n_batches]: rep's, filled in by bench_sizes */
    int n_batches;
    grammar_pass gcold, gwarm;
    bench_report rep;
} bench_state;

/* The model, the threads, a context and the prompt. 0, or 1 after a
 * message. */
static int bench_load(bench_state *s) {
    const bench_args *a = s->a;
    const int64_t n_prompt = a->n_prompt, n_gen = a->n_gen;
    char err[GROK_ERR_SIZE];
    grok_kernels_set_mode(s->rep.mode);
    const grok_type kv_type = cli_kv_grok_type(&a->m);
    if (!(s->m = cli_load_model("bench", a->m.model, NULL, 1.0f))) return 1;
    s->rep.m = s->m;
    const grok_hparams *hp = grok_model_hparams(s->m);
    const int64_t V = s->V = hp->n_vocab;
    const int64_t n_check = s->rep.n_check = a->n_check > n_prompt ? n_prompt : a->n_check;
    s->rep.pool = s->pool = grok_threadpool_create((int)a->m.threads);
    grok_context_params cp = grok_context_default_params();
    cp.kv_type = kv_type;
    cp.pool = s->pool;
    cp.n_ctx = n_prompt + n_gen;
    cp.n_batch = n_prompt;
    s->c = s->pool ? grok_context_create(s->m, &cp, err, sizeof err) : NULL;
    s->ids = malloc((size_t)(n_prompt + n_gen) * sizeof *s->ids);
    s->ref = malloc((size_t)(n_check ? n_check : 1) * (size_t)V * sizeof(float));
    s->got = malloc((size_t)(n_check ? n_check : 1) * (size_t)V * sizeof(float));
    if (s->c && (!s->ids || !s->ref || !s->got)) snprintf(err, sizeof err, "out of memory");
    if (!s->pool) snprintf(err, sizeof err, "cannot start threads");
    if (grok_dist_agree(s->c && s->ids && s->ref && s->got, err, sizeof err)) {
        cli_error("bench", "%s", err);
        return 1;
    }
    if (n_prompt + n_gen > hp->n_ctx_train)
        fprintf(stderr, "grok bench: note: %" PRId64 " positions exceed the model's context %" PRId64 "\n",
                n_prompt + n_gen, hp->n_ctx_train);
    /* A fixed pseudo-random prompt that avoids the PAD id (masked keys
     * would make attention cheaper than with real text). */
    uint64_t st = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < n_prompt; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        int32_t id = (int32_t)((st >> 33) % (uint64_t)V);
        s->ids[i] = id == hp->pad_id ? (id + 1) % (int32_t)V : id;
    }
    return 0;
}

/* 1. speed: a warm-up pass maps the weights in, then the timed prompt and
 * the greedy generation. 0, or 1 after a message. */
static int bench_speed(bench_state *s) {
    const int64_t n_prompt = s->a->n_prompt, n_gen = s->a->n_gen, V = s->V;
    grok_threadpool *pool = s->pool;
    grok_context *c = s->c;
    const grok_kernel_mode mode = s->rep.mode;
    int32_t *ids = s->ids;
    char err[GROK_ERR_SIZE];
    if (!s->a->json && s->leader)
        fprintf(stderr,
                "grok bench: %" PRId64 " prompt tokens, %" PRId64 " generated, %d threads, %s kernels (%s)\n",
                n_prompt, n_gen, grok_threadpool_size(pool), grok_kernel_mode_name(mode), grok_kernels_isa());
    grok_context_truncate(c, 0);
    if (grok_decode(c, ids, n_prompt < 16 ? n_prompt : 16, NULL, err, sizeof err)) {
        cli_error("bench", "%s", err);
        return 1;
    }
    grok_context_truncate(c, 0);
    double t0 = grok_now();
    if (grok_decode(c, ids, n_prompt, NULL, err, sizeof err)) {
        cli_error("bench", "%s", err);
        return 1;
    }
    s->rep.t_prompt = grok_now() - t0;
    const uint64_t sent0 = grok_dist_bytes_sent();
    grok_model_cache_reset(s->m);                         /* the cache's counters of generation alone */
    if (s->rep.sim) grok_model_trace_routing(s->m, true); /* the routing of the generated tokens */
    t0 = grok_now();
    for (int64_t i = 0; i < n_gen; i++) {
        const float *lg = grok_context_logits(c);
        int32_t best = 0;
        for (int64_t v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = (int32_t)v;
        ids[n_prompt + i] = best;
        if (grok_dist_bcast(&ids[n_prompt + i], sizeof *ids, err, sizeof err) ||
            grok_decode(c, &ids[n_prompt + i], 1, NULL, err, sizeof err)) {
            cli_error("bench", "%s", err);
            return 1;
        }
    }
    s->rep.t_gen = grok_now() - t0;
    grok_model_trace_routing(s->m, false); /* the check below is not routing to replay */
    s->rep.cst = grok_model_cache_stats(s->m);
    s->rep.plan = grok_model_memory_plan(s->m);
    s->rep.cached = s->rep.plan && s->rep.plan->kind == GROK_PLAN_CACHE;
    s->rep.sent_per_tok = (double)(grok_dist_bytes_sent() - sent0) / (double)n_gen;
    return 0;
}

/* --batch-sizes: several sequences decoded together per step. 0, or 1
 * after a message. */
static int bench_sizes(bench_state *s) {
    const bench_args *a = s->a;
    char err[GROK_ERR_SIZE];
    if (!s->n_batches) return 0;
    if (bench_batches(s->m, s->pool, cli_kv_grok_type(&a->m), a->n_gen, a->rounds, s->batches, s->n_batches,
                      err, sizeof err)) {
        cli_error("bench", "%s", err);
        return 1;
    }
    return 0;
}

/* --grammar or --json-schema: the constrained generation, cold then warm.
 * 0, or 1 after a message. */
static int bench_grammar(bench_state *s) {
    const bench_args *a = s->a;
    char err[GROK_ERR_SIZE];
    if (!a->grammar && !a->schema) return 0;
    const grok_tokenizer *tok = grok_model_tokenizer(s->m);
    grok_grammar_vocab *gv = tok ? grok_grammar_vocab_create(tok, err, sizeof err) : NULL;
    grok_grammar *g = gv ? cli_load_grammar("bench", a->grammar, a->schema, gv) : NULL;
    if (!tok)
        cli_error("bench", "%s has no vocabulary: a grammar needs one", a->m.model);
    else if (!gv)
        cli_error("bench", "%s", err);
    int prc = g ? grammar_pass_run(s->c, s->ids, a->n_prompt, a->n_gen, s->V, g, grok_tokenizer_eos(tok),
                                   &s->gcold, err, sizeof err)
                : -1;
    if (prc == 0)
        prc = grammar_pass_run(s->c, s->ids, a->n_prompt, a->n_gen, s->V, g, grok_tokenizer_eos(tok),
                               &s->gwarm, err, sizeof err);
    if (g && prc) cli_error("bench", "%s", err);
    grok_grammar_free(g);
    grok_grammar_vocab_free(gv);
    return prc ? 1 : 0;
}

/* The peak memory, and now (after generation) the anonymous memory (what
 * cannot be evicted without swap) apart from mapped file pages (the page
 * cache's). */
static void bench_memory(bench_report *r) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->rss_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
    r->anon_mb = -1, r->file_mb = -1;
    FILE *stf = fopen("/proc/self/status", "r");
    for (char ln[256]; stf && fgets(ln, sizeof ln, stf);) {
        long kb;
        if (sscanf(ln, "RssAnon: %ld", &kb) == 1) r->anon_mb = (double)kb / 1024.0;
        if (sscanf(ln, "RssFile: %ld", &kb) == 1) r->file_mb = (double)kb / 1024.0;
    }
    if (stf) fclose(stf);
}

/* 2. correctness of the kernels just timed. After the timing, because the
 * reference and exact kernels read the file's rows, not the packed copy
 * the fast ones read (src/model/pack.c): the peak memory measured before
 * is that of inference alone. 0, or 1 after a message. */
static int bench_check(bench_state *s) {
    bench_report *r = &s->rep;
    const int64_t n_check = r->n_check;
    const grok_kernel_mode mode = r->mode;
    char err[GROK_ERR_SIZE];
    r->check_ok = true;
    if (n_check == 0) return 0;
    /* the whole matrices: on rank 0 only, so the other ranks touch only their share */
    if (s->leader) r->err_kernel = check_kernels(s->pool, s->m, mode);
    if (!s->a->json && s->leader)
        fprintf(stderr, "grok bench: checking %" PRId64 " positions against the reference kernels%s\n",
                n_check, r->dist ? " (both runs split across the MPI ranks)" : "");
    if (logits_in_mode(s->c, GROK_KERNELS_REFERENCE, s->ids, n_check, s->ref, err, sizeof err) ||
        logits_in_mode(s->c, GROK_KERNELS_EXACT, s->ids, n_check, s->got, err, sizeof err)) {
        cli_error("bench", "%s", err);
        return 1;
    }
    int64_t t1;
    r->err_exact = max_rel_err(s->ref, s->got, n_check, s->V, &t1);
    /* the timed kernels themselves (the reference against itself: 0) */
    if (logits_in_mode(s->c, mode, s->ids, n_check, s->got, err, sizeof err)) {
        cli_error("bench", "%s", err);
        return 1;
    }
    r->err_fast = max_rel_err(s->ref, s->got, n_check, s->V, &r->top1);
    r->check_ok = r->err_kernel <= TOL_KERNEL && r->err_exact <= TOL_EXACT &&
                  r->err_fast <= (mode == GROK_KERNELS_FAST ? TOL_FAST : TOL_EXACT);
    return 0;
}

/* 3. the machine's limit: the memory bandwidth and, for a model read
 * through the expert cache, the disk's; the rates derived from them. */
static void bench_limits(bench_state *s) {
    const bench_args *a = s->a;
    bench_report *r = &s->rep;
    double bw = a->no_stream || !s->leader
                    ? 0
                    : stream_probe(grok_threadpool_size(s->pool),
                                   a->stream_mib ? a->stream_mib * 1048576 / 24 : triad_elems());
    if (bw < 0 && s->leader) {
        cli_error("bench", "the bandwidth probe failed");
        bw = 0;
    }
    /* the disk's rate as the cache reads (O_DIRECT, its chunks), for the
     * I/O bound: tok/s if every byte read per token came at that rate */
    r->read_rate = r->cached && s->leader ? grok_model_read_rate(s->m, (int64_t)512 << 20) : 0;
    r->prompt_tps = (double)r->n_prompt / r->t_prompt, r->gen_tps = (double)r->n_gen / r->t_gen;
    r->disk_per_tok = (double)r->cst.bytes_read / (double)r->n_gen;
    r->io_bound = r->read_rate > 0 && r->disk_per_tok > 0 ? r->read_rate / r->disk_per_tok : 0;
    r->bpt = grok_model_bytes_per_token(s->m);
    r->bw = bw;
    r->eff = bw > 0 ? r->gen_tps * (double)r->bpt / (bw * 1e9) : 0;
}

/* Every rank's status agreed (a failed check fails the job); rank 0 prints
 * the results. The exit status. */
static int bench_print(bench_state *s) {
    bench_report *r = &s->rep;
    char err[GROK_ERR_SIZE];
    if (!r->check_ok) snprintf(err, sizeof err, "the check against the reference kernels failed");
    r->check_ok = grok_dist_agree(r->check_ok, err, sizeof err) == 0;
    if (!s->leader) {
        grok_dist_report(stderr, r->n_gen);
        return r->check_ok ? 0 : 1;
    }
    if (s->a->json)
        bench_print_json(r);
    else
        bench_print_text(r);
    if (!r->check_ok)
        cli_error("bench",
                  "the timed kernels disagree with the reference: kernels %.3g (tol %g), logits %.3g, exact "
                  "path %.3g (tol %g)",
                  r->err_kernel, TOL_KERNEL, r->err_fast, r->err_exact, TOL_EXACT);
    fflush(stdout); /* the results before the per-rank lines on stderr */
    grok_dist_report(stderr, r->n_gen);
    return r->check_ok ? 0 : 1;
}

/* Times, checks and prints. */
static int bench_run(const bench_args *a, batch_result *batches, int n_batches) {
    bench_state s = {.a = a, .leader = grok_dist_rank() == 0, .batches = batches, .n_batches = n_batches};
    s.rep = (bench_report){.model_path = a->m.model,
                           .kv = CLI_KV_TYPES[a->m.kv_type],
                           .mode = (grok_kernel_mode)a->kernels,
                           .n_prompt = a->n_prompt,
                           .n_gen = a->n_gen,
                           .dist = grok_dist_size() > 1,
                           .sim = a->sim,
                           .batches = batches,
                           .n_batches = n_batches,
                           .gcold = &s.gcold,
                           .gwarm = &s.gwarm};
    int rc = bench_load(&s) || bench_speed(&s) || bench_sizes(&s) || bench_grammar(&s);
    if (!rc) {
        bench_memory(&s.rep); /* inference's, before the check reads the file's rows */
        rc = bench_check(&s);
    }
    if (!rc) {
        bench_limits(&s);
        rc = bench_print(&s);
    }
    free(s.ids), free(s.ref), free(s.got);
    grok_context_free(s.c);
    grok_threadpool_free(s.pool);
    grok_model_free(s.m);
    return rc;
}
