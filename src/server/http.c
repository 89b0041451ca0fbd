/*
 * http.c - the HTTP front of `grok serve`, on libmicrohttpd in
 * thread-per-connection mode: each connection's thread may block until its
 * tokens arrive (a whole response waits for the end, a stream's content
 * reader waits for the next piece), which keeps the code linear and the
 * scheduler free of any socket work. While waiting, a thread polls its
 * socket for a hang-up, so a client that goes away has its request
 * cancelled before the scheduler's next step instead of when the next
 * write fails.
 *
 * Everything a client sends is checked here or in api.c before it reaches
 * the scheduler: the API key (constant-time comparison), the body size
 * (refused from Content-Length before the body is read), UTF-8, and the
 * schema. Refusals are OpenAI-style error objects; an overloaded server
 * answers 503 with Retry-After at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <microhttpd.h>

#include "dist/dist.h"
#include "server/server.h"
#include "util/utf8.h"

enum {
    R_NONE,
    R_HEALTH,
    R_METRICS,
    R_MODELS,
    R_COMPLETIONS,
    R_CHAT,
    R_TOKENIZE,
    R_DETOKENIZE,
    R_STATIC,
    R_NOT_FOUND,
    R_BAD_METHOD
};

typedef struct {
    server *s;
    int route;
    char *body;
    size_t len, cap;
    bool too_big;
    bool answered; /* a response was queued before the body arrived */
    int fd;
    request *req;
    const webui_asset *asset; /* R_STATIC: the file */
    /* streaming state */
    size_t *sent_text, *sent_lps, *sent_routes;
    bool *fin_sent;
    bool role_sent, ended;
    char *stage;
    size_t stage_len, stage_off;
} conn;

static const struct {
    const char *method, *path;
    int route;
} ROUTES[] = {
    {"GET", "/health", R_HEALTH},
    {"GET", "/metrics", R_METRICS},
    {"GET", "/v1/models", R_MODELS},
    {"GET", "/models", R_MODELS},
    {"POST", "/v1/completions", R_COMPLETIONS},
    {"POST", "/completions", R_COMPLETIONS},
    {"POST", "/v1/chat/completions", R_CHAT},
    {"POST", "/chat/completions", R_CHAT},
    {"POST", "/tokenize", R_TOKENIZE},
    {"POST", "/detokenize", R_DETOKENIZE},
};

/* The chat page's file for a GET of url ("/" is index.html), or NULL. */
static const webui_asset *asset_of(const server *s, const char *method, const char *url) {
    if (s->cfg.no_webui || strcmp(method, "GET") != 0) return NULL;
    if (strcmp(url, "/") == 0) url = "/index.html";
    for (size_t i = 0; i < webui_n_assets; i++)
        if (strcmp(url, webui_assets[i].path) == 0) return &webui_assets[i];
    return NULL;
}

static int route_of(const char *method, const char *url) {
    bool path_known = false;
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++) {
        if (strcmp(url, ROUTES[i].path) != 0) continue;
        path_known = true;
        if (strcmp(method, ROUTES[i].method) == 0) return ROUTES[i].route;
    }
    return path_known ? R_BAD_METHOD : R_NOT_FOUND;
}

static void count(server *s, int outcome) {
    pthread_mutex_lock(&s->mu);
    s->m.requests[outcome]++;
    pthread_mutex_unlock(&s->mu);
}

