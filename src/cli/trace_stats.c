/*
 * trace_stats.c - the record `grok trace` collects through the routing
 * hook, and what it says about the router: per token and layer the
 * entropy of the router's distribution (bits) and the margin between its
 * two best experts; per layer each expert's share of the choices, the load
 * imbalance (max share / mean share, and the coefficient of variation of
 * the counts), the co-activation counts, how often a token reuses the
 * experts of the token before it, and the hit rate of an expert cache
 * holding k experts per layer, for every k, under LRU and under the
 * optimal (Belady) policy, which bounds what any cache could gain. The
 * cache sees the choices in text order, a token's experts best first.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/trace.h"

int grok_trace_init(grok_trace *t, const grok_hparams *hp, int64_t n_cap) {
    memset(t, 0, sizeof *t);
    t->L = hp->n_layers, t->E = hp->n_experts, t->K = hp->n_experts_used, t->n_cap = n_cap;
    const size_t n = (size_t)(n_cap > 0 ? n_cap : 1), L = (size_t)t->L;
    t->ids = calloc(n, sizeof *t->ids);
    t->text = calloc(n, sizeof *t->text);
    t->probs = calloc(n * L * (size_t)t->E, sizeof *t->probs);
    t->sel = calloc(n * L * (size_t)t->K, sizeof *t->sel);
    t->gates = calloc(n * L * (size_t)t->K, sizeof *t->gates);
    t->seen = calloc(n * L, 1);
    return t->ids && t->text && t->probs && t->sel && t->gates && t->seen ? 0 : -1;
}

void grok_trace_free(grok_trace *t) {
    for (int64_t i = 0; t->text && i < t->n_cap; i++) free(t->text[i]);
    free(t->ids), free(t->text), free(t->probs), free(t->sel), free(t->gates), free(t->seen);
    memset(t, 0, sizeof *t);
}

void grok_trace_hook(void *user, const grok_routing *r) {
    grok_trace *t = user;
    const int64_t i = t->base + r->pos;
    if (i < 0 || i >= t->n_cap || r->layer < 0 || r->layer >= t->L || r->n_experts != t->E ||
        r->n_used != t->K)
        return;
    const size_t cell = (size_t)i * (size_t)t->L + (size_t)r->layer;
    memcpy(t->probs + cell * (size_t)t->E, r->probs, (size_t)t->E * sizeof(float));
    memcpy(t->sel + cell * (size_t)t->K, r->experts, (size_t)t->K * sizeof(int32_t));
    memcpy(t->gates + cell * (size_t)t->K, r->gates, (size_t)t->K * sizeof(float));
    t->seen[cell] = 1;
    if (i >= t->n_tok) t->n_tok = i + 1;
}

bool grok_trace_set_token(grok_trace *t, int64_t i, int32_t id, const char *text) {
    if (i < 0 || i >= t->n_cap) return false;
    t->ids[i] = id;
    free(t->text[i]);
    return (t->text[i] = strdup(text)) != NULL;
}

/* ---- statistics ---- */

static int layer_alloc(grok_trace_layer *l, int64_t E) {
    const size_t e = (size_t)E;
    l->count = calloc(e, sizeof(double));
    l->share = calloc(e, sizeof(double));
    l->first = calloc(e, sizeof(double));
    l->mean_prob = calloc(e, sizeof(double));
    l->coact = calloc(e * e, sizeof(double));
    l->lru = calloc(e + 1, sizeof(double));
    l->opt = calloc(e + 1, sizeof(double));
    return l->count && l->share && l->first && l->mean_prob && l->coact && l->lru && l->opt ? 0 : -1;
}

static void layer_free(grok_trace_layer *l) {
    free(l->count), free(l->share), free(l->first), free(l->mean_prob), free(l->coact), free(l->lru),
        free(l->opt);
}

void grok_trace_stats_free(grok_trace_stats *s) {
    for (int64_t l = 0; s->layer && l < s->L; l++) layer_free(&s->layer[l]);
    layer_free(&s->all);
    free(s->layer), free(s->entropy), free(s->margin);
    memset(s, 0, sizeof *s);
}

/* Shares, imbalance and CV from the counts already in l. */
static void finish_counts(grok_trace_layer *l, int64_t E, double n_choices) {
    double mean = 0, var = 0, mx = 0;
    for (int64_t e = 0; e < E; e++) mean += l->count[e];
    mean /= (double)E;
    for (int64_t e = 0; e < E; e++) {
        l->share[e] = n_choices > 0 ? l->count[e] / n_choices : 0;
        var += (l->count[e] - mean) * (l->count[e] - mean);
        if (l->share[e] > mx) mx = l->share[e];
    }
    l->imbalance = mx * (double)E;
    l->cv = mean > 0 ? sqrt(var / (double)E) / mean : 0;
}

