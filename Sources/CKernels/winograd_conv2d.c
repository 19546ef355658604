#include "chorus_kernels.h"

#include <string.h>

#include "conv_block.h"

/* Winograd F(4×4, 3×3) (Lavin & Gray 2015): each 4×4 output tile is A^T [Σ_c (G g G^T) ⊙ (B^T d B)] A over
   the 6×6 input patch d, so a 3×3 convolution costs 36 multiply-adds per (tile, input, output channel)
   instead of 144. The 36 sums over c are 36 matrix products U[ξ] [cout, cin] · V[ξ] [cin, tiles], run
   with the direct kernels' register blocks; the transforms work on 8 tiles at a time. */

enum { PATCH = 6, TILE = 4, XI = 36, LANES = 8 };

static int tiles_across(int n) { return (n + TILE - 1) / TILE; }

size_t chorus_winograd2d_packed_count(int cout, int cin, int rows) {
    return XI * chorus_conv1d_packed_count(cout, cin, 1, rows);
}

/* G z for one column z of 3, into 6 values `stride` apart, G = [[1/4, 0, 0], [-1/6, -1/6, -1/6],
   [-1/6, 1/6, -1/6], [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]]. */
static void weight_1d(float a, float b, float c, float *u, int stride) {
    u[0 * stride] = a / 4;
    u[1 * stride] = -(a + b + c) / 6;
    u[2 * stride] = -(a - b + c) / 6;
    u[3 * stride] = a / 24 + b / 12 + c / 6;
    u[4 * stride] = a / 24 - b / 12 + c / 6;
    u[5 * stride] = c;
}

/* U = G g G^T: along the kernel's columns, then along the rows of the result. */
static void weight_transform(const float *g, float *u) {
    float t[PATCH * 3];
    for (int j = 0; j < 3; j++) weight_1d(g[0 * 3 + j], g[1 * 3 + j], g[2 * 3 + j], t + j, 3);
    for (int i = 0; i < PATCH; i++) weight_1d(t[i * 3 + 0], t[i * 3 + 1], t[i * 3 + 2], u + i * PATCH, 1);
}

/* Straight into the blocks' layout, ξ after ξ: [ξ][block][cin][rows] (chorus_conv1d_pack of each U[ξ]).
   Models that do not keep the result pack on every call, so this is one pass that writes each float once
   (through a scratch matrix and the conv1d packer it took 1.3 s at 1280 × 1280 channels). */
int chorus_winograd2d_pack(const float *weight, int cout, int cin, int rows, float *packed) {
    if (!weight || !packed || cout <= 0 || cin <= 0 || !rows_supported(rows)) return -1;
    const int blocks = (cout + rows - 1) / rows;
    const size_t each = (size_t)blocks * cin * rows;
    for (int b = 0; b < blocks; b++)
        for (int c = 0; c < cin; c++)
            for (int r = 0; r < rows; r++) {
                const int o = b * rows + r;
                float u[XI] = {0};
                if (o < cout) weight_transform(weight + ((size_t)o * cin + c) * 9, u);
                const size_t at = ((size_t)b * cin + c) * rows + r;
                for (int xi = 0; xi < XI; xi++) packed[xi * each + at] = u[xi];
            }
    return 0;
}

/* Tiles go through the transforms 8 at a time, along a row of tiles: each row's tiles are padded to a
   multiple of 8 columns of V and M, and a job's columns are multiplied in chunks of `chunk_columns`. */
static int row_columns(int wo) { return (tiles_across(wo) + LANES - 1) / LANES * LANES; }

static int chunk_columns(const chorus_conv2d_args *a) {
    const int C = block_cols(a->block_rows);
    /* V and M of a chunk within about 512 KiB of L2 (measured best of 256 KiB, 512 KiB, 1 MiB) */
    const int fit = 131072 / (XI * (a->cin + a->cout)) / C * C;
    return fit > C ? fit : C;
}

