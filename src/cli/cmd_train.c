/*
 * cmd_train.c - `grok train`: trains a Grok-architecture model on text
 * files, from scratch or from a checkpoint, and writes a GGUF that `grok
 * run` loads; `--eval-only` measures a model's loss, perplexity and expert
 * usage on text. The numeric work lives in src/train/; this file owns the
 * data (tokenizing, the held-out tail, batch sampling), the schedule, the
 * progress display and checkpoints. A run is deterministic for a given
 * seed and thread count, and a run resumed from a checkpoint continues
 * bit for bit as if it had never stopped (the checkpoint carries the
 * weights, the Adam moments, the step and the batch sampler's state).
 * With --init an existing model is fine-tuned: all of it (in f32), or
 * (--lora R) only low-rank adapters over the frozen base in its own types,
 * written as an adapter GGUF for `grok run --lora` and `grok merge`; that
 * path (train_lora.c) also reads chat data and runs under mpirun.
 */
#include <inttypes.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "cli/train_cli.h"
#include "dist/dist.h"
#include "model/model.h"
#include "train/train.h"
#include "util/rng.h"

extern char **environ;

/* The flags' struct: train_args and the enums' indices. */
typedef struct {
    train_args t;
    cli_strs data;
    int type, data_format, kernels;
} train_opts;

