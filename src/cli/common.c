/*
 * common.c - small utilities shared by the subcommands (messages, id
 * lists, model loading, text chunks). Flags are parsed by the options
 * table of options.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "dist/dist.h"
#include "model/lora.h"

bool cli_is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

void cli_error(const char *sub, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "grok %s: ", sub);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_parse_ids(const char *s, int32_t **ids, size_t *n, char *err, size_t err_size) {
    size_t cap = 16, cnt = 0;
    int32_t *v = malloc(cap * sizeof *v);
    const char *p = s;
    while (v) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX ||
            (*end && *end != ',' && *end != ' ' && *end != '\t' && *end != '\n')) {
            snprintf(err, err_size, "token id '%.*s' (entry %zu) is not an integer in [0, %d]",
                     (int)strcspn(p, ", \t\n"), p, cnt + 1, INT32_MAX);
            free(v);
            return false;
        }
        if (cnt == cap) {
            int32_t *nv = realloc(v, cap * 2 * sizeof *v);
            if (!nv) {
                free(v);
                v = NULL;
                break;
            }
            v = nv;
            cap *= 2;
        }
        v[cnt++] = (int32_t)x;
        p = end;
    }
    if (!v) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    *ids = v;
    *n = cnt;
    return true;
}

bool cli_kv_type(const char *sub, const char *name, grok_type *out) {
    if (strcmp(name, "f32") == 0 || strcmp(name, "f16") == 0) {
        *out = name[1] == '3' ? GROK_TYPE_F32 : GROK_TYPE_F16;
        return true;
    }
    cli_error(sub, "--kv-type '%s' is not f32 or f16", name);
    return false;
}

void cli_human_bytes(double b, char *buf, size_t n) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int k = 0;
    while (b >= 1024 && k < 4) {
        b /= 1024;
        k++;
    }
    snprintf(buf, n, "%.1f %s", b, u[k]);
}

void cli_bar_init(cli_bar *b) {
    b->t0 = grok_now();
    b->last = 0;
    b->tty = isatty(2) == 1;
    b->shown = false;
}

void cli_bar_update(cli_bar *b, double done, double total, const char *label) {
    if (!b->tty) return;
    double now = grok_now();
    if (now - b->last < 0.2 && done < total) return;
    b->last = now;
    b->shown = true;
    double el = now - b->t0, rate = el > 0 ? done / el : 0;
    double frac = total > 0 ? done / total : 1;
    int width = 30, fill = (int)(frac * width);
    char bars[64], d[32], r[32];
    for (int k = 0; k < width; k++) bars[k] = k < fill ? '#' : '.';
    bars[width] = 0;
    cli_human_bytes(done, d, sizeof d);
    cli_human_bytes(rate, r, sizeof r);
    double eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "\r[%s] %5.1f%% %s  %s/s  ETA %dm%02ds %-32.32s", bars, 100 * frac, d, r, (int)eta / 60,
            (int)eta % 60, label ? label : "");
    fflush(stderr);
}

void cli_bar_end(cli_bar *b) {
    if (b->tty && b->shown) fputc('\n', stderr);
}

char *cli_unescape(const char *s) {
    char *o = malloc(strlen(s) + 1), *w = o;
    if (!o) return NULL;
    for (; *s; s++) {
        if (*s == '\\' && (s[1] == 'n' || s[1] == 't' || s[1] == '\\')) {
            s++;
            *w++ = *s == 'n' ? '\n' : *s == 't' ? '\t' : '\\';
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return o;
}

grok_context_params cli_chunk_params(grok_threadpool *pool, int64_t ctx) {
    grok_context_params cp = grok_context_default_params();
    cp.pool = pool;
    cp.n_ctx = ctx;
    cp.n_batch = ctx;
    return cp;
}

int32_t *cli_text_chunks(const char *sub, const grok_tokenizer *tk, const char *text, size_t len,
                         const char *text_path, int64_t ctx, int64_t max_chunks, size_t *n_tok,
                         int64_t *n_chunks) {
    int32_t *toks = grok_tokenize(tk, text, len, true, n_tok);
    const int64_t all = toks ? (int64_t)*n_tok / ctx : 0;
    *n_chunks = max_chunks > 0 && max_chunks < all ? max_chunks : all;
    if (*n_chunks == 0) {
        cli_error(sub, "%s: %zu tokens, fewer than one chunk of --ctx %" PRId64, text_path, toks ? *n_tok : 0,
                  ctx);
        free(toks);
        return NULL;
    }
    return toks;
}

void cli_train_rate(double n_tokens, int np, double wall_s, double cpu_s) {
    const double mine = n_tokens / (np > 1 ? np : 1);
    fprintf(
        stderr,
        "grok train: steps: %.0f tokens in %.1f s, %.1f CPU-s%s: %.2f tok/s, %.2f tokens per CPU-second\n",
        n_tokens, wall_s, cpu_s, np > 1 ? " (rank 0)" : "", wall_s > 0 ? n_tokens / wall_s : 0.0,
        cpu_s > 0 ? mine / cpu_s : 0.0);
}

bool cli_default_model(char *buf, size_t size) {
    const char *env = getenv("GROK_DEFAULT_MODEL");
    if (env && *env) {
        snprintf(buf, size, "%s", env);
        return true;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = '\0';
    if ((size_t)snprintf(buf, size, "%s/../models/grok-mini.gguf", exe) >= size) return false;
    return access(buf, R_OK) == 0;
}

grok_model *cli_load_model(const char *sub, const char *path, const char *lora, float lora_scale) {
    char err[GROK_ERR_SIZE];
    grok_model *m = grok_model_load(path, err, sizeof err);
    const bool ok = m && (!lora || grok_model_apply_lora(m, lora, lora_scale, err, sizeof err) == 0) &&
                    grok_dist_attach(m, err, sizeof err) == 0;
    if (grok_dist_agree(ok, err, sizeof err)) {
        cli_error(sub, "%s", err);
        grok_model_free(m);
        return NULL;
    }
    return m;
}

/* Loads the tokenizer named by -m or --tokenizer; NULL after printing why. */
grok_tokenizer *cli_load_tokenizer(const char *sub, const char *model, const char *spm) {
    char err[GROK_ERR_SIZE];
    if (!model && !spm) {
        cli_error(sub, "give -m MODEL.gguf or --tokenizer FILE.model (see grok %s --help)", sub);
        return NULL;
    }
    if (model && spm) {
        cli_error(sub, "-m and --tokenizer exclude each other");
        return NULL;
    }
    grok_tokenizer *t;
    if (spm) {
        t = grok_tokenizer_load_spm(spm, err, sizeof err);
    } else {
        grok_gguf_file *f = grok_gguf_open(model, err, sizeof err);
        if (!f) {
            cli_error(sub, "%s", err);
            return NULL;
        }
        t = grok_tokenizer_from_gguf(f, err, sizeof err);
        grok_gguf_close(f);
    }
    if (!t) cli_error(sub, "%s", err);
    return t;
}

