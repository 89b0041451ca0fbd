/*
 * test_cli_options.c - the grok command's options layer (src/cli/options.c):
 * every type's reading and range edges, the messages that name the flag
 * and the value, aliases and --flag=value, shadowing and omitting shared
 * rows, positionals, --help generated from the table (every flag, its
 * range and its default, and the defaults rather than the line's values),
 * and the sampler rows holding the server's ranges.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "server/sampler_limits.h"

#include "check.h"

typedef struct {
    bool flag;
    const char *str;
    cli_strs list;
    int64_t i64;
    int32_t i32;
    uint64_t u64;
    float f32;
    int64_t size;
    int color;
} own_args;

static const char *const COLORS[] = {"red", "green", "blue", NULL};
static const own_args OWN_DEFAULTS = {.str = "dflt", .i64 = 5, .i32 = -1, .u64 = 7, .f32 = 0.5f, .color = 1};
static const cli_opt OWN[] = {
    CLI_OPT_FLAG(own_args, flag, "--flag", "-F", "a switch"),
    CLI_OPT_STR(own_args, str, "--str", NULL, "TEXT", "a string", NULL),
    CLI_OPT_STRS(own_args, list, "--stop", NULL, "TEXT", "repeatable"),
    CLI_OPT_I64(own_args, i64, "--num", "-n", "N", -3, 100, "an integer", NULL),
    CLI_OPT_I32(own_args, i32, "--small", NULL, "N", -1, 9, "a small integer", NULL),
    CLI_OPT_U64(own_args, u64, "--useed", NULL, "S", "a seed", NULL),
    CLI_OPT_F32(own_args, f32, "--frac", NULL, "F", 0, 1, "a fraction", NULL),
    CLI_OPT_SIZE(own_args, size, "--mem", NULL, "SIZE", "a size", "none"),
    CLI_OPT_ENUM(own_args, color, "--color", NULL, COLORS, "a color", NULL),
    /* shadows the shared --ctx */
    CLI_OPT_I64(own_args, i64, "--ctx", NULL, "N", 4, 8, "chunk length", NULL),
};

typedef struct {
    cli_cmd c;
    own_args own;
    cli_model_args model;
    grok_sampler_params sp;
    char err[1024];
} fixture;

static const char *const NO_KV[] = {"--kv-type", NULL};

static void setup(fixture *f) {
    memset(f, 0, sizeof *f);
    f->own = OWN_DEFAULTS;
    cli_model_args_init(&f->model);
    f->sp = grok_sampler_default_params();
    f->c.name = "demo";
    f->c.usage = "[options] FILE";
    f->c.notes = "Example: grok demo --num 3 x";
    f->c.max_pos = 2;
    cli_add_group(&f->c, "Demo", OWN, sizeof OWN / sizeof OWN[0], &f->own, NULL);
    cli_add_group(&f->c, "Model", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &f->model, NO_KV);
    cli_add_group(&f->c, "Sampling", CLI_SAMPLER_OPTS, CLI_N_SAMPLER_OPTS, &f->sp, NULL);
}

/* Parses the NULL-terminated arguments after "demo"; the message lands in f->err. */
static int parse(fixture *f, ...) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"demo";
    va_list ap;
    va_start(ap, f);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    FILE *e = tmpfile();
    f->c.err = e;
    int rc = cli_parse(&f->c, argc, argv);
    rewind(e);
    size_t n = fread(f->err, 1, sizeof f->err - 1, e);
    f->err[n] = '\0';
    fclose(e);
    return rc;
}

