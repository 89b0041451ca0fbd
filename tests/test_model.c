/*
 * test_model.c - model-level facts that need no file: Grok-1's parameter
 * counts from its shapes (GROK1.md: 315.68 B in all, 83.8 B active per
 * token), the hyperparameter checks, and the loader's refusal of files whose
 * tensors or keys do not fit the model: each variant of a good file (a
 * tensor dropped, reshaped or retyped, a key removed or of the wrong
 * architecture) must fail with a message naming the file and the tensor
 * or key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "model/model.h"

typedef enum { EDIT_DROP, EDIT_RESHAPE, EDIT_RETYPE } edit_kind;

/* Rewrites good as path with one tensor edited and/or one key replaced. */
static int write_variant(const grok_gguf_file *good, const char *path, const char *tensor, edit_kind kind,
                         const char *drop_key, const char *arch) {
    grok_gguf_writer *w = grok_gguf_writer_create();
    char err[GROK_ERR_SIZE];
    for (int64_t i = 0; i < grok_gguf_n_kv(good); i++) {
        const char *k = grok_gguf_kv_key(good, i);
        if (drop_key && strcmp(k, drop_key) == 0) continue;
        if (grok_gguf_kv_type(good, i) == GROK_GGUF_TYPE_STRING) {
            const char *v;
            grok_gguf_get_str(good, k, &v, NULL);
            grok_gguf_writer_set_str(w, k, v);
        } else if (grok_gguf_kv_type(good, i) == GROK_GGUF_TYPE_UINT32) {
            uint64_t v;
            grok_gguf_get_u64(good, k, &v);
            grok_gguf_writer_set_u32(w, k, (uint32_t)v);
        } else if (grok_gguf_kv_type(good, i) == GROK_GGUF_TYPE_FLOAT32) {
            double v;
            grok_gguf_get_f64(good, k, &v);
            grok_gguf_writer_set_f32(w, k, (float)v);
        }
    }
    if (arch) grok_gguf_writer_set_str(w, "general.architecture", arch);
    void *junk = calloc(1, 1 << 20);
    for (int64_t i = 0; i < grok_gguf_n_tensors(good); i++) {
        const grok_gguf_tensor *t = grok_gguf_tensor_at(good, i);
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (tensor && strcmp(t->name, tensor) == 0) {
            if (kind == EDIT_DROP) continue;
            if (kind == EDIT_RESHAPE) {
                ne[0] = t->ne[1], ne[1] = t->ne[0]; /* transposed */
                grok_gguf_writer_add_tensor(w, t->name, (grok_type)t->type, t->n_dims, ne, t->data);
            } else { /* same shape, a type without kernels here */
                grok_gguf_writer_add_tensor(w, t->name, GROK_TYPE_Q8_1, t->n_dims, ne, junk);
            }
            continue;
        }
        grok_gguf_writer_add_tensor(w, t->name, (grok_type)t->type, t->n_dims, ne, t->data);
    }
    int rc = grok_gguf_writer_write(w, path, err, sizeof err);
    if (rc) fprintf(stderr, "writing %s: %s\n", path, err);
    grok_gguf_writer_free(w);
    free(junk);
    return rc;
}

static void expect_load_error(const char *path, const char *w1, const char *w2) {
    char err[GROK_ERR_SIZE] = "";
    grok_model *m = grok_model_load(path, err, sizeof err);
    CHECK(!m && strstr(err, path) && strstr(err, w1) && (!w2 || strstr(err, w2)),
          "%s: want an error with '%s'%s%s, got '%s'", path, w1, w2 ? " and " : "", w2 ? w2 : "", err);
    grok_model_free(m);
}