/* Hit rates of a cache of k = 1..E experts over the chosen sets a[T][K]
 * (values in [0, E)), token by token as an expert cache fetches them: a
 * token's experts already cached are hits, each missing one replaces a
 * cached expert the token does not need (k < K: any). LRU evicts the one
 * least recently needed; MIN (Belady) the one needed again furthest in the
 * future, which no policy beats. Rates are hits over T x K. */
static void cache_rates(const int32_t *a, int64_t T, int64_t K, int64_t E, double *lru, double *opt) {
    const size_t n = (size_t)(T > 0 ? T : 1) * (size_t)K;
    int64_t *next = malloc(n * sizeof *next); /* token index of the next need of a[i] */
    int64_t *last = malloc((size_t)E * sizeof *last);
    int64_t *stamp = malloc((size_t)E * sizeof *stamp);
    uint8_t *in = malloc((size_t)E), *need = malloc((size_t)E);
    if (!next || !last || !stamp || !in || !need) goto done;
    for (int64_t e = 0; e < E; e++) last[e] = INT64_MAX;
    for (int64_t i = T - 1; i >= 0; i--) {
        for (int64_t k = 0; k < K; k++) next[i * K + k] = last[a[i * K + k]];
        for (int64_t k = 0; k < K; k++) last[a[i * K + k]] = i;
    }
    for (int64_t c = 1; c <= E; c++) {
        for (int policy = 0; policy < 2; policy++) {
            int64_t hits = 0, used = 0;
            memset(in, 0, (size_t)E);
            for (int64_t i = 0; i < T; i++) {
                const int32_t *set = a + i * K;
                memset(need, 0, (size_t)E);
                for (int64_t k = 0; k < K; k++) need[set[k]] = 1;
                for (int64_t k = 0; k < K; k++) hits += in[set[k]];
                for (int64_t k = 0; k < K; k++) {
                    const int32_t e = set[k];
                    if (!in[e]) {
                        if (used < c) {
                            used++;
                        } else {
                            int64_t victim = -1;
                            for (int pass = 0; pass < 2 && victim < 0; pass++) /* first: one not needed now */
                                for (int64_t j = 0; j < E; j++) {
                                    if (!in[j] || (pass == 0 && need[j])) continue;
                                    if (victim < 0 ||
                                        (policy == 0 ? stamp[j] < stamp[victim] : stamp[j] > stamp[victim]))
                                        victim = j;
                                }
                            in[victim] = 0;
                        }
                        in[e] = 1;
                    }
                    stamp[e] =
                        policy == 0 ? i * K + k : next[i * K + k]; /* LRU: a token's experts best first */
                }
            }
            (policy == 0 ? lru : opt)[c] = T > 0 ? (double)hits / (double)(T * K) : 0;
        }
    }
done:
    free(next), free(last), free(stamp), free(in), free(need);
}

