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
#include "util/utf8.h"

#define MAX_TESTS 64

static void usage(FILE *out) {
    fprintf(out, "usage: grok grammar (FILE.gbnf | --json-schema FILE) [options]\n\n"
                 "Reads a grammar (GBNF, llama.cpp's format) or a JSON Schema and reports any error\n"
                 "with its place (FILE:LINE:COLUMN, or the schema's JSON pointer).\n\n"
                 "  --json-schema FILE   a JSON Schema instead of GBNF\n"
                 "  --print              print the grammar's GBNF (a schema's converted grammar)\n"
                 "  --test TEXT          does the grammar match all of TEXT? (repeatable)\n"
                 "  --test-file FILE     the same for the bytes of FILE (repeatable)\n"
                 "  -m MODEL             the vocabulary of a GGUF model (for tokens written as <text>)\n"
                 "  --tokenizer FILE     the vocabulary of a SentencePiece .model file\n\n"
                 "Exit status: 0 when the grammar reads and every test matches, 1 when a file is bad\n"
                 "or a test does not match, 2 for bad flags.\n");
}

int cmd_grammar(int argc, char **argv) {
    const char *gbnf = NULL, *schema = NULL, *model = NULL, *spm = NULL;
    const char *tests[MAX_TESTS];
    bool test_is_file[MAX_TESTS];
    int n_tests = 0;
    bool print = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        const char *t;
        bool is_file = false;
        if (cli_str(argv, argc, &i, "--test", NULL, &t) ||
            (is_file = cli_str(argv, argc, &i, "--test-file", NULL, &t))) {
            if (n_tests == MAX_TESTS) {
                cli_error("grammar", "at most %d --test and --test-file", MAX_TESTS);
                return 2;
            }
            test_is_file[n_tests] = is_file;
            tests[n_tests++] = t;
            continue;
        }
        if (cli_flag(argv, argc, &i, "--print", NULL)) {
            print = true;
            continue;
        }
        if (cli_str(argv, argc, &i, "--json-schema", NULL, &schema) ||
            cli_str(argv, argc, &i, "-m", "--model", &model) ||
            cli_str(argv, argc, &i, "--tokenizer", NULL, &spm))
            continue;
        if (argv[i][0] != '-' && !gbnf) {
            gbnf = argv[i];
            continue;
        }
        return cli_unknown("grammar", argv[i]);
    }
    if (!gbnf == !schema) {
        cli_error("grammar", "give exactly one of FILE.gbnf or --json-schema FILE (see grok grammar --help)");
        return 2;
    }
    int rc = 1;
    grok_tokenizer *tok = NULL;
    grok_grammar_vocab *v = NULL;
    grok_grammar *g = NULL;
    char err[GROK_ERR_SIZE];
    if (model || spm) {
        if (!(tok = cli_load_tokenizer("grammar", model, spm))) goto done;
        if (!(v = grok_grammar_vocab_create(tok, err, sizeof err))) {
            cli_error("grammar", "%s", err);
            goto done;
        }
    }
    if (print && schema) {
        size_t len;
        char *text = grok_read_file(schema, &len, err, sizeof err);
        char *out = text ? grok_json_schema_to_gbnf(text, len, err, sizeof err) : NULL;
        free(text);
        if (!out) {
            cli_error("grammar", text ? "%s: %s" : "%s%s", text ? schema : "", err);
            goto done;
        }
        fputs(out, stdout);
        free(out);
    } else if (print) {
        size_t len;
        char *text = grok_read_file(gbnf, &len, err, sizeof err);
        if (!text) {
            cli_error("grammar", "%s", err);
            goto done;
        }
        fwrite(text, 1, len, stdout);
        free(text);
    }
    if (!(g = cli_load_grammar("grammar", gbnf, schema, v))) goto done;
    if (!print) printf("%s: %lld rules\n", gbnf ? gbnf : schema, (long long)grok_grammar_n_rules(g));
    rc = 0;
    for (int k = 0; k < n_tests; k++) {
        size_t len = strlen(tests[k]);
        char *text = NULL;
        const char *t = tests[k];
        if (test_is_file[k]) {
            if (!(text = grok_read_file(tests[k], &len, err, sizeof err))) {
                cli_error("grammar", "%s", err);
                rc = 1;
                continue;
            }
            t = text;
        }
        size_t at = 0;
        bool ok = grok_grammar_accepts(g, t, len, &at);
        const char *name = test_is_file[k] ? tests[k] : "text";
        if (ok) {
            printf("%s: matches\n", name);
        } else {
            size_t line, col;
            grok_utf8_line_col(t, at, &line, &col);
            if (at == len)
                printf("%s: does not match: the text ends before the grammar does (byte %zu, %zu:%zu)\n",
                       name, at, line, col);
            else
                printf("%s: does not match: the grammar reads %zu of %zu bytes, stopping at %zu:%zu\n", name,
                       at, len, line, col);
            rc = 1;
        }
        free(text);
    }
done:
    grok_grammar_free(g);
    grok_grammar_vocab_free(v);
    grok_tokenizer_free(tok);
    return rc;
}
