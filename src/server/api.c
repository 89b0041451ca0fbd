/*
 * api.c - the OpenAI request and response schema of `grok serve`.
 *
 * Parsing is strict about what it knows and silent about what it does not:
 * every known field is checked for type and range and a bad one gives a
 * 400 whose message names it (JSON null counts as absent, as OpenAI's
 * clients send it); unknown fields are ignored so clients that send extra
 * fields keep working. Sampler defaults are OpenAI's (temperature 1, top_p
 * 1, no top-k or min-p, no penalties), so a request with the same explicit
 * settings and seed as a `grok run` command line gives the same text.
 *
 * Responses are built with cJSON; every string put into them is valid
 * UTF-8 (the scheduler only releases whole characters; token texts for
 * logprobs are sanitised) so the JSON stays valid.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "server/sampler_limits.h"
#include "server/server.h"
#include "util/buf.h"
#include "util/rng.h"
#include "util/utf8.h"

/* The grok_routing record of one choice (the scheduler's hook fills it,
 * sched.c): made and freed with the choice, here, so that the request's
 * life cycle is one file's (and tests/fuzz links it without the
 * scheduler). */
choice_routing *routing_create(const grok_hparams *hp, int64_t base, int64_t max_tokens, bool probs) {
    choice_routing *rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    rt->L = hp->n_layers, rt->E = hp->n_experts, rt->K = hp->n_experts_used;
    rt->base = base, rt->probs = probs, rt->st_index = -1;
    const size_t lk = (size_t)(rt->L * rt->K), le = (size_t)(rt->L * rt->E);
    rt->off = calloc((size_t)(max_tokens > 0 ? max_tokens : 1), sizeof *rt->off);
    rt->st_experts = calloc(lk, sizeof *rt->st_experts);
    rt->st_gates = calloc(lk, sizeof *rt->st_gates);
    rt->st_probs = probs ? calloc(le, sizeof *rt->st_probs) : NULL;
    if (!rt->off || !rt->st_experts || !rt->st_gates || (probs && !rt->st_probs)) {
        routing_free(rt);
        return NULL;
    }
    return rt;
}

void routing_free(choice_routing *rt) {
    if (!rt) return;
    free(rt->off), free(rt->st_experts), free(rt->st_gates), free(rt->st_probs);
    free(rt->index), free(rt->ids), free(rt->offs), free(rt->experts), free(rt->gates), free(rt->pr);
    free(rt);
}

/* ---- requests ---- */

void request_free(request *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_stops; i++) free(r->stops[i]);
    free(r->prompt);
    free(r->prompt_text);
    grok_grammar_free(r->grammar);
    think_req_free(r->think);
    if (r->choices) {
        for (int i = 0; i < r->n; i++) {
            choice *c = &r->choices[i];
            grok_matcher_free(c->matcher);
            free(c->mask);
            tool_parse_free(c->tools);
            grok_sampler_free(c->sampler);
            free(c->seq);
            free(c->hold);
            free(c->text);
            free(c->lps);
            routing_free(c->rt);
        }
        free(r->choices);
    }
    free(r);
}

#define FAIL(prm, ...)                        \
    do {                                      \
        snprintf(err, err_size, __VA_ARGS__); \
        *param = (prm);                       \
        goto fail;                            \
    } while (0)

/* err already says what is wrong */
#define KEEP(prm)       \
    do {                \
        *param = (prm); \
        goto fail;      \
    } while (0)

/* A field, or NULL when absent or null. */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return (f && !cJSON_IsNull(f)) ? f : NULL;
}

/* Number field in [lo, hi] (integral when integer); 1 = set, 0 = absent,
 * -1 = bad (err written). */
static int num_field(const cJSON *o, const char *name, double lo, double hi, bool integer, double *out,
                     char *err, size_t err_size) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsNumber(f)) {
        snprintf(err, err_size, "'%s' must be a number", name);
        return -1;
    }
    double v = f->valuedouble;
    if (!isfinite(v) || v < lo || v > hi || (integer && v != floor(v))) {
        snprintf(err, err_size, "'%s' must be %s in [%g, %g], got %g", name,
                 integer ? "an integer" : "a number", lo, hi, v);
        return -1;
    }
    *out = v;
    return 1;
}

