/*
 * test_attention.c - the attention kernels and vector math
 * (src/kernels/attention.c, x86_attention.c): the SIMD exp and tanh
 * against double-precision libm over a dense sweep of inputs (every 2^k-th
 * float bit pattern, so small magnitudes down to denormals are covered as
 * densely as large ones), with their special values; the soft cap, the
 * softmax exponentials and the GELU against the scalar references; q.k
 * scores and weighted V sums against the references for f32 and f16 caches,
 * odd head sizes, group sizes 1..8 and unaligned strided rows; and the
 * property batch independence rests on: a head's or a position's numbers
 * are bit for bit the same whichever heads, positions or slice a call
 * covers. Then through the model: a prompt decoded in one batch on one
 * thread gives the same logits bit for bit as token by token on three
 * threads (where the query groups are split across threads), for a model
 * with one KV head and one with as many KV heads as heads, both caches.
 *
 * Errors against double-precision libm exp/tanh, measured once with denser
 * sweeps than the test's (every 97th float for exp over [-87, 87], every
 * 64th for tanh over |x| in [1e-45, 10], every float in [7e-9, 0.625]): exp
 * 1.003 ulp at most; tanh 1.296 ulp (just above 0.625, where the
 * 1 - 2/(e^2x + 1) form takes over); tanh of small |x| 0.844 ulp. The
 * test's sparser sweeps (kept short for the sanitizer build) print their
 * maxima; the bounds checked are 2 ulp (exp) and 3 ulp (tanh), and tanh is
 * +-1 correctly rounded beyond 10.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "random_model.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "util/rng.h"

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* |got - want| in units of the last place of want as a float (denormal
 * spacing below FLT_MIN). */
static double ulp_err(float got, double want) {
    int e;
    frexp(want, &e);
    double ulp = ldexp(1.0, e - 24);
    if (ulp < 0x1p-149) ulp = 0x1p-149;
    return fabs((double)got - want) / ulp;
}

#define SWEEP 4096

/* Max ulp error of f (in place over an array) against want over the
 * float bit patterns lo..hi (positive floats), step `step`, both signs
 * when both is set; *worst_x gets the input of the largest error. */
static double sweep(void (*f)(float *, int64_t, const grok_vec_kernels *), const grok_vec_kernels *vk,
                    double (*want)(double), uint32_t lo, uint32_t hi, uint32_t step, bool both,
                    float *worst_x) {
    static float in[SWEEP], out[SWEEP];
    double worst = 0;
    int n = 0;
    for (uint64_t b = lo;; b += step) {
        bool last = b + step > hi;
        float x = bits_f32((uint32_t)(b > hi ? hi : b));
        in[n++] = x;
        if (both) in[n++] = -x;
        if (n + 2 > SWEEP || last) {
            memcpy(out, in, (size_t)n * sizeof(float));
            f(out, n, vk);
            for (int i = 0; i < n; i++) {
                double e = ulp_err(out[i], want((double)in[i]));
                if (e > worst || e != e) worst = e != e ? INFINITY : e, *worst_x = in[i];
            }
            n = 0;
        }
        if (last) break;
    }
    return worst;
}

static void run_exp(float *x, int64_t n, const grok_vec_kernels *vk) { vk->exp_sum(x, n, 0.0f); }
static void run_tanh(float *x, int64_t n, const grok_vec_kernels *vk) { vk->tanh(x, n); }

