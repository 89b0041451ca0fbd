/*
 * cmd_serve.c - `grok serve`: flags for the OpenAI-compatible HTTP server
 * (src/server/). The server itself lives outside the CLI so that its
 * libraries (libmicrohttpd, cJSON) stay out of libgrok.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static void usage(FILE *out) {
    fprintf(out, "usage: grok serve -m MODEL [options]\n\n"
                 "OpenAI-compatible HTTP server: POST /v1/completions, /v1/chat/completions,\n"
                 "/tokenize, /detokenize; GET /v1/models, /health, /metrics, and a chat page at /.\n"
                 "Runs until SIGTERM.\n\n"
                 "  -m MODEL             model file (GGUF)\n"
                 "  --host ADDR          address to bind (127.0.0.1)\n"
                 "  --port N             port (8080; 0 = any free port)\n"
                 "  --port-file FILE     write the bound port to FILE once listening\n"
                 "  --parallel N         sequences decoded together, one slot each (4)\n"
                 "  --queue N            requests that may wait for a slot; more get 503 (16)\n"
                 "  --ctx N              context length of each slot (2048, at most the model's)\n"
                 "  --threads N          worker threads (all cores)\n"
                 "  --batch N            tokens per forward step (256)\n"
                 "  --chunk N            prompt tokens per slot per step (64)\n"
                 "  --timeout S          seconds a request may take from arrival (600)\n"
                 "  --drain S            after SIGTERM, seconds in-flight requests may finish (10)\n"
                 "  --max-body N         largest request body in bytes (1048576)\n"
                 "  --kv-type T          KV cache type: f32 (default) or f16\n"
                 "  --api-key KEY        require Authorization: Bearer KEY\n"
                 "  --chat-template FILE chat template (docs/serving.md; grok train --data-format chat\n"
                 "                       fine-tunes with the same one)\n"
                 "  --lora FILE          apply a LoRA adapter (grok train --lora) at load, unmerged\n"
                 "  --lora-scale S       adapter strength (1)\n"
                 "  --alias NAME         model name in responses (the file name)\n"
                 "  --verifier MODEL     a model that scores think samples (think.select \"verifier\")\n"
                 "  --verifier-suffix T  text after each candidate before the judgement (\"\"; \\n: newline)\n"
                 "  --verifier-yes T     the judgement whose log-probability is the score; without\n"
                 "                       it, the candidate's mean log-probability given the prompt\n"
                 "                       (see docs/think.md)\n"
                 "  --no-webui           no chat page at / (it is on by default; see docs/serving.md)\n\n"
                 "Under mpirun the model is split across the ranks (--mpi-split ffn|experts|layers,\n"
                 "see docs/distributed.md): rank 0 serves HTTP, the others follow its steps.\n");
}

int cmd_serve(int argc, char **argv) {
    server_config c = {.host = "127.0.0.1",
                       .port = 8080,
                       .parallel = 4,
                       .queue = 16,
                       .n_ctx = 2048,
                       .threads = 0,
                       .batch = 256,
                       .chunk = 64,
                       .timeout_s = 600,
                       .drain_s = 10,
                       .max_body = 1 << 20,
                       .kv_type = GROK_TYPE_F32,
                       .lora_scale = 1.0f};
    const char *kv = "f32";
    int64_t port = 8080, max_body = 1 << 20;
    float timeout = 600, drain = 10;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        }
        if (cli_flag(argv, argc, &i, "--no-webui", NULL)) {
            c.no_webui = true;
            continue;
        }
        if (cli_str(argv, argc, &i, "-m", "--model", &c.model_path) ||
            cli_str(argv, argc, &i, "--host", NULL, &c.host) ||
            cli_str(argv, argc, &i, "--port-file", NULL, &c.port_file) ||
            cli_str(argv, argc, &i, "--kv-type", NULL, &kv) ||
            cli_str(argv, argc, &i, "--api-key", NULL, &c.api_key) ||
            cli_str(argv, argc, &i, "--chat-template", NULL, &c.chat_template) ||
            cli_str(argv, argc, &i, "--alias", NULL, &c.model_name) ||
            cli_str(argv, argc, &i, "--verifier", NULL, &c.verifier_path) ||
            cli_str(argv, argc, &i, "--verifier-suffix", NULL, &c.verifier_suffix) ||
            cli_str(argv, argc, &i, "--verifier-yes", NULL, &c.verifier_yes) ||
            cli_str(argv, argc, &i, "--lora", NULL, &c.lora) ||
            cli_f32(argv, argc, &i, "--lora-scale", NULL, -1e6, 1e6, &c.lora_scale) ||
            cli_i64(argv, argc, &i, "--port", NULL, 0, 65535, &port) ||
            cli_i64(argv, argc, &i, "--parallel", "-np", 1, 256, &c.parallel) ||
            cli_i64(argv, argc, &i, "--queue", NULL, 0, 1 << 20, &c.queue) ||
            cli_i64(argv, argc, &i, "--ctx", "-c", 2, 1 << 24, &c.n_ctx) ||
            cli_i64(argv, argc, &i, "--threads", "-t", 0, 1024, &c.threads) ||
            cli_i64(argv, argc, &i, "--batch", "-b", 1, 1 << 16, &c.batch) ||
            cli_i64(argv, argc, &i, "--chunk", NULL, 1, 1 << 16, &c.chunk) ||
            cli_i64(argv, argc, &i, "--max-body", NULL, 1024, 1 << 30, &max_body) ||
            cli_f32(argv, argc, &i, "--timeout", NULL, 0.001, 1e7, &timeout) ||
            cli_f32(argv, argc, &i, "--drain", NULL, 0, 1e6, &drain))
            continue;
        return cli_unknown("serve", argv[i]);
    }
    if (!c.model_path) {
        cli_error("serve", "-m MODEL is required (see grok serve --help)");
        return 2;
    }
    if (strcmp(kv, "f32") == 0) {
        c.kv_type = GROK_TYPE_F32;
    } else if (strcmp(kv, "f16") == 0) {
        c.kv_type = GROK_TYPE_F16;
    } else {
        cli_error("serve", "--kv-type '%s' is not f32 or f16", kv);
        return 2;
    }
    if ((c.verifier_suffix || c.verifier_yes) && !c.verifier_path) {
        cli_error("serve", "--verifier-suffix and --verifier-yes need --verifier MODEL");
        return 2;
    }
    if (c.api_key && !c.api_key[0]) {
        cli_error("serve", "--api-key must not be empty");
        return 2;
    }
    /* the verifier's texts may hold newlines: \n in the flags */
    char *vsuf = c.verifier_suffix ? cli_unescape(c.verifier_suffix) : NULL;
    char *vyes = c.verifier_yes ? cli_unescape(c.verifier_yes) : NULL;
    c.verifier_suffix = vsuf, c.verifier_yes = vyes;
    /* every generating slot needs one token of each step */
    if (c.batch < c.parallel) c.batch = c.parallel;
    c.port = (int)port;
    c.max_body = (size_t)max_body;
    c.timeout_s = timeout;
    c.drain_s = drain;
    int rc = server_run(&c);
    free(vsuf);
    free(vyes);
    return rc;
}