static int bool_field(const cJSON *o, const char *name, bool *out, char *err, size_t err_size) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsBool(f)) {
        snprintf(err, err_size, "'%s' must be true or false", name);
        return -1;
    }
    *out = cJSON_IsTrue(f);
    return 1;
}

/* The chat prompt from messages and the template (and the tools' system
 * turn, after the leading system messages); NULL with err. */
static char *chat_prompt(server *s, const cJSON *msgs, const char *tools_text, size_t *out_len, char *err,
                         size_t err_size) {
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        snprintf(err, err_size, "'messages' must be a non-empty array");
        return NULL;
    }
    const size_t n = (size_t)cJSON_GetArraySize(msgs);
    /* room for the tools' turn; each message may own its text (content
     * parts joined, or content and its tool calls) */
    grok_chat_msg *cm = calloc(n + 1, sizeof *cm);
    char **owned = calloc(n, sizeof *owned);
    char *b = NULL;
    size_t idx = 0, k = 0;
    bool tools_done = tools_text == NULL;
    if (!cm || !owned) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            snprintf(err, err_size, "messages[%zu] must be an object with a string 'role'", idx);
            goto done;
        }
        const char *rn = strcmp(role->valuestring, "developer") == 0 ? "system" : role->valuestring;
        int ri = grok_chat_role_index(rn);
        if (ri < 0) {
            snprintf(err, err_size, "messages[%zu].role must be system, user, assistant or tool", idx);
            goto done;
        }
        if (!tools_done && ri != GROK_CHAT_SYSTEM) {
            cm[k++] = (grok_chat_msg){GROK_CHAT_SYSTEM, tools_text, strlen(tools_text), NULL, NULL};
            tools_done = true;
        }
        const char *text = owned[idx] = grok_chat_content_text(field(m, "content"), err, err_size, idx);
        if (!text) goto done;
        const cJSON *calls = ri == GROK_CHAT_ASSISTANT ? field(m, "tool_calls") : NULL;
        if (calls) {
            char *with = grok_chat_tool_calls_text(text, calls, err, err_size, idx);
            if (!with) goto done;
            free(owned[idx]);
            text = owned[idx] = with;
        }
        const char *name = NULL, *id = NULL;
        if (ri == GROK_CHAT_TOOL) grok_chat_tool_names(msgs, m, &name, &id);
        cm[k++] = (grok_chat_msg){ri, text, strlen(text), name, id};
        idx++;
    }
    if (!tools_done) cm[k++] = (grok_chat_msg){GROK_CHAT_SYSTEM, tools_text, strlen(tools_text), NULL, NULL};
    b = grok_chat_render(&s->chat, cm, k, true, out_len, NULL);
    if (!b) snprintf(err, err_size, "out of memory");
done:
    for (size_t i = 0; owned && i < n; i++) free(owned[i]);
    free(owned), free(cm);
    return b;
}

/* Token ids from a JSON array of integers; NULL with err. */
static int32_t *ids_from_json(const cJSON *a, int64_t n_vocab, size_t *n, const char *name, char *err,
                              size_t err_size) {
    size_t k = (size_t)cJSON_GetArraySize(a), i = 0;
    int32_t *ids = malloc((k ? k : 1) * sizeof *ids);
    if (!ids) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!cJSON_IsNumber(e) || v != floor(v) || v < 0 || v >= (double)n_vocab) {
            snprintf(err, err_size, "%s[%zu] is not a token id in [0, %" PRId64 ")", name, i, n_vocab);
            free(ids);
            return NULL;
        }
        ids[i++] = (int32_t)v;
    }
    *n = i;
    return ids;
}

static bool all_numbers(const cJSON *a) {
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (!cJSON_IsNumber(e)) return false;
    return true;
}

