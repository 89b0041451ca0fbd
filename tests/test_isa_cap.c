/*
 * test_isa_cap.c - grok_kernels_set_isa_cap: the program's instruction-set
 * cap takes effect at the first kernel use, is refused once the kernels
 * are chosen (the dispatch is process-wide, grok.h "Threads"), and
 * GROK_ISA in the environment overrides it (checked in a child process,
 * since the choice is made once per process).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "grok.h"

#include "check.h"
#include "kernels/kernels.h"
#include "model/model.h"

/* Decodes a few tokens of a small random q8_0 model in FAST mode; true
 * when the logits are finite. */
static bool decode_some(void) {
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char path[4096], err[GROK_ERR_SIZE];
    snprintf(path, sizeof path, "%s/isa_cap_%d.gguf", tmp, (int)getpid());
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 1, hp.n_heads = 4, hp.n_kv_heads = 2, hp.head_dim = 16;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 64, hp.n_ctx_train = 64;
    grok_tokenizer *tok = grok_tokenizer_placeholder(300, err, sizeof err);
    bool ok = tok && grok_model_write_random(path, &hp, GROK_TYPE_Q8_0, tok, false, 3, err, sizeof err) == 0;
    grok_tokenizer_free(tok);
    grok_model *m = ok ? grok_model_load(path, err, sizeof err) : NULL;
    grok_context_params cp = grok_context_default_params();
    grok_context *c = m ? grok_context_create(m, &cp, err, sizeof err) : NULL;
    const int32_t ids[4] = {1, 17, 42, 99};
    ok = c && grok_decode(c, ids, 4, NULL, err, sizeof err) == 0;
    CHECK(ok, "decode: %s", err);
    for (int64_t i = 0; ok && i < 300; i++) ok = ok && grok_context_logits(c)[i] == grok_context_logits(c)[i];
    grok_context_free(c);
    grok_model_free(m);
    unlink(path);
    return ok;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) { /* GROK_ISA=scalar is set: it beats the program's avx2 */
        int rc = grok_kernels_set_isa_cap("avx2");
        CHECK(rc == 0, "set before use");
        CHECK(decode_some(), "decode in the child");
        CHECK(strcmp(grok_kernels_isa(), "scalar") == 0, "GROK_ISA=scalar overridden by the program: %s",
              grok_kernels_isa());
        return check_summary("test_isa_cap child");
    }
    if (getenv("GROK_ISA")) {
        printf("SKIP test_isa_cap: GROK_ISA is set in the environment\n");
        return 77;
    }
    CHECK(grok_kernels_set_isa_cap("sse9") == -1, "an unknown ISA is refused");
    CHECK(grok_kernels_set_isa_cap("avx512") == -1, "a near miss is refused");
    CHECK(grok_kernels_set_isa_cap("scalar") == 0, "set before the first kernel use");
    CHECK(decode_some(), "decode under the cap");
    CHECK(strcmp(grok_kernels_isa(), "scalar") == 0, "the kernels use %s under a scalar cap",
          grok_kernels_isa());
    /* the FAST q8_0 dot is the scalar reference's (no SIMD overlay) */
    CHECK(grok_dot_select(GROK_TYPE_Q8_0, GROK_KERNELS_FAST)->dot_q8a ==
              grok_dot_reference(GROK_TYPE_Q8_0)->dot_q8a,
          "the FAST table is not the reference's under a scalar cap");
    CHECK(grok_kernels_set_isa_cap(NULL) == -1, "refused once the kernels are chosen");
    CHECK(strcmp(grok_kernels_isa(), "scalar") == 0, "a refused cap changed the kernels");
    /* the environment overrides the program: a child with GROK_ISA=scalar */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("GROK_ISA", "scalar", 1);
        execl(argv[0], argv[0], "child", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "child with GROK_ISA=scalar failed (status %d)", st);
    return check_summary("test_isa_cap");
}
