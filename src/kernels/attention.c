/*
 * attention.c - the scalar references of the attention kernels and of the
 * vector math the forward pass uses elementwise (soft-capped scores, the
 * softmax exponentials, tanh, the experts' tanh-GELU), and the choice
 * between them and the SIMD versions (x86_attention.c) by kernel mode.
 *
 * The references are the forward pass's original arithmetic: libm's tanhf
 * and expf, the reference dot of the cache type, a double softmax sum. The
 * SIMD versions replace libm with their own exp/tanh (a few ulp; see
 * tests/test_attention.c for the measured error), so they are used in the
 * FAST and EXACT modes and never in REFERENCE mode.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "kernels/kernels.h"

static void ref_scores(const uint8_t *k, size_t stride, grok_type kv_type, const float *q, int64_t nq,
                       int64_t D, int64_t n, float *out, int64_t ld) {
    const grok_dot_f32_fn dot = grok_dot_reference(kv_type)->dot_f32;
    for (int64_t g = 0; g < nq; g++)
        for (int64_t s = 0; s < n; s++) out[g * ld + s] = dot(k + (size_t)s * stride, q + g * D, D);
}

static void ref_wsum(const uint8_t *v, size_t stride, grok_type kv_type, const float *w, int64_t ld,
                     int64_t nq, int64_t D, int64_t n, float *out) {
    for (int64_t g = 0; g < nq; g++) {
        float *o = out + g * D;
        for (int64_t i = 0; i < D; i++) o[i] = 0;
        for (int64_t s = 0; s < n; s++) {
            const float wt = w[g * ld + s];
            if (wt == 0) continue; /* a masked key */
            const uint8_t *row = v + (size_t)s * stride;
            for (int64_t i = 0; i < D; i++) {
                float x;
                if (kv_type == GROK_TYPE_F16) {
                    uint16_t h;
                    memcpy(&h, row + 2 * i, 2);
                    x = grok_fp16_to_fp32(h);
                } else {
                    memcpy(&x, row + 4 * i, 4);
                }
                o[i] += wt * x;
            }
        }
    }
}

static void ref_softcap(float *x, int64_t n, float scale, float cap) {
    for (int64_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] * scale / cap);
}

static double ref_exp_sum(float *x, int64_t n, float mx) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (x[i] = x[i] == -INFINITY ? 0.0f : expf(x[i] - mx));
    return sum;
}

static void ref_tanh(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
}

static void ref_gelu_mul(float *g, const float *u, int64_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i];
        g[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x))) * u[i];
    }
}

static const grok_vec_kernels g_ref = {ref_scores,  ref_wsum, ref_softcap,
                                       ref_exp_sum, ref_tanh, ref_gelu_mul};
static grok_vec_kernels g_simd;
static bool g_have_simd;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void pick(void) { g_have_simd = grok_vec_avx2(&g_simd); }

const grok_vec_kernels *grok_vec_reference(void) { return &g_ref; }

const grok_vec_kernels *grok_vec_select_isa(grok_kernel_mode mode, grok_isa isa) {
    if (mode == GROK_KERNELS_REFERENCE || !grok_isa_has_avx2(grok_isa_resolve(isa))) return &g_ref;
    pthread_once(&g_once, pick);
    return g_have_simd ? &g_simd : &g_ref;
}

const grok_vec_kernels *grok_vec_select(grok_kernel_mode mode) {
    return grok_vec_select_isa(mode, GROK_ISA_DEFAULT);
}
