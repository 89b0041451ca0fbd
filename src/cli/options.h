/*
 * options.h - the grok command's one options layer. Every flag a
 * subcommand takes is a row of a table: its name and aliases, its type
 * and range, its help text and where its value goes (an offset into the
 * struct of the row's group). Rows come in groups that commands share (the
 * model and its compute settings, the sampler, the model's shape), so a
 * flag such as --threads or --seed parses, checks and documents itself the
 * same way in every command, and --help is printed from the very rows the
 * parser reads: the two cannot drift apart.
 *
 * Errors name the flag as typed and the value; the parser returns status 2
 * (never exits), so the caller decides and tests can drive it.
 */
#ifndef GROK_CLI_OPTIONS_H
#define GROK_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "grok.h"

typedef enum {
    CLI_FLAG, /* bool; takes no value */
    CLI_STR,  /* const char *, pointing into argv */
    CLI_STRS, /* cli_strs: a string flag that may be repeated */
    CLI_I64,  /* int64_t in [ilo, ihi] */
    CLI_I32,  /* int32_t in [ilo, ihi] */
    CLI_U64,  /* uint64_t; a negative value is taken modulo 2^64 (seeds) */
    CLI_F32,  /* float in [flo, fhi] */
    CLI_SIZE, /* int64_t bytes: 4096, 512M, 1.5G (powers of 1024) */
    CLI_ENUM, /* int: the index of the value among choices */
} cli_opt_type;

#define CLI_MAX_REPEAT 64 /* values of one repeated flag (CLI_STRS) */
typedef struct {
    const char *v[CLI_MAX_REPEAT];
    const char *flag[CLI_MAX_REPEAT]; /* the row's name each came with: two rows may share one list */
    size_t n;
} cli_strs;

typedef struct {
    const char *name;           /* "--threads" */
    const char *alias, *alias2; /* "-t"; NULL when none */
    cli_opt_type type;
    const char *meta;           /* the value's name in --help: "N", "FILE" */
    int64_t ilo, ihi;           /* CLI_I64 / CLI_I32 */
    double flo, fhi;            /* CLI_F32 */
    const char *const *choices; /* CLI_ENUM: NULL-terminated */
    size_t off;                 /* offset of the value in the group's struct */
    const char *help;
    const char *def; /* the default --help shows; NULL: the struct's value; "": none */
} cli_opt;

/* Rows, one macro per type: S is the group's struct type, F its field. */
#define CLI_OPT_FLAG(S, F, name, alias, help) \
    { name, alias, NULL, CLI_FLAG, NULL, 0, 0, 0, 0, NULL, offsetof(S, F), help, "" }
#define CLI_OPT_STR(S, F, name, alias, meta, help, def) \
    { name, alias, NULL, CLI_STR, meta, 0, 0, 0, 0, NULL, offsetof(S, F), help, def }
#define CLI_OPT_STRS(S, F, name, alias, meta, help) \
    { name, alias, NULL, CLI_STRS, meta, 0, 0, 0, 0, NULL, offsetof(S, F), help, "" }
#define CLI_OPT_I64(S, F, name, alias, meta, lo, hi, help, def) \
    { name, alias, NULL, CLI_I64, meta, lo, hi, 0, 0, NULL, offsetof(S, F), help, def }
#define CLI_OPT_I32(S, F, name, alias, meta, lo, hi, help, def) \
    { name, alias, NULL, CLI_I32, meta, lo, hi, 0, 0, NULL, offsetof(S, F), help, def }
#define CLI_OPT_U64(S, F, name, alias, meta, help, def) \
    { name, alias, NULL, CLI_U64, meta, 0, 0, 0, 0, NULL, offsetof(S, F), help, def }
#define CLI_OPT_F32(S, F, name, alias, meta, lo, hi, help, def) \
    { name, alias, NULL, CLI_F32, meta, 0, 0, lo, hi, NULL, offsetof(S, F), help, def }
#define CLI_OPT_SIZE(S, F, name, alias, meta, help, def) \
    { name, alias, NULL, CLI_SIZE, meta, 0, 0, 0, 0, NULL, offsetof(S, F), help, def }
#define CLI_OPT_ENUM(S, F, name, alias, choices, help, def) \
    { name, alias, NULL, CLI_ENUM, NULL, 0, 0, 0, 0, choices, offsetof(S, F), help, def }

/* A table of rows and the struct their offsets point into. omit names the
 * rows of a shared group this command does not take (NULL-terminated;
 * NULL: all). A row whose name an earlier group already has is shadowed:
 * a command's own --ctx overrides the shared one. */
