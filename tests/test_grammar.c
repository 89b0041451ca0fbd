/*
 * test_grammar.c - the grammar engine (src/grammar/):
 *  - the corner-case grammars of tests/fixtures/grammar/ (empty rules,
 *    recursion, unicode ranges, repetition bounds, classes with escapes,
 *    comments, CRLF, a JSON grammar) against accept and reject lists whose
 *    verdicts llama.cpp's gbnf-validator gave (docs/structured-output.md
 *    says how); with GROK_LLAMA_GRAMMARS naming llama.cpp's grammars/
 *    directory, its example grammars too (every one must parse, and the
 *    inputs of llama_examples.json get llama.cpp's verdicts);
 *  - malformed grammars: each refused with the LINE:COLUMN and the words
 *    expected; malformed and unsupported JSON Schemas with their pointers;
 *  - schema grammars on JSON texts (accepted ones also checked valid by
 *    python3-jsonschema in structured_output_test.sh);
 *  - masks: at every step of seeded random walks through several grammars,
 *    the cached mask equals taking each token of the vocabulary alone
 *    (Grok-1's 131072 tokens when ../shared has them, else a stand-in
 *    vocabulary); byte tokens that split a character; <[id]> elements;
 *  - the matcher's API: refusals leave the state, clones are independent.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "grok.h"

#include "check.h"

static grok_grammar *parse(const char *text, char *err, size_t n) {
    return grok_grammar_parse(text, strlen(text), NULL, NULL, err, n);
}

/* accept/reject lists of a JSON object {"accept": [...], "reject": [...]} */
static void run_cases(grok_grammar *g, const cJSON *cases, const char *name) {
    const char *keys[2] = {"accept", "reject"};
    for (int k = 0; k < 2; k++) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(cases, keys[k]), *e;
        cJSON_ArrayForEach(e, list) {
            const char *s = e->valuestring;
            size_t at = 0;
            bool ok = grok_grammar_accepts(g, s, strlen(s), &at);
            CHECK(ok == (k == 0), "%s: '%s' should be %sed (read %zu bytes)", name, s,
                  k ? "reject" : "accept", at);
        }
    }
}

static void test_fixtures(const char *src) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/grammar", src);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "no %s", dir);
    if (!d) return;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".gbnf")) continue;
        char path[8192], jpath[8192], err[GROK_ERR_SIZE];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(jpath, sizeof jpath, "%s/%.*s.json", dir, (int)(l - 5), de->d_name);
        size_t len;
        char *text = check_read_file(path, &len), *js = check_read_file(jpath, NULL);
        grok_grammar *g = text ? grok_grammar_parse(text, len, NULL, NULL, err, sizeof err) : NULL;
        CHECK(g != NULL, "%s does not parse: %s", path, err);
        cJSON *cases = js ? cJSON_Parse(js) : NULL;
        CHECK(cases != NULL, "%s: no cases", jpath);
        if (g && cases) run_cases(g, cases, de->d_name);
        n++;
        cJSON_Delete(cases);
        grok_grammar_free(g);
        free(text);
        free(js);
    }
    closedir(d);
    CHECK(n >= 9, "only %d fixture grammars", n);
}

/* llama.cpp's own example grammars, where a checkout is named. */
static void test_llama_examples(const char *src) {
    const char *dir = getenv("GROK_LLAMA_GRAMMARS");
    if (!dir) {
        printf("SKIP part: llama.cpp's grammars/ (set GROK_LLAMA_GRAMMARS to its directory)\n");
        return;
    }
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/tests/fixtures/grammar/llama_examples.json", src);
    char *js = check_read_file(jpath, NULL);
    cJSON *all = js ? cJSON_Parse(js) : NULL;
    CHECK(all != NULL, "%s", jpath);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "GROK_LLAMA_GRAMMARS=%s is not a directory", dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".gbnf")) continue;
        char path[8192], err[GROK_ERR_SIZE];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        char *text = check_read_file(path, &len);
        grok_grammar *g = text ? grok_grammar_parse(text, len, NULL, NULL, err, sizeof err) : NULL;
        CHECK(g != NULL, "llama.cpp's %s does not parse: %s", de->d_name, err);
        const cJSON *cases = cJSON_GetObjectItemCaseSensitive(all, de->d_name);
        if (g && cases) run_cases(g, cases, de->d_name);
        n++;
        grok_grammar_free(g);
        free(text);
    }
    if (d) closedir(d);
    CHECK(n >= 8, "only %d grammars in %s", n, dir);
    cJSON_Delete(all);
    free(js);
}

