#include "chorus_kernels.h"

#include <string.h>

#include "conv_block.h"

enum { QTILE = 128 };

static int widest_phase(const chorus_conv_transpose1d_args *a) {
    int m = 1;
    for (int r = 0; r < a->stride; r++) if (a->phases[r].taps > m) m = a->phases[r].taps;
    return m;
}

static ptrdiff_t panel_stride(const chorus_conv_transpose1d_args *a) { return QTILE + widest_phase(a) - 1 + BLOCK_COLS_MAX; }

ptrdiff_t chorus_conv_transpose1d_steps(const chorus_conv_transpose1d_args *a) {
    return a->stride > 0 ? (a->out_length - 1 + a->padding) / a->stride + 1 : 0;
}

size_t chorus_conv_transpose1d_scratch_count(const chorus_conv_transpose1d_args *a) {
    /* the input panel, the phase's outputs, the (channel, tap) offsets */
    const int r = a->block_rows > 0 ? a->block_rows : 1;
    const size_t rows = (size_t)((a->cout + r - 1) / r) * r;  /* the phase's rows, to its last whole block */
    return (size_t)a->cin * (size_t)panel_stride(a) + rows * QTILE + (size_t)a->cin * (size_t)widest_phase(a);
}

#if defined(__x86_64__)

__attribute__((target("avx2,fma")))
int chorus_conv_transpose1d_direct(const chorus_conv_transpose1d_args *a, ptrdiff_t q0, ptrdiff_t q1, float *scratch) {
    if (!a || !a->x || !a->out || !a->phases || !scratch || a->cin <= 0 || a->cout <= 0 || a->stride <= 0 || a->padding < 0
        || a->length <= 0 || a->out_length <= 0 || q0 < 0 || q1 < q0 || q1 > chorus_conv_transpose1d_steps(a)
        || !rows_supported(a->block_rows))
        return -1;
    for (int r = 0; r < a->stride; r++) if (!a->phases[r].packed || a->phases[r].taps <= 0) return -1;
    const int cin = a->cin, cout = a->cout, s = a->stride, R = a->block_rows, C = block_cols(R);
    const ptrdiff_t ps = panel_stride(a);
    const size_t rows = (size_t)((cout + R - 1) / R) * R;
    float *panel = scratch, *phase = panel + (size_t)cin * ps;
    int *offsets = (int *)(phase + rows * QTILE);
    const int blocks = (cout + R - 1) / R;
    for (ptrdiff_t p = q0; p < q1; p += QTILE) {
        const ptrdiff_t end = p + QTILE < q1 ? p + QTILE : q1;
        int panel_taps = 0;
        for (int r = 0; r < s; r++) {
            const int taps = a->phases[r].taps, n = cin * taps;
            if (taps != panel_taps) {  /* phases of equal width share one panel */
                for (int c = 0; c < cin; c++) copy_row(panel + c * ps, a->x + c * a->length, a->length, p - (taps - 1), ps, 0, 0);
                for (int c = 0; c < cin; c++) for (int j = 0; j < taps; j++) offsets[c * taps + j] = (int)(c * ps + j);
                panel_taps = taps;
            }
            for (int b = 0; b < blocks; b++) {
                const int rws = cout - b * R < R ? cout - b * R : R;
                const float *w = a->phases[r].packed + (size_t)b * n * R;
                for (ptrdiff_t t = p; t < end; t += C) {
                    const int cols = end - t < C ? (int)(end - t) : C;
                    block(R, panel + (t - p), offsets, n, w, phase + (size_t)b * R * QTILE + (t - p), NULL,
                          a->bias ? a->bias + b * R : NULL, QTILE, rws, cols);
                }
            }
            /* Output o = q·s + r − padding; the first and last q of a phase can fall outside the output. */
            ptrdiff_t first = p, last = end;
            while (first < last && first * s + r - a->padding < 0) first++;
            while (last > first && (last - 1) * s + r - a->padding >= a->out_length) last--;
            for (int o = 0; o < cout; o++) {
                float *dst = a->out + (ptrdiff_t)o * a->out_length;
                const float *src = phase + (size_t)o * QTILE;
                for (ptrdiff_t q = first; q < last; q++) dst[q * s + r - a->padding] = src[q - p];
            }
        }
    }
    return 0;
}

#else

int chorus_conv_transpose1d_direct(const chorus_conv_transpose1d_args *a, ptrdiff_t q0, ptrdiff_t q1, float *scratch) {
    (void)a; (void)q0; (void)q1; (void)scratch;
    return -1;
}

#endif
