#include "chorus_kernels.h"

#include <string.h>

#include "conv_block.h"

/* The input is copied a panel at a time into scratch (with the padding and leaky ReLU applied): rows of
   the caller's buffer are often 4 KiB apart (54272-sample rows are), and then every row of a block
   lands in the same L1 set. */
enum { PANEL = 256 };

int chorus_conv_block_rows_best(void) {
    return rows_supported(AVX512_ROWS) ? AVX512_ROWS : rows_supported(AVX2_ROWS) ? AVX2_ROWS : 0;
}

int chorus_conv_block_rows_supported(int rows) { return rows_supported(rows); }

size_t chorus_conv1d_packed_count(int cout, int cin, int taps, int rows) {
    if (rows <= 0) return 0;
    return (size_t)((cout + rows - 1) / rows) * rows * (size_t)cin * (size_t)taps;
}

void chorus_conv1d_pack(const float *weight, int cout, int cin, int taps, int rows, float *packed) {
    if (rows <= 0) return;
    memset(packed, 0, sizeof(float) * chorus_conv1d_packed_count(cout, cin, taps, rows));
    for (int o = 0; o < cout; o++)
        for (int c = 0; c < cin; c++)
            for (int j = 0; j < taps; j++)
                packed[(((size_t)(o / rows) * cin + c) * taps + j) * rows + o % rows] = weight[((size_t)o * cin + c) * taps + j];
}

static size_t panel_stride(int taps, int dilation) { return PANEL + (size_t)(taps - 1) * dilation + BLOCK_COLS_MAX; }

size_t chorus_conv1d_scratch_count(int cin, int taps, int dilation) {
    /* the input panel, then the (channel, tap) offsets stored as ints */
    return (size_t)cin * panel_stride(taps, dilation) + (size_t)cin * taps;
}

#if defined(__x86_64__)

__attribute__((target("avx2,fma")))
int chorus_conv1d_direct(const chorus_conv1d_args *a, ptrdiff_t t0, ptrdiff_t t1, float *scratch) {
    if (!a || !a->x || !a->packed || !a->out || !scratch || a->cin <= 0 || a->cout <= 0 || a->taps <= 0
        || a->dilation <= 0 || a->padding < 0 || a->length <= 0 || t0 < 0 || t1 < t0 || !rows_supported(a->block_rows))
        return -1;
    const int cin = a->cin, taps = a->taps, n = cin * taps, R = a->block_rows, C = block_cols(R);
    const size_t ps = panel_stride(taps, a->dilation);
    if ((size_t)cin * ps > (size_t)1 << 31) return -1;
    float *panel = scratch;
    int *offsets = (int *)(scratch + (size_t)cin * ps);
    for (int c = 0; c < cin; c++)
        for (int j = 0; j < taps; j++) offsets[c * taps + j] = (int)(c * ps + (size_t)j * a->dilation);
    const int blocks = (a->cout + R - 1) / R;
    for (ptrdiff_t p = t0; p < t1; p += PANEL) {
        const ptrdiff_t end = p + PANEL < t1 ? p + PANEL : t1;
        /* The whole panel row, past its end too: the last block reads columns it never stores. */
        for (int c = 0; c < cin; c++)
            copy_row(panel + c * ps, a->x + c * a->x_stride, a->length, p - a->padding, (ptrdiff_t)ps, a->leaky, a->leaky_slope);
        for (int b = 0; b < blocks; b++) {
            const float *w = a->packed + (size_t)b * n * R;
            const int rows = a->cout - b * R < R ? a->cout - b * R : R;
            const ptrdiff_t first = (ptrdiff_t)b * R * a->out_stride;
            for (ptrdiff_t t = p; t < end; t += C) {
                const int cols = end - t < C ? (int)(end - t) : C;
                block(R, panel + (t - p), offsets, n, w, a->out + first + t, a->residual ? a->residual + first + t : NULL,
                      a->bias ? a->bias + b * R : NULL, a->out_stride, rows, cols);
            }
        }
    }
    return 0;
}

#else

int chorus_conv1d_direct(const chorus_conv1d_args *a, ptrdiff_t t0, ptrdiff_t t1, float *scratch) {
    (void)a; (void)t0; (void)t1; (void)scratch;
    return -1;
}

#endif