/* echo: the choice's text starts with the prompt. */
static bool release_echo(choice *c, const char *prompt_text) {
    size_t n = strlen(prompt_text);
    if (!(c->text = malloc(n + 1))) return false;
    memcpy(c->text, prompt_text, n + 1);
    c->text_len = n;
    c->text_cap = n + 1;
    return true;
}

request *api_parse_completion(server *s, const char *body, size_t len, int kind, char *err, size_t err_size,
                              const char **param) {
    *param = NULL;
    request *r = calloc(1, sizeof *r);
    cJSON *root = NULL;
    char *text = NULL;
    if (!r) FAIL(NULL, "out of memory");
    r->kind = kind;
    r->logprobs = -1;
    r->n = 1;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) FAIL(NULL, "invalid JSON at byte %td", end ? end - body : (ptrdiff_t)0);
    if (end && (size_t)(end - body) < len) {
        for (const char *p = end; p < body + len; p++)
            if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
                FAIL(NULL, "invalid JSON: trailing data at byte %td", p - body);
    }
    if (!cJSON_IsObject(root)) FAIL(NULL, "the request body must be a JSON object");

    const cJSON *model = field(root, "model");
    if (model && !cJSON_IsString(model)) FAIL("model", "'model' must be a string");

    /* sampler: OpenAI's defaults, the engine's history window */
    grok_sampler_params sp = grok_sampler_default_params();
    sp.temperature = 1.0f;
    sp.top_p = 1.0f;
    sp.top_k = 0;
    sp.min_p = 0.0f;
    double v;
    int rc;
#define NUM(name, lo, hi, integer, dst)                                 \
    do {                                                                \
        rc = num_field(root, name, lo, hi, integer, &v, err, err_size); \
        if (rc < 0) {                                                   \
            *param = name;                                              \
            goto fail;                                                  \
        }                                                               \
        if (rc > 0) dst;                                                \
    } while (0)
    NUM("temperature", GROK_TEMPERATURE_MIN, GROK_TEMPERATURE_MAX, false, sp.temperature = (float)v);
    NUM("top_p", GROK_TOP_P_MIN, GROK_TOP_P_MAX, false, sp.top_p = (float)v);
    NUM("top_k", GROK_TOP_K_MIN, GROK_TOP_K_MAX, true, sp.top_k = (int32_t)v);
    NUM("min_p", GROK_MIN_P_MIN, GROK_MIN_P_MAX, false, sp.min_p = (float)v);
    NUM("presence_penalty", GROK_PENALTY_MIN, GROK_PENALTY_MAX, false, sp.presence_penalty = (float)v);
    NUM("frequency_penalty", GROK_PENALTY_MIN, GROK_PENALTY_MAX, false, sp.frequency_penalty = (float)v);
    NUM("repeat_penalty", GROK_REPEAT_PENALTY_MIN, GROK_REPEAT_PENALTY_MAX, false,
        sp.repeat_penalty = (float)v);
    bool seeded = false;
    NUM("seed", -9.2e18, 1.8e19, true, (sp.seed = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v, seeded = true));
    if (!seeded) {
        /* no seed: a different one per request (the time and the request's address, hashed) */
        sp.seed = grok_rng_mix((uint64_t)(grok_now() * 1e9) ^ ((uint64_t)(uintptr_t)r << 16));
    }
    r->sp = sp;
    int64_t max_n = s->cfg.parallel < MAX_N ? s->cfg.parallel : MAX_N;
    NUM("n", 1, 1e9, true, r->n = (int)(v < 1e6 ? v : 1e6));
    if (r->n > max_n) FAIL("n", "'n' is %d, more than this server runs at once (%" PRId64 ")", r->n, max_n);
    double mt = -1;
    NUM("max_tokens", 1, 1e12, true, mt = v);
    if (kind == KIND_CHAT && mt < 0) NUM("max_completion_tokens", 1, 1e12, true, mt = v);
    if (bool_field(root, "stream", &r->stream, err, err_size) < 0) KEEP("stream");
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) FAIL("stream_options", "'stream_options' must be an object");
        if (bool_field(so, "include_usage", &r->include_usage, err, err_size) < 0)
            KEEP("stream_options.include_usage");
    }
    if (kind == KIND_COMPLETION) {
        NUM("logprobs", 0, MAX_TOP_LOGPROBS, true, r->logprobs = (int)v);
        if (bool_field(root, "echo", &r->echo, err, err_size) < 0) KEEP("echo");
    } else {
        bool lp = false;
        if (bool_field(root, "logprobs", &lp, err, err_size) < 0) KEEP("logprobs");
        int top = 0;
        NUM("top_logprobs", 0, MAX_TOP_LOGPROBS, true, top = (int)v);
        if (top > 0 && !lp) FAIL("top_logprobs", "'top_logprobs' needs 'logprobs': true");
        if (lp) r->logprobs = top;
    }
