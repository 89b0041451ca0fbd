/*
 * cmd_run.c - `grok run`: generate a completion for a prompt. The prompt
 * is tokenized (BOS only where the model file says so), processed as one
 * batch, then tokens are sampled one at a time and streamed to stdout as
 * whole UTF-8 characters; text that might be the start of a stop string is
 * held back until it is known not to be one. Speeds go to stderr.
 * With --grammar or --json-schema every token is drawn from those the
 * grammar allows (docs/structured-output.md), and the run ends when the
 * grammar is complete.
 * Under mpirun, rank 0 reads and tokenizes the prompt, samples and prints;
 * it broadcasts the prompt's ids and then each sampled token, and the
 * other ranks decode along with it, each computing its share.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "dist/dist.h"
#include "server/think.h"

#define MAX_STOPS CLI_MAX_REPEAT

typedef struct {
    cli_model_args m;
    grok_sampler_params sp;
    const char *prompt, *prompt_file, *grammar, *schema;
    int64_t n_gen;
    cli_strs stops;
    bool ignore_eos;
    /* thinking longer */
    int64_t samples;
    const char *effort, *select, *extract, *verifier, *verifier_suffix, *verifier_yes;
    bool candidates;
} run_args;

static const cli_opt RUN_OPTS[] = {
    CLI_OPT_STR(run_args, m.model, "--model", "-m", "FILE", "the model (GGUF)",
                "the bundled models/grok-mini.gguf"),
    CLI_OPT_STR(run_args, prompt, "--prompt", "-p", "TEXT", "the prompt", ""),
    CLI_OPT_STR(run_args, prompt_file, "--file", "-f", "FILE",
                "read the prompt from FILE (its bytes as they are)", ""),
    CLI_OPT_I64(run_args, n_gen, "--n-predict", "-n", "N", 0, 1 << 30, "tokens to generate", NULL),
    CLI_OPT_STRS(run_args, stops, "--stop", NULL, "TEXT", "stop before this text"),
    CLI_OPT_STR(run_args, grammar, "--grammar", NULL, "FILE",
                "only text this GBNF grammar (llama.cpp's format) allows", ""),
    CLI_OPT_STR(run_args, schema, "--json-schema", NULL, "FILE",
                "only JSON that validates against this JSON Schema", ""),
    CLI_OPT_FLAG(run_args, ignore_eos, "--ignore-eos", NULL, "keep going past the end-of-sequence token"),
};

static const cli_opt THINK_OPTS[] = {
    CLI_OPT_I64(run_args, samples, "--samples", NULL, "K", 1, THINK_MAX_SAMPLES,
                "samples of the prompt; 1 = off", "1"),
    CLI_OPT_STR(run_args, effort, "--reasoning-effort", NULL, "E",
                "minimal|low|medium|high: 1|4|16|64 samples (unless --samples)", ""),
    CLI_OPT_STR(
        run_args, select, "--select", NULL, "S",
        "vote (majority over the answers) | logprob (the highest mean token log-probability) | verifier",
        "vote"),
    CLI_OPT_STR(
        run_args, extract, "--extract", NULL, "X",
        "the final answer: last_number | text | regex:ERE (the last match's group 1) | json:FIELD[.FIELD]",
        "last_number"),
    CLI_OPT_STR(run_args, verifier, "--verifier", NULL, "MODEL",
                "a model that scores each sample (implies --select verifier)", ""),
    CLI_OPT_STR(run_args, verifier_suffix, "--verifier-suffix", NULL, "T",
                "text after each sample before the judgement (\\n: a newline)", "\"\""),
    CLI_OPT_STR(run_args, verifier_yes, "--verifier-yes", NULL, "T",
                "the judgement scored (none: the sample's mean log-probability)", ""),
    CLI_OPT_FLAG(run_args, candidates, "--candidates", NULL,
                 "list every sample's answer and scores on stderr"),
};

/* Writes text to stdout, holding back a tail that could begin a stop
 * string. Returns true when a stop string was found (text printed up to it). */
typedef struct {
    char *buf; /* generated text not yet printed */
    size_t len, cap;
    const char *stops[MAX_STOPS];
    size_t n_stops;
} out_state;

