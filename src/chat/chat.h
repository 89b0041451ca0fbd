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

#define GROK_CHAT_ROLES 3 /* system, user, assistant */
enum { GROK_CHAT_SYSTEM, GROK_CHAT_USER, GROK_CHAT_ASSISTANT };

typedef struct {
    char *role_fmt[GROK_CHAT_ROLES]; /* each with one {content} */
    char *generation;                /* appended after the messages */
    char *stop;                      /* extra stop string for chat ("" = none) */
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
} grok_chat_msg;

/* A byte range [start, end) of a rendered prompt. */
typedef struct {
    size_t start, end;
} grok_chat_span;

/* The prompt for n messages (each through its role's format, in order),
 * then the generation prompt when add_generation: a malloc'd
 * NUL-terminated string, its length in *len; NULL when out of memory.
 * spans, if not NULL, gets for message i the bytes from its content to
 * the end of its role's format (what a model answering as that role
 * writes: the content and the turn's closing text). */
char *grok_chat_render(const grok_chat_template *t, const grok_chat_msg *msgs, size_t n, bool add_generation,
                       size_t *len, grok_chat_span *spans);

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