#define T(f) t.f
static const char *const TRAIN_TYPES[] = {"f32", "f16", "bf16", "q8_0", NULL};
static const char *const DATA_FORMATS[] = {"text", "chat", NULL};
static const char *const TRAIN_KERNELS[] = {"exact", "fast", NULL};
static const cli_opt DATA_OPTS[] = {
    CLI_OPT_STRS(train_opts, data, "--data", NULL, "FILE...",
                 "training text; several files are joined (more files may follow the first as they are)"),
    CLI_OPT_STR(train_opts, T(tok_path), "--tokenizer", NULL, "FILE", "the SentencePiece .model to use", ""),
    CLI_OPT_I64(train_opts, T(vocab_size), "--vocab-size", NULL, "N", 260, 1 << 20,
                "train a BPE vocabulary of N pieces with spm_train", ""),
    CLI_OPT_F32(train_opts, T(holdout), "--holdout", NULL, "F", 0, 0.9, "the held-out share of the tokens",
                NULL),
    CLI_OPT_STR(train_opts, T(doc_sep), "--doc-sep", NULL, "TEXT",
                "the data are documents separated by TEXT (\\n for a newline): each is tokenized alone as a "
                "prompt is (BOS where the vocabulary adds one) and ends with EOS",
                ""),
};
static const cli_opt TUNE_OPTS[] = {
    CLI_OPT_STR(train_opts, T(init), "--init", NULL, "MODEL",
                "start from this model (its vocabulary and shape)", ""),
    CLI_OPT_I64(
        train_opts, T(lora_rank), "--lora", NULL, "R", 1, 1 << 20,
        "train only rank-R LoRA adapters over the frozen base, read in its own types (q8_0, q4_K, ...); "
        "OUT is an adapter",
        ""),
    CLI_OPT_F32(train_opts, T(lora_alpha), "--lora-alpha", NULL, "A", 1e-6, 1e6,
                "adapter scale alpha: W' = W + (A/r) B A", "R"),
    CLI_OPT_STR(train_opts, T(lora_targets), "--lora-targets", NULL, "L",
                "comma list of q, k, v, o, gate, up, down, router, or the groups attn (q,k,v,o), experts "
                "(gate,up,down), all (attn,experts)",
                "attn,experts"),
    CLI_OPT_F32(train_opts, T(lora_dropout), "--lora-dropout", NULL, "P", 0, 0.95,
                "dropout on each adapter's input while training", NULL),
    CLI_OPT_ENUM(train_opts, kernels, "--kernels", NULL, TRAIN_KERNELS,
                 "the base's products: exact (f32 activations) or fast (8-bit)", NULL),
    CLI_OPT_ENUM(
        train_opts, data_format, "--data-format", NULL, DATA_FORMATS,
        "chat: JSONL of {\"messages\": [...]}, trained on the assistant's tokens only (needs --lora)", NULL),
    CLI_OPT_STR(train_opts, T(chat_template), "--chat-template", NULL, "F",
                "the template file grok serve --chat-template reads", "the built-in one"),
    CLI_OPT_STR(train_opts, T(eval_data), "--eval-data", NULL, "FILE", "held-out data",
                "the last --holdout share of --data"),
    CLI_OPT_I64(train_opts, T(sample_tokens), "--sample-tokens", NULL, "N", 0, 1 << 20,
                "chat: a greedy sample answer of up to N tokens at each evaluation", "48"),
};
static const cli_opt STEP_OPTS[] = {
    CLI_OPT_I64(train_opts, T(steps), "--steps", NULL, "N", 1, INT64_MAX / 2, "total optimizer steps", NULL),
    CLI_OPT_I64(train_opts, T(stop_at), "--stop-at", NULL, "N", 1, INT64_MAX / 2,
                "stop after step N (to continue later with --resume)", "--steps"),
    /* --batch is a prompt batch in every other command: the training
     * batch has its own name, the old spelling kept */
    CLI_OPT_I64(train_opts, T(batch), "--train-batch", "--batch", "B", 1, 4096, "sequences per step", NULL),
    CLI_OPT_I64(train_opts, T(seq), "--seq", NULL, "T", 1, (int64_t)1 << 24, "tokens per sequence", NULL),
    CLI_OPT_F32(train_opts, T(opt.lr), "--lr", NULL, "LR", 0, 10, "peak learning rate", NULL),
    CLI_OPT_F32(train_opts, T(opt.min_lr_frac), "--min-lr-frac", NULL, "F", 0, 1,
                "cosine floor as a share of LR", NULL),
    CLI_OPT_I64(train_opts, T(warmup), "--warmup", NULL, "N", 0, INT64_MAX / 2, "warm-up steps",
                "min(100, steps/10)"),
    CLI_OPT_F32(train_opts, T(opt.weight_decay), "--wd", NULL, "W", 0, 10, "AdamW weight decay",
                "0.1; 0 with --lora"),
    CLI_OPT_F32(train_opts, T(opt.clip), "--clip", NULL, "C", 0, 1e9, "gradient norm bound", NULL),
    CLI_OPT_F32(train_opts, T(aux_coef), "--aux-coef", NULL, "A", 0, 1e3, "load-balancing loss coefficient",
                NULL),
    CLI_OPT_F32(train_opts, T(z_coef), "--z-coef", NULL, "Z", 0, 1e3, "router z-loss coefficient", NULL),
    CLI_OPT_U64(train_opts, T(seed), "--seed", "-s", "S", "initialisation and batch seed", NULL),
    CLI_OPT_I64(train_opts, T(threads), "--threads", "-t", "N", 0, 1024, "compute threads; 0 = all cores",
                NULL),
    CLI_OPT_I64(train_opts, T(eval_every), "--eval-every", NULL, "N", 1, INT64_MAX / 2,
                "held-out evaluation every N steps", NULL),
    CLI_OPT_I64(train_opts, T(eval_tokens), "--eval-tokens", NULL, "N", 1, INT64_MAX / 2,
                "at most N held-out tokens per evaluation", NULL),
    CLI_OPT_STR(train_opts, T(log_path), "--log", NULL, "FILE", "CSV of step, train loss, held-out loss, lr",
                ""),
};
static const cli_opt OUT_OPTS[] = {
    CLI_OPT_STR(train_opts, T(out), "--output", "-o", "FILE", "the trained model (GGUF)", ""),
    CLI_OPT_ENUM(train_opts, type, "--type", NULL, TRAIN_TYPES, "the weights' type of FILE", NULL),
    CLI_OPT_STR(train_opts, T(ckpt), "--checkpoint", NULL, "FILE", "write a checkpoint here (atomically) ...",
                ""),
    CLI_OPT_I64(train_opts, T(ckpt_every), "--checkpoint-every", NULL, "N", 1, INT64_MAX / 2,
                "... every N steps and at the end", "--eval-every"),
    CLI_OPT_STR(
        train_opts, T(resume), "--resume", NULL, "FILE",
        "continue from a checkpoint (shape and vocabulary from it; with --lora, an adapter checkpoint and "
        "--init the same base)",
        ""),
    CLI_OPT_STR(train_opts, T(eval_model), "--eval-only", NULL, "MODEL",
                "measure MODEL's loss, perplexity and expert usage on the data instead of training", ""),
    CLI_OPT_FLAG(train_opts, T(expert_stats), "--expert-stats", NULL,
                 "print per-layer expert usage on the held-out text"),
};
#undef T
static const char *const TRAIN_SHAPE_OMIT[] = {"--head-dim", NULL};