static void test_exp_tanh(const grok_vec_kernels *vk) {
    float wx = 0;
    /* exp over [-87.33, 88.72]: results are normal floats there */
    double e = sweep(run_exp, vk, exp, 0, 0x42AE0000u /* 87.0 */, 1009, true, &wx);
    printf("exp: max %.3f ulp (at %g) over [-87, 87]\n", e, wx);
    CHECK(e <= 2.0, "exp error %.3f ulp at %g", e, wx);
    double e2 = sweep(run_exp, vk, exp, 0x42AE0000u, 0x42B17217u /* 88.72 */, 1, false, &wx);
    CHECK(e2 <= 2.0, "exp error %.3f ulp at %g near overflow", e2, wx);
    float sp[] = {-INFINITY, -1000.0f, -87.4f, 89.0f, INFINITY, NAN, 0.0f, -0.0f};
    vk->exp_sum(sp, 8, 0.0f);
    CHECK(sp[0] == 0 && sp[1] == 0 && sp[2] == 0, "exp of -inf / -1000 / -87.4: %g %g %g", sp[0], sp[1],
          sp[2]);
    CHECK(sp[3] == INFINITY && sp[4] == INFINITY, "exp of 89 / inf: %g %g", sp[3], sp[4]);
    CHECK(isnan(sp[5]) && sp[6] == 1 && sp[7] == 1, "exp of nan / 0 / -0: %g %g %g", sp[5], sp[6], sp[7]);

    /* tanh: every 509th float from the smallest denormal to 10 (tanh(10) is
     * 1.0f), both signs; then sparser up to 1e30 */
    double t = sweep(run_tanh, vk, tanh, 1, 0x41200000u, 509, true, &wx);
    printf("tanh: max %.3f ulp (at %g) over |x| in [1e-45, 10]\n", t, wx);
    CHECK(t <= 3.0, "tanh error %.3f ulp at %g", t, wx);
    double ts = sweep(run_tanh, vk, tanh, 0x32000000u /* 7e-9 */, 0x3F200000u /* 0.625 */, 61, false, &wx);
    printf("tanh: max %.3f ulp over every 61st float in [7e-9, 0.625]\n", ts);
    CHECK(ts <= 3.0, "small tanh error %.3f ulp at %g", ts, wx);
    double tb = sweep(run_tanh, vk, tanh, 0x41200000u, 0x7149F2CAu /* 1e30 */, 4099, true, &wx);
    CHECK(tb <= 0.5, "tanh of large |x| is +-1, correctly rounded: %.3f ulp at %g", tb, wx);
    float ts2[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 0.625f};
    vk->tanh(ts2, 8);
    CHECK(ts2[0] == 0 && !signbit(ts2[0]) && ts2[1] == 0 && signbit(ts2[1]), "tanh(+-0) keeps the sign");
    CHECK(ts2[2] == 1 && ts2[3] == -1 && isnan(ts2[4]), "tanh(+-inf, nan): %g %g %g", ts2[2], ts2[3], ts2[4]);
    CHECK(ts2[5] == 1e-40f && ts2[6] == -1e-40f, "tanh of a denormal is itself: %g", ts2[5]);
}

/* Soft cap, softmax exponentials, GELU: against the references. */
static void test_elementwise(const grok_vec_kernels *vk, const grok_vec_kernels *ref) {
    grok_rng r = {11};
    enum { N = 1003 };
    static float a[N], b[N], u[N], x0[N];
    for (int i = 0; i < N; i++)
        x0[i] = grok_rng_normal(&r) * (i % 7 == 0 ? 40.0f : 4.0f), u[i] = grok_rng_normal(&r);

    memcpy(a, x0, sizeof a), memcpy(b, x0, sizeof b);
    vk->softcap(a, N, 0.0883883f, 30.0f), ref->softcap(b, N, 0.0883883f, 30.0f);
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-30));
    CHECK(worst <= 4e-7, "softcap vs reference: rel err %g", worst);

    memcpy(a, x0, sizeof a), memcpy(b, x0, sizeof b);
    a[5] = b[5] = -INFINITY;
    double sa = vk->exp_sum(a, N, 60.0f), sb = ref->exp_sum(b, N, 60.0f);
    worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-30));
    CHECK(worst <= 2.5e-7 && a[5] == 0, "exp_sum values vs reference: rel err %g, masked %g", worst, a[5]);
    CHECK(fabs(sa - sb) <= 1e-6 * sb, "exp_sum sum %.9g vs %.9g", sa, sb);

    memcpy(a, x0, sizeof a), memcpy(b, x0, sizeof b);
    vk->gelu_mul(a, u, N), ref->gelu_mul(b, u, N);
    worst = 0;
    /* (1 + tanh) cancels for negative x in both, so the bound is absolute
     * on that factor: a few ulp of 1, times |x u / 2| */
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(a[i] - b[i]) / fmax(fabs(0.5 * x0[i] * u[i]), 1e-30));
    CHECK(worst <= 5e-7, "gelu_mul vs reference: err %g of |x u / 2|", worst);

    /* slices: an element's result does not depend on where a call starts */
    static float whole[N], part[N];
    memcpy(whole, x0, sizeof whole), memcpy(part, x0, sizeof part);
    vk->gelu_mul(whole, u, N);
    for (int s = 0; s < N;) {
        int len = 1 + s % 13;
        if (s + len > N) len = N - s;
        vk->gelu_mul(part + s, u + s, len);
        s += len;
    }
    CHECK(memcmp(whole, part, sizeof whole) == 0, "gelu_mul in slices differs from whole");
    memcpy(whole, x0, sizeof whole), memcpy(part, x0, sizeof part);
    vk->softcap(whole, N, 0.1f, 30.0f);
    vk->softcap(part, 5, 0.1f, 30.0f), vk->softcap(part + 5, N - 5, 0.1f, 30.0f);
    CHECK(memcmp(whole, part, sizeof whole) == 0, "softcap in slices differs from whole");
}

