/*
 * plan.h - the cost model of `grok plan` (src/dist/plan.c): inputs are a
 * model's shapes and weight types, the ranks and the machines; outputs the
 * memory of the largest share, the bytes each rank sends per token and the
 * expected decode speed. docs/distributed.md derives the formulas.
 */
#ifndef GROK_PLAN_H
#define GROK_PLAN_H

#include <stdio.h>

#include "dist/dist.h"

typedef struct {
    grok_hparams hp;
    grok_type t_attn, t_expert, t_out; /* weight types */
    bool tied;                         /* output head = embedding */
    int n_ranks;
    grok_split split;
    double mem_gbs;      /* memory bandwidth of one rank, GB/s */
    double net_gbit;     /* link bandwidth, Gbit/s */
    double lat_us;       /* one message's latency, microseconds */
    double mem_per_rank; /* bytes; <= 0: not checked */
    int64_t ctx;         /* KV cache length */
    int64_t pos;         /* position of the decoded token (KV reads) */
    grok_type kv_type;
} grok_plan_in;

typedef struct {
    double t_compute, t_comm; /* seconds per token */
    double tok_s;
    double bytes_per_layer; /* sent by each rank */
    double bytes_per_token;
    double mem_max; /* bytes of the largest share */
    bool fits;
} grok_plan_out;

/* Computes the plan, printing the placement and the estimate to f when not
 * NULL. Fails (err) only when the split cannot be made. */
int grok_plan_run(const grok_plan_in *in, grok_plan_out *out, FILE *f, char *err, size_t err_size);

#endif