/* Trains a SentencePiece BPE vocabulary with Debian's spm_train (byte
 * fallback on, Grok-1's special ids) and loads it. */
static grok_tokenizer *train_vocab(const train_args *a, const char *text, size_t len) {
    char dir[] = "/tmp/grok-spm-XXXXXX";
    if (!mkdtemp(dir)) {
        cli_error("train", "cannot create a temporary directory for spm_train");
        return NULL;
    }
    char input[512], prefix[512], model[600];
    snprintf(input, sizeof input, "%s/corpus.txt", dir);
    snprintf(prefix, sizeof prefix, "%s/spm", dir);
    snprintf(model, sizeof model, "%s.model", prefix);
    FILE *f = fopen(input, "wb");
    bool ok = f && fwrite(text, 1, len, f) == len;
    if (f && fclose(f)) ok = false;
    grok_tokenizer *tok = NULL;
    if (!ok) {
        cli_error("train", "cannot write %s", input);
    } else {
        char a_in[600], a_pre[600], a_vs[64], a_th[64];
        snprintf(a_in, sizeof a_in, "--input=%s", input);
        snprintf(a_pre, sizeof a_pre, "--model_prefix=%s", prefix);
        snprintf(a_vs, sizeof a_vs, "--vocab_size=%" PRId64, a->vocab_size);
        snprintf(a_th, sizeof a_th, "--num_threads=%" PRId64, a->threads > 0 ? a->threads : 2);
        char *argv[] = {"spm_train",
                        a_in,
                        a_pre,
                        a_vs,
                        "--model_type=bpe",
                        "--byte_fallback=true",
                        "--character_coverage=1.0",
                        "--split_digits=true",
                        "--normalization_rule_name=identity",
                        "--remove_extra_whitespaces=false",
                        "--pad_id=0",
                        "--bos_id=1",
                        "--eos_id=2",
                        "--unk_id=3",
                        "--pad_piece=[PAD]",
                        "--bos_piece=[BOS]",
                        "--eos_piece=[EOS]",
                        "--unk_piece=[UNK]",
                        "--max_sentence_length=16384",
                        "--minloglevel=2",
                        a_th,
                        NULL};
        pid_t pid;
        int status = 0;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 0, 0);
        if (posix_spawnp(&pid, "spm_train", &fa, NULL, argv, environ) != 0) {
            cli_error("train", "--vocab-size needs spm_train (Debian package sentencepiece)");
        } else if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
            cli_error("train", "spm_train failed (status %d)", status);
        } else {
            char err[GROK_ERR_SIZE];
            tok = grok_tokenizer_load_spm(model, err, sizeof err);
            if (!tok) cli_error("train", "%s", err);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    char vocab[600];
    snprintf(vocab, sizeof vocab, "%s.vocab", prefix);
    unlink(input);
    unlink(model);
    unlink(vocab);
    rmdir(dir);
    return tok;
}

/* Mean loss over non-overlapping windows of the held-out tokens. */
static double evaluate(grok_trainer *tr, const int32_t *tok, int64_t n, int64_t B, int64_t T,
                       int64_t max_tokens, const grok_train_loss_cfg *cfg, int64_t *n_scored) {
    int64_t n_win = n > T ? (n - 1) / T : 0;
    if (max_tokens > 0 && n_win > max_tokens / T) n_win = max_tokens / T > 0 ? max_tokens / T : 1;
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)(B * (T + 1)));
    double sum = 0;
    int64_t scored = 0;
    for (int64_t w0 = 0; buf && w0 < n_win; w0 += B) {
        int64_t nb = n_win - w0 < B ? n_win - w0 : B;
        for (int64_t b = 0; b < nb; b++)
            memcpy(buf + b * (T + 1), tok + (w0 + b) * T, sizeof(int32_t) * (size_t)(T + 1));
        grok_train_losses l;
        if (grok_trainer_step(tr, buf, nb, T, cfg, &l, NULL) == 0) {
            sum += l.ce * (double)(nb * T);
            scored += nb * T;
        }
    }
    free(buf);
    *n_scored = scored;
    return scored ? sum / (double)scored : NAN;
}

