/*
 * fuzz_chat_jsonl.c - the chat fine-tuning data of grok train --data-format
 * chat (train_read_chat in src/cli/train_data.c: JSONL lines of
 * {"messages": [...]}, rendered by the built-in template and tokenized with
 * the assistant tokens marked). A refused file must come with a message
 * naming file:line and leave nothing allocated; an accepted one must give
 * examples of 2..max_len in-vocabulary tokens, each with at least one
 * target that counts, and a sample prompt and answer.
 */
#include "fuzz.h" /* first: cli.h takes FILE from its <stdio.h> */
#include "cli/cli.h"
#include "cli/train_cli.h"
#include "server/server.h"
#include "tok_check.h"

static grok_tokenizer *g_tok;
static grok_chat_template g_tpl;
static int64_t g_vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_tok = fuzz_load_tokenizer("fuzz_chat_jsonl");
    g_vocab = grok_tokenizer_n_vocab(g_tok);
    char err[GROK_ERR_SIZE];
    if (grok_chat_template_load(&g_tpl, NULL, err, sizeof err)) {
        fprintf(stderr, "fuzz_chat_jsonl: %s\n", err);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_bytes b = {data, size};
    const int64_t max_len = 2 + fuzz_take_u8(&b) % 200; /* also cuts conversations */
    const char *files[] = {fuzz_file(b.p, b.n)};
    train_chat_data d;
    if (train_read_chat(files, 1, &g_tpl, g_tok, max_len, &d) != 0) {
        FUZZ_CHECK(d.ex == NULL && d.n == 0 && !d.sample_prompt && !d.sample_answer,
                   "a refusal kept its data");
        return 0;
    }
    FUZZ_CHECK(d.n > 0, "accepted with no conversation");
    FUZZ_CHECK(d.sample_prompt && d.sample_answer, "accepted without the sample prompt and answer");
    for (int64_t i = 0; i < d.n; i++) {
        const train_chat_example *e = &d.ex[i];
        FUZZ_CHECK(e->n >= 2 && e->n <= max_len, "example %lld: %lld tokens (max %lld)", (long long)i,
                   (long long)e->n, (long long)max_len);
        bool any = false;
        for (int64_t k = 0; k < e->n; k++)
            FUZZ_CHECK(e->ids[k] >= 0 && e->ids[k] < g_vocab, "example %lld: token %lld is %d", (long long)i,
                       (long long)k, e->ids[k]);
        for (int64_t k = 0; k + 1 < e->n; k++) any |= e->tmask[k] != 0;
        FUZZ_CHECK(any, "example %lld has no target that counts", (long long)i);
    }
    train_chat_free(&d);
    return 0;
}
