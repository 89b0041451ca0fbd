/*
 * cpu.c - run-time CPU feature detection, the instruction-set cap and the
 * process-wide kernel mode.
 * The build stays generic (no -march flags); SIMD kernels live in files
 * compiled with per-function target attributes and are chosen here once,
 * by what the CPU reports, so one binary runs on any x86-64 (or aarch64)
 * machine and uses what it finds.
 */
#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static grok_cpu_features g_cpu;
static const char *g_isa = "scalar";
static bool g_vbmi; /* avx512vnni with the VBMI kernels */
static atomic_int g_mode = GROK_KERNELS_FAST;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* The cap grok_kernels_set_isa_cap asked for ("" = none), and whether
 * detect() has fixed the dispatch; both under g_cap_mu. */
static pthread_mutex_t g_cap_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_cap[16];
static bool g_fixed;
static void (*g_quantize)(const float *, block_q8a *, int64_t) = grok_quantize_q8a_ref;

static void detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    g_cpu.avx2 = __builtin_cpu_supports("avx2");
    g_cpu.fma = __builtin_cpu_supports("fma");
    /* f16c and avx-vnni straight from CPUID: clang 14's
     * __builtin_cpu_supports knows neither name (a build error), gcc < 11
     * not avxvnni. Both are only used behind avx2, whose check covers the
     * OS saving the YMM state. */
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) g_cpu.f16c = (c >> 29) & 1;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) g_cpu.avx_vnni = (a >> 4) & 1;
    g_cpu.avx512f = __builtin_cpu_supports("avx512f");
    g_cpu.avx512bw = __builtin_cpu_supports("avx512bw");
    g_cpu.avx512vl = __builtin_cpu_supports("avx512vl");
    g_cpu.avx512vnni = __builtin_cpu_supports("avx512vnni");
    /* the "VBMI" kernels (x86_iquants.c) take BITALG's vpshufbitqmb too; CPUs with one have both */
    g_cpu.avx512vbmi = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bitalg");
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
    g_cpu.neon = true; /* mandatory on aarch64 */
#endif
    /* the cap: GROK_ISA overrides the program's grok_kernels_set_isa_cap */
    pthread_mutex_lock(&g_cap_mu);
    g_fixed = true;
    const char *isa_env = getenv("GROK_ISA");
    const char *cap = isa_env && *isa_env ? isa_env : g_cap[0] ? g_cap : NULL;
    pthread_mutex_unlock(&g_cap_mu);
    bool allow_avx2 = !cap || strcmp(cap, "scalar") != 0;
    bool allow_512 = allow_avx2 && (!cap || strcmp(cap, "avx2") != 0);
    if (g_cpu.avx2 && g_cpu.fma && g_cpu.f16c && allow_avx2) g_isa = "avx2";
    if (strcmp(g_isa, "avx2") == 0 && g_cpu.avx512f && g_cpu.avx512bw && g_cpu.avx512vl && g_cpu.avx512vnni &&
        allow_512)
        g_isa = "avx512vnni";
    /* GROK_ISA=avx512vnni keeps the kernels that need VBMI out (side-by-side runs) */
    g_vbmi = strcmp(g_isa, "avx512vnni") == 0 && g_cpu.avx512vbmi && (!cap || strcmp(cap, "avx512vnni") != 0);
    if (g_cpu.neon && allow_avx2) g_isa = "neon";
    if (strcmp(g_isa, "avx2") == 0 || strcmp(g_isa, "avx512vnni") == 0) g_quantize = grok_quantize_q8a_avx2;
    if (strcmp(g_isa, "neon") == 0) g_quantize = grok_quantize_q8a_neon;
    const grok_kernel_mode env = grok_kernels_env_mode();
    if (env != GROK_KERNELS_DEFAULT) atomic_store(&g_mode, (int)env);
}

const grok_cpu_features *grok_cpu(void) {
    pthread_once(&g_once, detect);
    return &g_cpu;
}

void grok_quantize_q8a(const float *x, block_q8a *y, int64_t n) {
    pthread_once(&g_once, detect);
    g_quantize(x, y, n);
}

