#include "chorus_kernels.h"

/* SiLU (and CLIP's quick GELU, x·σ(1.702x)) and softmax's exponentials 16 lanes at a time on AVX-512 CPUs.
   The Swift loops (fastExp in Elementwise.swift) are compiled for AVX2, 8 lanes; in the terrain UNet SiLU
   and softmax were 12% of a step. The exponential is the same: x = n·ln2 + r, e^r by its degree-6 Taylor
   polynomial, 2^n into the exponent. */

#if defined(__x86_64__)
#include <immintrin.h>

int chorus_vector_math_avx512(void) { return chorus_cpu_level() >= CHORUS_CPU_AVX512; }

__attribute__((target("avx512f")))
static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.0f));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(1.442695041f), magic);
    const __m512 n = _mm512_sub_ps(shifted, magic);
    const __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x));
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000)),
                                                         _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

__attribute__((target("avx512f")))
int chorus_silu(float *x, ptrdiff_t n, float alpha) {
    if (!x || n < 0 || !chorus_vector_math_avx512()) return -1;
    const __m512 one = _mm512_set1_ps(1.0f), minus_alpha = _mm512_set1_ps(-alpha);
    for (ptrdiff_t i = 0; i < n; i += 16) {
        const __mmask16 live = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(live, x + i);
        const __m512 y = _mm512_div_ps(v, _mm512_add_ps(one, exp16(_mm512_mul_ps(minus_alpha, v))));
        _mm512_mask_storeu_ps(x + i, live, y);
    }
    return 0;
}

__attribute__((target("avx512f")))
int chorus_exp_shifted(float *p, ptrdiff_t n, float shift, float *sum) {
    if (!p || !sum || n < 0 || !chorus_vector_math_avx512()) return -1;
    const __m512 s = _mm512_set1_ps(shift);
    __m512 total = _mm512_setzero_ps();
    for (ptrdiff_t i = 0; i < n; i += 16) {
        const __mmask16 live = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 y = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, p + i), s));
        _mm512_mask_storeu_ps(p + i, live, y);
        total = _mm512_add_ps(total, _mm512_maskz_mov_ps(live, y));
    }
    *sum = _mm512_reduce_add_ps(total);
    return 0;
}

#else

int chorus_vector_math_avx512(void) { return 0; }
int chorus_silu(float *x, ptrdiff_t n, float alpha) { (void)x; (void)n; (void)alpha; return -1; }
int chorus_exp_shifted(float *p, ptrdiff_t n, float shift, float *sum) { (void)p; (void)n; (void)shift; (void)sum; return -1; }

#endif
