/* Internal to CKernels: the register blocks every convolution kernel is built from. */
#ifndef CHORUS_CONV_BLOCK_H
#define CHORUS_CONV_BLOCK_H

#include <stddef.h>
#include <string.h>

/* Two block shapes, chosen by the caller as it packs its weights (chorus_conv_block_rows_best):
   - AVX2: 6 output channels × 16 positions in 12 ymm accumulators; per (input channel, tap) 2 loads and
     6 broadcasts for 12 FMAs.
   - AVX-512: 8 output channels × 32 positions in 16 zmm accumulators; 2 loads and 8 broadcasts for 16
     FMAs of twice the width. Eight rows also divide the 32, 64 and 128 channels vocoders have, where six
     left a third of the last block empty.
   Buffers are sized for the wider one. */
enum { AVX2_ROWS = 6, AVX512_ROWS = 8, BLOCK_ROWS_MAX = 8, BLOCK_COLS_MAX = 32 };

static inline int block_cols(int rows) { return rows == AVX512_ROWS ? 32 : 16; }

#if defined(__x86_64__)
#include <immintrin.h>

/* 1 when rows is a block shape this CPU runs. */
static inline int rows_supported(int rows) {
    if (rows == AVX2_ROWS) return chorus_cpu_level() >= CHORUS_CPU_AVX2;
    if (rows == AVX512_ROWS) return chorus_cpu_level() >= CHORUS_CPU_AVX512;
    return 0;
}


