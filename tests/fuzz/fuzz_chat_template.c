/*
 * fuzz_chat_template.c - the chat-template file of grok serve
 * --chat-template (grok_chat_template_load in src/chat/chat.c, one KEY=VALUE
 * per line with \n and \\ escapes). A refused file must come with a
 * message; an accepted one must hold exactly one {content} per role, valid
 * UTF-8 everywhere, and must format a conversation of every role into a
 * request (api_parse_completion) without trouble.
 */
#include "fuzz.h"
#include "server/server.h"
#include "util/utf8.h"
#include "tok_check.h"

static server g_s;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_s.tok = fuzz_load_tokenizer("fuzz_chat_template");
    g_s.n_vocab = grok_tokenizer_n_vocab(g_s.tok);
    g_s.cfg.parallel = 1;
    g_s.cfg.n_ctx = 4096;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    char err[GROK_ERR_SIZE] = "";
    if (grok_chat_template_load(&g_s.chat, path, err, sizeof err) != 0) {
        fuzz_note("refused", err);
        FUZZ_CHECK(err[0], "refused without a message");
        return 0;
    }
    for (int i = 0; i < GROK_CHAT_ROLES; i++) {
        const char *f = g_s.chat.role_fmt[i], *ph = strstr(f, "{content}");
        FUZZ_CHECK(ph && !strstr(ph + 1, "{content}"), "role %d: '%s' has not exactly one {content}", i, f);
        FUZZ_CHECK(grok_utf8_valid(f, strlen(f)), "role %d is not UTF-8", i);
    }
    FUZZ_CHECK(grok_utf8_valid(g_s.chat.generation, strlen(g_s.chat.generation)), "generation is not UTF-8");
    FUZZ_CHECK(grok_utf8_valid(g_s.chat.stop, strlen(g_s.chat.stop)), "stop is not UTF-8");
    static const char body[] =
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be {content} brief.\"},"
        "{\"role\":\"user\",\"content\":\"Hi \\u2581 there\"},{\"role\":\"assistant\",\"content\":\"\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"again\"}]}],\"max_tokens\":1}";
    const char *param = NULL;
    request *r = api_parse_completion(&g_s, body, sizeof body - 1, KIND_CHAT, err, sizeof err, &param);
    if (!r) FUZZ_CHECK(strstr(err, "context") != NULL, "a valid conversation was refused: %s", err);
    request_free(r);
    grok_chat_template_free(&g_s.chat);
    return 0;
}
