#include "chorus_kernels.h"

#include <math.h>
#include <string.h>

/* y = x · Wᵀ (+ bias) in int8 with int32 sums (AVX-512 VNNI's vpdpbusd: 64 byte products a cycle against
   float32's 16 FMAs), for linears whose weight was quantized at load and whose input is quantized on every
   call, both with one scale per row and per 128 values, so an outlier in one part of a row does not
   flatten the rest (one scale per whole weight row, CTranslate2's, moved Whisper base's p(en) by 0.003;
   per 128 values, by 0.001, with float32's words on the reference clips).

   vpdpbusd multiplies unsigned bytes by signed ones. The weight is stored unsigned, w + 128, and the
   activations signed, broadcast straight from memory; Σ (w + 128)·x = Σ w·x + 128·Σ x, and the sums of x
   per block are kept with its codes to take the second term back.

   Register block: 12 rows of x against a panel of 32 weight rows (two zmm of int32 sums each), over one
   block of 128 values; then each sum, less its correction, is scaled by both blocks' scales into a float
   tile, which takes every block of the depth before the bias finishes it. */

enum { NR = 32, MR = 12, KB = 128, GROUPS = KB / 4 };

static inline int depth_padded(int k) { return (k + KB - 1) / KB * KB; }

size_t chorus_i8gemm_packed_bytes(int n, int k) {
    if (n <= 0 || k <= 0) return 0;
    return (size_t)((n + NR - 1) / NR) * (size_t)depth_padded(k) * NR;
}

size_t chorus_i8gemm_packed_x_bytes(int m, int k) {
    if (m <= 0 || k <= 0) return 0;
    return (size_t)((m + MR - 1) / MR) * (size_t)depth_padded(k) * MR;
}

size_t chorus_i8gemm_x_scale_count(int m, int k) {
    if (m <= 0 || k <= 0) return 0;
    return (size_t)((m + MR - 1) / MR) * (size_t)(depth_padded(k) / KB) * MR;
}

size_t chorus_i8gemm_scale_count(int n, int k) {
    if (n <= 0 || k <= 0) return 0;
    return (size_t)((n + NR - 1) / NR) * NR * (size_t)(depth_padded(k) / KB);
}

int chorus_i8gemm_quantize_weight(const float *w, int n, int k, int8_t *codes, float *inverse_scale) {
    if (!w || !codes || !inverse_scale || n <= 0 || k <= 0) return -1;
    const int blocks = depth_padded(k) / KB;
    for (int r = 0; r < n; r++)
        for (int block = 0; block < blocks; block++) {
            const float *part = w + (size_t)r * k + block * KB;
            const int count = k - block * KB < KB ? k - block * KB : KB;
            float top = 0;
            for (int i = 0; i < count; i++) {
                if (!isfinite(part[i])) return -1;
                top = fmaxf(top, fabsf(part[i]));
            }
            const float scale = top > 0 ? 127 / top : 1;
            for (int i = 0; i < count; i++) codes[(size_t)r * k + block * KB + i] = (int8_t)nearbyintf(part[i] * scale);
            inverse_scale[(size_t)r * blocks + block] = 1 / scale;
        }
    return 0;
}

int chorus_i8gemm_pack_scales(const float *inverse_scale, int n, int k, float *packed_scales) {
    if (!inverse_scale || !packed_scales || n <= 0 || k <= 0) return -1;
    const int blocks = depth_padded(k) / KB, panels = (n + NR - 1) / NR;
    for (int p = 0; p < panels; p++)
        for (int block = 0; block < blocks; block++)
            for (int j = 0; j < NR; j++) {
                const int r = p * NR + j;
                packed_scales[((size_t)p * blocks + block) * NR + j] = r < n ? inverse_scale[(size_t)r * blocks + block] : 0;
            }
    return 0;
}

int chorus_i8gemm_pack(const int8_t *codes, int n, int k, uint8_t *packed) {
    if (!codes || !packed || n <= 0 || k <= 0) return -1;
    const int kp = depth_padded(k), panels = (n + NR - 1) / NR;
    /* panel p, group g of 4 values, column j: 4 bytes at ((p · kp/4 + g) · 32 + j) · 4 */
    for (int p = 0; p < panels; p++)
        for (int g = 0; g < kp / 4; g++)
            for (int j = 0; j < NR; j++)
                for (int q = 0; q < 4; q++) {
                    const int r = p * NR + j, i = 4 * g + q;
                    const int8_t code = r < n && i < k ? codes[(size_t)r * k + i] : 0;
                    packed[(((size_t)p * (kp / 4) + g) * NR + j) * 4 + q] = (uint8_t)(code + 128);
                }
    return 0;
}

