/*
 * test_chat.c - the chat template (src/chat/chat.c): the built-in
 * rendering and each turn's byte span, a template file's values, and the
 * tokens grok_chat_tokenize_spans marks as a turn's. The marks are checked
 * against an independent placement: each token's bytes found by decoding
 * the ids up to it with grok_detokenize (not the streaming decoder the
 * function uses), with the bundled model's vocabulary and, when ../shared
 * is present, Grok-1's. Training text: an assistant turn's span runs
 * through the template's stop string (the built-in "\nUser:" completes in
 * the next turn's opening, appended after the last turn; ChatML's
 * <|im_end|> is inside the turn). A token is marked exactly when its bytes overlap
 * an assistant span; the decoded tokens reproduce the text; and refusals
 * of bad template files name the line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "chat/chat.h"
#include "check.h"

static void check_marks(const char *name, const grok_tokenizer *tok, const grok_chat_template *t) {
    /* lengths from sizeof: a hand count read past the literal (ASan) */
#define MSG(role, lit) \
    { role, lit, sizeof lit - 1, NULL, NULL }
    const grok_chat_msg msgs[] = {
        MSG(GROK_CHAT_SYSTEM, "Be brief."),
        MSG(GROK_CHAT_USER, "What is 2+2?"),
        MSG(GROK_CHAT_ASSISTANT, "It is 4."),
        MSG(GROK_CHAT_USER, "And 3+3 in words, with \xc3\xa9l\xc3\xa8ve?"),
        MSG(GROK_CHAT_ASSISTANT, " Six\n(six)"),
    };
#undef MSG
    const size_t n = sizeof msgs / sizeof msgs[0];
    grok_chat_span sp[5], as[2];
    size_t len;
    char *text = grok_chat_render(t, msgs, n, false, &len, sp);
    CHECK(text != NULL, "%s: render", name);
    as[0] = sp[2], as[1] = sp[4];
    int32_t *ids;
    uint8_t *mask;
    size_t n_ids;
    char err[GROK_ERR_SIZE];
    int rc = grok_chat_tokenize_spans(tok, text, len, false, as, 2, &ids, &mask, &n_ids, err, sizeof err);
    CHECK(rc == 0, "%s: tokenize_spans: %s", name, err);
    if (rc) {
        free(text);
        return;
    }
    /* independent byte ranges: prefix decodes */
    size_t prev = 0, marked = 0, wrong = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t l;
        char *d = grok_detokenize(tok, ids, i + 1, &l);
        /* a partial UTF-8 character decodes to U+FFFD: place such a token at the next whole prefix */
        bool whole = l >= prev && memcmp(d, text, l < len ? l : len) == 0;
        size_t from = prev, to = whole ? l : prev;
        bool overlap = false;
        for (int k = 0; k < 2; k++) {
            size_t hi = to > from ? to : from + 1;
            overlap |= as[k].start < hi && as[k].end > from;
        }
        if (whole) prev = l;
        if (overlap != (mask[i] != 0)) wrong++;
        marked += mask[i] != 0;
        free(d);
    }
    CHECK(prev == len, "%s: the tokens decode to the %zu-byte text (%zu)", name, len, prev);
    CHECK(wrong == 0, "%s: %zu of %zu tokens marked against their bytes", name, wrong, n_ids);
    CHECK(marked > 3 && marked < n_ids / 2, "%s: %zu of %zu tokens are the assistant's", name, marked, n_ids);
    printf("%s: %zu tokens, %zu of them the assistant's, each placed by its own bytes\n", name, n_ids,
           marked);
    free(ids), free(mask), free(text);
}

