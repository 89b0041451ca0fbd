/*
 * trace.h - `grok trace`'s record of what the router did over a text and
 * the statistics drawn from it (trace_stats.c: per token entropy and
 * margin; per layer expert shares, load imbalance, co-activation, reuse by
 * consecutive tokens, and the hit rates an expert cache of k experts per
 * layer would get under LRU and under the optimal policy), written as JSON,
 * and the pictures of it (trace_draw.c, with cairo when the build has it).
 */
#ifndef GROK_CLI_TRACE_H
#define GROK_CLI_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "grok.h"

typedef struct {
    int64_t n_tok, n_cap; /* tokens recorded, room */
    int64_t L, E, K;
    int32_t *ids;  /* [n_cap] */
    char **text;   /* [n_cap] each token's text (UTF-8, for labels) */
    float *probs;  /* [n_cap][L][E] router softmax */
    int32_t *sel;  /* [n_cap][L][K] chosen experts, best first */
    float *gates;  /* [n_cap][L][K] */
    uint8_t *seen; /* [n_cap][L] 1 once the hook filled the cell */
    int64_t base;  /* index of the sequence's position 0 (windows of the context) */
} grok_trace;

/* Per-layer statistics (trace_stats.c). */
typedef struct {
    double *count;     /* [E] tokens that chose the expert (at any of the K ranks) */
    double *share;     /* [E] count / (tokens x K): sums to 1 */
    double *first;     /* [E] tokens whose first choice it was */
    double *mean_prob; /* [E] mean router probability */
    double imbalance;  /* max share / mean share (1 = perfectly even) */
    double cv;         /* coefficient of variation of count (population std / mean) */
    double *coact;     /* [E][E] tokens that chose both (diagonal: count) */
    double mean_entropy, mean_margin;
    double reuse;    /* of a token's K experts, the fraction the previous token also chose */
    double same_set; /* tokens whose chosen set equals the previous token's */
    double *lru;     /* [E + 1] hit rate of an LRU cache of k experts (index k; 0 unused) */
    double *opt;     /* [E + 1] the same under the optimal policy (Belady's MIN) */
} grok_trace_layer;

typedef struct {
    int64_t L, E, K, n_tok;
    double *entropy;         /* [n_tok][L] bits */
    double *margin;          /* [n_tok][L] top-1 minus top-2 probability */
    grok_trace_layer *layer; /* [L] */
    grok_trace_layer all;    /* every layer pooled (shares and rates averaged over layers) */
} grok_trace_stats;

int grok_trace_init(grok_trace *t, const grok_hparams *hp, int64_t n_cap);
void grok_trace_free(grok_trace *t);
/* The routing hook (grok_context_set_routing_hook) filling t. */
void grok_trace_hook(void *user, const grok_routing *r);
/* Records token i's id and text; false when out of memory. */
bool grok_trace_set_token(grok_trace *t, int64_t i, int32_t id, const char *text);

int grok_trace_stats_compute(grok_trace_stats *s, const grok_trace *t);
void grok_trace_stats_free(grok_trace_stats *s);
/* The whole record and its statistics as JSON; -1 on a write error. */
int grok_trace_write_json(FILE *f, const grok_trace *t, const grok_trace_stats *s, const char *model_name);
/* A table of the per-layer statistics, for people. */
void grok_trace_print_summary(FILE *f, const grok_trace *t, const grok_trace_stats *s);

/* Pictures (trace_draw.c): a token x layer heatmap of the chosen experts,
 * per-layer usage bars and the cache hit rates, as SVG or PNG. Without
 * cairo in the build they return -1 with err saying so. max_rows: tokens
 * drawn at most. */
bool grok_trace_can_draw(void);
const char *grok_trace_draw_backend(void);
int grok_trace_draw(const char *path, bool png, const grok_trace *t, const grok_trace_stats *s,
                    const char *title, int64_t max_rows, char *err, size_t err_size);

#endif
