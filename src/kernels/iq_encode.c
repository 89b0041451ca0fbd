/*
 * iq_encode.c - the encoders of the i-quant types IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ3_XXS, IQ3_S, IQ1_S and IQ1_M (layouts in iquants.h): a weighted
 * least-squares search over each type's codebook. Every weight decodes to
 * d * ls * v, v one coordinate of a codebook point (IQ1: plus an offset of
 * +-1/8), so per block of 16 or 32 weights sharing an odd ls the search
 * sweeps candidate steps S = d * ls, puts each group of 8 (IQ3: 4) weights
 * on its best codebook point under the weights, and keeps the step that
 * minimises the weighted error (refitting S by least squares; the sweep is
 * ranked by rounding each weight to its nearest level, the best two steps
 * fitted on the codebook); then per super-block it tries a few f16 values
 * of d, for each block the two odd ls around its ideal step, and re-fits
 * the points at the step that will really be stored. Errors are always measured with the codebook's true
 * values (not an idealised lattice), so what is minimised is what decodes.
 *
 * The nearest point of a codebook under per-weight weights is found with a
 * table built once per codebook from iq_tables.h: every coordinate is
 * rounded to the nearest of the codebook's levels, which names one cell of
 * the full lattice of levels; a cell that is a codebook point is the exact
 * optimum (the error is separable and each coordinate sits at its nearest
 * level), any other cell lists the NB codebook points nearest to it, and
 * only those are scored.
 *
 * The error minimised is sum_i imx_i (x_i - y_i)^2, imx the importance
 * matrix (1 without one): the expected squared error of a product with
 * inputs whose mean squares imx are (llama.cpp's quantizers weigh by
 * imx_i * sqrt(sigma^2 + x_i^2) instead, which favours large weights beyond
 * their importance; measured here, weighing by imx alone gives 4-12 % less
 * of the error above). Signs are the weights' own where the
 * format stores all of them (IQ2_S, IQ3_S); where it stores 7 of every 8
 * (an even count of minus signs: IQ2_XXS, IQ2_XS, IQ3_XXS) a group with an
 * odd count gives the wrong sign to the weight where that costs least.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/iquants.h"

/* Candidate codebook points listed per off-grid lattice cell; the step
 * sweep: SWN steps amax / (top * (SWLO + SWST * s)), s = 0..SWN-1 (top:
 * the largest value of the codebook), where amax / top is the step that
 * puts the largest weight on the top level. The search uses the first
 * NB_SEARCH of each list, the final fit all NB. Twice the sweep or the
 * lists gains under 1 % of error (Gaussian rows of enc_rows.h). */
#define NB 64
#define NB_SEARCH 16
#define SWN 9
#define SWLO 0.45f
#define SWST 0.1f

typedef struct {
    int k;         /* weights per codebook point: 8 or 4 */
    int n;         /* points */
    int nlev;      /* levels per coordinate (ascending in lev) */
    float lev[8];  /* the levels, in value units */
    float thr[7];  /* midpoints between successive levels */
    float *pts;    /* [n][k] the points' values */
    int32_t *cell; /* [nlev^k] the point that is this cell, or -1 - (its list's number) */
    uint16_t *nb;  /* [off-grid cells][NB] the nearest points of each off-grid cell */
    bool ok;
} iq_grid;

enum { G_IQ2XXS, G_IQ2XS, G_IQ2S, G_IQ3XXS, G_IQ3S, G_IQ1S, N_GRIDS };
static iq_grid g_grids[N_GRIDS];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* One codebook: its points in value units (magnitude * unit; IQ1's signed
 * values as they are), the levels, and the cells' neighbour lists. */
