/* One core: a 3×3, stride-1, padding-1 convolution of C → C channels at H × H through chorus_winograd2d
   (Sources/CKernels/winograd_conv2d.c), best of REPS. From the repository root:
     clang -O2 -ISources/CKernels/include -ISources/CKernels scripts/bench/harness/winograd_conv.c \
       Sources/CKernels/winograd_conv2d.c Sources/CKernels/direct_conv1d.c -o /tmp/winograd_conv
     /tmp/winograd_conv C H [REPS [BLOCK_ROWS]]     # e.g. 32 128; BLOCK_ROWS 6 forces the AVX2 block
   To compare two versions of the kernel, build each and run them in turns. */
#include "chorus_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    int c = argc > 1 ? atoi(argv[1]) : 32, hw = argc > 2 ? atoi(argv[2]) : 128, reps = argc > 3 ? atoi(argv[3]) : 50;
    int R = argc > 4 ? atoi(argv[4]) : chorus_conv_block_rows_best();
    float *x = malloc(sizeof(float) * c * hw * hw), *w = malloc(sizeof(float) * c * c * 9), *out = malloc(sizeof(float) * c * hw * hw);
    for (int i = 0; i < c * hw * hw; i++) x[i] = (i % 17) * 0.1f - 0.8f;
    for (int i = 0; i < c * c * 9; i++) w[i] = (i % 13) * 0.01f - 0.06f;
    float *packed = malloc(sizeof(float) * chorus_winograd2d_packed_count(c, c, R));
    chorus_winograd2d_pack(w, c, c, R, packed);
    chorus_conv2d_args a = {x, c, hw, hw, 3, 3, 1, 1, packed, R, c, NULL, NULL, out, hw, hw};
    float *scratch = malloc(sizeof(float) * chorus_winograd2d_scratch_count(&a));
    int rows = (hw + 3) / 4;
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (chorus_winograd2d(&a, 0, rows, scratch)) { puts("FAIL"); return 1; }
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("%d ch @%d: %.3f ms (%.0f GF/s direct-equivalent)\n", c, hw, best * 1e3, 2.0 * c * c * 9 * hw * hw / best * 1e-9);
}
