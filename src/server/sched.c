/*
 * sched.c - the scheduler thread of `grok serve`: the only thread that
 * touches the model. Each step gathers the busy slots; a slot whose prompt
 * is fully in its KV cache contributes its last sampled token, a slot still
 * prefilling contributes a chunk of its prompt (at most --chunk tokens, and
 * the step at most --batch tokens in all, generating slots served first so
 * running streams keep flowing while a long prompt is read). One
 * grok_decode_multi call runs the step, reading every weight once for all
 * slots. Then each slot that has consumed all its tokens samples the next
 * one with its own sampler, decodes it to text, holds back a tail that could
 * begin a stop string (as `grok run` does), and releases the rest to its
 * HTTP connection.
 *
 * A completion that asks for echo and logprobs also gets the prompt's
 * logprobs: its slot reads the whole prompt (no prefix reuse), at most
 * PROMPT_LP_CHUNK tokens a step with every position's logits kept, and
 * each step turns those rows into the log-softmax entries of the prompt
 * tokens they predict. No other request computes more than its last logits.
 *
 * A request of n > 1 choices (a think request's samples too) computes its
 * prompt once: the first choice to get a slot reads it, the others wait in
 * theirs and, after the step that ends the prompt, copy its KV cache and
 * last logits (grok_seq_copy) and sample their first tokens in that same
 * step. A choice that gets its slot later copies all but the prompt's last
 * token and computes that one. The numbers are those of reading the prompt
 * alone, so the samples are the same as from separate requests.
 *
 * A think request that chose by a verifier has its samples scored here,
 * once all of them finished, between two steps (think_run_verifier), and
 * only then completes.
 *
 * New requests join at the next step. A free slot is chosen by the longest
 * prefix its cache shares with the new prompt, so a conversation that goes
 * on (or a repeated system prompt) is not read again. Cancelled (client
 * gone) and timed-out requests are finished before the next step is built,
 * so their slots are free within one step.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist.h"
#include "model/lora.h"
#include "server/server.h"
#include "util/buf.h"
#include "util/rng.h"

int server_load(server *s, char *err, size_t err_size) {
    const server_config *cfg = &s->cfg;
    s->dist = grok_dist_size() > 1;
    s->model = grok_model_load(cfg->model_path, err, err_size);
    bool ok = s->model != NULL;
    if (ok && !(s->tok = grok_model_tokenizer(s->model))) {
        snprintf(err, err_size, "%s has no vocabulary (tokenizer.ggml.*)", cfg->model_path);
        ok = false;
    }
    ok =
        ok && (!cfg->lora || grok_model_apply_lora(s->model, cfg->lora, cfg->lora_scale, err, err_size) == 0);
    ok = ok && grok_dist_attach(s->model, err, err_size) == 0;
    if (grok_dist_agree(ok, err, err_size)) return -1;
    s->hp = *grok_model_hparams(s->model);
    s->n_vocab = s->hp.n_vocab;
    if (s->cfg.n_ctx <= 0) s->cfg.n_ctx = s->hp.n_ctx_train;
    /* rank 0 samples, so only it needs the grammars' view of the vocabulary */
    if (grok_dist_rank() == 0 && !(s->gvocab = grok_grammar_vocab_create(s->tok, err, err_size))) ok = false;
    s->pool = grok_threadpool_create((int)cfg->threads);
    if (!s->pool) snprintf(err, err_size, "cannot start the thread pool");
    ok = s->pool && sched_init(s, err, err_size) == 0;
    if (ok && cfg->verifier_path && grok_dist_rank() == 0) { /* only rank 0 chooses */
        /* prompt + candidate in the verifier's pieces, and the judgement */
        s->verifier = think_verifier_load(cfg->verifier_path, cfg->verifier_suffix, cfg->verifier_yes,
                                          s->pool, s->cfg.n_ctx + 256, err, err_size);
        ok = s->verifier != NULL;
    }
    return grok_dist_agree(ok, err, err_size);
}

int sched_init(server *s, char *err, size_t err_size) {
    s->n_slots = s->cfg.parallel;
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    if (!s->slots) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    grok_seq_params sp = grok_seq_default_params();
    sp.n_ctx = s->cfg.n_ctx;
    sp.kv_type = s->cfg.kv_type;
    for (int64_t i = 0; i < s->n_slots; i++) {
        s->slots[i].seq = grok_seq_create(s->model, &sp, err, err_size);
        if (!s->slots[i].seq) return -1;
    }
    /* a step longer than a slot's cache could never run */
    const int64_t n_ctx = grok_seq_n_ctx(s->slots[0].seq);
    if (s->cfg.batch > n_ctx) s->cfg.batch = n_ctx;
    grok_runner_params rp = grok_runner_default_params();
    rp.pool = s->pool;
    rp.n_batch = s->cfg.batch;
    s->runner = grok_runner_create(s->model, &rp, err, err_size);
    return s->runner ? 0 : -1;
}

