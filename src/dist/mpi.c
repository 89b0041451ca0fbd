/*
 * mpi.c - the distribution runtime on Open MPI (compiled only when CMake
 * finds MPI). The forward pass calls two collectives through the model's
 * hook: a sum of partial activations (Wo over a rank's heads, the MoE over
 * its experts or FFN rows) and a gather of the output head's vocabulary
 * columns. The sum is a reduce-scatter followed by an all-gather, so each
 * chunk is added up once, on one rank, and every rank receives the same
 * bits: ranks never disagree on routing, whatever algorithm Open MPI picks.
 *
 * Errors return (MPI_ERRORS_RETURN) instead of killing the job. Open MPI
 * 4.1 has no timeout on collectives, so a watchdog thread watches the time
 * spent inside each one and calls the program's stall handler when a peer
 * stops answering. Test hooks (environment): GROK_MPI_FAIL_RANK=r fails
 * rank r's attach, GROK_MPI_KILL_RANK=r kills rank r (SIGKILL) in its first
 * collective of a forward pass, GROK_MPI_STALL_RANK=r makes it stop
 * answering there.
 */
#include <errno.h>
#include <inttypes.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist.h"
#include "util/clock.h"

#define MSG 512

static struct {
    bool active; /* MPI was initialised */
    int rank, size;
    double timeout_s;
    grok_split split;
    bool stats;
    bool threads_ok;     /* MPI_THREAD_SERIALIZED or better was granted */
    bool agreed_failure; /* every rank knows of a failure: finalize cleanly */
    grok_dist dist;
    /* scratch of the collectives */
    float *pad; /* [size * chunk] */
    size_t pad_cap;
    float *gath; /* [rows * n_vocab] */
    size_t gath_cap;
    int *counts, *displs; /* [size] of the logits gather */
    int64_t *vw, *vlo;    /* [size] every rank's vocabulary width and first id */
    /* traffic: bytes this rank sends in the ring algorithms, time waited */
    uint64_t bytes_sent, n_coll;
    double comm_s;
    int fault_kill, fault_stall; /* injected faults (rank numbers, -1 none) */
    /* watchdog */
    void (*on_stall)(const char *msg);
    _Atomic double busy_since; /* 0: not inside a collective */
    const char *_Atomic busy_what;
    pthread_t watchdog;
    bool watchdog_on;
    _Atomic bool stop;
} G = {.rank = 0, .size = 1, .timeout_s = 300, .split = GROK_SPLIT_FFN};

static void *watchdog_main(void *arg) {
    (void)arg;
    while (!atomic_load(&G.stop)) {
        usleep(100 * 1000);
        double since = atomic_load(&G.busy_since);
        if (since > 0 && grok_now() - since > G.timeout_s) {
            char msg[MSG];
            snprintf(msg, sizeof msg,
                     "grok: rank %d of %d: no progress in %s for %.0f s (--mpi-timeout): "
                     "a peer rank died or hangs; aborting",
                     G.rank, G.size, atomic_load(&G.busy_what), G.timeout_s);
            G.on_stall(msg);
            return NULL;
        }
    }
    return NULL;
}

static void enter(const char *what) {
    atomic_store(&G.busy_what, what);
    atomic_store(&G.busy_since, grok_now());
}
static void leave(void) {
    G.comm_s += grok_now() - atomic_load(&G.busy_since);
    atomic_store(&G.busy_since, 0.0);
    G.n_coll++;
}

static int mpi_fail(int rc, const char *what, char *err, size_t err_size) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
    snprintf(err, err_size, "rank %d of %d: %s failed: %s", G.rank, G.size, what, s);
    return -1;
}

static void inject_faults(void) {
    if (G.rank == G.fault_kill) raise(SIGKILL);
    if (G.rank == G.fault_stall)
        for (;;) pause();
}

static int env_rank(const char *name) {
    const char *s = getenv(name);
    return s && *s ? atoi(s) : -1;
}