static void print_expert_stats(const grok_trainer *tr, const grok_hparams *hp) {
    const int64_t *c = grok_trainer_expert_counts(tr);
    printf("expert usage (share of routed slots per layer; uniform = %.3f):\n", 1.0 / (double)hp->n_experts);
    for (int64_t l = 0; l < hp->n_layers; l++) {
        int64_t tot = 0;
        for (int64_t e = 0; e < hp->n_experts; e++) tot += c[l * hp->n_experts + e];
        printf("  layer %" PRId64 ":", l);
        for (int64_t e = 0; e < hp->n_experts; e++)
            printf(" %.3f", tot ? (double)c[l * hp->n_experts + e] / (double)tot : 0.0);
        printf("\n");
    }
}

/* The command line into o; -1 to go on, else the exit status. */
static int train_parse(int argc, char **argv, train_opts *o, cli_cmd *cmd) {
    train_args *a = &o->t;
    a->steps = 1000, a->batch = 8, a->seq = 128, a->warmup = -1, a->eval_every = 100;
    a->eval_tokens = 65536, a->seed = 1, a->holdout = 0.05f, a->aux_coef = 0.01f, a->z_coef = 0.001f;
    a->sample_tokens = -1;
    a->hp = grok_hparams_grok1();
    a->hp.d_model = 128, a->hp.n_layers = 4, a->hp.n_heads = 4, a->hp.n_kv_heads = 2;
    a->hp.n_experts = 8, a->hp.n_experts_used = 2, a->hp.n_ff = 256, a->hp.n_ctx_train = 512;
    a->opt = grok_train_adamw_default();
    a->opt.weight_decay = -1; /* not given: the default depends on --lora */
    *cmd = (cli_cmd){
        .name = "train",
        .usage = "--data FILE... -o OUT.gguf [options]\n"
                 "       grok train --init MODEL [--lora R] --data FILE... -o OUT.gguf [options]\n"
                 "       grok train --eval-only MODEL --data FILE... [--seq T] [--expert-stats]",
        .about = "Trains a Grok-architecture model (f32, AdamW, warm-up + cosine) on text, or LoRA\n"
                 "adapters over a frozen base (also on chat data, and under mpirun -np N).\n"
                 "The last --holdout share of the tokens is held out for evaluation.",
        .notes = "--train-batch was called --batch (still accepted); --batch is a prompt batch in\n"
                 "the other commands. See docs/training.md.",
        .max_pos = CLI_ANY_POS};
    CLI_ADD_TABLE(cmd, "Data and vocabulary", DATA_OPTS, o);
    CLI_ADD_TABLE(cmd, "Fine-tuning", TUNE_OPTS, o);
    cli_add_group(cmd, "Shape (as grok new)", CLI_SHAPE_OPTS, CLI_N_SHAPE_OPTS, &a->hp, TRAIN_SHAPE_OMIT);
    CLI_ADD_TABLE(cmd, "Training", STEP_OPTS, o);
    CLI_ADD_TABLE(cmd, "Output", OUT_OPTS, o);
    int rc = cli_parse(cmd, argc, argv);
    if (rc >= 0) return rc;
    /* the data files: --data's values, and the words after it */
    if (cmd->n_pos && !o->data.n) {
        cli_error("train", "unexpected argument '%s' (data files follow --data; see grok train --help)",
                  cmd->pos[0]);
        return 2;
    }
    a->data = calloc(o->data.n + (size_t)cmd->n_pos + 1, sizeof *a->data);
    if (!a->data) {
        cli_error("train", "out of memory");
        return 1;
    }
    for (size_t k = 0; k < o->data.n; k++) a->data[a->n_data++] = o->data.v[k];
    for (int k = 0; k < cmd->n_pos; k++) a->data[a->n_data++] = cmd->pos[k];
    a->type_name = TRAIN_TYPES[o->type];
    if (cli_seen(cmd, "--data-format")) a->data_format = DATA_FORMATS[o->data_format];
    if (cli_seen(cmd, "--kernels")) a->kernels = TRAIN_KERNELS[o->kernels];
    return -1;
}