void sched_free(server *s) {
    if (!s->slots) return;
    for (int64_t i = 0; i < s->n_slots; i++) grok_seq_free(s->slots[i].seq);
    think_verifier_free(s->verifier);
    s->verifier = NULL;
    grok_runner_free(s->runner);
    s->runner = NULL;
    free(s->slots);
    s->slots = NULL;
}

/* ---- "grok_routing" ---- */

/* The routing hook of a slot whose choice asked for grok_routing: stages
 * the layers of a generated token fed back (the prompt's are skipped).
 * Runs inside the forward pass, on the scheduler thread. */
static void routing_hook(void *user, const grok_routing *r) {
    choice_routing *rt = user;
    const int64_t g = r->pos - rt->base;
    if (g < 0 || r->layer < 0 || r->layer >= rt->L) return;
    if (rt->st_index != g) rt->st_index = g, rt->st_layers = 0;
    const size_t at = (size_t)r->layer;
    memcpy(rt->st_experts + at * (size_t)rt->K, r->experts, (size_t)rt->K * sizeof(int32_t));
    memcpy(rt->st_gates + at * (size_t)rt->K, r->gates, (size_t)rt->K * sizeof(float));
    if (rt->probs) memcpy(rt->st_probs + at * (size_t)rt->E, r->probs, (size_t)rt->E * sizeof(float));
    rt->st_layers++;
}

/* After a step, with mu held: publishes the staged token (complete ones
 * only); false when out of memory. */
static bool routing_publish(choice_routing *rt, const int32_t *seq) {
    const int64_t g = rt->st_index;
    rt->st_index = -1;
    if (g < 0 || rt->st_layers != rt->L) return true;
    if (rt->n == rt->cap) {
        size_t cap = rt->cap ? rt->cap * 2 : 64;
        const size_t lk = (size_t)(rt->L * rt->K), le = (size_t)(rt->L * rt->E);
        int64_t *ix = realloc(rt->index, cap * sizeof *ix);
        if (ix) rt->index = ix;
        int32_t *id = realloc(rt->ids, cap * sizeof *id);
        if (id) rt->ids = id;
        size_t *of = realloc(rt->offs, cap * sizeof *of);
        if (of) rt->offs = of;
        int32_t *ex = realloc(rt->experts, cap * lk * sizeof *ex);
        if (ex) rt->experts = ex;
        float *ga = realloc(rt->gates, cap * lk * sizeof *ga);
        if (ga) rt->gates = ga;
        float *pr = rt->probs ? realloc(rt->pr, cap * le * sizeof *pr) : NULL;
        if (pr) rt->pr = pr;
        if (!ix || !id || !of || !ex || !ga || (rt->probs && !pr)) return false;
        rt->cap = cap;
    }
    const size_t n = rt->n, lk = (size_t)(rt->L * rt->K), le = (size_t)(rt->L * rt->E);
    rt->index[n] = g;
    rt->ids[n] = seq[rt->base + g];
    rt->offs[n] = rt->off[g];
    memcpy(rt->experts + n * lk, rt->st_experts, lk * sizeof(int32_t));
    memcpy(rt->gates + n * lk, rt->st_gates, lk * sizeof(float));
    if (rt->probs) memcpy(rt->pr + n * le, rt->st_probs, le * sizeof(float));
    rt->n++;
    return true;
}

/* Called with mu held: one reference fewer; the last one frees. */
static void request_unref(request *r) {
    if (--r->refs == 0) request_free(r);
}

int sched_submit(server *s, request *r) {
    pthread_mutex_lock(&s->mu);
    /* room for every choice in a free slot or a queue place (the queue
     * counts choices that will have to wait) */
    int64_t free_slots = s->n_slots - s->busy;
    if (s->stopping || s->q_choices + r->n > free_slots + s->cfg.queue) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    r->refs = 2;
    r->next = NULL;
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    s->q_len++;
    s->q_choices += r->n;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sched_release(server *s, request *r) {
    pthread_mutex_lock(&s->mu);
    if (!r->complete) {
        r->cancelled = true;
        pthread_cond_signal(&s->work);
    }
    request_unref(r);
    pthread_mutex_unlock(&s->mu);
}

/* ---- text output (scheduler side) ---- */

static bool grow(void **p, size_t *cap, size_t need, size_t elt) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elt);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* With mu held: appends released text to the choice's shared output
 * (through the tool-call parser when the request has tools). */
static bool release_text(choice *c, const char *t, size_t n) {
    if (n == 0) return true;
    if (c->tools) return tool_parse_feed(c->tools, c, t, n);
    return grok_buf_add(&c->text, &c->text_len, &c->text_cap, t, n);
}

