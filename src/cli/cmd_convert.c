/*
 * cmd_convert.c - `grok convert`: the official Grok-1 checkpoint (ckpt-0,
 * pickle files) to GGUF. Flags name the hyperparameters the files do not
 * hold (defaults are Grok-1's); shapes give the rest. Shows a progress bar
 * with throughput and ETA when stderr is a terminal, prints a summary, and
 * never overwrites an existing output without --force. Ctrl-C stops
 * cleanly: the temporary output is removed.
 */
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "convert/convert.h"

typedef struct {
    grok_convert_params p;
    int type, embd_type; /* CONVERT_TYPES */
    int64_t split_max_size, window, threads;
    bool force;
} convert_args;

static const char *const CONVERT_TYPES[] = {"q8_0", "bf16", "f16", "f32", NULL};
#define P(f) p.f
static const cli_opt CONVERT_OPTS[] = {
    CLI_OPT_STR(convert_args, P(tokenizer), "--tokenizer", NULL, "FILE",
                "the SentencePiece model (tokenizer.model)", ""),
    CLI_OPT_STR(convert_args, P(out_path), "--output", "-o", "FILE", "the output GGUF (written atomically)",
                ""),
    CLI_OPT_ENUM(convert_args, type, "--type", NULL, CONVERT_TYPES,
                 "weight matrices (q8_0 keeps the official int8 values and scales)", NULL),
    CLI_OPT_ENUM(convert_args, embd_type, "--embd-type", NULL, CONVERT_TYPES, "the token embedding", NULL),
    CLI_OPT_SIZE(convert_args, split_max_size, "--split-max-size", NULL, "SIZE",
                 "split the output into files of SIZE", "one file"),
    CLI_OPT_FLAG(convert_args, force, "--force", "-f", "overwrite an existing output"),
    CLI_OPT_STR(convert_args, P(name), "--name", NULL, "NAME", "general.name", NULL),
    CLI_OPT_SIZE(convert_args, window, "--window", NULL, "SIZE", "checkpoint bytes held in memory at once",
                 "256M"),
    CLI_OPT_I64(convert_args, threads, "--threads", "-t", "N", 0, 1024,
                "converting threads; 0 = one per core", NULL),
};
static const cli_opt HPARAM_OPTS[] = {
    CLI_OPT_I64(convert_args, P(n_heads), "--heads", NULL, "N", 1, 1 << 20, "query heads", NULL),
    CLI_OPT_I64(convert_args, P(n_kv_heads), "--kv-heads", NULL, "N", 1, 1 << 20, "key/value heads", NULL),
    CLI_OPT_I64(convert_args, P(head_dim), "--head-dim", NULL, "D", 1, 1 << 20, "head size",
                "the query's outputs / --heads, 6144 / 48 = 128"),
    CLI_OPT_I64(convert_args, P(n_ctx), "--ctx", NULL, "N", 1, INT32_MAX, "context length", NULL),
    CLI_OPT_I64(convert_args, P(n_experts_used), "--experts-used", NULL, "N", 1, 1 << 20,
                "experts used per token", NULL),
    CLI_OPT_F32(convert_args, P(rope_base), "--rope-base", NULL, "B", 1e-6, 1e30, "RoPE base", NULL),
    CLI_OPT_F32(convert_args, P(norm_eps), "--eps", NULL, "E", 0, 1, "RMSNorm epsilon", NULL),
    CLI_OPT_F32(convert_args, P(embedding_scale), "--embedding-scale", NULL, "S", -1e30, 1e30,
                "embedding multiplier", "78.38367176906169"),
    CLI_OPT_F32(convert_args, P(logit_scale), "--logit-scale", NULL, "S", -1e30, 1e30, "output multiplier",
                "0.5773502691896257"),
    CLI_OPT_F32(convert_args, P(attn_scale), "--attn-scale", NULL, "S", -1e30, 1e30, "attention multiplier",
                "0.08838834764831845"),
    CLI_OPT_F32(convert_args, P(softcap), "--softcap", NULL, "C", 0, 1e30, "attention logit soft cap", NULL),
};
#undef P

static void on_progress(void *ud, uint64_t done, uint64_t total) {
    cli_bar_update(ud, (double)done, (double)total, NULL);
}

static void on_note(void *ud, const char *msg) {
    (void)ud;
    fprintf(stderr, "grok convert: %s\n", msg);
}