/* The flags' combinations; 0, or 2 after a message. */
static int train_validate(train_args *a) {
    if (a->opt.weight_decay < 0)
        a->opt.weight_decay = a->lora_rank ? 0.0f : grok_train_adamw_default().weight_decay;
    a->targets = GROK_TRAIN_LORA_ATTN | GROK_TRAIN_LORA_EXPERTS;
    const char *flag_err = NULL;
    if (a->lora_targets && !(a->targets = grok_train_lora_parse_targets(a->lora_targets)))
        flag_err =
            "--lora-targets: give a comma list of q, k, v, o, gate, up, down, router, attn, experts, all";
    if (!flag_err && a->data_format && strcmp(a->data_format, "text") != 0 &&
        strcmp(a->data_format, "chat") != 0)
        flag_err = "--data-format: text or chat";
    a->chat = a->data_format && strcmp(a->data_format, "chat") == 0;
    if (!flag_err && a->kernels && strcmp(a->kernels, "exact") != 0 && strcmp(a->kernels, "fast") != 0)
        flag_err = "--kernels: exact or fast";
    if (!flag_err && !a->lora_rank &&
        (a->chat || a->chat_template || a->kernels || a->lora_dropout > 0 || a->sample_tokens >= 0 ||
         a->eval_data))
        flag_err =
            "--data-format chat, --chat-template, --kernels, --lora-dropout, --sample-tokens and --eval-data "
            "belong to LoRA fine-tuning: give --init MODEL --lora R";
    if (!flag_err && a->chat_template && !a->chat) flag_err = "--chat-template needs --data-format chat";
    if (!flag_err && grok_dist_size() > 1 && !a->lora_rank)
        flag_err = "only LoRA fine-tuning (--init MODEL --lora R) runs across MPI ranks";
    if (!flag_err && a->lora_rank && !a->init)
        flag_err = "--lora needs --init MODEL.gguf (the base model to adapt)";
    if (!flag_err && !a->lora_rank && (a->lora_alpha > 0 || a->lora_targets))
        flag_err = "--lora-alpha and --lora-targets need --lora R";
    if (!flag_err && a->lora_rank && a->eval_model) flag_err = "--eval-only evaluates a model: drop --lora";
    if (!flag_err && a->init && (a->eval_model || a->tok_path || a->vocab_size))
        flag_err =
            "--init takes its vocabulary from the model: drop --eval-only, --tokenizer and --vocab-size";
    if (!flag_err && a->init && a->resume && !a->lora_rank)
        flag_err = "--resume continues a full checkpoint by itself: drop --init (with --lora, give both)";
    if (!flag_err && a->lora_rank && strcmp(a->type_name, "f32") != 0)
        flag_err = "--type: adapters are written in f32 (use grok merge --type to re-encode a merged model)";
    if (flag_err) {
        cli_error("train", "%s", flag_err);
        return 2;
    }
    if (a->lora_alpha <= 0) a->lora_alpha = (float)a->lora_rank;
    if (a->n_data == 0) {
        cli_error("train", "--data FILE is required (see grok train --help)");
        return 2;
    }
    if (!a->eval_model && !a->out) {
        cli_error("train", "-o FILE is required (see grok train --help)");
        return 2;
    }
    if (a->warmup < 0) a->warmup = a->steps / 10 < 100 ? a->steps / 10 : 100;
    if (a->stop_at == 0 || a->stop_at > a->steps) a->stop_at = a->steps;
    if (a->ckpt_every == 0) a->ckpt_every = a->eval_every;
    a->opt.warmup = a->warmup, a->opt.total = a->steps;
    if (a->lora_rank) {
        if (!a->kernels) a->kernels = "exact";
        if (a->sample_tokens < 0) a->sample_tokens = 48;
    }
    return 0;
}

/* The model and its vocabulary: from --init, from a checkpoint (--resume)
 * or the model to evaluate, or new (with --tokenizer or a vocabulary
 * trained on text); the optimizer state with them. 0, or 1 after a message
 * (what was made so far is the caller's to free). */
