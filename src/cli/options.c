/*
 * options.c - the table-driven parser and help printer of options.h, and
 * the groups of rows the subcommands share. One reading of a value per
 * type (a range check, a size suffix, an enum's names) and one message per
 * mistake, so `--threads x` reads the same in every command.
 */
#include "cli/options.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "server/sampler_limits.h"

#define PREFIX "grok: flag "

void cli_add_group(cli_cmd *c, const char *title, const cli_opt *opts, size_t n, void *base,
                   const char *const *omit) {
    if (c->n_groups >= CLI_MAX_GROUPS || n > 64) abort(); /* a table the program got wrong */
    c->groups[c->n_groups++] = (cli_group){title, opts, n, base, omit};
}

static bool omitted(const cli_group *g, const char *name) {
    for (const char *const *o = g->omit; o && *o; o++)
        if (strcmp(*o, name) == 0) return true;
    return false;
}

static bool matches(const cli_opt *o, const char *arg, size_t len) {
    const char *names[3] = {o->name, o->alias, o->alias2};
    for (int k = 0; k < 3; k++)
        if (names[k] && strlen(names[k]) == len && strncmp(names[k], arg, len) == 0) return true;
    return false;
}

/* The row arg (its first len bytes) names: the first group's, so a
 * command's own row shadows a shared one; NULL when none. */
static const cli_opt *find(const cli_cmd *c, const char *arg, size_t len, size_t *gi, size_t *oi) {
    for (size_t g = 0; g < c->n_groups; g++)
        for (size_t k = 0; k < c->groups[g].n; k++) {
            const cli_opt *o = &c->groups[g].opts[k];
            if (matches(o, arg, len) && !omitted(&c->groups[g], o->name)) {
                *gi = g, *oi = k;
                return o;
            }
        }
    return NULL;
}

/* A row that an earlier group's row of the same name hides (or omit drops). */
static bool hidden(const cli_cmd *c, size_t g, const cli_opt *o) {
    if (omitted(&c->groups[g], o->name)) return true;
    size_t gi, oi;
    return find(c, o->name, strlen(o->name), &gi, &oi) != o;
}

static bool parse_i64(const char *s, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    *v = x;
    return !errno && end != s && *end == '\0';
}

static bool parse_u64(const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    while (*s == ' ') s++;
    if (*s == '-') { /* negative: modulo 2^64, as the server takes a negative seed */
        long long x = strtoll(s, &end, 10);
        *v = (uint64_t)x;
    } else {
        unsigned long long x = strtoull(s, &end, 10);
        *v = x;
    }
    return !errno && end != s && *end == '\0';
}

static void choices_text(const cli_opt *o, char *buf, size_t size, const char *sep, const char *last) {
    size_t n = 0, len = 0;
    while (o->choices[n]) n++;
    buf[0] = '\0';
    for (size_t k = 0; k < n && len < size; k++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                k == 0       ? ""
                                : k + 1 == n ? last
                                             : sep,
                                o->choices[k]);
}