static bool emit(out_state *o, const char *s, size_t n, bool final) {
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *b = realloc(o->buf, cap);
        if (!b) return true;
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    size_t partial = 0;
    int64_t at = grok_find_stop(o->buf, o->len, o->stops, o->n_stops, &partial);
    size_t show = at >= 0 ? (size_t)at : (final ? o->len : o->len - partial);
    fwrite(o->buf, 1, show, stdout);
    fflush(stdout);
    memmove(o->buf, o->buf + show, o->len - show);
    o->len -= show;
    return at >= 0;
}

/* The command line into a; -1 to go on, else the exit status. */
static int run_parse(int argc, char **argv, run_args *a, cli_cmd *cmd) {
    cli_model_args_init(&a->m);
    a->sp = grok_sampler_default_params();
    a->n_gen = 128;
    *cmd = (cli_cmd){.name = "run",
                     .usage = "[-m MODEL] (-p TEXT | -f FILE) [options]",
                     .about = "Streams a completion of the prompt to stdout; speeds to stderr.",
                     .notes = "Thinking longer: docs/think.md; grammars: docs/structured-output.md.\n"
                              "Example: grok run -m model.gguf -p 'The capital of France is' -n 32 --temp 0",
                     .memory = true};
    CLI_ADD_TABLE(cmd, "Generation", RUN_OPTS, a);
    cli_add_group(cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a->m, NULL);
    cli_add_group(cmd, "Sampling", CLI_SAMPLER_OPTS, CLI_N_SAMPLER_OPTS, &a->sp, NULL);
    CLI_ADD_TABLE(cmd, "Thinking longer: draw several samples in one batch, print the one chosen", THINK_OPTS,
                  a);
    return cli_parse(cmd, argc, argv);
}

/* The flags' combinations, and th from them; 0, or 2 after a message. */
static int run_validate(run_args *a, run_think_args *th, bool *thinking) {
    if (a->effort && think_effort_samples(a->effort) < 0) {
        cli_error("run", "--reasoning-effort '%s' is not minimal, low, medium or high", a->effort);
        return 2;
    }
    th->extract = a->extract, th->verifier = a->verifier, th->candidates = a->candidates;
    th->verifier_suffix = a->verifier_suffix, th->verifier_yes = a->verifier_yes;
    th->select = a->select      ? think_select_from_name(a->select)
                 : th->verifier ? THINK_SELECT_VERIFIER
                                : THINK_SELECT_VOTE;
    if ((int)th->select < 0) {
        cli_error("run", "--select '%s' is not vote, logprob or verifier", a->select);
        return 2;
    }
    if (th->select == THINK_SELECT_VERIFIER && !th->verifier) {
        cli_error("run", "--select verifier needs --verifier MODEL");
        return 2;
    }
    if ((th->verifier_suffix || th->verifier_yes) && !th->verifier) {
        cli_error("run", "--verifier-suffix and --verifier-yes need --verifier MODEL");
        return 2;
    }
    if (th->extract) {
        think_extractor ex;
        char xerr[GROK_ERR_SIZE];
        if (think_extractor_init(&ex, th->extract, xerr, sizeof xerr)) {
            cli_error("run", "--extract: %s", xerr);
            return 2;
        }
        think_extractor_free(&ex);
    }
    th->samples = a->samples ? (int)a->samples : a->effort ? think_effort_samples(a->effort) : 0;
    *thinking = th->samples > 0 || a->select || th->verifier || th->extract || th->candidates;
    if (*thinking && !th->samples) th->samples = think_effort_samples("medium");
    if (*thinking && grok_dist_size() > 1) {
        cli_error("run", "--samples runs in one process (under mpirun, use grok serve's think requests)");
        return 2;
    }
    if (!a->m.model) {
        cli_error("run",
                  "-m MODEL is required (no bundled models/grok-mini.gguf found; see grok run --help)");
        return 2;
    }
    if (!a->prompt == !a->prompt_file) {
        cli_error("run", "give the prompt with exactly one of -p TEXT or -f FILE");
        return 2;
    }
    if (a->grammar && a->schema) {
        cli_error("run", "--grammar and --json-schema exclude each other");
        return 2;
    }
    if ((a->grammar || a->schema) && *thinking) { /* run_think draws without a grammar */
        cli_error("run",
                  "%s does not combine with --samples/--reasoning-effort (grok serve's think requests do)",
                  a->grammar ? "--grammar" : "--json-schema");
        return 2;
    }
    return 0;
}

