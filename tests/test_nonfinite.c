/*
 * test_nonfinite.c - the run-time check of the forward pass: a model whose
 * weights hold a NaN or an Inf ends the decode with GROK_ERR_NONFINITE and
 * a message naming the layer, the sub-block and the tensor, and leaves the
 * sequences as they were: a prompt decoded in several steps is taken back
 * whole, and a batched step that fails appends to none of its sequences,
 * while the same sequences decode normally without the bad token. The
 * weights are corrupted in the file (found through the GGUF reader) after
 * grok_model_write_random wrote it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "grok.h"
#include "model/model.h"

static char g_dir[512];

/* Writes a model of type `type` and puts `bits` (a float or an f16 scale,
 * `width` bytes) at byte `at` of tensor `name`'s data. */
static void make(const char *path, grok_type type, bool untied, const char *name, uint64_t at, uint32_t bits,
                 int width) {
    char err[GROK_ERR_SIZE];
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 64, hp.n_layers = 2, hp.n_heads = 4, hp.n_kv_heads = 2, hp.head_dim = 16;
    hp.n_experts = 4, hp.n_experts_used = 2, hp.n_ff = 64, hp.n_ctx_train = 64;
    grok_tokenizer *tok = grok_tokenizer_placeholder(300, err, sizeof err);
    CHECK(tok && grok_model_write_random(path, &hp, type, tok, untied, 7, err, sizeof err) == 0, "write: %s",
          err);
    grok_tokenizer_free(tok);
    if (!name) return;
    grok_gguf_file *f = grok_gguf_open(path, err, sizeof err);
    const grok_gguf_tensor *t = f ? grok_gguf_find_tensor(f, name) : NULL;
    CHECK(t != NULL, "%s: no tensor %s", path, name);
    if (!t) return;
    uint64_t off = grok_gguf_tensor_file_offset(f, t) + at;
    grok_gguf_close(f);
    FILE *fp = fopen(path, "r+b");
    CHECK(fp && fseek(fp, (long)off, SEEK_SET) == 0 && fwrite(&bits, (size_t)width, 1, fp) == 1, "patch %s",
          path);
    if (fp) fclose(fp);
}

