/*
 * main.c - the grok command: dispatches to one subcommand per file
 * (cmd_*.c). Every subcommand answers --help and reports bad flags and
 * bad input with one line naming what is wrong, exit status 2 for usage
 * errors and 1 for failures.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"run", cmd_run, "generate text from a prompt"},
    {"info", cmd_info, "show a model file's metadata, hyperparameters and tensors"},
    {"logits", cmd_logits, "write the logits of every position for given token ids"},
    {"new", cmd_new, "write a randomly initialised Grok-architecture model"},
    {"tokenize", cmd_tokenize, "text to token ids or pieces"},
    {"detokenize", cmd_detokenize, "token ids to text"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with continuous batching"},
};

static void usage(FILE *out) {
    fprintf(out,
            "grok %s - Grok-1 and Grok-architecture models in C\n\n"
            "usage: grok COMMAND [ARGS]   (grok COMMAND --help for each)\n\ncommands:\n",
            GROK_VERSION);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-11s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "  help        this text\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "help") == 0 || cli_is_help(argv[1]) ||
        strcmp(argv[1], "--version") == 0) {
        if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
            printf("grok %s\n", GROK_VERSION);
            return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
                if (strcmp(argv[2], COMMANDS[i].name) == 0) {
                    char help[] = "--help";
                    char *a[] = {argv[2], help, NULL};
                    return COMMANDS[i].fn(2, a);
                }
        }
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "grok: unknown command '%s' (see grok help)\n", argv[1]);
    return 2;
}
