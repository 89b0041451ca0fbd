/*
 * test_model_isa.c - grok_model_params.isa: models of one process, each
 * capped at its own instruction set and decoded in turns, give exactly
 * the logits of separate processes run under GROK_ISA=that set (and the
 * uncapped model those of an uncapped process). The separate runs are
 * children of this test (the process default is fixed once per process);
 * each writes its logits to a file the parent compares bit for bit.
 * Also: the packed copy follows the model's set (none at scalar), an
 * unknown name fails the load naming it, GROK_ISA beats the parameter,
 * and the process default is left as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "grok.h"

#include "check.h"
#include "kernels/kernels.h"
#include "random_model.h"

#define N_VOCAB 300
#define N_STEPS 3 /* a batch of 4 tokens, then single tokens */
#define N_POS 6   /* logit rows per model: 4 + 1 + 1 */
/* q8_0 has AVX2 and AVX-512 dots; IQ3_S's packed dot differs between
 * avx512vnni (gathers) and avx512vbmi (byte permutes) */
static const grok_type g_types[] = {GROK_TYPE_Q8_0, GROK_TYPE_IQ3_S};
#define N_TYPES (sizeof g_types / sizeof g_types[0])
static const grok_kernel_mode g_modes[] = {GROK_KERNELS_FAST, GROK_KERNELS_EXACT};
#define N_MODES (sizeof g_modes / sizeof g_modes[0])
#define N_LOGITS ((size_t)N_TYPES * N_MODES * N_POS * N_VOCAB)

static void model_path(char *path, size_t cap, size_t ti) {
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    snprintf(path, cap, "%s/model_isa_%zu.gguf", tmp, ti);
}

/* Writes the models the parent and its children share. */
static bool write_models(void) {
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 256, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2, hp.head_dim = 64;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 256, hp.n_ctx_train = 64;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        char name[64];
        snprintf(name, sizeof name, "model_isa_%zu.gguf", ti);
        grok_model *m = random_model(name, &hp, g_types[ti], N_VOCAB, 11 + ti, NULL, 0);
        if (!m) return false;
        grok_model_free(m);
    }
    return true;
}

/* Loads every path's model once per cap in isas (NULL: the default) in
 * mode, and decodes the same tokens with all of them, step by step in
 * turns, so that any state one model's kernels left process-wide would
 * show in the others' numbers. out[i] gets model i's N_POS logit rows;
 * got_isa[i] (if not NULL) its grok_model_isa. */
static bool decode_turns(const char *path, grok_kernel_mode mode, const char *const *isas, int n, float **out,
                         const char **got_isa, int64_t *packed) {
    grok_model *m[8] = {0};
    grok_context *c[8] = {0};
    char err[GROK_ERR_SIZE] = "";
    bool ok = n <= 8;
    for (int i = 0; ok && i < n; i++) {
        grok_model_params mp = grok_model_default_params();
        mp.kernels = mode, mp.isa = isas[i];
        m[i] = grok_model_load_params(path, &mp, err, sizeof err);
        grok_context_params cp = grok_context_default_params();
        c[i] = m[i] ? grok_context_create(m[i], &cp, err, sizeof err) : NULL;
        ok = c[i] != NULL;
        CHECK(ok, "load %s with isa %s: %s", path, isas[i] ? isas[i] : "(default)", err);
        if (ok && got_isa) got_isa[i] = grok_model_isa(m[i]);
        if (ok && packed) packed[i] = grok_model_packed_bytes(m[i]);
    }
    static const int32_t ids[N_POS] = {1, 17, 42, 99, 7, 250};
    static const int64_t step_len[N_STEPS] = {4, 1, 1};
    for (int s = 0, at = 0; ok && s < N_STEPS; at += (int)step_len[s], s++)
        for (int i = 0; ok && i < n; i++) {
            ok = grok_decode(c[i], ids + at, step_len[s], out[i] + (size_t)at * N_VOCAB, err, sizeof err) == 0;
            CHECK(ok, "decode step %d with isa %s: %s", s, isas[i] ? isas[i] : "(default)", err);
        }
    for (int i = 0; i < n; i++) grok_context_free(c[i]), grok_model_free(m[i]);
    return ok;
}

