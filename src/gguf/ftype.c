/*
 * ftype.c - the names of llama.cpp's file types, the value of a GGUF
 * file's general.file_type key (LLAMA_FTYPE_* in llama.cpp's llama.h: the
 * numbering is part of the format, as written by llama-quantize), for
 * `grok info` and messages.
 */
#include <stddef.h>

#include "grok.h"

static const char *const NAMES[] = {
    [0] = "F32",     [1] = "F16",     [2] = "Q4_0",       [3] = "Q4_1",    [7] = "Q8_0",     [8] = "Q5_0",
    [9] = "Q5_1",    [10] = "Q2_K",   [11] = "Q3_K_S",    [12] = "Q3_K_M", [13] = "Q3_K_L",  [14] = "Q4_K_S",
    [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M",    [18] = "Q6_K",   [19] = "IQ2_XXS", [20] = "IQ2_XS",
    [21] = "Q2_K_S", [22] = "IQ3_XS", [23] = "IQ3_XXS",   [24] = "IQ1_S",  [25] = "IQ4_NL",  [26] = "IQ3_S",
    [27] = "IQ3_M",  [28] = "IQ2_S",  [29] = "IQ2_M",     [30] = "IQ4_XS", [31] = "IQ1_M",   [32] = "BF16",
    [36] = "TQ1_0",  [37] = "TQ2_0",  [38] = "MXFP4_MOE", [39] = "NVFP4",  [40] = "Q1_0",    [41] = "Q2_0",
};

/* Numbers llama.cpp once wrote and has since removed. */
static const char *const REMOVED[] = {
    [4] = "Q4_1_SOME_F16", [5] = "Q4_2",      [6] = "Q4_3",
    [33] = "Q4_0_4_4",     [34] = "Q4_0_4_8", [35] = "Q4_0_8_8",
};

#define GUESSED 1024u /* LLAMA_FTYPE_GUESSED: not stored by the writer, guessed by a loader */

const char *grok_llama_ftype_name(uint32_t ftype, bool *removed) {
    if (removed) *removed = false;
    uint32_t v = ftype & ~GUESSED;
    if (v < sizeof NAMES / sizeof NAMES[0] && NAMES[v]) return NAMES[v];
    if (v < sizeof REMOVED / sizeof REMOVED[0] && REMOVED[v]) {
        if (removed) *removed = true;
        return REMOVED[v];
    }
    return NULL;
}
