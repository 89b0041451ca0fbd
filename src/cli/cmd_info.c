/*
 * cmd_info.c - `grok info`: what a model file holds. Its pieces, file type
 * (llama.cpp's name of general.file_type), tensor counts and bytes per type
 * (and which types this build cannot compute with), metadata (long arrays
 * abbreviated), the hyperparameters as the engine reads them, the tensor
 * table, total and per-token-active parameter counts, and the memory a run
 * needs (weights are mapped, the KV cache is allocated). With --check, every
 * value of every tensor is decoded and tested for NaN and Inf (src/model/
 * check.c), as llama.cpp's --check-tensors does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "kernels/kernels.h"
#include "model/model.h"

typedef struct {
    cli_model_args m;
    bool no_tensors, grok1, check, plan;
} info_args;

static const cli_opt INFO_OPTS[] = {
    CLI_OPT_FLAG(info_args, no_tensors, "--no-tensors", NULL, "leave out the list of tensors"),
    CLI_OPT_FLAG(info_args, check, "--check", "--check-tensors",
                 "decode every value of every tensor and report NaN and Inf (every block scale included); "
                 "exit 1 when there are any"),
    CLI_OPT_FLAG(info_args, grok1, "--grok1", NULL,
                 "print the counts for Grok-1's released shapes (no file needed)"),
    CLI_OPT_FLAG(info_args, plan, "--plan", NULL,
                 "print only the memory plan a run here would make: the limit found (cgroup, MemAvailable or "
                 "--mem-limit), packed / expert cache / mmap, and the sizes behind it"),
};
/* --threads (for --check) and --ctx (for --plan) of the shared rows */
static const char *const INFO_MODEL_OMIT[] = {"--model", "--lora",    "--lora-scale",
                                              "--batch", "--kv-type", NULL};

static void print_kv(const grok_gguf_file *f, int64_t i) {
    const char *key = grok_gguf_kv_key(f, i);
    grok_gguf_value_type t = grok_gguf_kv_type(f, i);
    printf("  %-44s ", key);
    if (t == GROK_GGUF_TYPE_STRING) {
        const char *s;
        size_t len;
        grok_gguf_get_str(f, key, &s, &len);
        printf("\"%.*s\"%s\n", len > 80 ? 80 : (int)len, s, len > 80 ? "..." : "");
    } else if (t == GROK_GGUF_TYPE_ARRAY) {
        grok_gguf_value_type et;
        uint64_t n;
        grok_gguf_get_arr(f, key, &et, &n);
        printf("[%s x %" PRIu64 "]\n", grok_gguf_value_type_name(et), n);
    } else if (t == GROK_GGUF_TYPE_FLOAT32 || t == GROK_GGUF_TYPE_FLOAT64) {
        double v;
        grok_gguf_get_f64(f, key, &v);
        printf("%.17g\n", v);
    } else if (t == GROK_GGUF_TYPE_BOOL) {
        bool v;
        grok_gguf_get_bool(f, key, &v);
        printf("%s\n", v ? "true" : "false");
    } else {
        int64_t v;
        uint64_t u;
        if (grok_gguf_get_i64(f, key, &v) == 0)
            printf("%" PRId64 "\n", v);
        else if (grok_gguf_get_u64(f, key, &u) == 0)
            printf("%" PRIu64 "\n", u);
        else
            printf("?\n");
    }
}

/* general.file_type, by llama.cpp's name for it. */
static void print_file_type(const grok_gguf_file *f) {
    int64_t ft;
    if (grok_gguf_find_kv(f, "general.file_type") < 0) {
        printf("file type: not stored (no general.file_type)\n");
        return;
    }
    if (grok_gguf_get_i64(f, "general.file_type", &ft) != 0 || ft < 0 || ft > UINT32_MAX) {
        printf("file type: general.file_type is not a file type number\n");
        return;
    }
    bool removed;
    const char *name = grok_llama_ftype_name((uint32_t)ft, &removed);
    printf("file type: %s (general.file_type %" PRId64 "%s%s)\n", name ? name : "unknown", ft,
           removed ? ", a type llama.cpp has removed" : "", ft & 1024 ? ", guessed" : "");
}

/* Tensor counts and bytes per type; a type this build cannot compute with
 * names itself and its first tensor. */
