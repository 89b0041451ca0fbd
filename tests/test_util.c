/*
 * test_util.c - the shared utilities of src/util: UTF-8 (against the
 * standard's counts, an encoder written from RFC 3629's table, Markus
 * Kuhn's malformed sequences, and Python's strict decoder when
 * /usr/bin/python3 is there), the named RNG streams, the clock and the
 * growing buffer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "util/utf8.h"

/* RFC 3629's table, as an encoder: the reference the decoder must invert. */
static size_t encode(uint32_t cp, unsigned char *o) {
    if (cp < 0x80) return o[0] = (unsigned char)cp, 1;
    if (cp < 0x800) return o[0] = (unsigned char)(0xC0 | cp >> 6), o[1] = (unsigned char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12), o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18), o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static void test_utf8_spec(void) {
    /* every scalar value round-trips, every surrogate is refused */
    int64_t bad_rt = 0, bad_sur = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned char b[4];
        size_t n = encode(cp, b);
        uint32_t got = 0xFFFFFFFF;
        size_t k = grok_utf8_decode(b, n, &got);
        if (cp >= 0xD800 && cp <= 0xDFFF)
            bad_sur += k != 0;
        else
            bad_rt += k != n || got != cp || !grok_utf8_valid((const char *)b, n);
    }
    CHECK(bad_rt == 0, "%lld scalar values do not round-trip", (long long)bad_rt);
    CHECK(bad_sur == 0, "%lld surrogates accepted", (long long)bad_sur);
    /* exhaustive over 2- and 3-byte strings: exactly the standard's counts
     * (1920 two-byte characters; 61440 three-byte ones, the BMP above
     * U+07FF without the 2048 surrogates) */
    int64_t n2 = 0, n3 = 0;
    for (uint32_t v = 0; v < 1u << 16; v++) {
        unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
        n2 += b[0] >= 0x80 && grok_utf8_seq(b, 2) == 2;
    }
    for (uint32_t v = 0; v < 1u << 24; v++) {
        unsigned char b[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
        n3 += grok_utf8_seq(b, 3) == 3;
    }
    CHECK(n2 == 1920, "%lld valid two-byte sequences", (long long)n2);
    CHECK(n3 == 61440, "%lld valid three-byte sequences", (long long)n3);
    /* a truncated sequence is invalid, whatever follows in memory */
    CHECK(grok_utf8_seq((const unsigned char *)"\xE2\x82\xAC", 2) == 0, "truncated euro accepted");
}

static void test_utf8_kuhn(void) {
    /* malformed sequences of Markus Kuhn's UTF-8-test.txt (sections 3-5)
     * with the offset of the first bad byte */
    static const struct {
        const char *s;
        int64_t at;
    } cases[] = {
        {"ok \xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", -1}, /* "kosme" */
        {"a\x80z", 1},                                           /* lone continuation */
        {"ab\xC0\xAF", 2},                                       /* overlong '/' */
        {"\xE0\x80\xAF", 0},                                     /* overlong, 3 bytes */
        {"\xF0\x80\x80\xAF", 0},                                 /* overlong, 4 bytes */
        {"x\xED\xA0\x80", 1},                                    /* U+D800 */
        {"\xED\x9F\xBF\xED\xBF\xBF", 3},                         /* U+D7FF fine, U+DFFF not */
        {"\xF4\x8F\xBF\xBF\xF4\x90\x80\x80", 4},                 /* U+10FFFF fine, U+110000 not */
        {"\xFE", 0},
        {"\xFF", 0},
        {"\xC2", 0}, /* ends early */
        {"\xEF\xBF\xBD", -1}, /* U+FFFD itself */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t at = grok_utf8_invalid_at(cases[i].s, strlen(cases[i].s));
        CHECK(at == cases[i].at, "case %zu: first bad byte %lld, want %lld", i, (long long)at, (long long)cases[i].at);
        CHECK(grok_utf8_valid(cases[i].s, strlen(cases[i].s)) == (cases[i].at < 0), "case %zu: valid", i);
    }
    /* incomplete: a prefix that more bytes may still complete */
    CHECK(grok_utf8_incomplete((const unsigned char *)"\xE2\x82", 2), "E2 82 can still grow");
    CHECK(grok_utf8_incomplete((const unsigned char *)"\xF0", 1), "F0 can still grow");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xE0\x80", 2), "E0 80 can only be overlong");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xED\xA0", 2), "ED A0 can only be a surrogate");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xF4\x90", 2), "F4 90 is past U+10FFFF");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xC0", 1), "C0 never starts a character");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xE2\x82\xAC", 3), "a whole character is not incomplete");
    /* sanitize: one U+FFFD per invalid byte */
    size_t n = 0;
    char *s = grok_utf8_sanitize("a\xC0\xAF\xE2\x82\xAC", 6, &n);
    CHECK(s && n == 10 && memcmp(s, "a\xEF\xBF\xBD\xEF\xBF\xBD\xE2\x82\xAC", 11) == 0, "sanitize");
    free(s);
    s = grok_utf8_sanitize("", 0, NULL);
    CHECK(s && s[0] == 0, "sanitize of nothing");
    free(s);
    /* line and column, the column in characters */
    size_t line = 0, col = 0;
    const char *t = "ab\n\xCE\xBA\xCE\xB1x";
    grok_utf8_line_col(t, 7, &line, &col);
    CHECK(line == 2 && col == 3, "line %zu col %zu, want 2:3", line, col);
    grok_utf8_line_col(t, 0, &line, &col);
    CHECK(line == 1 && col == 1, "line %zu col %zu at the start", line, col);
}

