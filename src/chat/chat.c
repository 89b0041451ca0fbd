/*
 * chat.c - the chat template of `grok serve` and of chat fine-tuning
 * (grok train --data-format chat). Grok-1 is a base model with no chat
 * format of its own, so the server uses a plain, readable one:
 *
 *   System: {content}\n\nUser: {content}\n\nAssistant: {content}\n\n ... Assistant:
 *
 * and stops when the model starts the next "\nUser:" turn. Tool results
 * are "Tool ({name}): {content}" turns, and a request with tools gets a
 * system turn listing them (the "tools" text, with {tools}: one JSON
 * object per function) right after its leading system messages. A file
 * given with --chat-template replaces any of it; it has one KEY=VALUE per
 * line, where KEY is system, user, assistant, tool (each VALUE has one
 * {content}, and may have {name} and {id}), tools (one {tools}),
 * generation (appended after the messages) or stop (extra stop string,
 * may be empty). In a VALUE, \n stands for a newline and \\ for a
 * backslash. Keys not given keep the built-in value; lines that are empty
 * or start with # are skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "chat/chat.h"
#include "util/buf.h"
#include "util/utf8.h"

static const char *const ROLE_NAMES[GROK_CHAT_ROLES] = {"system", "user", "assistant", "tool"};
static const char *const DEFAULT_ROLE_FMT[GROK_CHAT_ROLES] = {"System: {content}\n\n", "User: {content}\n\n",
                                                              "Assistant: {content}\n\n",
                                                              "Tool ({name}): {content}\n\n"};
static const char DEFAULT_TOOLS[] =
    "You can call these functions (each a JSON object; its parameters are a JSON Schema):\n{tools}\n"
    "To call one, answer with " GROK_TOOL_CALL_OPEN "{\"name\": \"NAME\", \"arguments\": {...}}</tool_call>, "
    "one call per line. The result of a call comes back as a Tool message.";

int grok_chat_role_index(const char *role) {
    for (int i = 0; i < GROK_CHAT_ROLES; i++)
        if (strcmp(role, ROLE_NAMES[i]) == 0) return i;
    return -1;
}

void grok_chat_template_free(grok_chat_template *t) {
    for (int i = 0; i < GROK_CHAT_ROLES; i++) free(t->role_fmt[i]);
    free(t->generation);
    free(t->stop);
    free(t->tools);
    memset(t, 0, sizeof *t);
}

/* Unescapes \n and \\ in [s, s+n) into a new string; NULL on a bad escape. */
static char *unescape(const char *s, size_t n) {
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            o[k++] = s[i];
            continue;
        }
        if (i + 1 < n && s[i + 1] == 'n')
            o[k++] = '\n';
        else if (i + 1 < n && s[i + 1] == '\\')
            o[k++] = '\\';
        else {
            free(o);
            return NULL;
        }
        i++;
    }
    o[k] = '\0';
    return o;
}

static size_t count_placeholders(const char *s, const char *ph) {
    size_t n = 0, k = strlen(ph);
    for (const char *p = s; (p = strstr(p, ph)); p += k) n++;
    return n;
}

