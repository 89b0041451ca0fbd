/*
 * train_data.c - the data `grok train` reads: plain text (the files
 * joined), and chat conversations in JSONL for supervised fine-tuning.
 * A conversation goes through the same template as a `grok serve`
 * request (src/chat/chat.c) and is tokenized as one text, as the server
 * tokenizes a prompt, so the model learns exactly what it will be served;
 * the tokens that carry an assistant turn (its content, the template's
 * closing text and the stop string that ends the turn) are the only
 * targets that count in the loss.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli/cli.h"
#include "cli/train_cli.h"
#include "util/utf8.h"

char *train_read_text(const char *const *files, int n_files, size_t *len) {
    char err[GROK_ERR_SIZE];
    char *all = NULL;
    size_t n = 0;
    for (int i = 0; i < n_files; i++) {
        size_t l;
        char *t = grok_read_file(files[i], &l, err, sizeof err);
        if (!t) {
            cli_error("train", "%s", err);
            free(all);
            return NULL;
        }
        char *na = realloc(all, n + l + 2);
        if (!na) {
            free(t);
            free(all);
            cli_error("train", "out of memory reading %s", files[i]);
            return NULL;
        }
        all = na;
        memcpy(all + n, t, l);
        n += l;
        if (l && t[l - 1] != '\n') all[n++] = '\n';
        free(t);
    }
    if (!all || n == 0) {
        cli_error("train", "--data: the files hold no text");
        free(all);
        return NULL;
    }
    all[n] = '\0';
    *len = n;
    return all;
}

void train_chat_free(train_chat_data *d) {
    for (int64_t i = 0; d->ex && i < d->n; i++) free(d->ex[i].ids), free(d->ex[i].tmask);
    free(d->ex);
    free(d->sample_prompt);
    free(d->sample_answer);
    memset(d, 0, sizeof *d);
}

/* A line's JSON with its non-empty "messages" in *ms; NULL after a
 * message in err. */
static cJSON *parse_root(const char *line, size_t len, const cJSON **ms, char *err, size_t err_size) {
    if (!grok_utf8_valid(line, len)) {
        snprintf(err, err_size, "not valid UTF-8");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(line, len);
    if (!root) {
        snprintf(err, err_size, "not valid JSON (near byte %td)",
                 cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - line : (ptrdiff_t)0);
        return NULL;
    }
    *ms = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(*ms) || cJSON_GetArraySize(*ms) == 0) {
        snprintf(err, err_size, "expected an object with a non-empty array \"messages\"");
    } else if (cJSON_GetObjectItemCaseSensitive(root, "tools")) {
        /* the server renders a request's tools from their JSON Schemas;
         * training text would have to match that byte for byte */
        snprintf(err, err_size,
                 "\"tools\" is not supported in training data: list the tools in a system message");
    } else {
        return root;
    }
    cJSON_Delete(root);
    return NULL;
}

/* messages[i] (it) into *out with owned contents; -1 after a message in
 * err, with nothing left to free. */