#undef NUM
    /* grok.c's own field: the router's record of every generated token */
    const cJSON *gr = field(root, "grok_routing");
    if (gr) {
        if (cJSON_IsBool(gr)) {
            r->routing = cJSON_IsTrue(gr);
        } else if (cJSON_IsObject(gr)) {
            r->routing = true;
            if (bool_field(gr, "probs", &r->routing_probs, err, err_size) < 0) KEEP("grok_routing.probs");
        } else {
            FAIL("grok_routing", "'grok_routing' must be true, false or an object {\"probs\": true}");
        }
    }

    /* stop strings */
    const cJSON *stop = field(root, "stop");
    if (stop) {
        if (cJSON_IsString(stop)) {
            if (stop->valuestring[0] && !(r->stops[r->n_stops++] = strdup(stop->valuestring)))
                FAIL(NULL, "out of memory");
        } else if (cJSON_IsArray(stop)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, stop) {
                if (!cJSON_IsString(e)) FAIL("stop", "'stop' must be a string or an array of strings");
                if (!e->valuestring[0]) continue;
                if (r->n_stops == MAX_STOPS - 1) FAIL("stop", "at most %d stop strings", MAX_STOPS - 1);
                if (!(r->stops[r->n_stops++] = strdup(e->valuestring))) FAIL(NULL, "out of memory");
            }
        } else {
            FAIL("stop", "'stop' must be a string or an array of strings");
        }
    }

    /* structured output and tools */
    char *tools_text = NULL;
    if (tools_parse_request(s, root, r, &tools_text, err, err_size, param)) goto fail;

    /* prompt */
    size_t text_len = 0;
    if (kind == KIND_CHAT) {
        const cJSON *msgs = field(root, "messages");
        if (!msgs) {
            free(tools_text);
            FAIL("messages", "'messages' is required");
        }
        text = chat_prompt(s, msgs, tools_text, &text_len, err, err_size);
        free(tools_text);
        if (!text) KEEP("messages");
        if (s->chat.stop[0] && !(r->stops[r->n_stops++] = strdup(s->chat.stop))) FAIL(NULL, "out of memory");
    } else {
        free(tools_text);
        const cJSON *p = field(root, "prompt");
        if (!p) FAIL("prompt", "'prompt' is required");
        const cJSON *one = p;
        if (cJSON_IsArray(p) && !all_numbers(p)) {
            if (cJSON_GetArraySize(p) != 1)
                FAIL("prompt", "'prompt' as an array must hold one prompt (send one request each)");
            one = cJSON_GetArrayItem(p, 0);
        }
        if (cJSON_IsString(one)) {
            text_len = strlen(one->valuestring);
            if (!(text = strdup(one->valuestring))) FAIL(NULL, "out of memory");
        } else if (cJSON_IsArray(one) && all_numbers(one) && cJSON_GetArraySize(one) > 0) {
            r->prompt = ids_from_json(one, s->n_vocab, &r->n_prompt, "prompt", err, err_size);
            if (!r->prompt) KEEP("prompt");
        } else {
            FAIL("prompt", "'prompt' must be a string, an array of token ids, or an array of one "
                           "of these");
        }
    }
    r->prompt_lps = kind == KIND_COMPLETION && r->echo && r->logprobs >= 0;
    if (text) {
        r->prompt = grok_tokenize(s->tok, text, text_len, true, &r->n_prompt);
        if (!r->prompt) FAIL(NULL, "out of memory");
        if (r->echo) {
            r->prompt_text = text;
            text = NULL;
        }
    } else if (r->echo) {
        size_t n;
        char *t = grok_detokenize(s->tok, r->prompt, r->n_prompt, &n);
        r->prompt_text = t ? grok_utf8_sanitize(t, n, NULL) : NULL;
        free(t);
        if (!r->prompt_text) FAIL(NULL, "out of memory");
    }
    if (r->n_prompt == 0) { /* nothing to condition on: start from BOS, as grok run does */
        int32_t bos = grok_tokenizer_bos(s->tok);
        if (bos < 0) FAIL("prompt", "the prompt is empty and the vocabulary has no BOS token");
        free(r->prompt);
        if (!(r->prompt = malloc(sizeof(int32_t)))) FAIL(NULL, "out of memory");
        r->prompt[0] = bos;
        r->n_prompt = 1;
    }
    const int64_t ctx = s->cfg.n_ctx, np = (int64_t)r->n_prompt;
    if (np > ctx - 1) {
        *param = kind == KIND_CHAT ? "messages" : "prompt";
        snprintf(err, err_size,
                 "the prompt has %" PRId64 " tokens; this server's context of %" PRId64
                 " tokens takes at most %" PRId64,
                 np, ctx, ctx - 1);
        goto fail;
    }
    if (mt >= 0) {
        if (mt > (double)(ctx - np))
            FAIL("max_tokens",
                 "'max_tokens' is %.0f but the context of %" PRId64 " tokens leaves %" PRId64
                 " after the prompt's %" PRId64,
                 mt, ctx, ctx - np, np);
        r->max_tokens = (int64_t)mt;
    } else {
        r->max_tokens = kind == KIND_COMPLETION ? 16 : ctx - np;
        if (r->max_tokens > ctx - np) r->max_tokens = ctx - np;
    }

    if (think_parse(s, root, r, text ? text : r->prompt_text, err, err_size, param) < 0) goto fail;
    /* a think answer is streamed as text chosen after the samples end; tool
     * calls are parsed per sample while it streams, so the two do not mix */
    if (r->think && r->parse_tools)
        FAIL("tools", "'tools' cannot be combined with 'think' or 'reasoning_effort'");
    r->choices = calloc((size_t)r->n, sizeof *r->choices);
    if (!r->choices) FAIL(NULL, "out of memory");
    for (int i = 0; i < r->n; i++) {
        r->choices[i].index = i;
        if (r->echo && !release_echo(&r->choices[i], r->prompt_text)) FAIL(NULL, "out of memory");
        if (r->routing &&
            !(r->choices[i].rt = routing_create(&s->hp, (int64_t)r->n_prompt,
                                                r->max_tokens, r->routing_probs)))
            FAIL(NULL, "out of memory");
    }
    free(text);
    cJSON_Delete(root);
    return r;
