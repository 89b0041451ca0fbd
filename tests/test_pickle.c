/*
 * test_pickle.c - the checkpoint pickle reader against real pickles and a
 * corpus of malformed ones. The three valid pickles below are what
 * Debian's python3 (3.11) and numpy (1.24) write with pickle.dump for a
 * real @dataclass QuantizedWeight8bit in __main__ holding an int8 [4,3]
 * weight (-6..5) and bf16 [1,3] scales (1, 2, 3) of a real numpy
 * user-defined dtype ml_dtypes.bfloat16 (tests/pickle/ml_dtypes.c), in
 * protocol 4 (QW8) and 3 (QW8_P3), and for a float32 [3] array (1.5, -2,
 * 3.25). tests/pickle/real_pickles.py printed them, and
 * pickle_real_test.sh checks that they are still what pickle.dump writes.
 * Offsets used below come from pickletools.dis of them. Every mutation
 * must be rejected with a message naming the file and a byte offset, and
 * nothing may crash (the suite also runs under ASan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/convert.h"
#include "convert/pickle.h"
#include "kernels/kernels.h"

static const uint8_t QW8[310] = {
    0x80, 0x04, 0x95, 0x2b, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8c, 0x08, 0x5f, 0x5f, 0x6d, 0x61,
    0x69, 0x6e, 0x5f, 0x5f, 0x94, 0x8c, 0x13, 0x51, 0x75, 0x61, 0x6e, 0x74, 0x69, 0x7a, 0x65, 0x64, 0x57,
    0x65, 0x69, 0x67, 0x68, 0x74, 0x38, 0x62, 0x69, 0x74, 0x94, 0x93, 0x94, 0x29, 0x81, 0x94, 0x7d, 0x94,
    0x28, 0x8c, 0x06, 0x77, 0x65, 0x69, 0x67, 0x68, 0x74, 0x94, 0x8c, 0x15, 0x6e, 0x75, 0x6d, 0x70, 0x79,
    0x2e, 0x63, 0x6f, 0x72, 0x65, 0x2e, 0x6d, 0x75, 0x6c, 0x74, 0x69, 0x61, 0x72, 0x72, 0x61, 0x79, 0x94,
    0x8c, 0x0c, 0x5f, 0x72, 0x65, 0x63, 0x6f, 0x6e, 0x73, 0x74, 0x72, 0x75, 0x63, 0x74, 0x94, 0x93, 0x94,
    0x8c, 0x05, 0x6e, 0x75, 0x6d, 0x70, 0x79, 0x94, 0x8c, 0x07, 0x6e, 0x64, 0x61, 0x72, 0x72, 0x61, 0x79,
    0x94, 0x93, 0x94, 0x4b, 0x00, 0x85, 0x94, 0x43, 0x01, 0x62, 0x94, 0x87, 0x94, 0x52, 0x94, 0x28, 0x4b,
    0x01, 0x4b, 0x04, 0x4b, 0x03, 0x86, 0x94, 0x68, 0x09, 0x8c, 0x05, 0x64, 0x74, 0x79, 0x70, 0x65, 0x94,
    0x93, 0x94, 0x8c, 0x02, 0x69, 0x31, 0x94, 0x89, 0x88, 0x87, 0x94, 0x52, 0x94, 0x28, 0x4b, 0x03, 0x8c,
    0x01, 0x7c, 0x94, 0x4e, 0x4e, 0x4e, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b,
    0x00, 0x74, 0x94, 0x62, 0x89, 0x43, 0x0c, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00, 0x01, 0x02, 0x03,
    0x04, 0x05, 0x94, 0x74, 0x94, 0x62, 0x8c, 0x06, 0x73, 0x63, 0x61, 0x6c, 0x65, 0x73, 0x94, 0x68, 0x08,
    0x68, 0x0b, 0x4b, 0x00, 0x85, 0x94, 0x68, 0x0d, 0x87, 0x94, 0x52, 0x94, 0x28, 0x4b, 0x01, 0x4b, 0x01,
    0x4b, 0x03, 0x86, 0x94, 0x68, 0x12, 0x8c, 0x09, 0x6d, 0x6c, 0x5f, 0x64, 0x74, 0x79, 0x70, 0x65, 0x73,
    0x94, 0x8c, 0x08, 0x62, 0x66, 0x6c, 0x6f, 0x61, 0x74, 0x31, 0x36, 0x94, 0x93, 0x94, 0x89, 0x88, 0x87,
    0x94, 0x52, 0x94, 0x28, 0x4b, 0x03, 0x8c, 0x01, 0x3c, 0x94, 0x4e, 0x4e, 0x4e, 0x4b, 0x02, 0x4b, 0x02,
    0x4b, 0x50, 0x74, 0x94, 0x62, 0x89, 0x43, 0x06, 0x80, 0x3f, 0x00, 0x40, 0x40, 0x40, 0x94, 0x74, 0x94,
    0x62, 0x75, 0x62, 0x2e};

static const uint8_t QW8_P3[333] = {
    0x80, 0x03, 0x63, 0x5f, 0x5f, 0x6d, 0x61, 0x69, 0x6e, 0x5f, 0x5f, 0x0a, 0x51, 0x75, 0x61, 0x6e, 0x74,
    0x69, 0x7a, 0x65, 0x64, 0x57, 0x65, 0x69, 0x67, 0x68, 0x74, 0x38, 0x62, 0x69, 0x74, 0x0a, 0x71, 0x00,
    0x29, 0x81, 0x71, 0x01, 0x7d, 0x71, 0x02, 0x28, 0x58, 0x06, 0x00, 0x00, 0x00, 0x77, 0x65, 0x69, 0x67,
    0x68, 0x74, 0x71, 0x03, 0x63, 0x6e, 0x75, 0x6d, 0x70, 0x79, 0x2e, 0x63, 0x6f, 0x72, 0x65, 0x2e, 0x6d,
    0x75, 0x6c, 0x74, 0x69, 0x61, 0x72, 0x72, 0x61, 0x79, 0x0a, 0x5f, 0x72, 0x65, 0x63, 0x6f, 0x6e, 0x73,
    0x74, 0x72, 0x75, 0x63, 0x74, 0x0a, 0x71, 0x04, 0x63, 0x6e, 0x75, 0x6d, 0x70, 0x79, 0x0a, 0x6e, 0x64,
    0x61, 0x72, 0x72, 0x61, 0x79, 0x0a, 0x71, 0x05, 0x4b, 0x00, 0x85, 0x71, 0x06, 0x43, 0x01, 0x62, 0x71,
    0x07, 0x87, 0x71, 0x08, 0x52, 0x71, 0x09, 0x28, 0x4b, 0x01, 0x4b, 0x04, 0x4b, 0x03, 0x86, 0x71, 0x0a,
    0x63, 0x6e, 0x75, 0x6d, 0x70, 0x79, 0x0a, 0x64, 0x74, 0x79, 0x70, 0x65, 0x0a, 0x71, 0x0b, 0x58, 0x02,
    0x00, 0x00, 0x00, 0x69, 0x31, 0x71, 0x0c, 0x89, 0x88, 0x87, 0x71, 0x0d, 0x52, 0x71, 0x0e, 0x28, 0x4b,
    0x03, 0x58, 0x01, 0x00, 0x00, 0x00, 0x7c, 0x71, 0x0f, 0x4e, 0x4e, 0x4e, 0x4a, 0xff, 0xff, 0xff, 0xff,
    0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0x00, 0x74, 0x71, 0x10, 0x62, 0x89, 0x43, 0x0c, 0xfa, 0xfb, 0xfc,
    0xfd, 0xfe, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x71, 0x11, 0x74, 0x71, 0x12, 0x62, 0x58, 0x06,
    0x00, 0x00, 0x00, 0x73, 0x63, 0x61, 0x6c, 0x65, 0x73, 0x71, 0x13, 0x68, 0x04, 0x68, 0x05, 0x4b, 0x00,
    0x85, 0x71, 0x14, 0x68, 0x07, 0x87, 0x71, 0x15, 0x52, 0x71, 0x16, 0x28, 0x4b, 0x01, 0x4b, 0x01, 0x4b,
    0x03, 0x86, 0x71, 0x17, 0x68, 0x0b, 0x63, 0x6d, 0x6c, 0x5f, 0x64, 0x74, 0x79, 0x70, 0x65, 0x73, 0x0a,
    0x62, 0x66, 0x6c, 0x6f, 0x61, 0x74, 0x31, 0x36, 0x0a, 0x71, 0x18, 0x89, 0x88, 0x87, 0x71, 0x19, 0x52,
    0x71, 0x1a, 0x28, 0x4b, 0x03, 0x58, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x71, 0x1b, 0x4e, 0x4e, 0x4e, 0x4b,
    0x02, 0x4b, 0x02, 0x4b, 0x50, 0x74, 0x71, 0x1c, 0x62, 0x89, 0x43, 0x06, 0x80, 0x3f, 0x00, 0x40, 0x40,
    0x40, 0x71, 0x1d, 0x74, 0x71, 0x1e, 0x62, 0x75, 0x62, 0x2e};

static const uint8_t F32[159] = {
    0x80, 0x04, 0x95, 0x94, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8c, 0x15, 0x6e, 0x75, 0x6d,
    0x70, 0x79, 0x2e, 0x63, 0x6f, 0x72, 0x65, 0x2e, 0x6d, 0x75, 0x6c, 0x74, 0x69, 0x61, 0x72, 0x72,
    0x61, 0x79, 0x94, 0x8c, 0x0c, 0x5f, 0x72, 0x65, 0x63, 0x6f, 0x6e, 0x73, 0x74, 0x72, 0x75, 0x63,
    0x74, 0x94, 0x93, 0x94, 0x8c, 0x05, 0x6e, 0x75, 0x6d, 0x70, 0x79, 0x94, 0x8c, 0x07, 0x6e, 0x64,
    0x61, 0x72, 0x72, 0x61, 0x79, 0x94, 0x93, 0x94, 0x4b, 0x00, 0x85, 0x94, 0x43, 0x01, 0x62, 0x94,
    0x87, 0x94, 0x52, 0x94, 0x28, 0x4b, 0x01, 0x4b, 0x03, 0x85, 0x94, 0x68, 0x03, 0x8c, 0x05, 0x64,
    0x74, 0x79, 0x70, 0x65, 0x94, 0x93, 0x94, 0x8c, 0x02, 0x66, 0x34, 0x94, 0x89, 0x88, 0x87, 0x94,
    0x52, 0x94, 0x28, 0x4b, 0x03, 0x8c, 0x01, 0x3c, 0x94, 0x4e, 0x4e, 0x4e, 0x4a, 0xff, 0xff, 0xff,
    0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0x00, 0x74, 0x94, 0x62, 0x89, 0x43, 0x0c, 0x00, 0x00,
    0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x50, 0x40, 0x94, 0x74, 0x94, 0x62, 0x2e};

#include "check.h"

/* Parses buf and expects an error containing `want` and naming the file
 * with a byte offset. */
