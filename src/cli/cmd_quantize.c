/*
 * cmd_quantize.c - `grok quantize IN OUT TYPE [NTHREADS]`: re-encodes a
 * model's weight matrices as one of llama.cpp's file types
 * (src/model/quantize.c does the work and holds the per-tensor rules).
 * Takes llama-quantize's names, flags and positionals, shows a progress bar
 * when stderr is a terminal, ends with llama-quantize's summary (tensors per
 * type, sizes) and refuses to replace an existing file unless --force is
 * given. Its flags are rows of the options table (cli/options.h); the
 * command is a parse, a validate (positionals, types, combinations) and a
 * run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "model/quantize.h"

typedef struct {
    cli_model_args m; /* --threads only */
    bool dry_run, pure, expert_aware, force, pack;
    const char *output_type, *output_tensor_type, *token_embd_type, *imatrix;
} quantize_args;

#define TYPE_HELP_TAIL "one of the mixes' types: q8_0, q6_K, q4_K, iq4_nl, q2_K, f16, ..."
static const cli_opt QUANTIZE_OPTS[] = {
    CLI_OPT_FLAG(quantize_args, dry_run, "--dry-run", NULL,
                 "print each tensor's type and size (stdout), write nothing (OUT may be left out: IN TYPE)"),
    CLI_OPT_FLAG(quantize_args, pure, "--pure", NULL, "one type (TYPE's) for every matrix: no mix rules"),
    CLI_OPT_STR(quantize_args, output_type, "--output-type", NULL, "T",
                "type of output.weight, " TYPE_HELP_TAIL, "the mix's"),
    CLI_OPT_STR(quantize_args, output_tensor_type, "--output-tensor-type", NULL, "T",
                "llama-quantize's name of --output-type", ""),
    CLI_OPT_STR(quantize_args, token_embd_type, "--token-embedding-type", NULL, "T",
                "type of token_embd.weight, " TYPE_HELP_TAIL, "the mix's"),
    CLI_OPT_STR(quantize_args, imatrix, "--imatrix", NULL, "FILE",
                "importance matrix (grok imatrix or llama-imatrix; GGUF or .dat): the encoders weigh each "
                "value's error by its column's mean squared input",
                ""),
    CLI_OPT_FLAG(quantize_args, expert_aware, "--expert-aware", NULL,
                 "(with --imatrix) give each expert its own type by its router use: rarely used experts "
                 "cheaper, busy ones richer, at the uniform mix's bytes; writes one tensor per expert, which "
                 "llama.cpp cannot read"),
    CLI_OPT_FLAG(quantize_args, force, "--force", NULL, "overwrite OUT if it exists"),
    CLI_OPT_FLAG(quantize_args, pack, "--pack", NULL,
                 "also write OUT.grokpack, the packed layout later runs map instead of packing at start "
                 "(grok pack; docs/memory.md)"),
};
static const char *const QUANTIZE_MODEL_OMIT[] = {"--model",   "--lora", "--lora-scale", "--ctx", "--batch",
                                                  "--kv-type", NULL};

/* What validate makes of the flags and positionals: the run's inputs. */
typedef struct {
    const char *in, *out; /* out: "(dry run)" when --dry-run left it out */
    grok_quantize_params qp;
    const char *imatrix_path;
    int64_t threads;
    bool force, pack;
} quantize_job;