fail:
    free(text);
    cJSON_Delete(root);
    request_free(r);
    return NULL;
}

/* ---- responses ---- */

char *api_error_json(const char *message, const char *type, const char *param, const char *code) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    size_t n;
    char *msg = grok_utf8_sanitize(message, strlen(message), &n);
    cJSON_AddStringToObject(e, "message", msg ? msg : "error");
    free(msg);
    cJSON_AddStringToObject(e, "type", type);
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    if (code)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

void api_token_text(server *s, int32_t id, char *out, size_t cap) {
    token_display_text(s->tok, id, out, cap);
}

void token_display_text(const grok_tokenizer *tok, int32_t id, char *out, size_t cap) {
    size_t len = 0;
    const char *p = grok_tokenizer_piece(tok, id, &len);
    size_t k = 0;
    if (cap == 0) return;
    if (!p) {
        snprintf(out, cap, "<%d>", (int)id);
        return;
    }
    if (grok_tokenizer_type(tok, id) == GROK_TOKEN_BYTE && len == 6) {
        unsigned b = (unsigned)strtoul(p + 3, NULL, 16);
        if (b >= 0x20 && b < 0x7F)
            snprintf(out, cap, "%c", (char)b);
        else
            snprintf(out, cap, "%.*s", (int)len, p);
        return;
    }
    /* SentencePiece writes a space as U+2581 */
    for (size_t i = 0; i < len && k + 4 < cap; i++) {
        if (i + 2 < len && (unsigned char)p[i] == 0xE2 && (unsigned char)p[i + 1] == 0x96 &&
            (unsigned char)p[i + 2] == 0x81) {
            out[k++] = ' ';
            i += 2;
        } else {
            out[k++] = p[i];
        }
    }
    out[k] = '\0';
    char *clean = grok_utf8_sanitize(out, k, &len);
    if (clean) {
        snprintf(out, cap, "%s", clean);
        free(clean);
    }
}