static void complete_request(server *s, request *r);

/* Finishes a choice (mu held): frees its slot and, with the last choice,
 * completes the request and records its outcome. */
static void finish_choice(server *s, request *r, choice *c, int reason) {
    if (c->finish != FINISH_NONE) return;
    c->finish = reason;
    if (c->slot) {
        grok_seq_set_routing_hook(c->slot->seq, NULL, NULL);
        c->slot->ch = NULL;
        c->slot->req = NULL;
        c->slot = NULL;
        s->busy--;
    }
    grok_sampler_free(c->sampler);
    c->sampler = NULL;
    grok_matcher_free(c->matcher);
    c->matcher = NULL;
    free(c->mask);
    c->mask = NULL;
    if (c->tools && !tool_parse_finish(c->tools, c) && reason != FINISH_CANCEL) c->finish = FINISH_ERROR;
    free(c->plogits);
    free(c->pstage);
    c->plogits = NULL;
    c->pstage = NULL;
    free(c->hold);
    c->hold = NULL;
    c->hold_len = c->hold_cap = 0;
    if (!c->assigned) {
        c->assigned = true; /* never will be: count it as taken from the queue */
        s->q_choices--;
    }
    s->m.completion_tokens += (uint64_t)c->n_gen;
    if (++r->n_done < r->n) {
        http_request_changed(s, r);
        return;
    }
    if (think_needs_verifier(s, r)) { /* the scheduler scores it, then completes it */
        request **pp = &s->judge_head;
        while (*pp) pp = &(*pp)->judge_next;
        r->judge_next = NULL;
        *pp = r;
        return;
    }
    complete_request(s, r);
}

/* Every choice of r has finished (mu held): records the outcome and lets
 * the HTTP side have r. */
static void complete_request(server *s, request *r) {
    r->complete = true;
    int out = OUT_OK;
    for (int i = 0; i < r->n; i++) {
        int f = r->choices[i].finish;
        if (f == FINISH_CANCEL)
            out = OUT_CANCELLED;
        else if (f == FINISH_TIMEOUT && out != OUT_CANCELLED)
            out = OUT_TIMEOUT;
        else if (f == FINISH_ERROR && out == OUT_OK)
            out = OUT_ERROR;
    }
    if (out == OUT_CANCELLED && s->stopping && !r->cancelled) out = OUT_STOPPED_EARLY;
    s->m.requests[out]++;
    if (out == OUT_OK) metrics_observe(&s->m.latency, grok_now() - r->t_arrive);
    http_request_changed(s, r);
    request_unref(r);
}

/* Removes a request from the queue (mu held). */
static void dequeue(server *s, request *r) {
    request **pp = &s->q_head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) return;
    *pp = r->next;
    if (s->q_tail == r) s->q_tail = prev;
    r->next = NULL;
    s->q_len--;
}

