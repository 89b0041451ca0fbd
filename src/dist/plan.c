/*
 * plan.c - the cost model of a distributed decode step (docs/distributed.md)
 * and `grok plan`'s report: each rank's share, its memory, the bytes it
 * reads and sends per token, and the tokens per second the model expects.
 *
 * Decoding one token is bound by memory bandwidth on every rank (each
 * weight byte of its share that the token needs is read once) and by the
 * two sums per layer that combine the shares. A layer ends when its slowest
 * rank ends, so with whole experts per rank the MoE time is the expected
 * maximum load over the routing (exact, over every choice of experts,
 * assuming uniform routing), not the mean. A pipeline (whole layers per
 * rank) runs its ranks one after the other for one token: the reads add up
 * as on one machine, and the only traffic is one vector of d_model floats
 * per boundary between ranks.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "dist/plan.h"

static double row_bytes(grok_type t, int64_t n) {
    int64_t b = grok_type_row_size(t, n);
    return b < 0 ? (double)n * 4 : (double)b;
}

/* Expected max over ranks of the number of a token's K experts a rank owns
 * (K distinct experts of E, uniform), by enumerating the K-subsets. */
static double expected_max_load(const int64_t *owner, int64_t E, int64_t K, int n_ranks) {
    if (K > E || E > 64) return (double)K; /* pessimistic: all on one rank */
    int64_t idx[64], combos = 0;
    double sum = 0;
    int *load = calloc((size_t)n_ranks, sizeof(int));
    if (!load) return (double)K;
    for (int64_t i = 0; i < K; i++) idx[i] = i;
    for (;;) {
        memset(load, 0, (size_t)n_ranks * sizeof(int));
        int mx = 0;
        for (int64_t i = 0; i < K; i++) {
            int l = ++load[owner[idx[i]]];
            if (l > mx) mx = l;
        }
        sum += mx;
        combos++;
        if (combos > 2000000) break; /* a sample is enough */
        int64_t i = K - 1;
        while (i >= 0 && idx[i] == E - K + i) i--;
        if (i < 0) break;
        idx[i]++;
        for (int64_t j = i + 1; j < K; j++) idx[j] = idx[j - 1] + 1;
    }
    free(load);
    return sum / (double)combos;
}

static void fmt_bytes(char *b, size_t n, double v) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    snprintf(b, n, "%.*f %s", i ? 2 : 0, v, u[i]);
}

