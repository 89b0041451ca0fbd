/*
 * test_util.c - the shared utilities of src/util: UTF-8 (against the
 * standard's counts, an encoder written from RFC 3629's table, Markus
 * Kuhn's malformed sequences, and Python's strict decoder when
 * /usr/bin/python3 is there), the named RNG streams, the clock and the
 * growing buffer and whole-file reads (splitmix64 against its published outputs, the named
 * streams pinned to the values grok new and grok train have always drawn).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/rng.h"
#include "util/utf8.h"

/* RFC 3629's table, as an encoder: the reference the decoder must invert. */
static size_t encode(uint32_t cp, unsigned char *o) {
    if (cp < 0x80) return o[0] = (unsigned char)cp, 1;
    if (cp < 0x800)
        return o[0] = (unsigned char)(0xC0 | cp >> 6), o[1] = (unsigned char)(0x80 | (cp & 0x3F)), 2;
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
        {"\xC2", 0},          /* ends early */
        {"\xEF\xBF\xBD", -1}, /* U+FFFD itself */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t at = grok_utf8_invalid_at(cases[i].s, strlen(cases[i].s));
        CHECK(at == cases[i].at, "case %zu: first bad byte %lld, want %lld", i, (long long)at,
              (long long)cases[i].at);
        CHECK(grok_utf8_valid(cases[i].s, strlen(cases[i].s)) == (cases[i].at < 0), "case %zu: valid", i);
    }
    /* incomplete: a prefix that more bytes may still complete */
    CHECK(grok_utf8_incomplete((const unsigned char *)"\xE2\x82", 2), "E2 82 can still grow");
    CHECK(grok_utf8_incomplete((const unsigned char *)"\xF0", 1), "F0 can still grow");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xE0\x80", 2), "E0 80 can only be overlong");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xED\xA0", 2), "ED A0 can only be a surrogate");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xF4\x90", 2), "F4 90 is past U+10FFFF");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xC0", 1), "C0 never starts a character");
    CHECK(!grok_utf8_incomplete((const unsigned char *)"\xE2\x82\xAC", 3),
          "a whole character is not incomplete");
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
    static const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0,
                                         0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED,
                                         0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xF8, 0xFF};
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
        for (size_t k = 0; s && k < n && 2 * k + 2 < sizeof mine; k++)
            sprintf(mine + 2 * k, "%02x", (unsigned char)s[k]);
        const long long my_at = (long long)grok_utf8_invalid_at((const char *)str[i], len[i]);
        if ((my_at != at || strcmp(mine, hex) != 0) && ++mism <= 5)
            fprintf(stderr, "case %d: ours %lld %s, python %lld %s\n", i, my_at, mine, at, hex);
        free(s);
    }
    fclose(f);
    CHECK(mism == 0, "%d of %d strings differ from Python", mism, N);
}

static void test_rng(void) {
    /* splitmix64's published outputs for seed 1234567 (Rosetta Code,
     * "Pseudo-random numbers/Splitmix64", from Vigna's splitmix64.c) */
    static const uint64_t want[5] = {6457827717110365317ull, 3203168211198807973ull, 9817491932198370423ull,
                                     4593380528125082431ull, 16408922859458223821ull};
    grok_rng r = {1234567};
    for (int i = 0; i < 5; i++) {
        uint64_t v = grok_rng_next(&r);
        CHECK(v == want[i], "splitmix64 output %d: %llu, want %llu", i, (unsigned long long)v,
              (unsigned long long)want[i]);
    }
    r = (grok_rng){0};
    CHECK(grok_rng_next(&r) == 0xE220A8397B1DCDAFull, "splitmix64 of seed 0");
    /* each named stream's first output for seed 7, element 3: what grok new,
     * grok train and the sampler draw for a seed must never change (they
     * decide the bytes of models and texts users compare) */
    static const uint64_t pinned[5] = {0x914c568ac33d90b4ull, 0xe5e54bf9d8203605ull, 0x6e7411b06820371cull,
                                       0xd7c07017388fa2afull, 0x63cbe1e459320dd7ull};
    for (int st = 0; st < 5; st++) {
        grok_rng g = grok_rng_named(7, (grok_rng_stream)st, 3);
        uint64_t v = grok_rng_next(&g);
        CHECK(v == pinned[st], "stream %d of seed 7 now starts 0x%016llx", st, (unsigned long long)v);
    }
    /* the sampler's stream is splitmix64 of the seed itself */
    grok_rng a = grok_rng_named(1234567, GROK_RNG_SAMPLER, 0);
    CHECK(grok_rng_next(&a) == want[0], "the sampler's stream");
    /* streams of one seed differ, and so do elements of one stream */
    grok_rng w0 = grok_rng_named(7, GROK_RNG_WEIGHTS, 0), w1 = grok_rng_named(7, GROK_RNG_WEIGHTS, 1);
    grok_rng d = grok_rng_named(7, GROK_RNG_DATA, 0);
    uint64_t x0 = grok_rng_next(&w0), x1 = grok_rng_next(&w1), xd = grok_rng_next(&d);
    CHECK(x0 != x1 && x0 != xd && x1 != xd, "streams collide");
    /* uniform in [0, 1), normal with mean ~0 and variance ~1 */
    grok_rng u = {42};
    double lo = 1, hi = 0, sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        double v = grok_rng_uniform(&u);
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        double z = grok_rng_normal(&u);
        sum += z, sq += z * z;
    }
    CHECK(lo >= 0 && hi < 1 && lo < 0.001 && hi > 0.999, "uniform range [%g, %g]", lo, hi);
    CHECK(sum / 1e5 > -0.02 && sum / 1e5 < 0.02 && sq / 1e5 > 0.98 && sq / 1e5 < 1.02,
          "normal mean %g var %g", sum / 1e5, sq / 1e5);
}