/* Floats between V's (or M's) planes of one ξ and the next: a whole number of rows plus one cache line.
   Rows are powers of two floats long, so without the line the 36 planes of a transform's loads and stores
   lay 4 KiB apart and fought over one L1 set (the transforms took twice the products' time at 32 channels). */
static ptrdiff_t plane(int channels, ptrdiff_t s) { return channels * s + 16; }

size_t chorus_winograd2d_scratch_count(const chorus_conv2d_args *a) {
    if (!a || a->cin <= 0 || a->cout <= 0 || a->wo <= 0 || !rows_supported(a->block_rows)) return 0;
    const ptrdiff_t s = chunk_columns(a);
    return (size_t)XI * (plane(a->cin, s) + plane(a->cout, s)) + (size_t)a->cin;
}

#if defined(__x86_64__)

typedef float v8 __attribute__((vector_size(32)));

__attribute__((target("avx2,fma"))) static inline v8 load8(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
__attribute__((target("avx2,fma"))) static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }
__attribute__((target("avx2,fma"))) static inline v8 splat(float f) { return (v8){f, f, f, f, f, f, f, f}; }

/* r = B^T z, B^T = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0], [0, −2, −1, 2, 1, 0],
   [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]]. */
__attribute__((target("avx2,fma")))
static inline void input_1d(const v8 z[PATCH], v8 r[PATCH]) {
    const v8 four = splat(4), five = splat(5), two = splat(2);
    r[0] = four * z[0] - five * z[2] + z[4];
    r[1] = z[3] + z[4] - four * (z[1] + z[2]);
    r[2] = z[4] - z[3] + four * (z[1] - z[2]);
    r[3] = z[4] - z[2] + two * (z[3] - z[1]);
    r[4] = z[4] - z[2] - two * (z[3] - z[1]);
    r[5] = four * z[1] - five * z[3] + z[5];
}

/* y = A^T m, A^T = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]]. */
__attribute__((target("avx2,fma")))
static inline void output_1d(const v8 m[PATCH], v8 y[TILE]) {
    const v8 sum12 = m[1] + m[2], diff12 = m[1] - m[2], sum34 = m[3] + m[4], diff34 = m[3] - m[4];
    y[0] = m[0] + sum12 + sum34;
    y[1] = diff12 + splat(2) * diff34;
    y[2] = sum12 + splat(4) * sum34;
    y[3] = diff12 + splat(8) * diff34 + m[5];
}

/* z[j][k] = p[4k + j] for j < 4 from 32 floats: an 8 × 4 transpose. */
__attribute__((target("avx2,fma")))
static inline void deinterleave4(const float *p, __m256 z[4]) {
    const __m256 a0 = _mm256_loadu_ps(p), a1 = _mm256_loadu_ps(p + 8), a2 = _mm256_loadu_ps(p + 16), a3 = _mm256_loadu_ps(p + 24);
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    z[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, 0x44), order);
    z[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, 0xEE), order);
    z[2] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, 0x44), order);
    z[3] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, 0xEE), order);
}

/* The inverse: p[4k + j] = z[j][k]. */
__attribute__((target("avx2,fma")))
static inline void interleave4(const __m256 z[4], float *p) {
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256 w0 = _mm256_permutevar8x32_ps(z[0], order), w1 = _mm256_permutevar8x32_ps(z[1], order);
    const __m256 w2 = _mm256_permutevar8x32_ps(z[2], order), w3 = _mm256_permutevar8x32_ps(z[3], order);
    const __m256 l01 = _mm256_unpacklo_ps(w0, w1), l23 = _mm256_unpacklo_ps(w2, w3);
    const __m256 h01 = _mm256_unpackhi_ps(w0, w1), h23 = _mm256_unpackhi_ps(w2, w3);
    _mm256_storeu_ps(p, _mm256_shuffle_ps(l01, l23, 0x44));
    _mm256_storeu_ps(p + 8, _mm256_shuffle_ps(l01, l23, 0xEE));
    _mm256_storeu_ps(p + 16, _mm256_shuffle_ps(h01, h23, 0x44));
    _mm256_storeu_ps(p + 24, _mm256_shuffle_ps(h01, h23, 0xEE));
}