/* Finishes every choice of r with reason (mu held); r leaves the queue. */
static void finish_request(server *s, request *r, int reason) {
    dequeue(s, r);
    r->refs++; /* finish_choice drops the scheduler's reference at the end */
    for (int i = 0; i < r->n; i++) finish_choice(s, r, &r->choices[i], reason);
    request_unref(r);
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* The choice of r whose cache will hold the prompt for c to copy: one in a
 * slot that computes the prompt itself (NULL: c computes it). Prompt
 * logprobs need every choice to read the prompt: no sharing. */
static choice *share_source(request *r, const choice *c) {
    if (r->n < 2 || r->prompt_lps) return NULL;
    for (int i = 0; i < r->n; i++) {
        choice *o = &r->choices[i];
        if (o != c && o->slot && o->finish == FINISH_NONE && !o->share) return o;
    }
    return NULL;
}

/* Puts choice c of r into a free slot (mu held): the one whose cache
 * shares the longest prefix with the prompt, least recently used on ties. */
static int assign(server *s, request *r, choice *c) {
    slot *best = NULL;
    size_t best_common = 0;
    for (int64_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->ch) continue;
        size_t np = (size_t)grok_seq_pos(sl->seq);
        size_t cm = common_prefix(grok_seq_tokens(sl->seq), np, r->prompt, r->n_prompt);
        if (!best || cm > best_common || (cm == best_common && sl->last_used < best->last_used)) {
            best = sl;
            best_common = cm;
        }
    }
    if (!best) return -1;
    /* keep at least one prompt token to compute, so the logits are fresh;
     * prompt logprobs need every position's logits: keep nothing */
    size_t keep = best_common < r->n_prompt ? best_common : r->n_prompt - 1;
    if (r->prompt_lps) keep = 0;
    grok_seq_truncate(best->seq, (int64_t)keep);
    c->seq_cap = r->n_prompt + (size_t)r->max_tokens + 1;
    c->seq = malloc(c->seq_cap * sizeof(int32_t));
    grok_sampler_params sp = r->sp;
    sp.seed = grok_rng_choice_seed(sp.seed, (uint64_t)c->index); /* n > 1: independent draws */
    c->sampler = grok_sampler_create(&sp, s->n_vocab);
    if (r->grammar) {
        c->matcher = grok_matcher_create(r->grammar);
        c->mask = malloc(((size_t)s->n_vocab + 63) / 64 * sizeof *c->mask);
    }
    if (r->parse_tools && !c->tools) c->tools = tool_parse_new(r, c->index);
    if (!c->seq || !c->sampler || (r->grammar && (!c->matcher || !c->mask)) ||
        (r->parse_tools && !c->tools)) {
        free(c->seq);
        c->seq = NULL;
        grok_sampler_free(c->sampler);
        c->sampler = NULL;
        grok_matcher_free(c->matcher);
        c->matcher = NULL;
        free(c->mask);
        c->mask = NULL;
        return -1;
    }
    if (r->prompt_lps) {
        c->plogits = malloc((size_t)PROMPT_LP_CHUNK * (size_t)s->n_vocab * sizeof(float));
        c->pstage = malloc(PROMPT_LP_CHUNK * sizeof *c->pstage);
        /* the first prompt token's entry: no logprob, at offset 0 */
        if (!c->plogits || !c->pstage || !grow((void **)&c->lps, &c->lps_cap, c->n_lps + 1, sizeof *c->lps)) {
            free(c->seq), free(c->plogits), free(c->pstage);
            c->seq = NULL, c->plogits = NULL, c->pstage = NULL;
            grok_sampler_free(c->sampler);
            c->sampler = NULL;
            return -1;
        }
        c->lps[c->n_lps++] = (token_logprob){.token = r->prompt[0], .none = true};
        c->n_pstage = 0;
        c->ptext_off = 0;
        grok_detok_stream_init(&c->pds, true);
    }
    memcpy(c->seq, r->prompt, r->n_prompt * sizeof(int32_t));
    c->n_seq = r->n_prompt;
    c->share = share_source(r, c);
    grok_detok_stream_init(&c->ds, false);
    c->assigned = true;
    if (c->rt) grok_seq_set_routing_hook(best->seq, routing_hook, c->rt);
    c->slot = best;
    best->ch = c;
    best->req = r;
    best->last_used = ++s->use_clock;
    s->busy++;
    s->q_choices--;
    s->m.prompt_tokens_reused += keep;
    return 0;
}

/* Moves queued requests into free slots, oldest first (mu held). */
static void admit(server *s) {
    while (s->q_head && s->busy < s->n_slots) {
        request *r = s->q_head;
        for (int i = 0; i < r->n && s->busy < s->n_slots; i++) {
            choice *c = &r->choices[i];
            if (c->assigned) continue;
            if (assign(s, r, c)) {
                finish_request(s, r, FINISH_ERROR);
                goto next;
            }
            if (r->n_assigned++ == 0) s->m.prompt_tokens += r->n_prompt;
        }
        if (r->n_assigned < r->n) return; /* waits for more free slots */
        dequeue(s, r);
    next:;
    }
}

/* Finishes what was cancelled or ran out of time (mu held). */
static void reap(server *s, double now) {
    for (request *r = s->q_head, *nx; r; r = nx) {
        nx = r->next;
        if (r->cancelled)
            finish_request(s, r, FINISH_CANCEL);
        else if (now > r->deadline)
            finish_request(s, r, FINISH_TIMEOUT);
        else if (s->stopping)
            finish_request(s, r, FINISH_CANCEL);
    }
    bool drain_over = s->stopping && now > s->drain_deadline;
    for (int64_t i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (!sl->ch) continue;
        request *r = sl->req;
        if (r->cancelled || drain_over)
            finish_choice(s, r, sl->ch, FINISH_CANCEL);
        else if (now > r->deadline)
            finish_choice(s, r, sl->ch, FINISH_TIMEOUT);
    }
}

/* Appends decoded bytes to the hold buffer; returns how many leading bytes
 * may be released and sets *stop when a stop string ends the text there. */
static size_t hold_push(request *r, choice *c, const char *t, size_t n, bool final, bool *stop, bool *oom) {
    if (!grow((void **)&c->hold, &c->hold_cap, c->hold_len + n + 1, 1)) {
        *oom = true;
        return 0;
    }
    memcpy(c->hold + c->hold_len, t, n);
    c->hold_len += n;
    size_t partial = 0;
    int64_t at = grok_find_stop(c->hold, c->hold_len, (const char *const *)r->stops, r->n_stops, &partial);
    *stop = at >= 0;
    if (at >= 0) return (size_t)at;
    return final ? c->hold_len : c->hold_len - partial;
}

