/*
 * test_tokenizer.c - checks libgrok's SentencePiece tokenizer against
 * sentencepiece 0.1.97 itself: every input of tests/fixtures/tokenizer_grok1.txt
 * (written by gen_tokenizer_fixtures.py from the python module) must give
 * exactly the same ids, every decode case the same text, decode must invert
 * encode on valid UTF-8, the streaming decoder must agree with the whole
 * decode, a 1 MB input must stay near-linear, and malformed .model images
 * must be rejected with a message and without a crash. Also the
 * placeholder vocabulary and, where GGUF is available, the GGUF round trip.
 * Needs ../shared/tokenizers/grok-1.model (skipped without it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "grok.h"
#include "tokenizer/tokenizer_internal.h"

#include "check.h"
#include "util/clock.h"

/* CPU time of this process, not wall time: the linear-time guard below
 * must not trip when a loaded machine deschedules the test. */
static double now(void) { return grok_cpu_now(); }

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes hex from s up to a tab/newline/NUL into a malloc'd buffer. */
static unsigned char *unhex(const char *s, size_t *n, const char **end) {
    size_t len = strcspn(s, "\t\n");
    unsigned char *b = malloc(len / 2 + 1);
    for (size_t i = 0; i + 1 < len; i += 2) b[i / 2] = (unsigned char)(hexval(s[i]) * 16 + hexval(s[i + 1]));
    *n = len / 2;
    *end = s + len;
    return b;
}

static int32_t *parse_ids(const char *s, size_t *n, const char **end) {
    size_t len = strcspn(s, "\t\n");
    int32_t *ids = malloc((len / 2 + 1) * sizeof *ids);
    size_t k = 0;
    const char *p = s;
    while (p < s + len) {
        char *e;
        ids[k++] = (int32_t)strtol(p, &e, 10);
        p = e;
        while (p < s + len && *p == ' ') p++;
    }
    *n = k;
    *end = s + len;
    return ids;
}

/* Valid UTF-8 by SentencePiece's rules, and free of U+2581 (which encodes
 * like a space and so cannot round-trip). */
static bool roundtrips(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t need = c < 0x80             ? 1
                      : (c & 0xE0) == 0xC0 ? 2
                      : (c & 0xF0) == 0xE0 ? 3
                      : (c & 0xF8) == 0xF0 ? 4
                                           : 0;
        if (need == 0 || i + need > n) return false;
        uint32_t cp = need == 1 ? c : need == 2 ? c & 0x1F : need == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000) || cp == 0x2581) return false;
        i += need;
    }
    return true;
}

/* Decodes ids one at a time through the streaming decoder. */
static char *stream_decode(const grok_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t cap = (n + 1) * (GROK_DETOK_MAX_PIECE + 16), pos = 0;
    char *out = malloc(cap);
    grok_detok_stream s;
    grok_detok_stream_init(&s, true);
    for (size_t i = 0; i < n; i++) {
        size_t before = pos;
        pos += grok_detok_stream_push(&s, t, ids[i], out + pos, GROK_DETOK_MAX_PIECE + 16);
        /* Never half a character: what came out must be whole UTF-8. */
        for (size_t k = before; k < pos;) {
            unsigned c = (unsigned char)out[k];
            size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (k + need > pos) {
                CHECK(0, "stream emitted half a character after id %d", (int)ids[i]);
                break;
            }
            k += need;
        }
    }
    pos += grok_detok_stream_flush(&s, out + pos, GROK_DETOK_MAX_PIECE + 16);
    *len = pos;
    return out;
}

