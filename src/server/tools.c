/*
 * tools.c - structured output and tool calls in `grok serve`.
 *
 * Requests constrain their output with one of: `grammar` (GBNF text, as
 * llama.cpp's server takes it), `json_schema` (a schema, llama.cpp's
 * shorthand), `response_format` {"type":"json_object"} or
 * {"type":"json_schema","json_schema":{"schema":...}} (OpenAI's), each made
 * into a grammar (compiled grammars are cached by their text, so a repeated
 * schema reuses its token-mask caches).
 *
 * Tools: the prompt gets a system turn listing the functions (the chat
 * template's "tools" text), and the model calls one by writing
 *
 *   <tool_call>{"name": "NAME", "arguments": {...}}</tool_call>
 *
 * one call per line (the Hermes-style format several open models use and
 * llama.cpp's and vLLM's parsers read). What the grammar allows depends on
 * tool_choice: "required" or a named function: only calls (of that
 * function), their arguments following each function's parameters schema;
 * "auto": any text that does not contain "<tool_call>", optionally followed
 * by calls, one grammar from the first token (llama.cpp's server instead
 * waits for a trigger word before it constrains, vLLM does not constrain
 * at all and parses afterwards; here a call, once begun, is always
 * well-formed and the mask is exact throughout); "none": no tools in the
 * prompt, no grammar, nothing parsed. parallel_tool_calls false allows one
 * call.
 *
 * The generated text is read back as it is released: text before the
 * first call is the message's content, each call becomes an entry of
 * tool_calls (id, name, arguments as the JSON text the model wrote), and
 * streamed answers carry OpenAI's tool-call deltas (index, id and name
 * first, then the arguments in pieces).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "util/buf.h"

enum { TP_TEXT, TP_HEAD, TP_ARGS, TP_TAIL, TP_AFTER };

/* ---- the grammar cache ---- */

grok_grammar *server_grammar(server *s, const char *gbnf, size_t len, char *err, size_t err_size) {
    pthread_mutex_lock(&s->gmu);
    cached_grammar *hit = NULL, *lru = &s->gcache[0];
    for (int i = 0; i < GRAMMAR_CACHE; i++) {
        cached_grammar *e = &s->gcache[i];
        if (e->text && strlen(e->text) == len && !memcmp(e->text, gbnf, len)) hit = e;
        if (!e->text || (lru->text && e->used < lru->used)) lru = e;
    }
    if (hit) {
        hit->used = ++s->gclock;
        grok_grammar *g = grok_grammar_retain(hit->g);
        pthread_mutex_unlock(&s->gmu);
        return g;
    }
    pthread_mutex_unlock(&s->gmu);
    /* parse outside the lock: a large grammar takes a while */
    grok_grammar *g = grok_grammar_parse(gbnf, len, NULL, s->gvocab, err, err_size);
    if (!g) return NULL;
    char *copy = malloc(len + 1);
    if (!copy) return g; /* works, just not cached */
    memcpy(copy, gbnf, len);
    copy[len] = '\0';
    pthread_mutex_lock(&s->gmu);
    free(lru->text);
    grok_grammar_free(lru->g); /* matchers keep their own references */
    lru->text = copy;
    lru->g = grok_grammar_retain(g);
    lru->used = ++s->gclock;
    pthread_mutex_unlock(&s->gmu);
    return g;
}

void server_grammar_cache_free(server *s) {
    for (int i = 0; i < GRAMMAR_CACHE; i++) {
        free(s->gcache[i].text);
        grok_grammar_free(s->gcache[i].g);
        memset(&s->gcache[i], 0, sizeof s->gcache[i]);
    }
}

/* ---- small text helpers ---- */

