/*
 * cpu.c - run-time CPU feature detection, the instruction-set levels (the
 * process's, under its cap, and those models ask for) and the
 * process-wide kernel mode.
 * The build stays generic (no -march flags); SIMD kernels live in files
 * compiled with per-function target attributes and are chosen here by
 * what the CPU reports, so one binary runs on any x86-64 (or aarch64)
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
static grok_isa g_best = GROK_ISA_SCALAR; /* the CPU's best level */
static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;
/* The process's level and mode, fixed at the first use of either. */
static grok_isa g_default = GROK_ISA_SCALAR;
static atomic_int g_mode = GROK_KERNELS_FAST;
static pthread_once_t g_default_once = PTHREAD_ONCE_INIT;
/* The cap grok_kernels_set_isa_cap asked for ("" = none), and whether
 * fix_default() has fixed the process's level; both under g_cap_mu. */
static pthread_mutex_t g_cap_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_cap[16];
static bool g_fixed;

static const char *const g_isa_names[GROK_ISA_COUNT] = {
    [GROK_ISA_SCALAR] = "scalar",         [GROK_ISA_AVX2] = "avx2", [GROK_ISA_AVX512VNNI] = "avx512vnni",
    [GROK_ISA_AVX512VBMI] = "avx512vbmi", [GROK_ISA_NEON] = "neon"};

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
    if (g_cpu.avx2 && g_cpu.fma && g_cpu.f16c) g_best = GROK_ISA_AVX2;
    if (g_best == GROK_ISA_AVX2 && g_cpu.avx512f && g_cpu.avx512bw && g_cpu.avx512vl && g_cpu.avx512vnni)
        g_best = GROK_ISA_AVX512VNNI;
    if (g_best == GROK_ISA_AVX512VNNI && g_cpu.avx512vbmi) g_best = GROK_ISA_AVX512VBMI;
    if (g_cpu.neon) g_best = GROK_ISA_NEON;
}

/* The CPU's best level under cap (DEFAULT: none). */
static grok_isa capped(grok_isa cap) {
    pthread_once(&g_cpu_once, detect);
    if (cap == GROK_ISA_DEFAULT || (unsigned)cap >= GROK_ISA_COUNT) return g_best;
    if (cap == GROK_ISA_SCALAR || g_best == GROK_ISA_SCALAR) return GROK_ISA_SCALAR;
    if (g_best == GROK_ISA_NEON || cap == GROK_ISA_NEON) return g_best;
    return cap < g_best ? cap : g_best;
}

static void fix_default(void) {
    /* the cap: GROK_ISA overrides the program's grok_kernels_set_isa_cap;
     * a name it does not know caps nothing here (a model's load names it) */
    pthread_mutex_lock(&g_cap_mu);
    g_fixed = true;
    const char *isa_env = getenv("GROK_ISA");
    const grok_isa cap = grok_isa_from_name(isa_env && *isa_env ? isa_env : g_cap);
    pthread_mutex_unlock(&g_cap_mu);
    g_default = capped(cap == GROK_ISA_COUNT ? GROK_ISA_DEFAULT : cap);
    const grok_kernel_mode env = grok_kernels_env_mode();
    if (env != GROK_KERNELS_DEFAULT) atomic_store(&g_mode, (int)env);
}

const grok_cpu_features *grok_cpu(void) {
    pthread_once(&g_cpu_once, detect);
    return &g_cpu;
}

grok_isa grok_isa_resolve(grok_isa isa) {
    if (isa != GROK_ISA_DEFAULT && (unsigned)isa < GROK_ISA_COUNT) return capped(isa);
    pthread_once(&g_default_once, fix_default);
    return g_default;
}

const char *grok_isa_name(grok_isa isa) { return g_isa_names[grok_isa_resolve(isa)]; }

grok_isa grok_isa_from_name(const char *name) {
    for (int i = GROK_ISA_SCALAR; name && i < GROK_ISA_COUNT; i++)
        if (strcmp(name, g_isa_names[i]) == 0) return (grok_isa)i;
    return GROK_ISA_COUNT;
}

grok_isa grok_isa_for_model(const char *cap, char *err, size_t err_size) {
    const char *env = getenv("GROK_ISA");
    const bool from_env = env && *env;
    const char *name = from_env ? env : cap;
    if (!name) return grok_isa_resolve(GROK_ISA_DEFAULT);
    const grok_isa isa = grok_isa_from_name(name);
    if (isa == GROK_ISA_COUNT) {
        snprintf(err, err_size, "%s '%s' is not an instruction set (scalar, avx2, avx512vnni, avx512vbmi, neon)",
                 from_env ? "GROK_ISA" : "isa", name);
        return GROK_ISA_COUNT;
    }
    return grok_isa_resolve(isa);
}