static volatile sig_atomic_t g_cancel;
static void on_signal(int sig) {
    (void)sig;
    g_cancel = 1;
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Existing outputs: the file itself and, when splitting, any
 * NAME-00001-of-N.gguf the split would replace. */
static const char *existing_output(const char *out, bool split, char *buf, size_t n) {
    if (exists(out)) return out;
    if (!split) return NULL;
    size_t len = strlen(out);
    size_t stem = len > 5 && !strcmp(out + len - 5, ".gguf") ? len - 5 : len;
    char pat[4096];
    snprintf(pat, sizeof pat, "%.*s-00001-of-*.gguf", (int)stem, out);
    glob_t g;
    const char *found = NULL;
    if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        snprintf(buf, n, "%s", g.gl_pathv[0]);
        found = buf;
    }
    globfree(&g);
    return found;
}

int cmd_convert(int argc, char **argv) {
    convert_args a = {.p = grok_convert_default_params()};
    for (int k = 0; CONVERT_TYPES[k]; k++) { /* the enums show the library's defaults */
        if (grok_type_from_name(CONVERT_TYPES[k]) == (int)a.p.type) a.type = k;
        if (grok_type_from_name(CONVERT_TYPES[k]) == (int)a.p.embd_type) a.embd_type = k;
    }
    cli_cmd cmd = {.name = "convert",
                   .usage = "CKPT_DIR --tokenizer tokenizer.model -o OUT.gguf [options]",
                   .about = "Converts the official Grok-1 checkpoint (the ckpt-0 directory of\n"
                            "tensorNNNNN_000 pickle files) to GGUF, streaming in bounded memory.\n"
                            "q8_0 (the default) is lossless: the official int8 values and scales are\n"
                            "kept as they are.",
                   .max_pos = 1};
    CLI_ADD_TABLE(&cmd, "Options", CONVERT_OPTS, &a);
    CLI_ADD_TABLE(&cmd, "Hyperparameters the checkpoint does not store (Grok-1's by default)", HPARAM_OPTS,
                  &a);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    grok_convert_params p = a.p;
    p.ckpt_dir = cmd.n_pos ? cmd.pos[0] : NULL;
    p.type = (grok_type)grok_type_from_name(CONVERT_TYPES[a.type]);
    p.embd_type = (grok_type)grok_type_from_name(CONVERT_TYPES[a.embd_type]);
    if (cli_seen(&cmd, "--split-max-size")) p.split_max_size = (uint64_t)a.split_max_size;
    if (cli_seen(&cmd, "--window")) p.window = (uint64_t)a.window;
    const int64_t threads = a.threads;
    const bool force = a.force;
    if (!p.ckpt_dir || !p.tokenizer || !p.out_path) {
        cli_error("convert", "CKPT_DIR, --tokenizer FILE and -o OUT.gguf are required "
                             "(see grok convert --help)");
        return 2;
    }
    char found[4096];
    const char *ex = existing_output(p.out_path, p.split_max_size > 0, found, sizeof found);
    if (ex && !force) {
        cli_error("convert", "%s exists (use --force to overwrite)", ex);
        return 1;
    }

    cli_bar b;
    cli_bar_init(&b);
    p.progress = on_progress;
    p.note = on_note;
    p.progress_ud = &b;
    p.cancel = &g_cancel;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    grok_convert_stats st;
    char err[GROK_ERR_SIZE];
    p.n_threads = (int)threads;
    int rc = grok_convert(&p, &st, err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    cli_bar_end(&b);
    if (rc < 0) {
        cli_error("convert", "%s", err);
        return 1;
    }
    double el = grok_now() - b.t0;
    char in_s[32], out_s[32], rate[32];
    cli_human_bytes((double)st.bytes_in, in_s, sizeof in_s);
    cli_human_bytes((double)st.bytes_out, out_s, sizeof out_s);
    cli_human_bytes(el > 0 ? (double)st.bytes_in / el : 0, rate, sizeof rate);
    fprintf(stderr,
            "grok convert: %" PRId64 " files -> %" PRId64 " tensors (%" PRId64 " layers, d_model %" PRId64
            ", vocab %" PRId64 ", %" PRId64 " experts of ffn %" PRId64
            "), read %s, wrote %s in %.2f s (%s/s) -> %s\n",
            st.n_files, st.n_tensors, st.n_layers, st.d_model, st.n_vocab, st.n_experts, st.n_ff, in_s, out_s,
            el, rate, p.out_path);
    if (p.type == GROK_TYPE_Q8_0)
        fprintf(stderr,
                "grok convert: q8_0: %" PRId64 " blocks from official int8 values, %" PRId64
                " not exact (scale outside f16: %" PRId64 ", block across scale groups: %" PRId64
                ") and requantized\n",
                st.q8_blocks, st.q8_inexact + st.q8_straddle, st.q8_inexact, st.q8_straddle);
    return 0;
}