/* Appends t as a GBNF string literal. */
static bool add_literal(char **b, size_t *len, size_t *cap, const char *t) {
    bool ok = grok_buf_adds(b, len, cap, "\"");
    for (const unsigned char *p = (const unsigned char *)t; ok && *p; p++) {
        char e[8];
        if (*p == '"' || *p == '\\')
            snprintf(e, sizeof e, "\\%c", *p);
        else if (*p == '\n')
            snprintf(e, sizeof e, "\\n");
        else if (*p < 0x20 || *p == 0x7F)
            snprintf(e, sizeof e, "\\x%02X", *p);
        else
            e[0] = (char)*p, e[1] = '\0';
        ok = grok_buf_adds(b, len, cap, e);
    }
    return ok && grok_buf_adds(b, len, cap, "\"");
}

/* A GBNF class of one character, escaped. */
static void class_char(char *out, size_t cap, char c) {
    if (c == '\\' || c == ']' || c == '[' || c == '-' || c == '^' || c == '"')
        snprintf(out, cap, "\\x%02X", (unsigned char)c);
    else
        snprintf(out, cap, "%c", c);
}

/* Rules text-0 ... text-(k-1) for any text that does not contain the
 * ASCII string t (k = its length): text-j has just read the first j
 * characters of t (the KMP automaton of t, each state a right-recursive
 * rule that may end anywhere). */
static bool add_text_without(char **b, size_t *len, size_t *cap, const char *t) {
    size_t k = strlen(t);
    size_t fail[64] = {0};
    if (k == 0 || k >= 64) return false;
    for (size_t i = 1, j = 0; i < k; i++) {
        while (j && t[i] != t[j]) j = fail[j - 1];
        if (t[i] == t[j]) j++;
        fail[i] = j;
    }
    bool ok = true;
    for (size_t j = 0; ok && j < k; j++) {
        /* from state j each character goes to the state KMP says; the one
         * that would complete t is missing */
        char line[64];
        snprintf(line, sizeof line, "tool-text-%zu ::= \"\"", j);
        ok = grok_buf_adds(b, len, cap, line);
        char excl[512] = "";
        for (unsigned char ch = 0x20; ok && ch < 0x7F; ch++) {
            size_t s = j;
            while (s && t[s] != (char)ch) s = fail[s - 1];
            if (t[s] == (char)ch) s++;
            if (s == 0) continue; /* to state 0 with the others */
            char cc[8];
            class_char(cc, sizeof cc, (char)ch);
            strcat(excl, cc);
            if (s == k) continue; /* t itself may not appear */
            char alt[64];
            snprintf(alt, sizeof alt, " | [%s] tool-text-%zu", cc, s);
            ok = grok_buf_adds(b, len, cap, alt);
        }
        ok = ok && grok_buf_adds(b, len, cap, " | [^") && grok_buf_adds(b, len, cap, excl) &&
             grok_buf_adds(b, len, cap, "] tool-text-0\n");
    }
    return ok;
}

/* ---- request fields ---- */

static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return (f && !cJSON_IsNull(f)) ? f : NULL;
}

/* GBNF for a schema node (a compact copy of it goes to the converter). */
static char *schema_gbnf(const cJSON *schema, const char *start, char *err, size_t err_size) {
    char *text = cJSON_PrintUnformatted(schema);
    if (!text) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    char *g = grok_json_schema_to_gbnf_rules(text, strlen(text), start, err, err_size);
    free(text);
    return g;
}

