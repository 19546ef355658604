#include "chorus_kernels.h"

/* The two passes of attention for a few queries over many keys (a decoder step's cross-attention over 1500
   audio frames), over the keys [j0, j1) that one core takes. Keys and values go by in blocks of 16 rows,
   which stay in L1 while every query and head passes over them, so each row comes from memory once.
   Heads are 16-lane multiples wide, up to 256 (Whisper's are 64). */

#if defined(__x86_64__)
#include <immintrin.h>

enum { MAX_HEAD_WIDTH = 256 };

int chorus_few_query_supported(int head_width) {
    return head_width > 0 && head_width % 16 == 0 && head_width <= MAX_HEAD_WIDTH && chorus_cpu_level() >= CHORUS_CPU_AVX512;
}

/* Lane i of the result is the sum of v[i]'s lanes: 16 horizontal sums in 45 instructions instead of 16
   reductions of 8 or more each. */
__attribute__((target("avx512f"), always_inline))
static inline __m512 sum16(const __m512 *v) {
    __m512 w[8], x[4];
    for (int i = 0; i < 8; i++)  /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        w[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++)  /* per 128-bit lane: the lane's sums of four vectors */
        x[i] = _mm512_add_ps(_mm512_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 z0 = _mm512_add_ps(_mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 z1 = _mm512_add_ps(_mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(z0, z1, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(z0, z1, _MM_SHUFFLE(3, 1, 3, 1)));
}

__attribute__((target("avx512f")))
int chorus_few_query_scores(const chorus_few_query_args *a, ptrdiff_t j0, ptrdiff_t j1) {
    if (!a || !a->q || !a->k || !a->scores || j0 < 0 || j1 > a->tk || j0 > j1 || a->heads < 1 || a->group < 1 ||
        a->heads % a->group != 0 || !chorus_few_query_supported(a->head_width))
        return -1;
    const int d = a->head_width, heads = a->heads, tq = a->tq;
    const __m512 alpha = _mm512_set1_ps(a->alpha);
    for (ptrdiff_t j = j0; j < j1; j += 16) {
        const int keys = j1 - j >= 16 ? 16 : (int)(j1 - j);
        for (int query = 0; query < tq; query++) {
            for (int h = 0; h < heads; h++) {
                const float *qh = a->q + (ptrdiff_t)query * a->width + (ptrdiff_t)h * d;
                const float *kh = a->k + j * a->key_width + (ptrdiff_t)(h / a->group) * d;
                __m512 acc[16];
                for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
                for (int c = 0; c < d; c += 16) {
                    const __m512 qv = _mm512_loadu_ps(qh + c);
                    for (int r = 0; r < keys; r++) acc[r] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(kh + r * a->key_width + c), acc[r]);
                }
                const __mmask16 live = keys == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << keys) - 1);
                float *row = a->scores + ((ptrdiff_t)query * heads + h) * a->tk + j;
                _mm512_mask_storeu_ps(row, live, _mm512_mul_ps(alpha, sum16(acc)));
            }
        }
    }
    return 0;
}

__attribute__((target("avx512f")))
int chorus_few_query_values(const chorus_few_query_args *a, ptrdiff_t j0, ptrdiff_t j1, float *out) {
    if (!a || !a->v || !a->scores || !out || j0 < 0 || j1 > a->tk || j0 > j1 || a->heads < 1 || a->group < 1 ||
        a->heads % a->group != 0 || !chorus_few_query_supported(a->head_width))
        return -1;
    const int d = a->head_width, heads = a->heads, tq = a->tq;
    for (ptrdiff_t j = j0; j < j1; j += 16) {
        const int keys = j1 - j >= 16 ? 16 : (int)(j1 - j);
        for (int query = 0; query < tq; query++) {
            for (int h = 0; h < heads; h++) {
                const float *p = a->scores + ((ptrdiff_t)query * heads + h) * a->tk + j;
                const float *vh = a->v + j * a->key_width + (ptrdiff_t)(h / a->group) * d;
                float *o = out + (ptrdiff_t)query * a->width + (ptrdiff_t)h * d;
                /* One accumulator per 16 columns of the head, so consecutive multiply-adds are independent. */
                __m512 acc[MAX_HEAD_WIDTH / 16];
                for (int c = 0; c < d / 16; c++) acc[c] = _mm512_loadu_ps(o + 16 * c);
                for (int r = 0; r < keys; r++) {
                    const __m512 weight = _mm512_set1_ps(p[r]);
                    for (int c = 0; c < d / 16; c++) acc[c] = _mm512_fmadd_ps(weight, _mm512_loadu_ps(vh + r * a->key_width + 16 * c), acc[c]);
                }
                for (int c = 0; c < d / 16; c++) _mm512_storeu_ps(o + 16 * c, acc[c]);
            }
        }
    }
    return 0;
}

#else
int chorus_few_query_supported(int head_width) { (void)head_width; return 0; }
int chorus_few_query_scores(const chorus_few_query_args *a, ptrdiff_t j0, ptrdiff_t j1) { (void)a; (void)j0; (void)j1; return -1; }
int chorus_few_query_values(const chorus_few_query_args *a, ptrdiff_t j0, ptrdiff_t j1, float *out) {
    (void)a; (void)j0; (void)j1; (void)out;
    return -1;
}
#endif