static grok_model *load(const char *path) {
    char err[GROK_ERR_SIZE];
    grok_model *m = grok_model_load(path, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    return m;
}

/* A NaN in one row of the (untied) embedding: only the token of that row
 * goes bad. (Tied, the row is also the output head's, and every token's
 * logit for it would be NaN: caught too, as non-finite logits.) */
static void test_embedding_row(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/embd.gguf", g_dir);
    const int32_t T = 77;
    make(path, GROK_TYPE_F32, true, "token_embd.weight", (uint64_t)T * 64 * 4 + 12, 0x7fc00000u, 4);
    grok_model *m = load(path);
    if (!m) return;
    char err[GROK_ERR_SIZE] = "";
    grok_runner_params rp = grok_runner_default_params();
    rp.n_threads = 2, rp.n_batch = 3; /* a 7-token prompt takes 3 steps */
    grok_runner *r = grok_runner_create(m, &rp, err, sizeof err);
    grok_seq_params sp = grok_seq_default_params();
    sp.n_ctx = 32;
    grok_seq *a = grok_seq_create(m, &sp, err, sizeof err), *b = grok_seq_create(m, &sp, err, sizeof err);
    CHECK(r && a && b, "runner/seq: %s", err);
    if (!r || !a || !b) return;

    const int32_t bad[7] = {1, 2, 3, 4, 5, 6, T}, good[3] = {1, 2, 3};
    int rc = grok_runner_decode(r, a, bad, 7, NULL, err, sizeof err);
    CHECK(rc == GROK_ERR_NONFINITE, "decode with token %d returned %d (%s)", T, rc, err);
    CHECK(strstr(err, "row 77 of token_embd.weight") && strstr(err, "position 6"), "message: %s", err);
    CHECK(grok_seq_pos(a) == 0, "the failed prompt left %lld tokens (its first steps were fine)",
          (long long)grok_seq_pos(a));
    rc = grok_runner_decode(r, a, good, 3, NULL, err, sizeof err);
    CHECK(rc == 0 && grok_seq_pos(a) == 3, "the sequence does not decode after the failure: %d %s", rc, err);
    float want = grok_seq_logits(a)[5];
    CHECK(isfinite(want), "logits are not finite");

    /* a batched step with the bad token in b: neither sequence moves */
    const int32_t ta[1] = {9}, tb[2] = {5, T};
    grok_seq *seqs[2] = {a, b};
    const int32_t *toks[2] = {ta, tb};
    const int64_t ns[2] = {1, 2};
    rc = grok_decode_multi(r, seqs, toks, ns, 2, err, sizeof err);
    CHECK(rc == GROK_ERR_NONFINITE && strstr(err, "token_embd"), "multi returned %d: %s", rc, err);
    CHECK(grok_seq_pos(a) == 3 && grok_seq_pos(b) == 0, "a failed step appended (%lld, %lld)",
          (long long)grok_seq_pos(a), (long long)grok_seq_pos(b));
    /* a alone goes on as if the failed step had not been */
    rc = grok_decode_multi(r, seqs, toks, ns, 1, err, sizeof err);
    CHECK(rc == 0 && grok_seq_pos(a) == 4, "a alone: %d %s", rc, err);
    grok_seq_free(a), grok_seq_free(b);
    grok_runner_free(r);
    grok_model_free(m);
}

/* A weight that poisons every token, in each sub-block, named in the message. */
static void test_tensor_named(const char *tensor, grok_type type, uint64_t at, uint32_t bits, int width,
                              const char *want) {
    char path[600];
    snprintf(path, sizeof path, "%s/bad.gguf", g_dir);
    make(path, type, false, tensor, at, bits, width);
    grok_model *m = load(path);
    if (!m) return;
    char err[GROK_ERR_SIZE] = "";
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = 16, cp.n_threads = 2;
    grok_context *c = grok_context_create(m, &cp, err, sizeof err);
    const int32_t toks[4] = {10, 20, 30, 40};
    int rc = c ? grok_decode(c, toks, 4, NULL, err, sizeof err) : -99;
    CHECK(rc == GROK_ERR_NONFINITE, "%s: decode returned %d (%s)", tensor, rc, err);
    CHECK(strstr(err, want) != NULL, "%s: the message '%s' does not name '%s'", tensor, err, want);
    printf("  %s: %s\n", tensor, err);
    grok_context_free(c);
    grok_model_free(m);
}

int main(void) {
    const char *tmp = getenv("GROK_TMP") ? getenv("GROK_TMP") : "/tmp";
    mkdir(tmp, 0755);
    snprintf(g_dir, sizeof g_dir, "%s", tmp);
    test_embedding_row();
    /* q8_0: an f16 scale (a block's first two bytes) */
    test_tensor_named("blk.0.attn_v.weight", GROK_TYPE_Q8_0, 0, 0x7e00, 2,
                      "layer 0, in attention: the output of blk.0.attn_v.weight");
    test_tensor_named("blk.1.attn_output.weight", GROK_TYPE_Q8_0, 0, 0x7c00, 2,
                      "layer 1, in attention: the output of blk.1.attn_output.weight");
    test_tensor_named("blk.1.ffn_gate_inp.weight", GROK_TYPE_Q8_0, 4, 0x7f800000u, 4,
                      "layer 1, in the MoE block: the output of blk.1.ffn_gate_inp.weight");
    test_tensor_named("blk.0.ffn_norm.weight", GROK_TYPE_Q8_0, 8, 0xff800000u, 4, "blk.0.ffn_norm.weight");
    test_tensor_named("blk.0.layer_output_norm.weight", GROK_TYPE_F16, 0, 0x7fc00000u, 4,
                      "blk.0.layer_output_norm.weight");
    test_tensor_named("output_norm.weight", GROK_TYPE_F32, 0, 0x7fc00000u, 4,
                      "in the logits: the output of output_norm.weight");
    return check_summary("test_nonfinite");
}
