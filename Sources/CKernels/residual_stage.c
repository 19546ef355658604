#include "chorus_kernels.h"

#include <string.h>

#include "conv_block.h"

/* Every buffer of a tile has rows of the same stride, and index i of a row is position t0 - reach + i,
   where reach is the widest block's halo: the receptive field one side of a tile. A convolution's
   output at index i then reads its input at i - padding + j·dilation, in any buffer. */

static int padding_of(const chorus_conv_ref *c) { return (c->taps - 1) * c->dilation / 2; }

static int halo_of(const chorus_residual_block *b) {
    int h = 0;
    for (int s = 0; s < b->steps; s++) h += padding_of(&b->first[s]) + (b->second ? padding_of(&b->second[s]) : 0);
    return h;
}

static int reach_of(const chorus_residual_stage_args *a) {
    int r = 0;
    for (int b = 0; b < a->blocks; b++) if (halo_of(&a->block[b]) > r) r = halo_of(&a->block[b]);
    return r;
}

static int max_taps(const chorus_residual_stage_args *a) {
    int m = 1;
    for (int b = 0; b < a->blocks; b++)
        for (int s = 0; s < a->block[b].steps; s++) {
            if (a->block[b].first[s].taps > m) m = a->block[b].first[s].taps;
            if (a->block[b].second && a->block[b].second[s].taps > m) m = a->block[b].second[s].taps;
        }
    return m;
}

ptrdiff_t chorus_residual_stage_tile(const chorus_residual_stage_args *a) {
    /* Four buffers of channels × stride floats in about 384 KiB of the 512 KiB L2. */
    ptrdiff_t tile = 24576 / (a->channels > 0 ? a->channels : 1) - 2 * reach_of(a) - 2 * BLOCK_COLS_MAX;
    tile = tile / BLOCK_COLS_MAX * BLOCK_COLS_MAX;
    return tile < 64 ? 64 : tile > 1024 ? 1024 : tile;
}

static ptrdiff_t row_stride(const chorus_residual_stage_args *a) {
    return chorus_residual_stage_tile(a) + 2 * reach_of(a) + 2 * BLOCK_COLS_MAX;
}

size_t chorus_residual_stage_scratch_count(const chorus_residual_stage_args *a) {
    /* cur, leaky, h, sum; then the offsets of the widest convolution */
    return 4 * (size_t)a->channels * (size_t)row_stride(a) + (size_t)a->channels * (size_t)max_taps(a);
}

#if defined(__x86_64__)

/* out[i] = residual[i] + bias + conv(in)[i] for indices [from, to) of every row (residual may be NULL
   or out itself), then zero wherever the position falls outside [0, length). */
__attribute__((target("avx2,fma")))
static void convolve(const chorus_conv_ref *c, int R, int channels, const float *in, float *out, const float *residual,
                     ptrdiff_t stride, ptrdiff_t from, ptrdiff_t to, ptrdiff_t origin, ptrdiff_t length, int *offsets) {
    const int n = channels * c->taps, pad = padding_of(c);
    for (int ch = 0; ch < channels; ch++)
        for (int j = 0; j < c->taps; j++) offsets[ch * c->taps + j] = (int)(ch * stride + (ptrdiff_t)j * c->dilation);
    const int blocks = (channels + R - 1) / R, C = block_cols(R);
    /* A stretch of columns small enough that its input rows stay in L1 while every channel block reads them. */
    ptrdiff_t stretch = (ptrdiff_t)(6144 / channels) / C * C;
    if (stretch < 2 * C) stretch = 2 * C;
    for (ptrdiff_t s0 = from; s0 < to; s0 += stretch) {
        const ptrdiff_t s1 = s0 + stretch < to ? s0 + stretch : to;
        for (int b = 0; b < blocks; b++) {
            const int rows = channels - b * R < R ? channels - b * R : R;
            const ptrdiff_t first = (ptrdiff_t)b * R * stride;
            const float *w = c->packed + (size_t)b * n * R;
            for (ptrdiff_t i = s0; i < s1; i += C) {
                const int cols = s1 - i < C ? (int)(s1 - i) : C;
                block(R, in + i - pad, offsets, n, w, out + first + i, residual ? residual + first + i : NULL,
                      c->bias ? c->bias + b * R : NULL, stride, rows, cols);
            }
        }
    }
    /* Positions before 0 or past the end are the next convolution's zero padding, not values. */
    ptrdiff_t lo = -origin, hi = length - origin;
    for (int ch = 0; ch < channels; ch++) {
        float *row = out + ch * stride;
        for (ptrdiff_t i = from; i < to && i < lo; i++) row[i] = 0;
        for (ptrdiff_t i = hi > from ? hi : from; i < to; i++) row[i] = 0;
    }
}