static void test_fixtures(const grok_tokenizer *t, const char *fixture_path) {
    size_t flen;
    char *data = check_read_file(fixture_path, &flen);
    CHECK(data != NULL, "cannot read %s", fixture_path);
    if (!data) return;
    int64_t n_enc = 0, enc_ok = 0, n_rt = 0, rt_ok = 0, n_dec = 0, dec_ok = 0, stream_ok = 0, n_stream = 0;
    for (char *line = data; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
        if (*line == '#' || *line == '\n') continue;
        const char *p;
        if (line[0] == 'D' && line[1] == '\t') {
            size_t nid, nt;
            int32_t *ids = parse_ids(line + 2, &nid, &p);
            unsigned char *want = unhex(p + 1, &nt, &p);
            size_t got_len;
            char *got = grok_detokenize(t, ids, nid, &got_len);
            n_dec++;
            if (got && got_len == nt && memcmp(got, want, nt) == 0)
                dec_ok++;
            else if (n_dec - dec_ok <= 5)
                CHECK(0, "decode case %lld differs: got %zu bytes '%.60s', want %zu", (long long)n_dec,
                      got_len, got ? got : "(null)", nt);
            size_t sl;
            char *st = stream_decode(t, ids, nid, &sl);
            n_stream++;
            if (got && sl == got_len && memcmp(st, got, sl) == 0) stream_ok++;
            free(st);
            free(got);
            free(ids);
            free(want);
            continue;
        }
        size_t nin, nwant, ngot;
        unsigned char *in = unhex(line, &nin, &p);
        int32_t *want = parse_ids(p + 1, &nwant, &p);
        int32_t *got = grok_tokenize(t, (const char *)in, nin, true, &ngot);
        n_enc++;
        bool same = got && ngot == nwant && memcmp(got, want, ngot * sizeof *got) == 0;
        if (same)
            enc_ok++;
        else if (n_enc - enc_ok <= 5) {
            size_t k = 0;
            while (got && k < ngot && k < nwant && got[k] == want[k]) k++;
            CHECK(0, "fixture %lld (%zu bytes): ids differ at position %zu (got %zu ids, want %zu)",
                  (long long)n_enc, nin, k, ngot, nwant);
        }
        if (got) {
            size_t dl;
            char *dec = grok_detokenize(t, got, ngot, &dl);
            if (roundtrips(in, nin)) {
                n_rt++;
                if (dec && dl == nin && memcmp(dec, in, nin) == 0)
                    rt_ok++;
                else if (n_rt - rt_ok <= 5)
                    CHECK(0, "fixture %lld: decode(encode(x)) != x", (long long)n_enc);
            }
            size_t sl;
            char *st = stream_decode(t, got, ngot, &sl);
            n_stream++;
            if (dec && sl == dl && memcmp(st, dec, sl) == 0)
                stream_ok++;
            else if (n_stream - stream_ok <= 5)
                CHECK(0, "fixture %lld: streaming decode differs from whole decode", (long long)n_enc);
            free(st);
            free(dec);
        }
        free(in);
        free(want);
        free(got);
    }
    printf("encode: %lld/%lld fixtures identical to sentencepiece\n", (long long)enc_ok, (long long)n_enc);
    printf("decode: %lld/%lld decode cases identical to sentencepiece\n", (long long)dec_ok,
           (long long)n_dec);
    printf("round trip: %lld/%lld valid UTF-8 inputs decode back exactly\n", (long long)rt_ok,
           (long long)n_rt);
    printf("stream: %lld/%lld streaming decodes equal the whole decode\n", (long long)stream_ok,
           (long long)n_stream);
    CHECK(n_enc >= 2000 && enc_ok == n_enc, "encode fixtures: %lld of %lld", (long long)enc_ok,
          (long long)n_enc);
    CHECK(n_dec >= 100 && dec_ok == n_dec, "decode cases: %lld of %lld", (long long)dec_ok, (long long)n_dec);
    CHECK(n_rt >= 1000 && rt_ok == n_rt, "round trips: %lld of %lld", (long long)rt_ok, (long long)n_rt);
    CHECK(stream_ok == n_stream, "streams: %lld of %lld", (long long)stream_ok, (long long)n_stream);
    free(data);
}

static void test_example(const grok_tokenizer *t) {
    /* GROK1.md's example, with ids taken from the official tokenizer. */
    static const char text[] = "The answer to life the universe and everything is of course";
    static const int32_t want[] = {422, 3033, 356, 1180, 333, 9072, 360, 2175, 391, 359, 1805};
    size_t n;
    int32_t *ids = grok_tokenize(t, text, strlen(text), true, &n);
    CHECK(ids && n == 11 && memcmp(ids, want, sizeof want) == 0, "GROK1.md example");
    size_t len;
    char *back = grok_detokenize(t, ids, n, &len);
    CHECK(back && strcmp(back, text) == 0, "GROK1.md example decodes back");
    free(back);
    free(ids);
    CHECK(!grok_tokenizer_add_bos(t) && !grok_tokenizer_add_eos(t), ".model adds no BOS/EOS");
    CHECK(grok_tokenizer_bos(t) == 1 && grok_tokenizer_eos(t) == 2 && grok_tokenizer_pad(t) == 0 &&
              grok_tokenizer_unk(t) == 3,
          "special ids");
    CHECK(grok_tokenizer_n_vocab(t) == 131072, "vocab size");
}

