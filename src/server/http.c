/*
 * http.c - the HTTP front of `grok serve`, on libmicrohttpd in its
 * event-driven mode: a small pool of threads, each running an epoll loop
 * over its share of the connections, so an idle or slow connection costs
 * a socket and a few KB rather than a thread, and no callback ever blocks.
 * A request waiting for its tokens is suspended (MHD_suspend_connection):
 * out of the event loop until the scheduler's next output for it
 * (http_request_changed) resumes it; a whole response is queued once the
 * request completes, a stream's content reader returns what is new and
 * suspends again when nothing is.
 *
 * Hostile connections are bounded three ways (docs/reliability.md): a
 * limit of connections per client address (--conn-per-addr), a header
 * and a body timeout counted from when a connection starts waiting for a
 * request (not from its last byte, so a slowloris trickle does not keep
 * it), and a cap on the connections that have no complete request
 * (--max-waiting) past which the one waiting longest is closed, so a new
 * connection, /health among them, always gets in. A watcher thread
 * enforces the timeouts and notices clients that hang up while their
 * request is suspended (libmicrohttpd does not watch suspended sockets),
 * so their requests are cancelled before the scheduler's next step.
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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <microhttpd.h>

#include "dist/dist.h"
#include "server/server.h"
#include "util/buf.h"
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

/* A client connection (libmicrohttpd's socket context), from accept to
 * close. "Waiting": it has no complete request (headers or body still to
 * come, or idle between requests), and may be closed by the limits. */
typedef struct peer {
    int fd;
    bool waiting;
    bool closing; /* shut down by the limits; libmicrohttpd closes it next */
    bool in_body; /* headers complete, body still coming */
    double deadline;
    struct peer *prev, *next; /* the waiting list, oldest first */
} peer;

/* One request on a connection (libmicrohttpd's request context). */
typedef struct conn {
    server *s;
    struct MHD_Connection *mc;
    peer *p;
    int route;
    char *body;
    size_t len, cap;
    bool too_big;
    bool answered; /* a response was queued, or the request was handed on */
    int fd;
    request *req;
    bool suspended;               /* out of the event loop until its request has news */
    bool gone;                    /* the client hung up while suspended */
    struct conn *s_prev, *s_next; /* the suspended list */
    const webui_asset *asset;     /* R_STATIC: the file */
    /* streaming state */
    bool streaming;
    size_t *sent_text, *sent_lps, *sent_routes;
    bool *fin_sent;
    bool role_sent, ended;
    char *stage;
    size_t stage_len, stage_off;
} conn;

/* The front's shared state (all of it under server.mu). */
struct http_front {
    metrics *m; /* the counts of connections live with the other metrics */
    peer *w_head, *w_tail;
    int64_t max_waiting;
    double header_timeout, body_timeout;
    conn *s_head; /* suspended requests */
    int64_t n_suspended;
    bool watch_stop;
    pthread_cond_t watch_cv;
};

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

/* ---- connections: the waiting list and its limits (mu held) ---- */

static void waiting_add(struct http_front *h, peer *p, bool in_body, double timeout) {
    p->waiting = true;
    p->in_body = in_body;
    p->deadline = grok_now() + timeout;
    p->next = NULL;
    p->prev = h->w_tail;
    if (h->w_tail)
        h->w_tail->next = p;
    else
        h->w_head = p;
    h->w_tail = p;
    h->m->conns_waiting++;
}

static void waiting_remove(struct http_front *h, peer *p) {
    if (!p->waiting) return;
    if (p->prev)
        p->prev->next = p->next;
    else
        h->w_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        h->w_tail = p->prev;
    p->prev = p->next = NULL;
    p->waiting = false;
    h->m->conns_waiting--;
}

/* Ends a waiting connection: shutting the socket down makes libmicrohttpd
 * see the end of the stream on its next read and close the connection
 * itself (it offers no call to close one from outside). The peer is freed
 * only when libmicrohttpd reports the close, before it closes the socket,
 * and both happen under mu, so the descriptor cannot have been reused. */
static void peer_close(struct http_front *h, peer *p, uint64_t *counter) {
    waiting_remove(h, p);
    p->closing = true;
    shutdown(p->fd, SHUT_RDWR);
    (*counter)++;
}