static void test_malformed(void) {
    static const struct {
        const char *text, *where, *what;
    } cases[] = {
        {"root ::= \"a", "1:10", "unterminated string"},
        {"root ::= [a-", "1:10", "unterminated character class"},
        {"root ::= [z-a]", "1:11", "below its start"},
        {"root ::= []", "1:10", "empty character class"},
        {"root ::= (\"a\" | \"b\"\n", "2:1", "close the group opened at 1:10"},
        {"root ::= \"a\"\n  | \"b\"", "2:3", "expecting a rule name"},
        {"root ::= x", "1:10", "undefined rule 'x'"},
        {"root = \"a\"", "1:6", "expecting '::='"},
        {"rot ::= \"a\"", "1:1", "no rule named 'root'"},
        {"root ::= * \"a\"", "1:10", "no symbol before it"},
        {"root ::= \"a\"{2,1}", "1:13", "below the minimum"},
        {"root ::= \"a\"{x}", "1:14", "expecting an integer"},
        {"root ::= \"a\"{1,2", "1:17", "expecting '}'"},
        {"root ::= \"\\q\"", "1:11", "unknown escape"},
        {"root ::= \"\\x4\"", "1:14", "expecting 2 hex digits"},
        {"root ::= \"a\" )", "1:14", "expecting a newline"},
        {"nothing ::=\nroot ::= \"a\"", "2:6", "expecting a newline"},
        {"root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"", "2:1", "left recursion: rule 'expr'"},
        {"root ::= a \"x\"\na ::= b a \"y\" | \"z\"\nb ::= c\nc ::= \"\"", "2:1", "left recursion"},
        {"root ::= <[5>", "1:13", "expecting ']'"},
        {"root ::= <[5]", "1:14", "expecting '>'"},
        {"root ::= <think>", "1:10", "needs the model's vocabulary"},
        {"root ::= !\"a\"", "1:11", "expecting '<'"},
        {"root ::= \"a\"{0,9999999}", "1:16", "number too large"},
        {"root ::= \"ab\"{3000000}", "1:", "too large once repetitions are expanded"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[GROK_ERR_SIZE] = "";
        grok_grammar *g = parse(cases[i].text, err, sizeof err);
        CHECK(!g, "malformed grammar %zu parsed: %s", i, cases[i].text);
        CHECK(!strncmp(err, cases[i].where, strlen(cases[i].where)) && strstr(err, cases[i].what),
              "grammar %zu: error '%s', want '%s: ...%s...'", i, err, cases[i].where, cases[i].what);
        grok_grammar_free(g);
    }
    char err[GROK_ERR_SIZE];
    grok_grammar *g = grok_grammar_parse("root ::= \"a\"\0", 13, NULL, NULL, err, sizeof err);
    CHECK(!g && strstr(err, "NUL"), "a NUL byte is refused: %s", err);
    /* a later definition replaces an earlier one, as in llama.cpp */
    g = parse("root ::= \"a\"\nroot ::= \"b\"", err, sizeof err);
    CHECK(g && grok_grammar_accepts(g, "b", 1, NULL) && !grok_grammar_accepts(g, "a", 1, NULL),
          "redefinition");
    grok_grammar_free(g);
    /* a bound above llama.cpp's 2000 is kept, not dropped */
    g = parse("root ::= \"a\"{0,2500}", err, sizeof err);
    char *many = malloc(2502);
    memset(many, 'a', 2501);
    CHECK(g && grok_grammar_accepts(g, many, 2500, NULL) && !grok_grammar_accepts(g, many, 2501, NULL),
          "{0,2500} keeps its bound: %s", g ? "" : err);
    free(many);
    grok_grammar_free(g);
    /* a start rule other than root */
    g = grok_grammar_parse("a ::= \"x\" b\nb ::= \"y\"", 21, "b", NULL, err, sizeof err);
    CHECK(g && grok_grammar_accepts(g, "y", 1, NULL), "start rule b: %s", g ? "" : err);
    grok_grammar_free(g);
}

static grok_grammar *schema_grammar(const char *schema, const grok_grammar_vocab *v, char *err, size_t n) {
    char *gbnf = grok_json_schema_to_gbnf(schema, strlen(schema), err, n);
    if (!gbnf) return NULL;
    grok_grammar *g = grok_grammar_parse(gbnf, strlen(gbnf), NULL, v, err, n);
    if (!g) fprintf(stderr, "the schema grammar does not parse:\n%s\n", gbnf);
    free(gbnf);
    return g;
}

static void test_schemas(void) {
    static const struct {
        const char *schema, *want;
    } bad[] = {
        {"{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"uniqueItems\":true}}}",
         "#/properties/tags: 'uniqueItems' is not supported"},
        {"{\"type\":\"string\",\"pattern\":\"^a$\"}", "#: 'pattern' is not supported"},
        {"{\"anyOf\":[{\"type\":\"string\"},{\"not\":{}}]}", "#/anyOf/1: 'not' is not supported"},
        {"{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"string\",\"maxLength\":3}]}",
         "#/oneOf: branches 0 and 1 may both match"},
        {"{\"$ref\":\"#/$defs/missing\"}", "#: '$ref' '#/$defs/missing' points to nothing"},
        {"{\"$ref\":\"https://example.com/s.json\"}", "only references inside the document"},
        {"{\"type\":\"strin\"}", "#: 'type' must be"},
        {"{\"type\":\"string\",\"format\":\"uri\"}", "#: format 'uri' is not supported"},
        {"{\"type\":\"number\",\"minimum\":0}", "supported on integers only"},
        {"{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer lies between"},
        {"{\"type\":\"object\",\"properties\":{\"a~b/c\":{\"type\":\"array\",\"contains\":{}}}}",
         "#/properties/a~0b~1c: 'contains' is not supported"},
        {"{\"type\":\"object\",\"required\":[\"x\"],\"properties\":{}}", "'x' is required but is not among"},
        {"{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "'maxItems' is below 'minItems'"},
        {"{\"enum\":[12345678901234567890]}", "too large to reproduce exactly"},
        {"{\"type\":", "not valid JSON (at byte"},
        {"{} x", "trailing data at byte 3"},
        {"false", "no value matches"},
        {"{\"allOf\":[{\"type\":\"string\"},{\"maxLength\":2}]}",
         "'allOf' is supported only with one schema"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[GROK_ERR_SIZE] = "";
        char *g = grok_json_schema_to_gbnf(bad[i].schema, strlen(bad[i].schema), err, sizeof err);
        CHECK(!g && strstr(err, bad[i].want), "schema %zu: error '%s', want '...%s...'", i, err, bad[i].want);
        free(g);
    }
    static const struct {
        const char *schema;
        const char *accept[6], *reject[6];
    } ok[] = {
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":-12,\"maximum\":305},"
         "\"b\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":3}},\"required\":[\"a\"]}",
         {"{\"a\":-12}", "{\"a\": 305, \"b\": \"xyz\"}", "{\"a\":0,\"b\":\"\\u00e9\"}", "{\"a\":99}"},
         {"{\"a\":-13}", "{\"a\":306}", "{\"b\":\"x\",\"a\":1}", "{\"a\":1,\"b\":\"\"}",
          "{\"a\":1,\"b\":\"abcd\"}", "{\"a\":007}"}},
        {"{\"type\":\"array\",\"items\":{\"enum\":[\"x\",1,null,{\"k\":[true]}]},\"minItems\":1,\"maxItems\":"
         "3}",
         {"[\"x\"]", "[1, null, {\"k\":[true]}]"},
         {"[]", "[\"y\"]", "[1,1,1,1]", "[{\"k\": [true]}]"}},
        {"{\"type\":\"string\",\"format\":\"date\"}",
         {"\"2024-02-29\"", "\"2000-02-29\"", "\"1999-12-31\""},
         {"\"2023-02-29\"", "\"1900-02-29\"", "\"2024-04-31\"", "\"2024-13-01\"", "\"24-01-01\""}},
        {"{\"type\":\"string\",\"format\":\"date-time\"}",
         {"\"2024-01-01T23:59:59Z\"", "\"2024-01-01T00:00:00.123+05:30\""},
         {"\"2024-01-01T24:00:00Z\"", "\"2024-01-01 00:00:00Z\"", "\"2024-01-01T00:00:00\""}},
        {"{\"type\":\"string\",\"format\":\"uuid\"}",
         {"\"123e4567-e89b-12d3-a456-426614174000\""},
         {"\"123e4567e89b12d3a456426614174000\"", "\"123e4567-e89b-12d3-a456-42661417400\""}},
        {"{\"type\":\"string\",\"format\":\"email\"}",
         {"\"a.b+c@example.co\"", "\"x@y.z\""},
         {"\"a@b\"", "\".a@b.c\"", "\"a..b@c.d\"", "\"a@-b.c\""}},
        {"{\"type\":\"string\",\"format\":\"ipv4\"}",
         {"\"0.0.0.0\"", "\"255.255.255.255\""},
         {"\"256.0.0.1\"", "\"01.2.3.4\"", "\"1.2.3\""}},
        {"{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"kids\":{\"type\":\"array\",\"items\":{"
         "\"$ref\":"
         "\"#/$defs/node\"}}},\"required\":[\"kids\"]}},\"$ref\":\"#/$defs/node\"}",
         {"{\"kids\":[]}", "{\"kids\":[{\"kids\":[{\"kids\":[]}]},{\"kids\":[]}]}"},
         {"{\"kids\":[{}]}", "{}"}},
        {"{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},\"additionalProperties\":{"
         "\"type\":"
         "\"integer\"}}",
         {"{\"name\":\"x\",\"n\":1}", "{\"nam\":2,\"names\":3}", "{}"},
         {"{\"name\":1}", "{\"n\":\"x\"}"}},
        {"{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"k\":{\"const\":\"a\"},\"x\":{\"type\":"
         "\"integer\"}},"
         "\"required\":[\"k\"]},{\"type\":\"object\",\"properties\":{\"k\":{\"const\":\"b\"}},\"required\":["
         "\"k\"]}]}",
         {"{\"k\":\"a\",\"x\":3}", "{\"k\":\"b\"}"},
         {"{\"k\":\"b\",\"x\":3}", "{\"k\":\"c\"}"}},
        {"{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}],\"items\":"
         "false}",
         {"[]", "[1]", "[1,\"a\"]"},
         {"[\"a\"]", "[1,\"a\",2]"}},
        {"{\"type\":[\"string\",\"null\"],\"maxLength\":2}", {"null", "\"ab\""}, {"\"abc\"", "1"}},
        {"{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":10}",
         {"1", "9"},
         {"0", "10", "-1"}},
        {"{}", {"{\"a\":[1,{\"b\":null}]}", "\"s\"", "-1.5e3"}, {"{a:1}", "01"}},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char err[GROK_ERR_SIZE] = "";
        grok_grammar *g = schema_grammar(ok[i].schema, NULL, err, sizeof err);
        CHECK(g != NULL, "schema %zu: %s", i, err);
        if (!g) continue;
        for (int k = 0; k < 6 && ok[i].accept[k]; k++)
            CHECK(grok_grammar_accepts(g, ok[i].accept[k], strlen(ok[i].accept[k]), NULL),
                  "schema %zu should accept %s", i, ok[i].accept[k]);
        for (int k = 0; k < 6 && ok[i].reject[k]; k++)
            CHECK(!grok_grammar_accepts(g, ok[i].reject[k], strlen(ok[i].reject[k]), NULL),
                  "schema %zu should reject %s", i, ok[i].reject[k]);
        grok_grammar_free(g);
    }
}