/* Random byte strings, biased towards UTF-8's edge bytes, checked against
 * Python's strict decoder: the first bad offset, and the sanitised text
 * with an error handler that replaces one byte at a time (as ours does). */
static void test_utf8_python(void) {
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("test_util: note: no /usr/bin/python3, the cross-check with Python is skipped\n");
        return;
    }
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char in_path[4096], out_path[4096], cmd[12288];
    snprintf(in_path, sizeof in_path, "%s/utf8_cases.bin", tmp);
    snprintf(out_path, sizeof out_path, "%s/utf8_python.txt", tmp);
    enum { N = 3000, MAXLEN = 12 };
    static unsigned char str[N][MAXLEN];
    static size_t len[N];
    static const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                         0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xF8, 0xFF};
    uint64_t x = 12345;
    FILE *f = fopen(in_path, "wb");
    CHECK(f != NULL, "cannot write %s", in_path);
    if (!f) return;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        len[i] = (size_t)(x >> 60) % MAXLEN + 1;
        for (size_t j = 0; j < len[i];) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            unsigned char b[4];
            const uint32_t cp = (uint32_t)(x >> 40) % 0x110000;
            if ((x >> 62) == 0 && j + encode(cp, b) <= len[i]) /* a whole character, valid or a surrogate */
                j += encode(cp, str[i] + j);
            else
                str[i][j++] = (x >> 61) & 1 ? edge[(x >> 33) % sizeof edge] : (unsigned char)(x >> 40);
        }
        fputc((int)len[i], f);
        fwrite(str[i], 1, len[i], f);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '\n"
             "import codecs, sys\n"
             "codecs.register_error(\"one\", lambda e: (\"\\ufffd\", e.start + 1))\n"
             "d = open(sys.argv[1], \"rb\").read(); i = 0; out = open(sys.argv[2], \"w\")\n"
             "while i < len(d):\n"
             "    n = d[i]; s = d[i + 1:i + 1 + n]; i += 1 + n\n"
             "    try: s.decode(\"utf-8\"); at = -1\n"
             "    except UnicodeDecodeError as e: at = e.start\n"
             "    out.write(\"%%d %%s\\n\" %% (at, s.decode(\"utf-8\", \"one\").encode(\"utf-8\").hex()))\n"
             "' %s %s",
             in_path, out_path);
    int rc = system(cmd);
    CHECK(rc == 0, "python3 failed (%d)", rc);
    f = rc == 0 ? fopen(out_path, "r") : NULL;
    if (!f) return;
    int mism = 0;
    for (int i = 0; i < N; i++) {
        long long at;
        char hex[256];
        if (fscanf(f, "%lld %255s", &at, hex) != 2) {
            /* an empty hex field (all bytes valid and empty) cannot occur: len >= 1 */
            CHECK(0, "python output ends at case %d", i);
            break;
        }
        size_t n = 0;
        char *s = grok_utf8_sanitize((const char *)str[i], len[i], &n);
        char mine[256] = "";
        for (size_t k = 0; s && k < n && 2 * k + 2 < sizeof mine; k++) sprintf(mine + 2 * k, "%02x", (unsigned char)s[k]);
        const long long my_at = (long long)grok_utf8_invalid_at((const char *)str[i], len[i]);
        if ((my_at != at || strcmp(mine, hex) != 0) && ++mism <= 5)
            fprintf(stderr, "case %d: ours %lld %s, python %lld %s\n", i, my_at, mine, at, hex);
        free(s);
    }
    fclose(f);
    CHECK(mism == 0, "%d of %d strings differ from Python", mism, N);
}

int main(void) {
    test_utf8_spec();
    test_utf8_kuhn();
    test_utf8_python();
    return check_summary("test_util");
}