typedef struct {
    const char *title; /* the heading in --help */
    const cli_opt *opts;
    size_t n;
    void *base;
    const char *const *omit;
} cli_group;

#define CLI_MAX_GROUPS 8
#define CLI_ANY_POS 0x7fffffff /* max_pos: no limit */
typedef struct {
    const char *name;  /* "run" */
    const char *usage; /* after "usage: grok run ": "-m MODEL (-p TEXT | -f FILE) [options]" */
    const char *about; /* a paragraph after the usage line; may be NULL */
    const char *notes; /* prose after the options (examples); may be NULL */
    bool memory;       /* it loads a model: --help lists the memory flags main takes */
    int max_pos;       /* positional arguments it takes */
    cli_group groups[CLI_MAX_GROUPS];
    size_t n_groups;
    FILE *out, *err; /* where --help and messages go; NULL: stdout, stderr */
    /* filled by cli_parse: the positionals, in order (gathered at the front
     * of argv, so there may be any number of them) */
    const char **pos;
    int n_pos;
    uint64_t seen[CLI_MAX_GROUPS]; /* bit k of seen[g]: groups[g].opts[k] was given */
} cli_cmd;

/* Adds a group to c (at most CLI_MAX_GROUPS). */
void cli_add_group(cli_cmd *c, const char *title, const cli_opt *opts, size_t n, void *base,
                   const char *const *omit);
/* The common case: all of a static table of flags, sized by the compiler
 * (no count to keep in step with the table). */
#define CLI_ADD_TABLE(c, title, table, base) \
    cli_add_group((c), (title), (table), sizeof(table) / sizeof((table)[0]), (base), NULL)
/* Parses argv[1..argc) into c's groups and positionals. Returns -1 when the
 * command goes on, 0 after printing --help (-h) to stdout, or 2 after a
 * message naming the flag and its value: an unknown flag, a missing or
 * malformed value, a value out of range, too many positionals. --name=VALUE
 * is read as --name VALUE; after "--" every argument is positional, and
 * so is "-" and a word like "-5" that no flag is called. argv's order is
 * changed (the positionals move to its front). */
int cli_parse(cli_cmd *c, int argc, char **argv);
/* Like cli_parse, but takes only c's flags out of argv (wherever they
 * stand, with their values) and leaves every other word in place, for
 * flags that main reads before the subcommand does. -1 to go on, or 2
 * after a message. */
int cli_take(cli_cmd *c, int *argc, char **argv);
/* The rows of one table, as --help prints them. */
void cli_help_rows(FILE *out, const cli_opt *opts, size_t n, const void *base);
/* The help text, generated from the groups. */
void cli_help(const cli_cmd *c, FILE *out);
/* Whether the flag called name (its canonical name) was given. */
bool cli_seen(const cli_cmd *c, const char *name);

/* Shared groups. */

/* The model a command loads and how it computes (-m, --lora, --threads,
 * --ctx, --batch, --kv-type): a command takes the rows it needs (omit). */
typedef struct {
    const char *model;
    const char *lora;
    float lora_scale;
    int64_t threads; /* 0 = all cores */
    int64_t ctx;     /* 0 = the model's */
    int64_t batch;   /* prompt tokens per forward pass */
    int kv_type;     /* CLI_KV_TYPES index */
} cli_model_args;
extern const char *const CLI_KV_TYPES[]; /* f32, f16 */
void cli_model_args_init(cli_model_args *a);
grok_type cli_kv_grok_type(const cli_model_args *a);
extern const cli_opt CLI_MODEL_OPTS[];
extern const size_t CLI_N_MODEL_OPTS;

/* The memory flags every model load honours (main takes them out of argv
 * before the subcommand runs: cli_take_memory_flags). */
typedef struct {
    const char *limit; /* a size, or "none" */
    int plan;          /* grok_plan_kind */
    int64_t cache_slots, prefetch, io_threads;
    int policy; /* grok_cache_policy */
    bool buffered_io;
    const char *pack_file; /* a path, or "none" */
} cli_memory_args;
void cli_memory_args_init(cli_memory_args *a);
extern const cli_opt CLI_MEMORY_OPTS[];
extern const size_t CLI_N_MEMORY_OPTS;

/* The sampler's settings, straight into a grok_sampler_params, with the
 * ranges of the server's request parser (server/sampler_limits.h). */
extern const cli_opt CLI_SAMPLER_OPTS[];
extern const size_t CLI_N_SAMPLER_OPTS;

/* The shape of a new model (grok new, grok train from scratch), into a
 * grok_hparams. */
extern const cli_opt CLI_SHAPE_OPTS[];
extern const size_t CLI_N_SHAPE_OPTS;

#endif
