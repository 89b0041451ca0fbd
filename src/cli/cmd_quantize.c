/*
 * cmd_quantize.c - `grok quantize IN OUT TYPE`: re-encodes a model's
 * weight matrices as one of llama.cpp's file types (src/model/quantize.c
 * does the work and holds the per-tensor rules). Takes llama-quantize's
 * names and flags, shows a progress bar when stderr is a terminal, ends
 * with llama-quantize's summary (tensors per type, sizes) and refuses to
 * replace an existing file unless --force is given.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/quantize.h"

static void usage(FILE *out) {
    fprintf(out, "usage: grok quantize IN.gguf OUT.gguf TYPE [-t N] [options]\n\n"
                 "Re-encodes the weight matrices of IN as one of llama.cpp's file types (TYPE is\n"
                 "its name, any case, or its number, as llama-quantize takes them). The mixes give\n"
                 "a few sensitive matrices more bits, with llama.cpp's rules; norms and the router\n"
                 "stay f32. Matrices whose rows do not divide into the type's blocks (256 for the\n"
                 "k- and i-quants) get llama.cpp's fallback (q5_0 for q4_K, iq4_nl for the\n"
                 "i-quants, ...). OUT is written atomically. The mixes marked imatrix are refused\n"
                 "without --imatrix, as llama-quantize refuses them.\n\n");
    for (int i = 0; grok_quant_mix_at(i); i++) {
        const grok_quant_mix *m = grok_quant_mix_at(i);
        fprintf(out, "  %2d or %-7s %s\n", m->ftype, m->name, m->desc);
    }
    fprintf(out, "  (Q3_K, Q4_K and Q5_K are Q3_K_M, Q4_K_M and Q5_K_M, as in llama-quantize.) The\n"
                 "  descriptions are for Grok-1's shape (8 experts, 6 query heads per KV head);\n"
                 "  other shapes get llama.cpp's other rules. A tied embedding (no output.weight)\n"
                 "  gets the output head's type. The float types have no mix rules.\n\n"
                 "  --dry-run                    print each tensor's type and size (stdout), write\n"
                 "                               nothing (OUT may be left out: IN TYPE)\n"
                 "  --pure                       one type (TYPE's) for every matrix: no mix rules\n"
                 "  --output-type T              type of output.weight (alias --output-tensor-type)\n"
                 "  --token-embedding-type T     type of token_embd.weight\n"
                 "                               (T: a type of the mixes above: q8_0, q6_K, q4_K,\n"
                 "                               iq4_nl, q2_K, f16, ...)\n"
                 "  --imatrix FILE               importance matrix (grok imatrix or llama-imatrix;\n"
                 "                               GGUF or .dat): the encoders weigh each value's\n"
                 "                               error by its column's mean squared input\n"
                 "  --expert-aware               (with --imatrix) give each expert its own type by its\n"
                 "                               router use: rarely used experts cheaper, busy ones\n"
                 "                               richer, at the uniform mix's bytes; writes one tensor\n"
                 "                               per expert, which llama.cpp cannot read\n"
                 "  --threads N                  worker threads (all cores)\n"
                 "  --force                      overwrite OUT if it exists\n"
                 "  --pack                       also write OUT.grokpack, the packed layout later runs\n"
                 "                               map instead of packing at start (grok pack; docs/memory.md)\n");
}

/* A weight type for --output-type / --token-embedding-type; exits with 2
 * naming the flag and the value otherwise. */
static int parse_type_flag(const char *flag, const char *value) {
    int t = grok_type_from_name(value);
    if (t < 0 || grok_llama_ftype((grok_type)t) < 0) {
        cli_error("quantize", "%s: '%s' is not a type of llama.cpp's file types (q8_0, q6_K, q4_K, q2_K, iq4_xs, f16, ...)", flag,
                  value);
        exit(2);
    }
    return t;
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

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL}, *val;
    int npos = 0;
    int64_t threads = 0;
    bool force = false, pack = false;
    grok_quantize_params qp;
    memset(&qp, 0, sizeof qp);
    qp.output_type = qp.token_embd_type = -1;
    const char *imatrix_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_i64(argv, argc, &i, "--threads", "-t", 0, 1024, &threads)) continue;
        if (cli_flag(argv, argc, &i, "--pack", NULL)) {
            pack = true;
            continue;
        }
        if (cli_flag(argv, argc, &i, "--force", NULL)) {
            force = true;
            continue;
        }
        if (cli_flag(argv, argc, &i, "--dry-run", NULL)) {
            qp.dry_run = true;
            continue;
        }
        if (cli_flag(argv, argc, &i, "--pure", NULL)) {
            qp.pure = true;
            continue;
        }
        if (cli_str(argv, argc, &i, "--output-type", "--output-tensor-type", &val)) {
            qp.output_type = parse_type_flag(argv[i - 1], val);
            continue;
        }
        if (cli_str(argv, argc, &i, "--imatrix", NULL, &imatrix_path)) continue;
        if (cli_flag(argv, argc, &i, "--expert-aware", NULL)) {
            qp.expert_aware = true;
            continue;
        }
        if (cli_str(argv, argc, &i, "--token-embedding-type", NULL, &val)) {
            qp.token_embd_type = parse_type_flag(argv[i - 1], val);
            continue;
        }
        if (argv[i][0] == '-' || npos == 3) return cli_unknown("quantize", argv[i]);
        pos[npos++] = argv[i];
    }
    if (qp.dry_run && npos == 2) pos[2] = pos[1], pos[1] = NULL, npos = 3; /* IN TYPE */
    if (npos != 3) {
        cli_error("quantize", "IN.gguf OUT.gguf TYPE are required (see grok quantize --help)");
        return 2;
    }
    if (!(qp.mix = grok_quant_mix_find(pos[2]))) {
        char names[512] = "";
        for (int i = 0; grok_quant_mix_at(i); i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     grok_quant_mix_at(i)->name);
        cli_error("quantize", "TYPE '%s' is not one of %s (see grok quantize --help)", pos[2], names);
        return 2;
    }
    if (qp.expert_aware && !imatrix_path) {
        cli_error("quantize", "--expert-aware needs --imatrix FILE (the experts' token counts)");
        return 2;
    }
    struct stat st;
    if (qp.dry_run) {
        qp.plan = print_plan;
        if (!pos[1]) pos[1] = "(dry run)";
    } else if (!force && stat(pos[1], &st) == 0) {
        cli_error("quantize", "%s exists; pass --force to overwrite it", pos[1]);
        return 1;
    }
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
    grok_threadpool *pool = grok_threadpool_create((int)threads);
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
        fprintf(stderr, "grok quantize: dry run, %s as %s%s: weights %.2f MiB -> %.2f MiB (%.2f bits/weight)\n",
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
        fprintf(stderr, "; %" PRId64 " matrices weighed by the imatrix, %" PRId64 " of a type that takes it not in it",
                qs.n_imatrix, qs.n_imatrix_missing);
    fputc('\n', stderr);
    return 0;
}
