/*
 * server.h - the pieces of `grok serve` and how they meet. The server is
 * three layers around one shared state (struct server):
 *
 *   http.c     libmicrohttpd front: routing, body limits, the API key,
 *              whole and streamed (server-sent events) responses, the
 *              limits on hostile connections. Event-driven (a few epoll
 *              threads); a request waiting for tokens is suspended and
 *              resumed by http_request_changed.
 *   sched.c    the scheduler thread that owns the model: continuous
 *              batching of up to --parallel slots per forward step
 *              (grok_decode_multi), chunked prefill, prefix reuse, sampling,
 *              stop strings, cancellation and timeouts.
 *   api.c      the OpenAI request schema (JSON -> struct request, with a
 *              400 message naming the field on any bad value) and the
 *              response objects (request -> JSON).
 *   tools.c    structured output: grammar, json_schema, response_format
 *              and tools as grammars; tool calls in the prompt and parsed
 *              out of the generated text.
 *   (the chat template that turns messages into a prompt, tool turns
 *   included, is libgrok's, src/chat/chat.c, shared with grok train
 *   --data-format chat)
 *   metrics.c  Prometheus counters, gauges and histograms.
 *   follow.c   under mpirun: rank 0 announces every forward step, the
 *              other ranks (which run no HTTP) replay it on their share.
 *
 * Locking: one mutex (server.mu) guards the queue, slot assignment, every
 * field marked "shared" below and the metrics. The scheduler runs the
 * forward pass and the sampler without it; HTTP threads only read shared
 * fields under it and format JSON outside it.
 */
#ifndef GROK_SERVER_H
#define GROK_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "chat/chat.h"
#include "grok.h"
#include "server/think.h"
#include "util/clock.h"

/* ---- configuration (from grok serve's flags) ---- */
typedef struct {
    const char *model_path;
    const char *model_name; /* "model" in responses; default: file name */
    const char *host;       /* bind address, 127.0.0.1 */
    int port;               /* 8080; 0 = any free port (printed) */
    int64_t parallel;       /* slots decoded together */
    int64_t queue;          /* requests waiting for a slot before 503 */
    int64_t n_ctx;          /* KV cache length of each slot */
    int64_t threads;        /* worker threads (<= 0: all cores) */
    int64_t batch;          /* tokens per forward step */
    int64_t chunk;          /* prompt tokens per slot per step */
    double timeout_s;       /* per request, from arrival */
    double drain_s;         /* after SIGTERM, in-flight work may run this long */
    size_t max_body;        /* bytes of a request body */
    grok_type kv_type;
    const char *api_key;       /* NULL: no authentication */
    const char *chat_template; /* file, or NULL for the built-in one */
    const char *lora;          /* LoRA adapter applied at load (not merged), or NULL */
    float lora_scale;          /* its strength */
    const char *port_file;     /* write the bound port here once listening */
    /* hostile connections (http.c) */
    int64_t http_threads;        /* libmicrohttpd's event-loop threads */
    int64_t conn_per_addr;       /* connections from one client address (0: no limit) */
    int64_t max_waiting;         /* connections without a complete request */
    double header_timeout_s;     /* from waiting for a request to its last header */
    double body_timeout_s;       /* from the last header to the last byte of the body */
    const char *verifier_path;   /* --verifier MODEL: scores think samples (NULL: none) */
    const char *verifier_suffix; /* appended after a candidate ("\nV:"-style; "" by default) */
    const char *verifier_yes;    /* the judgement it scores (NULL: the candidate's likelihood) */
    bool no_webui;               /* --no-webui: no chat page at / */
} server_config;

/* The chat page's files, compiled in from src/server/webui/ by
 * cmake/embed_webui.cmake (the generated webui_assets.c). */
typedef struct {
    const char *path; /* "/index.html", ... */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} webui_asset;
extern const webui_asset webui_assets[];
extern const size_t webui_n_assets;

/* Loads the model, serves until SIGTERM or SIGINT, drains and returns the
 * process status (0 after a clean shutdown). */
int server_run(const server_config *cfg);

/* ---- requests ---- */
#define MAX_STOPS 16
#define MAX_TOP_LOGPROBS 20
#define MAX_N 16
/* Prompt tokens a slot computing prompt logprobs reads per step (bounds
 * its buffer of logits: 16 x 131072 x 4 bytes = 8 MiB for Grok-1). */