int main(void) {
    char err[GROK_ERR_SIZE];
    grok_chat_template t;
    CHECK(grok_chat_template_load(&t, NULL, err, sizeof err) == 0, "built-in template");
    const grok_chat_msg m[] = {{GROK_CHAT_SYSTEM, "S", 1, NULL, NULL},
                               {GROK_CHAT_USER, "Hi", 2, NULL, NULL},
                               {GROK_CHAT_ASSISTANT, "Yo", 2, NULL, NULL}};
    grok_chat_span sp[3];
    size_t len;
    char *s = grok_chat_render(&t, m, 3, true, &len, sp);
    const char *want = "System: S\n\nUser: Hi\n\nAssistant: Yo\n\nAssistant:";
    CHECK(s && strcmp(s, want) == 0 && len == strlen(want), "rendering: '%s'", s ? s : "(null)");
    CHECK(sp[2].start == strlen("System: S\n\nUser: Hi\n\nAssistant: ") && sp[2].end == sp[2].start + 4,
          "the assistant span is its content and the turn's closing text: [%zu, %zu)", sp[2].start,
          sp[2].end);
    CHECK(sp[0].start == 8 && sp[1].start == strlen("System: S\n\nUser: "), "system and user spans");
    free(s);
    /* tool turns: {name} and {id} from the message, never from its text */
    const grok_chat_msg mt[] = {{GROK_CHAT_ASSISTANT, "call", 4, NULL, NULL},
                                {GROK_CHAT_TOOL, "{name} 21C", 10, "weather", "c1"}};
    s = grok_chat_render(&t, mt, 2, true, &len, sp);
    want = "Assistant: call\n\nTool (weather): {name} 21C\n\nAssistant:";
    CHECK(s && strcmp(s, want) == 0, "tool turn: '%s'", s ? s : "(null)");
    CHECK(sp[1].start == strlen("Assistant: call\n\nTool (weather): ") && sp[1].end == sp[1].start + 12,
          "tool span after its name: [%zu, %zu)", sp[1].start, sp[1].end);
    free(s);
    s = grok_chat_tools_text(&t, "{\"name\": \"f\"}", 13);
    CHECK(s && strstr(s, "Schema):\n{\"name\": \"f\"}\nTo call one") && !strstr(s, "{tools}"),
          "tools text: '%s'", s ? s : "(null)");
    free(s);
    /* tool calls and names from OpenAI's JSON */
    cJSON *js =
        cJSON_Parse("[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"function\":{\"name\":"
                    "\"get\",\"arguments\":\"{\\\"a\\\": 1}\"}},{\"id\":\"c2\",\"function\":{\"name\":"
                    "\"put\",\"arguments\":{\"b\":[2]}}}]},{\"role\":\"tool\",\"tool_call_id\":\"c2\","
                    "\"name\":\"ignored\"},{\"role\":\"tool\",\"name\":\"own\"},{\"role\":\"tool\"}]");
    CHECK(js != NULL, "JSON fixture");
    if (js) {
        s = grok_chat_tool_calls_text("Sure", cJSON_GetObjectItem(js->child, "tool_calls"), err, sizeof err,
                                      0);
        want = "Sure\n<tool_call>{\"name\": \"get\", \"arguments\": {\"a\": 1}}</tool_call>\n"
               "<tool_call>{\"name\": \"put\", \"arguments\": {\"b\":[2]}}</tool_call>";
        CHECK(s && strcmp(s, want) == 0, "tool calls text: '%s'", s ? s : err);
        free(s);
        const char *nm, *id;
        const cJSON *t1 = js->child->next;
        grok_chat_tool_names(js, t1, &nm, &id);
        CHECK(!strcmp(nm, "put") && !strcmp(id, "c2"), "name from the call's id: %s %s", nm, id);
        grok_chat_tool_names(js, t1->next, &nm, &id);
        CHECK(!strcmp(nm, "own") && !strcmp(id, ""), "own name without an id: %s", nm);
        grok_chat_tool_names(js, t1->next->next, &nm, &id);
        CHECK(!strcmp(nm, "tool"), "default name: %s", nm);
        s = grok_chat_tool_calls_text("", cJSON_GetObjectItem(t1, "role"), err, sizeof err, 3);
        CHECK(!s && strstr(err, "messages[3].tool_calls"), "tool_calls not an array: %s", err);
        cJSON_Delete(js);
    }
    /* training text: each assistant turn through the stop string that ends it */
    const grok_chat_msg m2[] = {{GROK_CHAT_USER, "Hi", 2, NULL, NULL},
                                {GROK_CHAT_ASSISTANT, "Yo", 2, NULL, NULL},
                                {GROK_CHAT_USER, "Ok", 2, NULL, NULL},
                                {GROK_CHAT_ASSISTANT, "Bye", 3, NULL, NULL}};
    grok_chat_span ts[4];
    size_t nts;
    s = grok_chat_render_train(&t, m2, 4, &len, ts, &nts);
    want = "User: Hi\n\nAssistant: Yo\n\nUser: Ok\n\nAssistant: Bye\n\nUser:";
    CHECK(s && strcmp(s, want) == 0 && len == strlen(want), "training text: '%s'", s ? s : "(null)");
    CHECK(nts == 2 && s && strncmp(s + ts[0].start, "Yo\n\nUser:", ts[0].end - ts[0].start) == 0 &&
              ts[0].end - ts[0].start == 9 && ts[1].end == len,
          "a turn's span runs through the stop string (the next turn's opening)");
    free(s);

    /* a template file */
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char path[1024];
    snprintf(path, sizeof path, "%s/chatml.txt", tmp);
    FILE *f = fopen(path, "w");
    fputs("# ChatML-like\nsystem=<|im_start|>system\\n{content}<|im_end|>\\n\n"
          "user=<|im_start|>user\\n{content}<|im_end|>\\n\nassistant=<|im_start|>assistant\\n{content}<|im_"
          "end|>\\n\n"
          "generation=<|im_start|>assistant\\n\nstop=<|im_end|>\n",
          f);
    fclose(f);
    grok_chat_template c;
    CHECK(grok_chat_template_load(&c, path, err, sizeof err) == 0, "template file: %s", err);
    s = grok_chat_render(&c, m + 1, 2, true, &len, sp);
    want = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n<|im_start|>assistant\n";
    CHECK(s && strcmp(s, want) == 0, "file template rendering: '%s'", s ? s : "(null)");
    CHECK(s && strncmp(s + sp[1].start, "Yo<|im_end|>\n", sp[1].end - sp[1].start) == 0 &&
              sp[1].end - sp[1].start == 13,
          "the closing <|im_end|> belongs to the assistant's span");
    CHECK(strcmp(c.stop, "<|im_end|>") == 0, "stop string");
    free(s);
    s = grok_chat_render_train(&c, m + 1, 2, &len, ts, &nts);
    CHECK(s && strcmp(s, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n") == 0 &&
              nts == 1 && ts[0].end == len,
          "ChatML-like: the turn's own <|im_end|> is its stop, nothing appended");
    free(s);
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/bad-template.txt", tmp);
    grok_chat_template cb;
    f = fopen(bad, "w");
    fputs("user=User: {content}\nassistant=no placeholder\n", f);
    fclose(f);
    CHECK(grok_chat_template_load(&cb, bad, err, sizeof err) != 0 && strstr(err, ":2:") &&
              strstr(err, "exactly one {content}"),
          "a bad template names its line: %s", err);
    f = fopen(bad, "w");
    fputs("tool=T[{id}] {name}: {content}\n\ntools=no list\n", f);
    fclose(f);
    CHECK(grok_chat_template_load(&cb, bad, err, sizeof err) != 0 && strstr(err, ":3:") &&
              strstr(err, "exactly one {tools}"),
          "a tools text without {tools}: %s", err);

    /* marks against the bytes, with real vocabularies */
    const char *src = getenv("GROK_SRC") ? getenv("GROK_SRC") : ".";
    char mp[1024];
    snprintf(mp, sizeof mp, "%s/models/grok-mini.gguf", src);
    grok_gguf_file *g = grok_gguf_open(mp, err, sizeof err);
    grok_tokenizer *tk = g ? grok_tokenizer_from_gguf(g, err, sizeof err) : NULL;
    CHECK(tk != NULL, "bundled vocabulary: %s", err);
    if (tk) check_marks("grok-mini", tk, &t), check_marks("grok-mini, ChatML-like", tk, &c);
    grok_tokenizer_free(tk);
    grok_gguf_close(g);
    snprintf(mp, sizeof mp, "%s/../shared/tokenizers/grok-1.model", src);
    grok_tokenizer *g1 = grok_tokenizer_load_spm(mp, err, sizeof err);
    if (g1)
        check_marks("grok-1", g1, &t);
    else
        printf("SKIP part: %s (Grok-1's vocabulary) is absent\n", mp);
    grok_tokenizer_free(g1);
    grok_chat_template_free(&t);
    grok_chat_template_free(&c);
    return check_summary("test_chat");
}
