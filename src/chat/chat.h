/*
 * chat.h - the chat template (internal): the one definition of how chat
 * messages become a prompt, used by `grok serve` for requests and by
 * `grok train --data-format chat` for training examples, so a model is
 * fine-tuned on exactly the text it will be served with. The format of a
 * template file is in chat.c.
 */
#ifndef GROK_CHAT_H
#define GROK_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grok.h"

#define GROK_CHAT_ROLES 4 /* system, user, assistant, tool */
enum { GROK_CHAT_SYSTEM, GROK_CHAT_USER, GROK_CHAT_ASSISTANT, GROK_CHAT_TOOL };

/* How a model writes a tool call (the built-in tools text teaches it; the
 * server's grammar forces it and its reader parses it):
 * <tool_call>{"name": "NAME", "arguments": {...}}</tool_call> */
#define GROK_TOOL_CALL_OPEN "<tool_call>"
#define GROK_TOOL_CALL_HEAD "<tool_call>{\"name\": \""
#define GROK_TOOL_CALL_ARGS "\", \"arguments\": "
#define GROK_TOOL_CALL_CLOSE "}</tool_call>"

typedef struct {
    char *role_fmt[GROK_CHAT_ROLES]; /* each with one {content}; may have {name} and {id} */
    char *generation;                /* appended after the messages */
    char *stop;                      /* extra stop string for chat ("" = none) */
    char *tools;                     /* the system text that lists the tools: one {tools} */
} grok_chat_template;

/* The built-in template, or one read from path (format in chat.c). */
int grok_chat_template_load(grok_chat_template *t, const char *path, char *err, size_t err_size);
void grok_chat_template_free(grok_chat_template *t);
/* Role name -> index, -1 if unknown. */
int grok_chat_role_index(const char *role);

typedef struct {
    int role; /* GROK_CHAT_* */
    const char *content;
    size_t len;
    /* {name} and {id} of the role's format (a tool message's function name
     * and tool_call_id); NULL leaves the placeholder as written. */
    const char *name, *id;
} grok_chat_msg;

/* A byte range [start, end) of a rendered prompt. */
typedef struct {
    size_t start, end;
} grok_chat_span;

/* The prompt for n messages (each through its role's format, its
 * {content}, {name} and {id} filled in, in order),
 * then the generation prompt when add_generation: a malloc'd
 * NUL-terminated string, its length in *len; NULL when out of memory.
 * spans, if not NULL, gets for message i the bytes from its content to
 * the end of its role's format (what a model answering as that role
 * writes: the content and the turn's closing text). */
char *grok_chat_render(const grok_chat_template *t, const grok_chat_msg *msgs, size_t n, bool add_generation,
                       size_t *len, grok_chat_span *spans);

/* The tools' system text: the template's tools text with {tools} replaced
 * by list[0..len) (malloc'd; NULL when out of memory). */
char *grok_chat_tools_text(const grok_chat_template *t, const char *list, size_t len);

struct cJSON;
/* Chat messages in OpenAI's JSON (the server's requests, the trainer's
 * JSONL): a message's content as text (a string, or an array of
 * {"type":"text","text":...} parts joined; absent or null: ""; malloc'd;
 * NULL with err naming messages[idx]); an assistant message's text, its content then a newline and its
 * tool_calls as the model writes them (GROK_TOOL_CALL_HEAD name
 * GROK_TOOL_CALL_ARGS arguments GROK_TOOL_CALL_CLOSE, one a line;
 * malloc'd; NULL with err naming messages[idx]); and a tool message m's
 * {name} and {id}: its tool_call_id ("" without one) and the function name
 * that an assistant message of msgs before m gave that id, else its own
 * "name", else "tool" (both point into the JSON). */
char *grok_chat_content_text(const struct cJSON *content, char *err, size_t err_size, size_t idx);
char *grok_chat_tool_calls_text(const char *content, const struct cJSON *tool_calls, char *err,
                                size_t err_size, size_t idx);
void grok_chat_tool_names(const struct cJSON *msgs, const struct cJSON *m, const char **name,
                          const char **id);

/* A conversation as training text: rendered as grok_chat_render renders
 * it (no generation prompt), and the spans of its assistant turns (*n_spans
 * of them into spans, room for n) that a model learns to write. A turn's
 * span runs from its content through its closing text and on through the
 * template's stop string when that begins inside the turn: with the
 * built-in template ("...\n\n" closing a turn, stop "\nUser:") the model
 * learns to begin the next user turn, which is where the server stops it;
 * after the last turn the next user turn's opening is appended as far as
 * the stop string needs. NULL when out of memory. */
char *grok_chat_render_train(const grok_chat_template *t, const grok_chat_msg *msgs, size_t n, size_t *len,
                             grok_chat_span *spans, size_t *n_spans);

/* Tokenizes text[0..len) as one text (as the server does, so tokens merge
 * across turn boundaries exactly as they will at inference) and marks the
 * tokens that hold a byte of any span (spans sorted, not overlapping):
 * (*mask)[i] = 1 for such tokens. *ids and *mask are malloc'd, *n long.
 * Fails (err) when out of memory or when the tokenizer does not decode
 * the tokens back to the text (then no token can be placed). */
int grok_chat_tokenize_spans(const grok_tokenizer *tok, const char *text, size_t len, bool add_special,
                             const grok_chat_span *spans, size_t n_spans, int32_t **ids, uint8_t **mask,
                             size_t *n, char *err, size_t err_size);

#endif