static void test_values(void) {
    fixture f;
    setup(&f);
    int rc = parse(&f, "-F", "--str", "hello", "--stop", "a", "--stop=b", "-n", "-3", "--small", "9",
                   "--useed", "-1", "--frac", "1", "--mem", "1.5G", "--color", "blue", "--ctx", "8", "-t",
                   "3", "-b", "16", "--temperature", "2", "-s", "18446744073709551615", "--top-k", "0",
                   "pos1", "--", "-pos2", NULL);
    CHECK(rc == -1, "rc %d, err %s", rc, f.err);
    CHECK(f.own.flag && strcmp(f.own.str, "hello") == 0, "flag/str");
    CHECK(f.own.list.n == 2 && strcmp(f.own.list.v[1], "b") == 0, "list %zu", f.own.list.n);
    CHECK(f.own.i64 == 8, "--ctx shadows and writes own i64 (last wins): %lld", (long long)f.own.i64);
    CHECK(f.own.i32 == 9 && f.own.u64 == UINT64_MAX && f.own.f32 == 1.0f, "i32 %d u64 %llu", f.own.i32,
          (unsigned long long)f.own.u64);
    CHECK(f.own.size == (int64_t)3 << 29, "size %lld", (long long)f.own.size);
    CHECK(f.own.color == 2, "enum %d", f.own.color);
    CHECK(f.model.threads == 3 && f.model.batch == 16 && f.model.ctx == 0, "model group");
    CHECK(f.sp.temperature == 2.0f && f.sp.seed == UINT64_MAX && f.sp.top_k == 0, "sampler group");
    CHECK(f.c.n_pos == 2 && strcmp(f.c.pos[0], "pos1") == 0 && strcmp(f.c.pos[1], "-pos2") == 0,
          "positionals %d", f.c.n_pos);
    CHECK(cli_seen(&f.c, "--seed") && cli_seen(&f.c, "--ctx") && !cli_seen(&f.c, "--top-p") &&
              !cli_seen(&f.c, "--lora"),
          "seen");

    setup(&f);
    CHECK(parse(&f, "--useed", "-9223372036854775808", NULL) == -1 && f.own.u64 == (uint64_t)1 << 63,
          "int64 min");
    setup(&f);
    CHECK(parse(&f, "--seed", "-2", NULL) == -1 && f.sp.seed == UINT64_MAX - 1, "negative seed wraps");
    setup(&f);
    CHECK(parse(&f, "-", NULL) == -1 && f.c.n_pos == 1, "'-' is a positional (stdin)");
    setup(&f);
    CHECK(parse(&f, "-5", "-n", "-2", NULL) == -1 && f.c.n_pos == 1 && strcmp(f.c.pos[0], "-5") == 0 &&
              f.own.i64 == -2,
          "a negative number no flag is called is a positional; a flag's negative value is its value");
    /* any number of positionals, when the command takes them */
    setup(&f);
    f.c.max_pos = CLI_ANY_POS;
    char *argv[402], words[300][8];
    argv[0] = (char *)"demo";
    int argc = 1;
    for (int k = 0; k < 300; k++) {
        snprintf(words[k], sizeof words[k], "w%d", k);
        argv[argc++] = words[k];
        if (k % 3 == 0) argv[argc++] = (char *)"-F";
    }
    argv[argc] = NULL;
    CHECK(cli_parse(&f.c, argc, argv) == -1 && f.c.n_pos == 300 && strcmp(f.c.pos[299], "w299") == 0 &&
              strcmp(f.c.pos[100], "w100") == 0 && f.own.flag,
          "300 positionals: %d", f.c.n_pos);
}

/* One bad command line: status 2 and a message holding every piece of want. */
static void bad(const char *want1, const char *want2, const char *a, const char *b) {
    fixture f;
    setup(&f);
    int rc = parse(&f, a, b, NULL);
    CHECK(rc == 2, "%s %s: rc %d", a, b ? b : "", rc);
    CHECK(strstr(f.err, want1) && (!want2 || strstr(f.err, want2)), "%s %s: message '%s' lacks '%s' / '%s'",
          a, b ? b : "", f.err, want1, want2 ? want2 : "");
}