/* The raw bytes a token stands for (chat logprobs' "bytes"). */
static cJSON *token_bytes(server *s, int32_t id, const char *text) {
    cJSON *a = cJSON_CreateArray();
    size_t len = 0;
    const char *p = grok_tokenizer_piece(s->tok, id, &len);
    if (p && grok_tokenizer_type(s->tok, id) == GROK_TOKEN_BYTE && len == 6) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)strtoul(p + 3, NULL, 16)));
        return a;
    }
    for (const unsigned char *u = (const unsigned char *)text; *u; u++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(*u));
    return a;
}

static double lp_num(float x) { return isfinite(x) ? (double)x : -9999.0; }

/* The logprobs object of choice c for its entries [lp0, lp1). */
static cJSON *logprobs_json(server *s, const request *r, const choice *c, size_t lp0, size_t lp1) {
    char t[GROK_DETOK_MAX_PIECE * 3 + 16];
    if (r->kind == KIND_CHAT) {
        cJSON *o = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(o, "content");
        for (size_t i = lp0; i < lp1; i++) {
            const token_logprob *lp = &c->lps[i];
            cJSON *e = cJSON_CreateObject();
            api_token_text(s, lp->token, t, sizeof t);
            cJSON_AddStringToObject(e, "token", t);
            cJSON_AddNumberToObject(e, "logprob", lp_num(lp->logprob));
            cJSON_AddItemToObject(e, "bytes", token_bytes(s, lp->token, t));
            cJSON *top = cJSON_AddArrayToObject(e, "top_logprobs");
            for (int32_t j = 0; j < lp->n_top; j++) {
                cJSON *a = cJSON_CreateObject();
                api_token_text(s, lp->top_id[j], t, sizeof t);
                cJSON_AddStringToObject(a, "token", t);
                cJSON_AddNumberToObject(a, "logprob", lp_num(lp->top_lp[j]));
                cJSON_AddItemToObject(a, "bytes", token_bytes(s, lp->top_id[j], t));
                cJSON_AddItemToArray(top, a);
            }
            cJSON_AddItemToArray(content, e);
        }
        return o;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens");
    cJSON *lps = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(o, "top_logprobs");
    cJSON *offs = cJSON_AddArrayToObject(o, "text_offset");
    for (size_t i = lp0; i < lp1; i++) {
        const token_logprob *lp = &c->lps[i];
        api_token_text(s, lp->token, t, sizeof t);
        cJSON_AddItemToArray(toks, cJSON_CreateString(t));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)lp->text_off));
        if (lp->none) { /* the first prompt token: nothing predicts it */
            cJSON_AddItemToArray(lps, cJSON_CreateNull());
            cJSON_AddItemToArray(tops, cJSON_CreateNull());
            continue;
        }
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(lp_num(lp->logprob)));
        cJSON *top = cJSON_CreateObject();
        for (int32_t j = 0; j < lp->n_top; j++) {
            api_token_text(s, lp->top_id[j], t, sizeof t);
            if (!cJSON_GetObjectItemCaseSensitive(top, t))
                cJSON_AddNumberToObject(top, t, lp_num(lp->top_lp[j]));
        }
        cJSON_AddItemToArray(tops, top);
    }
    return o;
}