static void grid_build(iq_grid *g, const void *src, bool is_signed, int k, int n, float unit) {
    memset(g, 0, sizeof *g);
    g->k = k, g->n = n;
    g->pts = malloc((size_t)n * (size_t)k * sizeof(float));
    if (!g->pts) return;
    bool seen[512] = {false};
    for (int i = 0; i < n * k; i++) {
        const int v = is_signed ? ((const int8_t *)src)[i] : ((const uint8_t *)src)[i];
        seen[v + 256] = true;
        g->pts[i] = (float)v * unit;
    }
    int lev_int[8];
    for (int v = 0; v < 512 && g->nlev < 8; v++)
        if (seen[v]) lev_int[g->nlev] = v - 256, g->lev[g->nlev++] = (float)(v - 256) * unit;
    for (int l = 0; l + 1 < g->nlev; l++) g->thr[l] = 0.5f * (g->lev[l] + g->lev[l + 1]);
    int64_t ncell = 1;
    for (int j = 0; j < k; j++) ncell *= g->nlev;
    g->cell = malloc((size_t)ncell * sizeof(int32_t));
    if (!g->cell) return;
    for (int64_t c = 0; c < ncell; c++) g->cell[c] = -1;
    for (int i = 0; i < n; i++) {
        int64_t c = 0, mul = 1;
        for (int j = 0; j < k; j++) {
            const int v = is_signed ? ((const int8_t *)src)[i * k + j] : ((const uint8_t *)src)[i * k + j];
            int l = 0;
            while (lev_int[l] != v) l++;
            c += l * mul, mul *= g->nlev;
        }
        g->cell[c] = i;
    }
    int64_t off = 0;
    for (int64_t c = 0; c < ncell; c++) off += g->cell[c] < 0;
    g->nb = malloc((size_t)(off > 0 ? off : 1) * NB * sizeof(uint16_t));
    if (!g->nb) return;
    off = 0;
    for (int64_t c = 0; c < ncell; c++) {
        if (g->cell[c] >= 0) continue;
        float ctr[8];
        int64_t r = c;
        for (int j = 0; j < k; j++) ctr[j] = g->lev[r % g->nlev], r /= g->nlev;
        /* the NB nearest points, kept sorted by insertion */
        float bd[NB];
        uint16_t bi[NB];
        int nb = 0;
        for (int i = 0; i < n; i++) {
            float d = 0;
            for (int j = 0; j < k; j++) d += (g->pts[i * k + j] - ctr[j]) * (g->pts[i * k + j] - ctr[j]);
            if (nb == NB && d >= bd[NB - 1]) continue;
            int p = nb < NB ? nb++ : NB - 1;
            while (p > 0 && bd[p - 1] > d) bd[p] = bd[p - 1], bi[p] = bi[p - 1], p--;
            bd[p] = d, bi[p] = (uint16_t)i;
        }
        memcpy(g->nb + off * NB, bi, sizeof bi);
        g->cell[c] = (int32_t)(-1 - off);
        off++;
    }
    g->ok = true;
}

static void grids_init(void) {
    grid_build(&g_grids[G_IQ2XXS], grok_iq2xxs_grid, false, 8, 256, 0.125f);
    grid_build(&g_grids[G_IQ2XS], grok_iq2xs_grid, false, 8, 512, 0.125f);
    grid_build(&g_grids[G_IQ2S], grok_iq2s_grid, false, 8, 1024, 0.125f);
    grid_build(&g_grids[G_IQ3XXS], grok_iq3xxs_grid, false, 4, 256, 0.25f);
    grid_build(&g_grids[G_IQ3S], grok_iq3s_grid, false, 4, 512, 1.0f);
    grid_build(&g_grids[G_IQ1S], grok_iq1s_grid, true, 8, 2048, 1.0f);
}

/* What the search needs to know of a type. */
typedef struct {
    int grid;        /* G_* */
    int bn;          /* weights per ls: 32 or 16 */
    int lsmax;       /* largest odd ls: 31, IQ1 15 */
    bool iq1;        /* values grid + delta, delta = +-1/8; no signs */
    bool delta_each; /* IQ1_M: delta per group of 8 (else per block) */
    bool sign7;      /* 7 stored signs per 8 weights (even count of minus signs) */
} iq_spec;

