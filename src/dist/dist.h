/*
 * dist.h - running one model across processes (MPI ranks), internal.
 *
 * The partition (which heads, experts, FFN rows and vocabulary rows a rank
 * owns) is pure arithmetic shared by the runtime and `grok plan`. The
 * runtime (mpi.c with Open MPI, single.c without) gives the commands one
 * interface: with one process every call is the identity, so `grok run`
 * and `grok logits` have a single code path. Rank 0 owns I/O, tokenization
 * and sampling; the others follow what it broadcasts.
 */
#ifndef GROK_DIST_H
#define GROK_DIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model/model.h"

/* How the model is split: by tensors (attention by KV heads, and the MoE
 * by whole experts per rank or by rows of every expert's FFN, balanced for
 * any routing), or as a pipeline of whole layers per rank. */
typedef enum { GROK_SPLIT_EXPERTS = 0, GROK_SPLIT_FFN = 1, GROK_SPLIT_LAYERS = 2 } grok_split;

/* Fills d (ranges only; no callbacks) with rank's share of a model of hp's
 * shapes over n ranks. Column slices are aligned to `align` elements (the
 * weights' block size). Fails (err) when the split cannot be made, e.g.
 * more ranks than experts with GROK_SPLIT_EXPERTS or than layers with
 * GROK_SPLIT_LAYERS. */
int grok_dist_partition(const grok_hparams *hp, int rank, int n, grok_split split, int64_t align,
                        grok_dist *d, char *err, size_t err_size);
const char *grok_split_name(grok_split s);

/* Starts MPI when this process was started by mpirun (else nothing), and
 * removes the --mpi-* flags from argv:
 *   --mpi-timeout S   abort when a collective makes no progress for S
 *                     seconds (default 300; 0 = never)
 *   --mpi-split X     ffn (default: every rank a slice of every expert,
 *                     balanced whatever the routing) | experts (whole
 *                     experts per rank, at most one rank per expert) |
 *                     layers (a pipeline: whole layers per rank)
 *   --mpi-stats       rank 0 prints each rank's share, memory and traffic
 * on_stall is called from the watchdog thread with a one-line message when
 * the timeout passes; it must end the process (the library does not). */
int grok_dist_init(int *argc, char ***argv, void (*on_stall)(const char *msg), char *err, size_t err_size);
/* Ends MPI: cleanly when rc is 0 or every rank learned of the failure
 * through grok_dist_agree, else by aborting the whole job (a rank may be
 * stuck in a collective). */
void grok_dist_finalize(int rc);
int grok_dist_rank(void);
int grok_dist_size(void);

/* Partitions m for this rank and attaches the hook (nothing with one
 * process). Test hook: GROK_MPI_FAIL_RANK=r makes rank r fail here as if
 * its share could not be mapped. */
int grok_dist_attach(grok_model *m, char *err, size_t err_size);
/* Collective status check: 0 when every rank passed ok; else -1 and err
 * says which rank failed and why (on every rank). */
int grok_dist_agree(bool ok, char *err, size_t err_size);
/* Rank 0's bytes to every rank. */
int grok_dist_bcast(void *buf, size_t bytes, char *err, size_t err_size);
/* The same, for a broadcast that may be waited on for a long time (a
 * follower of `grok serve` waiting for the next request): not watched by
 * the --mpi-timeout watchdog, and the waiting ranks sleep between polls
 * instead of spinning on a core. Every rank must call this one (not
 * grok_dist_bcast) for the same broadcast. */
int grok_dist_bcast_idle(void *buf, size_t bytes, char *err, size_t err_size);
/* Data-parallel training (grok train under mpirun): every rank's bytes to
 * every rank, counts[r] bytes from rank r concatenated in rank order into
 * all; and the personalised exchange, send's part r (send_counts[r] bytes)
 * to rank r, the parts sent here concatenated in rank order into recv.
 * Counts are the same arrays on every rank where they must agree. With
 * one process both are copies. 0, or -1 with err. */
int grok_dist_allgatherv(const void *mine, void *all, const size_t *counts, char *err, size_t err_size);
int grok_dist_alltoallv(const void *send, const size_t *send_counts, void *recv, const size_t *recv_counts,
                        char *err, size_t err_size);
/* Ends the whole job now, after printing msg: for a rank that failed on
 * its own while its peers may be inside a collective. */
_Noreturn void grok_dist_abort(const char *msg);
/* Bytes this rank has sent in the forward pass's collectives so far. */
uint64_t grok_dist_bytes_sent(void);
/* The split chosen with --mpi-split. */
grok_split grok_dist_split(void);
/* Whether MPI may be called from a thread other than the main one (one
 * thread at a time), as `grok serve`'s scheduler thread does. */
bool grok_dist_threads_ok(void);
/* With --mpi-stats: rank 0 prints every rank's share, resident memory and
 * bytes sent (per token when n_tokens > 0). Collective. */
void grok_dist_report(FILE *out, int64_t n_tokens);

#endif
