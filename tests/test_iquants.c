/*
 * test_iquants.c - the i-quant reference kernels (src/kernels/iquants.c):
 * the generated codebooks against their CRCs and the format's rules; blocks
 * of every type encoded field by field from the layouts as iquants.h
 * documents them (random grid indices, sign bits, scales, IQ1 offsets, on
 * exactly representable scales) and decoded to the documented values;
 * dot_f32 and the 8-bit dots against the decoded values summed in double;
 * the multi-token dot against the single one, bit for bit; grok_matmul in
 * the reference and exact modes. Bit-exactness against ggml itself is
 * checked outside the repository (docs/types.md).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "iq_blocks.h"
#include "kernels/iquants.h"
#include "util/rng.h"

static const grok_type IQ[] = {GROK_TYPE_IQ2_XXS, GROK_TYPE_IQ2_XS, GROK_TYPE_IQ2_S, GROK_TYPE_IQ3_XXS,
                               GROK_TYPE_IQ3_S,   GROK_TYPE_IQ1_S,  GROK_TYPE_IQ1_M};
#define N_IQ (sizeof IQ / sizeof IQ[0])

static uint32_t crc32(const void *data, size_t n) {
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

/* Every entry of a grid distinct and inside its level set. */
static void check_grid(const char *name, const uint8_t *g, int entries, int len, const int *levels,
                       int nlev) {
    int bad = 0, dup = 0;
    for (int i = 0; i < entries; i++) {
        for (int j = 0; j < len; j++) {
            bool ok = false;
            for (int k = 0; k < nlev; k++)
                ok |= (int)(int8_t)g[i * len + j] == levels[k] || g[i * len + j] == levels[k];
            bad += !ok;
        }
        for (int k = 0; k < i && i < 300; k++) dup += memcmp(g + i * len, g + k * len, (size_t)len) == 0;
    }
    CHECK(bad == 0 && dup == 0, "%s: %d values outside the level set, %d repeated entries", name, bad, dup);
}

static void test_tables(void) {
    CHECK(crc32(grok_iq2xxs_grid, sizeof grok_iq2xxs_grid) == GROK_IQ2XXS_GRID_CRC32, "iq2xxs grid crc");
    CHECK(crc32(grok_iq2xs_grid, sizeof grok_iq2xs_grid) == GROK_IQ2XS_GRID_CRC32, "iq2xs grid crc");
    CHECK(crc32(grok_iq2s_grid, sizeof grok_iq2s_grid) == GROK_IQ2S_GRID_CRC32, "iq2s grid crc");
    CHECK(crc32(grok_iq3xxs_grid, sizeof grok_iq3xxs_grid) == GROK_IQ3XXS_GRID_CRC32, "iq3xxs grid crc");
    CHECK(crc32(grok_iq3s_grid, sizeof grok_iq3s_grid) == GROK_IQ3S_GRID_CRC32, "iq3s grid crc");
    CHECK(crc32(grok_iq1s_grid, sizeof grok_iq1s_grid) == GROK_IQ1S_GRID_CRC32, "iq1s grid crc");
    CHECK(crc32(grok_iq_ksigns, sizeof grok_iq_ksigns) == GROK_IQ_KSIGNS_CRC32, "ksigns crc");
    CHECK(crc32(grok_iq_sign_bytes, sizeof grok_iq_sign_bytes) == GROK_IQ_SIGN_BYTES_CRC32, "sign bytes crc");
    CHECK(crc32(grok_iq1s_grid8, sizeof grok_iq1s_grid8) == GROK_IQ1S_GRID8_CRC32, "iq1s grid8 crc");
    int derived_bad = 0; /* the derived tables follow from the format's by their rules */
    for (int s = 0; s < 256; s++)
        for (int j = 0; j < 8; j++) derived_bad += grok_iq_sign_bytes[s][j] != ((s >> j) & 1 ? -1 : 1);
    for (int i = 0; i < 2048; i++)
        for (int j = 0; j < 8; j++) derived_bad += grok_iq1s_grid8[i][j] != 8 * grok_iq1s_grid[i][j];
    CHECK(derived_bad == 0, "%d derived table entries break their rule", derived_bad);
    for (int i = 0; i < 128; i++) { /* 7 stored bits, the 8th makes the count of ones even */
        const int ones = __builtin_popcount((unsigned)grok_iq_ksigns[i]);
        CHECK((grok_iq_ksigns[i] & 127) == i && ones % 2 == 0, "ksigns[%d] = %d", i, grok_iq_ksigns[i]);
    }
    const int l2[] = {8, 25, 43}, l3x[] = {4, 12, 20, 28, 36, 44, 52, 62},
              l3s[] = {1, 3, 5, 7, 9, 11, 13, 15}, l1[] = {-1, 0, 1};
    check_grid("iq2xxs", &grok_iq2xxs_grid[0][0], 256, 8, l2, 3);
    check_grid("iq2xs", &grok_iq2xs_grid[0][0], 512, 8, l2, 3);
    check_grid("iq2s", &grok_iq2s_grid[0][0], 1024, 8, l2, 3);
    check_grid("iq3xxs", &grok_iq3xxs_grid[0][0], 256, 4, l3x, 8);
    check_grid("iq3s", &grok_iq3s_grid[0][0], 512, 4, l3s, 8);
    check_grid("iq1s", (const uint8_t *)&grok_iq1s_grid[0][0], 2048, 8, l1, 3);
    /* the first points of each grid, as ggml-common.h lists them */
    CHECK(memcmp(grok_iq2xxs_grid[0], "\x08\x08\x08\x08\x08\x08\x08\x08", 8) == 0, "iq2xxs point 0");
    CHECK(grok_iq2xxs_grid[1][0] == 43 && grok_iq2xxs_grid[1][1] == 8, "iq2xxs point 1");
    CHECK(memcmp(grok_iq3xxs_grid[0], "\x04\x04\x04\x04", 4) == 0, "iq3xxs point 0");
    CHECK(memcmp(grok_iq3s_grid[0], "\x01\x01\x01\x01", 4) == 0, "iq3s point 0");
    for (int j = 0; j < 8; j++) CHECK(grok_iq1s_grid[0][j] == -1, "iq1s point 0");
}