/* Reads s into the row's place in base; 2 after a message naming flag. */
static int set_value(FILE *err, const cli_opt *o, const char *flag, const char *s, void *base) {
    char *dst = (char *)base + o->off;
    switch (o->type) {
    case CLI_FLAG: *(bool *)dst = true; return 0;
    case CLI_STR: *(const char **)dst = s; return 0;
    case CLI_STRS: {
        cli_strs *l = (cli_strs *)dst;
        if (l->n == CLI_MAX_REPEAT) {
            fprintf(err, PREFIX "%s: at most %d values ('%s' is one too many)\n", flag, CLI_MAX_REPEAT, s);
            return 2;
        }
        l->flag[l->n] = o->name;
        l->v[l->n++] = s;
        return 0;
    }
    case CLI_I64:
    case CLI_I32: {
        int64_t v;
        if (!parse_i64(s, &v) || v < o->ilo || v > o->ihi) {
            fprintf(err, PREFIX "%s: '%s' is not an integer in [%" PRId64 ", %" PRId64 "]\n", flag, s, o->ilo,
                    o->ihi);
            return 2;
        }
        if (o->type == CLI_I32)
            *(int32_t *)dst = (int32_t)v;
        else
            *(int64_t *)dst = v;
        return 0;
    }
    case CLI_U64:
        if (!parse_u64(s, (uint64_t *)dst)) {
            fprintf(err, PREFIX "%s: '%s' is not an integer in [%lld, %llu]\n", flag, s, GROK_SEED_MIN,
                    GROK_SEED_MAX);
            return 2;
        }
        return 0;
    case CLI_F32: {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end != '\0' || !isfinite(v) || v < o->flo || v > o->fhi) {
            fprintf(err, PREFIX "%s: '%s' is not a number in [%g, %g]\n", flag, s, o->flo, o->fhi);
            return 2;
        }
        *(float *)dst = (float)v;
        return 0;
    }
    case CLI_SIZE: {
        int64_t v = grok_parse_size(s);
        if (v <= 0) {
            fprintf(err,
                    PREFIX "%s: '%s' is not a size such as 4096, 512M or 1.5G (K/M/G/T: powers of 1024)\n",
                    flag, s);
            return 2;
        }
        *(int64_t *)dst = v;
        return 0;
    }
    case CLI_ENUM:
        for (int k = 0; o->choices[k]; k++)
            if (strcmp(o->choices[k], s) == 0) {
                *(int *)dst = k;
                return 0;
            }
        char names[256];
        choices_text(o, names, sizeof names, ", ", " or ");
        fprintf(err, PREFIX "%s: '%s' is not %s\n", flag, s, names);
        return 2;
    }
    return 2;
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

/* One walk over argv. With apply false it only looks for --help, stepping
 * over values, so the help printed shows the defaults, not this line's. */
static int walk(cli_cmd *c, int argc, char **argv, bool apply) {
    FILE *err = c->err ? c->err : stderr;
    bool rest = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!rest && strcmp(a, "--") == 0) {
            rest = true;
            continue;
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        const size_t len = eq ? (size_t)(eq - a) : strlen(a);
        size_t g, k;
        const cli_opt *o = rest ? NULL : find(c, a, len, &g, &k);
        /* a positional: after --, "-" (stdin), or a negative number no flag is called */
        if (rest || a[0] != '-' || a[1] == '\0' || (!o && a[1] >= '0' && a[1] <= '9')) {
            if (!apply) continue;
            if (c->n_pos >= c->max_pos) {
                fprintf(err, "grok %s: unexpected argument '%s' (see grok %s --help)\n", c->name, a, c->name);
                return 2;
            }
            argv[1 + c->n_pos++] = argv[i]; /* a slot already read: positionals gather at the front */
            continue;
        }
        if (is_help(a)) {
            if (apply) continue;
            cli_help(c, c->out ? c->out : stdout);
            return 0;
        }
        if (!o) {
            if (!apply) continue; /* reported by the second walk, in order */
            fprintf(err, "grok %s: unknown argument '%s' (see grok %s --help)\n", c->name, a, c->name);
            return 2;
        }
        char flag[128];
        snprintf(flag, sizeof flag, "%.*s", (int)len, a);
        const char *v = NULL;
        if (o->type == CLI_FLAG) {
            if (eq) {
                if (apply) fprintf(err, PREFIX "%s takes no value (got '%s')\n", flag, eq + 1);
                return apply ? 2 : -1;
            }
        } else if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            if (apply) fprintf(err, PREFIX "%s needs a value\n", flag);
            return apply ? 2 : -1;
        }
        if (!apply) continue;
        int rc = set_value(err, o, flag, v, c->groups[g].base);
        if (rc) return rc;
        c->seen[g] |= (uint64_t)1 << k;
    }
    return -1;
}