static double time_encode(const grok_tokenizer *t, const char *s, size_t len) {
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        size_t n;
        double t0 = now();
        int32_t *ids = grok_tokenize(t, s, len, false, &n);
        double dt = now() - t0;
        CHECK(ids != NULL, "encode %zu bytes", len);
        free(ids);
        if (dt < best) best = dt;
    }
    return best;
}

static void test_linear(const grok_tokenizer *t, const char *fixture_path) {
    /* Realistic text: the fixture's inputs concatenated, 1 MB and 100 KB. */
    size_t flen;
    char *src = check_read_file(fixture_path, &flen);
    if (!src) return;
    size_t big = 1 << 20;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++) {
        char c = src[i % flen];
        text[i] = c == '\t' ? ' ' : c;
    }
    double t_small = time_encode(t, text, big / 10);
    double t_big = time_encode(t, text, big);
    /* A long run with no spaces: one word of 1 MB. */
    memset(text, 'a', big);
    double t_run_small = time_encode(t, text, big / 10), t_run = time_encode(t, text, big);
    printf("encode 100 KB: %.4f s, 1 MB: %.4f s (ratio %.1f); 'a' run: %.4f s / %.4f s\n", t_small, t_big,
           t_big / t_small, t_run_small, t_run);
    /* A quadratic encoder gives a ratio near 100; linear ones give ~10, and
     * up to ~35 on a loaded shared machine (seen), so 60 separates them. */
    CHECK(t_big / (t_small + 1e-4) < 60, "1 MB vs 100 KB time ratio %.1f (quadratic?)", t_big / t_small);
    CHECK(t_run / (t_run_small + 1e-4) < 60, "1 MB vs 100 KB run ratio %.1f", t_run / t_run_small);
    free(text);
    free(src);
}