static double round4(float x) { return isfinite(x) ? round((double)x * 1e4) / 1e4 : 0.0; }

/* "grok_routing" of choice c for its published tokens [a, b): per token
 * and layer the chosen experts (best first) and their gates, and with
 * probs every expert's probability. */
static cJSON *routing_json(server *s, const choice *c, size_t a, size_t b) {
    const choice_routing *rt = c->rt;
    char t[GROK_DETOK_MAX_PIECE * 3 + 16];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layers", (double)rt->L);
    cJSON_AddNumberToObject(o, "experts", (double)rt->E);
    cJSON_AddNumberToObject(o, "k", (double)rt->K);
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = a; i < b; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", (double)rt->index[i]);
        cJSON_AddNumberToObject(e, "id", rt->ids[i]);
        api_token_text(s, rt->ids[i], t, sizeof t);
        cJSON_AddStringToObject(e, "token", t);
        cJSON_AddNumberToObject(e, "text_offset", (double)rt->offs[i]);
        cJSON *ex = cJSON_AddArrayToObject(e, "experts"), *gs = cJSON_AddArrayToObject(e, "gates");
        cJSON *ps = rt->probs ? cJSON_AddArrayToObject(e, "probs") : NULL;
        for (int64_t l = 0; l < rt->L; l++) {
            const size_t at = (i * (size_t)rt->L + (size_t)l) * (size_t)rt->K;
            cJSON *el = cJSON_CreateArray(), *gl = cJSON_CreateArray();
            for (int64_t k = 0; k < rt->K; k++) {
                cJSON_AddItemToArray(el, cJSON_CreateNumber(rt->experts[at + (size_t)k]));
                cJSON_AddItemToArray(gl, cJSON_CreateNumber(round4(rt->gates[at + (size_t)k])));
            }
            cJSON_AddItemToArray(ex, el);
            cJSON_AddItemToArray(gs, gl);
            if (ps) {
                cJSON *pl = cJSON_CreateArray();
                const float *p = rt->pr + (i * (size_t)rt->L + (size_t)l) * (size_t)rt->E;
                for (int64_t x = 0; x < rt->E; x++)
                    cJSON_AddItemToArray(pl, cJSON_CreateNumber(round4(p[x])));
                cJSON_AddItemToArray(ps, pl);
            }
        }
        cJSON_AddItemToArray(toks, e);
    }
    return o;
}

static const char *finish_name(int f, const choice *c) {
    switch (f) {
    case FINISH_STOP: return c && c->tools && c->tools->n_calls ? "tool_calls" : "stop";
    case FINISH_LENGTH: return "length";
    default: return NULL;
    }
}

static cJSON *head(server *s, const request *r, const char *object) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", r->id);
    cJSON_AddStringToObject(root, "object", object);
    cJSON_AddNumberToObject(root, "created", (double)r->created);
    cJSON_AddStringToObject(root, "model", s->model_name);
    cJSON_AddStringToObject(root, "system_fingerprint", "grok.c-" GROK_VERSION);
    return root;
}

int64_t request_completion_tokens(const request *r) {
    int64_t n = 0;
    for (int i = 0; i < r->n; i++) n += r->choices[i].n_gen;
    return n;
}

void api_add_usage(cJSON *root, const request *r) {
    cJSON *u = cJSON_AddObjectToObject(root, "usage");
    int64_t ct = request_completion_tokens(r);
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)ct);
    cJSON_AddNumberToObject(u, "total_tokens", (double)((int64_t)r->n_prompt + ct));
}

