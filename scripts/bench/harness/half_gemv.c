/* The decoder's half-precision product, y = W·x for W [rows, columns] as IEEE halves: chorus_half_gemv (AVX-512,
   Sources/CKernels/half_gemv.c) against an 8-lane loop shaped like the Swift one it replaced on AVX-512 CPUs
   (HalfMatrix.dot: one weight row and one reduction at a time), best of 30 runs on the given threads. Whisper's
   vocabulary projection is 51864 × 512 (base) or 51864 × 384 (tiny.en); beam search sends 5 input rows.
     clang -O2 -ISources/CKernels/include scripts/bench/harness/half_gemv.c Sources/CKernels/half_gemv.c \
       -o /tmp/half_gemv -lpthread
     /tmp/half_gemv 51865 512 1 2      (rows, columns, input rows, threads) */
#include "chorus_kernels.h"
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static uint16_t *w; static float *x, *y; static long rows, cols; static int batch, mode, threads;
__attribute__((target("avx2,fma,f16c")))
static void eight_lanes(long r0, long r1) {
  for (long r = r0; r < r1; r++) for (int b = 0; b < batch; b++) {
    __m256 a = _mm256_setzero_ps(), m = a; long i = 0;
    for (; i + 16 <= cols; i += 16) {
      a = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const void *)(w + r * cols + i))), _mm256_loadu_ps(x + b * cols + i), a);
      m = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const void *)(w + r * cols + i + 8))), _mm256_loadu_ps(x + b * cols + i + 8), m);
    }
    float t[8]; _mm256_storeu_ps(t, _mm256_add_ps(a, m)); float s = 0; for (int j = 0; j < 8; j++) s += t[j];
    for (; i < cols; i++) s += _cvtsh_ss(w[r * cols + i]) * x[b * cols + i];
    y[b * rows + r] = s;
  }
}
static void *run(void *arg) {
  long t = (long)arg, span = (rows + threads - 1) / threads, r0 = t * span, r1 = r0 + span < rows ? r0 + span : rows;
  if (mode == 0) eight_lanes(r0, r1); else chorus_half_gemv(w, rows, cols, x, batch, r0, r1, y);
  return 0;
}
int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: half_gemv ROWS COLUMNS INPUT_ROWS THREADS\n"); return 2; }
  rows = atol(argv[1]); cols = atol(argv[2]); batch = atoi(argv[3]); threads = atoi(argv[4]);
  if (threads < 1 || threads > 8 || batch < 1 || !chorus_half_gemv_supported()) { fprintf(stderr, "1-8 threads, an AVX-512 CPU\n"); return 2; }
  w = aligned_alloc(64, rows * cols * 2 + 64); x = aligned_alloc(64, 4 * cols * batch + 64); y = aligned_alloc(64, 4 * rows * batch + 64);
  for (long i = 0; i < rows * cols; i++) w[i] = 0x3c00 ^ (i % 7);
  for (long i = 0; i < cols * batch; i++) x[i] = (i % 5) * 0.1f;
  for (mode = 0; mode < 2; mode++) {
    double best = 1e9, check = 0;
    for (int rep = 0; rep < 30; rep++) {
      pthread_t th[8]; double t0 = now();
      for (long i = 0; i < threads; i++) pthread_create(&th[i], 0, run, (void *)i);
      for (int i = 0; i < threads; i++) pthread_join(th[i], 0);
      if (now() - t0 < best) best = now() - t0;
    }
    for (long i = 0; i < rows * batch; i++) check += y[i];
    printf("%-16s %ld x %ld, %d input rows, %d threads: %.3f ms, %.1f GB/s of halves (checksum %.6g)\n",
           mode ? "chorus_half_gemv" : "8-lane loop", rows, cols, batch, threads, best * 1e3, rows * cols * 2 / best / 1e9, check);
  }
}