/* --help's paragraph: the prose and the table of mixes, from the library's list. */
static const char *about_text(char *buf, size_t size) {
    size_t n =
        (size_t)snprintf(buf, size, "%s",
                         "Re-encodes the weight matrices of IN as one of llama.cpp's file types (TYPE is\n"
                         "its name, any case, or its number, as llama-quantize takes them; NTHREADS, as\n"
                         "llama-quantize's, is -t's). The mixes give a few sensitive matrices more bits,\n"
                         "with llama.cpp's rules; norms and the router stay f32. Matrices whose rows do\n"
                         "not divide into the type's blocks (256 for the k- and i-quants) get llama.cpp's\n"
                         "fallback (q5_0 for q4_K, iq4_nl for the i-quants, ...). OUT is written\n"
                         "atomically. The mixes marked imatrix are refused without --imatrix, as\n"
                         "llama-quantize refuses them.\n\n");
    for (int i = 0; grok_quant_mix_at(i) && n < size; i++) {
        const grok_quant_mix *m = grok_quant_mix_at(i);
        n += (size_t)snprintf(buf + n, size - n, "  %2d or %-7s %s\n", m->ftype, m->name, m->desc);
    }
    if (n < size)
        snprintf(buf + n, size - n, "%s",
                 "  (Q3_K, Q4_K and Q5_K are Q3_K_M, Q4_K_M and Q5_K_M, as in llama-quantize.) The\n"
                 "  descriptions are for Grok-1's shape (8 experts, 6 query heads per KV head);\n"
                 "  other shapes get llama.cpp's other rules. A tied embedding (no output.weight)\n"
                 "  gets the output head's type. The float types have no mix rules.");
    return buf;
}

typedef struct {
    bool tty;
    double t0;
} progress_state;

static void show_progress(void *ud, int64_t done, int64_t total, const char *name) {
    progress_state *p = ud;
    if (!p->tty) return;
    int width = 30, filled = (int)(width * done / (total ? total : 1));
    fprintf(stderr, "\r[%.*s%*s] %" PRId64 "/%" PRId64 " %-32.32s %.0fs", filled,
            "##############################", width - filled, "", done, total, name, grok_now() - p->t0);
    if (done == total) fputc('\n', stderr);
}

/* --dry-run's table on stdout, one tensor a line: name, type now, type it
 * would get, bytes. */
static void print_plan(void *ud, const char *name, grok_type from, grok_type to, uint64_t bytes) {
    (void)ud;
    printf("%-40s %-8s -> %-8s %12" PRIu64 "\n", name, grok_type_get_traits((uint32_t)from)->name,
           grok_type_get_traits((uint32_t)to)->name, bytes);
}

/* A weight type for --output-type / --token-embedding-type (flag is the
 * row given), or -1 after a message naming the flag and the value. */
static int type_flag(const char *flag, const char *value) {
    int t = grok_type_from_name(value);
    if (t < 0 || grok_llama_ftype((grok_type)t) < 0) {
        cli_error(
            "quantize",
            "%s: '%s' is not a type of llama.cpp's file types (q8_0, q6_K, q4_K, q2_K, iq4_xs, f16, ...)",
            flag, value);
        return -1;
    }
    return t;
}

/* The flags into a, the positionals into cmd: -1 to go on, 0 after --help,
 * 2 after a message. */
