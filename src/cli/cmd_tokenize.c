/*
 * cmd_tokenize.c - `grok tokenize` and `grok detokenize`: text to ids and
 * back with the tokenizer of a GGUF file (only its tokenizer.ggml.* keys
 * are read, no weights) or of a SentencePiece .model file. Their output
 * formats are relied on by scripts, so they are fixed and documented in
 * the --help texts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"

typedef struct {
    const char *model, *spm, *file;
    bool ids_only, raw;
} tok_args;

static const cli_opt TOKENIZER_OPTS[] = {
    CLI_OPT_STR(
        tok_args, model, "--model", "-m", "FILE",
        "the tokenizer of a GGUF file's tokenizer.ggml.* keys (no weights are read); tokenize adds BOS/EOS "
        "where the file's add_bos/add_eos say",
        ""),
    CLI_OPT_STR(tok_args, spm, "--tokenizer", NULL, "FILE", "a SentencePiece .model file (adds no BOS/EOS)",
                ""),
};
static const cli_opt TOKENIZE_OPTS[] = {
    CLI_OPT_STR(tok_args, file, "--file", "-f", "FILE", "tokenize the bytes of FILE", ""),
    CLI_OPT_FLAG(tok_args, ids_only, "--ids", NULL,
                 "print only the ids, separated by single spaces, on one line"),
};
static const cli_opt DETOKENIZE_OPTS[] = {
    CLI_OPT_FLAG(tok_args, raw, "--raw", NULL, "print the text exactly, without the final newline"),
};

static void print_piece(FILE *out, const char *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\\')
            fputs("\\\\", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\r')
            fputs("\\r", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02X", c);
        else
            fputc(c, out);
    }
}

int cmd_tokenize(int argc, char **argv) {
    tok_args a = {0};
    cli_cmd cmd = {.name = "tokenize",
                   .usage = "(-m MODEL | --tokenizer FILE) [--ids] (TEXT | -f FILE)",
                   .about = "Encodes TEXT (or the exact bytes of FILE, nothing stripped) with the model's\n"
                            "SentencePiece tokenizer, as sentencepiece 0.1.97 does.",
                   .notes = "Default output: one token per line, `ID<TAB>PIECE`, where PIECE is the\n"
                            "vocabulary piece with backslash, tab, newline, carriage return and other\n"
                            "control bytes written as \\\\, \\t, \\n, \\r and \\xNN.",
                   .max_pos = CLI_ANY_POS};
    CLI_ADD_TABLE(&cmd, "Tokenizer", TOKENIZER_OPTS, &a);
    CLI_ADD_TABLE(&cmd, "Input and output", TOKENIZE_OPTS, &a);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *model = a.model, *spm = a.spm, *file = a.file, *text = cmd.n_pos ? cmd.pos[0] : NULL;
    const bool ids_only = a.ids_only;
    if (cmd.n_pos > 1) {
        cli_error("tokenize", "more than one TEXT argument ('%s'); quote the text", cmd.pos[1]);
        return 2;
    }
    if (!text == !file) {
        cli_error("tokenize", "give exactly one of TEXT or -f FILE (see grok tokenize --help)");
        return 2;
    }
    char *data = NULL;
    size_t len;
    if (file) {
        char err[GROK_ERR_SIZE];
        data = grok_read_file(file, &len, err, sizeof err);
        if (!data) {
            cli_error("tokenize", "%s", err);
            return 1;
        }
        text = data;
    } else {
        len = strlen(text);
    }
    grok_tokenizer *t = cli_load_tokenizer("tokenize", model, spm);
    if (!t) {
        free(data);
        return 1;
    }
    size_t n;
    int32_t *ids = grok_tokenize(t, text, len, true, &n);
    free(data);
    if (!ids) {
        cli_error("tokenize", "out of memory");
        grok_tokenizer_free(t);
        return 1;
    }
    /* Large outputs: build lines in a buffer so stdio is not the bottleneck. */
    static char buf[1 << 16];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    for (size_t i = 0; i < n; i++) {
        if (ids_only) {
            printf(i ? " %d" : "%d", (int)ids[i]);
        } else {
            size_t pl;
            const char *p = grok_tokenizer_piece(t, ids[i], &pl);
            printf("%d\t", (int)ids[i]);
            print_piece(stdout, p, pl);
            fputc('\n', stdout);
        }
    }
    if (ids_only) fputc('\n', stdout);
    int rc = fflush(stdout) == 0 ? 0 : 1;
    setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
    free(ids);
    grok_tokenizer_free(t);
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    tok_args a = {0};
    cli_cmd cmd = {.name = "detokenize",
                   .usage = "(-m MODEL.gguf | --tokenizer FILE.model) [--raw] IDS...",
                   .about = "Decodes token ids to text, as sentencepiece 0.1.97's DecodeIds does. IDS are\n"
                            "separate arguments or lists separated by commas or spaces (\"1,2,3\").",
                   .notes = "Prints the text followed by a newline. An id outside the vocabulary is an\n"
                            "error (exit status 2).",
                   .max_pos = CLI_ANY_POS};
    CLI_ADD_TABLE(&cmd, "Tokenizer", TOKENIZER_OPTS, &a);
    CLI_ADD_TABLE(&cmd, "Output", DETOKENIZE_OPTS, &a);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    const char *model = a.model, *spm = a.spm;
    const bool raw = a.raw;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 2;
    for (int i = 0; i < cmd.n_pos; i++) {
        char err[GROK_ERR_SIZE];
        int32_t *more;
        size_t m;
        if (!cli_parse_ids(cmd.pos[i], &more, &m, err, sizeof err)) {
            cli_error("detokenize", "%s", err);
            free(ids);
            return 2;
        }
        int32_t *grown = realloc(ids, (n + m + 1) * sizeof *ids);
        if (!grown) {
            free(more);
            free(ids);
            cli_error("detokenize", "out of memory");
            return 1;
        }
        ids = grown;
        if (m) memcpy(ids + n, more, m * sizeof *ids);
        n += m;
        free(more);
    }
    grok_tokenizer *t = cli_load_tokenizer("detokenize", model, spm);
    if (!t) {
        free(ids);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= grok_tokenizer_n_vocab(t)) {
            cli_error("detokenize", "id %d (the %zu. id given) is outside the vocabulary [0, %lld)",
                      (int)ids[i], i + 1, (long long)grok_tokenizer_n_vocab(t));
            goto done;
        }
    }
    size_t len;
    char *text = grok_detokenize(t, ids, n, &len);
    if (!text) {
        cli_error("detokenize", "out of memory");
        rc = 1;
        goto done;
    }
    fwrite(text, 1, len, stdout);
    if (!raw) fputc('\n', stdout);
    free(text);
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(ids);
    grok_tokenizer_free(t);
    return rc;
}