/* Queues body (malloc'd, freed by libmicrohttpd; NULL = out of memory). */
static enum MHD_Result reply(struct MHD_Connection *mc, unsigned status, const char *ctype, char *body,
                             size_t len, bool retry) {
    if (!body) {
        static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                            "\"param\":null,\"code\":null}}";
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ret = MHD_queue_response(mc, 500, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    enum MHD_Result ret = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *mc, unsigned status, char *json) {
    return reply(mc, status, "application/json", json, json ? strlen(json) : 0, false);
}

static enum MHD_Result reply_error(conn *c, struct MHD_Connection *mc, unsigned status, const char *msg,
                                   const char *type, const char *param, const char *code) {
    int outcome = status == 400                    ? OUT_BAD_REQUEST
                  : status == 401                  ? OUT_UNAUTHORIZED
                  : status == 503 || status == 429 ? OUT_REJECTED
                                                   : OUT_ERROR;
    if (c->route == R_COMPLETIONS || c->route == R_CHAT || status == 401) count(c->s, outcome);
    char *j = api_error_json(msg, type, param, code);
    return reply(mc, status, "application/json", j, j ? strlen(j) : 0, status == 503);
}

/* Constant-time check of "Bearer KEY": the time depends only on the
 * lengths, never on where the first difference is. */
static bool key_ok(const char *expected, const char *header) {
    if (!header) return false;
    const char *pfx = "Bearer ";
    size_t pl = strlen(pfx);
    if (strncasecmp(header, pfx, pl) != 0) return false;
    const char *got = header + pl;
    size_t ne = strlen(expected), ng = strlen(got);
    unsigned char diff = (unsigned char)(ne != ng);
    for (size_t i = 0; i < ne; i++) diff |= (unsigned char)(expected[i] ^ (i < ng ? got[i] : 0));
    return diff == 0;
}

/* True when the client has hung up (it can send nothing more we expect). */
static bool peer_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void wait_a_bit(server *s, request *r) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &s->mu, &ts);
}

/* With mu held: cancels r because its client left. */
static void cancel_locked(server *s, request *r) {
    if (!r->complete) {
        r->cancelled = true;
        pthread_cond_signal(&s->work);
    }
}

/* The reason a finished request could not give a normal answer, or 0. */
static int failure_of(const request *r) {
    int worst = 0;
    for (int i = 0; i < r->n; i++) {
        int f = r->choices[i].finish;
        if (f == FINISH_ERROR) return FINISH_ERROR;
        if (f == FINISH_TIMEOUT || f == FINISH_CANCEL) worst = f;
    }
    return worst;
}

static const char *failure_message(int f, unsigned *status, const char **type) {
    switch (f) {
    case FINISH_TIMEOUT:
        *status = 504;
        *type = "timeout_error";
        return "the request ran past the server's --timeout";
    case FINISH_CANCEL:
        *status = 503;
        *type = "server_shutting_down";
        return "the server is shutting down";
    default:
        *status = 500;
        *type = "server_error";
        return "generation failed";
    }
}

/* ---- streaming ---- */

static bool stage_add(conn *c, const char *a, const char *b, const char *z) {
    size_t la = strlen(a), lb = b ? strlen(b) : 0, lz = strlen(z);
    char *n = realloc(c->stage, c->stage_len + la + lb + lz + 1);
    if (!n) return false;
    c->stage = n;
    memcpy(c->stage + c->stage_len, a, la);
    if (lb) memcpy(c->stage + c->stage_len + la, b, lb);
    memcpy(c->stage + c->stage_len + la + lb, z, lz);
    c->stage_len += la + lb + lz;
    return true;
}

/* With mu held: stages the events for whatever is new; returns false when
 * nothing was new. */
