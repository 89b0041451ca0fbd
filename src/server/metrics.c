/*
 * metrics.c - the /metrics endpoint of `grok serve` in the Prometheus text
 * format: requests by outcome, prompt and generated tokens, queue depth,
 * busy slots, forward steps and the weight bytes and experts they read,
 * and histograms of request latency and time to first token. The counters live in struct server and change under its
 * mutex; this file only observes and prints them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "util/buf.h"

/* Upper bounds (seconds) of the histogram buckets; +Inf is the count. */
static const double BOUNDS[HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static const char *const OUTCOME[OUT_COUNT] = {"ok",           "stopped",   "rejected", "bad_request",
                                               "unauthorized", "cancelled", "timeout",  "error"};

void metrics_observe(histogram *h, double v) {
    h->sum += v;
    h->count++;
    for (int i = 0; i < HIST_BUCKETS; i++)
        if (v <= BOUNDS[i]) h->buckets[i]++;
}

static void put_hist(grok_strbuf *o, const char *name, const char *help, const histogram *h) {
    grok_strbuf_addf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < HIST_BUCKETS; i++)
        grok_strbuf_addf(o, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, BOUNDS[i], h->buckets[i]);
    grok_strbuf_addf(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n%s_count %" PRIu64 "\n", name,
                     h->count, name, h->sum, name, h->count);
}