int grok_kernels_set_isa_cap(const char *isa) {
    if (isa && strcmp(isa, "scalar") != 0 && strcmp(isa, "avx2") != 0 && strcmp(isa, "avx512vnni") != 0 &&
        strcmp(isa, "neon") != 0)
        return -1;
    pthread_mutex_lock(&g_cap_mu);
    const bool fixed = g_fixed;
    if (!fixed) snprintf(g_cap, sizeof g_cap, "%s", isa ? isa : "");
    pthread_mutex_unlock(&g_cap_mu);
    return fixed ? -1 : 0;
}

const char *grok_kernels_isa(void) {
    pthread_once(&g_once, detect);
    return g_isa;
}

void grok_kernels_set_mode(grok_kernel_mode mode) {
    pthread_once(&g_once, detect); /* so the environment cannot override it later */
    if (mode != GROK_KERNELS_DEFAULT) atomic_store(&g_mode, (int)mode);
}

grok_kernel_mode grok_kernels_mode(void) {
    pthread_once(&g_once, detect);
    return (grok_kernel_mode)atomic_load(&g_mode);
}

grok_kernel_mode grok_kernels_env_mode(void) {
    const char *m = getenv("GROK_KERNELS");
    if (m && strcmp(m, "reference") == 0) return GROK_KERNELS_REFERENCE;
    if (m && strcmp(m, "exact") == 0) return GROK_KERNELS_EXACT;
    if (m && strcmp(m, "fast") == 0) return GROK_KERNELS_FAST;
    return GROK_KERNELS_DEFAULT;
}

const char *grok_kernel_mode_name(grok_kernel_mode mode) {
    return mode == GROK_KERNELS_REFERENCE ? "reference" : mode == GROK_KERNELS_EXACT ? "exact" : "fast";
}

/* Per type and mode, the dots to use: the reference's, overlaid by what
 * the selected ISA provides. An ISA that brings its own dot_q8a brings its
 * dot_q8a_multi with it (or none), never pairs with another ISA's, so the
 * batched results stay equal to the single-token ones. Built once. */
static grok_dot_kernels g_table[3][GROK_TYPE_COUNT];
static pthread_once_t g_table_once = PTHREAD_ONCE_INIT;

/* What an ISA's table v brings replaces the reference's; its integer
 * dots come as a set (single, multi, packed). */
static void overlay(grok_dot_kernels *simd, const grok_dot_kernels *v) {
    if (v->dot_f32) simd->dot_f32 = v->dot_f32;
    if (v->dot_q8a) {
        simd->dot_q8a = v->dot_q8a, simd->dot_q8a_multi = v->dot_q8a_multi, simd->multi_prep = v->multi_prep;
        simd->dot_x8 = v->dot_x8, simd->dot_x16 = v->dot_x16;
    }
}

static void build_table(void) {
    pthread_once(&g_once, detect);
    for (uint32_t t = 0; t < GROK_TYPE_COUNT; t++) {
        const grok_dot_kernels *ref = grok_dot_reference(t);
        if (!ref) continue;
        grok_dot_kernels simd = *ref;
        grok_dot_kernels v = {0};
        if (strcmp(g_isa, "avx2") == 0 || strcmp(g_isa, "avx512vnni") == 0) {
            grok_dot_avx2(t, &v);
            overlay(&simd, &v);
        }
        if (strcmp(g_isa, "avx512vnni") == 0) {
            v = (grok_dot_kernels){0};
            if (g_vbmi)
                grok_dot_avx512vbmi(t, &v);
            else
                grok_dot_avx512(t, &v);
            overlay(&simd, &v);
        }
        if (strcmp(g_isa, "neon") == 0) {
            grok_dot_neon(t, &v);
            overlay(&simd, &v);
        }
        g_table[GROK_KERNELS_REFERENCE][t] = (grok_dot_kernels){.dot_f32 = ref->dot_f32};
        g_table[GROK_KERNELS_EXACT][t] = (grok_dot_kernels){.dot_f32 = simd.dot_f32};
        g_table[GROK_KERNELS_FAST][t] = simd;
    }
}

const grok_dot_kernels *grok_dot_select(uint32_t type, grok_kernel_mode mode) {
    pthread_once(&g_table_once, build_table);
    if (type >= GROK_TYPE_COUNT || (unsigned)mode > GROK_KERNELS_REFERENCE || !g_table[mode][type].dot_f32)
        return NULL;
    return &g_table[mode][type];
}