static void print_types(const grok_gguf_file *f) {
    int64_t count[GROK_TYPE_COUNT] = {0}, elems[GROK_TYPE_COUNT] = {0}, first[GROK_TYPE_COUNT];
    uint64_t bytes[GROK_TYPE_COUNT] = {0};
    for (int k = 0; k < GROK_TYPE_COUNT; k++) first[k] = -1;
    for (int64_t i = 0; i < grok_gguf_n_tensors(f); i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        if (t->type >= GROK_TYPE_COUNT) continue; /* the reader refuses those */
        if (first[t->type] < 0) first[t->type] = i;
        count[t->type]++;
        elems[t->type] += t->n_elements;
        bytes[t->type] += t->nbytes;
    }
    printf("tensor types:\n  %-8s %8s %12s %12s\n", "type", "tensors", "MiB", "bits/weight");
    for (int k = 0; k < GROK_TYPE_COUNT; k++) {
        if (!count[k]) continue;
        printf("  %-8s %8" PRId64 " %12.2f %12.4f", grok_type_get_traits((uint32_t)k)->name, count[k],
               (double)bytes[k] / 1048576.0, 8.0 * (double)bytes[k] / (double)elems[k]);
        if (!grok_kernels_get((uint32_t)k))
            printf("  not computable by this build (first: %s)", grok_gguf_tensor_at(f, first[k])->name);
        printf("\n");
    }
}

static void print_counts(const grok_hparams *hp) {
    int64_t all = grok_hparams_n_params(hp), act = grok_hparams_n_params_active(hp);
    printf("parameters: %" PRId64 " (%.1f B) in all, %" PRId64 " (%.1f B) active per token (%.1f %%)\n", all,
           (double)all / 1e9, act, (double)act / 1e9, 100.0 * (double)act / (double)all);
}

/* Every tensor's data decoded and tested; returns the number of tensors
 * holding NaN or Inf (each named with its first bad element and where
 * that lies in the file), -1 when the check could not run. */
static int64_t check_tensors(const grok_gguf_file *f, int64_t threads) {
    grok_threadpool *pool = grok_threadpool_create((int)threads);
    if (!pool) {
        cli_error("info", "cannot start %" PRId64 " threads", threads);
        return -1;
    }
    double total = 0, done = 0;
    for (int64_t i = 0; i < grok_gguf_n_tensors(f); i++) total += (double)grok_gguf_tensor_at(f, i)->nbytes;
    cli_bar bar;
    cli_bar_init(&bar);
    int64_t n_bad = 0, n_skipped = 0, n_values = 0;
    double t0 = grok_now();
    for (int64_t i = 0; i < grok_gguf_n_tensors(f) && n_bad >= 0; i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        int64_t first, n = grok_tensor_count_nonfinite(t, pool, &first);
        done += (double)t->nbytes;
        cli_bar_update(&bar, done, total, t->name);
        if (n == -1) {
            n_skipped++;
            continue;
        }
        if (n == -2) {
            cli_bar_end(&bar);
            cli_error("info", "out of memory checking tensor '%s'", t->name);
            n_bad = -1;
            break;
        }
        n_values += t->n_elements;
        if (n == 0) continue;
        if (n_bad++ == 0) cli_bar_end(&bar), cli_bar_init(&bar);
        const grok_type_traits *tr = grok_type_get_traits(t->type);
        const int64_t row = first / t->ne[0], col = first % t->ne[0];
        const uint64_t off = grok_gguf_tensor_file_offset(f, t) +
                             (uint64_t)row * (uint64_t)grok_type_row_size(t->type, t->ne[0]) +
                             (uint64_t)(col / tr->block_size) * (uint64_t)tr->type_size;
        printf("check: %s: tensor '%s' (%s) has %" PRId64 " NaN or Inf values; the first is element %" PRId64
               " (row %" PRId64 ", column %" PRId64 "), in the block at byte %" PRIu64 "\n",
               grok_gguf_split_path(f, t->split), t->name, tr->name, n, first, row, col, off);
    }
    cli_bar_end(&bar);
    grok_threadpool_free(pool);
    if (n_bad < 0) return -1;
    char sz[32];
    cli_human_bytes(total, sz, sizeof sz);
    printf("check: %" PRId64 " tensors, %s, %" PRId64 " values decoded in %.1f s: %s\n",
           grok_gguf_n_tensors(f), sz, n_values, grok_now() - t0,
           n_bad ? "some hold NaN or Inf (above)" : "all finite");
    if (n_skipped)
        printf("check: %" PRId64 " tensors of types grok.c cannot decode were not checked\n", n_skipped);
    return n_bad;
}

