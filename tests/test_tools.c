/*
 * test_tools.c - the server's tool-call pieces without a model: the grammar
 * tools_parse_request makes for each tool_choice (auto, required, a named
 * function, parallel_tool_calls false) against texts it must accept and
 * reject, and the reader that turns generated text into content and
 * tool_calls (tool_parse_feed), fed in every chunk size, with the streamed
 * deltas adding up to the whole calls. A random model never writes a call
 * under "auto", so the end-to-end tests cannot reach these paths.
 */
#include <string.h>

#include "check.h"
#include "server/server.h"

static server *srv;

/* The grammar of a chat request with these tools and extra fields (NULL
 * when the request is refused, with the error in err). */
static grok_grammar *tools_grammar(const char *extra, char *err, size_t err_size) {
    char body[2048];
    snprintf(
        body, sizeof body,
        "{\"messages\":[],\"tools\":["
        "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":10},\"unit\":{\"enum\":[\"C\",\"F\"]}},"
        "\"required\":[\"city\",\"unit\"],\"additionalProperties\":false}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}]%s}",
        extra);
    cJSON *root = cJSON_Parse(body);
    request r;
    memset(&r, 0, sizeof r);
    r.kind = KIND_CHAT;
    char *tools_text = NULL;
    const char *param = NULL;
    int rc = tools_parse_request(srv, root, &r, &tools_text, err, err_size, &param);
    cJSON_Delete(root);
    if (rc != 0) return NULL;
    CHECK(r.parse_tools && tools_text && strstr(tools_text, "\"name\":\"get_weather\""), "%s: tools text %s",
          extra, tools_text ? tools_text : "(none)");
    free(tools_text);
    return r.grammar;
}

#define CALL_W(city)                                                           \
    "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"" city \
    "\", \"unit\": \"C\"}}</tool_call>"
#define CALL_T "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>"

static void expect(grok_grammar *g, const char *mode, const char *text, bool want) {
    size_t at = 0;
    bool got = grok_grammar_accepts(g, text, strlen(text), &at);
    CHECK(got == want, "%s: '%s' %s (stops at %zu)", mode, text, want ? "must match" : "must not match", at);
}

static void test_grammars(void) {
    char err[512];
    grok_grammar *g = tools_grammar("", err, sizeof err); /* tool_choice absent: auto */
    CHECK(g, "auto: %s", err);
    if (g) {
        const char *yes[] = {"",
                             "Hello there",
                             "a <tool_c b",
                             "<tool_call",
                             "x <<tool_cal>",
                             "tool_call>",
                             CALL_T,
                             "Sure. " CALL_W("Oslo"),
                             "<tool_c" CALL_W("Oslo"),
                             CALL_W("Oslo") "\n" CALL_T,
                             "one\ntwo\n" CALL_T "\n" CALL_W("Rome")};
        const char *no[] = {"a <tool_call> b",
                            "<tool_call>",
                            CALL_T " and more text",
                            CALL_W("Oslo") CALL_T,
                            "<tool_call>{\"name\": \"nope\", \"arguments\": {}}</tool_call>",
                            "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": 5, \"unit\": "
                            "\"C\"}}</tool_call>",
                            CALL_W("Springfield"), /* 11 characters, maxLength 10 */
                            "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}",
                            "x <tool_call>{\"name\""};
        for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) expect(g, "auto", yes[i], true);
        for (size_t i = 0; i < sizeof no / sizeof *no; i++) expect(g, "auto", no[i], false);
        grok_grammar_free(g);
    }
    g = tools_grammar(",\"tool_choice\":\"required\"", err, sizeof err);
    CHECK(g, "required: %s", err);
    if (g) {
        expect(g, "required", CALL_T, true);
        expect(g, "required", CALL_W("Oslo") "\n" CALL_T, true);
        expect(g, "required", "", false);
        expect(g, "required", "Hello", false);
        expect(g, "required", "Hi " CALL_T, false);
        grok_grammar_free(g);
    }
    g = tools_grammar(",\"tool_choice\":\"required\",\"parallel_tool_calls\":false", err, sizeof err);
    CHECK(g, "required, one call: %s", err);
    if (g) {
        expect(g, "one call", CALL_T, true);
        expect(g, "one call", CALL_W("Oslo") "\n" CALL_T, false);
        grok_grammar_free(g);
    }
    g = tools_grammar(",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}", err,
                      sizeof err);
    CHECK(g, "named: %s", err);
    if (g) {
        expect(g, "named", CALL_T, true);
        expect(g, "named", CALL_W("Oslo"), false);
        expect(g, "named", CALL_T "\n" CALL_T, false); /* a named function is called once */
        grok_grammar_free(g);
    }
    /* none: no grammar and nothing parsed */
    cJSON *root = cJSON_Parse(
        "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"none\"}");
    request r;
    memset(&r, 0, sizeof r);
    r.kind = KIND_CHAT;
    char *tt = NULL;
    const char *param = NULL;
    CHECK(tools_parse_request(srv, root, &r, &tt, err, sizeof err, &param) == 0 && !r.grammar &&
              !r.parse_tools && !tt,
          "none: no grammar, no tools text (%s)", err);
    cJSON_Delete(root);
}