void api_add_finish(cJSON *o, int finish, const choice *c) {
    const char *f = finish_name(finish, c);
    if (f)
        cJSON_AddStringToObject(o, "finish_reason", f);
    else
        cJSON_AddNullToObject(o, "finish_reason");
}

cJSON *api_choice_json(server *s, const request *r, int ci, int index) {
    const choice *c = &r->choices[ci];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", index);
    const char *text = c->text ? c->text : "";
    if (r->kind == KIND_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(o, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        bool calls = c->tools && c->tools->n_calls;
        if (calls && !text[0]) /* OpenAI: a message of only tool calls has no content */
            cJSON_AddNullToObject(m, "content");
        else
            cJSON_AddStringToObject(m, "content", text);
        if (calls) cJSON_AddItemToObject(m, "tool_calls", tools_calls_json(c->tools));
    } else {
        cJSON_AddStringToObject(o, "text", text);
    }
    if (r->logprobs >= 0)
        cJSON_AddItemToObject(o, "logprobs", logprobs_json(s, r, c, 0, c->n_lps));
    else
        cJSON_AddNullToObject(o, "logprobs");
    if (c->rt) cJSON_AddItemToObject(o, "grok_routing", routing_json(s, c, 0, c->rt->n));
    api_add_finish(o, c->finish, c);
    return o;
}

cJSON *api_head_json(server *s, const request *r, const char *object) { return head(s, r, object); }

cJSON *api_logprobs_json(server *s, const request *r, int ci, size_t lp0, size_t lp1) {
    return logprobs_json(s, r, &r->choices[ci], lp0, lp1);
}

cJSON *api_routing_json(server *s, const request *r, int ci, size_t a, size_t b) {
    return routing_json(s, &r->choices[ci], a, b);
}

char *api_whole_response(server *s, const request *r) {
    if (r->think) return think_whole_response(s, r);
    bool chat = r->kind == KIND_CHAT;
    cJSON *root = head(s, r, chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    for (int i = 0; i < r->n; i++) cJSON_AddItemToArray(choices, api_choice_json(s, r, i, i));
    api_add_usage(root, r);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

char *api_stream_chunk(server *s, const request *r, int ci, const char *text, size_t len, size_t lp0,
                       size_t lp1, int finish, bool first, cJSON *tool_delta) {
    return api_stream_chunk_routed(s, r, ci, text, len, lp0, lp1, 0, 0, finish, first, tool_delta);
}

char *api_stream_chunk_routed(server *s, const request *r, int ci, const char *text, size_t len, size_t lp0,
                              size_t lp1, size_t rt0, size_t rt1, int finish, bool first, cJSON *tool_delta) {
    bool chat = r->kind == KIND_CHAT;
    const choice *c = &r->choices[ci];
    cJSON *root = head(s, r, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", ci);
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, text, len);
        t[len] = '\0';
    }
    if (chat) {
        cJSON *d = cJSON_AddObjectToObject(o, "delta");
        if (first) cJSON_AddStringToObject(d, "role", "assistant");
        if (len || first) cJSON_AddStringToObject(d, "content", t ? t : "");
        if (tool_delta) cJSON_AddItemToObject(d, "tool_calls", tool_delta);
    } else {
        cJSON_AddStringToObject(o, "text", t ? t : "");
        cJSON_Delete(tool_delta);
    }
    free(t);
    if (r->logprobs >= 0 && lp1 > lp0)
        cJSON_AddItemToObject(o, "logprobs", logprobs_json(s, r, c, lp0, lp1));
    else
        cJSON_AddNullToObject(o, "logprobs");
    if (c->rt && rt1 > rt0) cJSON_AddItemToObject(o, "grok_routing", routing_json(s, c, rt0, rt1));
    api_add_finish(o, finish, c);
    cJSON_AddItemToArray(choices, o);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

char *api_usage_chunk(server *s, const request *r) {
    cJSON *root = head(s, r, r->kind == KIND_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(root, "choices");
    api_add_usage(root, r);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}