/* ---- blocks built field by field from iquants.h's layouts ---- */
typedef struct {
    int idx[32];    /* per group of 8 weights (IQ3: two indices per group, idx and idx2) */
    int idx2[32];   /* IQ3: the second index of each group */
    unsigned s[32]; /* per group: sign bits (7 stored bits for the parity types) */
    int sc[16];     /* per 16 weights: s of ls = 2s + 1 (equal in pairs for the per-32 types) */
    int off[32];    /* IQ1: per group, 1 if the offset is -1/8 */
} fields;

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> 8 * k);
}

/* Random fields for type, and the block encoded from them with d = d16. */
static void encode(grok_type t, grok_rng *r, fields *f, uint16_t d16, uint8_t *p) {
    const int gs = t == GROK_TYPE_IQ2_XXS || t == GROK_TYPE_IQ3_XXS ? 256
                   : t == GROK_TYPE_IQ2_XS || t == GROK_TYPE_IQ3_S  ? 512
                   : t == GROK_TYPE_IQ2_S                           ? 1024
                                                                    : 2048;
    const bool parity = t == GROK_TYPE_IQ2_XXS || t == GROK_TYPE_IQ2_XS || t == GROK_TYPE_IQ3_XXS;
    const bool per16 = t == GROK_TYPE_IQ2_XS || t == GROK_TYPE_IQ2_S || t == GROK_TYPE_IQ1_M;
    const int smax = t == GROK_TYPE_IQ1_S || t == GROK_TYPE_IQ1_M ? 8 : 16;
    for (int g = 0; g < 32; g++) {
        f->idx[g] = (int)(grok_rng_next(r) % (uint64_t)gs),
        f->idx2[g] = (int)(grok_rng_next(r) % (uint64_t)gs);
        f->s[g] = (unsigned)(grok_rng_next(r) & (parity ? 127 : 255));
        f->off[g] = (int)(grok_rng_next(r) & 1);
    }
    for (int h = 0; h < 16; h += 2) {
        f->sc[h] = (int)(grok_rng_next(r) % (uint64_t)smax);
        f->sc[h + 1] = per16 ? (int)(grok_rng_next(r) % (uint64_t)smax) : f->sc[h];
    }
    if (t == GROK_TYPE_IQ1_S) /* the offset is per 32 weights */
        for (int g = 0; g < 32; g++) f->off[g] = f->off[g & ~3];
    memset(p, 0, grok_iq_block_bytes(t));
    if (t != GROK_TYPE_IQ1_M) put16(p, d16);
    for (int ib = 0; ib < 8; ib++) {
        const int *gi = f->idx + 4 * ib, *gj = f->idx2 + 4 * ib;
        const unsigned *sg = f->s + 4 * ib;
        const int s0 = f->sc[2 * ib], s1 = f->sc[2 * ib + 1];
        switch (t) {
        case GROK_TYPE_IQ2_XXS: {
            uint32_t aux = (uint32_t)s0 << 28;
            for (int l = 0; l < 4; l++) p[2 + 8 * ib + l] = (uint8_t)gi[l], aux |= sg[l] << 7 * l;
            put32(p + 2 + 8 * ib + 4, aux);
            break;
        }
        case GROK_TYPE_IQ2_XS:
            for (int l = 0; l < 4; l++) put16(p + 2 + 2 * (4 * ib + l), (unsigned)gi[l] | sg[l] << 9);
            p[66 + ib] = (uint8_t)(s0 | s1 << 4);
            break;
        case GROK_TYPE_IQ2_S:
            for (int l = 0; l < 4; l++) {
                p[2 + 4 * ib + l] = (uint8_t)gi[l], p[34 + 4 * ib + l] = (uint8_t)sg[l];
                p[66 + ib] |= (uint8_t)((gi[l] >> 8) << 2 * l);
            }
            p[74 + ib] = (uint8_t)(s0 | s1 << 4);
            break;
        case GROK_TYPE_IQ3_XXS: {
            uint32_t aux = (uint32_t)s0 << 28;
            for (int l = 0; l < 4; l++) {
                p[2 + 8 * ib + 2 * l] = (uint8_t)gi[l], p[2 + 8 * ib + 2 * l + 1] = (uint8_t)gj[l];
                aux |= sg[l] << 7 * l;
            }
            put32(p + 66 + 4 * ib, aux);
            break;
        }
        case GROK_TYPE_IQ3_S:
            for (int l = 0; l < 4; l++) {
                p[2 + 8 * ib + 2 * l] = (uint8_t)gi[l], p[2 + 8 * ib + 2 * l + 1] = (uint8_t)gj[l];
                p[66 + ib] |= (uint8_t)((gi[l] >> 8) << 2 * l | (gj[l] >> 8) << (2 * l + 1));
                p[74 + 4 * ib + l] = (uint8_t)sg[l];
            }
            p[106 + ib / 2] |= (uint8_t)(s0 << 4 * (ib % 2));
            break;
        case GROK_TYPE_IQ1_S: {
            unsigned h = (unsigned)s0 << 12 | (unsigned)f->off[4 * ib] << 15;
            for (int l = 0; l < 4; l++)
                p[2 + 4 * ib + l] = (uint8_t)gi[l], h |= (unsigned)(gi[l] >> 8) << 3 * l;
            put16(p + 34 + 2 * ib, h);
            break;
        }
        case GROK_TYPE_IQ1_M:
            for (int l = 0; l < 4; l++) {
                p[4 * ib + l] = (uint8_t)gi[l];
                p[32 + 2 * ib + l / 2] |= (uint8_t)(((gi[l] >> 8) | f->off[4 * ib + l] << 3) << 4 * (l % 2));
            }
            break;
        default: break;
        }
    }
    if (t == GROK_TYPE_IQ1_M)
        for (int k = 0; k < 4;
             k++) { /* u16 k: scales of ib 2k, 2k+1 (3 bits each, halves), d's nibble k on top */
            unsigned v = (unsigned)(f->sc[4 * k] | f->sc[4 * k + 1] << 3 | f->sc[4 * k + 2] << 6 |
                                    f->sc[4 * k + 3] << 9);
            put16(p + 48 + 2 * k, v | ((d16 >> 4 * k) & 15u) << 12);
        }
}

