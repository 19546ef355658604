#include "chorus_kernels.h"

#include <string.h>

/* A linear layer's product y = x · Wᵀ (+ bias) with W packed once, at load, into the panels the register
   block reads. sgemm packs both operands on every call; for a transformer's linears that is the whole
   weight each time (OpenBLAS's weight copy was 14% of a ViT-B/32 forward), and when the rows are split
   across cores, each core packs it again. Here only the activations are packed, a block of rows at a time.

   The register block is a BLIS-style outer product: MR rows of x broadcast against NR weight columns held
   in vector registers, over a depth of KC. AVX-512: 12 × 32 in 24 zmm accumulators; AVX2: 6 × 16 in 12 ymm.
   Loop order: row block, weight panel, depth block, register block (see chorus_gemm). */

/* Depth per pass: a 12 × 32 block's panel is then 32 KiB (L1); 128 and 384 measured no better. */
enum { KC = 256 };

static int mr_for(int nr) { return nr == 32 ? 12 : 6; }

#if defined(__x86_64__)
#include <immintrin.h>

static int nr_supported(int nr) {
    if (nr == 16) return chorus_cpu_level() >= CHORUS_CPU_AVX2;
    if (nr == 32) return chorus_cpu_level() >= CHORUS_CPU_AVX512;
    return 0;
}

int chorus_gemm_columns_best(void) {
    if (nr_supported(32)) return 32;
    if (nr_supported(16)) return 16;
    return 0;
}

/* c[0..rows, 0..cols] = (start) + a-panel · b-panel, where start is c itself when accumulate, else the bias
   (per column, padded to whole panels by chorus_gemm_pack) or zero. Partial blocks go through a local tile.
   One definition for both blocks: R rows of a broadcast against the two vectors of W floats b holds a depth. */
#define DEFINE_BLOCK(NAME, TARGET, VEC, R, W, LOAD, STORE, SET1, ZERO, FMA)                                   \
    __attribute__((target(TARGET)))                                                                          \
    static void NAME(int kc, const float *a, const float *b, float *c, ptrdiff_t ldc, int accumulate,        \
                     const float *bias, int rows, int cols) {                                                \
        enum { C = 2 * (W) };                                                                                 \
        VEC acc[R][2];                                                                                        \
        float tile[R][C];                                                                                     \
        const int whole = rows == (R) && cols == C;                                                           \
        if (accumulate) {                                                                                     \
            for (int r = 0; r < (R); r++) {                                                                   \
                const float *from = c + r * ldc;                                                              \
                if (!whole) {                                                                                 \
                    for (int q = 0; q < C; q++) tile[r][q] = r < rows && q < cols ? c[r * ldc + q] : 0;       \
                    from = tile[r];                                                                           \
                }                                                                                             \
                acc[r][0] = LOAD(from); acc[r][1] = LOAD(from + (W));                                         \
            }                                                                                                 \
        } else {                                                                                              \
            const VEC b0 = bias ? LOAD(bias) : ZERO(), b1 = bias ? LOAD(bias + (W)) : ZERO();                \
            for (int r = 0; r < (R); r++) { acc[r][0] = b0; acc[r][1] = b1; }                                 \
        }                                                                                                     \
        for (int k = 0; k < kc; k++, a += (R), b += C) {                                                      \
            const VEC b0 = LOAD(b), b1 = LOAD(b + (W));                                                       \
            _Pragma("clang loop unroll(full)")                                                                \
            for (int r = 0; r < (R); r++) {                                                                   \
                const VEC x = SET1(a[r]);                                                                     \
                acc[r][0] = FMA(x, b0, acc[r][0]);                                                            \
                acc[r][1] = FMA(x, b1, acc[r][1]);                                                            \
            }                                                                                                 \
        }                                                                                                     \
        for (int r = 0; r < (R); r++) {                                                                       \
            float *to = whole ? c + r * ldc : tile[r];                                                        \
            STORE(to, acc[r][0]); STORE(to + (W), acc[r][1]);                                                 \
        }                                                                                                     \
        if (!whole)                                                                                           \
            for (int r = 0; r < rows; r++) memcpy(c + r * ldc, tile[r], sizeof(float) * (size_t)cols);        \
    }

DEFINE_BLOCK(block_12x32, "avx512f,fma", __m512, 12, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps,
             _mm512_setzero_ps, _mm512_fmadd_ps)
DEFINE_BLOCK(block_6x16, "avx2,fma", __m256, 6, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
             _mm256_setzero_ps, _mm256_fmadd_ps)

#else

int chorus_gemm_columns_best(void) { return 0; }
static int nr_supported(int nr) { (void)nr; return 0; }

#endif

static int panels_of(int n, int nr) { return (n + nr - 1) / nr; }

size_t chorus_gemm_packed_count(int n, int k, int nr) {
    if (n <= 0 || k <= 0 || (nr != 16 && nr != 32)) return 0;
    return (size_t)panels_of(n, nr) * nr * k + (size_t)panels_of(n, nr) * nr;
}