static bool valid_tool_name(const char *n) {
    size_t k = strlen(n);
    if (k == 0 || k > 64) return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

#define FAIL(prm, ...)                        \
    do {                                      \
        snprintf(err, err_size, __VA_ARGS__); \
        *param = (prm);                       \
        goto fail;                            \
    } while (0)

int tools_parse_request(server *s, const cJSON *root, request *r, char **tools_text, char *err,
                        size_t err_size, const char **param) {
    *tools_text = NULL;
    char *gbnf = NULL, *conv = NULL, *list = NULL, *tg = NULL; /* tg: the tools' grammar */
    size_t gl = 0, ll = 0, lc = 0, tgl = 0, tgc = 0;
    char e2[GROK_ERR_SIZE];
    const char *source = NULL; /* the field the grammar came from */
    const cJSON *grammar = field(root, "grammar"), *js = field(root, "json_schema"),
                *rf = field(root, "response_format");
    int n_sources = 0;
    if (grammar) {
        if (!cJSON_IsString(grammar)) FAIL("grammar", "'grammar' must be a string (GBNF)");
        n_sources++;
        source = "grammar";
        if (!(gbnf = strdup(grammar->valuestring))) FAIL(NULL, "out of memory");
        gl = strlen(gbnf);
    }
    if (js) {
        if (!cJSON_IsObject(js) && !cJSON_IsBool(js))
            FAIL("json_schema", "'json_schema' must be a JSON Schema (an object)");
        n_sources++;
        source = "json_schema";
        if (!(conv = schema_gbnf(js, "root", e2, sizeof e2))) FAIL("json_schema", "json_schema: %s", e2);
    }
    if (rf) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
        if (!cJSON_IsObject(rf) || !cJSON_IsString(type))
            FAIL("response_format", "'response_format' must be an object with a string 'type'");
        const char *t = type->valuestring;
        if (!strcmp(t, "json_object")) {
            const cJSON *sch = field(rf, "schema"); /* llama.cpp's extension */
            n_sources++;
            source = "response_format";
            cJSON *obj = NULL;
            if (!sch) sch = obj = cJSON_Parse("{\"type\":\"object\"}");
            conv = sch ? schema_gbnf(sch, "root", e2, sizeof e2) : NULL;
            cJSON_Delete(obj);
            if (!conv) FAIL("response_format", "response_format.schema: %s", e2);
        } else if (!strcmp(t, "json_schema")) {
            const cJSON *j = field(rf, "json_schema");
            const cJSON *sch = cJSON_IsObject(j) ? field(j, "schema") : NULL;
            if (!sch) sch = field(rf, "schema");
            if (!sch)
                FAIL("response_format",
                     "'response_format' of type json_schema needs {\"json_schema\": {\"schema\": {...}}}");
            const cJSON *strict = cJSON_IsObject(j) ? field(j, "strict") : NULL;
            if (strict && !cJSON_IsBool(strict))
                FAIL("response_format", "response_format.json_schema.strict must be true or false");
            n_sources++;
            source = "response_format";
            if (!(conv = schema_gbnf(sch, "root", e2, sizeof e2)))
                FAIL("response_format", "response_format.json_schema.schema: %s", e2);
        } else if (strcmp(t, "text")) {
            FAIL("response_format", "response_format.type must be text, json_object or json_schema, not '%s'",
                 t);
        }
    }
    if (n_sources > 1)
        FAIL(source, "give at most one of 'grammar', 'json_schema' and a JSON 'response_format'");

    /* tools */
    const cJSON *tools = field(root, "tools"), *tc = field(root, "tool_choice"),
                *par = field(root, "parallel_tool_calls");
    if (par && !cJSON_IsBool(par)) FAIL("parallel_tool_calls", "'parallel_tool_calls' must be true or false");
    bool parallel = !par || cJSON_IsTrue(par);
    const char *mode = tools ? "auto" : "none", *named = NULL;
    if (tc) {
        if (cJSON_IsString(tc)) {
            mode = tc->valuestring;
            if (strcmp(mode, "none") && strcmp(mode, "auto") && strcmp(mode, "required"))
                FAIL("tool_choice", "'tool_choice' must be none, auto, required or "
                                    "{\"type\":\"function\",\"function\":{\"name\":...}}");
        } else {
            const cJSON *fn = cJSON_IsObject(tc) ? field(tc, "function") : NULL;
            const cJSON *nm = cJSON_IsObject(fn) ? field(fn, "name") : NULL;
            if (!cJSON_IsString(nm))
                FAIL("tool_choice", "'tool_choice' must be none, auto, required or "
                                    "{\"type\":\"function\",\"function\":{\"name\":...}}");
            mode = "named";
            named = nm->valuestring;
        }
        if (!tools && strcmp(mode, "none")) FAIL("tool_choice", "'tool_choice' needs 'tools'");
    }
    if (tools && r->kind != KIND_CHAT) FAIL("tools", "'tools' work on /v1/chat/completions only");
    /* the tools are checked whatever tool_choice says; with "none" they are then left out */
    if (tools) {
        if (!cJSON_IsArray(tools) || !tools->child) FAIL("tools", "'tools' must be a non-empty array");
        bool use = strcmp(mode, "none") != 0;
        if (n_sources && use)
            FAIL(source, "'%s' together with 'tools' is not supported (send tool_choice \"none\" to use it)",
                 source);
        bool named_found = false;
        size_t i = 0;
        /* calls: <tool_call>{"name": "NAME", "arguments": ARGS}</tool_call> */
        bool ok = grok_buf_adds(&tg, &tgl, &tgc, "tool-call ::= ") &&
                  add_literal(&tg, &tgl, &tgc, GROK_TOOL_CALL_HEAD) && grok_buf_adds(&tg, &tgl, &tgc, " (");
        char *rules = NULL;
        size_t rl = 0, rc = 0;
        int n_alt = 0;
        for (const cJSON *t = tools->child; ok && t; t = t->next, i++) {
            const cJSON *type = field(t, "type"), *fn = field(t, "function");
            if (!cJSON_IsObject(t) ||
                (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "function"))) ||
                !cJSON_IsObject(fn)) {
                free(rules);
                FAIL("tools", "tools[%zu] must be {\"type\":\"function\",\"function\":{...}}", i);
            }
            const cJSON *nm = field(fn, "name"), *params = field(fn, "parameters"),
                        *desc = field(fn, "description");
            if (!cJSON_IsString(nm) || !valid_tool_name(nm->valuestring)) {
                free(rules);
                FAIL("tools", "tools[%zu].function.name must be 1 to 64 letters, digits, '_' or '-'", i);
            }
            if (desc && !cJSON_IsString(desc)) {
                free(rules);
                FAIL("tools", "tools[%zu].function.description must be a string", i);
            }
            for (const cJSON *u = tools->child; u != t; u = u->next) {
                const cJSON *un = field(field(u, "function"), "name");
                if (cJSON_IsString(un) && !strcmp(un->valuestring, nm->valuestring)) {
                    free(rules);
                    FAIL("tools", "tools[%zu]: the function name '%s' is used twice", i, nm->valuestring);
                }
            }
            char start[32];
            snprintf(start, sizeof start, "tool%zu-args", i);
            cJSON *empty = NULL;
            if (!params) params = empty = cJSON_Parse("{\"type\":\"object\",\"properties\":{}}");
            char *args = params ? schema_gbnf(params, start, e2, sizeof e2) : NULL;
            cJSON_Delete(empty);
            if (!args) {
                free(rules);
                FAIL("tools", "tools[%zu].function.parameters: %s", i, e2);
            }
            bool take = !named || !strcmp(named, nm->valuestring);
            named_found = named_found || take;
            char head[48];
            snprintf(head, sizeof head, "tool%zu ::= ", i);
            char *lit_name = NULL;
            size_t nl = 0, nc = 0;
            bool k = grok_buf_adds(&lit_name, &nl, &nc, nm->valuestring) &&
                     grok_buf_adds(&lit_name, &nl, &nc, GROK_TOOL_CALL_ARGS);
            ok = k && grok_buf_adds(&rules, &rl, &rc, head) && add_literal(&rules, &rl, &rc, lit_name) &&
                 grok_buf_adds(&rules, &rl, &rc, " ") && grok_buf_adds(&rules, &rl, &rc, start) &&
                 grok_buf_adds(&rules, &rl, &rc, "\n") && grok_buf_adds(&rules, &rl, &rc, args);
            free(lit_name);
            free(args);
            if (ok && take) {
                char ref[32];
                snprintf(ref, sizeof ref, "%stool%zu", n_alt++ ? " | " : " ", i);
                ok = grok_buf_adds(&tg, &tgl, &tgc, ref);
            }
            /* the prompt's line for the function */
            cJSON *line = cJSON_CreateObject();
            cJSON_AddStringToObject(line, "name", nm->valuestring);
            if (desc) cJSON_AddStringToObject(line, "description", desc->valuestring);
            if (field(fn, "parameters"))
                cJSON_AddItemToObject(line, "parameters", cJSON_Duplicate(field(fn, "parameters"), true));
            char *lt = cJSON_PrintUnformatted(line);
            cJSON_Delete(line);
            ok = ok && lt && (!ll || grok_buf_adds(&list, &ll, &lc, "\n")) &&
                 grok_buf_adds(&list, &ll, &lc, lt);
            free(lt);
        }
        if (ok && named && !named_found) {
            free(rules);
            FAIL("tool_choice", "tool_choice names '%s', which is not among the tools", named);
        }
        ok = ok && grok_buf_adds(&tg, &tgl, &tgc, " ) ") &&
             add_literal(&tg, &tgl, &tgc, GROK_TOOL_CALL_CLOSE) && grok_buf_adds(&tg, &tgl, &tgc, "\n");
        bool one = !parallel || named;
        ok = ok && grok_buf_adds(&tg, &tgl, &tgc,
                                 one ? "tool-calls ::= tool-call\n"
                                     : "tool-calls ::= tool-call ( \"\\n\" tool-call )*\n");
        if (!strcmp(mode, "auto"))
            ok = ok && grok_buf_adds(&tg, &tgl, &tgc, "root ::= tool-text-0 tool-calls?\n") &&
                 add_text_without(&tg, &tgl, &tgc, GROK_TOOL_CALL_OPEN);
        else
            ok = ok && grok_buf_adds(&tg, &tgl, &tgc, "root ::= tool-calls\n");
        ok = ok && (!rules || grok_buf_adds(&tg, &tgl, &tgc, rules));
        free(rules);
        if (!ok) FAIL(NULL, "out of memory");
        /* the system text that lists them */
        char *tt = grok_chat_tools_text(&s->chat, list ? list : "", list ? strlen(list) : 0);
        if (!tt) FAIL(NULL, "out of memory");
        if (use) {
            free(gbnf);
            gbnf = tg;
            tg = NULL;
            gl = tgl;
            r->parse_tools = true;
            *tools_text = tt;
        } else {
            free(tt);
        }
    }
    if (conv) {
        free(gbnf);
        gbnf = conv;
        conv = NULL;
        gl = strlen(gbnf);
    }
    if (gbnf) {
        r->grammar = server_grammar(s, gbnf, gl, e2, sizeof e2);
        if (!r->grammar) {
            if (!strcmp(source ? source : "tools", "grammar")) FAIL("grammar", "grammar: %s", e2);
            FAIL(source ? source : "tools", "the grammar made from '%s' does not parse: %s",
                 source ? source : "tools", e2);
        }
    }
    free(gbnf);
    free(list);
    free(tg);
    return 0;