int grok_chat_template_load(grok_chat_template *t, const char *path, char *err, size_t err_size) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < GROK_CHAT_ROLES; i++) t->role_fmt[i] = strdup(DEFAULT_ROLE_FMT[i]);
    t->generation = strdup("Assistant:");
    t->stop = strdup("\nUser:");
    t->tools = strdup(DEFAULT_TOOLS);
    for (int i = 0; i < GROK_CHAT_ROLES; i++)
        if (!t->role_fmt[i]) goto oom;
    if (!t->generation || !t->stop || !t->tools) goto oom;
    if (!path) return 0;

    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "--chat-template %s: cannot open", path);
        grok_chat_template_free(t);
        return -1;
    }
    char line[4096];
    long line_no = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        line_no++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(err, err_size, "%s:%ld: line longer than %zu bytes", path, line_no, sizeof line - 2);
            rc = -1;
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n == 0 || line[0] == '#') continue;
        char *eq = strchr(line, '=');
        if (!eq) {
            snprintf(err, err_size, "%s:%ld: expected KEY=VALUE", path, line_no);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *v = unescape(eq + 1, strlen(eq + 1));
        if (!v) {
            snprintf(err, err_size, "%s:%ld: bad escape in the value of '%s' (only \\n and \\\\)", path,
                     line_no, line);
            rc = -1;
            break;
        }
        if (!grok_utf8_valid(v, strlen(v))) {
            snprintf(err, err_size, "%s:%ld: the value of '%s' is not valid UTF-8", path, line_no, line);
            free(v);
            rc = -1;
            break;
        }
        int role = grok_chat_role_index(line);
        char **dst = role >= 0                         ? &t->role_fmt[role]
                     : strcmp(line, "generation") == 0 ? &t->generation
                     : strcmp(line, "stop") == 0       ? &t->stop
                     : strcmp(line, "tools") == 0      ? &t->tools
                                                       : NULL;
        if (!dst) {
            snprintf(err, err_size,
                     "%s:%ld: unknown key '%s' (system, user, assistant, tool, tools, generation, stop)",
                     path, line_no, line);
            free(v);
            rc = -1;
            break;
        }
        if (role >= 0 && count_placeholders(v, "{content}") != 1) {
            snprintf(err, err_size, "%s:%ld: '%s' needs exactly one {content}", path, line_no, line);
            free(v);
            rc = -1;
            break;
        }
        if (dst == &t->tools && count_placeholders(v, "{tools}") != 1) {
            snprintf(err, err_size, "%s:%ld: 'tools' needs exactly one {tools}", path, line_no);
            free(v);
            rc = -1;
            break;
        }
        free(*dst);
        *dst = v;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, err_size, "%s: read error", path);
        rc = -1;
    }
    fclose(f);
    if (rc) grok_chat_template_free(t);
    return rc;
oom:
    snprintf(err, err_size, "out of memory");
    grok_chat_template_free(t);
    return -1;
}

/* ---- rendering ---- */

/* Appends fmt with its placeholders filled in: {content} by the message's
 * text (its start into *content_at), {name} and {id} by the message's where
 * it has them. Only the format's own text is scanned, never the values, so
 * a "{name}" inside a message stays as written. */
static bool add_turn(char **b, size_t *len, size_t *cap, const char *fmt, const grok_chat_msg *m,
                     size_t *content_at) {
    const char *keys[3] = {"{content}", "{name}", "{id}"}, *vals[3] = {m->content, m->name, m->id};
    const size_t lens[3] = {m->len, m->name ? strlen(m->name) : 0, m->id ? strlen(m->id) : 0};
    for (const char *p = fmt; *p;) {
        int k = -1;
        for (int i = 0; i < 3 && k < 0; i++)
            if (vals[i] && !strncmp(p, keys[i], strlen(keys[i]))) k = i;
        if (k >= 0) {
            if (k == 0) *content_at = *len;
            if (!grok_buf_add(b, len, cap, vals[k], lens[k])) return false;
            p += strlen(keys[k]);
        } else {
            const char *q = p + 1;
            while (*q && *q != '{') q++;
            if (!grok_buf_add(b, len, cap, p, (size_t)(q - p))) return false;
            p = q;
        }
    }
    return true;
}

char *grok_chat_render(const grok_chat_template *t, const grok_chat_msg *msgs, size_t n, bool add_generation,
                       size_t *out_len, grok_chat_span *spans) {
    char *b = NULL;
    size_t len = 0, cap = 0;
    bool ok = grok_buf_add(&b, &len, &cap, "", 0);
    for (size_t i = 0; ok && i < n; i++) {
        size_t at = len;
        ok = add_turn(&b, &len, &cap, t->role_fmt[msgs[i].role], &msgs[i], &at);
        if (spans) spans[i] = (grok_chat_span){at, len};
    }
    if (ok && add_generation) ok = grok_buf_add(&b, &len, &cap, t->generation, strlen(t->generation));
    if (!ok) {
        free(b);
        return NULL;
    }
    *out_len = len;
    return b;
}