/* The top (at most MAX_TOP_LOGPROBS) values of v[0..n) above floor,
 * largest first, the lower id first among equals: their ids and values
 * into ids/best; returns how many. */
static int32_t top_values(const float *v, int64_t n, int top, float floor, int32_t *ids, float *best) {
    int32_t k = 0;
    for (int64_t i = 0; i < n && top > 0; i++) {
        float x = v[i];
        if (x <= floor || (k == top && x <= best[k - 1])) continue;
        int32_t j = k < top ? k++ : k - 1;
        while (j > 0 && best[j - 1] < x) {
            best[j] = best[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        best[j] = x;
        ids[j] = (int32_t)i;
    }
    return k;
}

/* The sampled token's log-probability and the top alternatives of the
 * final distribution (after the sampler's filters), for logprobs. */
static void fill_logprob(token_logprob *lp, const float *probs, int64_t n_vocab, int32_t tok, int top) {
    lp->token = tok;
    lp->none = false;
    lp->n_top = 0;
    if (!probs) {
        lp->logprob = 0.0f;
        return;
    }
    lp->logprob = probs[tok] > 0 ? logf(probs[tok]) : -INFINITY;
    float best[MAX_TOP_LOGPROBS];
    lp->n_top = top_values(probs, n_vocab, top, 0.0f, lp->top_id, best);
    for (int32_t j = 0; j < lp->n_top; j++) lp->top_lp[j] = logf(best[j]);
}

/* A prompt token's entry: the model's own distribution at the position
 * before it, log-softmax of the raw logits (no temperature or filters, as
 * OpenAI's echoed prompt logprobs and `grok logits` give). */
static void fill_prompt_logprob(token_logprob *lp, const float *logits, int64_t n_vocab, int32_t tok,
                                int top) {
    float mx = logits[0];
    for (int64_t v = 1; v < n_vocab; v++) mx = logits[v] > mx ? logits[v] : mx;
    double sum = 0;
    for (int64_t v = 0; v < n_vocab; v++) sum += exp((double)logits[v] - (double)mx);
    const double lse = (double)mx + log(sum);
    lp->token = tok;
    lp->none = false;
    lp->logprob = (float)((double)logits[tok] - lse);
    float best[MAX_TOP_LOGPROBS];
    lp->n_top = top_values(logits, n_vocab, top, -INFINITY, lp->top_id, best);
    for (int32_t j = 0; j < lp->n_top; j++) lp->top_lp[j] = (float)((double)best[j] - lse);
}

/* Per-slot result of a step's sampling, applied under mu. */
typedef struct {
    slot *sl;
    int64_t pos0, take; /* the tokens this step fed the slot: positions [pos0, pos0 + take) */
    size_t release;     /* bytes of hold to release */
    int finish;
    bool sampled;
    bool has_lp;
    double mask_s; /* time the grammar's mask took */
    token_logprob lp;
} step_out;

/* Samples the next token of a slot that has consumed all its tokens,
 * decodes it and decides what text to release and whether it finished.
 * Touches only the slot's own state (runs on any pool thread). */
static void sample_slot(server *s, step_out *o) {
    choice *c = o->sl->ch;
    request *r = o->sl->req;
    if (o->finish == FINISH_ERROR) return; /* its step failed (isolate_nonfinite) */
    /* prompt logprobs: row k holds the logits after position pos0 + k, the
     * distribution of the prompt token after it */
    for (int64_t k = 0; c->plogits && k < o->take; k++) {
        const int64_t p = o->pos0 + k;
        if (p + 1 >= (int64_t)r->n_prompt) break;
        char piece[GROK_DETOK_MAX_PIECE + 16];
        c->ptext_off += grok_detok_stream_push(&c->pds, s->tok, r->prompt[p], piece, sizeof piece);
        token_logprob *lp = &c->pstage[c->n_pstage++];
        fill_prompt_logprob(lp, c->plogits + k * s->n_vocab, s->n_vocab, r->prompt[p + 1], r->logprobs);
        size_t plen = strlen(r->prompt_text);
        lp->text_off = c->ptext_off < plen ? c->ptext_off : plen;
    }
    if (grok_seq_pos(o->sl->seq) < (int64_t)c->n_seq) return; /* still prefilling */
    int32_t next;
    const int32_t eos = grok_tokenizer_eos(s->tok);
    const float *logits = grok_seq_logits(o->sl->seq);
    if (c->matcher && grok_matcher_is_done(c->matcher)) {
        next = eos; /* the grammar is complete: only the end can follow */
    } else if (c->matcher) {
        double t0 = grok_now();
        int64_t allowed = grok_matcher_fill_mask(c->matcher, c->mask);
        o->mask_s = grok_now() - t0;
        next = allowed > 0 ? grok_sampler_sample_masked(c->sampler, logits, c->mask, c->seq, c->n_seq)
               : allowed == 0
                   ? eos /* nothing can follow (the vocabulary cannot write what the grammar needs) */
                   : -1;
        if (next >= 0 && next != eos && grok_matcher_accept_token(c->matcher, next)) next = -1;
    } else {
        next = grok_sampler_sample(c->sampler, logits, c->seq, c->n_seq);
    }
    c->n_gen++;
    o->sampled = true;
    if (next < 0) {
        o->finish = FINISH_ERROR;
        return;
    }
    if (r->think) c->lp_sum += think_token_logprob(grok_seq_logits(o->sl->seq), s->n_vocab, next);
    if (r->logprobs >= 0) {
        fill_logprob(&o->lp, grok_sampler_last_probs(c->sampler), s->n_vocab, next, r->logprobs);
        /* the text so far: released (the echoed prompt first) and held back
         * (only this thread changes either while the step runs) */
        o->lp.text_off = c->text_len + c->hold_len;
        o->has_lp = true;
    }
    if (c->rt && c->n_gen <= r->max_tokens) c->rt->off[c->n_gen - 1] = c->text_len + c->hold_len;
    bool final = c->n_gen >= r->max_tokens, stop = false, oom = false;
    char piece[GROK_DETOK_MAX_PIECE + 16];
    size_t k = 0;
    if (next == eos) {
        final = true;
        o->finish = FINISH_STOP;
        o->has_lp = false;
    } else {
        c->seq[c->n_seq++] = next;
        k = grok_detok_stream_push(&c->ds, s->tok, next, piece, sizeof piece);
    }
    o->release = hold_push(r, c, piece, k, false, &stop, &oom);
    if (!stop && final) {
        k = grok_detok_stream_flush(&c->ds, piece, sizeof piece);
        o->release = hold_push(r, c, piece, k, true, &stop, &oom);
    }
    if (oom)
        o->finish = FINISH_ERROR;
    else if (stop)
        o->finish = FINISH_STOP;
    else if (final && o->finish == FINISH_NONE)
        o->finish = FINISH_LENGTH;
    else if (grok_seq_pos(o->sl->seq) >= grok_seq_n_ctx(o->sl->seq))
        o->finish = FINISH_LENGTH; /* no room to feed the token back */
}

typedef struct {
    server *s;
    step_out *outs;
    int64_t n;
} sample_task;

static void sample_many(void *arg, int ith, int nth) {
    sample_task *t = arg;
    for (int64_t i = ith; i < t->n; i += nth) sample_slot(t->s, &t->outs[i]);
}

/* A step ended with NaN or Inf (GROK_ERR_NONFINITE: nothing was appended
 * to any sequence). What one request's tokens do must not end the others
 * batched with it, so each sequence runs alone (its numbers are the same
 * alone as in a batch); those that fail again finish with the error,
 * which their request keeps for its 500 answer. Returns false when a
 * step failed otherwise (err says how). */
static bool isolate_nonfinite(server *s, step_out *outs, grok_seq **seqs, const int32_t **toks, int64_t *ns,
                              float **alls, int64_t n_seqs, char *err, size_t err_size) {
    char why[GROK_ERR_SIZE];
    snprintf(why, sizeof why, "%s", err);
    if (n_seqs > 1)
        fprintf(stderr, "grok serve: a step of %" PRId64 " sequences went non-finite: each runs alone\n",
                n_seqs);
    for (int64_t i = 0; i < n_seqs; i++) {
        int rc = GROK_ERR_NONFINITE;
        if (n_seqs > 1) {
            if (s->dist && step_announce(s, seqs + i, toks + i, ns + i, alls + i, 1, err, err_size))
                return false;
            rc =
                grok_decode_multi_logits(s->runner, seqs + i, toks + i, ns + i, alls + i, 1, why, sizeof why);
        }
        if (rc == GROK_ERR_NONFINITE) {
            request *r = outs[i].sl->req;
            outs[i].finish = FINISH_ERROR;
            pthread_mutex_lock(&s->mu);
            snprintf(r->error, sizeof r->error, "%s", why);
            pthread_mutex_unlock(&s->mu);
            fprintf(stderr, "grok serve: request %s: %s\n", r->id, why);
        } else if (rc) {
            snprintf(err, err_size, "%s", why);
            return false;
        }
    }
    return true;
}

/* dst's cache takes src's first n tokens, on every rank (mu NOT held). */
static int copy_prompt(server *s, slot *dst, const slot *src, int64_t n) {
    char err[GROK_ERR_SIZE], msg[GROK_ERR_SIZE + 64];
    if (grok_seq_copy(dst->seq, src->seq, n, err, sizeof err)) {
        fprintf(stderr, "grok serve: prompt copy failed (the sample computes it): %s\n", err);
        return -1;
    }
    if (s->dist && step_announce_copy(s, dst - s->slots, src - s->slots, n, err, sizeof err)) {
        snprintf(msg, sizeof msg, "grok serve: rank 0: announcing a copy failed: %s", err);
        grok_dist_abort(msg);
    }
    return 0;
}

/* Before a step, for a choice that shares another's prompt: true while it
 * waits for its source to compute the prompt. A source already past the
 * prompt (this choice got its slot late) gives all but the prompt's last
 * token, which this choice computes in the step; a source that is gone
 * leaves it to compute the prompt itself from what its slot holds. */
static bool share_wait(server *s, slot *sl, int64_t *shared) {
    choice *c = sl->ch, *src = c->share;
    if (!src) return false;
    const int64_t np = (int64_t)sl->req->n_prompt;
    if (src->slot && src->finish == FINISH_NONE && grok_seq_pos(src->slot->seq) < np) return true;
    if (src->slot && src->finish == FINISH_NONE && copy_prompt(s, sl, src->slot, np - 1) == 0)
        *shared += np - 1;
    c->share = NULL;
    return false;
}

/* After a step that ended a prompt: the choices waiting for it copy the
 * whole prompt with its logits and join this step's sampling (as outs
 * after n_out). Returns the new count of outs. */
static int64_t share_done(server *s, slot **act, int64_t n_act, step_out *outs, int64_t n_seqs,
                          int64_t *shared) {
    int64_t n_out = n_seqs;
    for (int64_t i = 0; i < n_seqs; i++) {
        slot *src = outs[i].sl;
        const int64_t np = (int64_t)src->req->n_prompt;
        if (src->req->n < 2 || outs[i].pos0 >= np || grok_seq_pos(src->seq) != np) continue;
        for (int64_t j = 0; j < n_act; j++) {
            choice *f = act[j]->ch;
            if (!f || f->share != src->ch) continue;
            f->share = NULL;
            if (copy_prompt(s, act[j], src, np) == 0) {
                outs[n_out++] = (step_out){.sl = act[j], .pos0 = np};
                *shared += np;
            }
        }
    }
    return n_out;
}

/* One step: build, decode, sample (mu NOT held; the slots in the step
 * cannot be taken away meanwhile: only this thread frees slots). */
static void run_step(server *s, slot **act, int64_t n_act, step_out *outs, grok_seq **seqs,
                     const int32_t **toks, int64_t *ns, float **alls) {
    const int64_t budget = s->cfg.batch;
    int64_t total = 0, n_seqs = 0, shared = 0;
    for (int64_t i = 0; i < n_act; i++) share_wait(s, act[i], &shared); /* waiting: share still set */
    /* generating slots first: one token each */
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < n_act; i++) {
            choice *c = act[i]->ch;
            if (c->share) continue;
            int64_t pos = grok_seq_pos(act[i]->seq);
            int64_t left = (int64_t)c->n_seq - pos;
            bool prefill = left > 1;
            if ((pass == 0) == prefill) continue;
            int64_t take = left;
            if (take > s->cfg.chunk) take = s->cfg.chunk;
            if (c->plogits && take > PROMPT_LP_CHUNK) take = PROMPT_LP_CHUNK;
            if (take > budget - total) take = budget - total;
            if (take <= 0) continue;
            seqs[n_seqs] = act[i]->seq;
            toks[n_seqs] = c->seq + pos;
            ns[n_seqs] = take;
            /* all positions' logits only while a prompt-logprobs slot reads its prompt */
            alls[n_seqs] = c->plogits && prefill ? c->plogits : NULL;
            outs[n_seqs] = (step_out){.sl = act[i], .pos0 = pos, .take = alls[n_seqs] ? take : 0};
            n_seqs++;
            total += take;
        }
    }
    if (n_seqs == 0) {
        if (shared) {
            pthread_mutex_lock(&s->mu);
            s->m.prompt_tokens_shared += (uint64_t)shared;
            pthread_mutex_unlock(&s->mu);
        }
        return;
    }
    char err[GROK_ERR_SIZE], msg[GROK_ERR_SIZE + 64];
    double t0 = grok_now();
    bool failed = s->dist && step_announce(s, seqs, toks, ns, alls, n_seqs, err, sizeof err);
    int rc = failed ? 0 : grok_decode_multi_logits(s->runner, seqs, toks, ns, alls, n_seqs, err, sizeof err);
    if (rc == GROK_ERR_NONFINITE)
        failed = !isolate_nonfinite(s, outs, seqs, toks, ns, alls, n_seqs, err, sizeof err);
    else if (rc)
        failed = true;
    double t1 = grok_now();
    grok_step_stats st = grok_runner_last_step(s->runner);
    if (failed && s->dist) { /* the other ranks may be inside the step: end the job */
        snprintf(msg, sizeof msg, "grok serve: rank 0: step failed: %s", err);
        grok_dist_abort(msg);
    }
    if (failed) {
        fprintf(stderr, "grok serve: step failed: %s\n", err);
        for (int64_t i = 0; i < n_seqs; i++) outs[i].finish = FINISH_ERROR;
    }
    int64_t n_out = n_seqs;
    if (!failed) {
        n_out = share_done(s, act, n_act, outs, n_seqs, &shared);
        sample_task task = {s, outs, n_out};
        if (n_out == 1)
            sample_slot(s, &outs[0]);
        else
            grok_threadpool_run(s->pool, sample_many, &task); /* the slots are independent */
    }
    double t2 = grok_now();
    /* apply under the lock */
    pthread_mutex_lock(&s->mu);
    s->m.steps++;
    s->m.step_tokens += (uint64_t)total;
    s->m.weight_bytes += (uint64_t)st.weight_bytes;
    s->m.expert_reads += (uint64_t)st.expert_reads;
    s->m.forward_seconds += t1 - t0;
    s->m.sample_seconds += t2 - t1;
    s->m.prompt_tokens_shared += (uint64_t)shared;
    for (int64_t i = 0; i < n_out; i++) {
        if (outs[i].mask_s > 0) s->m.masks++, s->m.mask_seconds += outs[i].mask_s;
    }
    for (int64_t i = 0; i < n_out; i++) {
        step_out *o = &outs[i];
        choice *c = o->sl->ch;
        request *r = o->sl->req;
        if (!c) continue;
        c->n_gen_shown = c->n_gen;
        if (o->sampled && r->t_first == 0) {
            r->t_first = grok_now();
            metrics_observe(&s->m.ttft, r->t_first - r->t_arrive);
        }
        if (c->n_pstage) {
            if (grow((void **)&c->lps, &c->lps_cap, c->n_lps + c->n_pstage, sizeof *c->lps)) {
                memcpy(c->lps + c->n_lps, c->pstage, c->n_pstage * sizeof *c->lps);
                c->n_lps += c->n_pstage;
                http_request_changed(s, r);
            } else {
                o->finish = FINISH_ERROR;
            }
            c->n_pstage = 0;
        }
        if (o->has_lp && grow((void **)&c->lps, &c->lps_cap, c->n_lps + 1, sizeof *c->lps))
            c->lps[c->n_lps++] = o->lp;
        if (c->rt) {
            const size_t before = c->rt->n;
            if (!routing_publish(c->rt, c->seq)) o->finish = FINISH_ERROR;
            if (c->rt->n > before && !o->sampled) http_request_changed(s, r);
        }
        if (o->release) {
            if (!release_text(c, c->hold, o->release)) o->finish = FINISH_ERROR;
            memmove(c->hold, c->hold + o->release, c->hold_len - o->release);
            c->hold_len -= o->release;
        }
        if (o->finish != FINISH_NONE)
            finish_choice(s, r, c, o->finish);
        else if (o->sampled)
            http_request_changed(s, r);
    }
    pthread_mutex_unlock(&s->mu);
}

