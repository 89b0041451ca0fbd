/*
 * common.c - flag parsing and small utilities shared by the subcommands.
 * A flag with a missing or malformed value ends the process with status 2
 * and a message that names the flag and the value, so no subcommand runs
 * on a half-understood command line.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static bool is_flag(const char *arg, const char *name, const char *alias) {
    return strcmp(arg, name) == 0 || (alias && strcmp(arg, alias) == 0);
}

bool cli_is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

bool cli_flag(char **argv, int argc, int *i, const char *name, const char *alias) {
    (void)argc;
    return is_flag(argv[*i], name, alias);
}

bool cli_str(char **argv, int argc, int *i, const char *name, const char *alias, const char **out) {
    if (!is_flag(argv[*i], name, alias)) return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "grok: flag %s needs a value\n", argv[*i]);
        exit(2);
    }
    *out = argv[++*i];
    return true;
}

bool cli_i64(char **argv, int argc, int *i, const char *name, const char *alias, int64_t min, int64_t max,
             int64_t *out) {
    const char *s;
    if (!cli_str(argv, argc, i, name, alias, &s)) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "grok: flag %s: '%s' is not an integer in [%lld, %lld]\n", name, s, (long long)min,
                (long long)max);
        exit(2);
    }
    *out = v;
    return true;
}

bool cli_u64(char **argv, int argc, int *i, const char *name, const char *alias, uint64_t *out) {
    const char *s;
    if (!cli_str(argv, argc, i, name, alias, &s)) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end != '\0' || s[0] == '-') {
        fprintf(stderr, "grok: flag %s: '%s' is not a non-negative integer\n", name, s);
        exit(2);
    }
    *out = v;
    return true;
}

bool cli_f32(char **argv, int argc, int *i, const char *name, const char *alias, double min, double max,
             float *out) {
    const char *s;
    if (!cli_str(argv, argc, i, name, alias, &s)) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, "grok: flag %s: '%s' is not a number in [%g, %g]\n", name, s, min, max);
        exit(2);
    }
    *out = (float)v;
    return true;
}

int cli_unknown(const char *sub, const char *arg) {
    fprintf(stderr, "grok %s: unknown argument '%s' (see grok %s --help)\n", sub, arg, sub);
    return 2;
}

void cli_error(const char *sub, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "grok %s: ", sub);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

char *cli_read_file(const char *path, size_t *len, char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2 + 1) : NULL;
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf || ferror(f)) {
        snprintf(err, err_size, "%s: %s", path, buf ? "read error" : "out of memory");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
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

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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
    char *text = cli_read_file(path, &len, err, sizeof err);
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