/* V[ξ][c][column .. column + 8] of 8 tiles from tile (ty, tx) on: their 6 × 36 input floats, gathered
   from the image where they lie inside it, else from a zero-padded copy. */
__attribute__((target("avx2,fma")))
static void transform_input_group(const chorus_conv2d_args *a, int ty, int tx, float *v, ptrdiff_t s, ptrdiff_t column) {
    const ptrdiff_t vs = plane(a->cin, s);
    const size_t spatial = (size_t)a->h * a->w;
    const int x0 = tx * TILE - a->pad_w, span = LANES * TILE + PATCH - TILE;
    const int inside = x0 >= 0 && x0 + span <= a->w;
    for (int c = 0; c < a->cin; c++) {
        v8 rows[PATCH][PATCH];  /* rows[i][q]: patch row i after B^T along x */
        for (int i = 0; i < PATCH; i++) {
            const int y = ty * TILE - a->pad_h + i;
            v8 z[PATCH];
            if (y < 0 || y >= a->h) {
                for (int q = 0; q < PATCH; q++) rows[i][q] = splat(0);
                continue;
            }
            const float *row = a->x + c * spatial + (size_t)y * a->w;
            float padded[LANES * TILE + TILE];
            const float *p = row + x0;
            if (!inside) {
                /* a loop, not memset and memcpy: libc's calls for 34 floats were 7% of a 32-channel conv */
                const int from = x0 < 0 ? -x0 : 0, to = a->w - x0 < span ? a->w - x0 : span;
                for (int i = 0; i < LANES * TILE + TILE; i++) padded[i] = i >= from && i < to ? row[x0 + i] : 0;
                p = padded;
            }
            __m256 lo[4], hi[4];
            deinterleave4(p, lo);
            deinterleave4(p + TILE, hi);
            for (int j = 0; j < 4; j++) memcpy(&z[j], &lo[j], sizeof(v8));
            memcpy(&z[4], &hi[0], sizeof(v8));
            memcpy(&z[5], &hi[1], sizeof(v8));
            input_1d(z, rows[i]);
        }
        for (int q = 0; q < PATCH; q++) {
            v8 z[PATCH], r[PATCH];
            for (int i = 0; i < PATCH; i++) z[i] = rows[i][q];
            input_1d(z, r);
            for (int p = 0; p < PATCH; p++) store8(v + (p * PATCH + q) * vs + c * s + column, r[p]);
        }
    }
}

/* out of 8 tiles from tile (ty, tx) on, every output channel: A^T M A + bias + residual. */
__attribute__((target("avx2,fma")))
static void transform_output_group(const chorus_conv2d_args *a, int ty, int tx, const float *m, ptrdiff_t s, ptrdiff_t column) {
    const ptrdiff_t ms = plane(a->cout, s);
    const size_t os = (size_t)a->ho * a->wo;
    const int x0 = tx * TILE, whole = x0 + LANES * TILE <= a->wo;
    for (int o = 0; o < a->cout; o++) {
        v8 cols[PATCH][TILE];  /* cols[p][j]: patch row p after A^T along x */
        for (int p = 0; p < PATCH; p++) {
            v8 z[PATCH];
            for (int q = 0; q < PATCH; q++) z[q] = load8(m + (p * PATCH + q) * ms + o * s + column);
            output_1d(z, cols[p]);
        }
        v8 y[TILE][TILE];  /* y[j][i]: output row i, column j of each tile */
        for (int j = 0; j < TILE; j++) {
            v8 z[PATCH];
            for (int p = 0; p < PATCH; p++) z[p] = cols[p][j];
            output_1d(z, y[j]);
        }
        const v8 bias = splat(a->bias ? a->bias[o] : 0);
        for (int i = 0; i < TILE; i++) {
            const int oy = ty * TILE + i;
            if (oy >= a->ho) break;
            __m256 z[4];
            for (int j = 0; j < TILE; j++) { const v8 value = y[j][i] + bias; memcpy(&z[j], &value, sizeof(v8)); }
            float *row = a->out + o * os + (size_t)oy * a->wo + x0;
            const float *res = a->residual ? a->residual + o * os + (size_t)oy * a->wo + x0 : NULL;
            if (whole) {
                interleave4(z, row);
                if (res)
                    for (int l = 0; l < LANES * TILE; l += LANES) store8(row + l, load8(row + l) + load8(res + l));
                continue;
            }
            float line[LANES * TILE];
            interleave4(z, line);
            for (int l = 0; l < a->wo - x0; l++) row[l] = line[l] + (res ? res[l] : 0);
        }
    }
}

