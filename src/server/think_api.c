/*
 * think_api.c - think requests in `grok serve`: spending more compute at
 * answer time. A request with `reasoning_effort` or a `think` object draws
 * several samples of its prompt (the request's choices: one batch, the
 * prompt computed once and its KV cache copied, see sched.c), then answers
 * with the one chosen by majority vote over an extracted final answer, by
 * the model's mean token log-probability or by a verifier model's score
 * (think.c). The response is an ordinary OpenAI response whose one choice
 * is the chosen sample, with a `think` object beside `choices` (clients
 * that do not know it ignore it):
 *
 *   "think": {"samples": 16, "select": "vote", "extract": "last_number",
 *             "answer": "554", "confidence": 0.8125, "chosen": 3,
 *             "votes": [{"answer": "554", "votes": 13}, ...], "no_answer": 0,
 *             "candidates": [...]}            (candidates on request)
 *
 * Streamed, the samples' progress comes as chunks with an empty `choices`
 * and a `think` object (samples finished, tokens so far, the votes of the
 * finished ones), then one chunk with the chosen text as its delta and the
 * whole `think` object. docs/think.md has the schema and the rules.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "server/server.h"
#include "util/buf.h"
#include "util/utf8.h"

void think_req_free(think_req *t) {
    if (!t) return;
    think_extractor_free(&t->ex);
    free(t->prompt_text);
    free(t->scores);
    free(t);
}

#define BAD(prm, ...)                         \
    do {                                      \
        snprintf(err, err_size, __VA_ARGS__); \
        *param = (prm);                       \
        goto fail;                            \
    } while (0)

int think_parse(server *s, const cJSON *root, request *r, const char *prompt_text, char *err, size_t err_size,
                const char **param) {
    const cJSON *eff = cJSON_GetObjectItemCaseSensitive(root, "reasoning_effort");
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(root, "think");
    if (eff && cJSON_IsNull(eff)) eff = NULL;
    if (th && cJSON_IsNull(th)) th = NULL;
    if (!eff && !th) return 0;
    think_req *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, err_size, "out of memory");
        *param = NULL;
        return -1;
    }
    const int64_t max = s->cfg.parallel < THINK_MAX_SAMPLES ? s->cfg.parallel : THINK_MAX_SAMPLES;
    int samples = 16; /* a think object without samples or effort: medium */
    if (eff) {
        if (!cJSON_IsString(eff) || (samples = think_effort_samples(eff->valuestring)) < 0)
            BAD("reasoning_effort",
                "'reasoning_effort' must be \"minimal\", \"low\", \"medium\" or \"high\"");
        snprintf(t->effort, sizeof t->effort, "%s", eff->valuestring);
    }
    if (samples > max) samples = (int)max; /* an effort is a wish: this server's most */
    const char *select = "vote", *extract = NULL;
    if (th) {
        if (!cJSON_IsObject(th)) BAD("think", "'think' must be an object");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(th, "samples");
        if (f && !cJSON_IsNull(f)) {
            double v = cJSON_IsNumber(f) ? f->valuedouble : -1;
            if (!cJSON_IsNumber(f) || v != floor(v) || v < 1 || v > THINK_MAX_SAMPLES)
                BAD("think.samples", "'think.samples' must be an integer in [1, %d]", THINK_MAX_SAMPLES);
            if (v > (double)max)
                BAD("think.samples",
                    "'think.samples' is %.0f, more than this server runs at once (%" PRId64
                    "; grok serve --parallel)",
                    v, max);
            samples = (int)v;
        }
        if ((f = cJSON_GetObjectItemCaseSensitive(th, "select")) && !cJSON_IsNull(f)) {
            if (!cJSON_IsString(f) || think_select_from_name(f->valuestring) < 0)
                BAD("think.select", "'think.select' must be \"vote\", \"logprob\" or \"verifier\"");
            select = f->valuestring;
        }
        if ((f = cJSON_GetObjectItemCaseSensitive(th, "extract")) && !cJSON_IsNull(f)) {
            if (!cJSON_IsString(f)) BAD("think.extract", "'think.extract' must be a string");
            extract = f->valuestring;
        }
        if ((f = cJSON_GetObjectItemCaseSensitive(th, "candidates")) && !cJSON_IsNull(f)) {
            if (!cJSON_IsBool(f)) BAD("think.candidates", "'think.candidates' must be true or false");
            t->candidates = cJSON_IsTrue(f);
        }
    }
    t->samples = samples;
    t->select = (think_select)think_select_from_name(select);
    if (t->select == THINK_SELECT_VERIFIER && !s->verifier)
        BAD("think.select",
            "'think.select' is \"verifier\" but this server has no verifier (grok serve --verifier MODEL)");
    if (think_extractor_init(&t->ex, extract, err, err_size)) {
        *param = "think.extract";
        goto fail;
    }
    if (r->n != 1)
        BAD("n", "'n' must be 1 in a think request: its samples are think.samples (%d here)", samples);
    if (prompt_text) {
        t->prompt_text = strdup(prompt_text);
    } else {
        size_t n;
        char *d = grok_detokenize(s->tok, r->prompt, r->n_prompt, &n);
        t->prompt_text = d ? grok_utf8_sanitize(d, n, NULL) : NULL;
        free(d);
    }
    t->scores = malloc((size_t)samples * sizeof *t->scores);
    if (!t->prompt_text || !t->scores) BAD(NULL, "out of memory");
    for (int i = 0; i < samples; i++) t->scores[i] = NAN;
    r->think = t;
    r->n = samples;
    return 1;