int grok_plan_run(const grok_plan_in *in, grok_plan_out *out, FILE *f, char *err, size_t err_size) {
    const grok_hparams *hp = &in->hp;
    const int N = in->n_ranks;
    const int64_t d = hp->d_model, D = hp->head_dim, G = hp->n_heads / hp->n_kv_heads;
    const int64_t E = hp->n_experts, K = hp->n_experts_used, L = hp->n_layers;
    const double kv_elt = in->kv_type == GROK_TYPE_F16 ? 2 : 4;
    const double bw = in->mem_gbs * 1e9, net = in->net_gbit * 1e9 / 8, lat = in->lat_us * 1e-6;
    int64_t align = grok_type_get_traits(in->t_expert)->block_size;
    int64_t owner[64] = {0};
    const bool pipe = in->split == GROK_SPLIT_LAYERS && N > 1;
    double attn_max = 0, head_max = 0, mem_max = 0, expert_unit_max = 0, pipe_read = 0;
    char b1[32], b2[32], b3[32];
    if (f)
        fprintf(f, "plan: %d rank%s, split by %s, weights %s (attention) / %s (experts) / %s (head)\n", N,
                N > 1 ? "s" : "", grok_split_name(in->split), grok_type_get_traits(in->t_attn)->name,
                grok_type_get_traits(in->t_expert)->name, grok_type_get_traits(in->t_out)->name);
    for (int r = 0; r < N; r++) {
        grok_dist s;
        if (grok_dist_partition(hp, r, N, in->split, align, &s, err, err_size)) return -1;
        const int64_t kvh = s.kvh1 - s.kvh0, ne = s.e1 - s.e0, nf = s.f1 - s.f0, nv = s.v1 - s.v0;
        const int64_t nl = s.l1 - s.l0; /* layers: all of them unless a pipeline */
        for (int64_t e = s.e0; e < s.e1 && e < 64; e++) owner[e] = r;
        /* bytes of one layer's attention share: q, k, v rows and Wo columns */
        double attn = (double)(kvh * G * D + 2 * kvh * D) * row_bytes(in->t_attn, d) +
                      (double)d * row_bytes(in->t_attn, kvh * G * D);
        double router = (double)E * (double)d * 4;
        /* one expert's share: gate and up rows, down columns */
        double expert =
            2.0 * (double)nf * row_bytes(in->t_expert, d) + (double)d * row_bytes(in->t_expert, nf);
        double head = (double)nv * row_bytes(in->t_out, d);
        double embd = in->tied ? 0 : (double)nv * row_bytes(in->t_out, d); /* lookups touch any row */
        double kv_cache = 2.0 * (double)nl * (double)in->ctx * (double)(kvh * D) * kv_elt;
        double weights = (double)nl * (attn + router + (double)ne * expert + 4.0 * d * 4) + head + embd;
        /* a token at position pos also reads its heads' keys and values */
        double kv_read = 2.0 * (double)in->pos * (double)(kvh * D) * kv_elt;
        double per_tok_attn = attn + router + kv_read;
        pipe_read += (double)nl * (per_tok_attn + (double)K * expert) + head; /* ranks in turn */
        if (per_tok_attn > attn_max) attn_max = per_tok_attn;
        if (expert > expert_unit_max) expert_unit_max = expert;
        if (head > head_max) head_max = head;
        double mem = weights + kv_cache;
        if (mem > mem_max) mem_max = mem;
        if (f) {
            fmt_bytes(b1, sizeof b1, weights), fmt_bytes(b2, sizeof b2, kv_cache);
            fmt_bytes(b3, sizeof b3, mem);
            fprintf(f,
                    "  rank %d: layers [%" PRId64 ",%" PRId64 ") kv heads [%" PRId64 ",%" PRId64
                    ") experts [%" PRId64 ",%" PRId64 ") ffn rows [%" PRId64 ",%" PRId64 ") vocab [%" PRId64
                    ",%" PRId64 ") | weights %s + KV cache %s = %s%s\n",
                    r, s.l0, s.l1, s.kvh0, s.kvh1, s.e0, s.e1, s.f0, s.f1, s.v0, s.v1, b1, b2, b3,
                    in->mem_per_rank > 0 && mem > in->mem_per_rank ? "  DOES NOT FIT" : "");
        }
    }
    /* Expert work per layer on the slowest rank: split by FFN rows, every
     * rank computes a slice of each of the K experts; split by experts, the
     * busiest rank computes all of its experts that the token selected. */
    double moe_units = in->split != GROK_SPLIT_EXPERTS ? (double)K : expected_max_load(owner, E, K, N);
    double moe_bytes = moe_units * expert_unit_max;
    /* Sums: reduce-scatter + all-gather, each sends (N-1)/N of the vector
     * and takes ceil(log2 N) latency steps (the recursive algorithms Open
     * MPI uses for small vectors). */
    const double vec = (double)d * 4, steps = N > 1 ? ceil(log2((double)N)) : 0;
    const double sum_bytes = N > 1 ? 2.0 * (N - 1) / N * vec : 0;
    const double t_sum = N > 1 ? sum_bytes / net + 2 * steps * lat : 0;
    const double gather_bytes = N > 1 ? (double)(N - 1) / N * (double)hp->n_vocab * 4 : 0;
    const double t_gather = N > 1 ? gather_bytes / net + steps * lat : 0;
    const double t_bcast = N > 1 ? steps * lat + 8 / net : 0;
    out->t_compute = ((double)L * (attn_max + moe_bytes) + head_max) / bw;
    out->t_comm = (double)L * 2 * t_sum + t_gather + t_bcast;
    out->bytes_per_layer = 2 * sum_bytes;
    out->bytes_per_token = (double)L * 2 * sum_bytes + gather_bytes;
    if (pipe) { /* N hand-overs of one vector (the last one back to rank 0), in turn */
        out->t_compute = pipe_read / bw;
        out->t_comm = (double)N * (vec / net + lat) + t_bcast;
        out->bytes_per_layer = 0;
        out->bytes_per_token = vec;
    }
    out->tok_s = 1.0 / (out->t_compute + out->t_comm);
    out->mem_max = mem_max;
    out->fits = in->mem_per_rank <= 0 || mem_max <= in->mem_per_rank;
    if (f && pipe) {
        fmt_bytes(b1, sizeof b1, vec), fmt_bytes(b2, sizeof b2, pipe_read);
        fprintf(f,
                "  per token, sent by each rank: %s (one vector of %" PRId64 " floats to the next "
                "rank, the last one back to rank 0: %d boundaries)\n",
                b1, d, N);
        fprintf(f,
                "  per token, read by all ranks in turn: %s (as on one machine: no speed-up for one "
                "sequence)\n",
                b2);
    } else if (f) {
        fmt_bytes(b1, sizeof b1, out->bytes_per_layer), fmt_bytes(b2, sizeof b2, out->bytes_per_token);
        fprintf(f,
                "  per token, sent by each rank: %s per layer (2 sums of %" PRId64
                " floats), %s with the logits gather\n",
                b1, d, b2);
        fmt_bytes(b1, sizeof b1, (double)L * (attn_max + moe_bytes) + head_max);
        fprintf(f, "  per token, read by the busiest rank: %s (%.2f experts' shares per layer)\n", b1,
                moe_units);
    }
    if (f) {
        fprintf(f,
                "  model (%.1f GB/s memory per rank, %.1f Gbit/s, %.1f us): compute %.2f ms + "
                "network %.2f ms per token = %.2f tok/s\n",
                in->mem_gbs, in->net_gbit, in->lat_us, out->t_compute * 1e3, out->t_comm * 1e3, out->tok_s);
        if (in->mem_per_rank > 0) {
            fmt_bytes(b1, sizeof b1, mem_max), fmt_bytes(b2, sizeof b2, in->mem_per_rank);
            fprintf(f, "  memory: the largest share needs %s of %s per rank: %s\n", b1, b2,
                    out->fits ? "fits" : "DOES NOT FIT");
        }
    }
    return 0;
}