void grok_quantize_q8a_isa(grok_isa isa, const float *x, block_q8a *y, int64_t n) {
    isa = grok_isa_resolve(isa);
    if (grok_isa_has_avx2(isa))
        grok_quantize_q8a_avx2(x, y, n);
    else if (isa == GROK_ISA_NEON)
        grok_quantize_q8a_neon(x, y, n);
    else
        grok_quantize_q8a_ref(x, y, n);
}

void grok_quantize_q8a(const float *x, block_q8a *y, int64_t n) { grok_quantize_q8a_isa(GROK_ISA_DEFAULT, x, y, n); }

int grok_kernels_set_isa_cap(const char *isa) {
    if (isa && grok_isa_from_name(isa) == GROK_ISA_COUNT) return -1;
    pthread_mutex_lock(&g_cap_mu);
    const bool fixed = g_fixed;
    if (!fixed) snprintf(g_cap, sizeof g_cap, "%s", isa ? isa : "");
    pthread_mutex_unlock(&g_cap_mu);
    return fixed ? -1 : 0;
}

const char *grok_kernels_isa(void) { return grok_isa_name(GROK_ISA_DEFAULT); }

void grok_kernels_set_mode(grok_kernel_mode mode) {
    pthread_once(&g_default_once, fix_default); /* so the environment cannot override it later */
    if (mode != GROK_KERNELS_DEFAULT) atomic_store(&g_mode, (int)mode);
}

grok_kernel_mode grok_kernels_mode(void) {
    pthread_once(&g_default_once, fix_default);
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

/* Per level, type and mode, the dots to use: the reference's, overlaid by
 * what the level provides. An ISA that brings its own dot_q8a brings its
 * dot_q8a_multi with it (or none), never pairs with another ISA's, so the
 * batched results stay equal to the single-token ones. Built once, for
 * every level this CPU runs (models of one process may use different
 * ones). */
static grok_dot_kernels g_table[GROK_ISA_COUNT][3][GROK_TYPE_COUNT];
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

static void build_level(grok_isa isa, grok_dot_kernels table[3][GROK_TYPE_COUNT]) {
    for (uint32_t t = 0; t < GROK_TYPE_COUNT; t++) {
        const grok_dot_kernels *ref = grok_dot_reference(t);
        if (!ref) continue;
        grok_dot_kernels simd = *ref;
        grok_dot_kernels v = {0};
        if (grok_isa_has_avx2(isa)) {
            grok_dot_avx2(t, &v);
            overlay(&simd, &v);
        }
        if (isa == GROK_ISA_AVX512VNNI || isa == GROK_ISA_AVX512VBMI) {
            v = (grok_dot_kernels){0};
            if (isa == GROK_ISA_AVX512VBMI)
                grok_dot_avx512vbmi(t, &v);
            else
                grok_dot_avx512(t, &v);
            overlay(&simd, &v);
        }
        if (isa == GROK_ISA_NEON) {
            grok_dot_neon(t, &v);
            overlay(&simd, &v);
        }
        table[GROK_KERNELS_REFERENCE][t] = (grok_dot_kernels){.dot_f32 = ref->dot_f32};
        table[GROK_KERNELS_EXACT][t] = (grok_dot_kernels){.dot_f32 = simd.dot_f32};
        table[GROK_KERNELS_FAST][t] = simd;
    }
}

static void build_tables(void) {
    for (int i = GROK_ISA_SCALAR; i < GROK_ISA_COUNT; i++)
        if (capped((grok_isa)i) == (grok_isa)i) build_level((grok_isa)i, g_table[i]);
}

const grok_dot_kernels *grok_dot_select_isa(uint32_t type, grok_kernel_mode mode, grok_isa isa) {
    pthread_once(&g_table_once, build_tables);
    isa = grok_isa_resolve(isa);
    if (type >= GROK_TYPE_COUNT || (unsigned)mode > GROK_KERNELS_REFERENCE || !g_table[isa][mode][type].dot_f32)
        return NULL;
    return &g_table[isa][mode][type];
}

const grok_dot_kernels *grok_dot_select(uint32_t type, grok_kernel_mode mode) {
    return grok_dot_select_isa(type, mode, GROK_ISA_DEFAULT);
}