grok_grammar *cli_load_grammar(const char *sub, const char *gbnf_path, const char *schema_path,
                               const grok_grammar_vocab *v) {
    char err[GROK_ERR_SIZE];
    const char *path = gbnf_path ? gbnf_path : schema_path;
    size_t len;
    char *text = grok_read_file(path, &len, err, sizeof err);
    if (!text) {
        cli_error(sub, "%s", err);
        return NULL;
    }
    if (schema_path) {
        char *gbnf = grok_json_schema_to_gbnf(text, len, err, sizeof err);
        free(text);
        if (!gbnf) {
            cli_error(sub, "%s: %s", schema_path, err);
            return NULL;
        }
        text = gbnf;
        len = strlen(gbnf);
    }
    grok_grammar *g = grok_grammar_parse(text, len, NULL, v, err, sizeof err);
    if (!g) cli_error(sub, "%s%s:%s", path, schema_path ? " (the grammar made from it)" : "", err);
    free(text);
    return g;
}

int cli_take_memory_flags(int *argc, char **argv) {
    cli_memory_args a;
    cli_memory_args_init(&a);
    cli_cmd cmd = {.name = "memory"};
    cli_add_group(&cmd, "Memory", CLI_MEMORY_OPTS, CLI_N_MEMORY_OPTS, &a, NULL);
    if (cli_take(&cmd, argc, argv) >= 0) return 2;
    if (!cmd.seen[0]) return 0;
    grok_memory_params p = grok_memory_default_params();
    if (a.limit) {
        p.limit = strcmp(a.limit, "none") == 0 ? -1 : grok_parse_size(a.limit);
        if (p.limit == 0 || (p.limit < 0 && strcmp(a.limit, "none") != 0)) {
            fprintf(stderr, "grok: flag --mem-limit: '%s' is not a size such as 12G, 512M or 'none'\n",
                    a.limit);
            return 2;
        }
    }
    if (a.pack_file)
        p.pack_file = strcmp(a.pack_file, "none") == 0 ? "" : a.pack_file; /* argv outlives every model */
    p.plan = (grok_plan_kind)a.plan;
    p.policy = (grok_cache_policy)a.policy;
    p.cache_slots = a.cache_slots;
    p.prefetch = (int)a.prefetch;
    if (cli_seen(&cmd, "--io-threads")) p.io_threads = (int)a.io_threads;
    p.buffered_io = a.buffered_io;
    grok_memory_set_default(&p);
    return 0;
}

void cli_memory_help(FILE *out) {
    cli_memory_args a;
    cli_memory_args_init(&a);
    fprintf(out, "Memory (every command that loads a model; see docs/memory.md):\n");
    cli_help_rows(out, CLI_MEMORY_OPTS, CLI_N_MEMORY_OPTS, &a);
}

