/*
 * single.c - the distribution runtime of a build without MPI: one process
 * owns the whole model, so a broadcast or a status check across "all
 * ranks" is the identity. The --mpi-* flags are refused with a message
 * that says why, rather than reported as unknown by every command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

int grok_dist_init(int *argc, char ***argv, void (*on_stall)(const char *msg), char *err, size_t err_size) {
    (void)on_stall;
    const char *ws = getenv("OMPI_COMM_WORLD_SIZE");
    if (ws && atoi(ws) > 1) { /* N independent copies would each run the whole model */
        snprintf(err, err_size,
                 "this grok was built without MPI (-DGROK_MPI=ON): it cannot run "
                 "as one of %s ranks of mpirun",
                 ws);
        return -1;
    }
    for (int i = 1; i < *argc; i++)
        if (strncmp((*argv)[i], "--mpi-", 6) == 0) {
            snprintf(err, err_size, "flag %s: this grok was built without MPI (-DGROK_MPI=ON)", (*argv)[i]);
            return -1;
        }
    return 0;
}

void grok_dist_finalize(int rc) { (void)rc; }
int grok_dist_rank(void) { return 0; }
int grok_dist_size(void) { return 1; }

int grok_dist_attach(grok_model *m, char *err, size_t err_size) {
    (void)m, (void)err, (void)err_size;
    return 0;
}

int grok_dist_agree(bool ok, char *err, size_t err_size) {
    (void)err, (void)err_size;
    return ok ? 0 : -1;
}

int grok_dist_bcast(void *buf, size_t bytes, char *err, size_t err_size) {
    (void)buf, (void)bytes, (void)err, (void)err_size;
    return 0;
}

void grok_dist_report(FILE *out, int64_t n_tokens) { (void)out, (void)n_tokens; }

int grok_dist_bcast_idle(void *buf, size_t bytes, char *err, size_t err_size) {
    (void)buf, (void)bytes, (void)err, (void)err_size;
    return 0;
}

_Noreturn void grok_dist_abort(const char *msg) {
    fprintf(stderr, "%s\n", msg);
    exit(1);
}

uint64_t grok_dist_bytes_sent(void) { return 0; }
grok_split grok_dist_split(void) { return GROK_SPLIT_FFN; }
bool grok_dist_threads_ok(void) { return true; }

int grok_dist_allgatherv(const void *mine, void *all, const size_t *counts, char *err, size_t err_size) {
    (void)err, (void)err_size;
    if (counts[0] && all != mine) memmove(all, mine, counts[0]);
    return 0;
}

int grok_dist_alltoallv(const void *send, const size_t *send_counts, void *recv, const size_t *recv_counts,
                        char *err, size_t err_size) {
    (void)recv_counts, (void)err, (void)err_size;
    if (send_counts[0] && recv != send) memmove(recv, send, send_counts[0]);
    return 0;
}