int cli_parse(cli_cmd *c, int argc, char **argv) {
    c->n_pos = 0;
    c->pos = (const char **)argv + 1;
    memset(c->seen, 0, sizeof c->seen);
    int rc = walk(c, argc, argv, false);
    return rc >= 0 ? rc : walk(c, argc, argv, true);
}

int cli_take(cli_cmd *c, int *argc, char **argv) {
    FILE *err = c->err ? c->err : stderr;
    memset(c->seen, 0, sizeof c->seen);
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        const size_t len = eq ? (size_t)(eq - a) : strlen(a);
        size_t g, k;
        const cli_opt *o = a[0] == '-' ? find(c, a, len, &g, &k) : NULL;
        if (!o) {
            argv[out++] = argv[i];
            continue;
        }
        char flag[128];
        snprintf(flag, sizeof flag, "%.*s", (int)len, a);
        const char *v = NULL;
        if (o->type == CLI_FLAG && eq) {
            fprintf(err, PREFIX "%s takes no value (got '%s')\n", flag, eq + 1);
            return 2;
        }
        if (o->type != CLI_FLAG) {
            if (!eq && i + 1 >= *argc) {
                fprintf(err, PREFIX "%s needs a value\n", flag);
                return 2;
            }
            v = eq ? eq + 1 : argv[++i];
        }
        if (set_value(err, o, flag, v, c->groups[g].base)) return 2;
        c->seen[g] |= (uint64_t)1 << k;
    }
    argv[out] = NULL;
    *argc = out;
    return -1;
}

bool cli_seen(const cli_cmd *c, const char *name) {
    size_t g, k;
    return find(c, name, strlen(name), &g, &k) && (c->seen[g] >> k & 1);
}

/* Help: the left column is the flag and its value, the right its text with
 * the range and the default, wrapped at 80 columns. */
enum { HELP_COL = 26, HELP_WIDTH = 80 };

static void wrap(FILE *out, const char *text, int col) {
    const char *p = text;
    bool first = true;
    while (*p) {
        while (*p == ' ') p++;
        const int room = HELP_WIDTH - HELP_COL;
        int n = (int)strlen(p), cut = n;
        const char *nl = strchr(p, '\n');
        if (nl && nl - p <= room)
            cut = (int)(nl - p);
        else if (n > room) {
            cut = room;
            while (cut > 0 && p[cut] != ' ') cut--;
            if (cut == 0) cut = room;
        }
        if (!first || col > HELP_COL - 1)
            fprintf(out, "\n%*s", HELP_COL, "");
        else
            fprintf(out, "%*s", HELP_COL - col, "");
        fprintf(out, "%.*s", cut, p);
        first = false;
        p += cut;
        if (*p == '\n') p++;
    }
    fputc('\n', out);
}

static void fmt_num(char *buf, size_t size, double v) { snprintf(buf, size, "%g", v); }

static void default_text(const cli_opt *o, const void *base, char *buf, size_t size) {
    const char *dst = (const char *)base + o->off;
    buf[0] = '\0';
    if (o->def) {
        snprintf(buf, size, "%s", o->def);
        return;
    }
    switch (o->type) {
    case CLI_STR: {
        const char *s = *(const char *const *)dst;
        if (s) snprintf(buf, size, "%s", s);
        break;
    }
    case CLI_I64: snprintf(buf, size, "%" PRId64, *(const int64_t *)dst); break;
    case CLI_I32: snprintf(buf, size, "%" PRId32, *(const int32_t *)dst); break;
    case CLI_U64: snprintf(buf, size, "%" PRIu64, *(const uint64_t *)dst); break;
    case CLI_F32: fmt_num(buf, size, *(const float *)dst); break;
    case CLI_SIZE: {
        int64_t v = *(const int64_t *)dst;
        if (v > 0) snprintf(buf, size, "%" PRId64, v);
        break;
    }
    case CLI_ENUM: snprintf(buf, size, "%s", o->choices[*(const int *)dst]); break;
    default: break;
    }
}

static void help_row(FILE *out, const cli_opt *o, const void *base);