static iq_spec spec_of(uint32_t type) {
    switch (type) {
    case GROK_TYPE_IQ2_XXS: return (iq_spec){G_IQ2XXS, 32, 31, false, false, true};
    case GROK_TYPE_IQ2_XS: return (iq_spec){G_IQ2XS, 16, 31, false, false, true};
    case GROK_TYPE_IQ2_S: return (iq_spec){G_IQ2S, 16, 31, false, false, false};
    case GROK_TYPE_IQ3_XXS: return (iq_spec){G_IQ3XXS, 32, 31, false, false, true};
    case GROK_TYPE_IQ3_S: return (iq_spec){G_IQ3S, 32, 31, false, false, false};
    case GROK_TYPE_IQ1_S: return (iq_spec){G_IQ1S, 32, 15, true, false, false};
    default: return (iq_spec){G_IQ1S, 16, 15, true, true, false}; /* IQ1_M */
    }
}

#define IQ1_DELTA 0.125f

/* ---- the search ---- */

/* The best point for k targets a (with weights w) at step S, the values
 * offset by delta: its index, and its error added to *err. */
static int group_best(const iq_grid *g, const float *a, const float *w, float S, float delta, int nbs,
                      float *err) {
    const float inv = 1.0f / S;
    int32_t c = 0, mul = 1;
    for (int j = 0; j < g->k; j++) {
        const float t = a[j] * inv - delta;
        int l = 0;
        while (l < g->nlev - 1 && t > g->thr[l]) l++;
        c += l * mul, mul *= g->nlev;
    }
    const int32_t e = g->cell[c];
    if (e >= 0) {
        const float *p = g->pts + (size_t)e * (size_t)g->k;
        float s = 0;
        for (int j = 0; j < g->k; j++) {
            const float r = a[j] - S * (p[j] + delta);
            s += w[j] * r * r;
        }
        *err += s;
        return e;
    }
    const uint16_t *nb = g->nb + (size_t)(-1 - e) * NB;
    float best = INFINITY;
    int bi = nb[0];
    for (int m = 0; m < nbs; m++) {
        const float *p = g->pts + (size_t)nb[m] * (size_t)g->k;
        float s = 0;
        for (int j = 0; j < g->k; j++) {
            const float r = a[j] - S * (p[j] + delta);
            s += w[j] * r * r;
        }
        if (s < best) best = s, bi = nb[m];
    }
    *err += best;
    return bi;
}

/* A block's points at one step. */
typedef struct {
    int idx[8];     /* codebook point of each group */
    uint8_t neg[8]; /* IQ1: delta of each group is -1/8 */
    float err;      /* sum w (a - S v)^2 */
    float sxq, sqq; /* sum w a v, sum w v^2: the least-squares step is sxq / sqq */
} block_fit;

static void fit_group_sums(const iq_grid *g, const float *a, const float *w, int idx, float delta,
                           block_fit *f) {
    const float *p = g->pts + (size_t)idx * (size_t)g->k;
    for (int j = 0; j < g->k; j++) {
        const float v = p[j] + delta;
        f->sxq += w[j] * a[j] * v, f->sqq += w[j] * v * v;
    }
}