static int run_generate(run_args *a, run_think_args *th, bool thinking);

int cmd_run(int argc, char **argv) {
    run_args a = {0};
    cli_cmd cmd;
    int rc = run_parse(argc, argv, &a, &cmd);
    if (rc >= 0) return rc;
    char default_model[4096];
    if (!a.m.model && cli_default_model(default_model, sizeof default_model)) a.m.model = default_model;
    run_think_args th = {0};
    bool thinking = false;
    if ((rc = run_validate(&a, &th, &thinking))) return rc;
    return run_generate(&a, &th, thinking);
}

/* Decodes the prompt (hist[0..n_prompt)), then samples up to n_gen tokens
 * into hist and streams them through o; rank 0 decides each token, the
 * others follow its broadcast. 0, or 1 after a message. */
static int run_loop(grok_context *c, grok_sampler *s, grok_matcher *gm, uint64_t *mask,
                    const grok_tokenizer *tok, out_state *o, int32_t *hist, size_t n_prompt, int64_t n_gen,
                    bool ignore_eos) {
    char err[GROK_ERR_SIZE];
    const bool leader = grok_dist_rank() == 0;
    size_t n_hist = n_prompt;

    double t0 = grok_now();
    if (grok_dist_agree(grok_decode(c, hist, (int64_t)n_prompt, NULL, err, sizeof err) == 0, err,
                        sizeof err)) {
        cli_error("run", "%s", err);
        return 1;
    }
    double t1 = grok_now();
    grok_detok_stream ds;
    grok_detok_stream_init(&ds, false); /* a continuation keeps its leading space */
    char piece[GROK_DETOK_MAX_PIECE + 16];
    int64_t n_done = 0;
    bool stopped = false;
    const int32_t eos = grok_tokenizer_eos(tok);
    bool at_eos = false;
    while (n_done < n_gen && !stopped && !at_eos) {
        /* rank 0 decides the next token and whether to go on; the others
         * follow its broadcast */
        int32_t step[2] = {0, 0}; /* token, go on */
        if (leader) {
            int32_t next;
            if (gm && grok_matcher_is_done(gm)) {
                next = eos; /* the grammar is complete */
            } else if (gm) {
                int64_t allowed = grok_matcher_fill_mask(gm, mask);
                next = allowed > 0 ? grok_sampler_sample_masked(s, grok_context_logits(c), mask, hist, n_hist)
                                   : eos;
                if (allowed < 0) cli_error("run", "the grammar has too many ways to go on here; stopping");
                if (next != eos && grok_matcher_accept_token(gm, next)) next = eos;
            } else {
                next = grok_sampler_sample(s, grok_context_logits(c), hist, n_hist);
            }
            n_done++;
            at_eos = next == eos && (!ignore_eos || gm);
            if (!at_eos) {
                hist[n_hist++] = next;
                size_t k = grok_detok_stream_push(&ds, tok, next, piece, sizeof piece);
                stopped = emit(o, piece, k, false);
            }
            step[0] = next;
            step[1] = !at_eos && !stopped && n_done < n_gen;
        }
        if (grok_dist_bcast(step, sizeof step, err, sizeof err)) {
            cli_error("run", "%s", err);
            return 1;
        }
        if (!step[1]) break;
        int32_t next = step[0];
        if (!leader) n_done++;
        if (grok_decode(c, &next, 1, NULL, err, sizeof err)) {
            cli_error("run", "%s", err);
            return 1;
        }
    }
    if (!stopped && leader) {
        size_t k = grok_detok_stream_flush(&ds, piece, sizeof piece);
        emit(o, piece, k, true);
    }
    double t2 = grok_now();
    if (leader) {
        printf("\n");
        fflush(stdout); /* the text ends before the speed line on stderr */
        fprintf(stderr, "prompt: %zu tokens, %.2f tok/s | generation: %" PRId64 " tokens, %.2f tok/s\n",
                n_prompt, (double)n_prompt / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9), n_done,
                (double)n_done / (t2 - t1 > 1e-9 ? t2 - t1 : 1e-9));
    }
    grok_dist_report(stderr, n_done);
    return 0;
}