#if defined(__x86_64__)
#include <immintrin.h>

int chorus_i8gemm_supported(void) { return chorus_cpu_level() >= CHORUS_CPU_AVX512_VNNI; }

/* One row's 128-value block (count ≤ 128 values; the rest are codes 0): codes into the row block's layout
   (4 bytes of a row every 48), and its inverse scale and code sum. -1 for a value that is not finite. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static int quantize_block(const float *x, int count, int8_t *codes, float *inverse_scale, int32_t *sum) {
    __m512 v[8];
    __m512 top = _mm512_setzero_ps();
    __mmask16 nan = 0;  /* max_ps drops a NaN in its first operand: they are looked for on their own */
    for (int q = 0; q < 8; q++) {
        const int left = count - 16 * q;
        const __mmask16 live = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
        v[q] = _mm512_maskz_loadu_ps(live, x + 16 * q);
        top = _mm512_max_ps(top, _mm512_abs_ps(v[q]));
        nan |= _mm512_cmp_ps_mask(v[q], v[q], _CMP_UNORD_Q);
    }
    const float most = _mm512_reduce_max_ps(top);
    if (nan || !isfinite(most)) return -1;
    const float scale = most > 0 ? 127 / most : 0;
    const __m512 times = _mm512_set1_ps(scale);
    __m512i total = _mm512_setzero_si512();
    for (int q = 0; q < 8; q++) {
        const __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(v[q], times));  /* round to nearest even */
        total = _mm512_add_epi32(total, c);
        const __m128i bytes = _mm512_cvtepi32_epi8(c);
        int32_t lanes[4];
        _mm_storeu_si128((__m128i *)lanes, bytes);
        for (int group = 0; group < 4; group++) memcpy(codes + (4 * q + group) * MR * 4, &lanes[group], 4);
    }
    *inverse_scale = most > 0 ? 1 / scale : 0;
    *sum = _mm512_reduce_add_epi32(total);
    return 0;
}

int chorus_i8gemm_quantize_x(const float *x, ptrdiff_t ldx, int m, int k, int b0, int b1, int8_t *packed_x,
                             float *inverse_scale, int32_t *sums) {
    const int row_blocks = m > 0 ? (m + MR - 1) / MR : 0;
    if (!x || !packed_x || !inverse_scale || !sums || m <= 0 || k <= 0 || ldx < k || b0 < 0 || b1 > row_blocks ||
        b0 > b1 || !chorus_i8gemm_supported())
        return -1;
    const int kp = depth_padded(k), blocks = kp / KB;
    /* row block b, group g, row r: 4 bytes at ((b · kp/4 + g) · 12 + r) · 4; scales and sums at (b · blocks + block) · 12 + r */
    for (int b = b0; b < b1; b++) {
        int8_t *xb = packed_x + (size_t)b * kp * MR;
        float *scales = inverse_scale + (size_t)b * blocks * MR;
        int32_t *sum = sums + (size_t)b * blocks * MR;
        for (int r = 0; r < MR; r++) {
            const int row = b * MR + r;
            for (int block = 0; block < blocks; block++) {
                const int count = row < m ? (k - block * KB < KB ? k - block * KB : KB) : 0;
                if (quantize_block(x + (size_t)(row < m ? row : 0) * ldx + block * KB, count,
                                   xb + ((size_t)block * GROUPS * MR + r) * 4, &scales[block * MR + r], &sum[block * MR + r]) != 0)
                    return -1;
            }
        }
    }
    return 0;
}

/* One row block of x (R rows) against one weight panel, the whole depth: tile[r][j] = Σ over blocks of
   x scale · (sum − 128 · Σ x codes). */