char *grok_chat_tools_text(const grok_chat_template *t, const char *list, size_t n) {
    const char *ph = strstr(t->tools, "{tools}");
    char *b = NULL;
    size_t len = 0, cap = 0;
    if (!ph) return strdup(t->tools); /* a loaded template always has one; a hand-built one may not */
    if (!grok_buf_add(&b, &len, &cap, t->tools, (size_t)(ph - t->tools)) ||
        !grok_buf_add(&b, &len, &cap, list, n) || !grok_buf_add(&b, &len, &cap, ph + 7, strlen(ph + 7))) {
        free(b);
        return NULL;
    }
    return b;
}

char *grok_chat_render_train(const grok_chat_template *t, const grok_chat_msg *msgs, size_t n,
                             size_t *out_len, grok_chat_span *spans, size_t *n_spans) {
    grok_chat_span *all = malloc(sizeof *all * (n ? n : 1));
    size_t len;
    char *text = all ? grok_chat_render(t, msgs, n, false, &len, all) : NULL;
    if (!text) {
        free(all);
        return NULL;
    }
    const size_t sl = strlen(t->stop);
    /* After the last turn, the start of a next user turn: where the stop
     * string of a template like the built-in one ("\nUser:") completes. */
    const char *up = t->role_fmt[GROK_CHAT_USER];
    const size_t ul = (size_t)(strstr(up, "{content}") - up);
    bool appended = false;
    if (sl && n && msgs[n - 1].role == GROK_CHAT_ASSISTANT) {
        char *nt = realloc(text, len + ul + 1);
        if (!nt) {
            free(text), free(all);
            return NULL;
        }
        text = nt;
        memcpy(text + len, up, ul);
        text[len + ul] = '\0';
        appended = true;
    }
    const size_t full = len + (appended ? ul : 0);
    size_t k = 0, keep = len;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].role != GROK_CHAT_ASSISTANT) continue;
        grok_chat_span sp = all[i];
        if (sl) { /* the first stop string that begins inside the turn */
            for (size_t at = sp.start; at < sp.end && at + sl <= full; at++)
                if (memcmp(text + at, t->stop, sl) == 0) {
                    if (at + sl > sp.end) sp.end = at + sl;
                    break;
                }
        }
        if (sp.end > keep) keep = sp.end;
        spans[k++] = sp;
    }
    text[keep] = '\0'; /* the appended prefix only as far as a stop string needed it */
    *out_len = keep, *n_spans = k;
    free(all);
    return text;
}

int grok_chat_tokenize_spans(const grok_tokenizer *tok, const char *text, size_t len, bool add_special,
                             const grok_chat_span *spans, size_t n_spans, int32_t **ids_out, uint8_t **mask,
                             size_t *n, char *err, size_t err_size) {
    *mask = NULL, *ids_out = NULL;
    int32_t *ids = grok_tokenize(tok, text, len, add_special, n);
    uint8_t *m = ids ? calloc(*n ? *n : 1, 1) : NULL;
    if (!m) {
        free(ids);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    /* Each token's bytes from decoding the ids in order; the decoded bytes
     * must be the text itself (a byte piece held back until its character
     * is whole counts where its character ends). */
    grok_detok_stream ds;
    grok_detok_stream_init(&ds, true);
    char piece[GROK_DETOK_MAX_PIECE + 16];
    size_t at = 0, si = 0;
    bool same = true;
    for (size_t i = 0; i < *n && same; i++) {
        const size_t from = at, k = grok_detok_stream_push(&ds, tok, ids[i], piece, sizeof piece);
        same = at + k <= len && memcmp(text + at, piece, k) == 0;
        at += k;
        const size_t hi = at > from ? at : from + 1; /* an empty piece counts as the point where it stands */
        while (si < n_spans && spans[si].end <= from) si++;
        if (si < n_spans && spans[si].start < hi) m[i] = 1;
    }
    if (!same || at + grok_detok_stream_flush(&ds, piece, sizeof piece) != len) {
        snprintf(
            err, err_size,
            "the tokenizer does not decode its tokens back to the text (byte %zu), so the tokens of each "
            "turn cannot be told apart",
            at);
        free(ids), free(m);
        return -1;
    }
    *ids_out = ids, *mask = m;
    return 0;
}

/* ---- tool calls in the prompt ---- */

static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return (f && !cJSON_IsNull(f)) ? f : NULL;
}