/* The prompt's ids on every rank: rank 0 tokenizes (BOS where the model
 * file says so) and broadcasts them; an empty prompt is BOS alone. NULL
 * after a message. */
static int32_t *run_prompt_ids(const grok_tokenizer *tok, const char *prompt, size_t prompt_len,
                               size_t *n_out) {
    size_t n_prompt;
    char err[GROK_ERR_SIZE];
    int32_t *ids = grok_tokenize(tok, prompt, prompt_len, true, &n_prompt);
    if (!ids) {
        cli_error("run", "out of memory tokenizing the prompt");
        return NULL;
    }
    uint64_t n_bc = n_prompt;
    if (grok_dist_bcast(&n_bc, sizeof n_bc, err, sizeof err)) {
        cli_error("run", "%s", err);
        free(ids);
        return NULL;
    }
    if (n_bc != n_prompt) { /* a follower: room for rank 0's ids */
        int32_t *r = n_bc < SIZE_MAX / sizeof *ids ? realloc(ids, (size_t)n_bc * sizeof *ids + 1) : NULL;
        if (!r) {
            cli_error("run", "out of memory for %" PRIu64 " prompt ids", n_bc);
            free(ids);
            return NULL;
        }
        ids = r;
        n_prompt = (size_t)n_bc;
    }
    if (grok_dist_bcast(ids, n_prompt * sizeof *ids, err, sizeof err)) {
        cli_error("run", "%s", err);
        free(ids);
        return NULL;
    }
    if (n_prompt == 0) { /* nothing to condition on: start from BOS */
        int32_t bos = grok_tokenizer_bos(tok);
        if (bos < 0) {
            cli_error("run", "the prompt is empty and the vocabulary has no BOS token");
            free(ids);
            return NULL;
        }
        free(ids);
        if (!(ids = malloc(sizeof *ids))) {
            cli_error("run", "out of memory");
            return NULL;
        }
        ids[0] = bos;
        n_prompt = 1;
    }
    *n_out = n_prompt;
    return ids;
}

/* Loads the model, reads the prompt and generates (or thinks longer). */
/* A generation: what it holds, freed by gen_free. */
typedef struct {
    run_args *a;
    const char *prompt;
    size_t prompt_len;
    char *file_text;
    grok_model *m;
    const grok_tokenizer *tok;
    const grok_hparams *hp;
    grok_grammar_vocab *gv; /* --grammar, --json-schema: rank 0's */
    grok_grammar *gram;
    grok_matcher *gm;
    uint64_t *mask;
    int32_t *ids; /* the prompt's */
    size_t n_prompt;
    int64_t n_gen; /* -n, cut to what the context holds */
    grok_context_params cp;
    out_state o;
} gen_job;

/* The prompt's text: rank 0 reads it, the others get its ids. 0, or 1
 * after a message. */
static int gen_read_prompt(gen_job *j) {
    const run_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (grok_dist_rank() != 0) {
        j->prompt = "";
    } else if (a->prompt_file) {
        if (!(j->file_text = grok_read_file(a->prompt_file, &j->prompt_len, err, sizeof err))) {
            cli_error("run", "-f: %s", err);
            return 1;
        }
        j->prompt = j->file_text;
    } else {
        j->prompt = a->prompt, j->prompt_len = strlen(a->prompt);
    }
    return 0;
}

/* The model, and on rank 0 (which alone samples) the grammar's matcher.
 * 0, or 1 after a message. */
static int gen_load(gen_job *j) {
    const run_args *a = j->a;
    char err[GROK_ERR_SIZE];
    if (!(j->m = cli_load_model("run", a->m.model, a->m.lora, a->m.lora_scale))) return 1;
    if (!(j->tok = grok_model_tokenizer(j->m))) {
        cli_error("run", "%s has no vocabulary (tokenizer.ggml.*): text prompts need one", a->m.model);
        return 1;
    }
    j->hp = grok_model_hparams(j->m);
    if (grok_dist_rank() != 0 || (!a->grammar && !a->schema)) return 0;
    if (!(j->gv = grok_grammar_vocab_create(j->tok, err, sizeof err))) {
        cli_error("run", "%s", err);
        return 1;
    }
    if (!(j->gram = cli_load_grammar("run", a->grammar, a->schema, j->gv))) return 1;
    j->gm = grok_matcher_create(j->gram);
    j->mask = malloc(((size_t)j->hp->n_vocab + 63) / 64 * sizeof *j->mask);
    if (!j->gm || !j->mask) {
        cli_error("run", "out of memory");
        return 1;
    }
    return 0;
}