static void test_load_errors(void) {
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    char good_path[2048], p[2048], err[GROK_ERR_SIZE];
    snprintf(good_path, sizeof good_path, "%s/good.gguf", tmp);
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 32, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2, hp.head_dim = 8;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 64, hp.n_ctx_train = 16;
    grok_tokenizer *tok = grok_tokenizer_placeholder(64, err, sizeof err);
    CHECK(grok_model_write_random(good_path, &hp, GROK_TYPE_F16, tok, false, 1, err, sizeof err) == 0, "%s",
          err);
    grok_tokenizer_free(tok);
    grok_model *m = grok_model_load(good_path, err, sizeof err);
    CHECK(m != NULL, "the good file loads: %s", err);
    grok_model_free(m);
    grok_gguf_file *good = grok_gguf_open(good_path, err, sizeof err);
    if (!good) return;
    struct {
        const char *tensor;
        edit_kind kind;
        const char *words[2];
    } cases[] = {
        {"blk.1.ffn_down_exps.weight", EDIT_DROP, {"blk.1.ffn_down_exps.weight", "missing"}},
        {"output_norm.weight", EDIT_DROP, {"output_norm.weight", "missing"}},
        {"blk.0.ffn_gate_exps.weight", EDIT_RESHAPE, {"blk.0.ffn_gate_exps.weight", "shape [64, 32, 4]"}},
        {"blk.0.attn_k.weight", EDIT_RESHAPE, {"blk.0.attn_k.weight", "need [32, 16]"}},
        {"blk.1.ffn_gate_inp.weight", EDIT_RESHAPE, {"ffn_gate_inp", "shape"}},
        {"token_embd.weight", EDIT_RETYPE, {"token_embd.weight", "q8_1"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s/bad_tensor_%zu.gguf", tmp, i);
        if (write_variant(good, p, cases[i].tensor, cases[i].kind, NULL, NULL) == 0)
            expect_load_error(p, cases[i].words[0], cases[i].words[1]);
    }
    snprintf(p, sizeof p, "%s/bad_key.gguf", tmp);
    if (write_variant(good, p, NULL, EDIT_DROP, "grok.block_count", NULL) == 0)
        expect_load_error(p, "grok.block_count", "missing");
    snprintf(p, sizeof p, "%s/bad_arch.gguf", tmp);
    if (write_variant(good, p, NULL, EDIT_DROP, NULL, "llama") == 0)
        expect_load_error(p, "llama", "only 'grok'");
    snprintf(p, sizeof p, "%s/bad_heads.gguf", tmp);
    if (write_variant(good, p, NULL, EDIT_DROP, "grok.attention.head_count_kv", NULL) == 0)
        expect_load_error(p, "shape", NULL); /* kv heads default to heads: attn_k no longer fits */
    grok_gguf_close(good);
}

int main(void) {
    test_load_errors();
    grok_hparams hp = grok_hparams_grok1();
    double all = (double)grok_hparams_n_params(&hp) / 1e9;
    double act = (double)grok_hparams_n_params_active(&hp) / 1e9;
    printf("Grok-1: %.3f B parameters, %.3f B active\n", all, act);
    CHECK(all > 315.65 && all < 315.75, "total %.3f B, GROK1.md says 315.68 B", all);
    CHECK(act > 83.75 && act < 83.85, "active %.3f B, GROK1.md says 83.8 B", act);
    /* per layer: 88.08 M attention, 4.832 B experts */
    char err[GROK_ERR_SIZE];
    CHECK(grok_hparams_validate(&hp, "grok1", err, sizeof err) == 0, "grok1 valid: %s", err);
    grok_hparams bad = hp;
    bad.n_kv_heads = 7;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0 && strstr(err, "head_count_kv"),
          "48 heads over 7 kv heads rejected: %s", err);
    bad = hp;
    bad.n_experts_used = 9;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0 && strstr(err, "expert_used_count"),
          "9 of 8 experts rejected: %s", err);
    bad = hp;
    bad.head_dim = 127;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0 && strstr(err, "even"),
          "odd head dim rejected: %s", err);
    bad = hp;
    bad.d_model = 0;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0 && strstr(err, "d_model"),
          "zero width rejected: %s", err);
    bad = hp;
    bad.norm_eps = 0;
    CHECK(grok_hparams_validate(&bad, "x", err, sizeof err) != 0, "zero eps rejected");
    return check_summary("test_model");
}