static void test_errors(void) {
    bad("grok demo: unknown argument '--bogus' (see grok demo --help)", NULL, "--bogus", NULL);
    bad("unknown argument '--kv-type'", NULL, "--kv-type", "f16"); /* omitted */
    bad("flag --num needs a value", NULL, "--num", NULL);
    bad("flag -n: '101' is not an integer in [-3, 100]", NULL, "-n", "101");
    bad("flag --num: '-4' is not an integer in [-3, 100]", NULL, "--num", "-4");
    bad("flag --num: '1x' is not an integer", NULL, "--num", "1x");
    bad("flag --num: '' is not an integer", NULL, "--num", "");
    bad("flag --small: '10'", "[-1, 9]", "--small", "10");
    bad("flag --frac: '1.5' is not a number in [0, 1]", NULL, "--frac", "1.5");
    bad("flag --frac: 'nan'", NULL, "--frac", "nan");
    bad("flag --useed: '18446744073709551616' is not an integer", NULL, "--useed", "18446744073709551616");
    bad("flag --seed: '-9223372036854775809'", NULL, "--seed", "-9223372036854775809");
    bad("flag --useed: 'abc'", NULL, "--useed", "abc");
    bad("flag --mem: '12Q' is not a size", NULL, "--mem", "12Q");
    bad("flag --color: 'pink' is not red, green or blue", NULL, "--color", "pink");
    bad("flag --flag takes no value", NULL, "--flag=1", NULL);
    bad("flag --temp: '2.5' is not a number in [0, 2]", NULL, "--temp", "2.5");
    bad("flag --top-k: '-1'", NULL, "--top-k", "-1");
    bad("flag --threads: '-1' is not an integer in [0, 1024]", NULL, "--threads", "-1");
    fixture f;
    setup(&f);
    CHECK(parse(&f, "a", "b", "c", NULL) == 2 && strstr(f.err, "unexpected argument 'c'"), "too many: %s",
          f.err);
    setup(&f);
    CHECK(parse(&f, "--stop", "1", "--stop", "2", "--stop", "3", "--stop", "4", "--stop", "5", "--stop", "6",
                "--stop", "7", "--stop", "8", "--stop", "9", "--stop", "10", "--stop", "11", "--stop", "12",
                "--stop", "13", "--stop", "14", "--stop", "15", "--stop", "16", NULL) == -1 &&
              f.own.list.n == 16,
          "16 values");
    f.own.list.n = CLI_MAX_REPEAT;
    CHECK(parse(&f, "--stop", "65", NULL) == 2 && strstr(f.err, "--stop: at most 64 values ('65'"),
          "repeat limit: %s", f.err);
}

static char *help_text(fixture *f, const char *arg) {
    char *argv[] = {(char *)"demo", (char *)"--num", (char *)"42", (char *)arg, NULL};
    FILE *out = tmpfile();
    f->c.out = out;
    int rc = cli_parse(&f->c, 4, argv);
    CHECK(rc == 0, "--help: rc %d", rc);
    long n = ftell(out);
    char *b = malloc((size_t)n + 1);
    rewind(out);
    b[fread(b, 1, (size_t)n, out)] = '\0';
    fclose(out);
    return b;
}

static void test_help(void) {
    fixture f;
    setup(&f);
    char *h = help_text(&f, "--help");
    CHECK(strncmp(h, "usage: grok demo [options] FILE\n", 32) == 0, "usage line: %.60s", h);
    /* every accepted flag is listed, the omitted and the shadowed are not */
    static const char *const want[] = {"  -F, --flag ",
                                       "  --str TEXT",
                                       "default dflt",
                                       "  --stop TEXT",
                                       "repeatable, at most 64",
                                       "  -n, --num N",
                                       "-3..100; default 5", /* the default, not the 42 of this line */
                                       "  --small N",
                                       "  --useed S",
                                       "any 64-bit integer",
                                       "  --frac F",
                                       "0..1; default 0.5",
                                       "  --mem SIZE",
                                       "default none",
                                       "  --color red|green|blue",
                                       "default green",
                                       "  --ctx N",
                                       "chunk length (4..8",
                                       "  -m, --model FILE",
                                       "  --lora FILE",
                                       "  -t, --threads N",
                                       "0..1024; default 0",
                                       "  -b, --batch N",
                                       "  --temp, --temperature T",
                                       "0..2",
                                       "  -s, --seed S",
                                       "  --top-k K",
                                       "0..1000000000",
                                       "\nDemo:\n",
                                       "\nModel:\n",
                                       "\nSampling:\n",
                                       "Example: grok demo --num 3 x"};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        CHECK(strstr(h, want[k]) != NULL, "help lacks '%s'", want[k]);
    CHECK(strstr(h, "--kv-type") == NULL, "omitted --kv-type listed");
    CHECK(strstr(h, "context length; 0 = the model's") == NULL, "shadowed --ctx listed");
    /* no line wider than 80 columns */
    int width = 0, max = 0;
    for (const char *p = h; *p; p++) {
        width = *p == '\n' ? 0 : width + 1;
        if (width > max) max = width;
    }
    CHECK(max <= 80, "a help line of %d columns", max);
    CHECK(f.own.i64 == 5, "--help applied the line's flags");
    free(h);
    setup(&f);
    h = help_text(&f, "-h");
    CHECK(strstr(h, "usage: grok demo") != NULL, "-h");
    free(h);
}