/* The child: this process's default set (its GROK_ISA) for every type and
 * mode, written to argv[2]. It asks for another set by the parameters,
 * which GROK_ISA must beat. */
static int child(const char *out_path) {
    const char *env = getenv("GROK_ISA");
    const char *ask = env && strcmp(env, "scalar") != 0 ? "scalar" : NULL;
    float *all = calloc(N_LOGITS, sizeof(float));
    bool ok = all != NULL;
    for (size_t ti = 0; ok && ti < N_TYPES; ti++)
        for (size_t mi = 0; ok && mi < N_MODES; mi++) {
            char path[4096];
            model_path(path, sizeof path, ti);
            float *rows = all + (ti * N_MODES + mi) * N_POS * N_VOCAB;
            const char *got = NULL;
            ok = decode_turns(path, g_modes[mi], &ask, 1, &rows, &got, NULL);
            CHECK(!ok || strcmp(got, grok_kernels_isa()) == 0, "GROK_ISA=%s: the model uses %s, the process %s",
                  env ? env : "", got, grok_kernels_isa());
        }
    FILE *f = ok ? fopen(out_path, "wb") : NULL;
    CHECK(f && fwrite(all, sizeof(float), N_LOGITS, f) == N_LOGITS && fclose(f) == 0, "write %s", out_path);
    free(all);
    return check_summary("test_model_isa child");
}

