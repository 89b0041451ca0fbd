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
#include "dist/dist.h"
#include "model/lora.h"
#include "server/think.h"

#define MAX_STOPS 16

static void usage(FILE *out) {
    fprintf(out, "usage: grok run -m MODEL (-p TEXT | -f FILE) [options]\n\n"
                 "Streams a completion of the prompt to stdout; speeds to stderr.\n\n"
                 "  -m MODEL             model file (GGUF); default: the bundled models/grok-mini.gguf\n"
                 "  -p TEXT              prompt\n"
                 "  -f FILE              read the prompt from FILE (bytes as they are)\n"
                 "  -n N                 tokens to generate (128)\n"
                 "  --temp T             temperature; 0 = greedy (0.8)\n"
                 "  --top-k K            keep the K most likely tokens; 0 = off (40)\n"
                 "  --top-p P            nucleus: official Grok-1 semantics; 1 = off (0.95)\n"
                 "  --min-p P            drop tokens below P x the top probability (0.05)\n"
                 "  --repeat-penalty R   penalise recent tokens (1 = off)\n"
                 "  --repeat-last-n N    window for the penalty (64; -1 = all)\n"
                 "  --seed S             random seed (same seed, same text)\n"
                 "  --stop TEXT          stop before this text (repeatable)\n"
                 "  --grammar FILE       only text this GBNF grammar (llama.cpp's format) allows\n"
                 "  --json-schema FILE   only JSON that validates against this JSON Schema\n"
                 "  --ignore-eos         keep going past the end-of-sequence token\n"
                 "  --ctx N              context length (the model's)\n"
                 "  --kv-type T          KV cache type: f32 (default) or f16\n"
                 "  --threads N          worker threads (all cores)\n"
                 "  --batch N            prompt tokens per forward pass (256)\n"
                 "  --lora FILE          apply a LoRA adapter (from grok train --lora); the adapted\n"
                 "                       weights are held as f32 copies in memory\n"
                 "  --lora-scale S       adapter strength (1)\n\n"
                 "Thinking longer (docs/think.md): draw several samples in one batch, print the one chosen.\n"
                 "  --samples K          samples of the prompt, 1..64 (1 = off)\n"
                 "  --reasoning-effort E minimal|low|medium|high: 1|4|16|64 samples (unless --samples)\n"
                 "  --select S           vote (majority over the answers; default) | logprob (the\n"
                 "                       highest mean token log-probability) | verifier\n"
                 "  --extract X          the final answer: last_number (default) | text | regex:ERE\n"
                 "                       (the last match's group 1) | json:FIELD[.FIELD]\n"
                 "  --verifier MODEL     a model that scores each sample (implies --select verifier)\n"
                 "  --verifier-suffix T  text after each sample before the judgement (\"\"; \\n: newline)\n"
                 "  --verifier-yes T     the judgement scored (none: the sample's mean log-probability)\n"
                 "  --candidates         list every sample's answer and scores on stderr\n");
}

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

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *kv = "f32", *lora = NULL;
    const char *grammar_path = NULL, *schema_path = NULL;
    const char *effort = NULL, *select = NULL;
    int64_t samples = 0;
    run_think_args th = {0};
    float lora_scale = 1.0f;
    int64_t n_gen = 128, threads = 0, ctx = 0, batch = 256, top_k = -1, last_n = -2;
    uint64_t seed = 0;
    bool seed_set = false, ignore_eos = false;
    grok_sampler_params sp = grok_sampler_default_params();
    out_state o = {0};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        const char *stop;
        if (cli_str(argv, argc, &i, "--stop", NULL, &stop)) {
            if (o.n_stops == MAX_STOPS) {
                cli_error("run", "at most %d --stop strings", MAX_STOPS);
                return 2;
            }
            o.stops[o.n_stops++] = stop;
            continue;
        }
        if (cli_u64(argv, argc, &i, "--seed", "-s", &seed)) {
            seed_set = true;
            continue;
        }
        if (cli_flag(argv, argc, &i, "--ignore-eos", NULL)) {
            ignore_eos = true;
            continue;
        }
        if (cli_flag(argv, argc, &i, "--candidates", NULL)) {
            th.candidates = true;
            continue;
        }
        if (cli_i64(argv, argc, &i, "--samples", NULL, 1, THINK_MAX_SAMPLES, &samples) ||
            cli_str(argv, argc, &i, "--reasoning-effort", NULL, &effort) ||
            cli_str(argv, argc, &i, "--select", NULL, &select) ||
            cli_str(argv, argc, &i, "--extract", NULL, &th.extract) ||
            cli_str(argv, argc, &i, "--verifier", NULL, &th.verifier) ||
            cli_str(argv, argc, &i, "--verifier-suffix", NULL, &th.verifier_suffix) ||
            cli_str(argv, argc, &i, "--verifier-yes", NULL, &th.verifier_yes))
            continue;
        if (cli_str(argv, argc, &i, "-m", "--model", &model_path) ||
            cli_str(argv, argc, &i, "-p", "--prompt", &prompt) ||
            cli_str(argv, argc, &i, "-f", "--file", &prompt_file) ||
            cli_str(argv, argc, &i, "--kv-type", NULL, &kv) ||
            cli_str(argv, argc, &i, "--lora", NULL, &lora) ||
            cli_str(argv, argc, &i, "--grammar", NULL, &grammar_path) ||
            cli_str(argv, argc, &i, "--json-schema", NULL, &schema_path) ||
            cli_f32(argv, argc, &i, "--lora-scale", NULL, -1e6, 1e6, &lora_scale) ||
            cli_i64(argv, argc, &i, "-n", "--n-predict", 0, 1 << 30, &n_gen) ||
            cli_i64(argv, argc, &i, "--threads", "-t", 0, 1024, &threads) ||
            cli_i64(argv, argc, &i, "--ctx", "-c", 0, 1 << 24, &ctx) ||
            cli_i64(argv, argc, &i, "--batch", "-b", 1, 1 << 20, &batch) ||
            cli_i64(argv, argc, &i, "--top-k", NULL, 0, 1 << 30, &top_k) ||
            cli_i64(argv, argc, &i, "--repeat-last-n", NULL, -1, 1 << 30, &last_n) ||
            cli_f32(argv, argc, &i, "--temp", "--temperature", 0, 1e6, &sp.temperature) ||
            cli_f32(argv, argc, &i, "--top-p", NULL, 0, 1, &sp.top_p) ||
            cli_f32(argv, argc, &i, "--min-p", NULL, 0, 1, &sp.min_p) ||
            cli_f32(argv, argc, &i, "--repeat-penalty", NULL, 0.01, 100, &sp.repeat_penalty) ||
            cli_f32(argv, argc, &i, "--presence-penalty", NULL, -2, 2, &sp.presence_penalty) ||
            cli_f32(argv, argc, &i, "--frequency-penalty", NULL, -2, 2, &sp.frequency_penalty))
            continue;
        return cli_unknown("run", argv[i]);
    }
    if (effort && think_effort_samples(effort) < 0) {
        cli_error("run", "--reasoning-effort '%s' is not minimal, low, medium or high", effort);
        return 2;
    }
    th.select = select ? think_select_from_name(select) : th.verifier ? THINK_SELECT_VERIFIER : THINK_SELECT_VOTE;
    if ((int)th.select < 0) {
        cli_error("run", "--select '%s' is not vote, logprob or verifier", select);
        return 2;
    }
    if (th.select == THINK_SELECT_VERIFIER && !th.verifier) {
        cli_error("run", "--select verifier needs --verifier MODEL");
        return 2;
    }
    if ((th.verifier_suffix || th.verifier_yes) && !th.verifier) {
        cli_error("run", "--verifier-suffix and --verifier-yes need --verifier MODEL");
        return 2;
    }
    if (th.extract) {
        think_extractor ex;
        char xerr[GROK_ERR_SIZE];
        if (think_extractor_init(&ex, th.extract, xerr, sizeof xerr)) {
            cli_error("run", "--extract: %s", xerr);
            return 2;
        }
        think_extractor_free(&ex);
    }
    th.samples = samples ? (int)samples : effort ? think_effort_samples(effort) : 0;
    const bool thinking = th.samples > 0 || select || th.verifier || th.extract || th.candidates;
    if (thinking && !th.samples) th.samples = think_effort_samples("medium");
    if (thinking && grok_dist_size() > 1) {
        cli_error("run", "--samples runs in one process (under mpirun, use grok serve's think requests)");
        return 2;
    }
    if (top_k >= 0) sp.top_k = (int32_t)top_k;
    if (last_n >= -1) sp.repeat_last_n = (int32_t)last_n;
    if (seed_set) sp.seed = seed;
    char default_model[4096];
    if (!model_path && cli_default_model(default_model, sizeof default_model)) model_path = default_model;
    if (!model_path) {
        cli_error("run",
                  "-m MODEL is required (no bundled models/grok-mini.gguf found; see grok run --help)");
        return 2;
    }
    if (!prompt == !prompt_file) {
        cli_error("run", "give the prompt with exactly one of -p TEXT or -f FILE");
        return 2;
    }
    if (grammar_path && schema_path) {
        cli_error("run", "--grammar and --json-schema exclude each other");
        return 2;
    }
    if ((grammar_path || schema_path) && thinking) { /* run_think draws without a grammar */
        cli_error("run", "%s does not combine with --samples/--reasoning-effort (grok serve's think requests do)",
                  grammar_path ? "--grammar" : "--json-schema");
        return 2;
    }
    grok_context_params cp = grok_context_default_params();
    if (!cli_kv_type("run", kv, &cp.kv_type)) return 2;
    char err[GROK_ERR_SIZE];
    size_t prompt_len = 0;
    char *file_text = NULL;
    const bool leader = grok_dist_rank() == 0;
    if (!leader) { /* rank 0 reads the prompt; the others get its ids */
        prompt = "", prompt_file = NULL;
    } else if (prompt_file) {
        file_text = grok_read_file(prompt_file, &prompt_len, err, sizeof err);
        if (!file_text) {
            cli_error("run", "-f: %s", err);
            return 1;
        }
        prompt = file_text;
    } else {
        prompt_len = strlen(prompt);
    }

    int rc = 1;
    grok_context *c = NULL;
    grok_sampler *s = NULL;
    int32_t *hist = NULL;
    grok_grammar_vocab *gv = NULL;
    grok_grammar *gram = NULL;
    grok_matcher *gm = NULL;
    uint64_t *mask = NULL;
    grok_model *m = grok_model_load(model_path, err, sizeof err);
    bool ok = m && (!lora || grok_model_apply_lora(m, lora, lora_scale, err, sizeof err) == 0) &&
              grok_dist_attach(m, err, sizeof err) == 0;
    if (grok_dist_agree(ok, err, sizeof err)) {
        cli_error("run", "%s", err);
        goto done;
    }
    const grok_tokenizer *tok = grok_model_tokenizer(m);
    if (!tok) {
        cli_error("run", "%s has no vocabulary (tokenizer.ggml.*): text prompts need one", model_path);
        goto done;
    }
    const grok_hparams *hp = grok_model_hparams(m);
    if (leader && (grammar_path || schema_path)) { /* rank 0 alone samples */
        if (!(gv = grok_grammar_vocab_create(tok, err, sizeof err))) {
            cli_error("run", "%s", err);
            goto done;
        }
        if (!(gram = cli_load_grammar("run", grammar_path, schema_path, gv))) goto done;
        gm = grok_matcher_create(gram);
        mask = malloc(((size_t)hp->n_vocab + 63) / 64 * sizeof *mask);
        if (!gm || !mask) {
            cli_error("run", "out of memory");
            goto done;
        }
    }
    size_t n_prompt;
    int32_t *ids = grok_tokenize(tok, prompt, prompt_len, true, &n_prompt);
    if (!ids) {
        cli_error("run", "out of memory tokenizing the prompt");
        goto done;
    }
    uint64_t n_bc = n_prompt;
    if (grok_dist_bcast(&n_bc, sizeof n_bc, err, sizeof err)) {
        cli_error("run", "%s", err);
        free(ids);
        goto done;
    }
    if (n_bc != n_prompt) { /* a follower: room for rank 0's ids */
        int32_t *r = n_bc < SIZE_MAX / sizeof *ids ? realloc(ids, (size_t)n_bc * sizeof *ids + 1) : NULL;
        if (!r) {
            cli_error("run", "out of memory for %" PRIu64 " prompt ids", n_bc);
            free(ids);
            goto done;
        }
        ids = r;
        n_prompt = (size_t)n_bc;
    }
    if (grok_dist_bcast(ids, n_prompt * sizeof *ids, err, sizeof err)) {
        cli_error("run", "%s", err);
        free(ids);
        goto done;
    }
    if (n_prompt == 0) { /* nothing to condition on: start from BOS */
        int32_t bos = grok_tokenizer_bos(tok);
        if (bos < 0) {
            cli_error("run", "the prompt is empty and the vocabulary has no BOS token");
            free(ids);
            goto done;
        }
        free(ids);
        if (!(ids = malloc(sizeof *ids))) {
            cli_error("run", "out of memory");
            goto done;
        }
        ids[0] = bos;
        n_prompt = 1;
    }
    cp.n_ctx = ctx > 0 ? ctx : hp->n_ctx_train;
    if ((int64_t)n_prompt + n_gen > cp.n_ctx) n_gen = cp.n_ctx - (int64_t)n_prompt;
    if (n_gen < 0) {
        cli_error("run", "the prompt has %zu tokens, more than the context of %" PRId64, n_prompt, cp.n_ctx);
        free(ids);
        goto done;
    }
    cp.n_threads = (int)threads;
    cp.n_batch = batch;
    if (thinking) {
        th.sp = sp;
        th.n_gen = n_gen, th.n_ctx = cp.n_ctx, th.batch = batch, th.threads = (int)threads;
        th.kv_type = cp.kv_type;
        th.ignore_eos = ignore_eos;
        th.stops = o.stops, th.n_stops = o.n_stops;
        th.progress = isatty(2);
        /* the verifier's texts may hold newlines: \n in the flags */
        char *vsuf = th.verifier_suffix ? cli_unescape(th.verifier_suffix) : NULL;
        char *vyes = th.verifier_yes ? cli_unescape(th.verifier_yes) : NULL;
        th.verifier_suffix = vsuf, th.verifier_yes = vyes;
        rc = run_think(m, ids, n_prompt, prompt, prompt_len, &th);
        free(vsuf);
        free(vyes);
        free(ids);
        goto done;
    }
    c = grok_context_create(m, &cp, err, sizeof err);
    s = grok_sampler_create(&sp, hp->n_vocab);
    hist = malloc((n_prompt + (size_t)n_gen + 1) * sizeof(int32_t));
    if (c && (!s || !hist)) snprintf(err, sizeof err, "out of memory");
    if (grok_dist_agree(c && s && hist, err, sizeof err)) {
        cli_error("run", "%s", err);
        free(ids);
        goto done;
    }
    memcpy(hist, ids, n_prompt * sizeof(int32_t));
    free(ids);
    size_t n_hist = n_prompt;

    double t0 = grok_now();
    if (grok_dist_agree(grok_decode(c, hist, (int64_t)n_prompt, NULL, err, sizeof err) == 0, err,
                        sizeof err)) {
        cli_error("run", "%s", err);
        goto done;
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
                stopped = emit(&o, piece, k, false);
            }
            step[0] = next;
            step[1] = !at_eos && !stopped && n_done < n_gen;
        }
        if (grok_dist_bcast(step, sizeof step, err, sizeof err)) {
            cli_error("run", "%s", err);
            goto done;
        }
        if (!step[1]) break;
        int32_t next = step[0];
        if (!leader) n_done++;
        if (grok_decode(c, &next, 1, NULL, err, sizeof err)) {
            cli_error("run", "%s", err);
            goto done;
        }
    }
    if (!stopped && leader) {
        size_t k = grok_detok_stream_flush(&ds, piece, sizeof piece);
        emit(&o, piece, k, true);
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
    rc = 0;
done:
    free(o.buf);
    free(hist);
    free(mask);
    grok_matcher_free(gm);
    grok_grammar_free(gram);
    grok_grammar_vocab_free(gv);
    grok_sampler_free(s);
    grok_context_free(c);
    grok_model_free(m);
    free(file_text);
    return rc;
}