int grok_dist_init(int *argc, char ***argv, void (*on_stall)(const char *msg), char *err, size_t err_size) {
    /* Take out our flags first, so that the commands never see them. */
    int out = 1;
    char **av = *argv;
    for (int i = 1; i < *argc; i++) {
        const char *a = av[i];
        bool has_val = strcmp(a, "--mpi-timeout") == 0 || strcmp(a, "--mpi-split") == 0;
        if (has_val && i + 1 >= *argc) {
            snprintf(err, err_size, "flag %s needs a value", a);
            return -1;
        }
        if (strcmp(a, "--mpi-timeout") == 0) {
            char *end;
            errno = 0;
            double v = strtod(av[++i], &end);
            if (errno || end == av[i] || *end || !(v >= 0) || v > 1e7) {
                snprintf(err, err_size, "flag --mpi-timeout: '%s' is not a number of seconds >= 0", av[i]);
                return -1;
            }
            G.timeout_s = v;
        } else if (strcmp(a, "--mpi-split") == 0) {
            const char *v = av[++i];
            if (strcmp(v, "experts") == 0)
                G.split = GROK_SPLIT_EXPERTS;
            else if (strcmp(v, "ffn") == 0)
                G.split = GROK_SPLIT_FFN;
            else if (strcmp(v, "layers") == 0)
                G.split = GROK_SPLIT_LAYERS;
            else {
                snprintf(err, err_size, "flag --mpi-split: '%s' is not ffn, experts or layers", v);
                return -1;
            }
        } else if (strcmp(a, "--mpi-stats") == 0) {
            G.stats = true;
        } else {
            av[out++] = av[i];
        }
    }
    av[out] = NULL;
    *argc = out;
    /* Only a process started by mpirun joins a job: a plain `grok` must not
     * pay for (or depend on) an MPI singleton start-up. */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK")) return 0;
    /* The threads MPI starts (and the watchdog) must not take SIGTERM or
     * SIGINT: mpirun passes them on to every rank, and the command's main
     * thread decides what they mean (grok serve drains, the others die). */
    sigset_t term, saved;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    pthread_sigmask(SIG_BLOCK, &term, &saved);
    /* serialized: grok serve's scheduler thread runs the forward pass (and
     * its collectives) while the main thread waits for signals */
    int provided, rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) {
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        snprintf(err, err_size, "MPI_Init failed (error %d)", rc);
        return -1;
    }
    G.active = true;
    G.threads_ok = provided >= MPI_THREAD_SERIALIZED;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &G.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &G.size);
    G.fault_kill = env_rank("GROK_MPI_KILL_RANK");
    G.fault_stall = env_rank("GROK_MPI_STALL_RANK");
    G.on_stall = on_stall;
    if (G.size > 1 && G.timeout_s > 0 && on_stall) {
        if (pthread_create(&G.watchdog, NULL, watchdog_main, NULL) == 0) G.watchdog_on = true;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return 0;
}

void grok_dist_finalize(int rc) {
    if (G.watchdog_on) {
        if (rc == 0 || G.agreed_failure) { /* the watchdog still guards MPI_Finalize */
            enter("MPI_Finalize");
        }
    }
    if (G.active) {
        if (rc != 0 && !G.agreed_failure && G.size > 1)
            MPI_Abort(MPI_COMM_WORLD, rc); /* peers may wait in a collective for us */
        MPI_Finalize();
    }
    if (G.watchdog_on) {
        atomic_store(&G.busy_since, 0.0);
        atomic_store(&G.stop, true);
        pthread_join(G.watchdog, NULL);
        G.watchdog_on = false;
    }
    free(G.pad);
    free(G.gath);
    free(G.counts);
    free(G.displs);
    free(G.vw);
    free(G.vlo);
    G.pad = G.gath = NULL;
    G.counts = G.displs = NULL;
    G.vw = G.vlo = NULL;
}

int grok_dist_rank(void) { return G.rank; }
int grok_dist_size(void) { return G.size; }
uint64_t grok_dist_bytes_sent(void) { return G.bytes_sent; }
grok_split grok_dist_split(void) { return G.split; }
bool grok_dist_threads_ok(void) { return !G.active || G.threads_ok; }