/* rows < 6 or cols < 16 (the last channels, the end of a row) go through a local tile. */
__attribute__((target("avx2,fma")))
static void block_avx2(const float *x, const int *offsets, int n, const float *w, float *out, const float *residual,
                  const float *bias, ptrdiff_t os, int rows, int cols) {
    float tile[AVX2_ROWS][16], start[AVX2_ROWS][16];
    float *o[AVX2_ROWS];
    const float *s[AVX2_ROWS];
    int whole = rows == AVX2_ROWS && cols == 16;
    for (int r = 0; r < AVX2_ROWS; r++) { o[r] = out + r * os; s[r] = residual ? residual + r * os : NULL; }
    if (!whole) {
        for (int r = 0; r < AVX2_ROWS; r++) {
            for (int i = 0; i < 16; i++) start[r][i] = residual && r < rows && i < cols ? residual[r * os + i] : 0;
            o[r] = tile[r];
            s[r] = start[r];
        }
    }
    float b[AVX2_ROWS] = {0};
    if (bias) for (int r = 0; r < rows; r++) b[r] = bias[r];
#define START(r, v) (s[r] ? _mm256_add_ps(_mm256_loadu_ps(s[r] + 8 * v), _mm256_set1_ps(b[r])) : _mm256_set1_ps(b[r]))
    __m256 c00 = START(0, 0), c01 = START(0, 1);
    __m256 c10 = START(1, 0), c11 = START(1, 1);
    __m256 c20 = START(2, 0), c21 = START(2, 1);
    __m256 c30 = START(3, 0), c31 = START(3, 1);
    __m256 c40 = START(4, 0), c41 = START(4, 1);
    __m256 c50 = START(5, 0), c51 = START(5, 1);
#undef START
    for (int i = 0; i < n; i++, w += AVX2_ROWS) {
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

/* The same with 8 rows × 32 positions. */
__attribute__((target("avx512f,fma")))
static void block_avx512(const float *x, const int *offsets, int n, const float *w, float *out, const float *residual,
                         const float *bias, ptrdiff_t os, int rows, int cols) {
    enum { R = AVX512_ROWS, C = 32 };
    float tile[R][C], start[R][C];
    float *o[R];
    const float *s[R];
    int whole = rows == R && cols == C;
    for (int r = 0; r < R; r++) { o[r] = out + r * os; s[r] = residual ? residual + r * os : NULL; }
    if (!whole) {
        for (int r = 0; r < R; r++) {
            for (int i = 0; i < C; i++) start[r][i] = residual && r < rows && i < cols ? residual[r * os + i] : 0;
            o[r] = tile[r];
            s[r] = start[r];
        }
    }
    float b[R] = {0};
    if (bias) for (int r = 0; r < rows; r++) b[r] = bias[r];
#define START(r, v) (s[r] ? _mm512_add_ps(_mm512_loadu_ps(s[r] + 16 * v), _mm512_set1_ps(b[r])) : _mm512_set1_ps(b[r]))
    __m512 c00 = START(0, 0), c01 = START(0, 1);
    __m512 c10 = START(1, 0), c11 = START(1, 1);
    __m512 c20 = START(2, 0), c21 = START(2, 1);
    __m512 c30 = START(3, 0), c31 = START(3, 1);
    __m512 c40 = START(4, 0), c41 = START(4, 1);
    __m512 c50 = START(5, 0), c51 = START(5, 1);
    __m512 c60 = START(6, 0), c61 = START(6, 1);
    __m512 c70 = START(7, 0), c71 = START(7, 1);
#undef START
    for (int i = 0; i < n; i++, w += R) {
        const float *xp = x + offsets[i];
        __m512 x0 = _mm512_loadu_ps(xp), x1 = _mm512_loadu_ps(xp + 16), k;
        k = _mm512_set1_ps(w[0]); c00 = _mm512_fmadd_ps(k, x0, c00); c01 = _mm512_fmadd_ps(k, x1, c01);
        k = _mm512_set1_ps(w[1]); c10 = _mm512_fmadd_ps(k, x0, c10); c11 = _mm512_fmadd_ps(k, x1, c11);
        k = _mm512_set1_ps(w[2]); c20 = _mm512_fmadd_ps(k, x0, c20); c21 = _mm512_fmadd_ps(k, x1, c21);
        k = _mm512_set1_ps(w[3]); c30 = _mm512_fmadd_ps(k, x0, c30); c31 = _mm512_fmadd_ps(k, x1, c31);
        k = _mm512_set1_ps(w[4]); c40 = _mm512_fmadd_ps(k, x0, c40); c41 = _mm512_fmadd_ps(k, x1, c41);
        k = _mm512_set1_ps(w[5]); c50 = _mm512_fmadd_ps(k, x0, c50); c51 = _mm512_fmadd_ps(k, x1, c51);
        k = _mm512_set1_ps(w[6]); c60 = _mm512_fmadd_ps(k, x0, c60); c61 = _mm512_fmadd_ps(k, x1, c61);
        k = _mm512_set1_ps(w[7]); c70 = _mm512_fmadd_ps(k, x0, c70); c71 = _mm512_fmadd_ps(k, x1, c71);
    }
    _mm512_storeu_ps(o[0], c00); _mm512_storeu_ps(o[0] + 16, c01);
    _mm512_storeu_ps(o[1], c10); _mm512_storeu_ps(o[1] + 16, c11);
    _mm512_storeu_ps(o[2], c20); _mm512_storeu_ps(o[2] + 16, c21);
    _mm512_storeu_ps(o[3], c30); _mm512_storeu_ps(o[3] + 16, c31);
    _mm512_storeu_ps(o[4], c40); _mm512_storeu_ps(o[4] + 16, c41);
    _mm512_storeu_ps(o[5], c50); _mm512_storeu_ps(o[5] + 16, c51);
    _mm512_storeu_ps(o[6], c60); _mm512_storeu_ps(o[6] + 16, c61);
    _mm512_storeu_ps(o[7], c70); _mm512_storeu_ps(o[7] + 16, c71);
    if (!whole)
        for (int r = 0; r < rows; r++) memcpy(out + r * os, tile[r], sizeof(float) * (size_t)cols);
}

/* One block of the shape `geometry` (AVX2_ROWS or AVX512_ROWS) names. */
static inline void block(int geometry, const float *x, const int *offsets, int n, const float *w, float *out,
                         const float *residual, const float *bias, ptrdiff_t os, int rows, int cols) {
    if (geometry == AVX512_ROWS) block_avx512(x, offsets, n, w, out, residual, bias, os, rows, cols);
    else block_avx2(x, offsets, n, w, out, residual, bias, os, rows, cols);
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

#else

static inline int rows_supported(int rows) { (void)rows; return 0; }

#endif
#endif
