/*
 * bench/dot_speed.c - the single-token decode kernels in isolation: per
 * type, 64 rows of 4096 random blocks (tests/qtypes_blocks.h; every byte
 * random, f16 scales finite) that stay in L2, one token's 8-bit
 * activations, and the best of R passes of the selected FAST kernels: the
 * row dot (dot_q8a) over every row and, where the type has one, the packed
 * dot of 8 rows (dot_x8), which grok uses for generation. Time is the
 * thread's CPU time, so a shared machine's descheduling does not count.
 * Prints weights per ns and the packed dot's GB/s of weight bytes: the
 * rate one core can decode; generation can reach the memory bandwidth only
 * where it is well above a core's share of it. bench/dot_speed.sh builds
 * it against libgrokcore.a and runs it with and without GROK_ISA caps.
 *
 *   dot_speed TYPES [R]     (TYPES: comma list of ggml names, as q2_K,iq3_xxs)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "qtypes_blocks.h"

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: dot_speed TYPES [ROUNDS]\n");
        return argc < 2 ? 2 : 0;
    }
    const int64_t cols = 4096, rows = 64;
    const int rounds = argc > 2 ? atoi(argv[2]) : 300;
    char *list = strdup(argv[1]);
    for (char *name = strtok(list, ","); name; name = strtok(NULL, ",")) {
        const int type = grok_type_from_name(name);
        const grok_type_traits *tr = type >= 0 ? grok_type_get_traits((grok_type)type) : NULL;
        const grok_dot_kernels *k = tr ? grok_dot_select((uint32_t)type, GROK_KERNELS_FAST) : NULL;
        if (!k || !k->dot_q8a || cols % tr->block_size) {
            fprintf(stderr, "dot_speed: %s: no 8-bit dot for this type\n", name);
            return 1;
        }
        const size_t rb = grok_type_row_size((grok_type)type, cols);
        uint8_t *w = malloc(rb * rows), *pk = malloc(rb * rows);
        qt_random_blocks((grok_type)type, rows * cols / tr->block_size, 1, true, w);
        grok_rng r = {2};
        float *x = malloc(sizeof *x * cols);
        for (int64_t j = 0; j < cols; j++) x[j] = grok_rng_normal(&r);
        block_q8a *xq = malloc(sizeof *xq * (cols / QKA));
        grok_quantize_q8a(x, xq, cols);
        const block_q8a *xs[1] = {xq};
        if (k->dot_x8)
            for (int64_t g = 0; g < rows / GROK_PACK_ROWS; g++)
                grok_pack_x8((grok_type)type, w + g * GROK_PACK_ROWS * rb, rb, cols,
                             pk + g * GROK_PACK_ROWS * rb);
        float out[64];
        float sink = 0; /* printed, so the dots are not optimized away */
        double best_row = 1e9, best_x8 = 1e9;
        for (int rep = 0; rep < rounds; rep++) {
            double t0 = cpu_now();
            for (int64_t i = 0; i < rows; i++) sink += k->dot_q8a(w + i * rb, xq, cols);
            const double dt = cpu_now() - t0;
            if (dt < best_row) best_row = dt;
            if (k->dot_x8) {
                t0 = cpu_now();
                for (int64_t g = 0; g < rows / GROK_PACK_ROWS; g++) {
                    k->dot_x8(pk + g * GROK_PACK_ROWS * rb, xs, 1, cols, out);
                    sink += out[0];
                }
                const double dp = cpu_now() - t0;
                if (dp < best_x8) best_x8 = dp;
            }
        }
        const double wts = (double)(rows * cols);
        printf("%-8s isa %-10s row dot %6.2f weights/ns", name, grok_kernels_isa(), wts / best_row * 1e-9);
        if (k->dot_x8)
            printf("  packed %6.2f weights/ns, %5.1f GB/s of weights (%.2f bits/weight)",
                   wts / best_x8 * 1e-9, (double)(rb * rows) / best_x8 * 1e-9,
                   8.0 * (double)rb / (double)cols);
        printf("  (sum %.3g)\n", (double)sink);
        free(w), free(pk), free(x), free(xq);
    }
    free(list);
    return 0;
}