_Noreturn void grok_dist_abort(const char *msg) {
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    if (G.active && G.size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* ---- the collectives of the forward pass ---- */

static int allreduce_sum(void *ud, float *buf, int64_t n, char *err, size_t err_size) {
    (void)ud;
    inject_faults();
    const size_t N = (size_t)G.size, chunk = ((size_t)n + N - 1) / N;
    if (chunk > (size_t)INT32_MAX) {
        snprintf(err, err_size, "rank %d: %" PRId64 " values are too many for one collective", G.rank, n);
        return -1;
    }
    if (G.pad_cap < N * chunk + chunk) {
        float *p = realloc(G.pad, (N * chunk + chunk) * sizeof(float));
        if (!p) {
            snprintf(err, err_size, "rank %d: out of memory for a collective", G.rank);
            return -1;
        }
        G.pad = p, G.pad_cap = N * chunk + chunk;
    }
    float *mine = G.pad + N * chunk;
    memcpy(G.pad, buf, (size_t)n * sizeof(float));
    memset(G.pad + n, 0, (N * chunk - (size_t)n) * sizeof(float));
    enter("a sum of partial activations (MPI_Reduce_scatter_block)");
    int rc = MPI_Reduce_scatter_block(G.pad, mine, (int)chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) {
        atomic_store(&G.busy_what, "a sum of partial activations (MPI_Allgather)");
        rc = MPI_Allgather(mine, (int)chunk, MPI_FLOAT, G.pad, (int)chunk, MPI_FLOAT, MPI_COMM_WORLD);
    }
    leave();
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "the sum of partial activations", err, err_size);
    G.bytes_sent += 2 * (N - 1) * chunk * sizeof(float);
    memcpy(buf, G.pad, (size_t)n * sizeof(float));
    return 0;
}

/* Every rank's output-head columns into full[rows][n_vocab] on every
 * rank. G.vw[r] / G.vlo[r]: rank r's vocabulary width and first id. */
static int gather_vocab(void *ud, const float *local, float *full, int64_t rows, char *err, size_t err_size) {
    (void)ud;
    int64_t n_vocab = 0;
    for (int r = 0; r < G.size; r++) n_vocab += G.vw[r];
    if ((size_t)(rows * n_vocab) > G.gath_cap) {
        float *p = realloc(G.gath, (size_t)(rows * n_vocab) * sizeof(float));
        if (!p) {
            snprintf(err, err_size, "rank %d: out of memory gathering logits", G.rank);
            return -1;
        }
        G.gath = p, G.gath_cap = (size_t)(rows * n_vocab);
    }
    int64_t off = 0;
    for (int r = 0; r < G.size; r++) {
        if (rows * G.vw[r] > INT32_MAX || off > INT32_MAX) {
            snprintf(err, err_size, "rank %d: %" PRId64 " rows of logits are too many for one collective",
                     G.rank, rows);
            return -1;
        }
        G.counts[r] = (int)(rows * G.vw[r]);
        G.displs[r] = (int)off;
        off += G.counts[r];
    }
    inject_faults();
    enter("the gather of the logits (MPI_Allgatherv)");
    int rc = MPI_Allgatherv(local, G.counts[G.rank], MPI_FLOAT, G.gath, G.counts, G.displs, MPI_FLOAT,
                            MPI_COMM_WORLD);
    leave();
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "the gather of the logits", err, err_size);
    G.bytes_sent += (uint64_t)(G.size - 1) * (uint64_t)G.counts[G.rank] * sizeof(float);
    /* rank r's block is [rows][its columns]: put the columns into rows */
    for (int r = 0; r < G.size; r++)
        for (int64_t t = 0; t < rows; t++)
            memcpy(full + t * n_vocab + G.vlo[r], G.gath + G.displs[r] + t * G.vw[r],
                   (size_t)G.vw[r] * sizeof(float));
    return 0;
}

/* The pipeline's hand-over of activations between neighbouring ranks. */
static int message_too_long(int64_t n, char *err, size_t err_size) {
    if (n <= INT32_MAX) return 0;
    snprintf(err, err_size, "rank %d: %" PRId64 " values are too many for one message", G.rank, n);
    return -1;
}