#define DEFINE_TILE(R)                                                                                        \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))                                          \
    static void tile_##R(const int8_t *xb, const float *xs, const int32_t *xsum, const uint8_t *panel,        \
                         const float *ws, int blocks, float tile[MR][NR]) {                                   \
        __m512 out[R][2];                                                                                     \
        for (int r = 0; r < (R); r++) out[r][0] = out[r][1] = _mm512_setzero_ps();                            \
        for (int block = 0; block < blocks; block++) {                                                        \
            __m512i acc[R][2];                                                                                \
            for (int r = 0; r < (R); r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();                     \
            const int8_t *a = xb + (size_t)block * GROUPS * MR * 4;                                           \
            const uint8_t *b = panel + (size_t)block * GROUPS * NR * 4;                                       \
            for (int g = 0; g < GROUPS; g++, a += MR * 4, b += NR * 4) {                                      \
                const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);                    \
                _Pragma("clang loop unroll(full)")                                                            \
                for (int r = 0; r < (R); r++) {                                                               \
                    int32_t four;                                                                             \
                    memcpy(&four, a + 4 * r, 4);                                                              \
                    const __m512i av = _mm512_set1_epi32(four);                                               \
                    acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b0, av);                                       \
                    acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b1, av);                                       \
                }                                                                                             \
            }                                                                                                 \
            const __m512 w0 = _mm512_loadu_ps(ws + block * NR), w1 = _mm512_loadu_ps(ws + block * NR + 16);  \
            for (int r = 0; r < (R); r++) {                                                                   \
                const __m512i take = _mm512_set1_epi32(128 * xsum[block * MR + r]);                           \
                const __m512 scale = _mm512_set1_ps(xs[block * MR + r]);                                      \
                out[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][0], take)),            \
                                            _mm512_mul_ps(scale, w0), out[r][0]);                             \
                out[r][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][1], take)),            \
                                            _mm512_mul_ps(scale, w1), out[r][1]);                             \
            }                                                                                                 \
        }                                                                                                     \
        for (int r = 0; r < (R); r++) {                                                                       \
            _mm512_storeu_ps(tile[r], out[r][0]);                                                             \
            _mm512_storeu_ps(tile[r] + 16, out[r][1]);                                                        \
        }                                                                                                     \
    }

DEFINE_TILE(12)
DEFINE_TILE(4)
DEFINE_TILE(1)

/* Row blocks of 96 rows (8 register blocks: their codes, 96 · depth bytes, stay in L2) go over the panels
   [p0, p1) in turn, so each panel is read once per 96 rows, and a decoded token reads each weight once. */
int chorus_i8gemm(const chorus_i8gemm_args *g, int p0, int p1) {
    if (!g || !g->packed_x || !g->x_scale || !g->x_sums || !g->packed || !g->w_scale || !g->y || g->m <= 0 ||
        g->n <= 0 || g->k <= 0 || g->ldy < g->n || p0 < 0 || p1 > (g->n + NR - 1) / NR || p0 > p1 ||
        !chorus_i8gemm_supported())
        return -1;
    const int kp = depth_padded(g->k), blocks = kp / KB, row_blocks = (g->m + MR - 1) / MR;
    enum { CHUNK = 8 };
    float tile[MR][NR];
    for (int c0 = 0; c0 < row_blocks; c0 += CHUNK) {
        const int c1 = c0 + CHUNK < row_blocks ? c0 + CHUNK : row_blocks;
        for (int p = p0; p < p1; p++) {
            const uint8_t *panel = g->packed + (size_t)p * kp * NR;
            const float *ws = g->w_scale + (size_t)p * blocks * NR;
            const int n0 = p * NR, cols = g->n - n0 < NR ? g->n - n0 : NR;
            for (int rb = c0; rb < c1; rb++) {
                const int rows = g->m - rb * MR < MR ? g->m - rb * MR : MR;
                const int8_t *xb = g->packed_x + (size_t)rb * kp * MR;
                const float *xs = g->x_scale + (size_t)rb * blocks * MR;
                const int32_t *xsum = g->x_sums + (size_t)rb * blocks * MR;
                if (rows > 4) tile_12(xb, xs, xsum, panel, ws, blocks, tile);
                else if (rows > 1) tile_4(xb, xs, xsum, panel, ws, blocks, tile);
                else tile_1(xb, xs, xsum, panel, ws, blocks, tile);
                for (int r = 0; r < rows; r++) {
                    float *y = g->y + (size_t)(rb * MR + r) * g->ldy + n0;
                    for (int j = 0; j < cols; j++) y[j] = tile[r][j] + (g->bias ? g->bias[n0 + j] : 0);
                }
            }
        }
    }
    return 0;
}
#else
int chorus_i8gemm_supported(void) { return 0; }
int chorus_i8gemm_quantize_x(const float *x, ptrdiff_t ldx, int m, int k, int b0, int b1, int8_t *packed_x,
                             float *inverse_scale, int32_t *sums) {
    (void)x; (void)ldx; (void)m; (void)k; (void)b0; (void)b1; (void)packed_x; (void)inverse_scale; (void)sums;
    return -1;
}
int chorus_i8gemm(const chorus_i8gemm_args *g, int p0, int p1) { (void)g; (void)p0; (void)p1; return -1; }
#endif