char *metrics_text(server *s, size_t *len) {
    grok_strbuf o = {0};
    pthread_mutex_lock(&s->mu);
    metrics m = s->m;
    int64_t q = s->q_len, busy = s->busy, slots = s->n_slots;
    pthread_mutex_unlock(&s->mu);
    grok_strbuf_addf(&o, "# HELP grok_requests_total Generation requests by outcome.\n"
                         "# TYPE grok_requests_total counter\n");
    for (int i = 0; i < OUT_COUNT; i++)
        grok_strbuf_addf(&o, "grok_requests_total{outcome=\"%s\"} %" PRIu64 "\n", OUTCOME[i], m.requests[i]);
    grok_strbuf_addf(
        &o,
        "# HELP grok_prompt_tokens_total Prompt tokens of admitted requests.\n"
        "# TYPE grok_prompt_tokens_total counter\ngrok_prompt_tokens_total %" PRIu64 "\n"
        "# HELP grok_prompt_tokens_reused_total Prompt tokens found in a slot's cache.\n"
        "# TYPE grok_prompt_tokens_reused_total counter\ngrok_prompt_tokens_reused_total %" PRIu64 "\n"
        "# HELP grok_completion_tokens_total Tokens generated.\n"
        "# TYPE grok_completion_tokens_total counter\ngrok_completion_tokens_total %" PRIu64 "\n"
        "# HELP grok_steps_total Forward steps run.\n"
        "# TYPE grok_steps_total counter\ngrok_steps_total %" PRIu64 "\n"
        "# HELP grok_step_tokens_total Tokens processed by forward steps.\n"
        "# TYPE grok_step_tokens_total counter\ngrok_step_tokens_total %" PRIu64 "\n"
        "# HELP grok_weight_bytes_total Bytes of weights forward steps read (each matrix or "
        "expert once per step).\n"
        "# TYPE grok_weight_bytes_total counter\ngrok_weight_bytes_total %" PRIu64 "\n"
        "# HELP grok_expert_reads_total Experts forward steps computed (per layer, once per step "
        "however many tokens chose one).\n"
        "# TYPE grok_expert_reads_total counter\ngrok_expert_reads_total %" PRIu64 "\n"
        "# HELP grok_forward_seconds_total Scheduler time in forward steps.\n"
        "# TYPE grok_forward_seconds_total counter\ngrok_forward_seconds_total %.6f\n"
        "# HELP grok_sample_seconds_total Scheduler time sampling and decoding text.\n"
        "# TYPE grok_sample_seconds_total counter\ngrok_sample_seconds_total %.6f\n"
        "# HELP grok_grammar_masks_total Grammar token masks computed (one per constrained token).\n"
        "# TYPE grok_grammar_masks_total counter\ngrok_grammar_masks_total %" PRIu64 "\n"
        "# HELP grok_grammar_mask_seconds_total Time computing them, summed over slots (within sampling).\n"
        "# TYPE grok_grammar_mask_seconds_total counter\ngrok_grammar_mask_seconds_total %.6f\n"
        "# HELP grok_queue_depth Requests waiting for a slot.\n"
        "# TYPE grok_queue_depth gauge\ngrok_queue_depth %" PRId64 "\n"
        "# HELP grok_slots_busy Slots generating or prefilling.\n"
        "# TYPE grok_slots_busy gauge\ngrok_slots_busy %" PRId64 "\n"
        "# HELP grok_slots_total Slots (--parallel).\n"
        "# TYPE grok_slots_total gauge\ngrok_slots_total %" PRId64 "\n",
        m.prompt_tokens, m.prompt_tokens_reused, m.completion_tokens, m.steps, m.step_tokens, m.weight_bytes,
        m.expert_reads, m.forward_seconds, m.sample_seconds, m.masks, m.mask_seconds, q, busy, slots);
    grok_strbuf_addf(&o,
                     "# HELP grok_connections Open client connections.\n"
                     "# TYPE grok_connections gauge\ngrok_connections %" PRId64 "\n"
                     "# HELP grok_connections_waiting Connections without a complete request.\n"
                     "# TYPE grok_connections_waiting gauge\ngrok_connections_waiting %" PRId64 "\n"
                     "# HELP grok_connections_closed_total Connections the server closed: header or body "
                     "timeout, or the longest waiting one when --max-waiting was reached.\n"
                     "# TYPE grok_connections_closed_total counter\n"
                     "grok_connections_closed_total{reason=\"header_timeout\"} %" PRIu64 "\n"
                     "grok_connections_closed_total{reason=\"body_timeout\"} %" PRIu64 "\n"
                     "grok_connections_closed_total{reason=\"evicted\"} %" PRIu64 "\n",
                     m.conns_open, m.conns_waiting, m.conns_header_timeout, m.conns_body_timeout,
                     m.conns_evicted);
    grok_strbuf_addf(
        &o,
        "# HELP grok_prompt_tokens_shared_total Prompt tokens copied from another sample's cache "
        "(n > 1 and think requests compute their prompt once).\n"
        "# TYPE grok_prompt_tokens_shared_total counter\ngrok_prompt_tokens_shared_total %" PRIu64 "\n",
        m.prompt_tokens_shared);
    /* the expert cache (a model larger than its memory limit); the model's
     * counters take their own lock, so reading them beside a step is safe */
    const grok_memory_plan *plan = s->model ? grok_model_memory_plan(s->model) : NULL;
    if (plan) {
        const grok_cache_stats c = grok_model_cache_stats(s->model);
        grok_strbuf_addf(
            &o,
            "# HELP grok_memory_plan The memory plan (1 for the one in use).\n"
            "# TYPE grok_memory_plan gauge\ngrok_memory_plan{plan=\"%s\"} 1\n"
            "# HELP grok_memory_limit_bytes The memory limit planned for (-1: none).\n"
            "# TYPE grok_memory_limit_bytes gauge\ngrok_memory_limit_bytes %" PRId64 "\n"
            "# HELP grok_expert_cache_slots Expert cache slots ((layer, expert) pairs held in memory).\n"
            "# TYPE grok_expert_cache_slots gauge\ngrok_expert_cache_slots %" PRId64 "\n"
            "# HELP grok_expert_cache_lookups_total Experts forward steps asked the cache for.\n"
            "# TYPE grok_expert_cache_lookups_total counter\ngrok_expert_cache_lookups_total %" PRId64 "\n"
            "# HELP grok_expert_cache_hits_total Lookups found in a slot.\n"
            "# TYPE grok_expert_cache_hits_total counter\ngrok_expert_cache_hits_total %" PRId64 "\n"
            "# HELP grok_expert_cache_late_hits_total Lookups whose read (a prefetch) was already under "
            "way.\n"
            "# TYPE grok_expert_cache_late_hits_total counter\ngrok_expert_cache_late_hits_total %" PRId64
            "\n"
            "# HELP grok_expert_cache_misses_total Lookups that had to read the expert.\n"
            "# TYPE grok_expert_cache_misses_total counter\ngrok_expert_cache_misses_total %" PRId64 "\n"
            "# HELP grok_expert_cache_prefetches_total Reads started by the next layer's router's "
            "prediction.\n"
            "# TYPE grok_expert_cache_prefetches_total counter\ngrok_expert_cache_prefetches_total %" PRId64
            "\n"
            "# HELP grok_expert_cache_disk_bytes_total Bytes the cache read from the model file.\n"
            "# TYPE grok_expert_cache_disk_bytes_total counter\ngrok_expert_cache_disk_bytes_total %" PRId64
            "\n"
            "# HELP grok_expert_cache_io_wait_seconds_total Time forward steps waited for reads.\n"
            "# TYPE grok_expert_cache_io_wait_seconds_total counter\ngrok_expert_cache_io_wait_seconds_total "
            "%.6f\n",
            grok_plan_name(plan->kind), plan->limit, plan->kind == GROK_PLAN_CACHE ? plan->cache_slots : 0,
            c.lookups, c.hits, c.late_hits, c.misses, c.prefetches, c.bytes_read, c.io_wait_s);
    }
    put_hist(&o, "grok_request_duration_seconds", "Time from arrival to the last token.", &m.latency);
    put_hist(&o, "grok_time_to_first_token_seconds", "Time from arrival to the first token.", &m.ttft);
    return grok_strbuf_take(&o, len);
}