/* The documented value of weight e (0..255) of a block with fields f and scale d. */
static double documented(grok_type t, const fields *f, double d, int e) {
    const int g = e / 8, j = e % 8, ls = 2 * f->sc[e / 16] + 1;
    switch (t) {
    case GROK_TYPE_IQ1_S:
    case GROK_TYPE_IQ1_M: return d * ls * (grok_iq1s_grid[f->idx[g]][j] + (f->off[g] ? -0.125 : 0.125));
    default: break;
    }
    int mag;
    unsigned sign = f->s[g];
    if (t == GROK_TYPE_IQ2_XXS || t == GROK_TYPE_IQ2_XS || t == GROK_TYPE_IQ3_XXS)
        sign |= (unsigned)(__builtin_popcount(sign) & 1) << 7;
    if (t == GROK_TYPE_IQ2_XXS)
        mag = grok_iq2xxs_grid[f->idx[g]][j];
    else if (t == GROK_TYPE_IQ2_XS)
        mag = grok_iq2xs_grid[f->idx[g]][j];
    else if (t == GROK_TYPE_IQ2_S)
        mag = grok_iq2s_grid[f->idx[g]][j];
    else if (t == GROK_TYPE_IQ3_XXS)
        mag = grok_iq3xxs_grid[j < 4 ? f->idx[g] : f->idx2[g]][j % 4];
    else
        mag = grok_iq3s_grid[j < 4 ? f->idx[g] : f->idx2[g]][j % 4];
    const double fac = t == GROK_TYPE_IQ3_S ? 1 : t == GROK_TYPE_IQ3_XXS ? 0.25 : 0.125;
    return d * ls * fac * mag * ((sign >> j) & 1 ? -1 : 1);
}

