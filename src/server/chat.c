/*
 * chat.c - the chat template of `grok serve`. Grok-1 is a base model with
 * no chat format of its own, so the server uses a plain, readable one:
 *
 *   System: {content}\n\nUser: {content}\n\nAssistant: {content}\n\n ... Assistant:
 *
 * and stops when the model starts the next "\nUser:" turn. Tool results
 * are "Tool ({name}): {content}" turns, and a request with tools gets a
 * system turn listing them (the "tools" text, with {tools}: one JSON
 * object per function) right after its leading system messages. A file
 * given with --chat-template replaces any of it; it has one KEY=VALUE per
 * line, where KEY is system, user, assistant, tool (each VALUE has one
 * {content}; tool's may also have {name} and {id}), tools (one {tools}),
 * generation (appended after the messages) or stop (extra stop string,
 * may be empty). In a VALUE, \n stands for a newline and \\ for a
 * backslash. Keys not given keep the built-in value; lines that are empty
 * or start with # are skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static const char *const ROLE_NAMES[CHAT_ROLES] = {"system", "user", "assistant", "tool"};
static const char *const DEFAULT_ROLE_FMT[CHAT_ROLES] = {"System: {content}\n\n", "User: {content}\n\n",
                                                         "Assistant: {content}\n\n",
                                                         "Tool ({name}): {content}\n\n"};
static const char DEFAULT_TOOLS[] =
    "You can call these functions (each a JSON object; its parameters are a JSON Schema):\n{tools}\n"
    "To call one, answer with " TOOL_CALL_OPEN "{\"name\": \"NAME\", \"arguments\": {...}}</tool_call>, "
    "one call per line. The result of a call comes back as a Tool message.";

int chat_role_index(const char *role) {
    for (int i = 0; i < CHAT_ROLES; i++)
        if (strcmp(role, ROLE_NAMES[i]) == 0) return i;
    return -1;
}

void chat_template_free(chat_template *t) {
    for (int i = 0; i < CHAT_ROLES; i++) free(t->role_fmt[i]);
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

int chat_template_load(chat_template *t, const char *path, char *err, size_t err_size) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < CHAT_ROLES; i++) t->role_fmt[i] = strdup(DEFAULT_ROLE_FMT[i]);
    t->generation = strdup("Assistant:");
    t->stop = strdup("\nUser:");
    t->tools = strdup(DEFAULT_TOOLS);
    for (int i = 0; i < CHAT_ROLES; i++)
        if (!t->role_fmt[i]) goto oom;
    if (!t->generation || !t->stop || !t->tools) goto oom;
    if (!path) return 0;

    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "--chat-template %s: cannot open", path);
        chat_template_free(t);
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
        if (!utf8_valid(v, strlen(v))) {
            snprintf(err, err_size, "%s:%ld: the value of '%s' is not valid UTF-8", path, line_no, line);
            free(v);
            rc = -1;
            break;
        }
        int role = chat_role_index(line);
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
    if (rc) chat_template_free(t);
    return rc;
oom:
    snprintf(err, err_size, "out of memory");
    chat_template_free(t);
    return -1;
}

/* Replaces every {key} of the template by its value. */
char *chat_fill(const char *fmt, const char *content, const char *name, const char *id) {
    const char *keys[3] = {"{content}", "{name}", "{id}"}, *vals[3] = {content, name, id};
    char *b = NULL;
    size_t len = 0, cap = 0;
    for (const char *p = fmt; *p;) {
        int k = -1;
        for (int i = 0; i < 3 && k < 0; i++)
            if (vals[i] && !strncmp(p, keys[i], strlen(keys[i]))) k = i;
        if (k >= 0) {
            if (!server_buf_add(&b, &len, &cap, vals[k], strlen(vals[k]))) goto oom;
            p += strlen(keys[k]);
        } else {
            const char *q = p + 1;
            while (*q && *q != '{') q++;
            if (!server_buf_add(&b, &len, &cap, p, (size_t)(q - p))) goto oom;
            p = q;
        }
    }
    return b ? b : strdup("");
oom:
    free(b);
    return NULL;
}