#define PROMPT_LP_CHUNK 16

enum { KIND_COMPLETION, KIND_CHAT };
enum { FINISH_NONE, FINISH_STOP, FINISH_LENGTH, FINISH_CANCEL, FINISH_TIMEOUT, FINISH_ERROR };

/* One call parsed out of a choice's text (shared, under mu). */
typedef struct {
    char id[40];
    char *name;
    char *args; /* the arguments' JSON text as far as generated */
    size_t args_len, args_cap;
    bool complete;    /* its closing tag was read */
    size_t args_sent; /* HTTP side: bytes of args streamed so far */
    bool announced;   /* HTTP side: its first delta (id, name) was sent */
} tool_call;

/* Turns released text into content and calls as it arrives. */
typedef struct {
    int state;
    char pend[64]; /* text that may be the start of a tag, held back */
    size_t n_pend;
    int depth; /* JSON nesting inside the arguments */
    bool in_str, esc;
    tool_call *calls;
    size_t n_calls, cap_calls;
    char id_base[24];
} tool_parse;

typedef struct {
    int32_t token;
    bool none; /* the first prompt token: no logprob (null) */
    float logprob;
    size_t text_off; /* where the token's text starts in the choice's text */
    int32_t n_top;
    int32_t top_id[MAX_TOP_LOGPROBS];
    float top_lp[MAX_TOP_LOGPROBS];
} token_logprob;

struct slot;

/* "grok_routing": the router's record of a choice's generated tokens. A
 * token is routed when it is fed back to the model, one step after it was
 * sampled, so the record trails the text by a token (and the last token of
 * an answer, never fed back, has none). The hook (sched.c) stages one
 * token's layers during a step; they are published under mu after it. */
typedef struct {
    int64_t L, E, K;
    int64_t base; /* the prompt's length: position base + g is generated token g */
    bool probs;   /* also every expert's probability */
    size_t *off;  /* [max_tokens] scheduler-owned: where token g's text starts */
    /* staged by the hook (scheduler thread) */
    int64_t st_index;    /* generated token staged, -1: none */
    int64_t st_layers;   /* of its layers seen (a pipeline rank sees only its own) */
    int32_t *st_experts; /* [L][K] */
    float *st_gates;     /* [L][K] */
    float *st_probs;     /* [L][E] when probs */
    /* shared: n tokens published */
    size_t n, cap;
    int64_t *index;   /* [n] generated token index */
    int32_t *ids;     /* [n] */
    size_t *offs;     /* [n] text offsets */
    int32_t *experts; /* [n][L][K] */
    float *gates;     /* [n][L][K] */
    float *pr;        /* [n][L][E] when probs */
} choice_routing;

choice_routing *routing_create(const grok_hparams *hp, int64_t base, int64_t max_tokens, bool probs);
void routing_free(choice_routing *rt);

/* One of a request's n independent choices; it occupies one slot. */
typedef struct choice {
    int index;
    /* scheduler-owned while assigned */
    grok_sampler *sampler;
    int32_t *seq; /* prompt then generated tokens */
    size_t n_seq, seq_cap;
    int64_t n_gen; /* tokens sampled (EOS included) */
    grok_detok_stream ds;
    char *hold; /* decoded text not yet released (stop hold-back) */
    size_t hold_len, hold_cap;
    struct slot *slot;
    /* another choice of the request whose cache will hold the prompt: this
     * one waits for it and copies the prompt's KV instead of computing it
     * (NULL: computes its own) */
    struct choice *share;
    double lp_sum; /* think: the model's log-probabilities of the sampled tokens */
    /* prompt logprobs (echo + logprobs): every prompt position's logits of
     * a step, the entries they give before they join lps, and the prompt's
     * text decoded so far (for text_offset) */
    float *plogits;        /* [PROMPT_LP_CHUNK][n_vocab] */
    token_logprob *pstage; /* [PROMPT_LP_CHUNK] */
    size_t n_pstage;
    grok_detok_stream pds;
    size_t ptext_off;
    /* shared */
    char *text; /* released text (echoed prompt first) */
    size_t text_len, text_cap;
    token_logprob *lps; /* one per generated token when logprobs are asked (with echo
                                * on completions, one per prompt token first) */
    size_t n_lps, lps_cap;
    int finish; /* FINISH_* */
    bool assigned;
    /* structured output: the grammar's state and its mask (scheduler-owned),
     * the calls parsed out of the text (shared; NULL without tools) */
    grok_matcher *matcher;
    uint64_t *mask;
    tool_parse *tools;
    int64_t n_gen_shown; /* n_gen as of the last step (shared: for progress events) */
    choice_routing *rt;  /* "grok_routing" asked: its record; else NULL */
} choice;