/* The connection's request is complete: it no longer waits. */
static void peer_busy(server *s, peer *p) {
    if (!p) return;
    pthread_mutex_lock(&s->mu);
    waiting_remove(s->http, p);
    pthread_mutex_unlock(&s->mu);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    server *s = cls;
    struct http_front *h = s->http;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        peer *p = calloc(1, sizeof *p);
        *socket_context = p;
        if (!p) return; /* counted nowhere: only the connection limits bound it */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        p->fd = ci ? ci->connect_fd : -1;
        pthread_mutex_lock(&s->mu);
        h->m->conns_open++;
        /* the newcomer stays, the one waiting longest goes: a flood of idle
         * connections cannot keep a real client (or /health) out */
        if (h->m->conns_waiting >= h->max_waiting && h->w_head)
            peer_close(h, h->w_head, &h->m->conns_evicted);
        waiting_add(h, p, false, h->header_timeout);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    peer *p = *socket_context;
    if (!p) return;
    pthread_mutex_lock(&s->mu);
    waiting_remove(h, p);
    h->m->conns_open--;
    pthread_mutex_unlock(&s->mu);
    free(p);
    *socket_context = NULL;
}

/* ---- suspended requests (mu held) ---- */

/* Takes c out of the event loop until http_request_changed (or the
 * watcher) resumes it. Only from c's own callbacks (the access handler or
 * the content reader), as libmicrohttpd requires. */
static void suspend_locked(server *s, conn *c) {
    struct http_front *h = s->http;
    c->suspended = true;
    c->s_prev = NULL;
    c->s_next = h->s_head;
    if (h->s_head) h->s_head->s_prev = c;
    h->s_head = c;
    h->n_suspended++;
    MHD_suspend_connection(c->mc);
}

static void unlink_suspended(struct http_front *h, conn *c) {
    c->suspended = false;
    if (c->s_prev)
        c->s_prev->s_next = c->s_next;
    else
        h->s_head = c->s_next;
    if (c->s_next) c->s_next->s_prev = c->s_prev;
    c->s_prev = c->s_next = NULL;
    h->n_suspended--;
}

static void resume_locked(server *s, conn *c) {
    if (!c->suspended) return;
    unlink_suspended(s->http, c);
    MHD_resume_connection(c->mc);
}

