/*
 * types.c - the tensor types of the GGUF format (ggml's numbering and block
 * layouts). Every type the format defines is listed, including ones libgrok
 * cannot compute with, so that a file holding them still parses and its
 * sizes are checked exactly; can_compute says which ones have kernels.
 */
#include <strings.h>

#include "grok.h"

static const grok_type_traits TRAITS[GROK_TYPE_COUNT] = {
    [GROK_TYPE_F32] = {"f32", 1, 4, true},
    [GROK_TYPE_F16] = {"f16", 1, 2, true},
    [GROK_TYPE_Q4_0] = {"q4_0", 32, 18, true},
    [GROK_TYPE_Q4_1] = {"q4_1", 32, 20, true},
    [GROK_TYPE_Q5_0] = {"q5_0", 32, 22, true},
    [GROK_TYPE_Q5_1] = {"q5_1", 32, 24, true},
    [GROK_TYPE_Q8_0] = {"q8_0", 32, 34, true},
    [GROK_TYPE_Q8_1] = {"q8_1", 32, 36, false},
    [GROK_TYPE_Q2_K] = {"q2_K", 256, 84, true},
    [GROK_TYPE_Q3_K] = {"q3_K", 256, 110, true},
    [GROK_TYPE_Q4_K] = {"q4_K", 256, 144, true},
    [GROK_TYPE_Q5_K] = {"q5_K", 256, 176, true},
    [GROK_TYPE_Q6_K] = {"q6_K", 256, 210, true},
    [GROK_TYPE_Q8_K] = {"q8_K", 256, 292, false},
    [GROK_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66, true},
    [GROK_TYPE_IQ2_XS] = {"iq2_xs", 256, 74, true},
    [GROK_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98, true},
    [GROK_TYPE_IQ1_S] = {"iq1_s", 256, 50, true},
    [GROK_TYPE_IQ4_NL] = {"iq4_nl", 32, 18, true},
    [GROK_TYPE_IQ3_S] = {"iq3_s", 256, 110, true},
    [GROK_TYPE_IQ2_S] = {"iq2_s", 256, 82, true},
    [GROK_TYPE_IQ4_XS] = {"iq4_xs", 256, 136, true},
    [GROK_TYPE_I8] = {"i8", 1, 1, false},
    [GROK_TYPE_I16] = {"i16", 1, 2, false},
    [GROK_TYPE_I32] = {"i32", 1, 4, false},
    [GROK_TYPE_I64] = {"i64", 1, 8, false},
    [GROK_TYPE_F64] = {"f64", 1, 8, false},
    [GROK_TYPE_IQ1_M] = {"iq1_m", 256, 56, true},
    [GROK_TYPE_BF16] = {"bf16", 1, 2, true},
    [GROK_TYPE_TQ1_0] = {"tq1_0", 256, 54, true},
    [GROK_TYPE_TQ2_0] = {"tq2_0", 256, 66, true},
    [GROK_TYPE_MXFP4] = {"mxfp4", 32, 17, true},
    [GROK_TYPE_NVFP4] = {"nvfp4", 64, 36, true},
    [GROK_TYPE_Q1_0] = {"q1_0", 128, 18, true},
    [GROK_TYPE_Q2_0] = {"q2_0", 64, 18, true},
};

const grok_type_traits *grok_type_get_traits(uint32_t type) {
    if (type >= GROK_TYPE_COUNT || TRAITS[type].name == NULL) return NULL;
    return &TRAITS[type];
}

int64_t grok_type_row_size(uint32_t type, int64_t n) {
    const grok_type_traits *t = grok_type_get_traits(type);
    if (!t || n < 0 || n % t->block_size != 0) return -1;
    int64_t blocks = n / t->block_size;
    if (blocks > INT64_MAX / t->type_size) return -1;
    return blocks * t->type_size;
}

int grok_type_from_name(const char *name) {
    for (int i = 0; i < GROK_TYPE_COUNT; i++)
        if (TRAITS[i].name && strcasecmp(TRAITS[i].name, name) == 0) return i;
    return -1;
}
