/*
 * partition.c - which part of the model each rank computes. Shares are
 * contiguous ranges so that every rank's weights are a few runs of the
 * file (row ranges, or column ranges on block boundaries) and untouched
 * pages of the memory map are never read. Uneven splits are allowed: the
 * first ranks get the smaller parts, a rank may own no KV head at all.
 */
#include <inttypes.h>
#include <stdio.h>

#include "dist/dist.h"

const char *grok_split_name(grok_split s) {
    return s == GROK_SPLIT_FFN ? "ffn" : s == GROK_SPLIT_LAYERS ? "layers" : "experts";
}

/* [r*n/N, (r+1)*n/N) in units of `unit`, the last range ending at total. */
static void split_range(int64_t total, int64_t unit, int r, int n, int64_t *lo, int64_t *hi) {
    const int64_t units = total / unit;
    *lo = units * r / n * unit;
    *hi = r == n - 1 ? total : units * (r + 1) / n * unit;
}

int grok_dist_partition(const grok_hparams *hp, int rank, int n, grok_split split, int64_t align,
                        grok_dist *d, char *err, size_t err_size) {
    if (n < 1 || rank < 0 || rank >= n) {
        snprintf(err, err_size, "rank %d of %d is not a valid rank", rank, n);
        return -1;
    }
    if (align < 1 || hp->n_ff % align != 0) align = 1;
    *d = (grok_dist){.rank = rank, .n_ranks = n, .l0 = 0, .l1 = hp->n_layers};
    if (split == GROK_SPLIT_LAYERS) {
        if (n > hp->n_layers) {
            snprintf(err, err_size,
                     "--mpi-split layers: %d ranks but only %" PRId64 " layers (use --mpi-split ffn)", n,
                     hp->n_layers);
            return -1;
        }
        /* rank 0 also runs the embedding and the output head: with an
         * uneven split it gets the fewer layers */
        d->pipeline = n > 1;
        split_range(hp->n_layers, 1, rank, n, &d->l0, &d->l1);
        d->kvh1 = hp->n_kv_heads, d->e1 = hp->n_experts, d->f1 = hp->n_ff;
        if (rank == 0) d->v1 = hp->n_vocab;
        return 0;
    }
    split_range(hp->n_kv_heads, 1, rank, n, &d->kvh0, &d->kvh1);
    split_range(hp->n_vocab, 1, rank, n, &d->v0, &d->v1);
    if (split == GROK_SPLIT_EXPERTS) {
        if (n > hp->n_experts) {
            snprintf(err, err_size,
                     "--mpi-split experts: %d ranks but only %" PRId64
                     " experts per layer (use --mpi-split ffn)",
                     n, hp->n_experts);
            return -1;
        }
        split_range(hp->n_experts, 1, rank, n, &d->e0, &d->e1);
        d->f0 = 0, d->f1 = hp->n_ff;
    } else {
        d->e0 = 0, d->e1 = hp->n_experts;
        split_range(hp->n_ff, align, rank, n, &d->f0, &d->f1);
    }
    return 0;
}
