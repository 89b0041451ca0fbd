/*
 * cmd_serve.c - `grok serve`: flags for the OpenAI-compatible HTTP server
 * (src/server/). The server itself lives outside the CLI so that its
 * libraries (libmicrohttpd, cJSON) stay out of libgrok.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "server/server.h"

typedef struct {
    server_config c;
    cli_model_args m;
    int64_t port, max_body;
    float timeout, drain, header_timeout, body_timeout;
} serve_args;

#define C(f) c.f
static const cli_opt SERVE_OPTS[] = {
    CLI_OPT_STR(serve_args, C(host), "--host", NULL, "ADDR", "the address to bind", NULL),
    CLI_OPT_I64(serve_args, port, "--port", NULL, "N", 0, 65535, "the port; 0 = any free port", NULL),
    CLI_OPT_STR(serve_args, C(port_file), "--port-file", NULL, "FILE",
                "write the bound port to FILE once listening", ""),
    CLI_OPT_I64(serve_args, C(parallel), "--parallel", "-np", "N", 1, 256,
                "sequences decoded together, one slot each", NULL),
    CLI_OPT_I64(serve_args, C(queue), "--queue", NULL, "N", 0, 1 << 20,
                "requests that may wait for a slot; more get 503", NULL),
    CLI_OPT_I64(serve_args, C(n_ctx), "--ctx", "-c", "N", 2, 1 << 24,
                "the context length of each slot (at most the model's)", NULL),
    CLI_OPT_I64(serve_args, C(batch), "--batch", "-b", "N", 1, 1 << 16, "tokens per forward step", NULL),
    CLI_OPT_I64(serve_args, C(chunk), "--chunk", NULL, "N", 1, 1 << 16, "prompt tokens per slot per step",
                NULL),
    CLI_OPT_F32(serve_args, timeout, "--timeout", NULL, "S", 0.001, 1e7,
                "seconds a request may take from arrival", NULL),
    CLI_OPT_F32(serve_args, drain, "--drain", NULL, "S", 0, 1e6,
                "after SIGTERM, seconds in-flight requests may finish", NULL),
    CLI_OPT_I64(serve_args, max_body, "--max-body", NULL, "N", 1024, 1 << 30,
                "the largest request body in bytes", NULL),
    CLI_OPT_I64(serve_args, C(conn_per_addr), "--conn-per-addr", NULL, "N", 0, 1 << 24,
                "connections one client address may hold, more are refused; 0 = no limit (e.g. behind a "
                "reverse proxy)",
                NULL),
    CLI_OPT_I64(serve_args, C(max_waiting), "--max-waiting", NULL, "N", 1, 1 << 24,
                "connections without a complete request; past it the one waiting longest is closed", NULL),
    CLI_OPT_F32(serve_args, header_timeout, "--header-timeout", NULL, "S", 0.01, 1e6,
                "seconds a connection may wait for its request's headers", NULL),
    CLI_OPT_F32(serve_args, body_timeout, "--body-timeout", NULL, "S", 0.01, 1e6,
                "seconds the body may take after the headers", NULL),
    CLI_OPT_I64(serve_args, C(http_threads), "--http-threads", NULL, "N", 1, 256, "HTTP event-loop threads",
                NULL),
    CLI_OPT_STR(serve_args, C(api_key), "--api-key", NULL, "KEY", "require Authorization: Bearer KEY", ""),
    CLI_OPT_STR(
        serve_args, C(chat_template), "--chat-template", NULL, "FILE",
        "the chat template (docs/serving.md; grok train --data-format chat fine-tunes with the same one)",
        "the built-in one"),
    CLI_OPT_STR(serve_args, C(model_name), "--alias", NULL, "NAME", "the model's name in responses",
                "the file name"),
    CLI_OPT_STR(serve_args, C(verifier_path), "--verifier", NULL, "MODEL",
                "a model that scores think samples (think.select \"verifier\")", ""),
    CLI_OPT_STR(serve_args, C(verifier_suffix), "--verifier-suffix", NULL, "T",
                "text after each candidate before the judgement (\\n: a newline)", "\"\""),
    CLI_OPT_STR(serve_args, C(verifier_yes), "--verifier-yes", NULL, "T",
                "the judgement whose log-probability is the score; without it, the candidate's mean "
                "log-probability given the prompt (see docs/think.md)",
                ""),
    CLI_OPT_FLAG(serve_args, C(no_webui), "--no-webui", NULL,
                 "no chat page at / (it is on by default; docs/serving.md)"),
};
#undef C

int cmd_serve(int argc, char **argv) {
    serve_args a = {.c = {.host = "127.0.0.1",
                          .parallel = 4,
                          .queue = 16,
                          .n_ctx = 2048,
                          .batch = 256,
                          .chunk = 64,
                          .http_threads = 4,
                          .conn_per_addr = 256,
                          .max_waiting = 512},
                    .port = 8080,
                    .max_body = 1 << 20,
                    .timeout = 600,
                    .drain = 10,
                    .header_timeout = 10,
                    .body_timeout = 30};
    cli_model_args_init(&a.m);
    cli_cmd cmd = {.name = "serve",
                   .usage = "-m MODEL [options]",
                   .about =
                       "OpenAI-compatible HTTP server: POST /v1/completions, /v1/chat/completions,\n"
                       "/tokenize, /detokenize; GET /v1/models, /health, /metrics, and a chat page at /.\n"
                       "Runs until SIGTERM.",
                   .notes = "Under mpirun the model is split across the ranks (--mpi-split\n"
                            "ffn|experts|layers, see docs/distributed.md): rank 0 serves HTTP, the others\n"
                            "follow its steps.",
                   .memory = true};
    CLI_ADD_TABLE(&cmd, "Server", SERVE_OPTS, &a);
    /* the server's own --ctx (per slot) and --batch (per step) shadow the shared ones */
    cli_add_group(&cmd, "Model and compute", CLI_MODEL_OPTS, CLI_N_MODEL_OPTS, &a.m, NULL);
    int prc = cli_parse(&cmd, argc, argv);
    if (prc >= 0) return prc;
    server_config c = a.c;
    c.model_path = a.m.model;
    c.lora = a.m.lora;
    c.lora_scale = a.m.lora_scale;
    c.threads = a.m.threads;
    c.kv_type = cli_kv_grok_type(&a.m);
    if (!c.model_path) {
        cli_error("serve", "-m MODEL is required (see grok serve --help)");
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
    c.port = (int)a.port;
    c.max_body = (size_t)a.max_body;
    c.timeout_s = a.timeout;
    c.drain_s = a.drain;
    c.header_timeout_s = a.header_timeout;
    c.body_timeout_s = a.body_timeout;
    int rc = server_run(&c);
    free(vsuf);
    free(vyes);
    return rc;
}