static bool stage_new(conn *c) {
    request *r = c->req;
    server *s = c->s;
    bool any = false, all_fin = true;
    if (r->think) { /* progress, then the chosen sample (think_api.c) */
        char *ev = think_stream_events(s, r);
        if (ev) stage_add(c, "", ev, "");
        any = ev != NULL;
        free(ev);
        all_fin = r->complete;
    }
    for (int i = 0; i < r->n && !r->think; i++) {
        choice *ch = &r->choices[i];
        bool first = r->kind == KIND_CHAT && !c->role_sent;
        bool fin_now = ch->finish != FINISH_NONE && !c->fin_sent[i];
        bool normal_fin = ch->finish == FINISH_STOP || ch->finish == FINISH_LENGTH;
        cJSON *calls = ch->tools ? tools_calls_delta(ch->tools) : NULL;
        size_t n_routes = ch->rt ? ch->rt->n : 0;
        if (ch->text_len > c->sent_text[i] || ch->n_lps > c->sent_lps[i] || n_routes > c->sent_routes[i] ||
            first || calls || (fin_now && normal_fin)) {
            char *j = api_stream_chunk_routed(s, r, i, ch->text ? ch->text + c->sent_text[i] : "",
                                              ch->text_len - c->sent_text[i], c->sent_lps[i], ch->n_lps,
                                              c->sent_routes[i], n_routes, fin_now ? ch->finish : FINISH_NONE,
                                              first, calls);
            c->sent_routes[i] = n_routes;
            stage_add(c, "data: ", j, "\n\n");
            free(j);
            c->sent_text[i] = ch->text_len;
            c->sent_lps[i] = ch->n_lps;
            if (i == r->n - 1) c->role_sent = true;
            any = true;
        }
        if (fin_now) c->fin_sent[i] = true;
        if (!c->fin_sent[i]) all_fin = false;
    }
    if (all_fin && r->complete) {
        int f = failure_of(r);
        if (f) {
            unsigned st;
            const char *type, *msg = failure_message(f, &st, &type);
            char *j = api_error_json(msg, type, NULL, NULL);
            stage_add(c, "data: ", j, "\n\n");
            free(j);
        } else if (r->include_usage) {
            char *j = api_usage_chunk(s, r);
            stage_add(c, "data: ", j, "\n\n");
            free(j);
        }
        stage_add(c, "data: [DONE]\n\n", NULL, "");
        c->ended = true;
        any = true;
    }
    return any;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    conn *c = cls;
    server *s = c->s;
    (void)pos;
    for (;;) {
        if (c->stage_off < c->stage_len) {
            size_t n = c->stage_len - c->stage_off;
            if (n > max) n = max;
            memcpy(buf, c->stage + c->stage_off, n);
            c->stage_off += n;
            return (ssize_t)n;
        }
        c->stage_len = c->stage_off = 0;
        if (c->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&s->mu);
        bool got = stage_new(c);
        if (!got) wait_a_bit(s, c->req);
        pthread_mutex_unlock(&s->mu);
        if (!got && peer_gone(c->fd)) {
            pthread_mutex_lock(&s->mu);
            cancel_locked(s, c->req);
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

/* ---- endpoints ---- */

/* A file of the chat page: static bytes in the binary, never cached
 * stale (the page and the server come as one), locked to this origin. */
static enum MHD_Result do_static(conn *c, struct MHD_Connection *mc) {
    const webui_asset *a = c->asset;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", a->type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    enum MHD_Result ret = MHD_queue_response(mc, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result do_generate(conn *c, struct MHD_Connection *mc) {
    server *s = c->s;
    char err[GROK_ERR_SIZE];
    const char *param = NULL;
    if (!grok_utf8_valid(c->body ? c->body : "", c->len))
        return reply_error(c, mc, 400, "the request body is not valid UTF-8", "invalid_request_error", NULL,
                           NULL);
    request *r =
        api_parse_completion(s, c->body ? c->body : "", c->len,
                             c->route == R_CHAT ? KIND_CHAT : KIND_COMPLETION, err, sizeof err, &param);
    if (!r) {
        bool ctx = strstr(err, "context") != NULL;
        return reply_error(c, mc, 400, err, "invalid_request_error", param,
                           ctx ? "context_length_exceeded" : NULL);
    }
    pthread_mutex_lock(&s->mu);
    uint64_t idn = ++s->id_counter;
    pthread_mutex_unlock(&s->mu);
    snprintf(r->id, sizeof r->id, "%s-%08" PRIx64 "%06" PRIx64, r->kind == KIND_CHAT ? "chatcmpl" : "cmpl",
             (uint64_t)time(NULL), idn);
    r->created = (int64_t)time(NULL);
    r->t_arrive = now_s();
    r->deadline = r->t_arrive + s->cfg.timeout_s;
    if (sched_submit(s, r)) {
        request_free(r);
        return reply_error(c, mc, 503,
                           "the server is busy: every slot and queue place is taken; "
                           "retry later",
                           "server_overloaded", NULL, "overloaded");
    }
    c->req = r;
    if (r->stream) {
        c->sent_text = calloc((size_t)r->n, sizeof *c->sent_text);
        c->sent_lps = calloc((size_t)r->n, sizeof *c->sent_lps);
        c->fin_sent = calloc((size_t)r->n, sizeof *c->fin_sent);
        c->sent_routes = calloc((size_t)r->n, sizeof *c->sent_routes);
        for (int i = 0; i < r->n && r->echo && c->sent_text; i++) c->sent_text[i] = 0;
        struct MHD_Response *resp =
            c->sent_text && c->sent_lps && c->fin_sent && c->sent_routes
                ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, c, NULL)
                : NULL;
        if (!resp) return MHD_NO; /* the completed callback cancels r */
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        enum MHD_Result ret = MHD_queue_response(mc, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    pthread_mutex_lock(&s->mu);
    while (!r->complete) {
        wait_a_bit(s, r);
        if (!r->complete && peer_gone(c->fd)) {
            cancel_locked(s, r);
            pthread_mutex_unlock(&s->mu);
            return MHD_NO;
        }
    }
    pthread_mutex_unlock(&s->mu);
    /* complete: the scheduler no longer touches r */
    int f = failure_of(r);
    if (f) {
        unsigned st;
        const char *type, *msg = failure_message(f, &st, &type);
        char *j = api_error_json(msg, type, NULL, NULL);
        return reply(mc, st, "application/json", j, j ? strlen(j) : 0, st == 503);
    }
    return reply_json(mc, 200, api_whole_response(s, r));
}

static enum MHD_Result do_models(conn *c, struct MHD_Connection *mc) {
    server *s = c->s;
    const grok_hparams *hp = grok_model_hparams(s->model);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "grok.c");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddNumberToObject(meta, "n_ctx", (double)s->cfg.n_ctx);
    cJSON_AddNumberToObject(meta, "n_vocab", (double)hp->n_vocab);
    cJSON_AddNumberToObject(meta, "n_params", (double)grok_hparams_n_params(hp));
    cJSON_AddNumberToObject(meta, "parallel", (double)s->cfg.parallel);
    cJSON_AddItemToArray(data, m);
    char *j = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return reply_json(mc, 200, j);
}

static enum MHD_Result do_tokenize(conn *c, struct MHD_Connection *mc) {
    server *s = c->s;
    if (!grok_utf8_valid(c->body ? c->body : "", c->len))
        return reply_error(c, mc, 400, "the request body is not valid UTF-8", "invalid_request_error", NULL,
                           NULL);
    cJSON *root = cJSON_ParseWithLength(c->body ? c->body : "", c->len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return reply_error(c, mc, 400, "the request body must be a JSON object", "invalid_request_error",
                           NULL, NULL);
    }
    enum MHD_Result ret;
    if (c->route == R_TOKENIZE) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(root, "content");
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(root, "add_special");
        if (!cJSON_IsString(content) || (special && !cJSON_IsBool(special) && !cJSON_IsNull(special))) {
            cJSON_Delete(root);
            return reply_error(c, mc, 400, "'content' must be a string ('add_special' a boolean)",
                               "invalid_request_error", "content", NULL);
        }
        size_t n = 0;
        int32_t *ids = grok_tokenize(s->tok, content->valuestring, strlen(content->valuestring),
                                     cJSON_IsTrue(special), &n);
        cJSON *out = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(out, "tokens");
        for (size_t i = 0; ids && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
        free(ids);
        char *j = ids ? cJSON_PrintUnformatted(out) : NULL;
        cJSON_Delete(out);
        ret = reply_json(mc, 200, j);
    } else {
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(root, "tokens");
        if (!cJSON_IsArray(toks)) {
            cJSON_Delete(root);
            return reply_error(c, mc, 400, "'tokens' must be an array of token ids", "invalid_request_error",
                               "tokens", NULL);
        }
        size_t n = (size_t)cJSON_GetArraySize(toks), i = 0, len = 0;
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        const cJSON *e;
        char msg[128] = "";
        cJSON_ArrayForEach(e, toks) {
            double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
            if (v < 0 || v >= (double)s->n_vocab || v != (double)(int64_t)v) {
                snprintf(msg, sizeof msg, "tokens[%zu] is not a token id in [0, %" PRId64 ")", i, s->n_vocab);
                break;
            }
            if (ids) ids[i] = (int32_t)v;
            i++;
        }
        if (msg[0]) {
            free(ids);
            cJSON_Delete(root);
            return reply_error(c, mc, 400, msg, "invalid_request_error", "tokens", NULL);
        }
        char *text = ids ? grok_detokenize(s->tok, ids, n, &len) : NULL;
        char *clean = text ? utf8_sanitize(text, len, NULL) : NULL;
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "content", clean ? clean : "");
        char *j = clean ? cJSON_PrintUnformatted(out) : NULL;
        cJSON_Delete(out);
        free(ids);
        free(text);
        free(clean);
        ret = reply_json(mc, 200, j);
    }
    cJSON_Delete(root);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls) {
    server *s = cls;
    conn *c = *con_cls;
    (void)version;
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return MHD_NO;
        c->s = s;
        pthread_mutex_lock(&s->mu);
        s->n_conns++;
        pthread_mutex_unlock(&s->mu);
        c->asset = asset_of(s, method, url);
        c->route = c->asset ? R_STATIC : route_of(method, url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? ci->connect_fd : -1;
        *con_cls = c;
        /* answers that need no body are given before it is read */
        if (c->route == R_NOT_FOUND) {
            c->answered = true;
            return reply_error(c, mc, 404, "no such endpoint", "invalid_request_error", NULL, "not_found");
        }
        if (c->route == R_BAD_METHOD) {
            c->answered = true;
            return reply_error(c, mc, 405, "method not allowed here", "invalid_request_error", NULL, NULL);
        }
        /* the page asks for the key itself: its files need none */
        if (c->route == R_STATIC) {
            c->answered = true;
            return do_static(c, mc);
        }
        if (s->cfg.api_key && c->route != R_HEALTH &&
            !key_ok(s->cfg.api_key,
                    MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))) {
            c->answered = true;
            return reply_error(c, mc, 401, "a valid API key is required (Authorization: Bearer KEY)",
                               "invalid_request_error", NULL, "invalid_api_key");
        }
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) {
            c->answered = true;
            char msg[96];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->cfg.max_body);
            return reply_error(c, mc, 400, msg, "invalid_request_error", NULL, "request_too_large");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!c->answered && !c->too_big) {
            if (c->len + *upload_size > s->cfg.max_body) {
                c->too_big = true;
                free(c->body);
                c->body = NULL;
                c->len = c->cap = 0;
            } else {
                if (c->len + *upload_size + 1 > c->cap) {
                    size_t cap = c->cap ? c->cap : 1024;
                    while (cap < c->len + *upload_size + 1) cap *= 2;
                    char *b = realloc(c->body, cap);
                    if (!b) return MHD_NO;
                    c->body = b;
                    c->cap = cap;
                }
                memcpy(c->body + c->len, upload, *upload_size);
                c->len += *upload_size;
                c->body[c->len] = '\0';
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->answered) return MHD_YES;
    c->answered = true;
    if (c->too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->cfg.max_body);
        return reply_error(c, mc, 400, msg, "invalid_request_error", NULL, "request_too_large");
    }
    pthread_mutex_lock(&s->mu);
    bool ready = s->ready, stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (c->route == R_HEALTH) {
        const char *b = ready && !stopping ? "{\"status\":\"ok\"}"
                        : ready            ? "{\"status\":\"shutting down\"}"
                                           : "{\"status\":\"loading model\"}";
        return reply_json(mc, ready && !stopping ? 200 : 503, strdup(b));
    }
    if (c->route == R_METRICS) {
        size_t len = 0;
        char *t = metrics_text(s, &len);
        return reply(mc, 200, "text/plain; version=0.0.4", t, len, false);
    }
    if (!ready || stopping)
        return reply_error(c, mc, 503, ready ? "the server is shutting down" : "the model is loading",
                           "server_unavailable", NULL, NULL);
    switch (c->route) {
    case R_MODELS: return do_models(c, mc);
    case R_TOKENIZE:
    case R_DETOKENIZE: return do_tokenize(c, mc);
    default: return do_generate(c, mc);
    }
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    server *s = cls;
    conn *c = *con_cls;
    (void)mc;
    (void)toe;
    if (!c) return;
    if (c->req) sched_release(s, c->req);
    pthread_mutex_lock(&s->mu);
    s->n_conns--;
    pthread_mutex_unlock(&s->mu);
    free(c->body);
    free(c->sent_text);
    free(c->sent_lps);
    free(c->fin_sent);
    free(c->sent_routes);
    free(c->stage);
    free(c);
    *con_cls = NULL;
}

