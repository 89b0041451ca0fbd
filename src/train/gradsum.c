/*
 * gradsum.c - the order in which a batch's per-sequence gradients are
 * added up, fixed by the batch alone: a binary tree that halves the
 * sequences [0, batch) at every level. Floating-point addition is not
 * associative, so a gradient summed over two processes' halves and then
 * combined usually differs from the one-process sum in its last bits; with
 * the tree, each process computes the largest subtrees inside its share,
 * and the top of the tree is completed from those values in the same
 * shape, so `mpirun -np N grok train` gives the adapters of one process
 * bit for bit. The exchange splits the vector over the processes (each
 * completes the tree for 1/N of it, then everyone gathers the pieces), so
 * a process sends and receives about as much as a ring all-reduce.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

static void nodes_rec(int64_t a, int64_t c, int64_t lo, int64_t hi, grok_gradsum_node *out, int max, int *n) {
    if (c <= lo || a >= hi || c <= a) return;
    if (lo <= a && c <= hi) {
        if (*n < max) out[*n] = (grok_gradsum_node){a, c};
        (*n)++;
        return;
    }
    const int64_t m = a + (c - a) / 2;
    nodes_rec(a, m, lo, hi, out, max, n);
    nodes_rec(m, c, lo, hi, out, max, n);
}

int grok_gradsum_nodes(int64_t batch, int64_t lo, int64_t hi, grok_gradsum_node *out, int max) {
    int n = 0;
    nodes_rec(0, batch, lo, hi, out, max, &n);
    return n;
}

void grok_gradsum_share(int64_t batch, int rank, int n_ranks, int64_t *lo, int64_t *hi) {
    *lo = batch * rank / n_ranks;
    *hi = batch * (rank + 1) / n_ranks;
}

int grok_gradsum_depth(int64_t batch) {
    int d = 0;
    while (((int64_t)1 << d) < batch) d++;
    return d;
}

static void combine_rec(int64_t a, int64_t c, const grok_gradsum_node *nodes, const float *const *vals, int n,
                        int64_t len, float *out, float *scratch, int depth) {
    for (int i = 0; i < n; i++)
        if (nodes[i].a == a && nodes[i].c == c) {
            memcpy(out, vals[i], sizeof(float) * (size_t)len);
            return;
        }
    const int64_t m = a + (c - a) / 2;
    float *tmp = scratch + (size_t)depth * (size_t)len;
    combine_rec(a, m, nodes, vals, n, len, out, scratch, depth + 1);
    combine_rec(m, c, nodes, vals, n, len, tmp, scratch, depth + 1);
    for (int64_t j = 0; j < len; j++) out[j] += tmp[j];
}

void grok_gradsum_combine(int64_t batch, const grok_gradsum_node *nodes, const float *const *vals,
                          int n_nodes, int64_t len, float *out, float *scratch) {
    combine_rec(0, batch, nodes, vals, n_nodes, len, out, scratch, 0);
}

/* Floats per exchange round: bounds the buffers (and keeps MPI's int
 * counts far from overflowing). */
#define SEGMENT ((int64_t)1 << 24)
#define MAX_NODES 160

int grok_gradsum_allreduce(const grok_train_comm *comm, int64_t batch, const float *const *mine, int n_mine,
                           int64_t len, float *grad, char *err, size_t err_size) {
    const int np = comm ? comm->n_ranks : 1, me = comm ? comm->rank : 0;
    if (np == 1) {
        if (n_mine != 1) {
            snprintf(err, err_size, "gradient sum: one process holds %d subtrees, expected 1", n_mine);
            return -1;
        }
        if (mine[0] != grad) memcpy(grad, mine[0], sizeof(float) * (size_t)len);
        return 0;
    }
    /* every rank's nodes, in rank (= left to right) order */
    int *k = calloc((size_t)np, sizeof *k);
    grok_gradsum_node *all = malloc(sizeof *all * MAX_NODES);
    size_t *sc = malloc(sizeof(size_t) * (size_t)np), *rc = malloc(sizeof(size_t) * (size_t)np);
    int n_all = 0, rcode = 0;
    float *send = NULL, *recv = NULL, *piece = NULL, *scratch = NULL;
    const float **vals = NULL;
    if (!k || !all || !sc || !rc) goto oom;
    for (int r = 0; r < np; r++) {
        int64_t lo, hi;
        grok_gradsum_share(batch, r, np, &lo, &hi);
        k[r] = grok_gradsum_nodes(batch, lo, hi, all + n_all, MAX_NODES - n_all);
        if (n_all + k[r] > MAX_NODES) {
            snprintf(err, err_size, "gradient sum: %d processes over %lld sequences need too many subtrees",
                     np, (long long)batch);
            rcode = -1;
            goto done;
        }
        n_all += k[r];
    }
    if (k[me] != n_mine) {
        snprintf(err, err_size, "gradient sum: rank %d holds %d subtrees, expected %d", me, n_mine, k[me]);
        rcode = -1;
        goto done;
    }
    const int64_t seg = len < SEGMENT ? len : SEGMENT, cmax = seg / np + 1;
    const int depth = grok_gradsum_depth(batch) + 1;
    send = malloc(sizeof(float) * (size_t)(n_mine > 0 ? n_mine : 1) * (size_t)seg);
    recv = malloc(sizeof(float) * (size_t)n_all * (size_t)cmax);
    piece = malloc(sizeof(float) * (size_t)cmax);
    scratch = malloc(sizeof(float) * (size_t)depth * (size_t)cmax);
    vals = malloc(sizeof *vals * (size_t)n_all);
    if (!send || !recv || !piece || !scratch || !vals) goto oom;
    for (int64_t s0 = 0; s0 < len; s0 += seg) {
        const int64_t sl = len - s0 < seg ? len - s0 : seg;
#define C0(j) (s0 + sl * (j) / np)
        float *p = send;
        for (int j = 0; j < np; j++) {
            const int64_t cl = C0(j + 1) - C0(j);
            for (int i = 0; i < n_mine; i++, p += cl) memcpy(p, mine[i] + C0(j), sizeof(float) * (size_t)cl);
            sc[j] = sizeof(float) * (size_t)(cl * n_mine);
        }
        const int64_t my_cl = C0(me + 1) - C0(me);
        for (int r = 0, at = 0; r < np; r++) {
            rc[r] = sizeof(float) * (size_t)(my_cl * k[r]);
            for (int i = 0; i < k[r]; i++, at++) vals[at] = recv + (size_t)at * (size_t)my_cl;
        }
        if (comm->alltoallv(comm->ud, send, sc, recv, rc, err, err_size)) {
            rcode = -1;
            goto done;
        }
        grok_gradsum_combine(batch, all, vals, n_all, my_cl, piece, scratch);
        for (int r = 0; r < np; r++) sc[r] = sizeof(float) * (size_t)(C0(r + 1) - C0(r));
#undef C0
        if (comm->allgatherv(comm->ud, piece, grad + s0, sc, err, err_size)) {
            rcode = -1;
            goto done;
        }
    }
    goto done;
oom:
    snprintf(err, err_size, "gradient sum: out of memory");
    rcode = -1;
done:
    free(k), free(all), free(sc), free(rc), free(send), free(recv), free(piece), free(scratch), free(vals);
    return rcode;
}
