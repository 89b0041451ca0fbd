/*
 * fuzz_api.c - the completion and chat request parser of grok serve
 * (api_parse_completion in src/server/api.c) on a real tokenizer, with the
 * built-in chat template. The first input byte picks the endpoint, the
 * rest is the body; as http.c does, bodies that are not UTF-8 are refused
 * before the parser sees them. A refused body must come with a message; an
 * accepted one must give a request inside the server's limits, and the
 * responses built from it (whole, streamed chunks with logprobs, usage)
 * must be JSON that parses back.
 */
#include <cJSON.h>
#include <math.h>

#include "fuzz.h"
#include "server/server.h"
#include "util/utf8.h"
#include "tok_check.h"

static server g_s;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_s.tok = fuzz_load_tokenizer("fuzz_api");
    g_s.n_vocab = grok_tokenizer_n_vocab(g_s.tok);
    /* a Grok-like shape for the grok_routing records (no model is loaded) */
    g_s.hp.n_vocab = g_s.n_vocab, g_s.hp.n_layers = 4, g_s.hp.n_experts = 8, g_s.hp.n_experts_used = 2;
    g_s.cfg.parallel = 4;
    g_s.cfg.n_ctx = 256;
    snprintf(g_s.model_name, sizeof g_s.model_name, "fuzz.gguf");
    char err[GROK_ERR_SIZE];
    if (grok_chat_template_load(&g_s.chat, NULL, err, sizeof err)) exit(1);
    return 0;
}

static void check_json(char *j, const char *what) {
    FUZZ_CHECK(j != NULL, "%s: no JSON", what);
    cJSON *back = cJSON_Parse(j);
    FUZZ_CHECK(back != NULL, "%s is not JSON: %s", what, j);
    cJSON_Delete(back);
    free(j);
}

/* Fills r's choices as the scheduler would: text from the prompt's own
 * tokens (whole characters only, as the scheduler releases them) and
 * logprobs naming those tokens. */
static void fake_output(request *r) {
    size_t n = r->n_prompt < 8 ? r->n_prompt : 8, len = 0;
    char *text = grok_detokenize(g_s.tok, r->prompt, n, &len);
    char *clean = text ? grok_utf8_sanitize(text, len, &len) : NULL;
    free(text);
    for (int i = 0; i < r->n; i++) {
        choice *c = &r->choices[i];
        free(c->text);
        c->text = clean ? malloc(len + 1) : NULL; /* text may hold NUL bytes: copied by length */
        if (c->text) memcpy(c->text, clean, len + 1);
        c->text_len = c->text ? len : 0;
        c->n_gen = (int64_t)n;
        c->finish = i % 2 ? FINISH_LENGTH : FINISH_STOP;
        if (r->logprobs >= 0) {
            c->lps = calloc(n ? n : 1, sizeof *c->lps);
            c->n_lps = c->lps ? n : 0;
            for (size_t k = 0; k < c->n_lps; k++) {
                token_logprob *lp = &c->lps[k];
                lp->token = r->prompt[k];
                lp->none = k == 0 && r->prompt_lps;
                lp->logprob = k % 3 ? -0.5f * (float)k : -INFINITY;
                lp->text_off = k;
                lp->n_top = r->logprobs;
                for (int32_t j = 0; j < lp->n_top; j++)
                    lp->top_id[j] = r->prompt[(k + (size_t)j) % r->n_prompt], lp->top_lp[j] = -(float)j;
            }
        }
    }
    free(clean);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int kind = data[0] & 1 ? KIND_CHAT : KIND_COMPLETION;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (!grok_utf8_valid(body, len)) return 0;
    char err[GROK_ERR_SIZE] = "";
    const char *param = NULL;
    request *r = api_parse_completion(&g_s, body, len, kind, err, sizeof err, &param);
    if (!r) {
        fuzz_note("refused", err);
        FUZZ_CHECK(err[0], "refused without a message");
        check_json(api_error_json(err, "invalid_request_error", param, NULL), "the error object");
        return 0;
    }
    FUZZ_CHECK(r->n >= 1 && r->n <= g_s.cfg.parallel, "n %d", r->n);
    FUZZ_CHECK(r->n_prompt >= 1 && (int64_t)r->n_prompt < g_s.cfg.n_ctx, "prompt of %zu tokens", r->n_prompt);
    FUZZ_CHECK(r->max_tokens >= 0 && r->max_tokens + (int64_t)r->n_prompt <= g_s.cfg.n_ctx, "max_tokens %lld",
               (long long)r->max_tokens);
    FUZZ_CHECK(r->n_stops < MAX_STOPS, "%zu stops", r->n_stops);
    FUZZ_CHECK(r->logprobs >= -1 && r->logprobs <= MAX_TOP_LOGPROBS, "logprobs %d", r->logprobs);
    for (size_t i = 0; i < r->n_prompt; i++)
        FUZZ_CHECK(r->prompt[i] >= 0 && r->prompt[i] < g_s.n_vocab, "prompt id %d", r->prompt[i]);
    snprintf(r->id, sizeof r->id, "cmpl-fuzz");
    fake_output(r);
    check_json(api_whole_response(&g_s, r), "the whole response");
    for (int i = 0; i < r->n; i++) {
        const choice *c = &r->choices[i];
        check_json(api_stream_chunk(&g_s, r, i, c->text ? c->text : "", c->text_len, 0, c->n_lps, c->finish,
                                    i == 0, NULL),
                   "a stream chunk");
    }
    check_json(api_usage_chunk(&g_s, r), "the usage chunk");
    if (r->think) { /* a think stream: progress, then the chosen answer */
        r->complete = true;
        char *ev = think_stream_events(&g_s, r);
        FUZZ_CHECK(ev != NULL, "a complete think request streamed nothing");
        for (char *at = ev; *at;) {
            FUZZ_CHECK(!strncmp(at, "data: ", 6), "a think event is not 'data: ...': %s", at);
            char *end = strstr(at, "\n\n");
            FUZZ_CHECK(end != NULL, "a think event does not end in a blank line: %s", at);
            check_json(strndup(at + 6, (size_t)(end - at - 6)), "a think event");
            at = end + 2;
        }
        free(ev);
    }
    request_free(r);
    return 0;
}
