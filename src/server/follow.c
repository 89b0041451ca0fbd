/*
 * follow.c - `grok serve` across the ranks of an mpirun job. Rank 0 runs
 * the HTTP front and the scheduler exactly as a single process does; every
 * other rank loads its share of the model, creates the same slots (KV
 * caches of its heads or layers) and then only replays forward steps.
 *
 * The scheduler changes a slot's cache in two ways: a step appends tokens
 * at the cache's position, and assigning a request to a slot truncates the
 * cache to the prefix it shares with the new prompt (prefix reuse; a
 * cleared slot is a truncation to 0). So before each step rank 0 announces,
 * for every sequence in it, the slot, the position its tokens start at and
 * the tokens; a follower truncates that slot to the position (a truncation
 * on rank 0 always precedes the slot's next step) and runs the same
 * grok_decode_multi_logits. Sampling happens on rank 0 only. The
 * announcement is a fixed header [kind, sequences, tokens] (an idle
 * broadcast: a follower may wait for hours for the next request) and then
 * the payload [slot, position, count, all] per sequence followed by all the
 * tokens; `all` marks a sequence whose every position's logits rank 0 keeps
 * (prompt logprobs): the output head runs on those rows on every rank, so
 * the followers must ask for them too (into a scratch buffer they ignore).
 * A third change, the copy of one slot's prompt into another (the samples
 * of one request share their prompt), is announced in the header alone,
 * [copy, src << 32 | dst, n], before the step that reads it.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "server/server.h"

enum { STEP_DECODE = 1, STEP_STOP = 2, STEP_COPY = 3 };

#define SEQ_WORDS 4

int step_announce(server *s, grok_seq *const *seqs, const int32_t *const *toks, const int64_t *ns,
                  float *const *alls, int64_t n_seqs, char *err, size_t err_size) {
    int64_t total = 0;
    for (int64_t i = 0; i < n_seqs; i++) total += ns[i];
    int64_t hdr[3] = {STEP_DECODE, n_seqs, total};
    const size_t n_words = (size_t)(SEQ_WORDS * n_seqs + total);
    int32_t *msg = malloc(n_words * sizeof *msg);
    if (!msg) {
        snprintf(err, err_size, "out of memory announcing a step");
        return -1;
    }
    int32_t *tk = msg + SEQ_WORDS * n_seqs;
    for (int64_t i = 0; i < n_seqs; i++) {
        int64_t si = 0;
        while (si < s->n_slots && s->slots[si].seq != seqs[i]) si++;
        msg[SEQ_WORDS * i] = (int32_t)si;
        msg[SEQ_WORDS * i + 1] = (int32_t)grok_seq_pos(seqs[i]);
        msg[SEQ_WORDS * i + 2] = (int32_t)ns[i];
        msg[SEQ_WORDS * i + 3] = alls && alls[i] ? 1 : 0;
        memcpy(tk, toks[i], (size_t)ns[i] * sizeof *tk);
        tk += ns[i];
    }
    int rc = grok_dist_bcast_idle(hdr, sizeof hdr, err, err_size) ||
                     grok_dist_bcast(msg, n_words * sizeof *msg, err, err_size)
                 ? -1
                 : 0;
    free(msg);
    return rc;
}

int step_announce_copy(server *s, int64_t dst, int64_t src, int64_t n, char *err, size_t err_size) {
    (void)s;
    int64_t hdr[3] = {STEP_COPY, src << 32 | dst, n};
    return grok_dist_bcast_idle(hdr, sizeof hdr, err, err_size);
}

int step_announce_stop(server *s, char *err, size_t err_size) {
    (void)s;
    int64_t hdr[3] = {STEP_STOP, 0, 0};
    return grok_dist_bcast_idle(hdr, sizeof hdr, err, err_size);
}

/* Replays one announced step on this rank's slots. */
static int replay(server *s, const int64_t *hdr, int32_t **msg, size_t *cap, grok_seq **seqs,
                  const int32_t **toks, int64_t *ns, float **alls, float **scratch, size_t *scratch_cap,
                  char *err, size_t err_size) {
    const int64_t n_seqs = hdr[1], total = hdr[2];
    if (n_seqs < 1 || n_seqs > s->n_slots || total < n_seqs || total > s->cfg.batch) {
        snprintf(err, err_size,
                 "rank %d: malformed step from rank 0 (%" PRId64 " sequences, %" PRId64 " tokens)",
                 grok_dist_rank(), n_seqs, total);
        return -1;
    }
    const size_t n_words = (size_t)(SEQ_WORDS * n_seqs + total);
    if (n_words > *cap) {
        int32_t *m = realloc(*msg, n_words * sizeof *m);
        if (!m) {
            snprintf(err, err_size, "rank %d: out of memory for a step", grok_dist_rank());
            return -1;
        }
        *msg = m, *cap = n_words;
    }
    if (grok_dist_bcast(*msg, n_words * sizeof **msg, err, err_size)) return -1;
    const int32_t *m = *msg, *tk = m + SEQ_WORDS * n_seqs;
    const size_t n_vocab = (size_t)grok_model_hparams(s->model)->n_vocab;
    size_t want = 0; /* scratch floats for the sequences that want every position's logits */
    for (int64_t i = 0; i < n_seqs; i++)
        if (m[SEQ_WORDS * i + 3] && m[SEQ_WORDS * i + 2] > 0) want += (size_t)m[SEQ_WORDS * i + 2] * n_vocab;
    if (want > *scratch_cap) {
        float *f = realloc(*scratch, want * sizeof *f);
        if (!f) {
            snprintf(err, err_size, "rank %d: out of memory for a step's logits", grok_dist_rank());
            return -1;
        }
        *scratch = f, *scratch_cap = want;
    }
    int64_t seen = 0;
    size_t at = 0;
    for (int64_t i = 0; i < n_seqs; i++) {
        const int32_t si = m[SEQ_WORDS * i], pos = m[SEQ_WORDS * i + 1], n = m[SEQ_WORDS * i + 2];
        if (si < 0 || si >= s->n_slots || n < 1 || n > total - seen) {
            snprintf(err, err_size, "rank %d: malformed step from rank 0 (slot %d, %d tokens)",
                     grok_dist_rank(), si, n);
            return -1;
        }
        grok_seq *c = s->slots[si].seq;
        grok_seq_truncate(c, pos);
        if (grok_seq_pos(c) != pos) { /* rank 0's cache holds more than ours: out of step */
            snprintf(err, err_size, "rank %d: slot %d holds %" PRId64 " tokens, rank 0 decodes at %d",
                     grok_dist_rank(), si, grok_seq_pos(c), pos);
            return -1;
        }
        seqs[i] = c, toks[i] = tk + seen, ns[i] = n;
        alls[i] = m[SEQ_WORDS * i + 3] ? *scratch + at : NULL;
        if (alls[i]) at += (size_t)n * n_vocab;
        seen += n;
    }
    return grok_decode_multi_logits(s->runner, seqs, toks, ns, alls, n_seqs, err, err_size);
}