/* The points of block a[0..bn) at step S > 0. */
static void fit_at(const iq_spec *sp, const iq_grid *g, const float *a, const float *w, float S, int nbs,
                   block_fit *f) {
    const int ng = sp->bn / g->k;
    f->sxq = f->sqq = 0;
    if (!sp->iq1) {
        f->err = 0;
        for (int q = 0; q < ng; q++) {
            f->idx[q] = group_best(g, a + q * g->k, w + q * g->k, S, 0, nbs, &f->err);
            f->neg[q] = 0;
            fit_group_sums(g, a + q * g->k, w + q * g->k, f->idx[q], 0, f);
        }
        return;
    }
    if (sp->delta_each) {
        f->err = 0;
        for (int q = 0; q < ng; q++) {
            float ep = 0, em = 0;
            const int ip = group_best(g, a + 8 * q, w + 8 * q, S, IQ1_DELTA, nbs, &ep);
            const int im = group_best(g, a + 8 * q, w + 8 * q, S, -IQ1_DELTA, nbs, &em);
            f->neg[q] = em < ep;
            f->idx[q] = em < ep ? im : ip;
            f->err += em < ep ? em : ep;
            fit_group_sums(g, a + 8 * q, w + 8 * q, f->idx[q], em < ep ? -IQ1_DELTA : IQ1_DELTA, f);
        }
        return;
    }
    /* one delta for the block: the better of the two */
    block_fit m;
    f->err = m.err = 0;
    m.sxq = m.sqq = 0;
    for (int q = 0; q < ng; q++) {
        f->idx[q] = group_best(g, a + 8 * q, w + 8 * q, S, IQ1_DELTA, nbs, &f->err);
        m.idx[q] = group_best(g, a + 8 * q, w + 8 * q, S, -IQ1_DELTA, nbs, &m.err);
        f->neg[q] = 0, m.neg[q] = 1;
    }
    if (m.err < f->err) *f = m;
    for (int q = 0; q < ng; q++)
        fit_group_sums(g, a + 8 * q, w + 8 * q, f->idx[q], f->neg[q] ? -IQ1_DELTA : IQ1_DELTA, f);
}

/* The sums of block a[0..bn) rounded coordinate by coordinate to the
 * nearest level at step S, codebook or not: a cheap stand-in for fit_at
 * that ranks candidate steps (IQ1: the better delta per block or group). */
static void proxy_at(const iq_spec *sp, const iq_grid *g, const float *a, const float *w, float S, float *sxq,
                     float *sqq, float *serr) {
    const float inv = 1.0f / S;
    const int nd = sp->iq1 ? 2 : 1, span = sp->iq1 && !sp->delta_each ? sp->bn : 8;
    *sxq = *sqq = *serr = 0;
    for (int o = 0; o < sp->bn; o += span) {
        float bx = 0, bq = 0, be = INFINITY;
        for (int di = 0; di < nd; di++) {
            const float delta = sp->iq1 ? (di ? -IQ1_DELTA : IQ1_DELTA) : 0;
            float x2 = 0, q2 = 0, e = 0;
            for (int i = o; i < o + span; i++) {
                const float t = a[i] * inv - delta;
                int l = 0;
                while (l < g->nlev - 1 && t > g->thr[l]) l++;
                const float v = g->lev[l] + delta, r = a[i] - S * v;
                x2 += w[i] * a[i] * v, q2 += w[i] * v * v, e += w[i] * r * r;
            }
            if (e < be) be = e, bx = x2, bq = q2;
        }
        *sxq += bx, *sqq += bq, *serr += be;
    }
}

/* The least-squares step of block a[0..bn) (0: all its values round to 0
 * best): a sweep of steps relative to the largest target ranked by the
 * coordinate-wise rounding (proxy_at), the two best refitted on the
 * codebook, then two refinements at the best step. */
static float block_step(const iq_spec *sp, const iq_grid *g, const float *a, const float *w) {
    float amax = 0, sw2 = 0;
    for (int i = 0; i < sp->bn; i++) {
        const float v = fabsf(a[i]);
        if (v > amax) amax = v;
        sw2 += w[i] * a[i] * a[i];
    }
    if (!(amax > 1e-30f) || !isfinite(amax)) return 0;
    const float top = g->lev[g->nlev - 1] + (sp->iq1 ? IQ1_DELTA : 0);
    float cand[2] = {0, 0}, ce[2] = {INFINITY, INFINITY};
    for (int s = 0; s < SWN; s++) {
        const float S = amax / (top * (SWLO + SWST * (float)s));
        float sxq, sqq, e;
        proxy_at(sp, g, a, w, S, &sxq, &sqq, &e);
        if (sxq <= 0 || sqq <= 0) continue;
        e = sw2 - sxq * sxq / sqq;
        if (e < ce[0])
            ce[1] = ce[0], cand[1] = cand[0], ce[0] = e, cand[0] = sxq / sqq;
        else if (e < ce[1])
            ce[1] = e, cand[1] = sxq / sqq;
    }
    float best = sw2, bestS = 0;
    block_fit f;
    for (int c = 0; c < 2; c++) {
        if (!(cand[c] > 0)) continue;
        fit_at(sp, g, a, w, cand[c], NB_SEARCH, &f);
        if (f.sxq <= 0 || f.sqq <= 0) continue;
        const float e = sw2 - f.sxq * f.sxq / f.sqq;
        if (e < best) best = e, bestS = f.sxq / f.sqq;
    }
    for (int it = 0; it < 2 && bestS > 0; it++) {
        fit_at(sp, g, a, w, bestS, NB_SEARCH, &f);
        if (f.sxq <= 0 || f.sqq <= 0) break;
        const float e = sw2 - f.sxq * f.sxq / f.sqq;
        if (!(e < best)) break;
        best = e, bestS = f.sxq / f.sqq;
    }
    return bestS;
}