fail:
    think_req_free(t);
    return -1;
}

/* ---- the choice ---- */

typedef struct {
    int k; /* candidates considered */
    int idx[THINK_MAX_SAMPLES];
    think_candidate cand[THINK_MAX_SAMPLES];
    char *ans[THINK_MAX_SAMPLES];
    think_tally tally[THINK_MAX_SAMPLES];
    think_result res;
} decision;

static bool finished_ok(const choice *c) { return c->finish == FINISH_STOP || c->finish == FINISH_LENGTH; }

/* The generated text of choice c (an echoed prompt left out). */
static const char *gen_text(const request *r, const choice *c, size_t *len) {
    size_t off = r->echo && r->prompt_text ? strlen(r->prompt_text) : 0;
    if (!c->text || off > c->text_len) off = c->text_len;
    *len = c->text_len - off;
    return c->text ? c->text + off : "";
}

/* Extracts and chooses, over every sample or over the finished ones only
 * (progress while streaming). mu held or r complete. */
static void decide(const request *r, decision *d, bool finished_only) {
    const think_req *t = r->think;
    d->k = 0;
    for (int i = 0; i < r->n && i < THINK_MAX_SAMPLES; i++) {
        const choice *c = &r->choices[i];
        if (finished_only && !finished_ok(c)) continue;
        size_t len;
        const char *g = gen_text(r, c, &len);
        int j = d->k++;
        d->idx[j] = i;
        d->ans[j] = think_extract(&t->ex, g, len);
        d->cand[j] =
            (think_candidate){d->ans[j], c->n_gen > 0 ? c->lp_sum / (double)c->n_gen : NAN, t->scores[i]};
    }
    d->res = think_choose(d->cand, d->k, t->select, d->tally);
}

static void decision_free(decision *d) {
    for (int j = 0; j < d->k; j++) free(d->ans[j]);
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *str_or_null(const char *v) { return v ? cJSON_CreateString(v) : cJSON_CreateNull(); }

static cJSON *votes_json(const decision *d) {
    cJSON *a = cJSON_CreateArray();
    for (int j = 0; j < d->res.n_tally; j++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "answer", d->tally[j].answer);
        cJSON_AddNumberToObject(o, "votes", d->tally[j].votes);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static const char *finish_str(int f) {
    return f == FINISH_STOP ? "stop" : f == FINISH_LENGTH ? "length" : NULL;
}

/* The think object of a complete request. */
static cJSON *think_json(const request *r, const decision *d) {
    const think_req *t = r->think;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "samples", t->samples);
    if (t->effort[0]) cJSON_AddStringToObject(o, "reasoning_effort", t->effort);
    cJSON_AddStringToObject(o, "select", think_select_name(t->select));
    cJSON_AddStringToObject(o, "extract", t->ex.spec);
    cJSON_AddItemToObject(o, "answer", str_or_null(d->res.answer));
    cJSON_AddNumberToObject(o, "confidence", d->res.confidence);
    cJSON_AddNumberToObject(o, "chosen", d->res.chosen >= 0 ? d->idx[d->res.chosen] : -1);
    cJSON_AddItemToObject(o, "votes", votes_json(d));
    cJSON_AddNumberToObject(o, "no_answer", d->res.n_no_answer);
    if (t->candidates) {
        cJSON *a = cJSON_AddArrayToObject(o, "candidates");
        for (int j = 0; j < d->k; j++) {
            const choice *c = &r->choices[d->idx[j]];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "index", d->idx[j]);
            cJSON_AddStringToObject(e, "text", c->text ? c->text : "");
            cJSON_AddItemToObject(e, "answer", str_or_null(d->ans[j]));
            cJSON_AddItemToObject(e, "mean_logprob", num_or_null(d->cand[j].mean_logprob));
            cJSON_AddItemToObject(e, "verifier_score", num_or_null(d->cand[j].score));
            cJSON_AddNumberToObject(e, "tokens", (double)c->n_gen);
            cJSON_AddItemToObject(e, "finish_reason", str_or_null(finish_str(c->finish)));
            cJSON_AddItemToArray(a, e);
        }
    }
    return o;
}