static int send_to(void *ud, int to, const float *buf, int64_t n, char *err, size_t err_size) {
    (void)ud;
    inject_faults();
    if (message_too_long(n, err, err_size)) return -1;
    enter("handing activations to the next rank (MPI_Send)");
    int rc = MPI_Send(buf, (int)n, MPI_FLOAT, to, 0, MPI_COMM_WORLD);
    leave();
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "handing activations to the next rank", err, err_size);
    G.bytes_sent += (uint64_t)n * sizeof(float);
    return 0;
}

static int recv_from(void *ud, int from, float *buf, int64_t n, char *err, size_t err_size) {
    (void)ud;
    inject_faults();
    if (message_too_long(n, err, err_size)) return -1;
    enter("waiting for the previous rank's activations (MPI_Recv)");
    int rc = MPI_Recv(buf, (int)n, MPI_FLOAT, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    leave();
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "receiving the previous rank's activations", err, err_size);
    return 0;
}

/* ---- what the commands call ---- */

int grok_dist_attach(grok_model *m, char *err, size_t err_size) {
    if (G.size <= 1) return 0;
    const grok_hparams *hp = grok_model_hparams(m);
    if (G.rank == env_rank("GROK_MPI_FAIL_RANK")) {
        snprintf(err, err_size, "rank %d of %d: could not map its share of %s (GROK_MPI_FAIL_RANK)", G.rank,
                 G.size, grok_gguf_path(grok_model_gguf(m)));
        return -1;
    }
    const int64_t align = grok_type_get_traits(m->layers[0].down.type)->block_size;
    free(G.vw);
    free(G.vlo);
    free(G.counts);
    free(G.displs);
    G.vw = calloc((size_t)G.size, sizeof(int64_t));
    G.vlo = calloc((size_t)G.size, sizeof(int64_t));
    G.counts = calloc((size_t)G.size, sizeof(int));
    G.displs = calloc((size_t)G.size, sizeof(int));
    if (!G.vw || !G.vlo || !G.counts || !G.displs) {
        snprintf(err, err_size, "rank %d: out of memory", G.rank);
        return -1;
    }
    for (int r = 0; r < G.size; r++) {
        grok_dist d;
        if (grok_dist_partition(hp, r, G.size, G.split, align, &d, err, err_size)) return -1;
        G.vw[r] = d.v1 - d.v0;
        G.vlo[r] = d.v0;
        if (r == G.rank) G.dist = d;
    }
    /* Read only the pages this rank uses: no read-ahead or fault-around
     * pulling in the neighbouring ranks' rows. */
    const grok_gguf_file *gf = grok_model_gguf(m);
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int64_t i = 0; i < grok_gguf_n_tensors(gf); i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(gf, i);
        uintptr_t lo = (uintptr_t)t->data & ~(page - 1), hi = (uintptr_t)t->data + t->nbytes;
        if (t->nbytes) madvise((void *)lo, hi - lo, MADV_RANDOM); /* advice only: failure is harmless */
    }
    G.dist.allreduce_sum = allreduce_sum;
    G.dist.gather_vocab = gather_vocab;
    G.dist.send_to = send_to;
    G.dist.recv_from = recv_from;
    if (grok_model_set_dist(m, &G.dist, err, err_size)) return -1;
    return 0;
}

int grok_dist_agree(bool ok, char *err, size_t err_size) {
    if (G.size <= 1) return ok ? 0 : -1;
    char *all = malloc((size_t)G.size * MSG);
    char mine[MSG] = {0};
    if (!ok) snprintf(mine, sizeof mine, "%s", err);
    mine[0] = ok ? 0 : (mine[0] ? mine[0] : '?');
    if (!all) {
        snprintf(err, err_size, "rank %d: out of memory", G.rank);
        return -1;
    }
    enter("the status check (MPI_Allgather)");
    int rc = MPI_Allgather(mine, MSG, MPI_CHAR, all, MSG, MPI_CHAR, MPI_COMM_WORLD);
    leave();
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(rc, "the status check", err, err_size);
    }
    int first = -1, n_failed = 0;
    for (int r = 0; r < G.size; r++)
        if (all[(size_t)r * MSG]) {
            if (first < 0) first = r;
            n_failed++;
        }
    if (first >= 0) {
        char m1[MSG];
        memcpy(m1, all + (size_t)first * MSG, MSG);
        m1[MSG - 1] = 0;
        if (first == G.rank)
            snprintf(err, err_size, "rank %d of %d: %s", G.rank, G.size, m1);
        else
            snprintf(err, err_size, "rank %d of %d: stopping: %d rank(s) failed, first rank %d: %s", G.rank,
                     G.size, n_failed, first, m1);
        G.agreed_failure = true;
    }
    free(all);
    return first >= 0 ? -1 : 0;
}