char *grok_chat_content_text(const cJSON *content, char *err, size_t err_size, size_t idx) {
    if (!content || cJSON_IsNull(content) || cJSON_IsString(content)) {
        char *t = strdup(cJSON_IsString(content) ? content->valuestring : "");
        if (!t) snprintf(err, err_size, "out of memory");
        return t;
    }
    if (!cJSON_IsArray(content)) {
        snprintf(err, err_size, "messages[%zu].content must be a string or an array of text parts", idx);
        return NULL;
    }
    size_t len = 0, cap = 0;
    char *b = NULL;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsObject(part) || !cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 ||
            !cJSON_IsString(text)) {
            snprintf(err, err_size,
                     "messages[%zu].content: only {\"type\":\"text\",\"text\":...} parts are supported", idx);
            free(b);
            return NULL;
        }
        if (!grok_buf_adds(&b, &len, &cap, text->valuestring)) {
            snprintf(err, err_size, "out of memory");
            free(b);
            return NULL;
        }
    }
    if (!b && !(b = strdup(""))) snprintf(err, err_size, "out of memory");
    return b;
}

char *grok_chat_tool_calls_text(const char *content, const cJSON *tool_calls, char *err, size_t err_size,
                                size_t idx) {
    char *b = NULL;
    size_t len = 0, cap = 0;
    size_t k = 0;
    if (!cJSON_IsArray(tool_calls)) {
        snprintf(err, err_size, "messages[%zu].tool_calls must be an array", idx);
        return NULL;
    }
    if (!grok_buf_add(&b, &len, &cap, content, strlen(content)) ||
        (content[0] && tool_calls->child && !grok_buf_adds(&b, &len, &cap, "\n"))) {
        snprintf(err, err_size, "out of memory");
        free(b);
        return NULL;
    }
    for (const cJSON *c = tool_calls->child; c; c = c->next, k++) {
        const cJSON *fn = field(c, "function"), *nm = fn ? field(fn, "name") : NULL,
                    *args = fn ? field(fn, "arguments") : NULL;
        if (!cJSON_IsObject(c) || !cJSON_IsString(nm)) {
            snprintf(err, err_size, "messages[%zu].tool_calls[%zu] must have function.name", idx, k);
            free(b);
            return NULL;
        }
        char *printed = NULL;
        const char *a = "{}";
        if (cJSON_IsString(args))
            a = args->valuestring;
        else if (args && (printed = cJSON_PrintUnformatted(args)))
            a = printed;
        bool ok = (!k || grok_buf_adds(&b, &len, &cap, "\n")) &&
                  grok_buf_adds(&b, &len, &cap, GROK_TOOL_CALL_HEAD) &&
                  grok_buf_adds(&b, &len, &cap, nm->valuestring) &&
                  grok_buf_adds(&b, &len, &cap, GROK_TOOL_CALL_ARGS) && grok_buf_adds(&b, &len, &cap, a) &&
                  grok_buf_adds(&b, &len, &cap, GROK_TOOL_CALL_CLOSE);
        free(printed);
        if (!ok) {
            snprintf(err, err_size, "out of memory");
            free(b);
            return NULL;
        }
    }
    return b ? b : strdup("");
}

void grok_chat_tool_names(const cJSON *msgs, const cJSON *m, const char **name, const char **id) {
    const cJSON *tid = field(m, "tool_call_id"), *nm = field(m, "name");
    *id = cJSON_IsString(tid) ? tid->valuestring : "";
    *name = NULL;
    /* the name the call gave it wins over one the tool message says */
    for (const cJSON *p = msgs->child; p && p != m; p = p->next) {
        const cJSON *calls = field(p, "tool_calls");
        for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; c; c = c->next) {
            const cJSON *cid = field(c, "id"), *cn = field(field(c, "function"), "name");
            if (cJSON_IsString(cid) && cJSON_IsString(cn) && !strcmp(cid->valuestring, *id))
                *name = cn->valuestring;
        }
    }
    if (!*name) *name = cJSON_IsString(nm) ? nm->valuestring : "tool";
}