static int parse_msg(const cJSON *ms, const cJSON *it, size_t i, grok_chat_msg *out, char *err,
                     size_t err_size) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
    if (!cJSON_IsObject(it) || !cJSON_IsString(role)) {
        snprintf(err, err_size, "messages[%zu] must be an object with a string \"role\"", i);
        return -1;
    }
    const char *rn = strcmp(role->valuestring, "developer") == 0 ? "system" : role->valuestring;
    const int ri = grok_chat_role_index(rn);
    if (ri < 0) {
        snprintf(err, err_size, "messages[%zu].role '%s' is not system, user, assistant or tool", i,
                 role->valuestring);
        return -1;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
    const cJSON *calls =
        ri == GROK_CHAT_ASSISTANT ? cJSON_GetObjectItemCaseSensitive(it, "tool_calls") : NULL;
    if (cJSON_IsNull(calls)) calls = NULL;
    if (!c || (cJSON_IsNull(c) && !calls)) {
        snprintf(err, err_size, "messages[%zu] has no \"content\"", i);
        return -1;
    }
    char *text = grok_chat_content_text(c, err, err_size, i);
    if (!text) return -1;
    if (calls) { /* as the server renders an assistant's calls in a prompt */
        char *with = grok_chat_tool_calls_text(text, calls, err, err_size, i);
        free(text);
        if (!(text = with)) return -1;
    }
    const char *name = NULL, *id = NULL;
    if (ri == GROK_CHAT_TOOL) grok_chat_tool_names(ms, it, &name, &id);
    *out = (grok_chat_msg){ri, text, strlen(text), name ? strdup(name) : NULL, id ? strdup(id) : NULL};
    if (ri == GROK_CHAT_TOOL && (!out->name || !out->id)) {
        free(text), free((char *)out->name), free((char *)out->id);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

/* Parses one conversation; on success msgs[0..*n) with owned contents. */
static int parse_line(const char *line, size_t len, grok_chat_msg **msgs, size_t *n, char *err,
                      size_t err_size) {
    *msgs = NULL, *n = 0;
    const cJSON *ms;
    cJSON *root = parse_root(line, len, &ms, err, err_size);
    if (!root) return -1;
    int rc = -1;
    grok_chat_msg *m = calloc((size_t)cJSON_GetArraySize(ms), sizeof *m);
    if (!m) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    *msgs = m;
    bool assistant = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, ms) {
        if (parse_msg(ms, it, *n, &m[*n], err, err_size)) goto done;
        assistant |= m[(*n)++].role == GROK_CHAT_ASSISTANT;
    }
    if (!assistant) {
        snprintf(err, err_size, "no assistant message: nothing to learn from");
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

static void free_msgs(grok_chat_msg *m, size_t n) {
    for (size_t i = 0; i < n; i++) free((char *)m[i].content), free((char *)m[i].name), free((char *)m[i].id);
    free(m);
}

/* The text as documents separated by sep, each tokenized on its own with
 * the vocabulary's BOS and followed by EOS, so that training sees what a
 * prompt looks like at inference (a BOS, the dummy-prefix space) and learns
 * where an answer ends. NULL when out of memory. */
static int32_t *tokenize_docs(const grok_tokenizer *tok, const char *text, size_t len, const char *sep,
                              size_t *n_out) {
    const size_t ns = strlen(sep);
    int32_t *all = NULL;
    size_t n = 0, cap = 0;
    const int32_t eos = grok_tokenizer_eos(tok);
    for (size_t at = 0; at < len;) {
        const char *hit = ns ? memmem(text + at, len - at, sep, ns) : NULL;
        size_t end = hit ? (size_t)(hit - text) : len;
        if (end > at) {
            size_t k;
            int32_t *ids = grok_tokenize(tok, text + at, end - at, true, &k);
            if (!ids) goto oom;
            if (n + k + 1 > cap) {
                size_t c = (n + k + 1) * 2;
                int32_t *g = realloc(all, c * sizeof *g);
                if (!g) {
                    free(ids);
                    goto oom;
                }
                all = g, cap = c;
            }
            memcpy(all + n, ids, k * sizeof *ids);
            n += k;
            if (eos >= 0) all[n++] = eos;
            free(ids);
        }
        at = hit ? end + ns : len;
    }
    *n_out = n;
    return all ? all : calloc(1, sizeof *all);
oom:
    free(all);
    return NULL;
}

int32_t *train_tokenize_text(const grok_tokenizer *tok, const char *text, size_t len, const char *doc_sep,
                             size_t *n_out) {
    int32_t *ids;
    if (doc_sep) {
        char *sep = cli_unescape(doc_sep);
        if (sep && !sep[0]) {
            cli_error("train", "--doc-sep must not be empty");
            free(sep);
            return NULL;
        }
        ids = sep ? tokenize_docs(tok, text, len, sep, n_out) : NULL;
        free(sep);
    } else {
        ids = grok_tokenize(tok, text, len, false, n_out);
    }
    if (!ids) cli_error("train", "out of memory tokenizing the data");
    return ids;
}

/* A conversation's prompt up to its last assistant turn (with the
 * generation prompt) and that turn's content, for the sample answer. */
static int keep_sample(train_chat_data *d, const grok_chat_template *t, const grok_chat_msg *m, size_t n) {
    size_t last = n;
    while (last > 0 && m[last - 1].role != GROK_CHAT_ASSISTANT) last--;
    free(d->sample_prompt), free(d->sample_answer);
    d->sample_prompt = grok_chat_render(t, m, last - 1, true, &d->sample_prompt_len, NULL);
    d->sample_answer = strndup(m[last - 1].content, m[last - 1].len);
    return d->sample_prompt && d->sample_answer ? 0 : -1;
}

/* The next line of buf[0..len) that is not blank, its \r dropped; false at
 * the end. *line_no counts every line read. */
static bool next_line(const char *buf, size_t len, size_t *at, int64_t *line_no, const char **line,
                      size_t *line_len) {
    while (*at < len) {
        const char *l = buf + *at;
        const char *nl = memchr(l, '\n', len - *at);
        size_t n = nl ? (size_t)(nl - l) : len - *at;
        *at += n + (nl ? 1 : 0);
        ++*line_no;
        if (n && l[n - 1] == '\r') n--;
        size_t lead = 0;
        while (lead < n && (l[lead] == ' ' || l[lead] == '\t')) lead++;
        if (lead == n) continue; /* blank lines separate nothing */
        *line = l, *line_len = n;
        return true;
    }
    return false;
}

/* A conversation rendered and tokenized, with mask[i] saying whether
 * ids[i] is an assistant's, and kept as the sample; -1 after a message in
 * err. */
static int tokenize_chat(train_chat_data *out, const grok_chat_template *t, const grok_tokenizer *tok,
                         const grok_chat_msg *m, size_t n, int32_t **ids, uint8_t **mask, size_t *n_ids,
                         char *err, size_t err_size) {
    grok_chat_span *spans = calloc(n, sizeof *spans);
    size_t tlen = 0, k = 0;
    char *text = spans ? grok_chat_render_train(t, m, n, &tlen, spans, &k) : NULL;
    int rc = text ? grok_chat_tokenize_spans(tok, text, tlen, true, spans, k, ids, mask, n_ids, err, err_size)
                  : (snprintf(err, err_size, "out of memory"), -1);
    if (rc == 0 && keep_sample(out, t, m, n)) rc = -1, snprintf(err, err_size, "out of memory");
    free(text), free(spans);
    return rc;
}

/* One line's conversation appended to out as an example of at most
 * max_len tokens; -1 after a message in err. */
static int read_example(train_chat_data *out, int64_t *cap, const grok_chat_template *t,
                        const grok_tokenizer *tok, int64_t max_len, const char *line, size_t len, char *err,
                        size_t err_size) {
    grok_chat_msg *m;
    size_t n;
    if (parse_line(line, len, &m, &n, err, err_size)) {
        free_msgs(m, n);
        return -1;
    }
    int32_t *ids = NULL;
    uint8_t *mask = NULL;
    size_t n_ids = 0;
    int rc = tokenize_chat(out, t, tok, m, n, &ids, &mask, &n_ids, err, err_size);
    free_msgs(m, n);
    if (rc == 0 && n_ids < 2) rc = -1, snprintf(err, err_size, "the conversation is a single token");
    bool any = false;
    for (size_t i = 1; rc == 0 && i < n_ids; i++) any |= mask[i] != 0;
    if (rc == 0 && !any) rc = -1, snprintf(err, err_size, "its assistant turns hold no token");
    if (rc == 0 && out->n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        train_chat_example *ne = realloc(out->ex, sizeof *ne * (size_t)*cap);
        if (!ne)
            rc = -1, snprintf(err, err_size, "out of memory");
        else
            out->ex = ne;
    }
    if (rc) {
        free(ids), free(mask);
        return -1;
    }
    /* targets: tmask[i] says whether ids[i + 1] counts */
    int64_t nt = (int64_t)n_ids;
    if (nt > max_len) nt = max_len, out->n_truncated++;
    memmove(mask, mask + 1, (size_t)(nt - 1));
    any = false;
    for (int64_t i = 0; i < nt - 1; i++) any |= mask[i] != 0;
    if (!any) {
        snprintf(err, err_size,
                 "the first assistant token lies beyond the %" PRId64
                 " tokens a sequence holds (raise --seq)",
                 max_len - 1);
        free(ids), free(mask);
        return -1;
    }
    out->ex[out->n++] = (train_chat_example){ids, mask, nt};
    return 0;
}

int train_read_chat(const char *const *files, int n_files, const grok_chat_template *t,
                    const grok_tokenizer *tok, int64_t max_len, train_chat_data *out) {
    memset(out, 0, sizeof *out);
    char err[GROK_ERR_SIZE];
    int64_t cap = 0;
    for (int fi = 0; fi < n_files; fi++) {
        size_t flen;
        char *buf = grok_read_file(files[fi], &flen, err, sizeof err);
        if (!buf) {
            cli_error("train", "%s", err);
            train_chat_free(out);
            return -1;
        }
        int64_t line_no = 0;
        const char *line;
        size_t len, at = 0;
        while (next_line(buf, flen, &at, &line_no, &line, &len)) {
            if (read_example(out, &cap, t, tok, max_len, line, len, err, sizeof err)) {
                cli_error("train", "%s:%" PRId64 ": %s", files[fi], line_no, err);
                free(buf);
                train_chat_free(out);
                return -1;
            }
        }
        free(buf);
    }
    if (out->n == 0) {
        cli_error("train", "--data: no conversations in the chat files");
        return -1;
    }
    return 0;
}