static void test_layouts(void) {
    grok_rng r = {2024};
    const uint16_t scales[] = {0x3c00, 0xb800, 0x2c00}; /* 1, -0.5, 1/16: every value exact in f32 */
    for (size_t ti = 0; ti < N_IQ; ti++) {
        const grok_type t = IQ[ti];
        int bad = 0;
        for (int rep = 0; rep < 200; rep++) {
            fields f;
            uint8_t blk[128];
            float y[256];
            const uint16_t d16 = scales[rep % 3];
            encode(t, &r, &f, d16, blk);
            grok_kernels_get(t)->to_f32(blk, y, 256);
            for (int e = 0; e < 256; e++) {
                const double want = documented(t, &f, grok_fp16_to_fp32(d16), e);
                if ((double)y[e] != want && bad++ < 3)
                    CHECK(0, "%s block %d value %d: %.9g, documented %.9g", grok_type_get_traits(t)->name,
                          rep, e, y[e], want);
            }
        }
        CHECK(bad == 0, "%s: %d values differ from the documented layout", grok_type_get_traits(t)->name,
              bad);
    }
}

/* dot_f32 and dot_q8a against the decoded values in double; the multi dot
 * equals the single one bit for bit. */
static void test_dots(void) {
    grok_rng r = {99};
    const int64_t sizes[] = {256, 768, 2304};
    for (size_t ti = 0; ti < N_IQ; ti++) {
        const grok_type t = IQ[ti];
        const char *tn = grok_type_get_traits(t)->name;
        const grok_dot_kernels *k = grok_dot_reference(t);
        CHECK(grok_iq_block_bytes(t) == (size_t)grok_type_get_traits(t)->type_size, "%s block bytes", tn);
        CHECK(grok_type_get_traits(t)->can_compute && k && k->dot_q8a && k->dot_q8a_multi &&
                  grok_kernels_get(t)->from_f32, /* the encoders: test_iq_encode */
              "%s kernels", tn);
        for (size_t si = 0; si < 3; si++) {
            const int64_t n = sizes[si];
            uint8_t *w = malloc((size_t)grok_type_row_size(t, n));
            float *wf = malloc((size_t)n * 4), *x = malloc((size_t)n * 4);
            block_q8a *xq[3];
            iq_test_row(&r, t, n, w);
            grok_kernels_get(t)->to_f32(w, wf, n);
            for (int64_t j = 0; j < n; j++) x[j] = grok_rng_normal(&r);
            double exact = 0, mag = 0;
            for (int64_t j = 0; j < n; j++) exact += (double)wf[j] * x[j], mag += fabs((double)wf[j] * x[j]);
            const float a = k->dot_f32(w, x, n);
            CHECK(fabs(a - exact) <= 1e-5 * mag + 1e-9, "%s dot_f32 n=%lld: %g vs %g", tn, (long long)n, a,
                  exact);
            float out[3];
            for (int tk = 0; tk < 3; tk++) {
                xq[tk] = malloc((size_t)(n / QKA) * sizeof(block_q8a));
                for (int64_t j = 0; j < n; j++) x[j] = grok_rng_normal(&r);
                grok_quantize_q8a(x, xq[tk], n);
                double qe = 0, qm = 0;
                for (int64_t j = 0; j < n; j++) {
                    const double xv = (double)xq[tk][j / QKA].d * xq[tk][j / QKA].qs[j % QKA];
                    qe += wf[j] * xv, qm += fabs(wf[j] * xv);
                }
                const float q = k->dot_q8a(w, xq[tk], n);
                CHECK(fabs(q - qe) <= 1e-5 * qm + 1e-9, "%s dot_q8a n=%lld: %g vs %g", tn, (long long)n, q,
                      qe);
            }
            k->dot_q8a_multi(w, (const block_q8a *const *)xq, 3, n, out);
            for (int tk = 0; tk < 3; tk++)
                CHECK(out[tk] == k->dot_q8a(w, xq[tk], n), "%s multi token %d differs from its single dot",
                      tn, tk);
            for (int tk = 0; tk < 3; tk++) free(xq[tk]);
            free(w), free(wf), free(x);
        }
    }
}