static int quantize_parse(cli_cmd *cmd, quantize_args *a, char *about, size_t about_size, int argc,
                          char **argv) {
    *a = (quantize_args){0};
    cli_model_args_init(&a->m);
    *cmd = (cli_cmd){.name = "quantize",
                     .usage = "IN.gguf OUT.gguf TYPE [NTHREADS] [-t N] [options]\n"
                              "       grok quantize --dry-run IN.gguf [OUT.gguf] TYPE [options]",
                     .about = about_text(about, about_size),
                     .notes = "Examples:\n"
                              "  grok quantize f32.gguf q4.gguf Q4_K_M -t 8\n"
                              "  grok imatrix -m f32.gguf -f text.txt -o im.gguf\n"
                              "  grok quantize --imatrix im.gguf f32.gguf iq3.gguf IQ3_XS\n"
                              "  grok quantize --dry-run f32.gguf Q3_K_M        (the plan, on stdout)",
                     .max_pos = 4};
    CLI_ADD_TABLE(cmd, "Options", QUANTIZE_OPTS, a);
    cli_add_group(cmd, "Compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a->m, QUANTIZE_MODEL_OMIT);
    return cli_parse(cmd, argc, argv);
}

/* The positionals and the combinations of flags into j: 0 to go on, 2
 * after a message (a usage mistake), 1 when OUT exists without --force. */
static int quantize_validate(const cli_cmd *cmd, const quantize_args *a, quantize_job *j) {
    memset(j, 0, sizeof *j);
    j->qp.output_type = j->qp.token_embd_type = -1;
    j->qp.dry_run = a->dry_run, j->qp.pure = a->pure, j->qp.expert_aware = a->expert_aware;
    j->threads = a->m.threads, j->force = a->force, j->pack = a->pack;
    const char *pos[4] = {NULL, NULL, NULL, NULL};
    int npos = cmd->n_pos;
    for (int i = 0; i < npos; i++) pos[i] = cmd->pos[i];
    if (a->dry_run && npos == 2) pos[2] = pos[1], pos[1] = NULL, npos = 3; /* IN TYPE */
    if (npos < 3) {
        cli_error("quantize", "IN.gguf OUT.gguf TYPE are required (see grok quantize --help)");
        return 2;
    }
    if (npos == 4) { /* llama-quantize's thread count */
        char *end;
        long long v = strtoll(pos[3], &end, 10);
        if (end == pos[3] || *end || v < 0 || v > 1024) {
            cli_error("quantize", "NTHREADS '%s' is not an integer in [0, 1024]", pos[3]);
            return 2;
        }
        if (cli_seen(cmd, "--threads") && v != a->m.threads) {
            cli_error("quantize", "NTHREADS %s and --threads %" PRId64 " disagree: give one", pos[3],
                      a->m.threads);
            return 2;
        }
        j->threads = (int64_t)v;
    }
    j->in = pos[0], j->out = pos[1];
    if (!(j->qp.mix = grok_quant_mix_find(pos[2]))) {
        char names[512] = "";
        for (int i = 0; grok_quant_mix_at(i); i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     grok_quant_mix_at(i)->name);
        cli_error("quantize", "TYPE '%s' is not one of %s (see grok quantize --help)", pos[2], names);
        return 2;
    }
    if (a->output_type && a->output_tensor_type) {
        cli_error("quantize", "--output-type and --output-tensor-type are one flag: give it once");
        return 2;
    }
    if (a->output_type && (j->qp.output_type = type_flag("--output-type", a->output_type)) < 0) return 2;
    if (a->output_tensor_type &&
        (j->qp.output_type = type_flag("--output-tensor-type", a->output_tensor_type)) < 0)
        return 2;
    if (a->token_embd_type &&
        (j->qp.token_embd_type = type_flag("--token-embedding-type", a->token_embd_type)) < 0)
        return 2;
    if (a->expert_aware && !a->imatrix) {
        cli_error("quantize", "--expert-aware needs --imatrix FILE (the experts' token counts)");
        return 2;
    }
    j->imatrix_path = a->imatrix;
    struct stat st;
    if (a->dry_run) {
        j->qp.plan = print_plan;
        if (!j->out) j->out = "(dry run)";
    } else if (!a->force && stat(j->out, &st) == 0) {
        cli_error("quantize", "%s exists; pass --force to overwrite it", j->out);
        return 1;
    }
    return 0;
}

/* Reads the imatrix, writes OUT (and its pack), prints the summary: 0, or
 * 1 after a message. */
static int quantize_run(quantize_job *j) {
    grok_quantize_params qp = j->qp;
    const char *imatrix_path = j->imatrix_path;
    const char *pos[2] = {j->in, j->out};
    const bool pack = j->pack;
    struct stat st;
    char err[GROK_ERR_SIZE];
    grok_imatrix *im = NULL;
    if (imatrix_path) {
        if (!(im = grok_imatrix_create(0)) || grok_imatrix_load(im, imatrix_path, err, sizeof err)) {
            cli_error("quantize", "%s", im ? err : "out of memory");
            grok_imatrix_free(im);
            return 1;
        }
        qp.imatrix = im, qp.imatrix_path = imatrix_path;
        fprintf(stderr, "grok quantize: imatrix %s: %" PRId64 " entries, %" PRId64 " chunks\n", imatrix_path,
                grok_imatrix_n_entries(im), grok_imatrix_chunk_count(im));
    }
    grok_threadpool *pool = grok_threadpool_create((int)j->threads);
    progress_state ps = {isatty(2) != 0, grok_now()};
    grok_quantize_stats qs;
    int rc = grok_model_quantize(pos[0], pos[1], &qp, pool, show_progress, &ps, &qs, err, sizeof err);
    if (!rc && pack) { /* the packed layout of what was just written, beside it */
        grok_model *m = grok_model_load(pos[1], err, sizeof err);
        rc = !m || grok_model_write_packfile(m, NULL, pool, err, sizeof err);
        grok_model_free(m);
    }
    grok_threadpool_free(pool);
    grok_imatrix_free(im);
    if (rc) {
        cli_error("quantize", "%s", err);
        return 1;
    }
    if (qp.dry_run) {
        const double mib = 1024.0 * 1024.0, n = qs.n_elements ? (double)qs.n_elements : 1.0;
        fprintf(stderr,
                "grok quantize: dry run, %s as %s%s: weights %.2f MiB -> %.2f MiB (%.2f bits/weight)\n",
                pos[0], qp.mix->name, qp.pure ? " --pure" : "", (double)qs.bytes_in / mib,
                (double)qs.bytes_out / mib, 8.0 * (double)qs.bytes_out / n);
        return 0;
    }
    /* llama-quantize's closing lines in one: what each type got, the
     * weights' size before and after, and the file's */
    char counts[512] = "";
    for (int t = 0; t < GROK_TYPE_COUNT; t++)
        if (qs.n_of_type[t])
            snprintf(counts + strlen(counts), sizeof counts - strlen(counts), "%s%" PRId64 " %s",
                     counts[0] ? ", " : "", qs.n_of_type[t], grok_type_get_traits((uint32_t)t)->name);
    const double mib = 1024.0 * 1024.0, n = qs.n_elements ? (double)qs.n_elements : 1.0;
    fprintf(stderr,
            "grok quantize: wrote %s as %s%s (file type %d) in %.1f s: %" PRId64 " tensors (%s); "
            "weights %.2f MiB (%.2f bits/weight) -> %.2f MiB (%.2f bits/weight); file %.2f MiB",
            pos[1], qp.mix->name, qp.pure ? " --pure" : "", qp.mix->ftype, grok_now() - ps.t0, qs.n_tensors,
            counts, (double)qs.bytes_in / mib, 8.0 * (double)qs.bytes_in / n, (double)qs.bytes_out / mib,
            8.0 * (double)qs.bytes_out / n, stat(pos[1], &st) == 0 ? (double)st.st_size / mib : 0.0);
    if (qs.n_fallback)
        fprintf(stderr, "; %" PRId64 " of them in another type: rows not a multiple of its block",
                qs.n_fallback);
    if (pack) fprintf(stderr, "; and %s.grokpack", pos[1]);
    if (imatrix_path)
        fprintf(stderr,
                "; %" PRId64 " matrices weighed by the imatrix, %" PRId64
                " of a type that takes it not in it",
                qs.n_imatrix, qs.n_imatrix_missing);
    fputc('\n', stderr);
    return 0;
}

int cmd_quantize(int argc, char **argv) {
    cli_cmd cmd;
    quantize_args a;
    char about[8192];
    int rc = quantize_parse(&cmd, &a, about, sizeof about, argc, argv);
    if (rc >= 0) return rc;
    quantize_job j;
    if ((rc = quantize_validate(&cmd, &a, &j))) return rc;
    return quantize_run(&j);
}