void cli_print_memory_json(FILE *out, const grok_model *m, int64_t n_tokens) {
    const grok_memory_plan *p = grok_model_memory_plan(m);
    if (!p) return;
    fprintf(out, ", \"mem_plan\": \"%s\", \"mem_limit_bytes\": %" PRId64 ", \"mem_limit_source\": \"",
            grok_plan_name(p->kind), p->limit);
    for (const char *c = p->limit_source; *c; c++) {
        if (*c == '"' || *c == '\\') fputc('\\', out);
        if ((unsigned char)*c >= 0x20) fputc(*c, out);
    }
    fprintf(out,
            "\", \"mem_resident_planned_bytes\": %" PRId64 ", \"cache_slots\": %" PRId64
            ", \"cache_keys\": %" PRId64 ", \"cache_slot_bytes\": %" PRId64,
            p->resident_bytes, p->cache_slots, p->n_expert_keys, p->expert_bytes);
    if (p->kind != GROK_PLAN_CACHE) return;
    const grok_cache_stats s = grok_model_cache_stats(m);
    const double nt = n_tokens > 0 ? (double)n_tokens : 1;
    fprintf(out,
            ", \"cache_policy\": \"%s\", \"cache_prefetch\": %d, \"cache_lookups\": %" PRId64
            ", \"cache_hits\": %" PRId64 ", \"cache_late_hits\": %" PRId64 ", \"cache_misses\": %" PRId64
            ", \"cache_hit_rate\": %.4f, \"cache_reads\": %" PRId64 ", \"cache_prefetches\": %" PRId64
            ", \"cache_prefetches_used\": %" PRId64 ", \"prediction_precision\": %.4f"
            ", \"disk_bytes_per_token\": %.0f, \"io_wait_s_per_token\": %.5f, \"io_busy_s_per_token\": %.5f, "
            "\"io_read_s_per_token\": %.5f",
            grok_cache_policy_name(p->policy), p->prefetch, s.lookups, s.hits, s.late_hits, s.misses,
            s.lookups ? (double)s.hits / (double)s.lookups : 0, s.reads, s.prefetches, s.prefetches_used,
            s.predicted ? (double)s.predicted_right / (double)s.predicted : 0, (double)s.bytes_read / nt,
            s.io_wait_s / nt, s.io_busy_s / nt, s.io_read_s / nt);
}

void cli_print_cache_sim(FILE *out, const grok_model *m, bool json) {
    const int32_t *ch, *pr;
    const int64_t n = grok_model_routing(m, &ch, &pr);
    const grok_hparams *hp = grok_model_hparams(m);
    const int64_t L = hp->n_layers, E = hp->n_experts, K = hp->n_experts_used, keys = L * E;
    int64_t right = 0, predicted = 0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t l = 1; l < L; l++)
            for (int64_t a = 0; a < K; a++) {
                const int32_t p = pr[(t * L + l) * K + a];
                if (p < 0) continue;
                predicted++;
                for (int64_t b = 0; b < K; b++) right += ch[(t * L + l) * K + b] == p;
            }
    const double pred = predicted ? (double)right / (double)predicted : 0;
    static const int pct[] = {10, 25, 50, 75};
    static const char *const col[] = {"lru", "lfu", "arc"}, *const pfn[] = {"none", "admitted", "always"};
    if (json)
        fprintf(out,
                ", \"cache_sim\": {\"tokens\": %" PRId64 ", \"keys\": %" PRId64
                ", \"prediction_right\": %.4f, \"rows\": [",
                n, keys, pred);
    else
        fprintf(out,
                "cache simulation: routing of %" PRId64 " tokens, %" PRId64 " layers x %" PRId64
                " experts (%" PRId64 " chosen); the next layer's router on the current hidden state "
                "predicts %.1f %% of its choices\n"
                "  hit rate (reads per lookup) by the prefetch of the predictions (--prefetch)\n"
                "  slots       policy  0: none          1: admitted      2: always        MIN\n",
                n, L, E, K, 100 * pred);
    int row = 0;
    for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++) {
        int64_t slots = keys * pct[i] / 100;
        if (slots < 1) slots = 1;
        const grok_cache_sim_result mn =
            grok_cache_simulate(ch, pr, n, L, E, K, slots, GROK_CACHE_LRU, 0, true);
        const double mhit = mn.lookups ? (double)mn.hits / (double)mn.lookups : 0;
        for (int p = 0; p < 3; p++, row++) {
            if (json)
                fprintf(out, "%s{\"slots\": %" PRId64 ", \"policy\": \"%s\"", row ? ", " : "", slots, col[p]);
            else
                fprintf(out, "  %4" PRId64 " (%2d%%)  %-6s", slots, pct[i], col[p]);
            for (int pf = 0; pf < 3; pf++) {
                grok_cache_sim_result r =
                    grok_cache_simulate(ch, pr, n, L, E, K, slots, (grok_cache_policy)p, pf, false);
                const double hit = r.lookups ? (double)r.hits / (double)r.lookups : 0,
                             rd = r.lookups ? (double)r.reads / (double)r.lookups : 0;
                if (json)
                    fprintf(out, ", \"%s\": {\"hit_rate\": %.4f, \"reads_per_lookup\": %.4f}", pfn[pf], hit,
                            rd);
                else
                    fprintf(out, "  %5.1f%% (%.2f)  ", 100 * hit, rd);
            }
            if (json)
                fprintf(out, ", \"min_hit_rate\": %.4f}", mhit);
            else
                fprintf(out, "  %5.1f%%\n", 100 * mhit);
        }
    }
    if (json) fprintf(out, "]}");
}
