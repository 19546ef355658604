#include "chorus_kernels.h"

/* A weight kept as IEEE halves times a few float32 rows: a decoder step's products, which read every weight
   once per token and are bound by that read. The Swift loop (HalfMatrix.dot) is compiled for AVX2 and
   reduces each weight row on its own; here four weight rows stream side by side, widened 16 lanes at a time
   (vcvtph2ps zmm), and every input row reuses each loaded weight vector. */

#if defined(__x86_64__)
#include <immintrin.h>

int chorus_half_gemv_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline))
static inline __m512 widen(const uint16_t *w, __mmask16 live) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(live, w));
}

/* R weight rows (R ≤ 4) against B input rows (B ≤ 4): R·B accumulators. Inlined with constant R and B, so
   the accumulators stay in registers. */
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline))
static inline void block(const uint16_t *w, ptrdiff_t columns, const float *x, int R, int B, int r,
                         ptrdiff_t rows, float *y) {
    __m512 acc[4][4];
    for (int i = 0; i < R; i++)
        for (int b = 0; b < B; b++) acc[i][b] = _mm512_setzero_ps();
    for (ptrdiff_t c = 0; c < columns; c += 16) {
        const __mmask16 live = columns - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (columns - c)) - 1);
        __m512 xs[4];
        for (int b = 0; b < B; b++) xs[b] = _mm512_maskz_loadu_ps(live, x + b * columns + c);
        for (int i = 0; i < R; i++) {
            const __m512 wide = widen(w + (r + i) * columns + c, live);
            for (int b = 0; b < B; b++) acc[i][b] = _mm512_fmadd_ps(wide, xs[b], acc[i][b]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int b = 0; b < B; b++) y[b * rows + r + i] = _mm512_reduce_add_ps(acc[i][b]);
}

/* One group of R weight rows against every input row, four at a time: the group (R·columns halves) stays
   in L1 while the input rows pass over it, so the weight comes from memory once whatever the batch. */
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline))
static inline void group(const uint16_t *w, ptrdiff_t rows, ptrdiff_t columns, const float *x, int batch,
                         int R, int r, float *y) {
    for (int b = 0; b < batch; b += 4) {
        const float *xb = x + (ptrdiff_t)b * columns;
        float *yb = y + (ptrdiff_t)b * rows;
        switch (batch - b >= 4 ? 4 : batch - b) {
        case 1: block(w, columns, xb, R, 1, r, rows, yb); break;
        case 2: block(w, columns, xb, R, 2, r, rows, yb); break;
        case 3: block(w, columns, xb, R, 3, r, rows, yb); break;
        default: block(w, columns, xb, R, 4, r, rows, yb); break;
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl")))
int chorus_half_gemv(const uint16_t *w, ptrdiff_t rows, ptrdiff_t columns, const float *x, int batch,
                     ptrdiff_t r0, ptrdiff_t r1, float *y) {
    if (!w || !x || !y || rows < 0 || columns < 0 || batch < 1 || r0 < 0 || r1 > rows || r0 > r1 || rows > INT32_MAX)
        return -1;
    if (!chorus_half_gemv_supported()) return -1;
    ptrdiff_t r = r0;
    for (; r + 4 <= r1; r += 4) group(w, rows, columns, x, batch, 4, (int)r, y);
    for (; r < r1; r++) group(w, rows, columns, x, batch, 1, (int)r, y);
    return 0;
}

#else
int chorus_half_gemv_supported(void) { return 0; }
int chorus_half_gemv(const uint16_t *w, ptrdiff_t rows, ptrdiff_t columns, const float *x, int batch,
                     ptrdiff_t r0, ptrdiff_t r1, float *y) {
    (void)w; (void)rows; (void)columns; (void)x; (void)batch; (void)r0; (void)r1; (void)y;
    return -1;
}
#endif