/* A think request (think.h): its samples are the request's choices, drawn
 * together, and the response carries the one chosen (think_api.c). */
typedef struct {
    int samples;
    think_select select;
    think_extractor ex;
    bool candidates;   /* return every sample with its answer and scores */
    char effort[16];   /* reasoning_effort as given ("" for none) */
    char *prompt_text; /* the prompt as text: what the verifier reads first */
    double *scores;    /* [samples] the verifier's (NAN: not scored); scheduler, then read-only */
    /* HTTP side (one connection reads a request): what was streamed */
    bool sent_role;
    int sent_finished;
    int64_t sent_tokens;
} think_req;

typedef struct request {
    /* parameters (immutable once queued) */
    int kind;
    char id[48];
    int64_t created;
    grok_sampler_params sp;
    int64_t max_tokens;
    char *stops[MAX_STOPS];
    size_t n_stops;
    int n;
    int logprobs; /* -1: none; else top alternatives per token */
    bool echo, stream, include_usage;
    bool prompt_lps;             /* completions with echo and logprobs: the prompt's too */
    bool routing, routing_probs; /* "grok_routing": true or {"probs": true} */
    int32_t *prompt;
    size_t n_prompt;
    char *prompt_text;     /* for echo (completions) */
    think_req *think;      /* NULL: an ordinary request */
    grok_grammar *grammar; /* constrains every choice (NULL: none); a reference held */
    bool parse_tools;      /* read tool calls out of the text */
    /* shared */
    choice *choices;
    int n_assigned, n_done;
    bool cancelled; /* the client went away */
    bool complete;  /* every choice finished; the scheduler let go */
    int refs;       /* HTTP side + scheduler side */
    double t_arrive, t_first, deadline;
    char error[GROK_ERR_SIZE];  /* shared: why a choice finished with FINISH_ERROR ("" unknown) */
    void *waiter;               /* the HTTP connection waiting for it (http.c), or NULL */
    struct request *next;       /* queue link */
    struct request *judge_next; /* waiting for the verifier (scheduler) */
} request;

/* Parsed request or a 400: returns NULL with err (and *param naming the
 * field) on bad input. body must be valid UTF-8 (checked by the caller). */
struct server;
request *api_parse_completion(struct server *s, const char *body, size_t len, int kind, char *err,
                              size_t err_size, const char **param);
void request_free(request *r);
/* JSON texts (malloc'd) for responses. */
char *api_error_json(const char *message, const char *type, const char *param, const char *code);
char *api_whole_response(struct server *s, const request *r);
/* One streamed chunk for choice ci: delta text, new logprobs [lp0, lp1),
 * finish reason (FINISH_NONE for none), first (chat: announce the role),
 * new tool-call deltas (taken; NULL for none). */
char *api_stream_chunk(struct server *s, const request *r, int ci, const char *text, size_t len, size_t lp0,
                       size_t lp1, int finish, bool first, cJSON *tool_delta);
/* The same with the routing of the choice's published tokens [rt0, rt1). */
char *api_stream_chunk_routed(struct server *s, const request *r, int ci, const char *text, size_t len,
                              size_t lp0, size_t lp1, size_t rt0, size_t rt1, int finish, bool first,
                              cJSON *tool_delta);
char *api_usage_chunk(struct server *s, const request *r);
/* Pieces of the responses for think_api.c: the common head, one whole
 * choice (ci) under another index, its logprobs and grok_routing entries
 * [a, b), the usage object, the finish reason (c: its choice, whose tool
 * calls make a stop "tool_calls"; may be NULL). */
struct cJSON;
struct cJSON *api_head_json(struct server *s, const request *r, const char *object);
struct cJSON *api_choice_json(struct server *s, const request *r, int ci, int index);
struct cJSON *api_logprobs_json(struct server *s, const request *r, int ci, size_t lp0, size_t lp1);
struct cJSON *api_routing_json(struct server *s, const request *r, int ci, size_t a, size_t b);
void api_add_usage(struct cJSON *root, const request *r);
void api_add_finish(struct cJSON *o, int finish, const choice *c);