static void mib_line(const char *what, int64_t b) {
    printf("  %-22s %.1f MiB\n", what, (double)b / 1048576.0);
}

/* What grok_context_create would plan for a context of n_ctx tokens. */
static int print_plan(const char *path, int64_t n_ctx) {
    char err[GROK_ERR_SIZE];
    grok_model *m = grok_model_load(path, err, sizeof err);
    if (!m) {
        cli_error("info", "%s", err);
        return 1;
    }
    grok_seq_params sp = grok_seq_default_params();
    sp.n_ctx = n_ctx;
    grok_memory_plan p;
    if (grok_model_plan_memory(m, &sp, NULL, &p, err, sizeof err)) {
        cli_error("info", "%s", err);
        grok_model_free(m);
        return 1;
    }
    char line[768];
    grok_memory_plan_describe(&p, line, sizeof line);
    printf("%s\n", line);
    printf("plan: %s\n", grok_plan_name(p.kind));
    if (p.limit >= 0)
        mib_line("limit", p.limit);
    else
        printf("  %-22s none\n", "limit");
    printf("  %-22s %s\n", "limit from", p.limit_source);
    mib_line("weights", p.weight_bytes);
    mib_line("dense weights", p.dense_bytes);
    mib_line("one expert slot", p.expert_bytes);
    printf("  %-22s %" PRId64 " of %" PRId64 " (layer, expert) pairs\n", "experts in memory", p.cache_slots,
           p.n_expert_keys);
    mib_line("reserve", p.reserve_bytes);
    mib_line("resident", p.resident_bytes);
    if (p.kind == GROK_PLAN_MMAP) {
        if (p.read_ahead_bytes > 0)
            mib_line("fault read-ahead", p.read_ahead_bytes);
        else
            printf("  %-22s off (single pages: the limit leaves no room for it)\n", "fault read-ahead");
    }
    grok_model_free(m);
    return 0;
}

/* The command line into a and *path; -1 to go on, else the exit status. */
static int info_parse(int argc, char **argv, info_args *a, const char **path) {
    cli_model_args_init(&a->m);
    cli_cmd cmd = {.name = "info",
                   .usage = "MODEL [--no-tensors] [--check [--threads N]] [--plan [--ctx N]]",
                   .about = "Shows a model file's metadata, hyperparameters, tensors, parameter\n"
                            "counts (total and active per token) and the memory a run needs.",
                   .memory = true,
                   .max_pos = 1};
    CLI_ADD_TABLE(&cmd, "Options", INFO_OPTS, a);
    cli_add_group(&cmd, "Compute (--threads for --check, --ctx for --plan)", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS,
                  &a->m, INFO_MODEL_OMIT);
    int prc = cli_parse(&cmd, argc, argv);
    *path = cmd.n_pos ? cmd.pos[0] : NULL;
    return prc;
}

/* --grok1: the released model's shapes and counts, with no file. */
static int print_grok1(void) {
    grok_hparams hp = grok_hparams_grok1();
    printf("Grok-1 (released shapes): vocab %" PRId64 ", d_model %" PRId64 ", %" PRId64 " layers, %" PRId64
           "/%" PRId64 " heads, %" PRId64 " experts (%" PRId64 " used), FFN %" PRId64 "\n",
           hp.n_vocab, hp.d_model, hp.n_layers, hp.n_heads, hp.n_kv_heads, hp.n_experts, hp.n_experts_used,
           hp.n_ff);
    print_counts(&hp);
    return 0;
}

