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

int cmd_grammar(int argc, char **argv) {
    grammar_args a = {0};
    cli_cmd cmd = {.name = "grammar",
                   .usage = "(FILE.gbnf | --json-schema FILE) [options]",
                   .about = "Reads a grammar (GBNF, llama.cpp's format) or a JSON Schema and reports any\n"
                            "error with its place (FILE:LINE:COLUMN, or the schema's JSON pointer).",
                   .notes = "Exit status: 0 when the grammar reads and every test matches, 1 when a file is\n"
                            "bad or a test does not match, 2 for bad flags.",
                   .max_pos = 1};
    CLI_ADD_TABLE(&cmd, "Options", GRAMMAR_OPTS, &a);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *gbnf = cmd.n_pos ? cmd.pos[0] : NULL, *schema = a.schema, *model = a.model, *spm = a.spm;
    const char *const *tests = a.tests.v;
    bool test_is_file[CLI_MAX_REPEAT];
    const int n_tests = (int)a.tests.n;
    for (int k = 0; k < n_tests; k++) test_is_file[k] = strcmp(a.tests.flag[k], "--test-file") == 0;
    const bool print = a.print;
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