static int train_setup(train_args *a, const char *text, size_t text_len, grok_train_model **mp,
                       grok_tokenizer **tokp, grok_train_optim_state *st) {
    char err[GROK_ERR_SIZE];
    if (a->init) {
        if (grok_train_load(a->init, mp, tokp, NULL, err, sizeof err)) {
            cli_error("train", "--init: %s", err);
            return 1;
        }
        if (!a->resume) {
            if (grok_train_optim_alloc(st, (*mp)->n_params)) {
                cli_error("train", "out of memory for the optimizer state");
                return 1;
            }
            st->seed = (uint64_t)a->seed;
            st->rng = grok_rng_named((uint64_t)a->seed, GROK_RNG_DATA, 0).s;
        }
    } else if (a->eval_model || a->resume) {
        const char *p = a->eval_model ? a->eval_model : a->resume;
        if (grok_train_load(p, mp, tokp, a->resume ? st : NULL, err, sizeof err)) {
            cli_error("train", "%s", err);
            return 1;
        }
    } else {
        if (a->tok_path)
            *tokp = grok_tokenizer_load_spm(a->tok_path, err, sizeof err);
        else if (a->vocab_size)
            *tokp = train_vocab(a, text, text_len);
        else {
            cli_error("train", "give --tokenizer FILE.model or --vocab-size N");
            return 1;
        }
        if (!*tokp) {
            if (a->tok_path) cli_error("train", "%s", err);
            return 1;
        }
        a->hp.head_dim = a->hp.d_model / a->hp.n_heads;
        a->hp.n_vocab = grok_tokenizer_n_vocab(*tokp);
        a->hp.pad_id = grok_tokenizer_pad(*tokp);
        if (a->seq > a->hp.n_ctx_train) a->hp.n_ctx_train = a->seq;
        if (!(*mp = grok_train_model_create(&a->hp, err, sizeof err))) {
            cli_error("train", "%s", err);
            return 1;
        }
        grok_train_model_init_random(*mp, (uint64_t)a->seed);
        if (grok_train_optim_alloc(st, (*mp)->n_params)) {
            cli_error("train", "out of memory for the optimizer state");
            return 1;
        }
        st->seed = (uint64_t)a->seed;
        st->rng = grok_rng_named((uint64_t)a->seed, GROK_RNG_DATA, 0).s;
    }
    return 0;
}

int train_open_log(const char *path, int64_t step, FILE **f) {
    *f = fopen(path, step > 0 ? "a" : "w");
    if (!*f) {
        cli_error("train", "--log: cannot open %s", path);
        return 1;
    }
    if (step == 0) fprintf(*f, "step,train_loss,eval_loss,lr,aux,z\n");
    return 0;
}

/* Full training or --eval-only: what it holds, freed by full_free. */
typedef struct {
    train_args *a;
    grok_train_model *m;
    grok_tokenizer *tok;
    grok_train_optim_state st;
    grok_threadpool *pool;
    grok_trainer *tr;
    int32_t *ids, *batch; /* the tokens: n_train to train on, then n_eval held out */
    float *grad;
    FILE *logf;
    size_t text_len;
    int64_t n_all, n_train, n_eval;
    grok_train_loss_cfg lcfg;
} full_job;

/* The clock and the smoothed loss since this process started (a resumed
 * run counts from its own first step). */
typedef struct {
    bool tty;
    double t0, c0, ema;
    int64_t step0;
} full_progress;

/* The model and its vocabulary (trained on the text where it is new), and
 * the text as tokens. 0, or 1 after a message. */
static int full_tokens(full_job *j, const char *text) {
    train_args *a = j->a;
    if (train_setup(a, text, j->text_len, &j->m, &j->tok, &j->st)) return 1;
    if (a->seq > j->m->hp.n_ctx_train) {
        cli_error("train", "--seq %" PRId64 " exceeds the model's context %" PRId64, a->seq,
                  j->m->hp.n_ctx_train);
        return 1;
    }
    size_t n_ids;
    j->ids = train_tokenize_text(j->tok, text, j->text_len, a->doc_sep, &n_ids);
    if (!j->ids) return 1;
    j->n_all = (int64_t)n_ids;
    j->n_eval = a->eval_model ? j->n_all : (int64_t)((double)j->n_all * a->holdout);
    j->n_train = j->n_all - j->n_eval;
    if (!a->eval_model && j->n_train < a->seq + 2) {
        cli_error("train", "--data: %" PRId64 " training tokens, fewer than --seq %" PRId64 " + 2",
                  j->n_train, a->seq);
        return 1;
    }
    return 0;
}

/* The data, the model, the tokens and the trainer. 0, or 1 after a
 * message. */
static int full_load(full_job *j) {
    train_args *a = j->a;
    char err[GROK_ERR_SIZE];
    char *text = train_read_text(a->data, a->n_data, &j->text_len);
    if (!text) return 1;
    const int rc = full_tokens(j, text);
    free(text);
    if (rc) return 1;
    j->pool = grok_threadpool_create((int)a->threads);
    j->tr = j->pool ? grok_trainer_create(j->m, a->batch, a->seq, j->pool, err, sizeof err) : NULL;
    if (!j->tr) {
        cli_error("train", "%s", j->pool ? err : "cannot start threads");
        return 1;
    }
    j->lcfg = (grok_train_loss_cfg){a->aux_coef, a->z_coef};
    return 0;
}

