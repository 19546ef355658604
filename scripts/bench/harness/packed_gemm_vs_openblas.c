/* One core: the packed linear product (Sources/CKernels/packed_gemm.c) against OpenBLAS's sgemm linear
   (bias copied in, beta 1) at CLIP's shapes, each with the caches flushed first; best of 7.
   From the repository root:
     clang -O2 -ISources/CKernels/include scripts/bench/harness/packed_gemm_vs_openblas.c -o /tmp/packed_gemm -lopenblas -lm
     /tmp/packed_gemm 32     # AVX-512 12 × 32 block; 16 for the AVX2 6 × 16 block
   OPENBLAS_CORETYPE=Haswell compares against OpenBLAS's AVX2 kernel. */
#include "../../../Sources/CKernels/packed_gemm.c"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <math.h>
#include <cblas.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static char flushbuf[64 << 20];
static void flush(void) { for (size_t i = 0; i < sizeof flushbuf; i += 64) flushbuf[i]++; }
int main(int argc, char **argv) {
    openblas_set_num_threads(1);
    int nr = argc > 1 ? atoi(argv[1]) : 32;
    int shapes[][3] = {{400, 2304, 768}, {400, 768, 768}, {400, 3072, 768}, {400, 768, 3072}, {4096, 320, 320}, {77, 768, 768}, {1600, 768, 3072}, {1600, 3072, 768}};
    for (int s = 0; s < 8; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * m * k), *w = malloc(sizeof(float) * n * k), *bias = malloc(sizeof(float) * n);
        float *c1 = malloc(sizeof(float) * m * n), *c2 = malloc(sizeof(float) * m * n);
        for (int i = 0; i < m * k; i++) a[i] = (rand() / (float)RAND_MAX) - 0.5f;
        for (int i = 0; i < n * k; i++) w[i] = (rand() / (float)RAND_MAX) - 0.5f;
        for (int i = 0; i < n; i++) bias[i] = i;
        float *pb = malloc(sizeof(float) * chorus_gemm_packed_count(n, k, nr));
        chorus_gemm_pack(w, bias, n, k, nr, pb);
        float *px = malloc(sizeof(float) * chorus_gemm_packed_x_count(m, k, nr));
        chorus_gemm_args g = {px, pb, nr, m, n, k, 1, 0, c2, n};
        int mr = chorus_gemm_block_rows(nr), panels = (n + nr - 1) / nr;
        double best1 = 1e9, best2 = 1e9;
        for (int rep = 0; rep < 7; rep++) {
            flush();
            double t0 = now();
            for (int r = 0; r < m; r++) memcpy(c1 + r * n, bias, n * 4);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, w, k, 1, c1, n);
            double t1 = now();
            flush();
            double t2 = now();
            if (chorus_gemm_pack_x(a, k, m, k, nr, 0, (m + mr - 1) / mr, px) || chorus_gemm(&g, 0, panels)) { puts("FAIL"); return 1; }
            double t3 = now();
            if (t1 - t0 < best1) best1 = t1 - t0;
            if (t3 - t2 < best2) best2 = t3 - t2;
        }
        double err = 0;
        for (int i = 0; i < m * n; i++) err = fmax(err, fabs(c1[i] - c2[i]) / (1 + fabs(c1[i])));
        double fl = 2.0 * m * n * k;
        printf("%5d %5d %5d  openblas %6.1f GF/s  mine %6.1f GF/s  ratio %.2f  relerr %.2g\n", m, n, k, fl / best1 * 1e-9, fl / best2 * 1e-9, best1 / best2, err);
    }
}