int grok_trace_stats_compute(grok_trace_stats *s, const grok_trace *t) {
    memset(s, 0, sizeof *s);
    const int64_t L = t->L, E = t->E, K = t->K, T = t->n_tok;
    s->L = L, s->E = E, s->K = K, s->n_tok = T;
    const size_t cells = (size_t)(T > 0 ? T : 1) * (size_t)L;
    s->entropy = calloc(cells, sizeof(double));
    s->margin = calloc(cells, sizeof(double));
    s->layer = calloc((size_t)L, sizeof *s->layer);
    int32_t *acc = malloc((size_t)(T > 0 ? T : 1) * (size_t)K * sizeof *acc);
    int rc = -1;
    if (!s->entropy || !s->margin || !s->layer || !acc || layer_alloc(&s->all, E)) goto done;
    for (int64_t l = 0; l < L; l++)
        if (layer_alloc(&s->layer[l], E)) goto done;
    for (int64_t l = 0; l < L; l++) {
        grok_trace_layer *ly = &s->layer[l];
        double reuse = 0, same = 0;
        for (int64_t i = 0; i < T; i++) {
            const size_t cell = (size_t)i * (size_t)L + (size_t)l;
            const float *p = t->probs + cell * (size_t)E;
            const int32_t *sel = t->sel + cell * (size_t)K;
            double h = 0, p1 = -1, p2 = -1;
            for (int64_t e = 0; e < E; e++) {
                if (p[e] > 0) h -= (double)p[e] * log2((double)p[e]);
                ly->mean_prob[e] += p[e];
                if (p[e] > p1)
                    p2 = p1, p1 = p[e];
                else if (p[e] > p2)
                    p2 = p[e];
            }
            s->entropy[cell] = h;
            s->margin[cell] = E > 1 ? p1 - p2 : 1;
            ly->mean_entropy += h;
            ly->mean_margin += s->margin[cell];
            ly->first[sel[0]] += 1;
            for (int64_t k = 0; k < K; k++) {
                ly->count[sel[k]] += 1;
                acc[i * K + k] = sel[k];
                for (int64_t k2 = 0; k2 < K; k2++) ly->coact[sel[k] * E + sel[k2]] += 1;
            }
            if (i > 0) {
                const int32_t *prev = sel - (size_t)L * (size_t)K;
                int64_t common = 0;
                for (int64_t k = 0; k < K; k++)
                    for (int64_t k2 = 0; k2 < K; k2++) common += sel[k] == prev[k2];
                reuse += (double)common / (double)K;
                same += common == K;
            }
        }
        const double nt = (double)(T > 0 ? T : 1);
        for (int64_t e = 0; e < E; e++) ly->mean_prob[e] /= nt;
        ly->mean_entropy /= nt, ly->mean_margin /= nt;
        ly->reuse = T > 1 ? reuse / (double)(T - 1) : 0;
        ly->same_set = T > 1 ? same / (double)(T - 1) : 0;
        finish_counts(ly, E, (double)T * (double)K);
        cache_rates(acc, T, K, E, ly->lru, ly->opt);
        /* pooled over layers */
        grok_trace_layer *a = &s->all;
        for (int64_t e = 0; e < E; e++) {
            a->count[e] += ly->count[e], a->first[e] += ly->first[e];
            a->mean_prob[e] += ly->mean_prob[e] / (double)L;
            for (int64_t e2 = 0; e2 < E; e2++) a->coact[e * E + e2] += ly->coact[e * E + e2];
        }
        for (int64_t k = 0; k <= E; k++)
            a->lru[k] += ly->lru[k] / (double)L, a->opt[k] += ly->opt[k] / (double)L;
        a->mean_entropy += ly->mean_entropy / (double)L, a->mean_margin += ly->mean_margin / (double)L;
        a->reuse += ly->reuse / (double)L, a->same_set += ly->same_set / (double)L;
    }
    finish_counts(&s->all, E, (double)T * (double)K * (double)L);
    /* pooled imbalance: the mean of the layers' (a pooled count hides per-layer skew) */
    s->all.imbalance = s->all.cv = 0;
    for (int64_t l = 0; l < L; l++) {
        s->all.imbalance += s->layer[l].imbalance / (double)L;
        s->all.cv += s->layer[l].cv / (double)L;
    }
    rc = 0;
done:
    free(acc);
    if (rc) grok_trace_stats_free(s);
    return rc;
}

/* ---- output ---- */

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if (*u == '"' || *u == '\\')
            fprintf(f, "\\%c", *u);
        else if (*u == '\n')
            fputs("\\n", f);
        else if (*u == '\t')
            fputs("\\t", f);
        else if (*u < 0x20)
            fprintf(f, "\\u%04x", *u);
        else
            fputc(*u, f);
    }
    fputc('"', f);
}

static void json_nums(FILE *f, const double *v, int64_t n) {
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) fprintf(f, "%s%.6g", i ? "," : "", v[i]);
    fputc(']', f);
}

static void json_layer(FILE *f, const grok_trace_layer *l, int64_t E, const char *indent) {
    fprintf(f, "%s\"count\": ", indent), json_nums(f, l->count, E);
    fprintf(f, ",\n%s\"share\": ", indent), json_nums(f, l->share, E);
    fprintf(f, ",\n%s\"first_choice\": ", indent), json_nums(f, l->first, E);
    fprintf(f, ",\n%s\"mean_prob\": ", indent), json_nums(f, l->mean_prob, E);
    fprintf(f, ",\n%s\"imbalance\": %.6g, \"cv\": %.6g", indent, l->imbalance, l->cv);
    fprintf(f, ",\n%s\"mean_entropy\": %.6g, \"mean_margin\": %.6g", indent, l->mean_entropy, l->mean_margin);
    fprintf(f, ",\n%s\"reuse\": %.6g, \"same_set\": %.6g", indent, l->reuse, l->same_set);
    fprintf(f, ",\n%s\"coactivation\": [", indent);
    for (int64_t e = 0; e < E; e++) fputs(e ? "," : "", f), json_nums(f, l->coact + e * E, E);
    fprintf(f, "]");
    fprintf(f, ",\n%s\"lru_hit_rate\": ", indent), json_nums(f, l->lru + 1, E);
    fprintf(f, ",\n%s\"optimal_hit_rate\": ", indent), json_nums(f, l->opt + 1, E);
}