/* Appends one protobuf varint. */
static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t k = 0;
    do {
        p[k++] = (unsigned char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return k;
}

/* A smaller valid .model image: the Grok-1 specs and its first n_keep
 * pieces (specials, user-defined, bytes and the best merges), so that
 * hundreds of mutations parse quickly. */
static unsigned char *small_model(const unsigned char *m, size_t len, int n_keep, size_t *out_len) {
    unsigned char *out = malloc(len);
    size_t o = 0, i = 0;
    int pieces = 0;
    while (i < len) {
        size_t start = i;
        uint64_t key = 0, l = 0;
        int sh = 0;
        while (m[i] & 0x80) key |= (uint64_t)(m[i++] & 0x7f) << (sh += 7, sh - 7);
        key |= (uint64_t)m[i++] << sh;
        sh = 0;
        while (m[i] & 0x80) l |= (uint64_t)(m[i++] & 0x7f) << (sh += 7, sh - 7);
        l |= (uint64_t)m[i++] << sh;
        i += l;
        if ((key >> 3) == 1 && pieces++ >= n_keep) continue;
        memcpy(out + o, m + start, i - start);
        o += i - start;
    }
    *out_len = o;
    return out;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void try_image(const unsigned char *img, size_t len, const char *what, int64_t *rejected,
                      int64_t *accepted) {
    char err[GROK_ERR_SIZE] = "";
    grok_tokenizer *t = grok_tok_load_spm_bytes(img, len, what, err, sizeof err);
    if (!t) {
        (*rejected)++;
        CHECK(err[0] != 0, "%s: rejected without a message", what);
        return;
    }
    (*accepted)++;
    /* Whatever was accepted must encode and decode without trouble. */
    static const char s[] = "Hello  world\n\n 123 \xff\xe2\x82 <|mask|> \xf0\x9f\x98\x80";
    size_t n;
    int32_t *ids = grok_tokenize(t, s, sizeof s - 1, true, &n);
    CHECK(ids != NULL, "%s: encode failed", what);
    char *d = grok_detokenize(t, ids, n, NULL);
    free(d);
    free(ids);
    grok_tokenizer_free(t);
}

static void test_malformed(const char *model_path) {
    size_t len;
    unsigned char *full = (unsigned char *)check_read_file(model_path, &len);
    if (!full) return;
    size_t slen;
    unsigned char *small = small_model(full, len, 600, &slen);
    int64_t rej = 0, acc = 0;
    try_image(small, slen, "small", &rej, &acc);
    CHECK(acc == 1, "the reduced model must load");
    /* The reduced model encodes plain text the same way as the full one
     * would for pieces it has; here only check that it works. */
    unsigned char *buf = malloc(slen + 16);
    int64_t trunc_rej = 0, trunc_acc = 0;
    for (int k = 0; k < 300; k++) {
        size_t cut = (size_t)(rnd() % slen);
        memcpy(buf, small, cut);
        try_image(buf, cut, "truncated", &trunc_rej, &trunc_acc);
    }
    int64_t mut_rej = 0, mut_acc = 0;
    for (int k = 0; k < 400; k++) {
        memcpy(buf, small, slen);
        int flips = 1 + (int)(rnd() % 4);
        for (int j = 0; j < flips; j++) {
            size_t pos = (size_t)(rnd() % slen);
            /* Bias towards the specs at the end and the first pieces. */
            if (k % 2) pos = slen - 1 - (size_t)(rnd() % (slen < 800 ? slen : 800));
            buf[pos] = (unsigned char)rnd();
        }
        try_image(buf, slen, "mutated", &mut_rej, &mut_acc);
    }
    printf("malformed: %lld/300 truncations rejected, %lld/400 mutations rejected (rest "
           "still valid and usable)\n",
           (long long)trunc_rej, (long long)mut_rej);
    /* Specific damage, each must be rejected. */
    struct {
        const char *what;
        unsigned char bytes[16];
        size_t n;
    } cases[] = {
        {"empty file", {0}, 0},
        {"wire type 3 (group)", {0x0b}, 1},
        {"wire type 7", {0x0f}, 1},
        {"length past end", {0x0a, 0x7f, 0x0a}, 3},
        {"truncated varint", {0x08, 0xff, 0xff}, 3},
        {"overlong varint", {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 12},
        {"field number 0", {0x02, 0x00}, 2},
        {"piece without text", {0x0a, 0x02, 0x18, 0x01}, 4},
        {"piece type 9", {0x0a, 0x05, 0x0a, 0x01, 'a', 0x18, 0x09}, 7},
        {"score with varint wire type", {0x0a, 0x05, 0x0a, 0x01, 'a', 0x10, 0x01}, 7},
        {"unigram model (no trainer_spec)", {0x0a, 0x03, 0x0a, 0x01, 'a'}, 5},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t r = 0, a = 0;
        try_image(cases[k].bytes, cases[k].n, cases[k].what, &r, &a);
        CHECK(r == 1, "%s must be rejected", cases[k].what);
    }
    /* A BPE model whose normalizer has a character map is refused. */
    unsigned char *cm = malloc(slen + 32);
    memcpy(cm, small, slen);
    size_t o = slen;
    cm[o++] = 0x1a; /* field 3, normalizer_spec */
    cm[o++] = 5;
    cm[o++] = 0x12; /* precompiled_charsmap */
    cm[o++] = 3;
    cm[o++] = 'x';
    cm[o++] = 'y';
    cm[o++] = 'z';
    int64_t r = 0, a = 0;
    try_image(cm, o, "charsmap", &r, &a);
    CHECK(r == 1, "a normalizer character map must be rejected");
    /* model_type UNIGRAM appended to trainer_spec: refused. */
    o = slen;
    cm[o++] = 0x12; /* field 2 trainer_spec */
    cm[o++] = 2;
    o += put_varint(cm + o, 3 << 3);
    cm[o++] = 1;
    r = a = 0;
    try_image(cm, o, "unigram", &r, &a);
    CHECK(r == 1, "a unigram model must be rejected");
    free(cm);
    /* Truncations of the real file. */
    int64_t fr = 0, fa = 0;
    for (int k = 0; k < 8; k++) try_image(full, (size_t)(rnd() % len), "full truncated", &fr, &fa);
    CHECK(fr + fa == 8, "full truncations ran");
    free(buf);
    free(small);
    free(full);
}

static void test_placeholder(void) {
    char err[GROK_ERR_SIZE];
    CHECK(grok_tokenizer_placeholder(3, err, sizeof err) == NULL, "placeholder n=3 is refused");
    int64_t sizes[] = {4, 10, 259, 260, 400, 2000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        grok_tokenizer *t = grok_tokenizer_placeholder(sizes[k], err, sizeof err);
        CHECK(t != NULL, "placeholder %lld: %s", (long long)sizes[k], err);
        if (!t) continue;
        CHECK(grok_tokenizer_n_vocab(t) == sizes[k], "placeholder size");
        CHECK(grok_tokenizer_pad(t) == 0 && grok_tokenizer_bos(t) == 1 && grok_tokenizer_eos(t) == 2 &&
                  grok_tokenizer_unk(t) == 3,
              "placeholder specials");
        static const char s[] = "Hello, world! \xe2\x82\xac 42\n";
        size_t n;
        int32_t *ids = grok_tokenize(t, s, sizeof s - 1, true, &n);
        CHECK(ids && n > 0, "placeholder encodes");
        for (size_t i = 0; ids && i < n; i++)
            CHECK(ids[i] >= 0 && ids[i] < sizes[k], "placeholder id in range");
        char *d = grok_detokenize(t, ids, n, NULL);
        if (sizes[k] > 260)
            CHECK(d && strcmp(d, s) == 0, "placeholder %lld round trip", (long long)sizes[k]);
        else if (sizes[k] == 260)
            for (size_t i = 0; ids && i < n; i++)
                CHECK(grok_tokenizer_type(t, ids[i]) == GROK_TOKEN_BYTE, "260: all byte pieces");
        else
            CHECK(ids && ids[0] == 3 && n == 1, "small placeholder: all unknown -> one [UNK]");
        free(d);
        free(ids);
        grok_tokenizer_free(t);
    }
}

/* tokenizer -> grok_gguf_writer -> file -> grok_gguf_open -> grok_tokenizer_from_gguf
 * must give the same pieces, options and ids. */
static void test_gguf_roundtrip(const grok_tokenizer *t, const char *fixture_path) {
    const char *tmp = getenv("GROK_TMP");
    char dir[4096], path[4200], err[GROK_ERR_SIZE];
    snprintf(dir, sizeof dir, "%s", tmp ? tmp : "/tmp");
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/tokenizer_roundtrip.gguf", dir);
    grok_gguf_writer *w = grok_gguf_writer_create();
    CHECK(grok_tokenizer_to_gguf(t, w) == 0, "to_gguf");
    int rc = grok_gguf_writer_write(w, path, err, sizeof err);
    CHECK(rc == 0, "gguf write: %s", err);
    grok_gguf_writer_free(w);
    if (rc != 0) return;
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    CHECK(f != NULL, "gguf open: %s", err);
    if (!f) return;
    grok_tokenizer *g = grok_tokenizer_from_gguf(f, err, sizeof err);
    CHECK(g != NULL, "from_gguf: %s", err);
    grok_gguf_close(f);
    if (!g) return;
    CHECK(grok_tokenizer_n_vocab(g) == grok_tokenizer_n_vocab(t), "gguf vocab size");
    int64_t diff = 0;
    for (int32_t i = 0; i < grok_tokenizer_n_vocab(t); i++) {
        size_t la, lb;
        const char *a = grok_tokenizer_piece(t, i, &la), *b = grok_tokenizer_piece(g, i, &lb);
        if (la != lb || memcmp(a, b, la) != 0 || grok_tokenizer_score(t, i) != grok_tokenizer_score(g, i) ||
            grok_tokenizer_type(t, i) != grok_tokenizer_type(g, i))
            diff++;
    }
    CHECK(diff == 0, "gguf: %lld pieces differ", (long long)diff);
    CHECK(grok_tokenizer_bos(g) == grok_tokenizer_bos(t) && grok_tokenizer_eos(g) == grok_tokenizer_eos(t) &&
              grok_tokenizer_unk(g) == grok_tokenizer_unk(t) &&
              grok_tokenizer_pad(g) == grok_tokenizer_pad(t) &&
              grok_tokenizer_add_bos(g) == grok_tokenizer_add_bos(t) &&
              grok_tokenizer_add_eos(g) == grok_tokenizer_add_eos(t),
          "gguf special ids and flags");
    CHECK(g->add_dummy_prefix == t->add_dummy_prefix &&
              g->remove_extra_whitespaces == t->remove_extra_whitespaces &&
              g->byte_fallback == t->byte_fallback && g->split_digits == t->split_digits &&
              strcmp(g->unk_surface, t->unk_surface) == 0,
          "gguf normalizer options");
    /* Same ids for every fixture input, same text for every decode case. */
    size_t flen;
    char *data = check_read_file(fixture_path, &flen);
    int64_t n = 0, same = 0;
    for (char *line = data; data && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
        if (*line == '#' || *line == 'D' || *line == '\n') continue;
        const char *p;
        size_t nin, na, nb;
        unsigned char *in = unhex(line, &nin, &p);
        int32_t *a = grok_tokenize(t, (const char *)in, nin, true, &na);
        int32_t *b = grok_tokenize(g, (const char *)in, nin, true, &nb);
        n++;
        if (a && b && na == nb && memcmp(a, b, na * sizeof *a) == 0) {
            size_t da, db;
            char *x = grok_detokenize(t, a, na, &da), *y = grok_detokenize(g, b, nb, &db);
            if (x && y && da == db && memcmp(x, y, da) == 0) same++;
            free(x);
            free(y);
        }
        free(a);
        free(b);
        free(in);
    }
    printf("gguf round trip: %lld/%lld fixtures give the same ids and text\n", (long long)same, (long long)n);
    CHECK(n > 0 && same == n, "gguf round trip ids");
    free(data);
    grok_tokenizer_free(g);
    remove(path);
    /* The placeholder survives the trip too. */
    grok_tokenizer *ph = grok_tokenizer_placeholder(300, err, sizeof err);
    w = grok_gguf_writer_create();
    CHECK(ph && grok_tokenizer_to_gguf(ph, w) == 0 && grok_gguf_writer_write(w, path, err, sizeof err) == 0,
          "placeholder to gguf: %s", err);
    grok_gguf_writer_free(w);
    f = grok_gguf_open(path, err, sizeof err);
    grok_tokenizer *ph2 = f ? grok_tokenizer_from_gguf(f, err, sizeof err) : NULL;
    CHECK(ph2 != NULL, "placeholder from gguf: %s", err);
    if (ph && ph2) {
        static const char s[] = "Placeholder text, 42 \xe2\x82\xac!";
        size_t na, nb;
        int32_t *a = grok_tokenize(ph, s, sizeof s - 1, true, &na),
                *b = grok_tokenize(ph2, s, sizeof s - 1, true, &nb);
        CHECK(a && b && na == nb && memcmp(a, b, na * sizeof *a) == 0, "placeholder gguf ids");
        free(a);
        free(b);
    }
    grok_gguf_close(f);
    grok_tokenizer_free(ph);
    grok_tokenizer_free(ph2);
    remove(path);
}

int main(void) {
    const char *src = getenv("GROK_SRC");
    if (!src) src = ".";
    char model[4096], fixture[4096];
    snprintf(model, sizeof model, "%s/../shared/tokenizers/grok-1.model", src);
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/tokenizer_grok1.txt", src);
    test_placeholder();
    struct stat st;
    if (stat(model, &st) != 0) {
        printf("SKIP: %s not found (the Grok-1 tokenizer is needed for the rest)\n", model);
        return check_failures ? 1 : 77;
    }
    char err[GROK_ERR_SIZE];
    double t0 = now();
    grok_tokenizer *t = grok_tokenizer_load_spm(model, err, sizeof err);
    CHECK(t != NULL, "load: %s", err);
    if (!t) return 1;
    printf("loaded %s in %.3f s\n", model, now() - t0);
    test_example(t);
    test_fixtures(t, fixture);
    test_linear(t, fixture);
    test_malformed(model);
    test_gguf_roundtrip(t, fixture);
    grok_tokenizer_free(t);
    if (check_failures) {
        printf("%d check_failures\n", check_failures);
        return 1;
    }
    printf("OK\n");
    return 0;
}