char *think_whole_response(server *s, const request *r) {
    decision d;
    decide(r, &d, false);
    cJSON *root = api_head_json(s, r, r->kind == KIND_CHAT ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    if (d.res.chosen >= 0) cJSON_AddItemToArray(choices, api_choice_json(s, r, d.idx[d.res.chosen], 0));
    api_add_usage(root, r);
    cJSON_AddItemToObject(root, "think", think_json(r, &d));
    decision_free(&d);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* ---- streaming ---- */

/* Appends "data: JSON\n\n" of root (deleted) to b. */
static void add_event(grok_strbuf *b, cJSON *root) {
    char *j = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!j) return;
    grok_strbuf_adds(b, "data: ");
    grok_strbuf_adds(b, j);
    grok_strbuf_adds(b, "\n\n");
    free(j);
}

/* A chunk whose one choice (index 0) carries text as its delta. */
static cJSON *choice_chunk(server *s, const request *r, const char *text, bool role, int ci, int finish) {
    bool chat = r->kind == KIND_CHAT;
    cJSON *root = api_head_json(s, r, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", 0);
    if (chat) {
        cJSON *d = cJSON_AddObjectToObject(o, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        cJSON_AddStringToObject(d, "content", text);
    } else {
        cJSON_AddStringToObject(o, "text", text);
    }
    const choice *c = ci >= 0 ? &r->choices[ci] : NULL;
    if (c && r->logprobs >= 0 && c->n_lps)
        cJSON_AddItemToObject(o, "logprobs", api_logprobs_json(s, r, ci, 0, c->n_lps));
    else
        cJSON_AddNullToObject(o, "logprobs");
    if (c && c->rt && c->rt->n)
        cJSON_AddItemToObject(o, "grok_routing", api_routing_json(s, r, ci, 0, c->rt->n));
    api_add_finish(o, finish, c);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), o);
    return root;
}

char *think_stream_events(server *s, request *r) {
    think_req *t = r->think;
    grok_strbuf b = {0};
    if (r->kind == KIND_CHAT && !t->sent_role) {
        add_event(&b, choice_chunk(s, r, "", true, -1, FINISH_NONE));
        t->sent_role = true;
    }
    int finished = 0;
    bool all_ok = true;
    int64_t tokens = 0;
    for (int i = 0; i < r->n; i++) {
        finished += r->choices[i].finish != FINISH_NONE;
        all_ok = all_ok && finished_ok(&r->choices[i]);
        tokens += r->choices[i].n_gen_shown;
    }
    if (finished != t->sent_finished || tokens != t->sent_tokens) {
        decision d;
        decide(r, &d, true);
        cJSON *root = api_head_json(s, r, r->kind == KIND_CHAT ? "chat.completion.chunk" : "text_completion");
        cJSON_AddArrayToObject(root, "choices");
        cJSON *p = cJSON_AddObjectToObject(root, "think");
        cJSON_AddNumberToObject(p, "samples", t->samples);
        cJSON_AddNumberToObject(p, "finished", finished);
        cJSON_AddNumberToObject(p, "tokens", (double)tokens);
        cJSON_AddItemToObject(p, "votes", votes_json(&d));
        decision_free(&d);
        add_event(&b, root);
        t->sent_finished = finished;
        t->sent_tokens = tokens;
    }
    if (r->complete && all_ok) { /* the answer; a failure is the caller's to report */
        decision d;
        decide(r, &d, false);
        if (d.res.chosen >= 0) {
            const int ci = d.idx[d.res.chosen];
            const choice *c = &r->choices[ci];
            cJSON *root = choice_chunk(s, r, c->text ? c->text : "", false, ci, c->finish);
            cJSON_AddItemToObject(root, "think", think_json(r, &d));
            add_event(&b, root);
        }
        decision_free(&d);
    }
    return b.a && !b.oom ? grok_strbuf_take(&b, NULL) : (free(b.a), NULL); /* NULL: nothing to send */
}

/* ---- the verifier (scheduler thread) ---- */

bool think_needs_verifier(server *s, const request *r) {
    if (!r->think || r->think->select != THINK_SELECT_VERIFIER || !s->verifier || r->cancelled) return false;
    for (int i = 0; i < r->n; i++)
        if (!finished_ok(&r->choices[i])) return false;
    return true;
}

void think_run_verifier(server *s, request *r) {
    think_req *t = r->think;
    const char *texts[THINK_MAX_SAMPLES] = {0};
    size_t lens[THINK_MAX_SAMPLES] = {0};
    int k = r->n < THINK_MAX_SAMPLES ? r->n : THINK_MAX_SAMPLES;
    for (int i = 0; i < k; i++) texts[i] = gen_text(r, &r->choices[i], &lens[i]);
    char err[GROK_ERR_SIZE];
    if (think_verifier_score(s->verifier, t->prompt_text, strlen(t->prompt_text), texts, lens, k, t->scores,
                             err, sizeof err)) {
        fprintf(stderr, "grok serve: the verifier failed (%s); request %s chooses by log-probability\n", err,
                r->id);
        for (int i = 0; i < k; i++) t->scores[i] = NAN;
    }
}
