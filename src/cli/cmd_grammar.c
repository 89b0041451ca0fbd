/*
 * cmd_grammar.c - `grok grammar`: checks a GBNF grammar or a JSON Schema
 * the way `grok run --grammar/--json-schema` and `grok serve` will read it,
 * prints the GBNF a schema becomes, and tests texts against it (does the
 * grammar match the whole text, and if not, how far it gets), as
 * llama.cpp's gbnf-validator and json_schema_to_grammar.py do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "util/utf8.h"

typedef struct {
    const char *schema, *model, *spm;
    cli_strs tests; /* --test and --test-file, in their order */
    bool print;
} grammar_args;

static const cli_opt GRAMMAR_OPTS[] = {
    CLI_OPT_STR(grammar_args, schema, "--json-schema", NULL, "FILE", "a JSON Schema instead of GBNF", ""),
    CLI_OPT_FLAG(grammar_args, print, "--print", NULL,
                 "print the grammar's GBNF (a schema's converted grammar)"),
    CLI_OPT_STRS(grammar_args, tests, "--test", NULL, "TEXT", "does the grammar match all of TEXT?"),
    CLI_OPT_STRS(grammar_args, tests, "--test-file", NULL, "FILE", "the same for the bytes of FILE"),
    CLI_OPT_STR(grammar_args, model, "--model", "-m", "MODEL",
                "the vocabulary of a GGUF model (for tokens written as <text>)", ""),
    CLI_OPT_STR(grammar_args, spm, "--tokenizer", NULL, "FILE",
                "the vocabulary of a SentencePiece .model file", ""),
};

/* A grammar check: what it holds (freed by grammar_free). */
typedef struct {
    const grammar_args *a;
    const char *gbnf; /* FILE.gbnf, or NULL for --json-schema */
    grok_tokenizer *tok;
    grok_grammar_vocab *v;
    grok_grammar *g;
} grammar_job;

/* The command line into a and *gbnf; -1 to go on, else the exit status. */
static int grammar_parse(int argc, char **argv, grammar_args *a, const char **gbnf) {
    cli_cmd cmd = {.name = "grammar",
                   .usage = "(FILE.gbnf | --json-schema FILE) [options]",
                   .about = "Reads a grammar (GBNF, llama.cpp's format) or a JSON Schema and reports any\n"
                            "error with its place (FILE:LINE:COLUMN, or the schema's JSON pointer).",
                   .notes = "Exit status: 0 when the grammar reads and every test matches, 1 when a file is\n"
                            "bad or a test does not match, 2 for bad flags.",
                   .max_pos = 1};
    CLI_ADD_TABLE(&cmd, "Options", GRAMMAR_OPTS, a);
    int prc = cli_parse(&cmd, argc, argv);
    *gbnf = cmd.n_pos ? cmd.pos[0] : NULL;
    return prc;
}

/* The vocabulary that tokens written as <text> need, if one is given; 0,
 * or 1 after a message. */
static int grammar_load_vocab(grammar_job *j) {
    const grammar_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (!a->model && !a->spm) return 0;
    if (!(j->tok = cli_load_tokenizer("grammar", a->model, a->spm))) return 1;
    if (!(j->v = grok_grammar_vocab_create(j->tok, err, sizeof err))) {
        cli_error("grammar", "%s", err);
        return 1;
    }
    return 0;
}

/* --print: a schema's converted GBNF, or the GBNF file as it is; 0, or 1
 * after a message. */
static int grammar_print(const grammar_job *j) {
    const char *schema = j->a->schema;
    char err[GROK_ERR_SIZE];
    size_t len;
    if (schema) {
        char *text = grok_read_file(schema, &len, err, sizeof err);
        char *out = text ? grok_json_schema_to_gbnf(text, len, err, sizeof err) : NULL;
        free(text);
        if (!out) {
            cli_error("grammar", text ? "%s: %s" : "%s%s", text ? schema : "", err);
            return 1;
        }
        fputs(out, stdout);
        free(out);
        return 0;
    }
    char *text = grok_read_file(j->gbnf, &len, err, sizeof err);
    if (!text) {
        cli_error("grammar", "%s", err);
        return 1;
    }
    fwrite(text, 1, len, stdout);
    free(text);
    return 0;
}

/* Test k (a --test text or a --test-file's bytes) against the grammar,
 * with how far it got when it does not match; 0 when it matches, else 1. */
static int grammar_test(const grammar_job *j, size_t k) {
    const char *test = j->a->tests.v[k];
    const bool is_file = strcmp(j->a->tests.flag[k], "--test-file") == 0;
    char err[GROK_ERR_SIZE];
    size_t len = strlen(test);
    char *text = NULL;
    const char *t = test;
    if (is_file) {
        if (!(text = grok_read_file(test, &len, err, sizeof err))) {
            cli_error("grammar", "%s", err);
            return 1;
        }
        t = text;
    }
    size_t at = 0;
    bool ok = grok_grammar_accepts(j->g, t, len, &at);
    const char *name = is_file ? test : "text";
    if (ok) {
        printf("%s: matches\n", name);
    } else {
        size_t line, col;
        grok_utf8_line_col(t, at, &line, &col);
        if (at == len)
            printf("%s: does not match: the text ends before the grammar does (byte %zu, %zu:%zu)\n", name,
                   at, line, col);
        else
            printf("%s: does not match: the grammar reads %zu of %zu bytes, stopping at %zu:%zu\n", name, at,
                   len, line, col);
    }
    free(text);
    return ok ? 0 : 1;
}

/* The grammar read (and printed, or its rules counted) and every test run;
 * 0 when it reads and all match, else 1. */
static int grammar_run(grammar_job *j) {
    const grammar_args *a = j->a;
    if (grammar_load_vocab(j)) return 1;
    if (a->print && grammar_print(j)) return 1;
    if (!(j->g = cli_load_grammar("grammar", j->gbnf, a->schema, j->v))) return 1;
    if (!a->print)
        printf("%s: %lld rules\n", j->gbnf ? j->gbnf : a->schema, (long long)grok_grammar_n_rules(j->g));
    int rc = 0;
    for (size_t k = 0; k < a->tests.n; k++) rc |= grammar_test(j, k);
    return rc;
}

static void grammar_free(grammar_job *j) {
    grok_grammar_free(j->g);
    grok_grammar_vocab_free(j->v);
    grok_tokenizer_free(j->tok);
}

int cmd_grammar(int argc, char **argv) {
    grammar_args a = {0};
    grammar_job j = {.a = &a};
    int rc = grammar_parse(argc, argv, &a, &j.gbnf);
    if (rc >= 0) return rc;
    if (!j.gbnf == !a.schema) {
        cli_error("grammar", "give exactly one of FILE.gbnf or --json-schema FILE (see grok grammar --help)");
        return 2;
    }
    rc = grammar_run(&j);
    grammar_free(&j);
    return rc;
}