/* ---- one super-block ---- */

/* The odd ls at or below step / d and the next one up, within 1..lsmax. */
static void ls_pair(float step, float d, int lsmax, int *lo, int *hi) {
    /* clamp in float first: step / d may be huge (a tiny d beside a big
     * block) or NaN, and converting that to int is undefined */
    const float r = floorf(step / d);
    int l = r >= 1 ? (r <= (float)lsmax ? (int)r : lsmax + 1) : 1;
    l = l % 2 ? l : l - 1;
    if (l < 1) l = 1;
    if (l > lsmax) l = lsmax;
    *lo = l, *hi = l + 2 <= lsmax ? l + 2 : l;
}

/* The search's result for 256 weights, in the fields every layout packs. */
typedef struct {
    uint16_t d;        /* f16 bits */
    uint8_t s[16];     /* per block: ls = 2 s + 1 */
    uint16_t idx[64];  /* per group, in order */
    uint8_t neg[32];   /* IQ1: per group of 8, delta -1/8 */
    uint8_t signs[32]; /* per 8 weights: bit j set, weight j negative */
} iq_coded;

static void encode_superblock(const iq_spec *sp, const float *x, const float *imx, iq_coded *out) {
    const iq_grid *g = &g_grids[sp->grid];
    const int nbk = QK_K / sp->bn, ng = sp->bn / g->k;
    float a[QK_K], w[QK_K];
    memset(out, 0, sizeof *out);
    for (int i = 0; i < QK_K; i++) a[i] = isfinite(x[i]) ? x[i] : 0.0f;
    for (int i = 0; i < QK_K; i++) {
        const float im = imx ? (isfinite(imx[i]) && imx[i] > 0 ? imx[i] : 0.0f) : 1.0f;
        w[i] = im;
    }
    if (!sp->iq1) { /* fold the signs into the targets */
        for (int o = 0; o < QK_K / 8; o++) {
            uint8_t s = 0;
            for (int j = 0; j < 8; j++)
                if (a[8 * o + j] < 0) a[8 * o + j] = -a[8 * o + j], s |= (uint8_t)(1u << j);
            if (sp->sign7 && __builtin_popcount(s) % 2) {
                /* wrong sign where it costs least: the smallest w a^2 */
                int jm = 0;
                for (int j = 1; j < 8; j++)
                    if (w[8 * o + j] * a[8 * o + j] * a[8 * o + j] <
                        w[8 * o + jm] * a[8 * o + jm] * a[8 * o + jm])
                        jm = j;
                a[8 * o + jm] = -a[8 * o + jm], s ^= (uint8_t)(1u << jm);
            }
            out->signs[o] = s;
        }
    }
    float S[16], maxS = 0;
    for (int b = 0; b < nbk; b++) {
        S[b] = block_step(sp, g, a + b * sp->bn, w + b * sp->bn);
        if (S[b] > maxS) maxS = S[b];
    }
    if (!(maxS > 0)) return; /* d = 0: everything decodes to 0 */
    /* d, ranked with each block's better of the two odd ls around S / d by
     * the coordinate-wise rounding (proxy_at); then at the chosen d the two
     * ls refitted on the codebook */
    static const float dfac[] = {1.0f, 0.96f, 1.04f, 0.92f, 0.88f};
    float best_total = INFINITY;
    block_fit fits[16];
    float bf[16];
    uint8_t ss[16];
    for (size_t t = 0; t < sizeof dfac / sizeof dfac[0]; t++) {
        /* 65504: the largest f16, so that huge rows saturate rather than vanish */
        const float dw = maxS / (float)sp->lsmax * dfac[t];
        const uint16_t dh = grok_fp32_to_fp16(dw < 65504.0f ? dw : 65504.0f);
        const float d = grok_fp16_to_fp32(dh);
        if (!(d > 0) || !isfinite(d)) continue;
        float total = 0;
        for (int b = 0; b < nbk && total < best_total; b++) {
            int lo, hi;
            ls_pair(S[b], d, sp->lsmax, &lo, &hi);
            float x1, q1, e1, e2 = INFINITY;
            proxy_at(sp, g, a + b * sp->bn, w + b * sp->bn, d * (float)lo, &x1, &q1, &e1);
            if (hi != lo) proxy_at(sp, g, a + b * sp->bn, w + b * sp->bn, d * (float)hi, &x1, &q1, &e2);
            const bool take_hi = hi != lo && e2 < e1;
            bf[b] = take_hi ? e2 : e1;
            ss[b] = (uint8_t)(((take_hi ? hi : lo) - 1) / 2);
            total += bf[b];
        }
        if (total < best_total) {
            best_total = total, out->d = dh;
            memcpy(out->s, ss, (size_t)nbk);
        }
    }
    if (!isfinite(best_total)) {
        out->d = 0;
        return;
    }
    /* the points at the stored steps, from the full neighbour lists */
    const float d = grok_fp16_to_fp32(out->d);
    for (int b = 0; b < nbk; b++) {
        int lo, hi;
        ls_pair(S[b], d, sp->lsmax, &lo, &hi);
        block_fit f1, f2;
        fit_at(sp, g, a + b * sp->bn, w + b * sp->bn, d * (float)lo, NB_SEARCH, &f1);
        if (hi != lo) fit_at(sp, g, a + b * sp->bn, w + b * sp->bn, d * (float)hi, NB_SEARCH, &f2);
        out->s[b] = (uint8_t)(((hi != lo && f2.err < f1.err ? hi : lo) - 1) / 2);
    }
    for (int b = 0; b < nbk; b++)
        fit_at(sp, g, a + b * sp->bn, w + b * sp->bn, d * (float)(2 * out->s[b] + 1), NB, &fits[b]);
    for (int b = 0; b < nbk; b++)
        for (int q = 0; q < ng; q++) {
            out->idx[b * ng + q] = (uint16_t)fits[b].idx[q];
            if (sp->iq1) out->neg[(b * sp->bn + q * g->k) / 8] = fits[b].neg[q];
        }
}