static void test_clock(void) {
    double a = grok_now(), c = grok_cpu_now();
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
    double b = grok_now();
    CHECK(b - a >= 0.019 && b - a < 5, "20 ms of sleep measured as %g s", b - a);
    volatile double x = 0;
    for (int i = 0; i < 3000000; i++) x += i * 0.5;
    CHECK(grok_cpu_now() > c && x > 0, "CPU time does not advance");
    struct timespec now, t = grok_realtime_after(1.75);
    clock_gettime(CLOCK_REALTIME, &now);
    double ahead = (double)(t.tv_sec - now.tv_sec) + (double)(t.tv_nsec - now.tv_nsec) * 1e-9;
    CHECK(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L, "tv_nsec %ld not normalised", (long)t.tv_nsec);
    CHECK(ahead > 1.7 && ahead <= 1.75, "deadline %g s ahead, want 1.75", ahead);
}

static void test_buf(void) {
    char *b = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;
    for (int i = 0; i < 1000; i++) ok = ok && grok_buf_addf(&b, &len, &cap, "%d,", i);
    ok = ok && grok_buf_adds(&b, &len, &cap, "end") && grok_buf_add(&b, &len, &cap, "xyz", 1);
    CHECK(ok && len == strlen(b) && cap > len, "buf: len %zu strlen %zu cap %zu", len, b ? strlen(b) : 0,
          cap);
    CHECK(b && strncmp(b, "0,1,2,", 6) == 0 && strcmp(b + len - 12, "998,999,endx") == 0, "buf text");
    free(b);
    /* one printf far longer than the room: grown once, printed whole */
    b = NULL, len = cap = 0;
    CHECK(grok_buf_addf(&b, &len, &cap, "%s|%05d", "ab", 7) && strcmp(b, "ab|00007") == 0, "short printf");
    CHECK(grok_buf_addf(&b, &len, &cap, "%3000d", 1) && len == 3008 && b[len - 1] == '1' && b[len] == 0,
          "long printf: len %zu", len);
    free(b);
    grok_strbuf s = {0};
    size_t n = 99;
    char *t = grok_strbuf_take(&s, &n);
    CHECK(t && t[0] == 0 && n == 0, "take of an empty strbuf is \"\"");
    free(t);
    grok_strbuf_adds(&s, "a");
    grok_strbuf_add(&s, "\0b", 2); /* binary content keeps its length */
    grok_strbuf_addf(&s, "%c", 'c');
    t = grok_strbuf_take(&s, &n);
    CHECK(t && n == 4 && memcmp(t, "a\0bc", 5) == 0 && s.a == NULL && s.n == 0, "strbuf");
    free(t);
    s.oom = true; /* a failed append sticks: take gives NULL */
    grok_strbuf_adds(&s, "lost");
    CHECK(grok_strbuf_take(&s, &n) == NULL && n == 0 && !s.oom, "take after out of memory");
}

static void test_read_file(void) {
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/read_file_%d.bin", tmp, (int)getpid());
    enum { N = 200003 }; /* more than one 64 KiB chunk, not a multiple of it */
    static char data[N];
    for (int i = 0; i < N; i++) data[i] = (char)(i * 7 + i / 251);
    data[5] = 0; /* a NUL inside: the length, not strlen, counts */
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, N, f) == N, "write %s", path);
    if (f) fclose(f);
    size_t n = 0;
    char *b = grok_read_file(path, &n, err, sizeof err);
    CHECK(b && n == N && memcmp(b, data, N) == 0 && b[N] == 0, "read back %zu of %d bytes", n, N);
    free(b);
    f = fopen(path, "wb");
    if (f) fclose(f);
    b = grok_read_file(path, &n, err, sizeof err);
    CHECK(b && n == 0 && b[0] == 0, "an empty file");
    free(b);
    unlink(path);
    b = grok_read_file(path, &n, err, sizeof err);
    CHECK(!b && strstr(err, path) && strstr(err, "No such file"), "missing file: %s", err);
    b = grok_read_file(tmp, &n, err, sizeof err);
    CHECK(!b && strstr(err, tmp) && strstr(err, "directory"), "a directory: %s", b ? "read" : err);
    free(b);
}

int main(void) {
    test_utf8_spec();
    test_utf8_kuhn();
    test_utf8_python();
    test_rng();
    test_clock();
    test_buf();
    test_read_file();
    return check_summary("test_util");
}