/* ---- masks against taking each token alone ---- */

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t next_rand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Walks steps tokens from the grammar's start, each step comparing the
 * mask with a clone of the matcher taking every token (every stride-th
 * one, to bound the time under the sanitizers). */
static void walk_check(grok_grammar *g, int64_t n_vocab, int32_t eos, int steps, int64_t stride,
                       const char *name) {
    size_t nw = ((size_t)n_vocab + 63) / 64;
    uint64_t *mask = malloc(nw * sizeof *mask);
    grok_matcher *m = grok_matcher_create(g);
    CHECK(m && mask, "%s: matcher", name);
    int64_t bad = 0;
    for (int step = 0; m && step < steps; step++) {
        int64_t n = grok_matcher_fill_mask(m, mask);
        CHECK(n >= 0, "%s step %d: mask failed", name, step);
        if (n <= 0) break;
        int64_t off = (int64_t)(next_rand() % (uint64_t)stride);
        for (int64_t id = off; id < n_vocab; id += stride) {
            grok_matcher *c = grok_matcher_clone(m);
            bool takes = grok_matcher_accept_token(c, (int32_t)id) == 0;
            grok_matcher_free(c);
            bool in = (mask[id >> 6] >> (id & 63)) & 1;
            if (takes != in && bad++ < 5)
                CHECK(false, "%s step %d: token %lld: the mask says %d, taking it alone says %d", name, step,
                      (long long)id, in, takes);
        }
        CHECK(grok_matcher_can_end(m) == (eos >= 0 && ((mask[eos >> 6] >> (eos & 63)) & 1)),
              "%s step %d: EOS in the mask iff the grammar can end", name, step);
        /* a random allowed token, EOS only now and then */
        int64_t pick = (int64_t)(next_rand() % (uint64_t)n), id = -1;
        for (int64_t i = 0; i < n_vocab && id < 0; i++)
            if (((mask[i >> 6] >> (i & 63)) & 1) && pick-- == 0) id = i;
        if (id == eos || grok_matcher_is_done(m)) break;
        CHECK(grok_matcher_accept_token(m, (int32_t)id) == 0, "%s step %d: an allowed token %lld is refused",
              name, step, (long long)id);
    }
    CHECK(bad == 0, "%s: %lld mask disagreements", name, (long long)bad);
    grok_matcher_free(m);
    free(mask);
}