/* ---- the layouts (iquants.h) ---- */

static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v), wr16(p + 2, v >> 16); }

static void pack(uint32_t type, const iq_coded *c, uint8_t *p) {
    memset(p, 0, grok_iq_block_bytes(type));
    switch (type) {
    case GROK_TYPE_IQ2_XXS:
        wr16(p, c->d);
        for (int ib = 0; ib < 8; ib++) {
            uint32_t aux = (uint32_t)c->s[ib] << 28;
            for (int l = 0; l < 4; l++) {
                p[2 + 8 * ib + l] = (uint8_t)c->idx[4 * ib + l];
                aux |= (uint32_t)(c->signs[4 * ib + l] & 127) << (7 * l);
            }
            wr32(p + 2 + 8 * ib + 4, aux);
        }
        break;
    case GROK_TYPE_IQ2_XS:
        wr16(p, c->d);
        for (int q = 0; q < 32; q++) wr16(p + 2 + 2 * q, c->idx[q] | (uint32_t)(c->signs[q] & 127) << 9);
        for (int ib = 0; ib < 8; ib++) p[66 + ib] = (uint8_t)(c->s[2 * ib] | c->s[2 * ib + 1] << 4);
        break;
    case GROK_TYPE_IQ2_S:
        wr16(p, c->d);
        for (int q = 0; q < 32; q++) {
            p[2 + q] = (uint8_t)c->idx[q];
            p[34 + q] = c->signs[q];
            p[66 + q / 4] |= (uint8_t)((c->idx[q] >> 8) << (2 * (q % 4)));
        }
        for (int ib = 0; ib < 8; ib++) p[74 + ib] = (uint8_t)(c->s[2 * ib] | c->s[2 * ib + 1] << 4);
        break;
    case GROK_TYPE_IQ3_XXS:
        wr16(p, c->d);
        for (int q = 0; q < 64; q++) p[2 + q] = (uint8_t)c->idx[q];
        for (int ib = 0; ib < 8; ib++) {
            uint32_t aux = (uint32_t)c->s[ib] << 28;
            for (int l = 0; l < 4; l++) aux |= (uint32_t)(c->signs[4 * ib + l] & 127) << (7 * l);
            wr32(p + 66 + 4 * ib, aux);
        }
        break;
    case GROK_TYPE_IQ3_S:
        wr16(p, c->d);
        for (int q = 0; q < 64; q++) {
            p[2 + q] = (uint8_t)c->idx[q];
            p[66 + q / 8] |= (uint8_t)((c->idx[q] >> 8) << (q % 8));
        }
        memcpy(p + 74, c->signs, 32);
        for (int ib = 0; ib < 8; ib++) p[106 + ib / 2] |= (uint8_t)(c->s[ib] << (4 * (ib % 2)));
        break;
    case GROK_TYPE_IQ1_S:
        wr16(p, c->d);
        for (int ib = 0; ib < 8; ib++) {
            uint32_t qh = (uint32_t)c->s[ib] << 12 | (uint32_t)c->neg[4 * ib] << 15;
            for (int l = 0; l < 4; l++) {
                p[2 + 4 * ib + l] = (uint8_t)c->idx[4 * ib + l];
                qh |= (uint32_t)(c->idx[4 * ib + l] >> 8) << (3 * l);
            }
            wr16(p + 34 + 2 * ib, qh);
        }
        break;
    case GROK_TYPE_IQ1_M: {
        uint32_t sc[4] = {0, 0, 0, 0};
        for (int q = 0; q < 32; q++) {
            p[q] = (uint8_t)c->idx[q];
            p[32 + q / 2] |= (uint8_t)(((c->idx[q] >> 8) | c->neg[q] << 3) << (4 * (q % 2)));
        }
        for (int ib = 0; ib < 8; ib++)
            sc[ib / 2] |= (uint32_t)(c->s[2 * ib] | c->s[2 * ib + 1] << 3) << (6 * (ib % 2));
        for (int k = 0; k < 4; k++) wr16(p + 48 + 2 * k, sc[k] | (uint32_t)((c->d >> (4 * k)) & 15) << 12);
        break;
    }
    default: break;
    }
}

bool grok_iq_encoder_ready(void) {
    pthread_once(&g_once, grids_init);
    for (int i = 0; i < N_GRIDS; i++)
        if (!g_grids[i].ok) return false;
    return true;
}

void grok_iq_from_f32_weighted(uint32_t type, const float *src, void *dst, int64_t n, const float *imx) {
    const size_t bytes = grok_iq_block_bytes(type);
    const iq_spec sp = spec_of(type);
    const bool ready = grok_iq_encoder_ready();
    for (int64_t i = 0; i < n / QK_K; i++) {
        iq_coded c;
        if (ready)
            encode_superblock(&sp, src + i * QK_K, imx ? imx + i * QK_K : NULL, &c);
        else
            memset(&c, 0, sizeof c); /* out of memory for the tables: zeros, never garbage */
        pack(type, &c, (uint8_t *)dst + (size_t)i * bytes);
    }
}