/* [panel][k][nr] (zero columns past n), then the bias padded to whole panels (zeros where there is none). */
int chorus_gemm_pack(const float *w, const float *bias, int n, int k, int nr, float *packed) {
    if (!w || !packed || n <= 0 || k <= 0 || (nr != 16 && nr != 32)) return -1;
    const int panels = panels_of(n, nr);
    for (int j = 0; j < panels; j++) {
        float *p = packed + (size_t)j * k * nr;
        for (int q = 0; q < nr; q++) {
            const int o = j * nr + q;
            if (o < n)
                for (int i = 0; i < k; i++) p[(size_t)i * nr + q] = w[(size_t)o * k + i];
            else
                for (int i = 0; i < k; i++) p[(size_t)i * nr + q] = 0;
        }
    }
    float *b = packed + (size_t)panels * nr * k;
    for (int o = 0; o < panels * nr; o++) b[o] = bias && o < n ? bias[o] : 0;
    return 0;
}

int chorus_gemm_block_rows(int nr) { return mr_for(nr); }

int chorus_gemm_columns_supported(int nr) { return nr_supported(nr); }

size_t chorus_gemm_packed_x_count(int m, int k, int nr) {
    if (m <= 0 || k <= 0 || (nr != 16 && nr != 32)) return 0;
    const int mr = mr_for(nr);
    return (size_t)((m + mr - 1) / mr) * mr * k;
}

/* [row block][k][mr], zero rows past m. */
int chorus_gemm_pack_x(const float *x, ptrdiff_t ldx, int m, int k, int nr, int b0, int b1, float *packed_x) {
    if (!x || !packed_x || m <= 0 || k <= 0 || ldx < k || (nr != 16 && nr != 32)) return -1;
    const int mr = mr_for(nr);
    if (b0 < 0 || b1 > (m + mr - 1) / mr || b1 <= b0) return -1;
    for (int b = b0; b < b1; b++) {
        float *dst = packed_x + (size_t)b * mr * k;
        for (int r = 0; r < mr; r++) {
            const int row = b * mr + r;
            if (row < m) {
                const float *src = x + (size_t)row * ldx;
                for (int i = 0; i < k; i++) dst[(size_t)i * mr + r] = src[i];
            } else {
                for (int i = 0; i < k; i++) dst[(size_t)i * mr + r] = 0;
            }
        }
    }
    return 0;
}

/* Panels [p0, p1) of y, every row, in blocks of rows whose packed x is at most about 8 MiB (all of them up
   to a few hundred rows): within a block, each panel's depth slice (KC × nr) stays in L1 while the block's
   rows stream past from L2 or L3, so a weight is read from memory once per block. One block of every row
   regardless streamed 20 MB of packed rows from L3 for each panel at 1600 × 3072 (a batch of 32 images),
   at 84 GFLOP/s a core instead of 97; blocks of 192 rows lost 3–10% at 400 rows. */
int chorus_gemm(const chorus_gemm_args *g, int p0, int p1) {
    if (!g || !g->packed_x || !g->packed || !g->y || g->m <= 0 || g->n <= 0 || g->k <= 0 || g->ldy < g->n
        || !nr_supported(g->nr) || p0 < 0 || p1 > panels_of(g->n, g->nr) || p1 <= p0)
        return -1;
    const int nr = g->nr, mr = mr_for(nr), k = g->k;
    const int fit = (int)((8u << 20) / (sizeof(float) * (size_t)k)) / mr * mr, mc = fit > 16 * mr ? fit : 16 * mr;
    const float *bias = g->has_bias ? g->packed + (size_t)panels_of(g->n, nr) * nr * k : NULL;
    for (int ic = 0; ic < g->m; ic += mc) {
        const int rows_end = g->m - ic < mc ? g->m : ic + mc;
        for (int j = p0; j < p1; j++) {
            const int cols = g->n - j * nr < nr ? g->n - j * nr : nr;
            const float *start = bias ? bias + (size_t)j * nr : NULL;
            for (int pc = 0; pc < k; pc += KC) {
                const int kc = k - pc < KC ? k - pc : KC;
                const int accumulate = g->accumulate || pc > 0;
                const float *panel = g->packed + ((size_t)j * k + pc) * nr;
                for (int ir = ic; ir < rows_end; ir += mr) {
                    const float *xp = g->packed_x + (size_t)ir * k + (size_t)pc * mr;
                    float *y = g->y + (size_t)ir * g->ldy + (size_t)j * nr;
                    const int live = rows_end - ir < mr ? rows_end - ir : mr;
#if defined(__x86_64__)
                    if (nr == 32) block_12x32(kc, xp, panel, y, g->ldy, accumulate, start, live, cols);
                    else block_6x16(kc, xp, panel, y, g->ldy, accumulate, start, live, cols);
#endif
                }
            }
        }
    }
    return 0;
}
