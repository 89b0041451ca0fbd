/*
 * main.c - the grok command: dispatches to one subcommand per file
 * (cmd_*.c). Every subcommand answers --help and reports bad flags and
 * bad input with one line naming what is wrong, exit status 2 for usage
 * errors and 1 for failures. Under mpirun, MPI starts and ends here (the
 * --mpi-* flags are taken out before the subcommand sees argv), and only
 * the commands that split the model across ranks may run.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dist/dist.h"

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
    {"convert", cmd_convert, "the official Grok-1 checkpoint to GGUF"},
    {"bench", cmd_bench, "measure speed, memory and bandwidth efficiency"},
    {"quantize", cmd_quantize, "re-encode a model's weights (q8_0, q6_K..q4_K, q4_0, f16, bf16)"},
    {"perplexity", cmd_perplexity, "perplexity on a text; KL divergence against a base model"},
    {"imatrix", cmd_imatrix, "importance matrix of a model over a text (llama-imatrix's), for quantize"},
    {"plan", cmd_plan, "placement, memory and speed of a model across MPI ranks"},
    {"train", cmd_train, "train a Grok-architecture model on text (or evaluate one)"},
    {"merge", cmd_merge, "fold a LoRA adapter into its base model"},
    {"grammar", cmd_grammar, "check a GBNF grammar or JSON Schema, test texts against it"},
    {"trace", cmd_trace, "what the MoE router does with every token: statistics, JSON, pictures"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with continuous batching"},
    {"pack", cmd_pack, "write the packed layout beside a model, so starts map it instead of packing"},
};

/* Commands that run across the ranks of an mpirun job: the model split
 * over them, or (train --lora) the batch. */
static bool distributed(const char *name) {
    return strcmp(name, "run") == 0 || strcmp(name, "logits") == 0 || strcmp(name, "bench") == 0 ||
           strcmp(name, "serve") == 0 || strcmp(name, "train") == 0;
}

/* The watchdog's verdict: a collective stopped making progress. */
static void on_stall(const char *msg) {
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    _exit(1);
}

static void usage(FILE *out) {
    fprintf(out,
            "grok %s - Grok-1 and Grok-architecture models in C\n\n"
            "usage: grok COMMAND [ARGS]   (grok COMMAND --help for each)\n\ncommands:\n",
            GROK_VERSION);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-11s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "  help        this text\n\n"
                 "Under mpirun (run, logits, bench, serve), these flags go with the command's own\n"
                 "(train --lora splits each batch over the ranks instead of the model):\n"
                 "  --mpi-split X     ffn (default: a slice of every expert per rank), experts\n"
                 "                    (whole experts per rank) or layers (a pipeline of layers)\n"
                 "  --mpi-timeout S   end the job when a collective stalls S seconds (300; 0 = never)\n"
                 "  --mpi-stats       rank 0 prints each rank's share, memory and traffic\n\n");
    cli_memory_help(out);
    fprintf(out, "\nEnvironment:\n"
                 "  GROK_KERNELS=fast|exact|reference   8-bit activations (default), f32, or scalar\n"
                 "  GROK_ISA=avx2|scalar                cap the instruction set the kernels use\n"
                 "  GROK_PACK=0                         keep weights in the file's layout (no packed\n"
                 "                                      copy of q8_0/q4_0/k-quant rows at start-up)\n");
}

static int dispatch(int argc, char **argv) {
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
        if (strcmp(argv[1], COMMANDS[i].name) == 0) {
            if (grok_dist_size() > 1 && !distributed(argv[1])) {
                fprintf(stderr,
                        "grok %s: does not run across MPI ranks (only run, logits, bench, serve and train "
                        "--lora do); "
                        "start it without mpirun\n",
                        argv[1]);
                return 2;
            }
            return COMMANDS[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "grok: unknown command '%s' (see grok help)\n", argv[1]);
    return 2;
}

/* The library's notices (the memory plan): on stderr, rank 0's only. */
static void log_line(void *ud, const char *line) {
    (void)ud;
    if (grok_dist_rank() == 0) fprintf(stderr, "grok: %s\n", line);
}

int main(int argc, char **argv) {
    char err[GROK_ERR_SIZE];
    if (grok_dist_init(&argc, &argv, on_stall, err, sizeof err)) {
        fprintf(stderr, "grok: %s\n", err);
        return 2;
    }
    grok_set_log(log_line, NULL);
    if (cli_take_memory_flags(&argc, argv)) {
        grok_dist_finalize(2);
        return 2;
    }
    int rc = dispatch(argc, argv);
    grok_dist_finalize(rc);
    return rc;
}