/* --eval-only: the model's loss on all the data, and its expert usage. 0,
 * or 1 after a message. */
static int full_eval_only(full_job *j) {
    const train_args *a = j->a;
    int64_t scored;
    grok_trainer_reset_expert_counts(j->tr);
    double loss = evaluate(j->tr, j->ids, j->n_eval, a->batch, a->seq, 0, &j->lcfg, &scored);
    if (scored == 0) {
        cli_error("train", "--data: %" PRId64 " tokens, too few for --seq %" PRId64, j->n_eval, a->seq);
        return 1;
    }
    /* bits per byte: the scored tokens cover about scored/n_all of the text */
    double bpb = loss / log(2.0) * (double)j->n_all / (double)j->text_len;
    printf("eval: %s on %" PRId64 " tokens: loss %.4f nats/token, perplexity %.2f, ~%.3f bits/byte\n",
           a->eval_model, scored, loss, exp(loss), bpb);
    if (a->expert_stats) print_expert_stats(j->tr, &j->m->hp);
    return 0;
}

/* The loss on (at most --eval-tokens of) the held-out tokens. */
static double full_held_out(full_job *j) {
    int64_t sc;
    return evaluate(j->tr, j->ids + j->n_train, j->n_eval, j->a->batch, j->a->seq, j->a->eval_tokens,
                    &j->lcfg, &sc);
}

/* One optimizer step, its report and checkpoint. 0, or 1 after a message. */
static int full_step(full_job *j, full_progress *p) {
    train_args *a = j->a;
    grok_train_optim_state *st = &j->st;
    char err[GROK_ERR_SIZE];
    grok_rng r = {st->rng};
    for (int64_t b = 0; b < a->batch; b++) {
        int64_t off = (int64_t)(grok_rng_next(&r) % (uint64_t)(j->n_train - a->seq));
        memcpy(j->batch + b * (a->seq + 1), j->ids + off, sizeof(int32_t) * (size_t)(a->seq + 1));
    }
    st->rng = r.s;
    grok_train_losses l;
    if (grok_trainer_step(j->tr, j->batch, a->batch, a->seq, &j->lcfg, &l, j->grad)) {
        cli_error("train", "step %" PRId64 " failed", st->step);
        return 1;
    }
    float lr = grok_train_lr_at(&a->opt, st->step);
    double gnorm = grok_train_adamw_step(j->m, st, j->grad, &a->opt);
    if (!isfinite(l.total) || !isfinite(gnorm)) {
        cli_error("train", "step %" PRId64 ": the loss diverged (%g); try a lower --lr", st->step, l.total);
        return 1;
    }
    p->ema = isnan(p->ema) ? l.ce : 0.95 * p->ema + 0.05 * l.ce;
    double el = grok_now() - p->t0, tps = (double)((st->step - p->step0) * a->batch * a->seq) / el;
    double eta = el / (double)(st->step - p->step0) * (double)(a->stop_at - st->step);
    bool do_eval = st->step % a->eval_every == 0 || st->step == a->stop_at;
    double ev = do_eval && j->n_eval > a->seq ? full_held_out(j) : NAN;
    if (j->logf)
        fprintf(j->logf, "%" PRId64 ",%.5f,%.5f,%.6g,%.4f,%.4f\n", st->step, l.ce, ev, lr, l.aux, l.z);
    if (p->tty)
        fprintf(stderr, "\rstep %" PRId64 "/%" PRId64 "  loss %.4f  lr %.2e  %.0f tok/s  ETA %.0fs   ",
                st->step, a->steps, p->ema, lr, tps, eta);
    if (do_eval || (!p->tty && st->step % 10 == 0))
        fprintf(stderr,
                "%sstep %" PRId64 "/%" PRId64 " loss %.4f aux %.3f z %.3f |g| %.3f lr %.2e %.0f tok/s\n",
                p->tty ? "\r" : "", st->step, a->steps, l.ce, l.aux, l.z, gnorm, lr, tps);
    if (do_eval && !isnan(ev)) fprintf(stderr, "  held-out loss %.4f (perplexity %.2f)\n", ev, exp(ev));
    if (a->ckpt && (st->step % a->ckpt_every == 0 || st->step == a->stop_at) &&
        grok_train_save(a->ckpt, j->m, j->tok, GROK_TYPE_F32, st, "grok-train-checkpoint", err, sizeof err)) {
        cli_error("train", "%s", err);
        return 1;
    }
    return 0;
}

