#include "chorus_kernels.h"

/* A weight kept as IEEE halves times a few float32 rows: a decoder step's products, which read every weight
   once per token and are bound by that read. The Swift loop (HalfMatrix.dot) is compiled for AVX2 and
   reduces each weight row on its own; here up to four weight rows stream side by side, widened 16 lanes at a time
   (vcvtph2ps zmm), and every input row (up to eight) reuses each loaded weight vector. */

#if defined(__x86_64__)
#include <immintrin.h>

int chorus_half_gemv_supported(void) { return chorus_cpu_level() >= CHORUS_CPU_AVX512; }

__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline))
static inline __m512 widen(const uint16_t *w, __mmask16 live) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(live, w));
}

/* R weight rows against B input rows (B ≤ 8): R·B accumulators, at most 16 (with B loaded inputs and the
   widened weight, within the 32 registers). Inlined with constant R and B, so they stay in registers. */
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline))
static inline void block(const uint16_t *w, ptrdiff_t columns, const float *x, int R, int B, int r,
                         ptrdiff_t rows, float *y) {
    __m512 acc[4][8];
    for (int i = 0; i < R; i++)
        for (int b = 0; b < B; b++) acc[i][b] = _mm512_setzero_ps();
    for (ptrdiff_t c = 0; c < columns; c += 16) {
        const __mmask16 live = columns - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (columns - c)) - 1);
        __m512 xs[8];
        for (int b = 0; b < B; b++) xs[b] = _mm512_maskz_loadu_ps(live, x + b * columns + c);
        for (int i = 0; i < R; i++) {
            const __m512 wide = widen(w + (r + i) * columns + c, live);
            for (int b = 0; b < B; b++) acc[i][b] = _mm512_fmadd_ps(wide, xs[b], acc[i][b]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int b = 0; b < B; b++) y[b * rows + r + i] = _mm512_reduce_add_ps(acc[i][b]);
}

/* Weight rows [r0, r1) against B input rows, R weight rows at a time: as many as 16 accumulators allow, so
   each weight vector is loaded and widened once for all B inputs (beam search's five rows in one pass). */
#define ROWS(R, B)                                                                                  \
    __attribute__((target("avx512f,avx512bw,avx512vl")))                                            \
    static void rows_##B(const uint16_t *w, ptrdiff_t rows, ptrdiff_t columns, const float *x,      \
                         ptrdiff_t r0, ptrdiff_t r1, float *y) {                                    \
        ptrdiff_t r = r0;                                                                           \
        for (; r + (R) <= r1; r += (R)) block(w, columns, x, (R), (B), (int)r, rows, y);            \
        for (; r < r1; r++) block(w, columns, x, 1, (B), (int)r, rows, y);                          \
    }
ROWS(4, 1)
ROWS(4, 2)
ROWS(4, 3)
ROWS(4, 4)
ROWS(3, 5)
ROWS(2, 6)
ROWS(2, 7)
ROWS(2, 8)

__attribute__((target("avx512f,avx512bw,avx512vl")))
int chorus_half_gemv(const uint16_t *w, ptrdiff_t rows, ptrdiff_t columns, const float *x, int batch,
                     ptrdiff_t r0, ptrdiff_t r1, float *y) {
    if (!w || !x || !y || rows < 0 || columns < 0 || batch < 1 || r0 < 0 || r1 > rows || r0 > r1 || rows > INT32_MAX)
        return -1;
    if (!chorus_half_gemv_supported()) return -1;
    /* Past eight input rows the weight is read again for each eight (HalfMatrix sends no more than eight). */
    for (int b = 0; b < batch; b += 8) {
        const float *xb = x + (ptrdiff_t)b * columns;
        float *yb = y + (ptrdiff_t)b * rows;
        switch (batch - b >= 8 ? 8 : batch - b) {
        case 1: rows_1(w, rows, columns, xb, r0, r1, yb); break;
        case 2: rows_2(w, rows, columns, xb, r0, r1, yb); break;
        case 3: rows_3(w, rows, columns, xb, r0, r1, yb); break;
        case 4: rows_4(w, rows, columns, xb, r0, r1, yb); break;
        case 5: rows_5(w, rows, columns, xb, r0, r1, yb); break;
        case 6: rows_6(w, rows, columns, xb, r0, r1, yb); break;
        case 7: rows_7(w, rows, columns, xb, r0, r1, yb); break;
        default: rows_8(w, rows, columns, xb, r0, r1, yb); break;
        }
    }
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