static void expect_error(const char *label, const uint8_t *buf, size_t len, const char *want) {
    grok_ckpt_entry e;
    char err[512] = "";
    int rc = grok_ckpt_pickle_parse_mem("t.pkl", buf, len, &e, err, sizeof err);
    CHECK(rc < 0, "%s: accepted", label);
    if (rc < 0) {
        CHECK(strncmp(err, "t.pkl: byte ", 12) == 0, "%s: message does not name file+offset: %s", label, err);
        CHECK(!want || strstr(err, want), "%s: message '%s' lacks '%s'", label, err, want);
    }
}

static void expect_patched(const char *label, size_t off, uint8_t val, const char *want) {
    uint8_t b[sizeof QW8];
    memcpy(b, QW8, sizeof b);
    b[off] = val;
    expect_error(label, b, sizeof b, want);
}

/* QW8 with bytes [from, to) replaced by ins, the frame length fixed. */
static size_t splice(uint8_t *dst, size_t from, size_t to, const uint8_t *ins, size_t n) {
    memcpy(dst, QW8, from);
    memcpy(dst + from, ins, n);
    memcpy(dst + from + n, QW8 + to, sizeof QW8 - to);
    size_t len = from + n + sizeof QW8 - to;
    uint64_t frame = len - 11;
    for (int k = 0; k < 8; k++) dst[3 + k] = (uint8_t)(frame >> (8 * k));
    return len;
}

