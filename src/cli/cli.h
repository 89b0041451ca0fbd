/*
 * cli.h - shared pieces of the grok command: one function per subcommand
 * (each in its own cmd_*.c file) and the flag parsing helpers they all use,
 * so every subcommand reports a bad flag the same way: naming the flag and
 * the value, and exiting with status 2.
 */
#ifndef GROK_CLI_H
#define GROK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grok.h"
#include "util/clock.h"
#include "util/file.h"

/* Subcommands: argv[0] is the subcommand name. Return the process status. */
int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_new(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_grammar(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);

/* grok run --samples (run_think.c): the samples' settings and the choice. */
typedef struct {
    int samples;
    int select; /* think_select */
    const char *extract, *verifier, *verifier_suffix, *verifier_yes;
    bool candidates, progress, ignore_eos;
    grok_sampler_params sp;
    int64_t n_gen, n_ctx, batch;
    int threads;
    grok_type kv_type;
    const char *const *stops;
    size_t n_stops;
} run_think_args;
/* Draws the samples of prompt (text too, for the verifier), prints the
 * chosen one; returns the process status. */
int run_think(grok_model *m, const int32_t *prompt, size_t n_prompt, const char *prompt_text,
              size_t prompt_len, const run_think_args *a);

/* Whether arg is -h or --help (main, before a subcommand). */
bool cli_is_help(const char *arg);
/* Prints "grok SUB: MSG" to stderr. */
void cli_error(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "1,2,3" or "1 2 3" into ids; false with err on a bad entry. */
bool cli_parse_ids(const char *s, int32_t **ids, size_t *n, char *err, size_t err_size);
/* --kv-type: "f32" or "f16"; false (after a message) for anything else. */
bool cli_kv_type(const char *sub, const char *name, grok_type *out);
/* The one loading sequence of the commands that run a model: loads path,
 * applies the LoRA adapter lora (NULL: none) at lora_scale, and attaches
 * the model to an mpirun job's ranks (nothing in one process), every rank
 * agreeing on the outcome. NULL after printing "grok SUB: why" (naming the
 * file) on every rank. */
grok_model *cli_load_model(const char *sub, const char *path, const char *lora, float lora_scale);
/* The bundled model, models/grok-mini.gguf beside the directory holding
 * the grok binary (build/grok -> models/), or GROK_DEFAULT_MODEL from the
 * environment; false when there is none. */
bool cli_default_model(char *buf, size_t size);
/* The tokenizer of a GGUF file (model) or of a SentencePiece .model file
 * (spm), exactly one of them given; NULL after printing why. */
grok_tokenizer *cli_load_tokenizer(const char *sub, const char *model, const char *spm);
/* A grammar from a GBNF file or a JSON Schema file (exactly one given),
 * for vocabulary v (may be NULL); NULL after printing why (naming the
 * file and the place in it). */
grok_grammar *cli_load_grammar(const char *sub, const char *gbnf_path, const char *schema_path,
                               const grok_grammar_vocab *v);
/* A flag's text with \n, \t and \\ read as the characters they name
 * (malloc'd; NULL when out of memory), for flags whose values hold
 * newlines (--doc-sep, --verifier-suffix). */
char *cli_unescape(const char *s);
/* Takes the memory flags (--mem-limit, --mem-plan, --cache-slots,
 * --cache-policy, --prefetch, --io-threads, --buffered-io) out of argv
 * wherever they stand and makes them the defaults of every model loaded;
 * 0, or 2 after a message naming a bad flag or value. */
int cli_take_memory_flags(int *argc, char **argv);
/* The help text of those flags, from their table (options.c). */
void cli_memory_help(FILE *out);
/* Prints the model's memory plan and its cache statistics as JSON members
 * (leading ", "), for --json outputs; nothing before the first context. */
void cli_print_memory_json(FILE *out, const grok_model *m, int64_t n_tokens);
/* --cache-sim: replays the routing the model recorded (grok_model_trace_routing)
 * through caches of 10/25/50/75 % of its (layer, expert) pairs under each
 * policy, without and with the next-layer prediction read ahead, and
 * Belady's MIN; prints a table, or with json a ", \"cache_sim\": {...}" member. */
void cli_print_cache_sim(FILE *out, const grok_model *m, bool json);
/* llama.cpp's chunking of a text (grok perplexity, grok imatrix): its
 * tokens (BOS where the tokenizer adds one) and how many whole chunks of
 * ctx tokens they make, at most max_chunks when > 0. NULL, after a message
 * naming text_path, when there is not one chunk. */
int32_t *cli_text_chunks(const char *sub, const grok_tokenizer *tk, const char *text, size_t len,
                         const char *text_path, int64_t ctx, int64_t max_chunks, size_t *n_tok,
                         int64_t *n_chunks);
/* A context's parameters for those chunks: each decoded whole (n_batch =
 * n_ctx = ctx) on the pool's threads. */
grok_context_params cli_chunk_params(grok_threadpool *pool, int64_t ctx);
/* "1.5 GiB" */
void cli_human_bytes(double b, char *buf, size_t n);
/* A progress bar of bytes on stderr, drawn only when stderr is a terminal
 * and at most 5 times a second: [####....] 42.0% done, rate, ETA, label. */
typedef struct {
    double t0, last;
    bool tty, shown;
} cli_bar;
void cli_bar_init(cli_bar *b);
void cli_bar_update(cli_bar *b, double done, double total, const char *label);
void cli_bar_end(cli_bar *b); /* ends the bar's line */
/* The trainers' closing line on the steps alone (no set-up, no output):
 * tokens/s and tokens per CPU-second, which a shared machine's load moves
 * far less than the wall-clock rate. n_tokens is the global batch's over
 * np processes; cpu_s this process's, so the CPU rate is per process. */
void cli_train_rate(double n_tokens, int np, double wall_s, double cpu_s);

#endif