void cli_help_rows(FILE *out, const cli_opt *opts, size_t n, const void *base) {
    for (size_t k = 0; k < n; k++) help_row(out, &opts[k], base);
}

static void help_row(FILE *out, const cli_opt *o, const void *base) {
    char left[160], meta[256], range[96] = "", def[128], text[1024];
    if (o->type == CLI_ENUM)
        choices_text(o, meta, sizeof meta, "|", "|");
    else
        snprintf(meta, sizeof meta, "%s", o->meta ? o->meta : o->type == CLI_SIZE ? "SIZE" : "N");
    const bool short_alias = o->alias && o->alias[1] != '-';
    int n = snprintf(left, sizeof left, "  %s%s%s", short_alias ? o->alias : "", short_alias ? ", " : "",
                     o->name);
    if (o->alias && !short_alias) n += snprintf(left + n, sizeof left - (size_t)n, ", %s", o->alias);
    if (o->alias2) n += snprintf(left + n, sizeof left - (size_t)n, ", %s", o->alias2);
    if (o->type != CLI_FLAG) snprintf(left + n, sizeof left - (size_t)n, " %s", meta);
    if (o->type == CLI_I64 || o->type == CLI_I32) {
        if (o->ihi >= ((int64_t)1 << 53))
            snprintf(range, sizeof range, ">= %" PRId64, o->ilo);
        else
            snprintf(range, sizeof range, "%" PRId64 "..%" PRId64, o->ilo, o->ihi);
    } else if (o->type == CLI_F32) {
        char lo[32], hi[32];
        fmt_num(lo, sizeof lo, o->flo);
        fmt_num(hi, sizeof hi, o->fhi);
        snprintf(range, sizeof range, "%s..%s", lo, hi);
    } else if (o->type == CLI_U64) {
        snprintf(range, sizeof range, "any 64-bit integer");
    } else if (o->type == CLI_STRS) {
        snprintf(range, sizeof range, "repeatable, at most %d", CLI_MAX_REPEAT);
    }
    default_text(o, base, def, sizeof def);
    size_t t = (size_t)snprintf(text, sizeof text, "%s", o->help);
    if (range[0] || def[0])
        snprintf(text + t, sizeof text - t, " (%s%s%s%s)", range, range[0] && def[0] ? "; " : "",
                 def[0] ? "default " : "", def);
    fputs(left, out);
    wrap(out, text, (int)strlen(left));
}

void cli_help(const cli_cmd *c, FILE *out) {
    fprintf(out, "usage: grok %s %s\n", c->name, c->usage ? c->usage : "[options]");
    if (c->about) fprintf(out, "\n%s\n", c->about);
    for (size_t g = 0; g < c->n_groups; g++) {
        const cli_group *gr = &c->groups[g];
        bool any = false;
        for (size_t k = 0; k < gr->n; k++) {
            if (hidden(c, g, &gr->opts[k])) continue;
            if (!any) fprintf(out, "\n%s:\n", gr->title);
            any = true;
            help_row(out, &gr->opts[k], gr->base);
        }
    }
    if (c->memory)
        fprintf(out, "\nThe memory flags (--mem-limit, --mem-plan, --cache-slots, ...: see grok help)\n"
                     "apply to every model this command loads.\n");
    fprintf(out, "\n-h, --help prints this text. A value may follow its flag or an '=' (--flag=V).\n");
    if (c->notes) fprintf(out, "\n%s\n", c->notes);
}

/* The shared groups. */

const char *const CLI_KV_TYPES[] = {"f32", "f16", NULL};

void cli_model_args_init(cli_model_args *a) { *a = (cli_model_args){.lora_scale = 1.0f, .batch = 256}; }

grok_type cli_kv_grok_type(const cli_model_args *a) {
    return a->kv_type == 1 ? GROK_TYPE_F16 : GROK_TYPE_F32;
}