fail:
    free(gbnf);
    free(conv);
    free(list);
    free(tg);
    free(*tools_text);
    *tools_text = NULL;
    return -1;
}

/* ---- reading calls out of the text ---- */

tool_parse *tool_parse_new(const request *r, int choice_index) {
    tool_parse *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    const char *dash = strrchr(r->id, '-');
    snprintf(tp->id_base, sizeof tp->id_base, "%.16s%02d", dash ? dash + 1 : r->id, choice_index % 100);
    return tp;
}

void tool_parse_free(tool_parse *tp) {
    if (!tp) return;
    for (size_t i = 0; i < tp->n_calls; i++) {
        free(tp->calls[i].name);
        free(tp->calls[i].args);
    }
    free(tp->calls);
    free(tp);
}

static bool content(choice *c, const char *t, size_t n) {
    return grok_buf_add(&c->text, &c->text_len, &c->text_cap, t, n);
}

static tool_call *new_call(tool_parse *tp, const char *name, size_t n) {
    if (tp->n_calls == tp->cap_calls) {
        size_t cap = tp->cap_calls ? tp->cap_calls * 2 : 4;
        tool_call *a = realloc(tp->calls, cap * sizeof *a);
        if (!a) return NULL;
        tp->calls = a;
        tp->cap_calls = cap;
    }
    tool_call *call = &tp->calls[tp->n_calls];
    memset(call, 0, sizeof *call);
    if (!(call->name = malloc(n + 1))) return NULL;
    memcpy(call->name, name, n);
    call->name[n] = '\0';
    snprintf(call->id, sizeof call->id, "call_%s%02zu", tp->id_base, tp->n_calls % 100);
    tp->n_calls++;
    return call;
}