/* ---- think requests (think_api.c) ---- */
/* Reads reasoning_effort and the think object of a request body (root, a
 * cJSON object) into r->think, and makes r->n its number of samples.
 * prompt_text is the prompt as text (NULL: detokenized). 0 = no think
 * (r->think stays NULL), 1 = think, -1 = a 400 with err and *param. */
int think_parse(struct server *s, const struct cJSON *root, request *r, const char *prompt_text, char *err,
                size_t err_size, const char **param);
void think_req_free(think_req *t);
/* The whole response of a completed think request. */
char *think_whole_response(struct server *s, const request *r);
/* Streaming (mu held): the events ("data: ...\n\n" each) for what is new
 * in a think request: the role (chat), the samples' progress and, once
 * complete without failure, the chosen answer. NULL when nothing is new. */
char *think_stream_events(struct server *s, request *r);
/* Scheduler: whether the completed r waits for the verifier (then it is
 * queued on s->judge_head instead of completing). */
bool think_needs_verifier(struct server *s, const request *r);
/* Scheduler, mu NOT held: the verifier's scores of r's samples. */
void think_run_verifier(struct server *s, request *r);
int64_t request_completion_tokens(const request *r);
/* Text of one token for logprobs (valid UTF-8; byte pieces as <0xNN>). */
void api_token_text(struct server *s, int32_t id, char *out, size_t cap);
/* The same from a tokenizer (grok trace's labels use it too). */
void token_display_text(const grok_tokenizer *tok, int32_t id, char *out, size_t cap);

/* ---- structured output (tools.c) ---- */
/* Reads grammar, json_schema, response_format, tools, tool_choice and
 * parallel_tool_calls from a request body into r (r->grammar,
 * r->parse_tools) and, for chat, writes the tools' system text into
 * *tools_text (malloc'd, NULL when there is none). 0, or -1 with err and
 * *param naming the field. */
int tools_parse_request(struct server *s, const cJSON *root, request *r, char **tools_text, char *err,
                        size_t err_size, const char **param);
/* The choice's parser (NULL when out of memory), feeding it released text,
 * and the end of the text. */
tool_parse *tool_parse_new(const request *r, int choice_index);
bool tool_parse_feed(tool_parse *tp, choice *c, const char *t, size_t n);
bool tool_parse_finish(tool_parse *tp, choice *c);
void tool_parse_free(tool_parse *tp);
/* The calls as OpenAI's message.tool_calls array (whole), or the streamed
 * tool_calls delta for what is new since the last one (NULL: nothing). */
cJSON *tools_calls_json(const tool_parse *tp);
cJSON *tools_calls_delta(tool_parse *tp);
/* A compiled grammar for GBNF text, from the server's cache (a reference
 * the caller owns), or NULL with err. */
grok_grammar *server_grammar(struct server *s, const char *gbnf, size_t len, char *err, size_t err_size);
void server_grammar_cache_free(struct server *s);

/* ---- metrics (metrics.c) ---- */
#define HIST_BUCKETS 12
typedef struct {
    double sum;
    uint64_t count;
    uint64_t buckets[HIST_BUCKETS];
} histogram;

enum {
    OUT_OK,
    OUT_STOPPED_EARLY,
    OUT_REJECTED,
    OUT_BAD_REQUEST,
    OUT_UNAUTHORIZED,
    OUT_CANCELLED,
    OUT_TIMEOUT,
    OUT_ERROR,
    OUT_COUNT
};

typedef struct {
    uint64_t requests[OUT_COUNT];
    uint64_t prompt_tokens, completion_tokens, prompt_tokens_reused;
    uint64_t prompt_tokens_shared; /* copied from another sample's cache (grok_seq_copy) */
    uint64_t steps, step_tokens;
    uint64_t weight_bytes, expert_reads;    /* read by the steps (grok_runner_last_step) */
    double forward_seconds, sample_seconds; /* scheduler time in grok_decode_multi / sampling */
    uint64_t masks;                         /* grammar masks computed */
    double mask_seconds;                    /* their time (part of sample_seconds, summed over slots) */
    histogram latency, ttft;
    /* connections (http.c): open and waiting for a request now; closed by
     * the header and body timeouts, and the longest waiting closed to make
     * room under --max-waiting */
    int64_t conns_open, conns_waiting;
    uint64_t conns_header_timeout, conns_body_timeout, conns_evicted;
} metrics;

