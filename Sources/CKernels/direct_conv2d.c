#include "chorus_kernels.h"

#include <string.h>

#include "conv_block.h"

/* A k×k convolution is the 1-D kernel's block with k² taps per input channel: over a zero-padded copy of
   a strip of rows, tap (dy, dx) of channel c sits at a fixed offset c·plane + dy·width + dx from the
   output position, so one offsets table covers the whole strip. */

/* Rows narrower than a block (8×8 and 16×16 maps of a UNet's inner levels with the 32-wide AVX-512 block)
   would leave most of each block empty. They run "flattened" instead: the strip's rows are kept only
   kw − 1 apart, each block covers consecutive positions across rows, and the kw − 1 positions between rows
   are computed and dropped. */
static int flattened(const chorus_conv2d_args *a) { return a->wo < block_cols(a->block_rows); }

static ptrdiff_t strip_width(const chorus_conv2d_args *a) {
    const int C = block_cols(a->block_rows);
    if (flattened(a)) return a->wo + a->kw - 1;
    return (ptrdiff_t)(a->wo + C - 1) / C * C + a->kw - 1;
}

/* One channel's plane of the padded strip: its rows, then room for the last flattened block's reads past
   them, plus 16 floats so that planes are not a multiple of the page apart (every channel's tap would then
   land in the same L1 set). */
static ptrdiff_t strip_plane(const chorus_conv2d_args *a, int rows) {
    return (ptrdiff_t)(rows + a->kh - 1) * strip_width(a) + block_cols(a->block_rows) + 16;
}

size_t chorus_conv2d_scratch_count(const chorus_conv2d_args *a, int rows) {
    if (!a || rows <= 0 || a->kh <= 0 || a->kw <= 0 || a->cin <= 0 || a->wo <= 0 || !rows_supported(a->block_rows)) return 0;
    return (size_t)a->cin * (size_t)strip_plane(a, rows) + (size_t)a->cin * a->kh * a->kw;
}

#if defined(__x86_64__)

int chorus_conv2d_direct(const chorus_conv2d_args *a, int y0, int y1, int b0, int b1, float *scratch) {
    if (!a || !a->x || !a->packed || !a->out || !scratch || a->cin <= 0 || a->cout <= 0 || a->h <= 0 || a->w <= 0
        || a->kh <= 0 || a->kw <= 0 || a->pad_h < 0 || a->pad_w < 0 || a->ho <= 0 || a->wo <= 0
        || a->ho != a->h + 2 * a->pad_h - a->kh + 1 || a->wo != a->w + 2 * a->pad_w - a->kw + 1
        || y0 < 0 || y1 > a->ho || y1 <= y0 || b0 < 0 || b1 <= b0 || !rows_supported(a->block_rows))
        return -1;
    const int R = a->block_rows, C = block_cols(R), taps = a->kh * a->kw, n = a->cin * taps;
    if (b1 > (a->cout + R - 1) / R) return -1;
    const int rows = y1 - y0;
    const ptrdiff_t width = strip_width(a), plane = strip_plane(a, rows);
    if ((size_t)a->cin * (size_t)plane > (size_t)1 << 31) return -1;
    float *strip = scratch;
    memset(strip, 0, sizeof(float) * (size_t)a->cin * plane);
    int *offsets = (int *)(scratch + (size_t)a->cin * plane);
    for (int c = 0; c < a->cin; c++)
        for (int dy = 0; dy < a->kh; dy++)
            for (int dx = 0; dx < a->kw; dx++) offsets[(c * a->kh + dy) * a->kw + dx] = (int)(c * plane + dy * width + dx);
    /* Input rows y0 − pad_h ..< y1 + kh − 1 − pad_h, each at pad_w in a zeroed row. */
    const size_t spatial = (size_t)a->h * a->w;
    for (int c = 0; c < a->cin; c++) {
        for (int r = 0; r < rows + a->kh - 1; r++) {
            float *row = strip + c * plane + r * width;
            const int y = y0 - a->pad_h + r;
            if (y >= 0 && y < a->h) memcpy(row + a->pad_w, a->x + c * spatial + (size_t)y * a->w, sizeof(float) * (size_t)a->w);
        }
    }
    const size_t os = (size_t)a->ho * a->wo;
    if (flattened(a)) {
        float tile[BLOCK_ROWS_MAX * BLOCK_COLS_MAX];
        const ptrdiff_t positions = (ptrdiff_t)rows * width;
        for (int b = b0; b < b1; b++) {
            const float *w = a->packed + (size_t)b * n * R;
            const int channels = a->cout - b * R < R ? a->cout - b * R : R;
            for (ptrdiff_t t = 0; t < positions; t += C) {
                block(R, strip + t, offsets, n, w, tile, NULL, a->bias ? a->bias + b * R : NULL, C, channels, C);
                for (int i = 0; i < C && t + i < positions; i++) {
                    const ptrdiff_t y = (t + i) / width, x = (t + i) % width;
                    if (x >= a->wo) continue;
                    const size_t at = (size_t)b * R * os + (size_t)(y0 + y) * a->wo + x;
                    for (int r = 0; r < channels; r++)
                        a->out[at + r * os] = tile[r * C + i] + (a->residual ? a->residual[at + r * os] : 0);
                }
            }
        }
        return 0;
    }
    for (int b = b0; b < b1; b++) {
        const float *w = a->packed + (size_t)b * n * R;
        const int channels = a->cout - b * R < R ? a->cout - b * R : R;
        const size_t first = (size_t)b * R * os;
        for (int y = y0; y < y1; y++) {
            const float *source = strip + (y - y0) * width;
            for (int t = 0; t < a->wo; t += C) {
                const int cols = a->wo - t < C ? a->wo - t : C;
                const size_t at = first + (size_t)y * a->wo + t;
                block(R, source + t, offsets, n, w, a->out + at, a->residual ? a->residual + at : NULL,
                      a->bias ? a->bias + b * R : NULL, (ptrdiff_t)os, channels, cols);
            }
        }
    }
    return 0;
}

#else

int chorus_conv2d_direct(const chorus_conv2d_args *a, int y0, int y1, int b0, int b1, float *scratch) {
    (void)a; (void)y0; (void)y1; (void)b0; (void)b1; (void)scratch;
    return -1;
}

#endif