int grok_dist_bcast(void *buf, size_t bytes, char *err, size_t err_size) {
    if (G.size <= 1) return 0;
    if (bytes > (size_t)INT32_MAX) {
        snprintf(err, err_size, "rank %d: broadcast of %zu bytes is too large", G.rank, bytes);
        return -1;
    }
    enter("a broadcast from rank 0 (MPI_Bcast)");
    int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    leave();
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "a broadcast from rank 0", err, err_size);
    return 0;
}

/* Byte counts and displacements as MPI's ints; false when a count or the
 * total does not fit. */
static bool int_counts(const size_t *c, int n, int *ci, int *di) {
    size_t off = 0;
    for (int r = 0; r < n; r++) {
        if (c[r] > (size_t)INT32_MAX || off > (size_t)INT32_MAX) return false;
        ci[r] = (int)c[r], di[r] = (int)off;
        off += c[r];
    }
    return off <= (size_t)INT32_MAX;
}

int grok_dist_allgatherv(const void *mine, void *all, const size_t *counts, char *err, size_t err_size) {
    if (G.size <= 1) {
        if (counts[0] && all != mine) memmove(all, mine, counts[0]);
        return 0;
    }
    int *c = malloc(sizeof(int) * 2 * (size_t)G.size);
    if (!c || !int_counts(counts, G.size, c, c + G.size)) {
        free(c);
        snprintf(err, err_size, "rank %d: an all-gather of more than 2 GiB", G.rank);
        return -1;
    }
    enter("an all-gather of training statistics or gradients (MPI_Allgatherv)");
    int rc = MPI_Allgatherv(mine, c[G.rank], MPI_BYTE, all, c, c + G.size, MPI_BYTE, MPI_COMM_WORLD);
    leave();
    G.bytes_sent += counts[G.rank] * (size_t)(G.size - 1);
    free(c);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "an all-gather", err, err_size);
    return 0;
}

int grok_dist_alltoallv(const void *send, const size_t *send_counts, void *recv, const size_t *recv_counts,
                        char *err, size_t err_size) {
    if (G.size <= 1) {
        if (send_counts[0] && recv != send) memmove(recv, send, send_counts[0]);
        return 0;
    }
    int *c = malloc(sizeof(int) * 4 * (size_t)G.size);
    if (!c || !int_counts(send_counts, G.size, c, c + G.size) ||
        !int_counts(recv_counts, G.size, c + 2 * G.size, c + 3 * G.size)) {
        free(c);
        snprintf(err, err_size, "rank %d: an all-to-all of more than 2 GiB", G.rank);
        return -1;
    }
    enter("the exchange of gradient pieces (MPI_Alltoallv)");
    int rc = MPI_Alltoallv(send, c, c + G.size, MPI_BYTE, recv, c + 2 * G.size, c + 3 * G.size, MPI_BYTE,
                           MPI_COMM_WORLD);
    leave();
    for (int r = 0; r < G.size; r++)
        if (r != G.rank) G.bytes_sent += send_counts[r];
    free(c);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "the exchange of gradient pieces", err, err_size);
    return 0;
}