/* The logits of a child process under GROK_ISA=isa (NULL: unset). */
static bool run_child(const char *self, const char *isa, float *out) {
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/model_isa_%s.f32", tmp, isa ? isa : "default");
    fflush(stdout), fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
        if (isa)
            setenv("GROK_ISA", isa, 1);
        else
            unsetenv("GROK_ISA");
        execl(self, self, "child", path, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    bool ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    CHECK(ok, "child with GROK_ISA=%s failed (status %d)", isa ? isa : "(unset)", st);
    size_t len = 0;
    char *b = ok ? check_read_file(path, &len) : NULL;
    ok = b && len == N_LOGITS * sizeof(float);
    CHECK(ok, "%s: %zu bytes, want %zu", path, len, N_LOGITS * sizeof(float));
    if (ok) memcpy(out, b, len);
    free(b);
    unlink(path);
    return ok;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "child") == 0) return child(argv[2]);
    if (getenv("GROK_ISA")) {
        printf("SKIP test_model_isa: GROK_ISA is set in the environment\n");
        return 77;
    }
    if (!write_models()) return check_summary("test_model_isa");

    /* the sets to compare: scalar, the default, and each x86 level between */
    const grok_isa best = grok_isa_resolve(GROK_ISA_DEFAULT);
    const char *isas[4] = {"scalar", NULL};
    int n = 2;
    if (best == GROK_ISA_AVX512VNNI || best == GROK_ISA_AVX512VBMI) isas[n++] = "avx2";
    if (best == GROK_ISA_AVX512VBMI) isas[n++] = "avx512vnni";
    printf("default isa %s; models at", grok_isa_name(best));
    for (int i = 0; i < n; i++) printf(" %s", isas[i] ? isas[i] : "(default)");
    printf("\n");

    float *in_proc[4], *sep = malloc(N_LOGITS * sizeof(float));
    for (int i = 0; i < n; i++) in_proc[i] = malloc(N_LOGITS * sizeof(float));
    for (size_t ti = 0; ti < N_TYPES; ti++)
        for (size_t mi = 0; mi < N_MODES; mi++) {
            char path[4096];
            model_path(path, sizeof path, ti);
            float *rows[4];
            const char *got[4] = {0};
            int64_t packed[4] = {0};
            for (int i = 0; i < n; i++) rows[i] = in_proc[i] + (ti * N_MODES + mi) * N_POS * N_VOCAB;
            if (!decode_turns(path, g_modes[mi], isas, n, rows, got, packed)) continue;
            for (int i = 0; i < n; i++) {
                const char *want = isas[i] ? isas[i] : grok_isa_name(best);
                CHECK(strcmp(got[i], want) == 0, "a model capped at %s uses %s", want, got[i]);
            }
            /* the packed copy is the FAST kernels' at the model's set: none at scalar */
            const bool no_pack = getenv("GROK_PACK") && strcmp(getenv("GROK_PACK"), "0") == 0;
            if (g_types[ti] == GROK_TYPE_Q8_0 && g_modes[mi] == GROK_KERNELS_FAST && !no_pack) {
                CHECK(packed[0] == 0, "the scalar model packed %lld bytes", (long long)packed[0]);
                CHECK(best == GROK_ISA_SCALAR || packed[1] > 0, "the %s model packed nothing", got[1]);
            }
        }
    for (int i = 0; i < n; i++) {
        if (!run_child(argv[0], isas[i], sep)) continue;
        size_t diff = 0, vs_scalar = 0, vs_default = 0;
        for (size_t k = 0; k < N_LOGITS; k++) {
            diff += memcmp(&in_proc[i][k], &sep[k], sizeof(float)) != 0;
            vs_scalar += memcmp(&in_proc[i][k], &in_proc[0][k], sizeof(float)) != 0;
            vs_default += memcmp(&in_proc[i][k], &in_proc[1][k], sizeof(float)) != 0;
        }
        const char *name = isas[i] ? isas[i] : "(default)";
        CHECK(diff == 0, "isa %s: %zu of %zu logits differ from a GROK_ISA=%s process", name, diff, N_LOGITS,
              isas[i] ? isas[i] : "(unset)");
        printf("isa %-10s: %zu logits bit-identical to its own process; %zu differ from scalar's, %zu from the "
               "default's\n",
               name, N_LOGITS - diff, vs_scalar, vs_default);
    }
    /* IQ3_S's logits agree between avx512vnni and avx512vbmi (both exact
     * integer sums); that their packed dots are not the same kernels: */
    if (best == GROK_ISA_AVX512VBMI)
        CHECK(grok_dot_select_isa(GROK_TYPE_IQ3_S, GROK_KERNELS_FAST, GROK_ISA_AVX512VNNI)->dot_x8 !=
                  grok_dot_select_isa(GROK_TYPE_IQ3_S, GROK_KERNELS_FAST, GROK_ISA_AVX512VBMI)->dot_x8,
              "IQ3_S has one packed dot at avx512vnni and avx512vbmi");
    /* the others did not move the process default, which a cap can no longer change */
    CHECK(grok_isa_resolve(GROK_ISA_DEFAULT) == best, "the default moved to %s", grok_kernels_isa());
    CHECK(grok_kernels_set_isa_cap("scalar") == -1, "the cap is refused once the default is in use");

    /* an unknown name fails the load, naming it */
    char path[4096], err[GROK_ERR_SIZE] = "";
    model_path(path, sizeof path, 0);
    grok_model_params mp = grok_model_default_params();
    mp.isa = "avx512";
    grok_model *bad = grok_model_load_params(path, &mp, err, sizeof err);
    CHECK(!bad && strstr(err, "'avx512'"), "isa avx512 loaded (%s)", err);
    grok_model_free(bad);
    /* and so does an unknown GROK_ISA (read at each load), whatever the parameters */
    setenv("GROK_ISA", "sse9", 1);
    mp.isa = "scalar";
    bad = grok_model_load_params(path, &mp, err, sizeof err);
    CHECK(!bad && strstr(err, "GROK_ISA 'sse9'"), "GROK_ISA=sse9 loaded (%s)", err);
    grok_model_free(bad);
    unsetenv("GROK_ISA");

    for (size_t ti = 0; ti < N_TYPES; ti++) {
        model_path(path, sizeof path, ti);
        unlink(path);
    }
    for (int i = 0; i < n; i++) free(in_proc[i]);
    free(sep);
    return check_summary("test_model_isa");
}