const cli_opt CLI_MODEL_OPTS[] = {
    CLI_OPT_STR(cli_model_args, model, "--model", "-m", "FILE", "the model (GGUF)", ""),
    CLI_OPT_STR(cli_model_args, lora, "--lora", NULL, "FILE",
                "apply a LoRA adapter (from grok train --lora); the adapted weights are held as f32 copies",
                ""),
    CLI_OPT_F32(cli_model_args, lora_scale, "--lora-scale", NULL, "S", -1e6, 1e6, "the adapter's strength",
                NULL),
    CLI_OPT_I64(cli_model_args, threads, "--threads", "-t", "N", 0, 1024, "compute threads; 0 = all cores",
                NULL),
    CLI_OPT_I64(cli_model_args, ctx, "--ctx", "-c", "N", 0, 1 << 24, "context length; 0 = the model's", NULL),
    CLI_OPT_I64(cli_model_args, batch, "--batch", "-b", "N", 1, 1 << 20, "prompt tokens per forward pass",
                NULL),
    CLI_OPT_ENUM(cli_model_args, kv_type, "--kv-type", NULL, CLI_KV_TYPES, "the KV cache's type", NULL),
};
const size_t CLI_N_MODEL_OPTS = sizeof CLI_MODEL_OPTS / sizeof CLI_MODEL_OPTS[0];

static const char *const MEM_PLANS[] = {"auto", "packed", "cache", "mmap", NULL}; /* grok_plan_kind's order */
static const char *const CACHE_POLICIES[] = {"lru", "lfu", "arc", NULL}; /* grok_cache_policy's order */

void cli_memory_args_init(cli_memory_args *a) {
    const grok_memory_params p = grok_memory_default_params();
    *a = (cli_memory_args){.plan = (int)p.plan,
                           .cache_slots = p.cache_slots,
                           .prefetch = p.prefetch,
                           .io_threads = p.io_threads > 0 ? p.io_threads : 2,
                           .policy = (int)p.policy,
                           .buffered_io = p.buffered_io};
}

const cli_opt CLI_MEMORY_OPTS[] = {
    CLI_OPT_STR(cli_memory_args, limit, "--mem-limit", NULL, "SIZE",
                "plan for SIZE bytes (K/M/G/T suffixes, powers of 1024), or 'none'",
                "the tightest cgroup limit, or MemAvailable"),
    CLI_OPT_ENUM(
        cli_memory_args, plan, "--mem-plan", NULL, MEM_PLANS,
        "packed: every weight in memory; cache: experts through a cache of slots read from the file; "
        "mmap: the file's pages only; auto: by the limit",
        NULL),
    CLI_OPT_I64(cli_memory_args, cache_slots, "--cache-slots", NULL, "N", 0, (int64_t)1 << 40,
                "(layer, expert) slots of the cache; 0 = what fits", NULL),
    CLI_OPT_ENUM(cli_memory_args, policy, "--cache-policy", NULL, CACHE_POLICIES,
                 "the cache's eviction policy", NULL),
    CLI_OPT_I64(
        cli_memory_args, prefetch, "--prefetch", NULL, "N", 0, 2,
        "read the next layer's experts ahead, as its router predicts them from the current hidden state: "
        "0 never, 1 when a victim used no more often is free to go (TinyLFU admission), 2 always",
        NULL),
    CLI_OPT_I64(cli_memory_args, io_threads, "--io-threads", NULL, "N", 1, 64,
                "threads reading into the cache", NULL),
    CLI_OPT_FLAG(cli_memory_args, buffered_io, "--buffered-io", NULL,
                 "read through the page cache instead of O_DIRECT"),
    CLI_OPT_STR(cli_memory_args, pack_file, "--pack-file", NULL, "PATH",
                "the packed copy to map (grok pack writes it), or 'none'",
                "MODEL.gguf.grokpack when it is there"),
};
const size_t CLI_N_MEMORY_OPTS = sizeof CLI_MEMORY_OPTS / sizeof CLI_MEMORY_OPTS[0];