int chorus_winograd2d(const chorus_conv2d_args *a, int r0, int r1, float *scratch) {
    if (!a || !a->x || !a->packed || !a->out || !scratch || a->cin <= 0 || a->cout <= 0 || a->h <= 0 || a->w <= 0
        || a->kh != 3 || a->kw != 3 || a->pad_h < 0 || a->pad_w < 0 || a->ho <= 0 || a->wo <= 0
        || a->ho != a->h + 2 * a->pad_h - 2 || a->wo != a->w + 2 * a->pad_w - 2
        || r0 < 0 || r1 > tiles_across(a->ho) || r1 <= r0 || !rows_supported(a->block_rows))
        return -1;
    const int R = a->block_rows, C = block_cols(R), per_row = row_columns(a->wo), T = chunk_columns(a);
    const ptrdiff_t columns = (ptrdiff_t)(r1 - r0) * per_row, s = T;
    const ptrdiff_t vs = plane(a->cin, s), ms = plane(a->cout, s);
    float *v = scratch, *m = v + XI * vs;
    int *offsets = (int *)(m + XI * ms);
    for (int c = 0; c < a->cin; c++) offsets[c] = (int)(c * s);
    const int blocks = (a->cout + R - 1) / R;
    const size_t each = (size_t)blocks * a->cin * R;
    for (ptrdiff_t c0 = 0; c0 < columns; c0 += T) {
        const ptrdiff_t width = columns - c0 < T ? (columns - c0 + C - 1) / C * C : T;
        for (ptrdiff_t g = 0; g < width; g += LANES) {
            if (c0 + g < columns) {
                transform_input_group(a, r0 + (int)((c0 + g) / per_row), (int)((c0 + g) % per_row), v, s, g);
                continue;
            }
            for (int xi = 0; xi < XI; xi++)
                for (int c = 0; c < a->cin; c++) memset(v + xi * vs + c * s + g, 0, sizeof(float) * LANES);
        }
        for (int xi = 0; xi < XI; xi++) {
            const float *vx = v + xi * vs, *u = a->packed + xi * each;
            float *mx = m + xi * ms;
            for (ptrdiff_t t = 0; t < width; t += C)
                for (int b = 0; b < blocks; b++) {
                    const int channels = a->cout - b * R < R ? a->cout - b * R : R;
                    block(R, vx + t, offsets, a->cin, u + (size_t)b * a->cin * R, mx + (size_t)b * R * s + t, NULL, NULL, s, channels, C);
                }
        }
        for (ptrdiff_t g = 0; g < width && c0 + g < columns; g += LANES)
            transform_output_group(a, r0 + (int)((c0 + g) / per_row), (int)((c0 + g) % per_row), m, s, g);
    }
    return 0;
}

#else

int chorus_winograd2d(const chorus_conv2d_args *a, int r0, int r1, float *scratch) {
    (void)a; (void)r0; (void)r1; (void)scratch;
    return -1;
}

#endif