static void test_masks(const char *src) {
    char path[4096], err[GROK_ERR_SIZE];
    snprintf(path, sizeof path, "%s/../shared/tokenizers/grok-1.model", src);
    grok_tokenizer *t = grok_tokenizer_load_spm(path, err, sizeof err);
    if (!t) {
        printf("note: no %s, masks checked on a stand-in vocabulary\n", path);
        t = grok_tokenizer_placeholder(300, err, sizeof err);
    }
    CHECK(t != NULL, "tokenizer: %s", err);
    if (!t) return;
    grok_grammar_vocab *v = grok_grammar_vocab_create(t, err, sizeof err);
    CHECK(v != NULL, "vocab: %s", err);
    int64_t nv = grok_tokenizer_n_vocab(t);
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GROK_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(GROK_TEST_ASAN)
    const int64_t stride = nv > 4096 ? 61 : 1; /* the sanitizers make each token ~10x dearer */
    const int steps = 12;
#else
    const int64_t stride = nv > 4096 ? 7 : 1;
    const int steps = 25;
#endif
    static const char *const names[] = {"json_like", "unicode", "recursion", "classes", "repetition"};
    for (size_t i = 0; v && i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/tests/fixtures/grammar/%s.gbnf", src, names[i]);
        size_t len;
        char *text = check_read_file(path, &len);
        grok_grammar *g = text ? grok_grammar_parse(text, len, NULL, v, err, sizeof err) : NULL;
        CHECK(g != NULL, "%s: %s", path, err);
        for (int rep = 0; g && rep < 3; rep++)
            walk_check(g, nv, grok_tokenizer_eos(t), steps, stride, names[i]);
        grok_grammar_free(g);
        free(text);
    }
    /* a nested schema's grammar, and tokens that split characters */
    const char *schema =
        "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":999},"
        "\"who\":{\"type\":\"string\",\"maxLength\":6},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":"
        "[\"a\",\"\u00e9t\u00e9\"]},\"maxItems\":2},\"at\":{\"type\":\"string\",\"format\":\"date\"}},"
        "\"required\":[\"id\",\"who\"]}";
    grok_grammar *g = v ? schema_grammar(schema, v, err, sizeof err) : NULL;
    CHECK(g != NULL, "schema grammar: %s", err);
    for (int rep = 0; g && rep < 4; rep++) walk_check(g, nv, grok_tokenizer_eos(t), steps, stride, "schema");
    grok_grammar_free(g);
    const char *uni = "root ::= [\\u00e0-\\u00ff\\u4e00-\\u4e0f]+ \"!\"";
    g = v ? grok_grammar_parse(uni, strlen(uni), NULL, v, err, sizeof err) : NULL;
    CHECK(g != NULL, "unicode grammar: %s", err);
    for (int rep = 0; g && rep < 3; rep++)
        walk_check(g, nv, grok_tokenizer_eos(t), steps, stride, "split characters");
    if (g) { /* a byte token that starts a character leaves the matcher inside it */
        int32_t e3 = -1;
        char buf[8];
        for (int64_t id = 0; id < nv && e3 < 0; id++)
            if (grok_token_text(t, (int32_t)id, buf, sizeof buf) == 1 && (unsigned char)buf[0] == 0xE4 &&
                grok_tokenizer_type(t, (int32_t)id) == GROK_TOKEN_BYTE)
                e3 = (int32_t)id;
        if (e3 >= 0) {
            grok_matcher *m = grok_matcher_create(g);
            CHECK(grok_matcher_accept_token(m, e3) == 0, "the byte 0xE4 may begin U+4E0x");
            CHECK(!grok_matcher_can_end(m), "not at the end inside a character");
            CHECK(grok_matcher_accept_text(m, "\xb8\x90", 2) != 0,
                  "0xE4 0xB8 0x90 is U+4E10, outside the class");
            CHECK(grok_matcher_accept_text(m, "\xb8\x80", 2) == 0, "0xE4 0xB8 0x80 is U+4E00, inside it");
            grok_matcher_free(m);
        }
    }
    grok_grammar_free(g);
    /* whole-token elements */
    if (v && nv > 300) {
        char gb[64];
        snprintf(gb, sizeof gb, "root ::= \"a\" <[%d]> !<[%d]>", 300, 301);
        g = grok_grammar_parse(gb, strlen(gb), NULL, v, err, sizeof err);
        CHECK(g != NULL, "token elements: %s", err);
        size_t nw = ((size_t)nv + 63) / 64;
        uint64_t *mask = malloc(nw * sizeof *mask);
        grok_matcher *m = g ? grok_matcher_create(g) : NULL;
        CHECK(m && grok_matcher_accept_text(m, "a", 1) == 0, "token elements: 'a'");
        CHECK(m && grok_matcher_fill_mask(m, mask) == 1 && ((mask[300 >> 6] >> (300 & 63)) & 1),
              "only token 300");
        CHECK(m && grok_matcher_accept_token(m, 301) != 0 && grok_matcher_accept_token(m, 300) == 0,
              "300 taken");
        int64_t k = m ? grok_matcher_fill_mask(m, mask) : 0;
        CHECK(k > 1000 && !((mask[301 >> 6] >> (301 & 63)) & 1), "any token but 301 (%lld)", (long long)k);
        grok_matcher_free(m);
        free(mask);
        grok_grammar_free(g);
        g = grok_grammar_parse("root ::= <[999999999]>", 22, NULL, v, err, sizeof err);
        CHECK(!g && strstr(err, "outside the vocabulary"), "a token id past the vocabulary: %s", err);
        grok_grammar_free(g);
    }
    grok_grammar_vocab_free(v);
    grok_tokenizer_free(t);
}