const cli_opt CLI_SAMPLER_OPTS[] = {
    CLI_OPT_F32(grok_sampler_params, temperature, "--temp", "--temperature", "T", GROK_TEMPERATURE_MIN,
                GROK_TEMPERATURE_MAX, "temperature; 0 = greedy", NULL),
    CLI_OPT_I32(grok_sampler_params, top_k, "--top-k", NULL, "K", GROK_TOP_K_MIN, GROK_TOP_K_MAX,
                "keep the K most likely tokens; 0 = off", NULL),
    CLI_OPT_F32(grok_sampler_params, top_p, "--top-p", NULL, "P", GROK_TOP_P_MIN, GROK_TOP_P_MAX,
                "nucleus, official Grok-1 semantics (ties kept); 1 = off", NULL),
    CLI_OPT_F32(grok_sampler_params, min_p, "--min-p", NULL, "P", GROK_MIN_P_MIN, GROK_MIN_P_MAX,
                "drop tokens below P x the top probability; 0 = off", NULL),
    CLI_OPT_F32(grok_sampler_params, repeat_penalty, "--repeat-penalty", NULL, "R", GROK_REPEAT_PENALTY_MIN,
                GROK_REPEAT_PENALTY_MAX, "penalise recent tokens (llama.cpp's definition); 1 = off", NULL),
    CLI_OPT_I32(grok_sampler_params, repeat_last_n, "--repeat-last-n", NULL, "N", -1, 1 << 30,
                "the window of the penalties; -1 = all", NULL),
    CLI_OPT_F32(grok_sampler_params, presence_penalty, "--presence-penalty", NULL, "P", GROK_PENALTY_MIN,
                GROK_PENALTY_MAX, "OpenAI's presence penalty; 0 = off", NULL),
    CLI_OPT_F32(grok_sampler_params, frequency_penalty, "--frequency-penalty", NULL, "P", GROK_PENALTY_MIN,
                GROK_PENALTY_MAX, "OpenAI's frequency penalty; 0 = off", NULL),
    CLI_OPT_U64(grok_sampler_params, seed, "--seed", "-s", "S", "random seed (the same seed, the same text)",
                NULL),
};
const size_t CLI_N_SAMPLER_OPTS = sizeof CLI_SAMPLER_OPTS / sizeof CLI_SAMPLER_OPTS[0];

#define SHAPE_BIG ((int64_t)1 << 24)
const cli_opt CLI_SHAPE_OPTS[] = {
    CLI_OPT_I64(grok_hparams, d_model, "--d-model", NULL, "N", 1, SHAPE_BIG, "model width", NULL),
    CLI_OPT_I64(grok_hparams, n_layers, "--layers", NULL, "N", 1, 4096, "layers", NULL),
    CLI_OPT_I64(grok_hparams, n_heads, "--heads", NULL, "N", 1, 4096, "query heads", NULL),
    CLI_OPT_I64(grok_hparams, n_kv_heads, "--kv-heads", NULL, "N", 1, 4096, "key/value heads", NULL),
    CLI_OPT_I64(grok_hparams, head_dim, "--head-dim", NULL, "N", 2, 65536, "head size", "d-model / heads"),
    CLI_OPT_I64(grok_hparams, n_experts, "--experts", NULL, "N", 1, 1024, "experts per layer", NULL),
    CLI_OPT_I64(grok_hparams, n_experts_used, "--experts-used", NULL, "N", 1, 1024, "experts used per token",
                NULL),
    CLI_OPT_I64(grok_hparams, n_ff, "--ffn", NULL, "N", 1, SHAPE_BIG, "per-expert FFN width", NULL),
    CLI_OPT_I64(grok_hparams, n_ctx_train, "--ctx", NULL, "N", 1, SHAPE_BIG, "context length", NULL),
};
const size_t CLI_N_SHAPE_OPTS = sizeof CLI_SHAPE_OPTS / sizeof CLI_SHAPE_OPTS[0];