void http_request_changed(server *s, request *r) {
    conn *c = r->waiter;
    /* a whole response needs the end; a stream wants every piece */
    if (c && c->suspended && (c->streaming || r->complete)) resume_locked(s, c);
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

static const char *failure_message(const request *r, int f, unsigned *status, const char **type) {
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
        return r->error[0] ? r->error : "generation failed";
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
            const char *type, *msg = failure_message(r, f, &st, &type);
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

/* The content reader of a stream: what is staged, else what is new, else
 * nothing (0) with the connection suspended until the scheduler has more. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    conn *c = cls;
    server *s = c->s;
    (void)pos;
    if (c->stage_off == c->stage_len) {
        c->stage_len = c->stage_off = 0;
        if (c->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&s->mu);
        bool got = stage_new(c);
        if (!got && (c->gone || peer_gone(c->fd))) {
            cancel_locked(s, c->req);
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (!got) suspend_locked(s, c);
        pthread_mutex_unlock(&s->mu);
        if (!got) return 0;
    }
    size_t n = c->stage_len - c->stage_off;
    if (n > max) n = max;
    memcpy(buf, c->stage + c->stage_off, n);
    c->stage_off += n;
    return (ssize_t)n;
}

/* ---- endpoints ---- */

static enum MHD_Result whole_response(conn *c, struct MHD_Connection *mc);

/* A file of the chat page: static bytes in the binary, never cached
 * stale (the page and the server come as one), locked to this origin. */
static enum MHD_Result do_static(conn *c, struct MHD_Connection *mc) {
    const webui_asset *a = c->asset;
    struct MHD_Response *r = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
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
    r->t_arrive = grok_now();
    r->deadline = r->t_arrive + s->cfg.timeout_s;
    if (sched_submit(s, r)) {
        request_free(r);
        return reply_error(c, mc, 503,
                           "the server is busy: every slot and queue place is taken; "
                           "retry later",
                           "server_overloaded", NULL, "overloaded");
    }
    c->req = r;
    pthread_mutex_lock(&s->mu);
    r->waiter = c;
    pthread_mutex_unlock(&s->mu);
    if (r->stream) {
        c->streaming = true;
        c->sent_text = calloc((size_t)r->n, sizeof *c->sent_text);
        c->sent_lps = calloc((size_t)r->n, sizeof *c->sent_lps);
        c->fin_sent = calloc((size_t)r->n, sizeof *c->fin_sent);
        c->sent_routes = calloc((size_t)r->n, sizeof *c->sent_routes);
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
    return whole_response(c, mc);
}

/* A whole (not streamed) answer: once the request is complete, else the
 * connection is suspended and the access handler, called again when it is
 * resumed, comes back here. */
static enum MHD_Result whole_response(conn *c, struct MHD_Connection *mc) {
    server *s = c->s;
    request *r = c->req;
    pthread_mutex_lock(&s->mu);
    if (!r->complete) {
        if (c->gone || peer_gone(c->fd)) {
            cancel_locked(s, r);
            pthread_mutex_unlock(&s->mu);
            return MHD_NO;
        }
        suspend_locked(s, c);
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&s->mu);
    /* complete: the scheduler no longer touches r */
    int f = failure_of(r);
    if (f) {
        unsigned st;
        const char *type, *msg = failure_message(r, f, &st, &type);
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
        char *clean = text ? grok_utf8_sanitize(text, len, NULL) : NULL;
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
        c->mc = mc;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        c->p = ci ? ci->socket_context : NULL;
        c->fd = c->p ? c->p->fd : -1;
        pthread_mutex_lock(&s->mu);
        s->n_conns++;
        bool closing = c->p && c->p->closing;
        if (c->p && c->p->waiting) { /* headers complete: the body's clock starts */
            c->p->in_body = true;
            c->p->deadline = grok_now() + s->http->body_timeout;
        }
        pthread_mutex_unlock(&s->mu);
        *con_cls = c;
        if (closing) return MHD_NO; /* closed by the limits as the headers completed */
        c->asset = asset_of(s, method, url);
        c->route = c->asset ? R_STATIC : route_of(method, url);
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
                if (!grok_buf_add(&c->body, &c->len, &c->cap, upload, *upload_size)) return MHD_NO;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->req && !c->streaming) return whole_response(c, mc); /* resumed */
    if (c->answered) return MHD_YES;
    c->answered = true;
    peer_busy(s, c->p);
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
    pthread_mutex_lock(&s->mu);
    if (c->suspended) unlink_suspended(s->http, c); /* the daemon stopped with it suspended */
    if (c->req) c->req->waiter = NULL;
    if (c->p && !c->p->closing) { /* a kept-alive connection waits for its next request */
        waiting_remove(s->http, c->p);
        waiting_add(s->http, c->p, false, s->http->header_timeout);
    }
    s->n_conns--;
    pthread_mutex_unlock(&s->mu);
    if (c->req) sched_release(s, c->req);
    free(c->body);
    free(c->sent_text);
    free(c->sent_lps);
    free(c->fin_sent);
    free(c->sent_routes);
    free(c->stage);
    free(c);
    *con_cls = NULL;
}

/* ---- the watcher: timeouts, and clients gone while suspended ---- */

#define WATCH_MS 50

static void *watcher_main(void *arg) {
    server *s = arg;
    struct http_front *h = s->http;
    struct pollfd *pfd = NULL;
    conn **pc = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&s->mu);
    while (!h->watch_stop) {
        const double now = grok_now();
        for (peer *p = h->w_head, *next; p; p = next) {
            next = p->next;
            if (p->deadline <= now)
                peer_close(h, p, p->in_body ? &h->m->conns_body_timeout : &h->m->conns_header_timeout);
        }
        /* one poll over every suspended request's socket */
        if ((size_t)h->n_suspended > cap) {
            size_t want = (size_t)h->n_suspended * 2;
            struct pollfd *np = realloc(pfd, want * sizeof *np);
            conn **nc = np ? realloc(pc, want * sizeof *nc) : NULL;
            if (np) pfd = np;
            if (nc) pc = nc, cap = want;
        }
        size_t n = 0;
        for (conn *c = h->s_head; c && n < cap; c = c->s_next)
            if (c->fd >= 0) pfd[n] = (struct pollfd){.fd = c->fd, .events = POLLRDHUP}, pc[n++] = c;
        if (n && poll(pfd, n, 0) > 0)
            for (size_t i = 0; i < n; i++)
                if (pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
                    conn *c = pc[i];
                    c->gone = true;
                    if (c->req) cancel_locked(s, c->req);
                    resume_locked(s, c); /* its callback sees gone and lets libmicrohttpd close it */
                }
        struct timespec ts = grok_realtime_after(WATCH_MS * 1e-3);
        pthread_cond_timedwait(&h->watch_cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    free(pfd);
    free(pc);
    return NULL;
}

/* Raises the soft limit on open files to the hard one (each connection
 * is a descriptor); returns the limit now in force. */
static int64_t raise_fd_limit(int64_t *hard) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return *hard = -1;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = want.rlim_cur;
    }
    *hard = rl.rlim_max == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_max;
    return rl.rlim_cur == RLIM_INFINITY ? (int64_t)1 << 20 : (int64_t)rl.rlim_cur;
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
    pthread_t sched, watcher;
    bool sched_started = false, loaded = false, watching = false;
    struct http_front front = {
        .m = &s->m, .header_timeout = cfg->header_timeout_s, .body_timeout = cfg->body_timeout_s};
    s->http = &front;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->gmu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&front.watch_cv, NULL);

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
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
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
    /* every connection is a descriptor: as many as the system allows, less
     * a reserve for the model's files, the threads' and the listener's */
    int64_t fd_hard, fd_soft = raise_fd_limit(&fd_hard);
    const int64_t reserve = 64 + cfg->http_threads * 4;
    const int64_t conn_limit = fd_soft > 2 * reserve ? fd_soft - reserve : reserve;
    /* waiting connections leave room for those being answered */
    front.max_waiting = cfg->max_waiting < conn_limit / 2 ? cfg->max_waiting : conn_limit / 2;
    if (front.max_waiting < 1) front.max_waiting = 1;
    /* a flood of connects outruns accept(), most under a sanitizer: a full
     * backlog drops the next SYN and a fresh client waits a 1 s retransmit,
     * so ask for as deep a queue as the kernel allows (it caps at somaxconn) */
    d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                         on_connection, s, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)conn_limit,
                         MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->conn_per_addr,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_LISTEN_BACKLOG_SIZE,
                         (unsigned)4096, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "grok serve: cannot listen on %s port %d: %s\n", cfg->host, cfg->port,
                strerror(errno));
        goto done;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : (unsigned)cfg->port;
    fprintf(stderr, "grok serve: listening on http://%s:%u (loading %s)\n", cfg->host, port, cfg->model_path);
    char per_addr[32] = "no limit";
    if (cfg->conn_per_addr > 0) snprintf(per_addr, sizeof per_addr, "%" PRId64, cfg->conn_per_addr);
    char hard[32] = "unlimited";
    if (fd_hard >= 0) snprintf(hard, sizeof hard, "%" PRId64, fd_hard);
    fprintf(stderr,
            "grok serve: connections: %" PRId64 " (open files %" PRId64 ", hard limit %s), %s per address, "
            "%" PRId64 " waiting for a request, header timeout %gs, body timeout %gs, %" PRId64
            " HTTP threads\n",
            conn_limit, fd_soft, hard, per_addr, front.max_waiting, cfg->header_timeout_s,
            cfg->body_timeout_s, cfg->http_threads);
    if (pthread_create(&watcher, NULL, watcher_main, s)) {
        fprintf(stderr, "grok serve: cannot start the connection watcher thread\n");
        goto done;
    }
    watching = true;
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
    s->drain_deadline = grok_now() + cfg->drain_s;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    if (sched_started) pthread_join(sched, NULL);
    if (s->dist && loaded && step_announce_stop(s, err, sizeof err)) {
        fprintf(stderr, "grok serve: %s\n", err);
        rc = 1;
    }
    /* let the answers of finished requests reach their clients before the
     * connections are closed (bounded: a client may never read) */
    for (double until = grok_now() + 5;;) {
        pthread_mutex_lock(&s->mu);
        int64_t n = s->n_conns;
        pthread_mutex_unlock(&s->mu);
        if (n == 0 || grok_now() > until) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&s->mu);
    front.watch_stop = true;
    pthread_cond_signal(&front.watch_cv);
    /* libmicrohttpd must not stop with suspended connections; every request
     * is complete by now, so resumed ones answer and close */
    while (front.s_head) resume_locked(s, front.s_head);
    pthread_mutex_unlock(&s->mu);
    if (watching) pthread_join(watcher, NULL);
    if (d) MHD_stop_daemon(d); /* waits for its threads */
    sched_free(s);
    server_grammar_cache_free(s);
    grok_grammar_vocab_free(s->gvocab);
    grok_threadpool_free(s->pool);
    grok_model_free(s->model);
    grok_chat_template_free(&s->chat);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&front.watch_cv);
    pthread_mutex_destroy(&s->gmu);
    pthread_mutex_destroy(&s->mu);
    if (rc == 0) fprintf(stderr, "grok serve: stopped\n");
    free(s);
    return rc;
}