/* Does pend (n bytes) begin GROK_TOOL_CALL_OPEN, or is it one? */
static bool open_prefix(const char *p, size_t n) {
    size_t k = strlen(GROK_TOOL_CALL_OPEN);
    return !memcmp(p, GROK_TOOL_CALL_OPEN, n < k ? n : k);
}

bool tool_parse_feed(tool_parse *tp, choice *c, const char *t, size_t n) {
    const size_t open_len = strlen(GROK_TOOL_CALL_OPEN), head_len = strlen(GROK_TOOL_CALL_HEAD) - open_len,
                 args_len = strlen(GROK_TOOL_CALL_ARGS), tail_len = strlen(GROK_TOOL_CALL_CLOSE) - 1;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = t[i];
        switch (tp->state) {
        case TP_AFTER:
            if (ch == '\n' || ch == ' ') break; /* between calls */
            tp->state = TP_TEXT;
            /* fall through */
        case TP_TEXT:
            if (tp->n_pend || ch == '<') {
                tp->pend[tp->n_pend++] = ch;
                if (!open_prefix(tp->pend,
                                 tp->n_pend)) { /* not a tag after all; the last '<' may start one */
                    bool restart = tp->n_pend > 1 && ch == '<';
                    ok = content(c, tp->pend, tp->n_pend - (restart ? 1 : 0));
                    tp->n_pend = 0;
                    if (restart) tp->pend[tp->n_pend++] = ch;
                } else if (tp->n_pend == open_len) {
                    tp->n_pend = 0;
                    tp->state = TP_HEAD;
                }
            } else {
                size_t j = i;
                while (j < n && t[j] != '<') j++;
                ok = content(c, t + i, j - i);
                i = j - 1;
            }
            break;
        case TP_HEAD: /* {"name": "NAME", "arguments": */
            if (tp->n_pend == sizeof tp->pend) {
                ok = content(c, GROK_TOOL_CALL_OPEN, open_len) && content(c, tp->pend, tp->n_pend);
                tp->n_pend = 0;
                tp->state = TP_TEXT;
                break;
            }
            tp->pend[tp->n_pend++] = ch;
            if (tp->n_pend <= head_len) {
                if (memcmp(tp->pend, &GROK_TOOL_CALL_HEAD[open_len], tp->n_pend)) { /* not our form: text */
                    ok = content(c, GROK_TOOL_CALL_OPEN, open_len) && content(c, tp->pend, tp->n_pend);
                    tp->n_pend = 0;
                    tp->state = TP_TEXT;
                }
            } else if (tp->n_pend >= head_len + args_len &&
                       !memcmp(tp->pend + tp->n_pend - args_len, GROK_TOOL_CALL_ARGS, args_len)) {
                tool_call *call = new_call(tp, tp->pend + head_len, tp->n_pend - head_len - args_len);
                ok = call != NULL;
                tp->n_pend = 0;
                tp->depth = 0;
                tp->in_str = tp->esc = false;
                tp->state = TP_ARGS;
            }
            break;
        case TP_ARGS: {
            tool_call *call = &tp->calls[tp->n_calls - 1];
            if (!tp->in_str && tp->depth == 0 &&
                ch == '}') { /* the envelope closes: the arguments are whole */
                tp->state = TP_TAIL;
                tp->n_pend = 0;
                break;
            }
            if (tp->in_str) {
                if (tp->esc)
                    tp->esc = false;
                else if (ch == '\\')
                    tp->esc = true;
                else if (ch == '"')
                    tp->in_str = false;
            } else if (ch == '"') {
                tp->in_str = true;
            } else if (ch == '{' || ch == '[') {
                tp->depth++;
            } else if ((ch == '}' || ch == ']') && tp->depth > 0) {
                tp->depth--;
            }
            ok = grok_buf_add(&call->args, &call->args_len, &call->args_cap, &ch, 1);
            break;
        }
        case TP_TAIL: /* </tool_call> */
            tp->pend[tp->n_pend++] = ch;
            if (memcmp(tp->pend, &GROK_TOOL_CALL_CLOSE[1],
                       tp->n_pend)) { /* not well-formed: keep it as text */
                ok = content(c, tp->pend, tp->n_pend);
                tp->n_pend = 0;
                tp->state = TP_TEXT;
            } else if (tp->n_pend == tail_len) {
                tp->calls[tp->n_calls - 1].complete = true;
                tp->n_pend = 0;
                tp->state = TP_AFTER;
            }
            break;
        }
    }
    return ok;
}

