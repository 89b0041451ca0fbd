/*
 * train_cli.h - the pieces of `grok train` (cmd_train.c: flags and full
 * training; train_lora.c: adapters over a frozen base; train_data.c: text
 * and chat data) and what they share.
 */
#ifndef GROK_TRAIN_CLI_H
#define GROK_TRAIN_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "chat/chat.h"
#include "grok.h"
#include "train/train.h"

typedef struct {
    const char **data;
    int n_data;
    const char *tok_path, *out, *type_name, *ckpt, *resume, *eval_model, *log_path;
    const char *init, *lora_targets, *doc_sep, *data_format, *chat_template, *eval_data, *kernels;
    int64_t lora_rank;
    float lora_alpha, lora_dropout;
    int64_t vocab_size, steps, stop_at, batch, seq, warmup, eval_every, eval_tokens, ckpt_every,
        sample_tokens;
    int64_t threads;
    uint64_t seed;
    float holdout, aux_coef, z_coef;
    bool expert_stats, chat;
    unsigned targets;
    grok_hparams hp;
    grok_train_adamw_cfg opt;
} train_args;

/* The LoRA fine-tuning run over the frozen base a->init (flags checked). */
int train_lora_run(train_args *a);

/* The --log CSV into *f: appended to when resuming (step > 0), else new
 * with its header. 0, or 1 after a message. */
int train_open_log(const char *path, int64_t step, FILE **f);

/* ---- data (train_data.c) ---- */

/* The data files joined with newlines; NULL after a message. */
char *train_read_text(const char *const *files, int n_files, size_t *len);

/* The text as tokens: one stream without BOS, or with doc_sep (escapes as
 * cli_unescape takes them) documents each tokenized as a prompt (BOS) and
 * ended by EOS. NULL after a message. */
int32_t *train_tokenize_text(const grok_tokenizer *tok, const char *text, size_t len, const char *doc_sep,
                             size_t *n_out);

/* One chat conversation as tokens: ids[0..n), and tmask[i] != 0 when
 * ids[i + 1] is an assistant token (a target that counts). */
typedef struct {
    int32_t *ids;
    uint8_t *tmask; /* [n - 1] */
    int64_t n;
} train_chat_example;

typedef struct {
    train_chat_example *ex;
    int64_t n;
    int64_t n_truncated; /* longer than the sequence length: cut */
    /* the last conversation (for the sample answer): rendered up to its
     * last assistant turn, with the generation prompt, and that turn */
    char *sample_prompt;
    size_t sample_prompt_len;
    char *sample_answer;
} train_chat_data;

/* Reads JSONL files of {"messages": [{"role": ..., "content": ...}, ...]}
 * through the template (roles system/developer, user, assistant; content
 * a string or text parts), tokenized as the server tokenizes a prompt.
 * Sequences longer than max_len tokens are cut there. A malformed line is
 * refused with its file and line. 0, or -1 after a message. */
int train_read_chat(const char *const *files, int n_files, const grok_chat_template *t,
                    const grok_tokenizer *tok, int64_t max_len, train_chat_data *out);
void train_chat_free(train_chat_data *d);

#endif