/* ---- lifecycle ---- */

static int write_port_file(const char *path, unsigned port) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int server_run(const server_config *cfg) {
    if (!grok_dist_threads_ok()) {
        fprintf(stderr, "grok serve: this MPI library cannot be called from the scheduler thread "
                        "(MPI_THREAD_SERIALIZED not provided)\n");
        return 1;
    }
    if (grok_dist_rank() != 0) return server_follow(cfg); /* rank 0 alone serves HTTP */
    server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->cfg = *cfg;
    int rc = 1;
    char err[GROK_ERR_SIZE];
    struct MHD_Daemon *d = NULL;
    pthread_t sched;
    bool sched_started = false, loaded = false;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->gmu, NULL);
    pthread_cond_init(&s->work, NULL);

    /* signals: SIGTERM/SIGINT are taken by sigwait below, in no other thread */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (grok_chat_template_load(&s->chat, cfg->chat_template, err, sizeof err)) {
        fprintf(stderr, "grok serve: %s\n", err);
        goto done;
    }
    const char *base = strrchr(cfg->model_path, '/');
    snprintf(s->model_name, sizeof s->model_name, "%s",
             cfg->model_name ? cfg->model_name
             : base          ? base + 1
                             : cfg->model_path);

    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    struct sockaddr *addr;
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    const char *host = strcmp(cfg->host, "localhost") == 0 ? "127.0.0.1" : cfg->host;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg->port);
        addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg->port);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "grok serve: --host '%s' is not an IPv4 or IPv6 address\n", cfg->host);
        goto done;
    }
    d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)1024, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                         MHD_OPTION_THREAD_STACK_SIZE, (size_t)1 << 20, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "grok serve: cannot listen on %s port %d: %s\n", cfg->host, cfg->port,
                strerror(errno));
        goto done;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : (unsigned)cfg->port;
    fprintf(stderr, "grok serve: listening on http://%s:%u (loading %s)\n", cfg->host, port, cfg->model_path);
    if (cfg->port_file && write_port_file(cfg->port_file, port)) {
        fprintf(stderr, "grok serve: --port-file %s: cannot write\n", cfg->port_file);
        goto done;
    }

    /* load while /health answers 503 */
    if (server_load(s, err, sizeof err)) {
        fprintf(stderr, "grok serve: %s\n", err);
        goto done;
    }
    loaded = true;
    if (pthread_create(&sched, NULL, sched_main, s)) {
        fprintf(stderr, "grok serve: cannot start the scheduler thread\n");
        goto done;
    }
    sched_started = true;
    pthread_mutex_lock(&s->mu);
    s->ready = true;
    pthread_mutex_unlock(&s->mu);
    fprintf(stderr,
            "grok serve: ready: %" PRId64 " slots of %" PRId64 " tokens, queue %" PRId64 ", %d threads%s\n",
            s->cfg.parallel, s->cfg.n_ctx, s->cfg.queue, grok_threadpool_size(s->pool),
            s->dist ? ", the model split across the MPI ranks" : "");

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "grok serve: %s: finishing in-flight requests\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rc = 0;
done:
    if (d) {
        MHD_socket lfd = MHD_quiesce_daemon(d); /* no new connections */
        if (lfd != MHD_INVALID_SOCKET) close(lfd);
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    s->drain_deadline = now_s() + cfg->drain_s;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    if (sched_started) pthread_join(sched, NULL);
    if (s->dist && loaded && step_announce_stop(s, err, sizeof err)) {
        fprintf(stderr, "grok serve: %s\n", err);
        rc = 1;
    }
    /* let the answers of finished requests reach their clients before the
     * connections are closed (bounded: a client may never read) */
    for (double until = now_s() + 5;;) {
        pthread_mutex_lock(&s->mu);
        int64_t n = s->n_conns;
        pthread_mutex_unlock(&s->mu);
        if (n == 0 || now_s() > until) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (d) MHD_stop_daemon(d); /* waits for the connection threads */
    sched_free(s);
    server_grammar_cache_free(s);
    grok_grammar_vocab_free(s->gvocab);
    grok_threadpool_free(s->pool);
    grok_model_free(s->model);
    grok_chat_template_free(&s->chat);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->gmu);
    pthread_mutex_destroy(&s->mu);
    if (rc == 0) fprintf(stderr, "grok serve: stopped\n");
    free(s);
    return rc;
}