void *sched_main(void *arg) {
    server *s = arg;
    size_t n = (size_t)s->n_slots;
    slot **act = calloc(n, sizeof *act);
    step_out *outs = calloc(n, sizeof *outs);
    grok_seq **seqs = calloc(n, sizeof *seqs);
    const int32_t **toks = calloc(n, sizeof *toks);
    int64_t *ns = calloc(n, sizeof *ns);
    float **alls = calloc(n, sizeof *alls);
    if (!act || !outs || !seqs || !toks || !ns || !alls) {
        fprintf(stderr, "grok serve: out of memory in the scheduler\n");
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        s->drain_deadline = 0;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        reap(s, grok_now());
        if (act) admit(s);
        request *judge = s->judge_head; /* one per step, so the streams keep flowing */
        if (judge) s->judge_head = judge->judge_next;
        int64_t n_act = 0;
        for (int64_t i = 0; i < s->n_slots; i++)
            if (s->slots[i].ch) act[n_act++] = &s->slots[i];
        if (n_act == 0 && !judge) {
            if (s->stopping && !s->q_head) break;
            struct timespec ts = grok_realtime_after(0.1); /* wake for deadlines */
            pthread_cond_timedwait(&s->work, &s->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        if (judge) think_run_verifier(s, judge);
        if (n_act) run_step(s, act, n_act, outs, seqs, toks, ns, alls);
        pthread_mutex_lock(&s->mu);
        if (judge) complete_request(s, judge);
    }
    s->sched_exit = true;
    pthread_mutex_unlock(&s->mu);
    free(act);
    free(outs);
    free(seqs);
    free(toks);
    free(ns);
    free(alls);
    return NULL;
}