/* Feeds text to a fresh reader in chunks of k bytes (0: whole), taking the
 * streamed deltas after each chunk as the server does, and checks the
 * content, the calls and that the deltas add up to them. */
static void read_calls(const char *text, size_t k, const char *want_content, size_t n_want,
                       const char **want_names, const char **want_args) {
    request r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "chatcmpl-0123abcd");
    choice c;
    memset(&c, 0, sizeof c);
    tool_parse *tp = tool_parse_new(&r, 0);
    size_t n = strlen(text), step = k ? k : n;
    char names[4][64] = {{0}}, args[4][512] = {{0}}, ids[4][48] = {{0}};
    bool ok = true;
    for (size_t i = 0; i <= n; i += step) {
        size_t len = i + step <= n ? step : n - i;
        ok = ok && tool_parse_feed(tp, &c, text + i, len);
        if (i + step > n) ok = ok && tool_parse_finish(tp, &c);
        cJSON *d = tools_calls_delta(tp);
        for (const cJSON *e = d ? d->child : NULL; e; e = e->next) {
            int idx = cJSON_GetObjectItem(e, "index")->valueint;
            const cJSON *id = cJSON_GetObjectItem(e, "id"), *fn = cJSON_GetObjectItem(e, "function");
            const cJSON *nm = cJSON_GetObjectItem(fn, "name"), *a = cJSON_GetObjectItem(fn, "arguments");
            CHECK(idx >= 0 && idx < 4, "delta index %d", idx);
            if (idx < 0 || idx >= 4) continue;
            if (id) {
                CHECK(!ids[idx][0] && nm, "chunks of %zu: call %d announced twice or without its name", k,
                      idx);
                snprintf(ids[idx], sizeof ids[idx], "%s", id->valuestring);
                snprintf(names[idx], sizeof names[idx], "%s", nm ? nm->valuestring : "");
            } else {
                CHECK(ids[idx][0] && !nm, "chunks of %zu: call %d: arguments before its id and name", k, idx);
            }
            if (a) strncat(args[idx], a->valuestring, sizeof args[idx] - strlen(args[idx]) - 1);
        }
        cJSON_Delete(d);
        if (i + step > n) break;
    }
    CHECK(ok, "chunks of %zu: out of memory", k);
    CHECK(c.text_len == strlen(want_content) && (!c.text_len || !memcmp(c.text, want_content, c.text_len)),
          "chunks of %zu: content '%.*s', want '%s'", k, (int)c.text_len, c.text ? c.text : "", want_content);
    CHECK(tp->n_calls == n_want, "chunks of %zu: %zu calls, want %zu", k, tp->n_calls, n_want);
    for (size_t i = 0; i < n_want && i < tp->n_calls && i < 4; i++) {
        const tool_call *call = &tp->calls[i];
        CHECK(!strcmp(call->name, want_names[i]) && call->complete,
              "chunks of %zu: call %zu is %s (complete %d)", k, i, call->name, call->complete);
        CHECK(call->args_len == strlen(want_args[i]) && !memcmp(call->args, want_args[i], call->args_len),
              "chunks of %zu: call %zu's arguments '%.*s', want '%s'", k, i, (int)call->args_len, call->args,
              want_args[i]);
        CHECK(!strcmp(names[i], want_names[i]) && !strcmp(args[i], want_args[i]) &&
                  !strcmp(ids[i], call->id) && !strncmp(call->id, "call_", 5),
              "chunks of %zu: call %zu's deltas give %s %s (%s)", k, i, names[i], args[i], ids[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(tp->calls[j].id, call->id), "calls %zu and %zu share an id", j, i);
    }
    tool_parse_free(tp);
    free(c.text);
}

static void test_reader(void) {
    /* text with a false start of the tag, then two calls whose arguments hold
     * braces, quotes and the closing tag inside strings */
    const char *text = "Sure <tool_c, then: <<tool_call>{\"name\": \"get_weather\", \"arguments\": "
                       "{\"city\": \"O}s\\\"lo</tool_call>\", \"n\": [1, {\"a\": 2}]}}</tool_call>\n"
                       "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>";
    const char *names[] = {"get_weather", "get_time"};
    const char *args[] = {"{\"city\": \"O}s\\\"lo</tool_call>\", \"n\": [1, {\"a\": 2}]}", "{}"};
    for (size_t k = 0; k <= strlen(text); k++) read_calls(text, k, "Sure <tool_c, then: <", 2, names, args);
    /* not the call form: all of it is content */
    const char *odd = "a <tool_call>{\"nom\": 1} b <tool_";
    for (size_t k = 0; k <= strlen(odd); k++) read_calls(odd, k, odd, 0, NULL, NULL);
    read_calls("plain text, no calls", 3, "plain text, no calls", 0, NULL, NULL);
}

int main(void) {
    srv = calloc(1, sizeof *srv);
    pthread_mutex_init(&srv->gmu, NULL);
    srv->chat.tools = strdup("Tools:\n{tools}\n");
    test_grammars();
    test_reader();
    server_grammar_cache_free(srv);
    pthread_mutex_destroy(&srv->gmu);
    free(srv->chat.tools);
    free(srv);
    return check_summary("test_tools");
}