static void test_api(void) {
    char err[GROK_ERR_SIZE];
    grok_grammar *g = parse("root ::= \"ab\" (\"c\" | \"d\")", err, sizeof err);
    grok_matcher *m = grok_matcher_create(g);
    CHECK(m && grok_matcher_accept_text(m, "ax", 2) != 0, "ax refused");
    CHECK(m && grok_matcher_accept_text(m, "ab", 2) == 0, "the refusal left the state: ab still fits");
    grok_matcher *c = grok_matcher_clone(m);
    CHECK(c && grok_matcher_accept_text(c, "c", 1) == 0 && grok_matcher_is_done(c), "the clone ends with c");
    CHECK(!grok_matcher_can_end(m) && grok_matcher_accept_text(m, "d", 1) == 0 && grok_matcher_can_end(m),
          "the original is untouched by its clone");
    uint64_t w[1];
    CHECK(grok_matcher_fill_mask(m, w) == -1, "no vocabulary: no mask");
    grok_matcher_free(c);
    grok_matcher_free(m);
    grok_grammar_free(g);
    size_t at = 99;
    g = parse("root ::= [a-z]+ \"!\"", err, sizeof err);
    CHECK(!grok_grammar_accepts(g, "abc?", 4, &at) && at == 3, "fails after 3 bytes (%zu)", at);
    CHECK(!grok_grammar_accepts(g, "abc", 3, &at) && at == 3, "ends too early at 3 (%zu)", at);
    CHECK(!grok_grammar_accepts(g, "\xff", 1, &at) && at == 0, "invalid UTF-8 is refused");
    grok_grammar_free(g);
    g = parse("root ::= [^a]", err, sizeof err);
    CHECK(g && grok_grammar_accepts(g, "\xe2\x82\xac", 3, NULL), "U+20AC in [^a]");
    CHECK(g && !grok_grammar_accepts(g, "\xed\xa0\x80", 3, NULL), "a surrogate is not a character");
    CHECK(g && !grok_grammar_accepts(g, "\xc0\x80", 2, NULL), "an overlong form is not a character");
    grok_grammar_free(g);
}

int main(void) {
    const char *src = getenv("GROK_SRC");
    if (!src) src = ".";
    test_fixtures(src);
    test_llama_examples(src);
    test_malformed();
    test_schemas();
    test_api();
    test_masks(src);
    return check_summary("test_grammar");
}