__attribute__((target("avx2,fma")))
int chorus_residual_stage(const chorus_residual_stage_args *a, ptrdiff_t t0, ptrdiff_t t1, float *scratch) {
    if (!a || !a->x || !a->out || a->x == a->out || !scratch || a->channels <= 0 || a->length <= 0 || a->blocks <= 0 || !a->block
        || t0 < 0 || t1 < t0 || t1 > a->length || !rows_supported(a->block_rows))
        return -1;
    for (int b = 0; b < a->blocks; b++) {
        const chorus_residual_block *blk = &a->block[b];
        if (blk->steps <= 0 || !blk->first) return -1;
        for (int s = 0; s < blk->steps; s++) {
            if (!blk->first[s].packed || blk->first[s].taps <= 0 || blk->first[s].dilation <= 0 || (blk->first[s].taps - 1) * blk->first[s].dilation % 2) return -1;
            if (blk->second && (!blk->second[s].packed || blk->second[s].taps <= 0 || blk->second[s].dilation <= 0
                                || (blk->second[s].taps - 1) * blk->second[s].dilation % 2)) return -1;
        }
    }
    const int channels = a->channels, reach = reach_of(a), R = a->block_rows;
    const ptrdiff_t tile = chorus_residual_stage_tile(a), stride = row_stride(a);
    const size_t plane = (size_t)channels * (size_t)stride;
    float *cur = scratch, *leaky = cur + plane, *h = leaky + plane, *sum = h + plane;
    int *offsets = (int *)(sum + plane);
    const float scale = 1.0f / (float)a->blocks;
    for (ptrdiff_t p = t0; p < t1; p += tile) {
        const ptrdiff_t width = p + tile < t1 ? tile : t1 - p;
        const ptrdiff_t origin = p - reach;  /* the position of index 0 */
        for (int b = 0; b < a->blocks; b++) {
            const chorus_residual_block *blk = &a->block[b];
            /* The block's window shrinks by each convolution's padding on both sides, down to the tile. */
            ptrdiff_t from = reach - halo_of(blk), to = reach + width + halo_of(blk);
            for (int ch = 0; ch < channels; ch++)
                copy_row(cur + ch * stride + from, a->x + ch * a->length, a->length, origin + from, to - from, 0, 0);
            for (int s = 0; s < blk->steps; s++) {
                for (int ch = 0; ch < channels; ch++)
                    leaky_copy(leaky + ch * stride + from, cur + ch * stride + from, to - from, a->slope);
                const int p1 = padding_of(&blk->first[s]);
                if (blk->second) {
                    const int p2 = padding_of(&blk->second[s]);
                    convolve(&blk->first[s], R, channels, leaky, h, NULL, stride, from + p1, to - p1, origin, a->length, offsets);
                    for (int ch = 0; ch < channels; ch++)
                        leaky_copy(leaky + ch * stride + from + p1, h + ch * stride + from + p1, to - from - 2 * p1, a->slope);
                    from += p1 + p2; to -= p1 + p2;
                    convolve(&blk->second[s], R, channels, leaky, cur, cur, stride, from, to, origin, a->length, offsets);
                } else {
                    from += p1; to -= p1;
                    convolve(&blk->first[s], R, channels, leaky, cur, cur, stride, from, to, origin, a->length, offsets);
                }
            }
            /* from..to is now the tile: reach..reach + width. */
            for (int ch = 0; ch < channels; ch++) {
                float *acc = sum + ch * stride + reach;
                const float *v = cur + ch * stride + reach;
                if (b == 0) memcpy(acc, v, sizeof(float) * (size_t)width);
                else for (ptrdiff_t i = 0; i < width; i++) acc[i] += v[i];
            }
        }
        for (int ch = 0; ch < channels; ch++) {
            float *dst = a->out + ch * a->length + p;
            const float *acc = sum + ch * stride + reach;
            for (ptrdiff_t i = 0; i < width; i++) dst[i] = acc[i] * scale;
        }
    }
    return 0;
}

#else

int chorus_residual_stage(const chorus_residual_stage_args *a, ptrdiff_t t0, ptrdiff_t t1, float *scratch) {
    (void)a; (void)t0; (void)t1; (void)scratch;
    return -1;
}

#endif