void metrics_observe(histogram *h, double v);
char *metrics_text(struct server *s, size_t *len);

/* ---- slots and the server ---- */
typedef struct slot {
    grok_seq *seq; /* its KV cache */
    choice *ch;    /* NULL: free */
    request *req;
    uint64_t last_used; /* for picking among equal prefixes */
} slot;

#define GRAMMAR_CACHE 16 /* compiled grammars kept for requests that repeat them */
typedef struct {
    char *text;
    grok_grammar *g;
    uint64_t used;
} cached_grammar;

typedef struct server {
    server_config cfg;
    grok_model *model;
    const grok_tokenizer *tok;
    grok_grammar_vocab *gvocab; /* the vocabulary as grammars see it */
    pthread_mutex_t gmu;        /* guards gcache */
    cached_grammar gcache[GRAMMAR_CACHE];
    uint64_t gclock;
    grok_threadpool *pool;
    grok_runner *runner;      /* runs every step, whichever slots are in it */
    think_verifier *verifier; /* --verifier (rank 0 only), run by the scheduler thread */
    request *judge_head;      /* complete requests waiting for the verifier */
    grok_chat_template chat;
    int64_t n_vocab;
    grok_hparams hp; /* the model's, copied at start: what the request parser needs of the
                      * model, so that it (and tests/fuzz) runs without one */
    char model_name[256];

    pthread_mutex_t mu;
    pthread_cond_t work; /* wakes the scheduler */
    slot *slots;
    int64_t n_slots;
    request *q_head, *q_tail; /* waiting for slots */
    int64_t q_len;            /* requests in the queue */
    int64_t q_choices;        /* choices in the queue not yet assigned */
    int64_t busy;             /* slots with a choice */
    bool dist;                /* one of several MPI ranks: steps are announced */
    bool ready;               /* model loaded */
    bool stopping;            /* SIGTERM: take no new work */
    double drain_deadline;    /* cancel in-flight work after this */
    bool sched_exit;
    int64_t n_conns;         /* requests the HTTP side is handling */
    struct http_front *http; /* the HTTP front's connection state (http.c) */
    uint64_t use_clock;
    uint64_t id_counter;
    metrics m;
} server;

/* http.c: called by the scheduler, with mu held, whenever r's shared
 * output changes (text, logprobs, a choice or the request finished); wakes
 * the connection waiting for it. */
void http_request_changed(server *s, request *r);

/* sched.c */
/* Loads the model, attaches this rank's share, starts the thread pool and
 * creates the slots; every rank does it and they agree (collectively) on
 * the outcome. */
int server_load(server *s, char *err, size_t err_size);
int sched_init(server *s, char *err, size_t err_size);
void sched_free(server *s);
void *sched_main(void *arg);
/* Queues r (refs becomes 2) or refuses it: returns 0, or -1 when the queue
 * is full or the server is stopping. */
int sched_submit(server *s, request *r);
/* The HTTP side lets go of r (marking it cancelled if unfinished). */
void sched_release(server *s, request *r);

/* follow.c */
/* Rank 0, before a step: tells the other ranks which slots decode which
 * tokens from which cache position, and which sequences want every
 * position's logits (alls[i] != NULL; alls may be NULL). */
int step_announce(server *s, grok_seq *const *seqs, const int32_t *const *toks, const int64_t *ns,
                  float *const *alls, int64_t n_seqs, char *err, size_t err_size);
/* Rank 0: tells the other ranks that slot dst now holds slot src's first
 * n cached tokens (grok_seq_copy), before the step that relies on it. */
int step_announce_copy(server *s, int64_t dst, int64_t src, int64_t n, char *err, size_t err_size);
/* Rank 0, once the scheduler has stopped: the other ranks may exit. */
int step_announce_stop(server *s, char *err, size_t err_size);
/* Every other rank: the same model and slots as rank 0, replaying its
 * steps until it stops. Returns the process status. */
int server_follow(const server_config *cfg);

#endif