static void fill_cache(grok_rng *r, grok_type kv, uint8_t *dst, int64_t n_elts) {
    for (int64_t i = 0; i < n_elts; i++) {
        float f = grok_rng_normal(r);
        if (kv == GROK_TYPE_F16) {
            uint16_t h = grok_fp32_to_fp16(f);
            memcpy(dst + 2 * i, &h, 2);
        } else {
            memcpy(dst + 4 * i, &f, 4);
        }
    }
}

/* scores and wsum against the references, and their independence from
 * the grouping of heads and positions. */
static void test_attention_kernels(const grok_vec_kernels *vk, const grok_vec_kernels *ref) {
    grok_rng r = {5};
    const int64_t Ds[] = {1, 3, 8, 13, 16, 40, 128, 130};
    const int64_t ns[] = {1, 2, 5, 9, 17, 34};
    const grok_type kvs[] = {GROK_TYPE_F32, GROK_TYPE_F16};
    int cases = 0;
    for (int ki = 0; ki < 2; ki++)
        for (size_t di = 0; di < sizeof Ds / sizeof Ds[0]; di++)
            for (int64_t nq = 1; nq <= 8; nq++)
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                    const grok_type kv = kvs[ki];
                    const int64_t D = Ds[di], n = ns[ni], elt = kv == GROK_TYPE_F16 ? 2 : 4;
                    const size_t stride = (size_t)(3 * D + 1) * (size_t)elt; /* other heads between rows */
                    const int64_t ld = n + 3;
                    uint8_t *kc = malloc(stride * (size_t)n + 8), *vc = malloc(stride * (size_t)n + 8);
                    uint8_t *k = kc + elt, *v = vc + elt; /* not 32-byte aligned */
                    fill_cache(&r, kv, kc, (int64_t)(stride * (size_t)n + 8) / elt);
                    fill_cache(&r, kv, vc, (int64_t)(stride * (size_t)n + 8) / elt);
                    float *q = malloc((size_t)(nq * D) * 4), *w = malloc((size_t)(nq * ld) * 4);
                    float *sa = malloc((size_t)(nq * ld) * 4), *sb = malloc((size_t)(nq * ld) * 4);
                    float *oa = malloc((size_t)(nq * D) * 4), *ob = malloc((size_t)(nq * D) * 4);
                    for (int64_t i = 0; i < nq * D; i++) q[i] = grok_rng_normal(&r);
                    for (int64_t i = 0; i < nq * ld; i++) w[i] = (float)grok_rng_uniform(&r);
                    w[0] = 0; /* a masked key */

                    vk->scores(k, stride, kv, q, nq, D, n, sa, ld);
                    ref->scores(k, stride, kv, q, nq, D, n, sb, ld);
                    double worst = 0;
                    for (int64_t g = 0; g < nq; g++)
                        for (int64_t s = 0; s < n; s++) {
                            /* bound: summation order, relative to sum |k q| */
                            float kabs[130], qabs[130];
                            grok_kernels_get(kv)->to_f32(k + (size_t)s * stride, kabs, D);
                            for (int64_t i = 0; i < D; i++)
                                kabs[i] = fabsf(kabs[i]), qabs[i] = fabsf(q[g * D + i]);
                            double m = 0;
                            for (int64_t i = 0; i < D; i++) m += (double)kabs[i] * qabs[i];
                            worst = fmax(worst, fabs(sa[g * ld + s] - sb[g * ld + s]) / (m + 1e-6));
                        }
                    CHECK(worst <= 1e-5, "scores kv %d D %ld nq %ld n %ld: err %g", ki, (long)D, (long)nq,
                          (long)n, worst);

                    vk->wsum(v, stride, kv, w, ld, nq, D, n, oa);
                    ref->wsum(v, stride, kv, w, ld, nq, D, n, ob);
                    worst = 0;
                    for (int64_t g = 0; g < nq; g++)
                        for (int64_t i = 0; i < D; i++) {
                            double m = 0;
                            for (int64_t s = 0; s < n; s++) {
                                float vf;
                                grok_kernels_get(kv)->to_f32(v + (size_t)s * stride + (size_t)(i * elt), &vf,
                                                             1);
                                m += fabs((double)w[g * ld + s] * vf);
                            }
                            worst = fmax(worst, fabs(oa[g * D + i] - ob[g * D + i]) / (m + 1e-6));
                        }
                    CHECK(worst <= 1e-5, "wsum kv %d D %ld nq %ld n %ld: err %g", ki, (long)D, (long)nq,
                          (long)n, worst);

                    /* each head alone, and positions from 1 on: bit for bit */
                    float *one = malloc((size_t)ld * 4), *o1 = malloc((size_t)D * 4);
                    for (int64_t g = 0; g < nq; g++) {
                        vk->scores(k, stride, kv, q + g * D, 1, D, n, one, ld);
                        CHECK(memcmp(one, sa + g * ld, (size_t)n * 4) == 0,
                              "scores head %ld alone differ (D %ld nq %ld n %ld)", (long)g, (long)D, (long)nq,
                              (long)n);
                        vk->wsum(v, stride, kv, w + g * ld, ld, 1, D, n, o1);
                        CHECK(memcmp(o1, oa + g * D, (size_t)D * 4) == 0,
                              "wsum head %ld alone differs (D %ld nq %ld n %ld)", (long)g, (long)D, (long)nq,
                              (long)n);
                    }
                    if (n > 1 && nq > 1) {
                        vk->scores(k + stride, stride, kv, q + D, nq - 1, D, n - 1, sb, ld);
                        bool same = true;
                        for (int64_t g = 1; g < nq; g++)
                            same &= memcmp(sb + (g - 1) * ld, sa + g * ld + 1, (size_t)(n - 1) * 4) == 0;
                        CHECK(same, "scores shifted by a head and a position differ (D %ld nq %ld n %ld)",
                              (long)D, (long)nq, (long)n);
                    }
                    free(one), free(o1);
                    free(kc), free(vc), free(q), free(w), free(sa), free(sb), free(oa), free(ob);
                    cases++;
                }
    printf("attention kernels: %d cases\n", cases);
}