/* The sampler rows take exactly the server's ranges (sampler_limits.h). */
static void test_sampler_ranges(void) {
    struct {
        const char *name;
        double lo, hi;
    } want[] = {{"--temp", GROK_TEMPERATURE_MIN, GROK_TEMPERATURE_MAX},
                {"--top-p", GROK_TOP_P_MIN, GROK_TOP_P_MAX},
                {"--min-p", GROK_MIN_P_MIN, GROK_MIN_P_MAX},
                {"--top-k", GROK_TOP_K_MIN, GROK_TOP_K_MAX},
                {"--repeat-penalty", GROK_REPEAT_PENALTY_MIN, GROK_REPEAT_PENALTY_MAX},
                {"--presence-penalty", GROK_PENALTY_MIN, GROK_PENALTY_MAX},
                {"--frequency-penalty", GROK_PENALTY_MIN, GROK_PENALTY_MAX}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        const cli_opt *o = NULL;
        for (size_t j = 0; j < CLI_N_SAMPLER_OPTS; j++)
            if (strcmp(CLI_SAMPLER_OPTS[j].name, want[k].name) == 0) o = &CLI_SAMPLER_OPTS[j];
        CHECK(o != NULL, "%s missing", want[k].name);
        if (!o) continue;
        double lo = o->type == CLI_F32 ? o->flo : (double)o->ilo,
               hi = o->type == CLI_F32 ? o->fhi : (double)o->ihi;
        CHECK(lo == want[k].lo && hi == want[k].hi, "%s: [%g, %g]", want[k].name, lo, hi);
    }
}

/* cli_take: the memory rows out of argv wherever they stand, the rest kept in order. */
static void test_take(void) {
    cli_memory_args m;
    cli_memory_args_init(&m);
    cli_cmd c = {.name = "memory"};
    cli_add_group(&c, "Memory", CLI_MEMORY_OPTS, CLI_N_MEMORY_OPTS, &m, NULL);
    char *argv[] = {"grok",          "run",          "--mem-limit", "4G", "-p", "x", "--mem-plan=cache",
                    "--buffered-io", "--io-threads", "3",           "-n", "4",  NULL};
    int argc = 12;
    CHECK(cli_take(&c, &argc, argv) == -1, "take");
    CHECK(argc == 6 && strcmp(argv[1], "run") == 0 && strcmp(argv[2], "-p") == 0 &&
              strcmp(argv[3], "x") == 0 && strcmp(argv[4], "-n") == 0 && strcmp(argv[5], "4") == 0 &&
              argv[6] == NULL,
          "the rest kept: argc %d", argc);
    CHECK(strcmp(m.limit, "4G") == 0 && m.plan == GROK_PLAN_CACHE && m.buffered_io && m.io_threads == 3,
          "values: plan %d io %lld", m.plan, (long long)m.io_threads);
    CHECK(cli_seen(&c, "--io-threads") && !cli_seen(&c, "--prefetch"), "seen");
    FILE *e = tmpfile();
    c.err = e;
    char *bad[] = {"grok", "run", "--cache-policy", "mru", NULL};
    argc = 4;
    CHECK(cli_take(&c, &argc, bad) == 2, "bad policy");
    char *noval[] = {"grok", "run", "--prefetch", NULL};
    argc = 3;
    CHECK(cli_take(&c, &argc, noval) == 2, "missing value");
    char msg[512];
    rewind(e);
    msg[fread(msg, 1, sizeof msg - 1, e)] = '\0';
    fclose(e);
    CHECK(strstr(msg, "flag --cache-policy: 'mru' is not lru, lfu or arc") &&
              strstr(msg, "flag --prefetch needs a value"),
          "messages: %s", msg);
}

int main(void) {
    test_take();
    test_values();
    test_errors();
    test_help();
    test_sampler_ranges();
    return check_summary("test_cli_options");
}