int grok_dist_bcast_idle(void *buf, size_t bytes, char *err, size_t err_size) {
    if (G.size <= 1) return 0;
    if (bytes > (size_t)INT32_MAX) {
        snprintf(err, err_size, "rank %d: broadcast of %zu bytes is too large", G.rank, bytes);
        return -1;
    }
    /* Blocking collectives spin: an idle follower would hold a core for as
     * long as no request comes. Poll a non-blocking broadcast instead:
     * spinning for 2 ms keeps the latency of a busy server low, then 0.5 ms
     * naps. */
    MPI_Request req;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS && G.rank == 0) {
        enter("a broadcast from rank 0 (MPI_Ibcast)");
        rc = MPI_Wait(&req, MPI_STATUS_IGNORE);
        leave();
    } else if (rc == MPI_SUCCESS) {
        const double t0 = grok_now();
        for (int done = 0; rc == MPI_SUCCESS && !done;) {
            rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
            if (!done && grok_now() - t0 > 0.002) nanosleep(&(struct timespec){0, 500 * 1000}, NULL);
        }
    }
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "a broadcast from rank 0", err, err_size);
    return 0;
}

/* Resident memory of this process (kB): of the model's weights (the
 * mappings of .gguf files, from /proc/self/smaps: exactly this process's
 * pages, not the shared page cache) and anonymous (caches, scratch). */
static void rss_kb(int64_t *weights, int64_t *anon) {
    *weights = 0, *anon = -1;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[4096];
    bool in_gguf = false;
    while (fgets(line, sizeof line, f)) {
        long long v;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == ' ')) line[--len] = 0;
        size_t key = strcspn(line, " ");
        if (key > 0 && line[key - 1] != ':') { /* a mapping's header: "lo-hi perms ... path" */
            in_gguf = len > 5 && strcmp(line + len - 5, ".gguf") == 0;
            continue;
        }
        if (in_gguf && sscanf(line, "Rss: %lld", &v) == 1) *weights += v;
        if (sscanf(line, "Anonymous: %lld", &v) == 1) *anon = (*anon < 0 ? 0 : *anon) + v;
    }
    fclose(f);
}

void grok_dist_report(FILE *out, int64_t n_tokens) {
    if (G.size <= 1 || !G.stats) return;
    int64_t file, anon;
    rss_kb(&file, &anon);
    double mine[6] = {(double)file, (double)anon, (double)G.bytes_sent, G.comm_s, (double)G.n_coll, 0};
    double *all = malloc((size_t)G.size * sizeof mine);
    int64_t *sh = malloc((size_t)G.size * 10 * sizeof(int64_t));
    int64_t my_sh[10] = {G.dist.kvh0, G.dist.kvh1, G.dist.e0, G.dist.e1, G.dist.f0,
                         G.dist.f1,   G.dist.v0,   G.dist.v1, G.dist.l0, G.dist.l1};
    if (!all || !sh) {
        free(all);
        free(sh);
        return;
    }
    enter("the statistics (MPI_Gather)");
    int rc = MPI_Gather(mine, 6, MPI_DOUBLE, all, 6, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) rc = MPI_Gather(my_sh, 10, MPI_INT64_T, sh, 10, MPI_INT64_T, 0, MPI_COMM_WORLD);
    leave();
    if (rc == MPI_SUCCESS && G.rank == 0) {
        fprintf(out, "mpi: %d ranks, split by %s\n", G.size, grok_split_name(G.split));
        for (int r = 0; r < G.size; r++) {
            const double *a = all + r * 6;
            const int64_t *s = sh + r * 10;
            fprintf(out,
                    "mpi: rank %d: layers [%" PRId64 ",%" PRId64 ") kv heads [%" PRId64 ",%" PRId64
                    ") experts [%" PRId64 ",%" PRId64 ") ffn rows [%" PRId64 ",%" PRId64 ") vocab [%" PRId64
                    ",%" PRId64 ") | RSS weights %.1f MiB, other %.1f MiB | sent %.1f KiB",
                    r, s[8], s[9], s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], a[0] / 1024, a[1] / 1024,
                    a[2] / 1024);
            if (n_tokens > 0) fprintf(out, " (%.1f KiB/token)", a[2] / 1024 / (double)n_tokens);
            fprintf(out, " in %.0f collectives, %.3f s in them\n", a[4], a[3]);
        }
    }
    free(all);
    free(sh);
}
