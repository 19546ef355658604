/* Internal to CKernels: the register block both convolution kernels are built from. */
#ifndef CHORUS_CONV_BLOCK_H
#define CHORUS_CONV_BLOCK_H

#include <stddef.h>
#include <string.h>

/* Each block keeps 6 output channels × 16 positions in 12 ymm accumulators; per (input channel, tap)
   it loads 16 inputs and broadcasts 6 weights: 8 loads for 12 FMAs, so the FMA units set the pace. */
enum { BLOCK_ROWS = 6, BLOCK_COLS = 16 };

#if defined(__x86_64__)
#include <immintrin.h>

/* rows < 6 or cols < 16 (the last channels, the end of a row) go through a local tile. */
__attribute__((target("avx2,fma")))
static void block(const float *x, const int *offsets, int n, const float *w, float *out, const float *residual,
                  const float *bias, ptrdiff_t os, int rows, int cols) {
    float tile[BLOCK_ROWS][BLOCK_COLS], start[BLOCK_ROWS][BLOCK_COLS];
    float *o[BLOCK_ROWS];
    const float *s[BLOCK_ROWS];
    int whole = rows == BLOCK_ROWS && cols == BLOCK_COLS;
    for (int r = 0; r < BLOCK_ROWS; r++) { o[r] = out + r * os; s[r] = residual ? residual + r * os : NULL; }
    if (!whole) {
        for (int r = 0; r < BLOCK_ROWS; r++) {
            for (int i = 0; i < BLOCK_COLS; i++) start[r][i] = residual && r < rows && i < cols ? residual[r * os + i] : 0;
            o[r] = tile[r];
            s[r] = start[r];
        }
    }
    float b[BLOCK_ROWS] = {0};
    if (bias) for (int r = 0; r < rows; r++) b[r] = bias[r];
#define START(r, v) (s[r] ? _mm256_add_ps(_mm256_loadu_ps(s[r] + 8 * v), _mm256_set1_ps(b[r])) : _mm256_set1_ps(b[r]))
    __m256 c00 = START(0, 0), c01 = START(0, 1);
    __m256 c10 = START(1, 0), c11 = START(1, 1);
    __m256 c20 = START(2, 0), c21 = START(2, 1);
    __m256 c30 = START(3, 0), c31 = START(3, 1);
    __m256 c40 = START(4, 0), c41 = START(4, 1);
    __m256 c50 = START(5, 0), c51 = START(5, 1);
#undef START
    for (int i = 0; i < n; i++, w += BLOCK_ROWS) {
        const float *xp = x + offsets[i];
        __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8), k;
        k = _mm256_broadcast_ss(w + 0); c00 = _mm256_fmadd_ps(k, x0, c00); c01 = _mm256_fmadd_ps(k, x1, c01);
        k = _mm256_broadcast_ss(w + 1); c10 = _mm256_fmadd_ps(k, x0, c10); c11 = _mm256_fmadd_ps(k, x1, c11);
        k = _mm256_broadcast_ss(w + 2); c20 = _mm256_fmadd_ps(k, x0, c20); c21 = _mm256_fmadd_ps(k, x1, c21);
        k = _mm256_broadcast_ss(w + 3); c30 = _mm256_fmadd_ps(k, x0, c30); c31 = _mm256_fmadd_ps(k, x1, c31);
        k = _mm256_broadcast_ss(w + 4); c40 = _mm256_fmadd_ps(k, x0, c40); c41 = _mm256_fmadd_ps(k, x1, c41);
        k = _mm256_broadcast_ss(w + 5); c50 = _mm256_fmadd_ps(k, x0, c50); c51 = _mm256_fmadd_ps(k, x1, c51);
    }
    _mm256_storeu_ps(o[0], c00); _mm256_storeu_ps(o[0] + 8, c01);
    _mm256_storeu_ps(o[1], c10); _mm256_storeu_ps(o[1] + 8, c11);
    _mm256_storeu_ps(o[2], c20); _mm256_storeu_ps(o[2] + 8, c21);
    _mm256_storeu_ps(o[3], c30); _mm256_storeu_ps(o[3] + 8, c31);
    _mm256_storeu_ps(o[4], c40); _mm256_storeu_ps(o[4] + 8, c41);
    _mm256_storeu_ps(o[5], c50); _mm256_storeu_ps(o[5] + 8, c51);
    if (!whole)
        for (int r = 0; r < rows; r++) memcpy(out + r * os, tile[r], sizeof(float) * (size_t)cols);
}

/* Input positions [from, from + count) of one row into dst: zero outside the row, leaky ReLU inside. */
__attribute__((target("avx2,fma")))
static void copy_row(float *dst, const float *row, ptrdiff_t length, ptrdiff_t from, ptrdiff_t count, int leaky, float slope) {
    ptrdiff_t i = 0;
    for (; i < count && from + i < 0; i++) dst[i] = 0;
    ptrdiff_t inside = length - from < count ? length - from : count;
    if (!leaky) {
        if (inside > i) memcpy(dst + i, row + from + i, sizeof(float) * (size_t)(inside - i));
        i = inside > i ? inside : i;
    } else {
        const __m256 zero = _mm256_setzero_ps(), k = _mm256_set1_ps(slope);
        for (; i + 8 <= inside; i += 8) {
            __m256 v = _mm256_loadu_ps(row + from + i);
            _mm256_storeu_ps(dst + i, _mm256_blendv_ps(v, _mm256_mul_ps(v, k), _mm256_cmp_ps(v, zero, _CMP_LT_OQ)));
        }
        for (; i < inside; i++) { float v = row[from + i]; dst[i] = v < 0 ? v * slope : v; }
    }
    for (; i < count; i++) dst[i] = 0;
}

/* dst[i] = leaky(src[i]) for i in [0, count). */
__attribute__((target("avx2,fma")))
static void leaky_copy(float *dst, const float *src, ptrdiff_t count, float slope) {
    copy_row(dst, src, count, 0, count, 1, slope);
}

#endif
#endif
