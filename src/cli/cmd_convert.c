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
#include "convert/convert.h"

static void usage(FILE *out) {
    fprintf(out, "usage: grok convert CKPT_DIR --tokenizer tokenizer.model -o OUT.gguf [options]\n\n"
                 "Converts the official Grok-1 checkpoint (the ckpt-0 directory of\n"
                 "tensorNNNNN_000 pickle files) to GGUF, streaming in bounded memory.\n"
                 "q8_0 (the default) is lossless: the official int8 values and scales are\n"
                 "kept as they are.\n\n"
                 "  --tokenizer FILE        SentencePiece model (tokenizer.model)\n"
                 "  -o, --output FILE       output GGUF (written atomically)\n"
                 "  --type T                weight matrices: q8_0 (default), bf16, f16, f32\n"
                 "  --embd-type T           token embedding: f32 (default), bf16, f16, q8_0\n"
                 "  --split-max-size SIZE   split output (bytes, or with K/M/G/T suffix)\n"
                 "  --force                 overwrite an existing output\n"
                 "  --name NAME             general.name (Grok-1)\n"
                 "  --window SIZE           checkpoint bytes held in memory at once (256M)\n"
                 "  -t, --threads N         converting threads (default: one per core)\n"
                 "hyperparameters not stored in the checkpoint (Grok-1's defaults):\n"
                 "  --heads 48 --kv-heads 8 --ctx 8192 --experts-used 2\n"
                 "  --head-dim D (default: the query's outputs / --heads, 6144 / 48 = 128)\n"
                 "  --rope-base 10000 --eps 1e-5 --embedding-scale 78.38367176906169\n"
                 "  --logit-scale 0.5773502691896257 --attn-scale 0.08838834764831845\n"
                 "  --softcap 30\n");
}

/* "123", "50G", "500M", "1.5G" (powers of 1024) */
static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v > 0)) return false;
    double mul = 1;
    if (*end) {
        const char *u = "KMGT";
        const char *k = strchr(u, *end == 'k' ? 'K' : *end);
        if (!k || !*k) return false;
        for (const char *q = u; q <= k; q++) mul *= 1024;
        end++;
        if (*end == 'B' || *end == 'i') end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
        if (*end) return false;
    }
    v *= mul;
    if (v >= 1.8e19 || v < 1) return false;
    *out = (uint64_t)v;
    return true;
}

static bool cli_size(char **argv, int argc, int *i, const char *name, uint64_t *out) {
    const char *s;
    if (!cli_str(argv, argc, i, name, NULL, &s)) return false;
    if (!parse_size(s, out)) {
        cli_error("convert", "%s '%s' is not a size (bytes, or a number with K/M/G/T)", name, s);
        exit(2);
    }
    return true;
}

static bool parse_type(const char *flag, const char *s, grok_type *out) {
    int t = grok_type_from_name(s);
    if (t != GROK_TYPE_Q8_0 && t != GROK_TYPE_BF16 && t != GROK_TYPE_F16 && t != GROK_TYPE_F32) {
        cli_error("convert", "%s '%s' is not q8_0, bf16, f16 or f32", flag, s);
        return false;
    }
    *out = (grok_type)t;
    return true;
}

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
    grok_convert_params p = grok_convert_default_params();
    const char *type_s = NULL, *embd_s = NULL;
    int64_t threads = 0; /* 0: one per core */
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_str(argv, argc, &i, "--tokenizer", NULL, &p.tokenizer) ||
            cli_str(argv, argc, &i, "-o", "--output", &p.out_path) ||
            cli_str(argv, argc, &i, "--type", NULL, &type_s) ||
            cli_str(argv, argc, &i, "--embd-type", NULL, &embd_s) ||
            cli_str(argv, argc, &i, "--name", NULL, &p.name) ||
            cli_size(argv, argc, &i, "--split-max-size", &p.split_max_size) ||
            cli_size(argv, argc, &i, "--window", &p.window) ||
            cli_i64(argv, argc, &i, "--threads", "-t", 1, 512, &threads) ||
            cli_i64(argv, argc, &i, "--heads", NULL, 1, 1 << 20, &p.n_heads) ||
            cli_i64(argv, argc, &i, "--kv-heads", NULL, 1, 1 << 20, &p.n_kv_heads) ||
            cli_i64(argv, argc, &i, "--head-dim", NULL, 1, 1 << 20, &p.head_dim) ||
            cli_i64(argv, argc, &i, "--ctx", NULL, 1, INT32_MAX, &p.n_ctx) ||
            cli_i64(argv, argc, &i, "--experts-used", NULL, 1, 1 << 20, &p.n_experts_used) ||
            cli_f32(argv, argc, &i, "--rope-base", NULL, 1e-6, 1e30, &p.rope_base) ||
            cli_f32(argv, argc, &i, "--eps", NULL, 0, 1, &p.norm_eps) ||
            cli_f32(argv, argc, &i, "--embedding-scale", NULL, -1e30, 1e30, &p.embedding_scale) ||
            cli_f32(argv, argc, &i, "--logit-scale", NULL, -1e30, 1e30, &p.logit_scale) ||
            cli_f32(argv, argc, &i, "--attn-scale", NULL, -1e30, 1e30, &p.attn_scale) ||
            cli_f32(argv, argc, &i, "--softcap", NULL, 0, 1e30, &p.softcap))
            continue;
        if (cli_flag(argv, argc, &i, "--force", "-f")) {
            force = true;
            continue;
        }
        if (argv[i][0] == '-' || p.ckpt_dir) return cli_unknown("convert", argv[i]);
        p.ckpt_dir = argv[i];
    }
    if (!p.ckpt_dir || !p.tokenizer || !p.out_path) {
        cli_error("convert", "CKPT_DIR, --tokenizer FILE and -o OUT.gguf are required "
                             "(see grok convert --help)");
        return 2;
    }
    if ((type_s && !parse_type("--type", type_s, &p.type)) ||
        (embd_s && !parse_type("--embd-type", embd_s, &p.embd_type)))
        return 2;
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