/* A prompt in one batch on one thread vs token by token on three. */
static void test_model(int n_kv_heads, grok_type kv) {
    char name[64], path[4096], err[GROK_ERR_SIZE];
    snprintf(name, sizeof name, "attention_test_kv%d.gguf", n_kv_heads);
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = n_kv_heads, hp.head_dim = 20;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 64, hp.n_ctx_train = 64;
    grok_model *m = random_model(name, &hp, GROK_TYPE_F32, 300, 3, path, sizeof path);
    if (!m) return;
    enum { N = 11, V = 300 };
    const int32_t ids[N] = {5, 17, 200, 3, 3, 99, 150, 7, 8, 250, 1};
    static float batch[N][V], single[N][V];
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = 32, cp.kv_type = kv, cp.n_threads = 1;
    grok_context *c = grok_context_create(m, &cp, err, sizeof err);
    CHECK(c && grok_decode(c, ids, N, &batch[0][0], err, sizeof err) == 0, "batch decode: %s", err);
    grok_context_free(c);
    cp.n_threads = 3;
    c = grok_context_create(m, &cp, err, sizeof err);
    for (int t = 0; t < N && c; t++) {
        CHECK(grok_decode(c, ids + t, 1, NULL, err, sizeof err) == 0, "decode %d: %s", t, err);
        memcpy(single[t], grok_context_logits(c), sizeof single[t]);
    }
    grok_context_free(c);
    CHECK(memcmp(batch, single, sizeof batch) == 0,
          "kv heads %d, %s cache: batched logits differ from single", n_kv_heads,
          kv == GROK_TYPE_F16 ? "f16" : "f32");
    grok_model_free(m);
    remove(path);
}

int main(void) {
    const grok_vec_kernels *ref = grok_vec_reference();
    grok_vec_kernels simd;
    if (grok_vec_avx2(&simd)) {
        printf("avx2 kernels:\n");
        test_exp_tanh(&simd);
        test_elementwise(&simd, ref);
        test_attention_kernels(&simd, ref);
    } else {
        printf("no AVX2/FMA/F16C: only the scalar kernels are tested\n");
    }
    test_attention_kernels(ref, ref);
    CHECK(grok_vec_select(GROK_KERNELS_REFERENCE) == ref, "reference mode uses the scalar kernels");
    for (int kvh = 1; kvh <= 4; kvh *= 4) {
        test_model(kvh, GROK_TYPE_F32);
        test_model(kvh, GROK_TYPE_F16);
    }
    return check_summary("test_attention");
}