bool tool_parse_finish(tool_parse *tp, choice *c) {
    bool ok = true;
    if (tp->state == TP_TEXT && tp->n_pend)
        ok = content(c, tp->pend, tp->n_pend);
    else if (tp->state == TP_HEAD) /* a call whose name never finished: text */
        ok = content(c, GROK_TOOL_CALL_OPEN, strlen(GROK_TOOL_CALL_OPEN)) && content(c, tp->pend, tp->n_pend);
    tp->n_pend = 0;
    return ok;
}

static cJSON *call_json(const tool_call *call, size_t index, bool delta, size_t from) {
    cJSON *o = cJSON_CreateObject();
    if (delta) cJSON_AddNumberToObject(o, "index", (double)index);
    if (!delta || !call->announced) {
        cJSON_AddStringToObject(o, "id", call->id);
        cJSON_AddStringToObject(o, "type", "function");
    }
    cJSON *fn = cJSON_AddObjectToObject(o, "function");
    if (!delta || !call->announced) cJSON_AddStringToObject(fn, "name", call->name);
    char *a = malloc(call->args_len - from + 1);
    if (a) {
        memcpy(a, call->args ? call->args + from : "", call->args_len - from);
        a[call->args_len - from] = '\0';
    }
    cJSON_AddStringToObject(fn, "arguments", a ? a : "");
    free(a);
    return o;
}

cJSON *tools_calls_json(const tool_parse *tp) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < tp->n_calls; i++) cJSON_AddItemToArray(a, call_json(&tp->calls[i], i, false, 0));
    return a;
}

cJSON *tools_calls_delta(tool_parse *tp) {
    cJSON *a = NULL;
    for (size_t i = 0; i < tp->n_calls; i++) {
        tool_call *call = &tp->calls[i];
        if (call->announced && call->args_sent == call->args_len) continue;
        if (!a) a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, call_json(call, i, true, call->announced ? call->args_sent : 0));
        call->announced = true;
        call->args_sent = call->args_len;
    }
    return a;
}