/* grok_matmul in the reference and exact modes against the decoded rows. */
static void test_matmul(void) {
    grok_rng r = {5};
    grok_threadpool *pool = grok_threadpool_create(2);
    for (size_t ti = 0; ti < N_IQ; ti++) {
        const grok_type t = IQ[ti];
        const int64_t rows = 19, cols = 512, nt = 3;
        const size_t rb = (size_t)grok_type_row_size(t, cols);
        uint8_t *w = malloc(rb * rows);
        float *wf = malloc((size_t)(rows * cols) * 4), *x = malloc((size_t)(nt * cols) * 4),
              *y = malloc((size_t)(nt * rows) * 4);
        for (int64_t i = 0; i < rows; i++) {
            iq_test_row(&r, t, cols, w + i * rb);
            grok_kernels_get(t)->to_f32(w + i * rb, wf + i * cols, cols);
        }
        for (int64_t i = 0; i < nt * cols; i++) x[i] = grok_rng_normal(&r);
        grok_mat m = {w, t, rows, cols, rb, NULL, {0}, GROK_ISA_DEFAULT};
        for (int mode = GROK_KERNELS_EXACT; mode <= GROK_KERNELS_REFERENCE; mode++) {
            grok_kernels_set_mode((grok_kernel_mode)mode);
            grok_matmul(pool, &m, x, cols, y, rows, nt);
            for (int64_t tk = 0; tk < nt; tk++)
                for (int64_t i = 0; i < rows; i++) {
                    double e = 0, mg = 0;
                    for (int64_t j = 0; j < cols; j++)
                        e += (double)wf[i * cols + j] * x[tk * cols + j],
                            mg += fabs((double)wf[i * cols + j] * x[tk * cols + j]);
                    CHECK(fabs(y[tk * rows + i] - e) <= 1e-5 * mg + 1e-9,
                          "%s matmul mode %d row %lld: %g vs %g", grok_type_get_traits(t)->name, mode,
                          (long long)i, y[tk * rows + i], e);
                }
        }
        free(w), free(wf), free(x), free(y);
    }
    grok_kernels_set_mode(GROK_KERNELS_FAST);
    grok_threadpool_free(pool);
}

int main(void) {
    test_tables();
    test_layouts();
    test_dots();
    test_matmul();
    return check_summary("test_iquants");
}