/* The run's rate, the expert usage and the model written. 0, or 1 after a
 * message. */
static int full_finish(full_job *j, const full_progress *p) {
    train_args *a = j->a;
    const grok_hparams *hp = &j->m->hp;
    char err[GROK_ERR_SIZE];
    if (p->tty) fprintf(stderr, "\n");
    cli_train_rate((double)((j->st.step - p->step0) * a->batch * a->seq), 1, grok_now() - p->t0,
                   grok_cpu_now() - p->c0);
    if (a->expert_stats && j->n_eval > a->seq) {
        grok_trainer_reset_expert_counts(j->tr);
        full_held_out(j);
        print_expert_stats(j->tr, hp);
    }
    char name[128];
    snprintf(name, sizeof name, "grok-trained-d%" PRId64 "-l%" PRId64 "-e%" PRId64, hp->d_model, hp->n_layers,
             hp->n_experts);
    if (grok_train_save(a->out, j->m, j->tok, (grok_type)grok_type_from_name(a->type_name), NULL, name, err,
                        sizeof err)) {
        cli_error("train", "%s", err);
        return 1;
    }
    fprintf(stderr, "grok train: wrote %s after %" PRId64 " steps (%.1f s)\n", a->out, j->st.step,
            grok_now() - p->t0);
    return 0;
}

/* The steps from the loaded (or resumed) state to --stop-at, then the
 * model. 0, or 1 after a message. */
static int full_train(full_job *j) {
    train_args *a = j->a;
    const grok_hparams *hp = &j->m->hp;
    fprintf(stderr,
            "grok train: %.2f M parameters (%.2f M active), vocab %" PRId64 ", %" PRId64
            " training / %" PRId64 " held-out tokens, %d threads, batch %" PRId64 " x %" PRId64 "\n",
            (double)grok_hparams_n_params(hp) / 1e6, (double)grok_hparams_n_params_active(hp) / 1e6,
            hp->n_vocab, j->n_train, j->n_eval, grok_threadpool_size(j->pool), a->batch, a->seq);
    j->batch = malloc(sizeof(int32_t) * (size_t)(a->batch * (a->seq + 1)));
    j->grad = malloc(sizeof(float) * (size_t)j->m->n_params);
    if (!j->batch || !j->grad) {
        cli_error("train", "out of memory");
        return 1;
    }
    if (a->log_path && train_open_log(a->log_path, j->st.step, &j->logf)) return 1;
    if (a->init && j->st.step == 0 && j->n_eval > a->seq) {
        double ev = full_held_out(j);
        fprintf(stderr, "  held-out loss before fine-tuning %.4f (perplexity %.2f)\n", ev, exp(ev));
    }
    full_progress p = {isatty(2), grok_now(), grok_cpu_now(), NAN, j->st.step};
    while (j->st.step < a->stop_at)
        if (full_step(j, &p)) return 1;
    return full_finish(j, &p);
}

static void full_free(full_job *j) {
    if (j->logf) fclose(j->logf);
    free(j->ids);
    free(j->batch);
    free(j->grad);
    grok_trainer_free(j->tr);
    grok_threadpool_free(j->pool);
    grok_train_optim_free(&j->st);
    grok_train_model_free(j->m);
    grok_tokenizer_free(j->tok);
}

/* Full training (or --eval-only) of a model in f32. */
static int train_full(train_args *a) {
    full_job j = {.a = a};
    int rc = full_load(&j) || (a->eval_model ? full_eval_only(&j) : full_train(&j)) ? 1 : 0;
    full_free(&j);
    return rc;
}

int cmd_train(int argc, char **argv) {
    train_opts o = {0};
    cli_cmd cmd;
    int rc = train_parse(argc, argv, &o, &cmd);
    if (rc < 0 && !(rc = train_validate(&o.t))) rc = o.t.lora_rank ? train_lora_run(&o.t) : train_full(&o.t);
    free(o.t.data);
    return rc;
}