int main(void) {
    grok_ckpt_entry e;
    char err[512];

    /* valid: the QuantizedWeight8bit */
    int rc = grok_ckpt_pickle_parse_mem("t.pkl", QW8, sizeof QW8, &e, err, sizeof err);
    CHECK(rc == 0, "valid QW8 rejected: %s", err);
    if (rc == 0) {
        CHECK(e.quantized, "not quantized");
        CHECK(e.weight.dtype == GROK_CKPT_I8 && e.weight.n_dims == 2 && e.weight.shape[0] == 4 &&
                  e.weight.shape[1] == 3 && e.weight.nbytes == 12 && e.weight.offset == 194,
              "weight descriptor wrong");
        CHECK(e.scales.dtype == GROK_CKPT_BF16 && e.scales.n_dims == 2 && e.scales.shape[0] == 1 &&
                  e.scales.shape[1] == 3 && e.scales.nbytes == 6 && e.scales.offset == 297,
              "scales descriptor wrong");
        CHECK((int8_t)QW8[e.weight.offset] == -6 && QW8[e.weight.offset + 11] == 5,
              "weight payload offset wrong");
        uint16_t s[3];
        memcpy(s, QW8 + e.scales.offset, 6);
        CHECK(s[0] == 0x3f80 && s[2] == 0x4040, "scales payload offset wrong");
        CHECK(grok_ckpt_check_scales("t.pkl", &e.scales, s, err, sizeof err) == 0, "finite scales: %s", err);
        /* NaN and Inf scales */
        s[1] = 0x7fc0;
        CHECK(grok_ckpt_check_scales("t.pkl", &e.scales, s, err, sizeof err) < 0 &&
                  strstr(err, "t.pkl: byte 299") && strstr(err, "NaN"),
              "NaN scale: %s", err);
        s[1] = 0xff80;
        CHECK(grok_ckpt_check_scales("t.pkl", &e.scales, s, err, sizeof err) < 0 && strstr(err, "Inf"),
              "Inf scale: %s", err);
    }
    /* valid: the float32 array */
    rc = grok_ckpt_pickle_parse_mem("f.pkl", F32, sizeof F32, &e, err, sizeof err);
    CHECK(rc == 0, "valid f32 rejected: %s", err);
    if (rc == 0) {
        float v[3];
        memcpy(v, F32 + e.weight.offset, 12);
        CHECK(!e.quantized && e.weight.dtype == GROK_CKPT_F32 && e.weight.n_dims == 1 &&
                  e.weight.shape[0] == 3 && v[0] == 1.5f && v[1] == -2.0f && v[2] == 3.25f,
              "f32 descriptor wrong");
    }

    /* valid: protocol 3 (GLOBAL, BINPUT, BINUNICODE, no frames) gives the
     * same arrays at its own offsets (from pickletools.dis) */
    rc = grok_ckpt_pickle_parse_mem("p3.pkl", QW8_P3, sizeof QW8_P3, &e, err, sizeof err);
    CHECK(rc == 0, "valid protocol 3 QW8 rejected: %s", err);
    if (rc == 0)
        CHECK(e.quantized && e.weight.offset == 201 && e.weight.nbytes == 12 && e.scales.offset == 318 &&
                  e.scales.nbytes == 6 && e.scales.shape[1] == 3 && (int8_t)QW8_P3[201] == -6,
              "protocol 3 descriptors wrong");

    /* dtype states: numpy writes element size and alignment for an extended
     * type (ml_dtypes' bfloat16: 2, 2), -1, -1 for its own; any flags */
    expect_patched("bf16 elsize 4", 286, 4,
                   "bfloat16 dtype state is not (3, '<', None, None, None, 2, 2, flags)");
    expect_patched("bf16 alignment 1", 288, 1, "bfloat16 dtype state");
    {
        uint8_t b[sizeof QW8 + 32];
        /* bf16 with -1, -1, as a stand-in that took it for a numpy type would write */
        static const uint8_t m1[] = {0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff};
        size_t n = splice(b, 285, 289, m1, sizeof m1);
        expect_error("bf16 state -1, -1", b, n, "bfloat16 dtype state is not");
        /* int8 with a size: numpy never writes one for its own types */
        static const uint8_t one[] = {0x4b, 0x01, 0x4b, 0x01};
        n = splice(b, 176, 186, one, sizeof one);
        expect_error("int8 state 1, 1", b, n,
                     "int8 dtype state is not (3, '|', None, None, None, -1, -1, flags)");
        /* flags as None */
        static const uint8_t none[] = {'N'};
        n = splice(b, 289, 291, none, sizeof none);
        expect_error("bf16 flags None", b, n, "bfloat16 dtype state");
    }
    for (int fl = 0; fl < 256; fl += 16) {
        uint8_t b[sizeof QW8];
        memcpy(b, QW8, sizeof b);
        b[290] = (uint8_t)fl;
        CHECK(grok_ckpt_pickle_parse_mem("t.pkl", b, sizeof b, &e, err, sizeof err) == 0,
              "bf16 flags %d rejected: %s", fl, err);
    }
    {
        uint8_t b[sizeof QW8];
        memcpy(b, QW8, sizeof b);
        b[1] = 2;
        expect_error("protocol 2", b, sizeof b, "pickle protocol 2 (3 or 4 expected)");
    }

    /* truncation at every byte */
    for (size_t n = 0; n < sizeof QW8; n++) {
        char label[64];
        snprintf(label, sizeof label, "truncated to %zu bytes", n);
        expect_error(label, QW8, n, NULL);
    }
    for (size_t n = 0; n < sizeof F32; n++) {
        char label[64];
        snprintf(label, sizeof label, "f32 truncated to %zu bytes", n);
        grok_ckpt_entry e2;
        CHECK(grok_ckpt_pickle_parse_mem("f.pkl", F32, n, &e2, err, sizeof err) < 0 &&
                  strstr(err, "f.pkl: byte "),
              "%s: accepted or bad message: %s", label, err);
    }
    /* trailing bytes */
    {
        uint8_t b[sizeof QW8 + 1];
        memcpy(b, QW8, sizeof QW8);
        b[sizeof QW8] = '.';
        expect_error("trailing byte", b, sizeof b, "after STOP");
    }
    /* unknown opcode (BINPERSID in place of STOP), and an opcode pickle has
     * but this format never uses (LIST in place of EMPTY_DICT) */
    expect_patched("unknown opcode", 309, 'Q', "opcode 0x51 is not allowed");
    expect_patched("EMPTY_LIST", 49, ']', "opcode 0x5d is not allowed");
    /* a global outside the allowlist */
    {
        static const uint8_t evil[] = {0x80, 0x04, 'c',  'o',  's',  '\n', 's', 'y',  's', 't',
                                       'e',  'm',  '\n', 0x8c, 0x02, 'l',  's', 0x85, 'R', '.'};
        expect_error("os.system", evil, sizeof evil, "global 'os.system' is not allowed");
        static const uint8_t evil2[] = {0x80, 0x04, 0x8c, 0x08, 'b', 'u', 'i', 'l', 't',  'i',
                                        'n',  's',  0x8c, 0x04, 'e', 'v', 'a', 'l', 0x93, '.'};
        expect_error("builtins.eval", evil2, sizeof evil2, "'builtins.eval' is not allowed");
    }
    expect_patched("numpy renamed", 104, 'X', "is not allowed");
    /* stack underflow */
    {
        static const uint8_t u1[] = {0x80, 0x04, 0x86, '.'};
        expect_error("TUPLE2 on empty stack", u1, sizeof u1, "stack underflow");
        static const uint8_t u2[] = {0x80, 0x04, 'N', 'R', '.'};
        expect_error("REDUCE with one item", u2, sizeof u2, "stack underflow");
        static const uint8_t u3[] = {0x80, 0x04, 'N', '(', 'b', '.'};
        expect_error("BUILD across a MARK", u3, sizeof u3, "stack underflow");
        static const uint8_t u4[] = {0x80, 0x04, 0x94, '.'};
        expect_error("MEMOIZE on empty stack", u4, sizeof u4, "stack underflow");
        static const uint8_t u5[] = {0x80, 0x04, 't', '.'};
        expect_error("TUPLE without MARK", u5, sizeof u5, "without a MARK");
        static const uint8_t u6[] = {0x80, 0x04, '.'};
        expect_error("STOP on empty stack", u6, sizeof u6, "0 objects");
        static const uint8_t u7[] = {0x80, 0x05, 'N', '.'};
        expect_error("protocol 5", u7, sizeof u7, "protocol 5");
    }
    /* memo tricks */
    expect_patched("memo get of an unset index", 144, 99, "unset index 99");
    expect_patched("memo get of the array", 220, 15, "never shares");
    expect_patched("memo get of the weight object", 220, 3, "never shares");
    /* payload size, dtype, order */
    expect_patched("shape disagrees with payload", 138, 5, "payload is 12 bytes");
    expect_patched("dtype f8", 157, 'f', "dtype 'f1' is not allowed");
    expect_patched("fortran order", 191, 0x88, "C order");
    expect_patched("big-endian int8 dtype state", 171, '>', "dtype state");
    expect_patched("scales made int8", 0x10a, 0x8c, NULL);
    {
        /* shape (2^31-1)^3 overflows; a negative dimension is refused */
        uint8_t b[sizeof QW8 + 32];
        static const uint8_t big[] = {0x4a, 0xff, 0xff, 0xff, 0x7f, 0x4a, 0xff, 0xff,
                                      0xff, 0x7f, 0x4a, 0xff, 0xff, 0xff, 0x7f, 0x87};
        size_t n = splice(b, 137, 142, big, sizeof big);
        expect_error("dims overflow", b, n, "overflow");
        static const uint8_t neg[] = {0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0x03, 0x86};
        n = splice(b, 137, 142, neg, sizeof neg);
        expect_error("negative dim", b, n, "non-negative");
        static const uint8_t many[] = {'(', 'K', 1,   'K', 1,   'K', 1,   'K', 1,   'K', 1,
                                       'K', 1,   'K', 1,   'K', 1,   'K', 4,   'K', 3,   't'};
        n = splice(b, 137, 142, many, sizeof many);
        expect_error("too many dims", b, n, NULL);
    }
    /* frame lies: longer than the file, and an opcode crossing its end */
    {
        uint8_t b[sizeof QW8];
        memcpy(b, QW8, sizeof b);
        b[3] = 0xff;
        b[4] = 0xff;
        expect_error("frame past EOF", b, sizeof b, "FRAME");
        memcpy(b, QW8, sizeof b);
        b[3] = 14; /* frame ends inside the text of the second SHORT_BINUNICODE */
        b[4] = 0;
        expect_error("opcode across frame end", b, sizeof b, "frame");
    }

    /* the file reader path gives the same answer */
    const char *tmp = getenv("GROK_TMP");
    char path[1024];
    snprintf(path, sizeof path, "%s/t.pkl", tmp ? tmp : "/tmp");
    if (tmp) mkdir(tmp, 0777);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fwrite(QW8, 1, sizeof QW8, f);
        fclose(f);
        rc = grok_ckpt_pickle_parse_file(path, &e, err, sizeof err);
        CHECK(rc == 0 && e.quantized && e.weight.offset == 194 && e.scales.offset == 297, "file path: %s",
              rc ? err : "descriptor wrong");
        f = fopen(path, "wb");
        fwrite(QW8, 1, 200, f);
        fclose(f);
        rc = grok_ckpt_pickle_parse_file(path, &e, err, sizeof err);
        CHECK(rc < 0 && strstr(err, path) && strstr(err, "byte "), "truncated file: %s", err);
        remove(path);
    }

    /* half-precision conversions used by the converter */
    CHECK(grok_fp32_to_fp16(65504.0f) == 0x7bff && grok_fp32_to_fp16(65520.0f) == 0x7c00,
          "f16 overflow rounding");
    CHECK(grok_fp32_to_fp16(0x1p-24f) == 1 && grok_fp32_to_fp16(0x1p-25f) == 0 &&
              grok_fp32_to_fp16(0x1.8p-25f) == 1,
          "f16 subnormal rounding");
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float v = grok_fp16_to_fp32((uint16_t)h);
        if (grok_fp32_to_fp16(v) != h || grok_fp32_to_fp16(-v) != (h | 0x8000)) {
            CHECK(0, "f16 round trip of %04x", h);
            break;
        }
    }
    CHECK(grok_fp32_to_bf16(1.00390625f) == 0x3f80 && grok_fp32_to_bf16(1.01171875f) == 0x3f82,
          "bf16 ties to even");

    if (check_failures) {
        fprintf(stderr, "%d check_failures\n", check_failures);
        return 1;
    }
    printf("test_pickle: all checks passed\n");
    return 0;
}