int server_follow(const server_config *cfg) {
    /* mpirun sends SIGTERM to every rank; rank 0 decides when the job is
     * done (after draining, which needs this rank's share), so here it is
     * only taken out of the way */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    server *s = calloc(1, sizeof *s);
    if (!s) grok_dist_abort("grok serve: out of memory");
    s->cfg = *cfg;
    char err[GROK_ERR_SIZE];
    int rc = 1;
    size_t n = (size_t)cfg->parallel, cap = 0;
    int32_t *msg = NULL;
    float *scratch = NULL, **alls = calloc(n, sizeof *alls);
    size_t scratch_cap = 0;
    grok_seq **seqs = calloc(n, sizeof *seqs);
    const int32_t **toks = calloc(n, sizeof *toks);
    int64_t *ns = calloc(n, sizeof *ns);
    if (server_load(s, err, sizeof err)) {
        fprintf(stderr, "grok serve: %s\n", err);
        goto done;
    }
    if (!seqs || !toks || !ns || !alls) grok_dist_abort("grok serve: out of memory");
    for (;;) {
        int64_t hdr[3];
        if (grok_dist_bcast_idle(hdr, sizeof hdr, err, sizeof err)) break;
        if (hdr[0] == STEP_STOP) {
            fprintf(stderr, "grok serve: rank %d of %d: stopped\n", grok_dist_rank(), grok_dist_size());
            rc = 0;
            break;
        }
        if (hdr[0] == STEP_COPY) {
            const int64_t dst = hdr[1] & 0xFFFFFFFF, src = hdr[1] >> 32;
            if (dst < 0 || dst >= s->n_slots || src < 0 || src >= s->n_slots ||
                grok_seq_copy(s->slots[dst].seq, s->slots[src].seq, hdr[2], err, sizeof err)) {
                if (dst < 0 || dst >= s->n_slots || src < 0 || src >= s->n_slots)
                    snprintf(err, sizeof err,
                             "rank %d: malformed copy from rank 0 (slots %" PRId64 ", %" PRId64 ")",
                             grok_dist_rank(), dst, src);
                break;
            }
            continue;
        }
        if (hdr[0] != STEP_DECODE) {
            snprintf(err, sizeof err, "rank %d: unknown step kind %" PRId64 " from rank 0", grok_dist_rank(),
                     hdr[0]);
            break;
        }
        if (replay(s, hdr, &msg, &cap, seqs, toks, ns, alls, &scratch, &scratch_cap, err, sizeof err)) break;
    }
    if (rc) fprintf(stderr, "grok serve: %s\n", err); /* main ends the job: peers may wait */
done:
    free(msg), free(seqs), free(toks), free(ns), free(alls), free(scratch);
    sched_free(s);
    grok_threadpool_free(s->pool);
    grok_model_free(s->model);
    free(s);
    return rc;
}