/* The prompt's ids, and the context's shape with -n cut to fit it. 0, or
 * 1 after a message. */
static int gen_tokens(gen_job *j) {
    const run_args *a = j->a;
    if (!(j->ids = run_prompt_ids(j->tok, j->prompt, j->prompt_len, &j->n_prompt))) return 1;
    j->cp.n_ctx = a->m.ctx > 0 ? a->m.ctx : j->hp->n_ctx_train;
    if ((int64_t)j->n_prompt + j->n_gen > j->cp.n_ctx) j->n_gen = j->cp.n_ctx - (int64_t)j->n_prompt;
    if (j->n_gen < 0) {
        cli_error("run", "the prompt has %zu tokens, more than the context of %" PRId64, j->n_prompt,
                  j->cp.n_ctx);
        return 1;
    }
    j->cp.n_threads = (int)a->m.threads;
    j->cp.n_batch = a->m.batch;
    return 0;
}

/* --samples, --reasoning-effort: several samples, one printed. The exit
 * status. */
static int gen_think(gen_job *j, run_think_args *th) {
    const run_args *a = j->a;
    th->sp = a->sp;
    th->n_gen = j->n_gen, th->n_ctx = j->cp.n_ctx, th->batch = a->m.batch, th->threads = (int)a->m.threads;
    th->kv_type = j->cp.kv_type;
    th->ignore_eos = a->ignore_eos;
    th->stops = j->o.stops, th->n_stops = j->o.n_stops;
    th->progress = isatty(2);
    /* the verifier's texts may hold newlines: \n in the flags */
    char *vsuf = th->verifier_suffix ? cli_unescape(th->verifier_suffix) : NULL;
    char *vyes = th->verifier_yes ? cli_unescape(th->verifier_yes) : NULL;
    th->verifier_suffix = vsuf, th->verifier_yes = vyes;
    int rc = run_think(j->m, j->ids, j->n_prompt, j->prompt, j->prompt_len, th);
    free(vsuf);
    free(vyes);
    return rc;
}

/* One sample streamed to stdout. The exit status. */
static int gen_stream(gen_job *j) {
    char err[GROK_ERR_SIZE];
    grok_context *c = grok_context_create(j->m, &j->cp, err, sizeof err);
    grok_sampler *s = grok_sampler_create(&j->a->sp, j->hp->n_vocab);
    int32_t *hist = malloc((j->n_prompt + (size_t)j->n_gen + 1) * sizeof(int32_t));
    int rc = 1;
    if (c && (!s || !hist)) snprintf(err, sizeof err, "out of memory");
    if (grok_dist_agree(c && s && hist, err, sizeof err)) {
        cli_error("run", "%s", err);
    } else {
        memcpy(hist, j->ids, j->n_prompt * sizeof(int32_t));
        rc = run_loop(c, s, j->gm, j->mask, j->tok, &j->o, hist, j->n_prompt, j->n_gen, j->a->ignore_eos);
    }
    free(hist);
    grok_sampler_free(s);
    grok_context_free(c);
    return rc;
}

static void gen_free(gen_job *j) {
    free(j->o.buf);
    free(j->ids);
    free(j->mask);
    grok_matcher_free(j->gm);
    grok_grammar_free(j->gram);
    grok_grammar_vocab_free(j->gv);
    grok_model_free(j->m);
    free(j->file_text);
}

static int run_generate(run_args *a, run_think_args *th, bool thinking) {
    gen_job j = {.a = a, .n_gen = a->n_gen, .cp = grok_context_default_params()};
    for (size_t k = 0; k < a->stops.n; k++) j.o.stops[j.o.n_stops++] = a->stops.v[k];
    j.cp.kv_type = cli_kv_grok_type(&a->m);
    if (gen_read_prompt(&j)) return 1;
    int rc = gen_load(&j) || gen_tokens(&j) ? 1 : thinking ? gen_think(&j, th) : gen_stream(&j);
    gen_free(&j);
    return rc;
}
