/*
 * fuzz_lora.c - LoRA adapter files (src/model/lora.c) applied to a small
 * q8_0 base model written at start-up (the shapes below; the seeds in
 * corpus/fuzz_lora were trained for the same shapes by make_corpus.sh). A
 * refused adapter must come with a message and leave the model as it was;
 * an accepted one must give a model that decodes.
 */
#include <sys/stat.h>

#include "fuzz.h"
#include "grok.h"
#include "model/lora.h"
#include "model/model.h"

/* grok new -o base.gguf --d-model 32 --layers 1 --heads 2 --kv-heads 1
 *   --experts 2 --experts-used 1 --ffn 32 --vocab 300 --type q8_0 */
static grok_hparams base_hparams(void) {
    grok_hparams hp = grok_hparams_grok1();
    hp.d_model = 32, hp.n_layers = 1, hp.n_heads = 2, hp.n_kv_heads = 1, hp.head_dim = 16;
    hp.n_experts = 2, hp.n_experts_used = 1, hp.n_ff = 32, hp.n_ctx_train = 2048;
    return hp;
}

static char g_dir[64], g_base[96];
static grok_model *g_model;
static grok_threadpool *g_pool;

static void cleanup(void) {
    grok_model_free(g_model);
    unlink(g_base);
    rmdir(g_dir);
}

static grok_model *load_base(void) {
    char err[GROK_ERR_SIZE];
    grok_model *m = grok_model_load(g_base, err, sizeof err);
    if (!m) {
        fprintf(stderr, "fuzz_lora: %s\n", err);
        exit(1);
    }
    return m;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(g_dir, sizeof g_dir, "/tmp/grok-fuzz-lora-XXXXXX");
    if (!mkdtemp(g_dir)) exit(1);
    snprintf(g_base, sizeof g_base, "%s/base.gguf", g_dir);
    char err[GROK_ERR_SIZE];
    grok_tokenizer *tok = grok_tokenizer_placeholder(300, err, sizeof err);
    grok_hparams hp = base_hparams();
    if (!tok || grok_model_write_random(g_base, &hp, GROK_TYPE_Q8_0, tok, false, 1, err, sizeof err)) {
        fprintf(stderr, "fuzz_lora: %s\n", err);
        exit(1);
    }
    grok_tokenizer_free(tok);
    atexit(cleanup);
    g_model = load_base();
    g_pool = grok_threadpool_create(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    char err[GROK_ERR_SIZE] = "";
    float scale = size ? (float)(data[size - 1] % 5) * 0.5f : 1.0f;
    const grok_layer before = g_model->layers[0];
    if (grok_model_apply_lora(g_model, path, scale, err, sizeof err) != 0) {
        fuzz_note("refused", err);
        FUZZ_CHECK(err[0], "refused without a message");
        FUZZ_CHECK(memcmp(&before, &g_model->layers[0], sizeof before) == 0,
                   "a refused adapter changed the model");
        return 0;
    }
    grok_context_params cp = grok_context_default_params();
    cp.n_ctx = 4;
    cp.pool = g_pool;
    grok_context *ctx = grok_context_create(g_model, &cp, err, sizeof err);
    FUZZ_CHECK(ctx != NULL, "no context on an adapted model: %s", err);
    int32_t toks[2] = {1, 299};
    err[0] = '\0';
    int rc = grok_decode(ctx, toks, 2, NULL, err, sizeof err);
    if (rc != 0) FUZZ_CHECK(err[0], "decode failed without a message");
    grok_context_free(ctx);
    /* the adapter is in the model now: start the next input from the base */
    grok_model_free(g_model);
    g_model = load_base();
    return 0;
}