/* The GGUF container: its size and pieces, types, metadata and tensors. */
static void print_file(const grok_gguf_file *f, const char *path, bool tensors) {
    printf("file: %s (GGUF v%" PRIu32 ", %d split%s, %.2f MiB, alignment %" PRIu64 ")\n", path,
           grok_gguf_version(f), grok_gguf_n_splits(f), grok_gguf_n_splits(f) == 1 ? "" : "s",
           (double)grok_gguf_file_size(f) / 1048576.0, grok_gguf_alignment(f));
    if (grok_gguf_n_pieces(f) > 0) {
        uint64_t copied = grok_gguf_bytes_copied(f);
        if (copied)
            printf("pieces: %d raw pieces read as one file; their sizes are not page multiples, so %.2f MiB "
                   "of tensors crossing piece boundaries were read into memory\n",
                   grok_gguf_n_pieces(f), (double)copied / 1048576.0);
        else
            printf("pieces: %d raw pieces mapped as one file, in place\n", grok_gguf_n_pieces(f));
    }
    print_file_type(f);
    print_types(f);
    printf("metadata (%" PRId64 " keys):\n", grok_gguf_n_kv(f));
    for (int64_t i = 0; i < grok_gguf_n_kv(f); i++) print_kv(f, i);
    if (!tensors) return;
    printf("tensors (%" PRId64 "):\n", grok_gguf_n_tensors(f));
    for (int64_t i = 0; i < grok_gguf_n_tensors(f); i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(f, i);
        char shape[96] = "";
        for (int d = 0; d < t->n_dims; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%" PRId64, d ? ", " : "",
                     t->ne[d]);
        printf("  %-32s %-6s [%s] %.2f MiB\n", t->name, grok_type_get_traits(t->type)->name, shape,
               (double)t->nbytes / 1048576.0);
    }
}

/* The file loaded as a Grok model: its hyperparameters, counts, memory
 * and tokenizer; 0, or 1 after a message. */
static int print_model(const char *path) {
    char err[GROK_ERR_SIZE];
    grok_model *m = grok_model_load(path, err, sizeof err);
    if (!m) {
        cli_error("info", "not a loadable Grok model: %s", err);
        return 1;
    }
    const grok_hparams *hp = grok_model_hparams(m);
    printf("hyperparameters:\n"
           "  vocab %" PRId64 ", d_model %" PRId64 ", layers %" PRId64 ", heads %" PRId64 " (kv %" PRId64
           ", dim %" PRId64 "), experts %" PRId64 " (used %" PRId64 "), ffn %" PRId64 ", context %" PRId64
           "\n"
           "  rope base %g, rms eps %g, embedding x%.17g, output x%.17g, attention x%.17g, "
           "attention cap %g, pad id %" PRId32 "\n",
           hp->n_vocab, hp->d_model, hp->n_layers, hp->n_heads, hp->n_kv_heads, hp->head_dim, hp->n_experts,
           hp->n_experts_used, hp->n_ff, hp->n_ctx_train, hp->rope_base, hp->norm_eps, hp->embedding_scale,
           hp->logit_scale, hp->attn_scale, hp->attn_softcap, hp->pad_id);
    print_counts(hp);
    double kv_tok = 2.0 * (double)(hp->n_layers * hp->n_kv_heads * hp->head_dim);
    printf("memory: weights %.2f MiB (mapped), %.2f MiB read per token; KV cache %.1f KiB per "
           "token in f16 (%.2f MiB for the full %" PRId64 "-token context; twice that in f32)\n",
           (double)grok_gguf_file_size(grok_model_gguf(m)) / 1048576.0,
           (double)grok_model_bytes_per_token(m) / 1048576.0, kv_tok * 2 / 1024.0,
           kv_tok * 2 * (double)hp->n_ctx_train / 1048576.0, hp->n_ctx_train);
    const grok_tokenizer *t = grok_model_tokenizer(m);
    if (t)
        printf("tokenizer: %" PRId64 " pieces, BOS %d, EOS %d, UNK %d, PAD %d, add BOS %s\n",
               grok_tokenizer_n_vocab(t), grok_tokenizer_bos(t), grok_tokenizer_eos(t), grok_tokenizer_unk(t),
               grok_tokenizer_pad(t), grok_tokenizer_add_bos(t) ? "yes" : "no");
    grok_model_free(m);
    return 0;
}

int cmd_info(int argc, char **argv) {
    info_args a = {0};
    const char *path;
    int rc = info_parse(argc, argv, &a, &path);
    if (rc >= 0) return rc;
    if (a.grok1) return print_grok1();
    if (!path) {
        cli_error("info", "a MODEL file is required (see grok info --help)");
        return 2;
    }
    if (a.plan) return print_plan(path, a.m.ctx);
    char err[GROK_ERR_SIZE];
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    if (!f) {
        cli_error("info", "%s", err);
        return 1;
    }
    print_file(f, path, !a.no_tensors);
    int64_t bad = a.check ? check_tensors(f, a.m.threads) : 0;
    grok_gguf_close(f);
    if (print_model(path)) return 1;
    return bad ? 1 : 0;
}