int grok_trace_write_json(FILE *f, const grok_trace *t, const grok_trace_stats *s, const char *model_name) {
    const int64_t L = t->L, E = t->E, K = t->K;
    fprintf(f, "{\n  \"model\": ");
    json_str(f, model_name);
    fprintf(f,
            ",\n  \"n_tokens\": %" PRId64 ", \"n_layers\": %" PRId64 ", \"n_experts\": %" PRId64
            ", \"n_experts_used\": %" PRId64 ",\n",
            t->n_tok, L, E, K);
    fprintf(f, "  \"entropy_unit\": \"bits\", \"cache_k\": \"lru_hit_rate[k-1] is a cache of k experts per "
               "layer\",\n");
    fprintf(f, "  \"tokens\": [\n");
    for (int64_t i = 0; i < t->n_tok; i++) {
        fprintf(f, "    {\"i\": %" PRId64 ", \"id\": %" PRId32 ", \"text\": ", i, t->ids[i]);
        json_str(f, t->text[i] ? t->text[i] : "");
        fprintf(f, ", \"layers\": [");
        for (int64_t l = 0; l < L; l++) {
            const size_t cell = (size_t)i * (size_t)L + (size_t)l;
            fprintf(f, "%s\n      {\"experts\": [", l ? "," : "");
            for (int64_t k = 0; k < K; k++) fprintf(f, "%s%" PRId32, k ? "," : "", t->sel[cell * K + k]);
            fprintf(f, "], \"gates\": [");
            for (int64_t k = 0; k < K; k++) fprintf(f, "%s%.6g", k ? "," : "", t->gates[cell * K + k]);
            fprintf(f, "], \"probs\": [");
            for (int64_t e = 0; e < E; e++) fprintf(f, "%s%.6g", e ? "," : "", t->probs[cell * E + e]);
            fprintf(f, "], \"entropy\": %.6g, \"margin\": %.6g}", s->entropy[cell], s->margin[cell]);
        }
        fprintf(f, "]}%s\n", i + 1 < t->n_tok ? "," : "");
    }
    fprintf(f, "  ],\n  \"layers\": [\n");
    for (int64_t l = 0; l < L; l++) {
        fprintf(f, "    {\"layer\": %" PRId64 ",\n", l);
        json_layer(f, &s->layer[l], E, "     ");
        fprintf(f, "}%s\n", l + 1 < L ? "," : "");
    }
    fprintf(f, "  ],\n  \"all_layers\": {\n");
    json_layer(f, &s->all, E, "    ");
    fprintf(f, "}\n}\n");
    return ferror(f) ? -1 : 0;
}

void grok_trace_print_summary(FILE *f, const grok_trace *t, const grok_trace_stats *s) {
    const int64_t E = t->E, K = t->K, kc = K * 2 <= E ? K * 2 : E;
    fprintf(f,
            "%" PRId64 " tokens, %" PRId64 " layers, top-%" PRId64 " of %" PRId64
            " experts (entropy in bits, at most %.2f; uniform routing: reuse %.2f, max/mean 1)\n",
            t->n_tok, t->L, K, E, log2((double)E), (double)K / (double)E);
    fprintf(f, "%-6s %8s %7s %8s %6s %6s %6s %9s %9s %9s  %s\n", "layer", "entropy", "margin", "max/mean",
            "cv", "reuse", "same", "lru@K", "lru@2K", "opt@2K", "busiest expert (share)");
    for (int64_t l = 0; l <= t->L; l++) {
        const grok_trace_layer *ly = l < t->L ? &s->layer[l] : &s->all;
        int64_t top = 0;
        for (int64_t e = 1; e < E; e++)
            if (ly->share[e] > ly->share[top]) top = e;
        char name[16];
        snprintf(name, sizeof name, l < t->L ? "%" PRId64 : "all", l);
        fprintf(f, "%-6s %8.3f %7.3f %8.2f %6.2f %6.2f %6.2f %9.3f %9.3f %9.3f  %" PRId64 " (%.3f)\n", name,
                ly->mean_entropy, ly->mean_margin, ly->imbalance, ly->cv, ly->reuse, ly->same_set, ly->lru[K],
                ly->lru[kc], ly->opt[kc], top, ly->share[top]);
    }
}
